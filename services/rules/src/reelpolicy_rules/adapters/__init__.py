"""Adapters: PostgreSQL repositories, the unit of work, the in-process caches, the Kafka
topic reader and consumer group moves of the rebuild."""
