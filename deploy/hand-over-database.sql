-- Hands a service's database made before the per-service roles (owned by the superuser,
-- POSTGRES_USER) to the service's own role: the database and everything its migrations
-- made in it. Run as the superuser in that database, once the role exists
-- (deploy/runbook.md, "PostgreSQL roles"):
--   psql -U reelpolicy -d reelpolicy_<svc> -v role=reelpolicy_<svc> -f hand-over-database.sql
\set ON_ERROR_STOP on
ALTER DATABASE :"DBNAME" OWNER TO :"role";
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
SELECT format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, :'role')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d  -- a column's sequence follows its table
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype IN ('a', 'i'))
UNION ALL
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'role')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public'
\gexec
