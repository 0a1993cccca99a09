-- The secret feed addresses (/feeds/{token}/deadlines.ics, /feeds/{token}/changes.atom).
-- The table keeps the token's SHA-256 only, so a copy of it opens no feed, and the
-- company's API key the feed reads with, encrypted (Fernet, PORTAL_KEY_ENCRYPTION_KEYS).
-- One live token per enterprise: minting a new one revokes the old one.
CREATE TABLE feed_tokens (
    token_hash    bytea       PRIMARY KEY,
    enterprise_id text        NOT NULL,
    api_key       bytea       NOT NULL,
    locale        text        NOT NULL CHECK (locale IN ('zh-CN', 'en')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE UNIQUE INDEX feed_tokens_live ON feed_tokens (enterprise_id) WHERE revoked_at IS NULL;
