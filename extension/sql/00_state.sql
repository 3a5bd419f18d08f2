-- The extension's own state (journals, archives, progress) lives in schema omero_upgrade, apart
-- from OMERO's tables in public; DROP EXTENSION removes it and leaves OMERO's schema as it was.
-- Functions run with the caller's rights (no SECURITY DEFINER). State objects belong to the
-- extension; the installing role (@extowner@) and the owner of OMERO's tables (the OMERO
-- database user, owner of dbpatch) get the rights they need on them.
CREATE SCHEMA omero_upgrade;
COMMENT ON SCHEMA omero_upgrade IS 'state of the omero_upgrade extension (journals, archives, progress)';
GRANT USAGE ON SCHEMA omero_upgrade TO @extowner@;

-- Grants rights on a state table to the installing role and to the owner of dbpatch.
-- Used by later parts of this script; not meant for users.
CREATE FUNCTION omero_upgrade._grant_state(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    omero_owner name;
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', tbl, '@extowner@');
    SELECT pg_catalog.pg_get_userbyid(c.relowner) INTO omero_owner
      FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass('dbpatch');
    IF omero_owner IS NOT NULL THEN
        EXECUTE format('GRANT USAGE ON SCHEMA omero_upgrade TO %I', omero_owner);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', tbl, omero_owner);
    END IF;
END;
$$;
REVOKE ALL ON FUNCTION omero_upgrade._grant_state(regclass) FROM PUBLIC;
