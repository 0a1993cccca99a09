-- A null value is a tombstone: on a compacted topic (reelpolicy.eligibility.state.v1) it
-- withdraws its key's value. The relay publishes it as a Kafka record with a null value.
-- Dropping NOT NULL changes only the catalog (no rewrite, no scan).
ALTER TABLE outbox ALTER COLUMN value DROP NOT NULL;
ALTER TABLE outbox_quarantine ALTER COLUMN value DROP NOT NULL;
