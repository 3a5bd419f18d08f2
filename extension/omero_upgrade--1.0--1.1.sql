-- omero_upgrade 1.0 → 1.1 (ALTER EXTENSION omero_upgrade UPDATE). Committed, not generated.
\echo Use "ALTER EXTENSION omero_upgrade UPDATE TO '1.1'" to load this file. \quit
--
-- This script must turn an installed 1.0 into exactly what a fresh 1.1 install gives
-- (extension/sql/*.sql): test/tool/60-security-install.t installs 1.0, updates it and compares
-- every member object (definitions, SET options, ACLs, comments, constraints, defaults) with a
-- fresh 1.1. Every change made to extension/sql/ during 1.1 is made here too (README "Install
-- and upgrade scripts"):
--   - a new function or procedure: the same CREATE FUNCTION (plain CREATE: an object someone
--     planted under that name makes the update fail) and its COMMENT and REVOKE/GRANT;
--   - a changed body or attributes of one of ours: CREATE OR REPLACE (PostgreSQL refuses to
--     replace an object that is not already a member of this extension);
--   - a changed signature or result type: DROP FUNCTION, then the new CREATE as above;
--   - a new state table: CREATE TABLE, omero_upgrade._grant_state(), pg_extension_config_dump();
--     new columns of a state table: ALTER TABLE … ADD COLUMN, and the install script lists them
--     last, in the same order, so that both give the same column order.
-- Like the install script it runs as the bootstrap superuser with the updater's search_path
-- (@extschema@, pg_temp): everything in it is qualified (test/lib/sql-lint.pl checks it).

-- _grant_state(): every function and operator qualified (1.0 resolved format(), || and = through
-- the installer's search_path), search_path pinned, and the grantees read from pg_extension.
CREATE OR REPLACE FUNCTION omero_upgrade._grant_state(tbl pg_catalog.regclass) RETURNS pg_catalog.void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ext_owner pg_catalog.name;
    db_owner pg_catalog.name;
    omero_owner pg_catalog.name;
    grantee pg_catalog.name;
    seq pg_catalog.regclass;
BEGIN
    SELECT pg_catalog.pg_get_userbyid(e.extowner) INTO ext_owner
      FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'omero_upgrade'::pg_catalog.name;
    SELECT pg_catalog.pg_get_userbyid(d.datdba) INTO db_owner
      FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database();
    SELECT pg_catalog.pg_get_userbyid(c.relowner) INTO omero_owner
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) e.extnamespace
     WHERE e.extname OPERATOR(pg_catalog.=) 'omero_upgrade'::pg_catalog.name
       AND c.relname OPERATOR(pg_catalog.=) 'dbpatch'::pg_catalog.name
       AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::pg_catalog."char"[]);
    FOREACH grantee IN ARRAY ARRAY[ext_owner, db_owner, omero_owner] LOOP
        CONTINUE WHEN grantee IS NULL;
        EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA omero_upgrade TO %I', grantee);
        EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', tbl, grantee);
        -- The table's serial/identity sequences: nextval for inserts, SELECT for pg_dump.
        FOR seq IN SELECT d.objid::pg_catalog.regclass
                     FROM pg_catalog.pg_depend d
                     JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) d.objid
                    WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
                      AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
                      AND d.refobjid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid
                      AND d.deptype OPERATOR(pg_catalog.=) ANY (ARRAY['a', 'i']::pg_catalog."char"[])
                      AND s.relkind OPERATOR(pg_catalog.=) 'S'::pg_catalog."char" LOOP
            EXECUTE pg_catalog.format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO %I', seq, grantee);
        END LOOP;
    END LOOP;
END;
$$;

-- The grants 1.1 gives (1.0 did not grant to the database's owner): applied again to each state
-- table of 1.0 so that an updated 1.0 has exactly a fresh 1.1's.
SELECT omero_upgrade._grant_state('omero_upgrade.orphan_run'::pg_catalog.regclass);
SELECT omero_upgrade._grant_state('omero_upgrade.orphan_archive'::pg_catalog.regclass);
SELECT omero_upgrade._grant_state('omero_upgrade.color_runs'::pg_catalog.regclass);
SELECT omero_upgrade._grant_state('omero_upgrade.color_journal'::pg_catalog.regclass);

-- omero_colors_status(): pending counts what a run in that direction would do (1.0: every shape
-- not converted in that direction), and three columns more (to_convert, to_restore, left_alone):
-- a changed result, so DROP and CREATE.
DROP FUNCTION @extschema@.omero_colors_status();
CREATE FUNCTION @extschema@.omero_colors_status()
RETURNS TABLE (direction pg_catalog.text, converted pg_catalog.int8, pending pg_catalog.int8, purged pg_catalog.int8, first_at pg_catalog.timestamptz,
               last_at pg_catalog.timestamptz, runs pg_catalog.int8, running_runs pg_catalog.int8, interrupted_runs pg_catalog.int8,
               to_convert pg_catalog.int8, to_restore pg_catalog.int8, left_alone pg_catalog.int8)
AS 'MODULE_PATHNAME', 'omero_colors_status' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_colors_status() IS
  'per direction: shapes converted (journaled), with purged originals; when; runs done, running, interrupted; what a run of every shape in that direction would do: pending = to_convert (formula) + to_restore (journaled originals), left_alone';
