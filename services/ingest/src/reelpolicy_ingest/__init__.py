"""reelpolicy ingest service."""
