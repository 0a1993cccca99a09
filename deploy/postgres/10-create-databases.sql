-- Runs once, on the first start of an empty data directory (docker-entrypoint-initdb.d).
-- One database per service; the services never share one. POSTGRES_USER (reelpolicy)
-- owns them all. A database added later must be created by hand (see deploy/runbook.md).
CREATE DATABASE reelpolicy_registry;
CREATE DATABASE reelpolicy_ingest;
CREATE DATABASE reelpolicy_rules;
CREATE DATABASE reelpolicy_notify;
