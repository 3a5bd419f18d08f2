-- Database version and upgrade path (extension/versions.cpp).

CREATE FUNCTION @extschema@.omero_db_version() RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'omero_db_version' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_db_version() IS
  'version of this OMERO database from its newest dbpatch row, e.g. OMERO5.3__1';

CREATE FUNCTION @extschema@.omero_upgrade_path(target pg_catalog.text DEFAULT NULL)
RETURNS TABLE (step pg_catalog.int4, from_version pg_catalog.text, to_version pg_catalog.text, script pg_catalog.text,
               precheck_script pg_catalog.text, pg_prerequisite pg_catalog.int4)
AS 'MODULE_PATHNAME', 'omero_upgrade_path' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_upgrade_path(pg_catalog.text) IS
  'ordered upgrade hops (official scripts, paths relative to the server directory) from the current version to target (default: newest known)';
