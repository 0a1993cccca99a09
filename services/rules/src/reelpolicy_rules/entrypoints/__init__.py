"""Entrypoints: the HTTP routers, the Kafka consumers and the day scheduler."""
