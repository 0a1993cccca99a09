"""reelpolicy notify service."""
