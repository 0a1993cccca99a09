"""reelpolicy registry service."""
