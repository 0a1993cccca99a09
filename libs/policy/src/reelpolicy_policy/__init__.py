"""reelpolicy."""
