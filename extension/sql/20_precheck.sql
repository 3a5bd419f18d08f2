-- Upgrade readiness (extension/precheck.cpp, extension/sv5_trace.cpp).

CREATE FUNCTION omero_precheck_report(target text DEFAULT NULL)
RETURNS TABLE (check_name text, status text, detail text)
AS 'MODULE_PATHNAME', 'omero_precheck_report' LANGUAGE C STABLE;
COMMENT ON FUNCTION omero_precheck_report(text) IS
  'one row per upgrade readiness check (status ok, warning or failed); never raises on a failed check';

CREATE FUNCTION omero_precheck(target text DEFAULT NULL) RETURNS text
AS 'MODULE_PATHNAME', 'omero_precheck' LANGUAGE C STABLE;
COMMENT ON FUNCTION omero_precheck(text) IS
  'upgrade readiness: a NOTICE per check, one error listing every problem, or YOUR DATABASE IS READY FOR UPGRADE TO VERSION <target>';

CREATE FUNCTION omero_filename_trace_2017_sv5()
RETURNS TABLE (repo text, path text, ids bigint[], count int)
AS 'MODULE_PATHNAME', 'omero_filename_trace_2017_sv5' LANGUAGE C STABLE;
COMMENT ON FUNCTION omero_filename_trace_2017_sv5() IS
  'groups of originalfile ids sharing a repo and a normalized path: traces of security vulnerability 2017-SV5-filename-2';
