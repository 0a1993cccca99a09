-- Runs once, on the first start of an empty data directory (docker-entrypoint-initdb.d
-- runs it with psql as POSTGRES_USER, the superuser, which only the operator uses).
-- One database per service, owned by the service's own login role: a role owns nothing
-- but its database and cannot connect to another's. The passwords come from the postgres
-- container's environment (compose requires them). A database or role added later, or a
-- data directory made before the per-service roles: deploy/runbook.md.
\set ON_ERROR_STOP on

\getenv registry_password REGISTRY_DB_PASSWORD
\getenv ingest_password INGEST_DB_PASSWORD
\getenv rules_password RULES_DB_PASSWORD
\getenv notify_password NOTIFY_DB_PASSWORD
\getenv portal_password PORTAL_DB_PASSWORD

-- Nobody connects to a database (or makes temporary tables there) unless granted:
-- PUBLIC loses the defaults, each owner keeps its own.
REVOKE ALL ON DATABASE postgres FROM PUBLIC;

CREATE ROLE reelpolicy_registry LOGIN PASSWORD :'registry_password';
CREATE DATABASE reelpolicy_registry OWNER reelpolicy_registry;
REVOKE ALL ON DATABASE reelpolicy_registry FROM PUBLIC;

CREATE ROLE reelpolicy_ingest LOGIN PASSWORD :'ingest_password';
CREATE DATABASE reelpolicy_ingest OWNER reelpolicy_ingest;
REVOKE ALL ON DATABASE reelpolicy_ingest FROM PUBLIC;

CREATE ROLE reelpolicy_rules LOGIN PASSWORD :'rules_password';
CREATE DATABASE reelpolicy_rules OWNER reelpolicy_rules;
REVOKE ALL ON DATABASE reelpolicy_rules FROM PUBLIC;

CREATE ROLE reelpolicy_notify LOGIN PASSWORD :'notify_password';
CREATE DATABASE reelpolicy_notify OWNER reelpolicy_notify;
REVOKE ALL ON DATABASE reelpolicy_notify FROM PUBLIC;

CREATE ROLE reelpolicy_portal LOGIN PASSWORD :'portal_password';
CREATE DATABASE reelpolicy_portal OWNER reelpolicy_portal;
REVOKE ALL ON DATABASE reelpolicy_portal FROM PUBLIC;
