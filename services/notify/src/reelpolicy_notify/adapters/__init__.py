"""Adapters: PostgreSQL repositories, the HTTP and SMTP senders, the secret box."""
