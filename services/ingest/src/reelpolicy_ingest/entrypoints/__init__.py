"""Entrypoints: the HTTP routers and the Kafka consumers."""
