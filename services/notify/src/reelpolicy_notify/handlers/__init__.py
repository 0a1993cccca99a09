"""Notify use cases: consumed events, subscriptions, deliveries, delivery attempts,
deadline scans."""
