-- Projections notify keeps from other services' events (its own copies).
CREATE TABLE enterprises (
    enterprise_id text PRIMARY KEY,
    region_code   text        NOT NULL,
    version       integer     NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE policies (
    policy_id  text PRIMARY KEY,
    version    integer     NOT NULL,
    document   jsonb       NOT NULL,
    revoked    boolean     NOT NULL DEFAULT false,
    expires_on date,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX policies_expiring ON policies (expires_on) WHERE NOT revoked AND expires_on IS NOT NULL;

-- Current eligibility per (subject, policy), for backfill and deadline alerts.
CREATE TABLE eligibility (
    subject_type   text        NOT NULL,
    subject_id     text        NOT NULL,
    policy_id      text        NOT NULL,
    enterprise_id  text        NOT NULL,
    policy_version integer     NOT NULL,
    status         text        NOT NULL,
    amount_cny     bigint,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_type, subject_id, policy_id)
);
CREATE INDEX eligibility_eligible ON eligibility (enterprise_id) WHERE status = 'eligible';

-- Subscriptions: an enterprise's (or, with enterprise_id NULL, an operator's) channel.
CREATE TABLE subscriptions (
    id                         uuid PRIMARY KEY,
    enterprise_id              text,
    channel                    text        NOT NULL CHECK (channel IN ('webhook', 'email')),
    url                        text,
    email                      text,
    events                     text[]      NOT NULL,
    filters                    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    deadline_days              integer     NOT NULL DEFAULT 30,
    digest_window_seconds      integer,
    secret_sealed              text        NOT NULL,
    previous_secret_sealed     text,
    previous_secret_expires_at timestamptz,
    enabled                    boolean     NOT NULL DEFAULT true,
    disabled_reason            text,
    disabled_at                timestamptz,
    failing_since              timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CHECK ((channel = 'webhook') = (url IS NOT NULL)),
    CHECK ((channel = 'email') = (email IS NOT NULL))
);
CREATE INDEX subscriptions_enterprise ON subscriptions (enterprise_id);

-- One row per (subscription, alert): the unique key is what makes delivery exactly-once.
CREATE TABLE deliveries (
    id              uuid PRIMARY KEY,
    subscription_id uuid        NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    enterprise_id   text,
    alert_key       text        NOT NULL,
    event_type      text        NOT NULL,
    body            jsonb,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed')),
    attempt_count   integer     NOT NULL DEFAULT 0, -- since creation or the last replay
    total_attempts  integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until   timestamptz,
    traceparent     text,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    last_error      text,
    UNIQUE (subscription_id, alert_key)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries (claimed_until) WHERE status = 'delivering';
CREATE INDEX deliveries_failed ON deliveries (finished_at) WHERE status = 'failed';
CREATE INDEX deliveries_listing ON deliveries (created_at, id);

-- Alerts batched into a digest delivery (body is built when the window closes).
CREATE TABLE digest_items (
    subscription_id uuid        NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    alert_key       text        NOT NULL,
    delivery_id     uuid        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    item            jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, alert_key)
);
CREATE INDEX digest_items_delivery ON digest_items (delivery_id);

CREATE TABLE delivery_attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   uuid        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt       integer     NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    status_code   integer,
    latency_ms    integer     NOT NULL,
    error         text,
    response_body text
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);

-- Wake delivery workers (LISTEN notify_deliveries) when deliveries are inserted.
CREATE FUNCTION notify_deliveries_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notify_deliveries', '');
    RETURN NULL;
END $$;
CREATE TRIGGER deliveries_inserted AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION notify_deliveries_inserted();
