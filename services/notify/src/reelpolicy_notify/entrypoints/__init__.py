"""Entrypoints: the HTTP routers, the Kafka consumer, the delivery worker and deadline
scans."""
