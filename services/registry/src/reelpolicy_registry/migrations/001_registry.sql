-- Enterprises: attributes as validated (reelpolicy_contracts.subjects.EnterpriseAttributes).
-- Soft delete: deleted_at is set and the row stays (its events say deleted: true).
CREATE TABLE enterprises (
    id           uuid PRIMARY KEY,
    credit_code  text        NOT NULL,
    attributes   jsonb       NOT NULL,
    region_since date,
    version      integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
-- One live enterprise per credit code (a deleted one's code may be registered again).
CREATE UNIQUE INDEX enterprises_credit_code ON enterprises (credit_code) WHERE deleted_at IS NULL;

-- Productions: attributes as validated (ProductionAttributes); enterprise_id is theirs.
CREATE TABLE productions (
    id            uuid PRIMARY KEY,
    enterprise_id uuid        NOT NULL REFERENCES enterprises (id),
    external_id   text,
    attributes    jsonb       NOT NULL,
    version       integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
-- Idempotent import: one live production per (enterprise, external id).
CREATE UNIQUE INDEX productions_external_id ON productions (enterprise_id, external_id)
    WHERE deleted_at IS NULL AND external_id IS NOT NULL;
CREATE INDEX productions_enterprise ON productions (enterprise_id, id);
