-- Server-side sessions of the portal, shared by its replicas. The cookie carries a
-- random session id (signed); the table keeps only its SHA-256, so a copy of the table
-- opens no session. The company's API key is kept encrypted (Fernet, PORTAL_KEY_ENCRYPTION_KEYS).
CREATE TABLE sessions (
    id_hash       bytea       PRIMARY KEY,
    role          text        NOT NULL CHECK (role IN ('company', 'operator')),
    enterprise_id text,
    api_key       bytea       NOT NULL,
    link_key_id   text,  -- the key a sign-in link issued: revoked at registry on sign-out
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    CHECK ((role = 'company') = (enterprise_id IS NOT NULL))
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
