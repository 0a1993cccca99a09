-- One index instead of two for productions: unique (enterprise, external id) among live
-- rows (NULL external ids never conflict), which also serves lookups by enterprise.
-- Fewer indexes to maintain makes the bulk import faster.
DROP INDEX productions_enterprise;
DROP INDEX productions_external_id;
CREATE UNIQUE INDEX productions_live_by_enterprise ON productions (enterprise_id, external_id)
    WHERE deleted_at IS NULL;
