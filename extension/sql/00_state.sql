-- The extension's own state (journals, archives, progress) lives in schema omero_upgrade, apart
-- from OMERO's tables in public; DROP EXTENSION removes it and leaves OMERO's schema as it was.
-- Functions run with the caller's rights (no SECURITY DEFINER). State objects belong to the
-- extension; the installing role (@extowner@), the database owner and the owner of OMERO's
-- tables (the OMERO database user, owner of dbpatch) get the rights they need on them.
--
-- This script runs as the bootstrap superuser (a trusted extension) with the installer's
-- search_path (@extschema@, pg_temp): every name in it is qualified (README "Security model";
-- test/lib/sql-lint.pl checks it, test/tool/60-security-install.t attacks it).
CREATE SCHEMA omero_upgrade;
COMMENT ON SCHEMA omero_upgrade IS 'state of the omero_upgrade extension (journals, archives, progress)';
GRANT USAGE ON SCHEMA omero_upgrade TO @extowner@;

-- Grants rights on a state table (and its sequences) to the extension's owner, to the database's
-- owner and to the owner of dbpatch in the extension's schema (the OMERO database user: usually
-- the database's owner too, which also covers pg_restore, where the extension is created before
-- dbpatch). All three are read from the catalog, so the body is the same whoever installs or
-- updates the extension; none of them gains anything (the database owner may install and drop
-- the extension anyway). Used by later parts of this script and by upgrade scripts; not for users.
CREATE FUNCTION omero_upgrade._grant_state(tbl pg_catalog.regclass) RETURNS pg_catalog.void
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
REVOKE ALL ON FUNCTION omero_upgrade._grant_state(pg_catalog.regclass) FROM PUBLIC;
