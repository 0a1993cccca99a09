-- API keys (hashed). The registry issues and revokes them and publishes the change;
-- every other service keeps this table as its own projection of those events.
CREATE TABLE api_keys (
    key_id        text PRIMARY KEY,
    key_hash      text        NOT NULL UNIQUE,
    role          text        NOT NULL CHECK (role IN ('operator', 'company')),
    enterprise_id text,
    label         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK ((role = 'company') = (enterprise_id IS NOT NULL))
);
