-- Database version and upgrade path (extension/versions.cpp).

CREATE FUNCTION omero_db_version() RETURNS text
AS 'MODULE_PATHNAME', 'omero_db_version' LANGUAGE C STABLE;
COMMENT ON FUNCTION omero_db_version() IS
  'version of this OMERO database from its newest dbpatch row, e.g. OMERO5.3__1';

CREATE FUNCTION omero_upgrade_path(target text DEFAULT NULL)
RETURNS TABLE (step int, from_version text, to_version text, script text, precheck_script text,
               pg_prerequisite int)
AS 'MODULE_PATHNAME', 'omero_upgrade_path' LANGUAGE C STABLE;
COMMENT ON FUNCTION omero_upgrade_path(text) IS
  'ordered upgrade hops (official scripts, paths relative to the server directory) from the current version to target (default: newest known)';
