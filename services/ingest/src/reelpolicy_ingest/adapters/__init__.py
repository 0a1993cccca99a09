"""Adapters: PostgreSQL (asyncpg) implementations of the ports."""
