"""Entrypoints: the HTTP router and the Kafka consumers."""
