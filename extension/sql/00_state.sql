-- The extension's own state (journals, archives, progress) lives in schema omero_upgrade, apart
-- from OMERO's tables in public; DROP EXTENSION removes it and leaves OMERO's schema as it was.
-- Functions run with the caller's rights (no SECURITY DEFINER). State objects belong to the
-- extension; the installing role (@extowner@) and the owner of OMERO's tables (the OMERO
-- database user, owner of dbpatch) get the rights they need on them.
CREATE SCHEMA omero_upgrade;
COMMENT ON SCHEMA omero_upgrade IS 'state of the omero_upgrade extension (journals, archives, progress)';
GRANT USAGE ON SCHEMA omero_upgrade TO @extowner@;

-- Grants rights on a state table (and its sequences) to the installing role and to the owner of
-- dbpatch.
-- Used by later parts of this script; not meant for users.
CREATE FUNCTION omero_upgrade._grant_state(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    omero_owner name;
    grantee name;
    seq regclass;
BEGIN
    SELECT pg_catalog.pg_get_userbyid(c.relowner) INTO omero_owner
      FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass('dbpatch');
    FOREACH grantee IN ARRAY ARRAY['@extowner@'::name] || omero_owner LOOP
        CONTINUE WHEN grantee IS NULL;
        EXECUTE format('GRANT USAGE ON SCHEMA omero_upgrade TO %I', grantee);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', tbl, grantee);
        -- The table's serial/identity sequences: nextval for inserts, SELECT for pg_dump.
        FOR seq IN SELECT d.objid::regclass FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refobjid = tbl
                      AND d.deptype IN ('a', 'i')
                      AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = d.objid) = 'S' LOOP
            EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO %I', seq, grantee);
        END LOOP;
    END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION omero_upgrade._grant_state(regclass) FROM PUBLIC;
