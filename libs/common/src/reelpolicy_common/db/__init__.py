"""asyncpg plumbing: pools with JSON codecs, and the SQL migration runner."""
