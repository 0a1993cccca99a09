-- Outbox rows the broker refused for good (too large, invalid topic, corrupt): moved
-- here by the relay, in the transaction that marks the rest of their batch sent, so
-- one such row never stalls the rows behind it. `reelpolicy-<svc> outbox quarantined`
-- lists them; `outbox retry` moves them back into the outbox as new pending rows.
CREATE TABLE outbox_quarantine (
    seq            bigint      PRIMARY KEY,  -- the row's seq in the outbox
    event_id       uuid        NOT NULL UNIQUE,
    topic          text        NOT NULL,
    key            text        NOT NULL,
    lane           integer     NOT NULL,
    event_type     text        NOT NULL,
    value          bytea       NOT NULL,
    headers        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL,
    error          text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
