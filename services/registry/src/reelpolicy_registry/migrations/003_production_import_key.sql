-- Idempotent import of productions that have no external_id: the import stores a
-- fingerprint of the row (its enterprise and attributes) and a live production with
-- the same fingerprint is not created again, so re-importing such a file changes
-- nothing. Rows created through the API, or with an external_id, have none.
ALTER TABLE productions ADD COLUMN import_key text;
CREATE UNIQUE INDEX productions_live_by_import_key ON productions (enterprise_id, import_key)
    WHERE deleted_at IS NULL AND import_key IS NOT NULL;
