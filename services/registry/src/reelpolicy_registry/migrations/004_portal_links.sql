-- One-time sign-in links to the portal (reelpolicy_registry.domain.portal_links).
-- Only the SHA-256 of a link's token is stored; redeeming finds the link by it and sets
-- redeemed_at in the same transaction that issues the session key (key_id), so a link
-- is redeemed once however many requests race for it.
CREATE TABLE portal_links (
    token_hash    text PRIMARY KEY,
    enterprise_id uuid        NOT NULL REFERENCES enterprises (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    redeemed_at   timestamptz,
    key_id        text  -- the session key the link was redeemed for
);
