"""Synthetic data for demos, benchmarks and tests (``reelpolicy-datagen``)."""
