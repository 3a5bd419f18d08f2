-- The history of every change omero-upgrade and this extension make (README "History"): hops,
-- site SQL steps, orphan deletes and restores, colour runs, moves to wells, backups, restores,
-- binaries swaps, rollbacks. The extension's own functions record their runs in the caller's
-- transaction (extension/history.cpp); the tool records the rest through omero_history_record().
-- Who: db_role is the session user (not a parameter); os_user and host are what the client says
-- (omero-upgrade: its OS user and host name; set for a session with the settings
-- omero_upgrade.os_user and omero_upgrade.host), else NULL and the client's address.
-- Like every state table, only the state roles (the extension's owner, the database's owner, the
-- OMERO database user) may read or write it: nobody else can read the history or forge an entry.
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
