-- Upgrade readiness (extension/precheck.cpp, extension/sv5_trace.cpp).

CREATE FUNCTION @extschema@.omero_precheck_report(target pg_catalog.text DEFAULT NULL)
RETURNS TABLE (check_name pg_catalog.text, status pg_catalog.text, detail pg_catalog.text)
AS 'MODULE_PATHNAME', 'omero_precheck_report' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_precheck_report(pg_catalog.text) IS
  'one row per upgrade readiness check (status ok, warning or failed); never raises on a failed check';

CREATE FUNCTION @extschema@.omero_precheck(target pg_catalog.text DEFAULT NULL) RETURNS pg_catalog.text
AS 'MODULE_PATHNAME', 'omero_precheck' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_precheck(pg_catalog.text) IS
  'upgrade readiness: a NOTICE per check, one error listing every problem, or YOUR DATABASE IS READY FOR UPGRADE TO VERSION <target>';

CREATE FUNCTION @extschema@.omero_filename_trace_2017_sv5()
RETURNS TABLE (repo pg_catalog.text, path pg_catalog.text, ids pg_catalog.int8[], count pg_catalog.int4)
AS 'MODULE_PATHNAME', 'omero_filename_trace_2017_sv5' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_filename_trace_2017_sv5() IS
  'groups of originalfile ids sharing a repo and a normalized path: traces of security vulnerability 2017-SV5-filename-2';
