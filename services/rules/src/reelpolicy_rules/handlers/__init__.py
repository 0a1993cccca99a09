"""Rules use cases: policy changes (recalculating policies), registry changes
(recalculating subjects), a new day, the rebuild."""
