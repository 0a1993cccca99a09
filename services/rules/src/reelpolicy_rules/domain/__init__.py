"""The rules domain (pure: no I/O): result diffs, cross-policy constraints, time."""
