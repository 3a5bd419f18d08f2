-- omero_upgrade 1.0: the install script as released, frozen. It is the script make generated
-- from extension/sql/*.sql at commit 2ee457b (below, unchanged from its first line on); never
-- edit it. It is NOT installed by `make install`: its _grant_state() calls format() and || and
-- = through the installer's search_path, so a database owner who plants public.format(text, name)
-- and installs this version becomes superuser (fixed in 1.1). It is kept to test the upgrade
-- path: test/tool/60-security-install.t copies it into its private cluster, installs 1.0, runs
-- ALTER EXTENSION omero_upgrade UPDATE and compares the result with a fresh 1.1.
-- generated from extension/sql/*.sql by make; edit those files instead
\echo Use "CREATE EXTENSION omero_upgrade" to load this file. \quit

-- extension/sql/00_state.sql
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

-- extension/sql/10_versions.sql
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

-- extension/sql/20_precheck.sql
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

-- extension/sql/30_orphans.sql
-- Orphan annotations (extension/orphans.cpp): the official delete-ns-orphans rule as a scan, a
-- summary, an archived batched delete and a restore.

-- One row per delete run. Ids come from max(id) + 1 under a table lock (no sequence to grant).
CREATE TABLE omero_upgrade.orphan_run (
    id          bigint PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at timestamptz,
    run_by      name NOT NULL DEFAULT CURRENT_USER,
    status      text NOT NULL CHECK (status IN ('running', 'deleted', 'restored')),
    include_ns  text[],
    batch_size  int NOT NULL,
    scanned     bigint NOT NULL DEFAULT 0,  -- orphans found by the scan
    deleted     bigint NOT NULL DEFAULT 0,  -- rows moved to the archive
    skipped     bigint NOT NULL DEFAULT 0,  -- no longer orphans at delete time (linked meanwhile)
    bytes       bigint NOT NULL DEFAULT 0,  -- sum of pg_column_size of the deleted rows
    restored_at timestamptz
);
COMMENT ON TABLE omero_upgrade.orphan_run IS 'omero_orphans_delete runs: status running (interrupted if no longer running), deleted or restored';

-- The deleted annotation rows, whole, as jsonb row images (to_jsonb of the row): they survive
-- later changes to OMERO's annotation table, and restore puts them back column by column.
CREATE TABLE omero_upgrade.orphan_archive (
    run_id        bigint NOT NULL REFERENCES omero_upgrade.orphan_run (id),
    annotation_id bigint NOT NULL,
    row_image     jsonb NOT NULL,
    PRIMARY KEY (run_id, annotation_id)
);
COMMENT ON TABLE omero_upgrade.orphan_archive IS 'annotation rows deleted by omero_orphans_delete, keyed by run and annotation id';

SELECT omero_upgrade._grant_state('omero_upgrade.orphan_run');
SELECT omero_upgrade._grant_state('omero_upgrade.orphan_archive');
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.orphan_run', '');
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.orphan_archive', '');

CREATE FUNCTION omero_orphans_references()
RETURNS TABLE (table_name text, columns text, kind text, constraint_name text)
AS 'MODULE_PATHNAME', 'omero_orphans_references' LANGUAGE C STABLE;
COMMENT ON FUNCTION omero_orphans_references() IS
  'foreign keys into annotation, from the catalog: kind link (child of an <object>annotationlink), link parent (annotationannotationlink.parent) or other (keeps the rows it references)';

CREATE FUNCTION omero_orphans_scan(include_ns text[] DEFAULT NULL)
RETURNS TABLE (id bigint, discriminator text, ns text, owner_id bigint, group_id bigint,
               creation_time timestamp)
AS 'MODULE_PATHNAME', 'omero_orphans_scan' LANGUAGE C STABLE;
COMMENT ON FUNCTION omero_orphans_scan(text[]) IS
  'orphan annotations under the official delete-ns-orphans rule; include_ns adds exact custom namespaces (never by default)';

CREATE FUNCTION omero_orphans_summary(include_ns text[] DEFAULT NULL)
RETURNS TABLE (kind text, discriminator text, ns_kind text, annotations bigint, bytes bigint, detail text)
AS 'MODULE_PATHNAME', 'omero_orphans_summary' LANGUAGE C STABLE;
COMMENT ON FUNCTION omero_orphans_summary(text[]) IS
  'orphans per discriminator and namespace kind, the total a delete would remove, and the other foreign keys that keep rows';

CREATE FUNCTION omero_orphans_delete(dry_run boolean DEFAULT true, batch_size int DEFAULT 10000,
                                     include_ns text[] DEFAULT NULL, fast boolean DEFAULT false)
RETURNS TABLE (run_id bigint, dry_run boolean, scanned bigint, deleted bigint, skipped bigint,
               bytes bigint, batches int)
AS 'MODULE_PATHNAME', 'omero_orphans_delete' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION omero_orphans_delete(boolean, int, text[], boolean) IS
  'deletes the orphan annotations (dry_run: only counts), archiving each row; one transaction, batches of batch_size; fast (superuser): our re-check instead of the per-row foreign-key triggers';

CREATE PROCEDURE omero_orphans_delete_batches(dry_run boolean DEFAULT true, batch_size int DEFAULT 10000,
                                              include_ns text[] DEFAULT NULL, fast boolean DEFAULT false)
AS 'MODULE_PATHNAME', 'omero_orphans_delete_batches' LANGUAGE C;
COMMENT ON PROCEDURE omero_orphans_delete_batches(boolean, int, text[], boolean) IS
  'as omero_orphans_delete, committing after each batch (CALL outside a transaction block); the run id is in a NOTICE and omero_upgrade.orphan_run';

CREATE FUNCTION omero_orphans_restore(run_id bigint) RETURNS bigint
AS 'MODULE_PATHNAME', 'omero_orphans_restore' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION omero_orphans_restore(bigint) IS
  'puts back the annotation rows of a delete run with their original ids; refuses on any conflict';

-- extension/sql/40_colors.sql
-- Shape colours, ARGB <-> RGBA (extension/colors.cpp).

CREATE FUNCTION omero_argb_to_rgba(int4) RETURNS int4
AS 'MODULE_PATHNAME', 'omero_argb_to_rgba' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION omero_argb_to_rgba(int4) IS
  'ARGB colour to RGBA as OMERO 5.3 converts it: alpha 0 becomes 255 (opaque)';

CREATE FUNCTION omero_rgba_to_argb(int4) RETURNS int4
AS 'MODULE_PATHNAME', 'omero_rgba_to_argb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION omero_rgba_to_argb(int4) IS
  'RGBA colour to ARGB, the formula of OMERO''s reverse script (cannot give back an alpha of 0: use the journal)';

-- One row per conversion run (CALL, _tx or rewrite); dry runs leave none.
CREATE TABLE omero_upgrade.color_runs (
    run_id        bigserial PRIMARY KEY,
    direction     text NOT NULL CHECK (direction IN ('argb_to_rgba', 'rgba_to_argb')),
    method        text NOT NULL CHECK (method IN ('batch', 'tx', 'rewrite')),
    scope         jsonb NOT NULL,          -- {"all": true} or {"roi_ids": [...], "image_ids": [...], "shape_ids": [...]}
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,             -- NULL: running, or interrupted (see omero_colors_status)
    backend_pid   int4 NOT NULL DEFAULT pg_catalog.pg_backend_pid(),
    backend_start timestamptz,
    run_by        name NOT NULL DEFAULT current_user,
    selected      int8 NOT NULL DEFAULT 0, -- shapes in scope
    converted     int8 NOT NULL DEFAULT 0, -- formula applied, originals journaled
    restored      int8 NOT NULL DEFAULT 0, -- originals of the opposite conversion put back
    already       int8 NOT NULL DEFAULT 0, -- already converted in this direction: untouched
    changed       int8 NOT NULL DEFAULT 0, -- changed by OMERO after the opposite conversion: untouched
    purged        int8 NOT NULL DEFAULT 0, -- opposite conversion's originals purged: untouched
    raced         int8 NOT NULL DEFAULT 0, -- colours changed while we worked: untouched, still pending
    resumed_by    int8,                    -- an interrupted run: the later run that took over
    -- A finished all-shapes run (or rewrite): the highest shape id it covered. Shapes above it with
    -- no journal entry were created after it (a 5.3 server writes RGBA already): while it is the
    -- newest such run, later all-shapes runs in its direction leave them alone.
    covered_to    int8
);

-- The journal: one row ("chunk") per batch and kind, holding parallel arrays, one element per
-- shape. Far cheaper to write than a row per shape (one heap tuple and index entry per batch).
-- A shape's state is its element in the newest chunk holding it:
--   none                             → original colours: a conversion in either direction applies
--   kind 'convert', direction D      → converted by D; *_before hold the exact originals and
--                                      version/update_id as left by the conversion
--   kind 'restore', direction D      → originals put back by D (the reverse of an earlier
--                                      conversion): D again changes nothing, the opposite converts
-- Chunks are only inserted, never updated, except by omero_colors_purge_journal().
CREATE TABLE omero_upgrade.color_journal (
    chunk_id      bigserial PRIMARY KEY,
    run_id        int8 NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('convert', 'restore')),
    direction     text NOT NULL CHECK (direction IN ('argb_to_rgba', 'rgba_to_argb')),
    lo_id         int8 NOT NULL,           -- min and max of shape_ids: finds chunks by id range
    hi_id         int8 NOT NULL,
    done_at       timestamptz NOT NULL DEFAULT now(),
    purged        boolean NOT NULL DEFAULT false,  -- originals dropped; the ids still mark the state
    shape_ids     int8[] NOT NULL,
    fill_before   int4[],
    stroke_before int4[],
    version_after int4[],
    update_after  int8[]
);
CREATE INDEX color_journal_range ON omero_upgrade.color_journal (lo_id, hi_id);
-- The arrays are mostly distinct integers that do not compress: store them uncompressed (no
-- compression attempt on write, no decompression on read).
ALTER TABLE omero_upgrade.color_journal ALTER shape_ids SET STORAGE EXTERNAL, ALTER fill_before SET STORAGE EXTERNAL,
  ALTER stroke_before SET STORAGE EXTERNAL, ALTER version_after SET STORAGE EXTERNAL,
  ALTER update_after SET STORAGE EXTERNAL;

-- Internal: the elements of one chunk for shape ids in [lo, hi] (and in want, unless NULL). Reads a
-- chunk with one binary search per element, where unnest() would return every element to be filtered.
CREATE FUNCTION omero_upgrade.color_journal_pick(shape_ids int8[], fill_before int4[], stroke_before int4[],
                                                 version_after int4[], update_after int8[], lo int8, hi int8,
                                                 want int8[])
RETURNS TABLE (id int8, f int4, st int4, v int4, u int8)
AS 'MODULE_PATHNAME', 'omero_color_journal_pick' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1000;

SELECT omero_upgrade._grant_state('omero_upgrade.color_runs');
SELECT omero_upgrade._grant_state('omero_upgrade.color_journal');
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.color_runs', '');
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.color_journal', '');
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.color_runs_run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.color_journal_chunk_id_seq', '');

CREATE PROCEDURE omero_colors_convert(direction text, roi_ids int8[] DEFAULT NULL, image_ids int8[] DEFAULT NULL,
                                      shape_ids int8[] DEFAULT NULL, batch_size int DEFAULT 50000,
                                      dry_run boolean DEFAULT false, method text DEFAULT 'auto')
AS 'MODULE_PATHNAME', 'omero_colors_convert' LANGUAGE C;
COMMENT ON PROCEDURE omero_colors_convert(text, int8[], int8[], int8[], int, boolean, text) IS
  'convert shape colours (argb_to_rgba or rgba_to_argb), journaled, committing per batch (or, every shape with the database to itself, one rewrite); CALL it again to resume';

CREATE FUNCTION omero_colors_convert_tx(direction text, roi_ids int8[] DEFAULT NULL, image_ids int8[] DEFAULT NULL,
                                        shape_ids int8[] DEFAULT NULL, batch_size int DEFAULT 50000,
                                        dry_run boolean DEFAULT false)
RETURNS TABLE (run_id int8, direction text, dry_run boolean, selected int8, converted int8, restored int8,
               already int8, changed int8, purged int8, raced int8, sample jsonb)
AS 'MODULE_PATHNAME', 'omero_colors_convert_tx' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION omero_colors_convert_tx(text, int8[], int8[], int8[], int, boolean) IS
  'as CALL omero_colors_convert, inside the caller''s transaction; returns what it did (or would do)';

CREATE FUNCTION omero_colors_rewrite(direction text, dry_run boolean DEFAULT false)
RETURNS TABLE (run_id int8, direction text, dry_run boolean, selected int8, converted int8, restored int8,
               already int8, changed int8, purged int8, raced int8, sample jsonb)
AS 'MODULE_PATHNAME', 'omero_colors_rewrite' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION omero_colors_rewrite(text, boolean) IS
  'fast path: converts every shape by rewriting the shape table in one pass (server stopped, no other session), journaled';

CREATE FUNCTION omero_colors_status()
RETURNS TABLE (direction text, converted int8, pending int8, purged int8, first_at timestamptz,
               last_at timestamptz, runs int8, running_runs int8, interrupted_runs int8)
AS 'MODULE_PATHNAME', 'omero_colors_status' LANGUAGE C STABLE;
COMMENT ON FUNCTION omero_colors_status() IS
  'per direction: shapes converted (journaled), pending, with purged originals; when; runs done, running, interrupted';

CREATE FUNCTION omero_colors_purge_journal(forget boolean DEFAULT false, dry_run boolean DEFAULT false)
RETURNS TABLE (chunks_deleted int8, originals_dropped int8, shapes_still_marked int8)
AS 'MODULE_PATHNAME', 'omero_colors_purge_journal' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION omero_colors_purge_journal(boolean, boolean) IS
  'drops the journaled originals (no exact reverse afterwards); converted shapes stay marked unless forget';

-- extension/sql/50_wells.sql
-- Moving annotations from Images to Wells (extension/wells.cpp).

CREATE FUNCTION omero_annotations_move_to_wells(
    screen_ids int8[] DEFAULT NULL,
    plate_ids int8[] DEFAULT NULL,
    well_ids int8[] DEFAULT NULL,
    annotation_kind text DEFAULT NULL,
    ns text DEFAULT NULL,
    remove_image_links boolean DEFAULT false,
    dry_run boolean DEFAULT true,
    batch_size int DEFAULT 10000)
RETURNS TABLE (plate_id int8, wells int8, wells_without_samples int8, image_links int8,
               links_created int8, links_already_on_well int8, links_removed int8)
AS 'MODULE_PATHNAME', 'omero_annotations_move_to_wells' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION omero_annotations_move_to_wells(int8[], int8[], int8[], text, text, boolean, boolean, int) IS
  'link the annotations of the Images of the chosen Wells to the Wells (once per owner), optionally removing the image links; a dry run (the default) only reports, per plate';

CREATE PROCEDURE omero_annotations_move_to_wells_in_batches(
    screen_ids int8[] DEFAULT NULL,
    plate_ids int8[] DEFAULT NULL,
    well_ids int8[] DEFAULT NULL,
    annotation_kind text DEFAULT NULL,
    ns text DEFAULT NULL,
    remove_image_links boolean DEFAULT false,
    dry_run boolean DEFAULT true,
    batch_size int DEFAULT 10000,
    INOUT wells int8 DEFAULT NULL,
    INOUT links_created int8 DEFAULT NULL,
    INOUT links_removed int8 DEFAULT NULL)
AS 'MODULE_PATHNAME', 'omero_annotations_move_to_wells_in_batches' LANGUAGE C;
COMMENT ON PROCEDURE omero_annotations_move_to_wells_in_batches(int8[], int8[], int8[], text, text, boolean, boolean, int, int8, int8, int8) IS
  'as omero_annotations_move_to_wells, committing after each batch of wells when CALLed outside a transaction block; totals in its INOUT arguments, a NOTICE per plate';
