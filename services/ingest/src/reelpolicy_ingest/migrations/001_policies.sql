-- Every version of every policy document, exactly as validated (canonical form).
CREATE TABLE policy_versions (
    policy_id   text        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    document    jsonb       NOT NULL,
    content_sha text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (policy_id, version)
);

-- One row per policy id: its latest version and whether it is revoked.
CREATE TABLE policies (
    policy_id      text PRIMARY KEY,
    latest_version integer     NOT NULL,
    revoked_at     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (policy_id, latest_version) REFERENCES policy_versions (policy_id, version)
);
