-- API keys carry a version (1 when issued, one more per change) so that a replayed,
-- republished or reordered api_key.changed event can never bring an older state back.
-- Keys existing before this migration had at most two states: issued (1), revoked (2).
ALTER TABLE api_keys ADD COLUMN version bigint NOT NULL DEFAULT 0;
UPDATE api_keys SET version = CASE WHEN revoked_at IS NULL THEN 1 ELSE 2 END;
