"""Rules use cases: policy changes (bulk), registry changes (per subject), the clock."""
