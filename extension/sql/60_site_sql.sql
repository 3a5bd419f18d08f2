-- Site SQL steps (omero-upgrade db upgrade --site-sql DIR): one row per file applied, written by
-- the tool in the same transaction as the file (README "omero-upgrade db upgrade --site-sql").
-- A file whose SHA-256 no longer matches its row is refused. Rows are the tool's to write: the
-- OMERO database user (who runs the files) and the other state roles may; nobody else.
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
