"""Pure notify rules: filters, summaries, retries, alert bodies, URL safety. No I/O."""
