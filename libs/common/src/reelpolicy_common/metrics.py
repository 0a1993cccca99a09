"""Prometheus metrics shared by every service (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMER_MESSAGES = Counter(
    "reelpolicy_consumer_messages_total",
    "Events handled by a consumer, by outcome (processed, dead_lettered).",
    ["consumer", "topic", "outcome"],
)
CONSUMER_RETRIES = Counter(
    "reelpolicy_consumer_retries_total",
    "Handler retries before success or DLQ.",
    ["consumer", "topic"],
)
CONSUMER_LAG = Gauge(
    "reelpolicy_consumer_lag",
    "Records of a partition its consumer group has not handled yet (the high watermark"
    " minus the next offset to handle), set by the member holding the partition after each"
    " batch; a partition the member no longer holds is dropped.",
    ["consumer", "group", "topic", "partition"],
)
CONSUMER_PAUSED = Gauge(
    "reelpolicy_consumer_paused",
    "1 while a consumer waits out an infrastructure outage with its partitions paused.",
    ["consumer"],
)
CONSUMER_INFRASTRUCTURE_RETRIES = Counter(
    "reelpolicy_consumer_infrastructure_retries_total",
    "Times a consumer paused to wait out an infrastructure error (records kept, not DLQ'd).",
    ["consumer"],
)
OUTBOX_PUBLISHED = Counter("reelpolicy_outbox_published_total", "Outbox rows published.")
OUTBOX_BACKLOG = Gauge("reelpolicy_outbox_backlog", "Outbox rows not yet published.")
OUTBOX_OLDEST_AGE = Gauge(
    "reelpolicy_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row."
)
OUTBOX_QUARANTINED = Counter(
    "reelpolicy_outbox_quarantined_total",
    "Outbox rows the broker refused for good, moved to the quarantine.",
)
OUTBOX_QUARANTINE_HELD = Gauge(
    "reelpolicy_outbox_quarantine_rows",
    "Rows in the outbox quarantine now (listed by `reelpolicy-<svc> outbox quarantined`).",
)
EVALUATION_SECONDS = Histogram(
    "reelpolicy_evaluation_seconds", "Time spent evaluating eligibility.", ["mode"]
)
DELIVERY_ATTEMPTS = Counter(
    "reelpolicy_delivery_attempts_total",
    "Alert delivery attempts by channel and outcome.",
    ["channel", "outcome"],
)
TASK_HEARTBEAT = Gauge(
    "reelpolicy_task_heartbeat_timestamp_seconds",
    "When a background task (or consumer) last showed progress, as a Unix time.",
    ["task"],
)
TASK_HEARTBEAT_INTERVAL = Gauge(
    "reelpolicy_task_heartbeat_interval_seconds",
    "How soon after its last heartbeat a background task promised the next one.",
    ["task"],
)
TASK_UP = Gauge(
    "reelpolicy_task_up", "1 while a background task (or consumer) is running, else 0.", ["task"]
)
TASK_RESTARTS = Counter(
    "reelpolicy_task_restarts_total",
    "Background tasks (or consumer tasks) restarted after they raised.",
    ["task"],
)

DEAD_LETTERS_WAITING = Gauge(
    "reelpolicy_dead_letters_waiting",
    "Records of <topic>.dlq not replayed yet (past the replay group's committed offset),"
    " by original topic; read from the broker every 30 s by each service consuming it.",
    ["topic"],
)
DELIVERIES_PENDING = Gauge(
    "reelpolicy_deliveries_pending",
    "Deliveries not finished: waiting for an attempt or a retry, or being attempted.",
)
DELIVERIES_DUE = Gauge(
    "reelpolicy_deliveries_due",
    "Pending deliveries whose attempt time has come: the delivery workers' backlog.",
)
DELIVERIES_OVERDUE_SECONDS = Gauge(
    "reelpolicy_deliveries_overdue_seconds",
    "How long the longest-waiting due delivery has been due (0 when none is).",
)
SUBSCRIPTIONS_DISABLED = Gauge(
    "reelpolicy_subscriptions_disabled",
    "Subscriptions notify disabled itself (410 Gone, or every attempt failing for days),"
    " by channel; an owner's own pause is not counted.",
    ["channel"],
)


class PrometheusOutboxMetrics:
    """The relay's metrics sink."""

    def observe(self, *, published: int, backlog: int, oldest_age_seconds: float) -> None:
        OUTBOX_PUBLISHED.inc(published)
        OUTBOX_BACKLOG.set(backlog)
        OUTBOX_OLDEST_AGE.set(oldest_age_seconds)

    def quarantined(self, *, moved: int, held: int | None = None) -> None:
        OUTBOX_QUARANTINED.inc(moved)
        if held is not None:
            OUTBOX_QUARANTINE_HELD.set(held)
