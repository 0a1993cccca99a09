"""reelpolicy rules service."""
