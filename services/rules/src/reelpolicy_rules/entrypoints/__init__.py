"""Entrypoints: the HTTP router, the Kafka consumers and the day scheduler."""
