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
