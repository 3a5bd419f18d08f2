-- omero_upgrade 1.3 → 1.4 (ALTER EXTENSION omero_upgrade UPDATE). Committed, not generated.
\echo Use "ALTER EXTENSION omero_upgrade UPDATE TO '1.4'" to load this file. \quit
--
-- This script must turn an installed 1.3 into exactly what a fresh 1.4 install gives
-- (extension/sql/*.sql): test/tool/60-security-install.t updates 1.0, 1.1, 1.2 and 1.3 and
-- compares every member object with a fresh 1.4. Every change made to extension/sql/ during 1.4
-- is made here too, by the rules in the header of omero_upgrade--1.0--1.1.sql (README "Install
-- and upgrade scripts"). Like the install script it runs as the bootstrap superuser with the
-- updater's search_path (@extschema@, pg_temp): everything in it is qualified
-- (test/lib/sql-lint.pl checks it).
--
-- 1.4: the state the tool used to read from the tables themselves, through functions (issue 19:
-- the tool reads none of the extension's private tables): the colour runs, the orphan delete
-- runs, the site SQL records, and the recording of a site SQL file.

-- 40_colors.sql
CREATE FUNCTION @extschema@.omero_colors_runs()
RETURNS TABLE (run_id pg_catalog.int8, direction pg_catalog.text, method pg_catalog.text, scope pg_catalog.jsonb,
               started_at pg_catalog.timestamptz, finished_at pg_catalog.timestamptz, backend_pid pg_catalog.int4,
               run_by pg_catalog.name, selected pg_catalog.int8, converted pg_catalog.int8, restored pg_catalog.int8,
               already pg_catalog.int8, changed pg_catalog.int8, purged pg_catalog.int8, raced pg_catalog.int8,
               resumed_by pg_catalog.int8)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.run_id, r.direction, r.method, r.scope, r.started_at, r.finished_at, r.backend_pid, r.run_by, r.selected,
       r.converted, r.restored, r.already, r.changed, r.purged, r.raced, r.resumed_by
  FROM omero_upgrade.color_runs r ORDER BY r.run_id
$$;
COMMENT ON FUNCTION @extschema@.omero_colors_runs() IS
  'every colour conversion run with its counts, oldest first (finished_at NULL: running or interrupted)';

-- 30_orphans.sql
CREATE FUNCTION @extschema@.omero_orphans_runs()
RETURNS TABLE (run_id pg_catalog.int8, status pg_catalog.text, run_by pg_catalog.name, include_ns pg_catalog.text[],
               batch_size pg_catalog.int4, scanned pg_catalog.int8, deleted pg_catalog.int8, skipped pg_catalog.int8,
               bytes pg_catalog.int8, started_at pg_catalog.timestamptz, finished_at pg_catalog.timestamptz,
               restored_at pg_catalog.timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.id, r.status, r.run_by, r.include_ns, r.batch_size, r.scanned, r.deleted, r.skipped, r.bytes, r.started_at,
       r.finished_at, r.restored_at
  FROM omero_upgrade.orphan_run r ORDER BY r.id
$$;
COMMENT ON FUNCTION @extschema@.omero_orphans_runs() IS
  'every orphan delete run (running, deleted or restored) with its counts, oldest first';

-- 60_site_sql.sql
CREATE FUNCTION @extschema@.omero_site_sql_records()
RETURNS TABLE (file_name pg_catalog.text, sha256 pg_catalog.text, applied_at pg_catalog.timestamptz, db_role pg_catalog.name,
               os_user pg_catalog.text, host pg_catalog.text, db_version pg_catalog.text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT s.file_name, s.sha256, s.applied_at, s.db_role, s.os_user, s.host, s.db_version
  FROM omero_upgrade.site_sql s ORDER BY s.file_name
$$;
COMMENT ON FUNCTION @extschema@.omero_site_sql_records() IS
  'the site SQL files applied to this database (omero-upgrade site-sql), by file name';

CREATE FUNCTION @extschema@.omero_site_sql_record(file_name pg_catalog.text, sha256 pg_catalog.text, os_user pg_catalog.text,
                                                  host pg_catalog.text, db_version pg_catalog.text)
RETURNS pg_catalog.void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
INSERT INTO omero_upgrade.site_sql (file_name, sha256, os_user, host, db_version) VALUES ($1, $2, $3, $4, $5)
$$;
COMMENT ON FUNCTION @extschema@.omero_site_sql_record(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text) IS
  'records a site SQL file as applied (omero-upgrade site-sql calls it in the file''s own transaction); a file recorded already is an error';
