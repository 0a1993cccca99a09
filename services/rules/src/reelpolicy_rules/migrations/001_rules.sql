-- Rules' own projection of the policy and registry topics. Every write takes the next
-- value of rules_change_seq, so a cache can fetch only what changed since it last looked.
CREATE SEQUENCE rules_change_seq;

CREATE TABLE policies (
    policy_id  text PRIMARY KEY,
    version    integer     NOT NULL,
    document   jsonb       NOT NULL,
    revoked    boolean     NOT NULL DEFAULT false,
    seq        bigint      NOT NULL DEFAULT nextval('rules_change_seq'),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX policies_seq ON policies (seq);

CREATE TABLE enterprises (
    enterprise_id text PRIMARY KEY,
    version       integer NOT NULL,
    deleted       boolean NOT NULL DEFAULT false,
    attributes    jsonb   NOT NULL,
    seq           bigint  NOT NULL DEFAULT nextval('rules_change_seq')
);
CREATE INDEX enterprises_seq ON enterprises (seq);

CREATE TABLE productions (
    production_id text PRIMARY KEY,
    enterprise_id text    NOT NULL,
    version       integer NOT NULL,
    deleted       boolean NOT NULL DEFAULT false,
    attributes    jsonb   NOT NULL,
    seq           bigint  NOT NULL DEFAULT nextval('rules_change_seq')
);
CREATE INDEX productions_seq ON productions (seq);
CREATE INDEX productions_enterprise ON productions (enterprise_id);

-- Current results, only eligible and unknown ones: an absent row means ineligible.
-- policy_version is the version that last changed the row (the API shows the current one).
CREATE TABLE results (
    subject_type   text    NOT NULL CHECK (subject_type IN ('enterprise', 'production')),
    subject_id     text    NOT NULL,
    policy_id      text    NOT NULL,
    enterprise_id  text    NOT NULL,
    policy_version integer NOT NULL,
    status         text    NOT NULL CHECK (status IN ('eligible', 'unknown')),
    amount_cny     bigint,
    missing_fields text[]  NOT NULL DEFAULT '{}',
    explanation    jsonb   NOT NULL DEFAULT '{}'::jsonb,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_id, policy_id)
);
CREATE INDEX results_enterprise ON results (enterprise_id);
CREATE INDEX results_policy ON results (policy_id);

-- Every emitted change, for GET .../history.
CREATE TABLE result_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_id      text    NOT NULL,
    policy_id       text    NOT NULL,
    enterprise_id   text    NOT NULL,
    policy_version  integer NOT NULL,
    previous_status text,
    status          text    NOT NULL,
    previous_amount_cny bigint,
    amount_cny      bigint,
    cause           text    NOT NULL,
    event_id        uuid    NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX result_history_subject ON result_history (subject_id, policy_id, id);

-- The scheduler's memory: the last day (in the configured time zone) evaluated.
CREATE TABLE clock_state (
    id       integer PRIMARY KEY CHECK (id = 1),
    last_day date NOT NULL
);
