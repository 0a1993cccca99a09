"""handlers of the portal."""
