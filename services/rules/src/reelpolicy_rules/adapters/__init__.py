"""Adapters: PostgreSQL repositories, the unit of work, the in-process subject cache."""
