-- omero_upgrade 1.2 → 1.3 (ALTER EXTENSION omero_upgrade UPDATE). Committed, not generated.
\echo Use "ALTER EXTENSION omero_upgrade UPDATE TO '1.3'" to load this file. \quit
--
-- This script must turn an installed 1.2 into exactly what a fresh 1.3 install gives
-- (extension/sql/*.sql): test/tool/60-security-install.t updates 1.0, 1.1 and 1.2 and compares
-- every member object with a fresh 1.3. Every change made to extension/sql/ during 1.3 is made
-- here too, by the rules in the header of omero_upgrade--1.0--1.1.sql (README "Install and
-- upgrade scripts"). Like the install script it runs as the bootstrap superuser with the
-- updater's search_path (@extschema@, pg_temp): everything in it is qualified
-- (test/lib/sql-lint.pl checks it).

-- 40_colors.sql: omero_colors_convert gained jobs (parallel batches in background workers): a
-- new argument list, so DROP and CREATE.
DROP PROCEDURE @extschema@.omero_colors_convert(pg_catalog.text, pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int4, pg_catalog.bool, pg_catalog.text);
CREATE PROCEDURE @extschema@.omero_colors_convert(direction pg_catalog.text, roi_ids pg_catalog.int8[] DEFAULT NULL, image_ids pg_catalog.int8[] DEFAULT NULL,
                                      shape_ids pg_catalog.int8[] DEFAULT NULL, batch_size pg_catalog.int4 DEFAULT 50000,
                                      dry_run pg_catalog.bool DEFAULT false, method pg_catalog.text DEFAULT 'auto',
                                      jobs pg_catalog.int4 DEFAULT 1)
AS 'MODULE_PATHNAME', 'omero_colors_convert' LANGUAGE C;
COMMENT ON PROCEDURE @extschema@.omero_colors_convert(pg_catalog.text, pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int4, pg_catalog.bool, pg_catalog.text, pg_catalog.int4) IS
  'convert shape colours (argb_to_rgba or rgba_to_argb), journaled, committing per batch (jobs => N: in N background workers at once; or, every shape with the database to itself, one rewrite); CALL it again to resume';
