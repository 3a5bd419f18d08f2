-- omero_upgrade 1.1 → 1.2 (ALTER EXTENSION omero_upgrade UPDATE). Committed, not generated.
\echo Use "ALTER EXTENSION omero_upgrade UPDATE TO '1.2'" to load this file. \quit
--
-- This script must turn an installed 1.1 into exactly what a fresh 1.2 install gives
-- (extension/sql/*.sql): test/tool/60-security-install.t installs 1.0, updates it (1.0 → 1.1 →
-- 1.2) and compares every member object with a fresh 1.2. Every change made to extension/sql/
-- during 1.2 is made here too, by the rules in the header of omero_upgrade--1.0--1.1.sql (README
-- "Install and upgrade scripts"). Like the install script it runs as the bootstrap superuser
-- with the updater's search_path (@extschema@, pg_temp): everything in it is qualified
-- (test/lib/sql-lint.pl checks it).

-- 60_site_sql.sql: the records of site SQL steps (new state table).
CREATE TABLE omero_upgrade.site_sql (
    file_name   pg_catalog.text PRIMARY KEY,
    sha256      pg_catalog.text NOT NULL
                CONSTRAINT site_sql_sha256_check
                CHECK (sha256 OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'::pg_catalog.text),
    applied_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    db_role     pg_catalog.name NOT NULL DEFAULT SESSION_USER,
    os_user     pg_catalog.text,
    host        pg_catalog.text,
    db_version  pg_catalog.text
);
COMMENT ON TABLE omero_upgrade.site_sql IS 'site SQL files applied by omero-upgrade db upgrade --site-sql: name, SHA-256, who, when';
SELECT omero_upgrade._grant_state('omero_upgrade.site_sql'::pg_catalog.regclass);
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.site_sql'::pg_catalog.regclass, ''::pg_catalog.text);

-- 70_history.sql: the history of changes (new state table, its sequence, two functions).
CREATE TABLE omero_upgrade.history (
    id           bigserial PRIMARY KEY,
    recorded_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    db_role      pg_catalog.name NOT NULL DEFAULT SESSION_USER,
    os_user      pg_catalog.text,
    host         pg_catalog.text,
    kind         pg_catalog.text NOT NULL
                 CONSTRAINT history_kind_check
                 CHECK (kind OPERATOR(pg_catalog.~) '^[a-z][a-z0-9-]{0,39}$'::pg_catalog.text),
    what         pg_catalog.text NOT NULL,
    from_version pg_catalog.text,
    to_version   pg_catalog.text,
    checksums    pg_catalog.jsonb NOT NULL DEFAULT '{}'::pg_catalog.jsonb,
    details      pg_catalog.jsonb NOT NULL DEFAULT '{}'::pg_catalog.jsonb
);
COMMENT ON TABLE omero_upgrade.history IS 'every change made by omero-upgrade and this extension: who, when, what, versions, checksums';
SELECT omero_upgrade._grant_state('omero_upgrade.history'::pg_catalog.regclass);
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.history'::pg_catalog.regclass, ''::pg_catalog.text);
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.history_id_seq'::pg_catalog.regclass, ''::pg_catalog.text);

-- One entry; returns its id. kind: a lower-case word (hop, site-sql, backup, restore, binaries,
-- rollback, …); what: in words; checksums: {"file": "<sha256>"}; os_user and host default to the
-- session's omero_upgrade.os_user / omero_upgrade.host settings, host then to the client's address.
CREATE FUNCTION @extschema@.omero_history_record(
    kind pg_catalog.text,
    what pg_catalog.text,
    from_version pg_catalog.text DEFAULT NULL,
    to_version pg_catalog.text DEFAULT NULL,
    checksums pg_catalog.jsonb DEFAULT NULL,
    details pg_catalog.jsonb DEFAULT NULL,
    os_user pg_catalog.text DEFAULT NULL,
    host pg_catalog.text DEFAULT NULL)
RETURNS pg_catalog.int8
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
INSERT INTO omero_upgrade.history (os_user, host, kind, what, from_version, to_version, checksums, details)
VALUES (COALESCE($7, CASE WHEN pg_catalog.current_setting('omero_upgrade.os_user'::pg_catalog.text, true)
                               OPERATOR(pg_catalog.<>) ''::pg_catalog.text
                          THEN pg_catalog.current_setting('omero_upgrade.os_user'::pg_catalog.text, true) END),
        COALESCE($8, CASE WHEN pg_catalog.current_setting('omero_upgrade.host'::pg_catalog.text, true)
                               OPERATOR(pg_catalog.<>) ''::pg_catalog.text
                          THEN pg_catalog.current_setting('omero_upgrade.host'::pg_catalog.text, true) END,
                 pg_catalog.host(pg_catalog.inet_client_addr()), 'local'::pg_catalog.text),
        $1, $2, $3, $4,
        COALESCE($5, '{}'::pg_catalog.jsonb), COALESCE($6, '{}'::pg_catalog.jsonb))
RETURNING id
$$;
COMMENT ON FUNCTION @extschema@.omero_history_record(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.jsonb, pg_catalog.text, pg_catalog.text) IS
  'records one change in the history (used by omero-upgrade); returns its id';

CREATE FUNCTION @extschema@.omero_history()
RETURNS TABLE (id pg_catalog.int8, recorded_at pg_catalog.timestamptz, db_role pg_catalog.name, os_user pg_catalog.text,
               host pg_catalog.text, kind pg_catalog.text, what pg_catalog.text, from_version pg_catalog.text,
               to_version pg_catalog.text, checksums pg_catalog.jsonb, details pg_catalog.jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT h.id, h.recorded_at, h.db_role, h.os_user, h.host, h.kind, h.what, h.from_version, h.to_version,
       h.checksums, h.details
  FROM omero_upgrade.history h
 ORDER BY h.id
$$;
COMMENT ON FUNCTION @extschema@.omero_history() IS
  'the history of changes made by omero-upgrade and this extension, oldest first';

-- 40_colors.sql: omero_colors_status() gained three columns (to_convert, to_restore, left_alone)
-- after 1.1 was released (put into omero_upgrade--1.0--1.1.sql as well): a changed result, so
-- DROP and CREATE (a 1.1 from its own install script still has the old one).
DROP FUNCTION @extschema@.omero_colors_status();
CREATE FUNCTION @extschema@.omero_colors_status()
RETURNS TABLE (direction pg_catalog.text, converted pg_catalog.int8, pending pg_catalog.int8, purged pg_catalog.int8, first_at pg_catalog.timestamptz,
               last_at pg_catalog.timestamptz, runs pg_catalog.int8, running_runs pg_catalog.int8, interrupted_runs pg_catalog.int8,
               to_convert pg_catalog.int8, to_restore pg_catalog.int8, left_alone pg_catalog.int8)
AS 'MODULE_PATHNAME', 'omero_colors_status' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_colors_status() IS
  'per direction: shapes converted (journaled), with purged originals; when; runs done, running, interrupted; what a run of every shape in that direction would do: pending = to_convert (formula) + to_restore (journaled originals), left_alone';
