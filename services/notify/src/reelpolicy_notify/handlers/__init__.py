"""Notify use cases: event projections and alerts, subscriptions, deliveries, the worker."""
