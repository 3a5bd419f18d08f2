-- generated from extension/sql/*.sql by make; edit those files instead
\echo Use "CREATE EXTENSION omero_upgrade" to load this file. \quit

-- extension/sql/00_state.sql
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

-- extension/sql/10_versions.sql
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

-- extension/sql/20_precheck.sql
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

-- extension/sql/30_orphans.sql
-- Orphan annotations (extension/orphans.cpp): the official delete-ns-orphans rule as a scan, a
-- summary, an archived batched delete and a restore.

-- One row per delete run. Ids come from max(id) + 1 under a table lock (no sequence to grant).
CREATE TABLE omero_upgrade.orphan_run (
    id          pg_catalog.int8 PRIMARY KEY,
    started_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at pg_catalog.timestamptz,
    run_by      pg_catalog.name NOT NULL DEFAULT CURRENT_USER,
    status      pg_catalog.text NOT NULL
                CONSTRAINT orphan_run_status_check
                CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['running', 'deleted', 'restored']::pg_catalog.text[])),
    include_ns  pg_catalog.text[],
    batch_size  pg_catalog.int4 NOT NULL,
    scanned     pg_catalog.int8 NOT NULL DEFAULT 0,  -- orphans found by the scan
    deleted     pg_catalog.int8 NOT NULL DEFAULT 0,  -- rows moved to the archive
    skipped     pg_catalog.int8 NOT NULL DEFAULT 0,  -- no longer orphans at delete time (linked meanwhile)
    bytes       pg_catalog.int8 NOT NULL DEFAULT 0,  -- sum of pg_column_size of the deleted rows
    restored_at pg_catalog.timestamptz
);
COMMENT ON TABLE omero_upgrade.orphan_run IS 'omero_orphans_delete runs: status running (interrupted if no longer running), deleted or restored';

-- The deleted annotation rows, whole, as jsonb row images (to_jsonb of the row): they survive
-- later changes to OMERO's annotation table, and restore puts them back column by column.
CREATE TABLE omero_upgrade.orphan_archive (
    run_id        pg_catalog.int8 NOT NULL REFERENCES omero_upgrade.orphan_run (id),
    annotation_id pg_catalog.int8 NOT NULL,
    row_image     pg_catalog.jsonb NOT NULL,
    PRIMARY KEY (run_id, annotation_id)
);
COMMENT ON TABLE omero_upgrade.orphan_archive IS 'annotation rows deleted by omero_orphans_delete, keyed by run and annotation id';

SELECT omero_upgrade._grant_state('omero_upgrade.orphan_run'::pg_catalog.regclass);
SELECT omero_upgrade._grant_state('omero_upgrade.orphan_archive'::pg_catalog.regclass);
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.orphan_run'::pg_catalog.regclass, ''::pg_catalog.text);
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.orphan_archive'::pg_catalog.regclass, ''::pg_catalog.text);

CREATE FUNCTION @extschema@.omero_orphans_references()
RETURNS TABLE (table_name pg_catalog.text, columns pg_catalog.text, kind pg_catalog.text, constraint_name pg_catalog.text)
AS 'MODULE_PATHNAME', 'omero_orphans_references' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_orphans_references() IS
  'foreign keys into annotation, from the catalog: kind link (child of an <object>annotationlink), link parent (annotationannotationlink.parent) or other (keeps the rows it references)';

CREATE FUNCTION @extschema@.omero_orphans_scan(include_ns pg_catalog.text[] DEFAULT NULL)
RETURNS TABLE (id pg_catalog.int8, discriminator pg_catalog.text, ns pg_catalog.text, owner_id pg_catalog.int8,
               group_id pg_catalog.int8, creation_time pg_catalog.timestamp)
AS 'MODULE_PATHNAME', 'omero_orphans_scan' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_orphans_scan(pg_catalog.text[]) IS
  'orphan annotations under the official delete-ns-orphans rule; include_ns adds exact custom namespaces (never by default)';

CREATE FUNCTION @extschema@.omero_orphans_summary(include_ns pg_catalog.text[] DEFAULT NULL)
RETURNS TABLE (kind pg_catalog.text, discriminator pg_catalog.text, ns_kind pg_catalog.text, annotations pg_catalog.int8,
               bytes pg_catalog.int8, detail pg_catalog.text)
AS 'MODULE_PATHNAME', 'omero_orphans_summary' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_orphans_summary(pg_catalog.text[]) IS
  'orphans per discriminator and namespace kind, the total a delete would remove, and the other foreign keys that keep rows';

CREATE FUNCTION @extschema@.omero_orphans_delete(dry_run pg_catalog.bool DEFAULT true, batch_size pg_catalog.int4 DEFAULT 10000,
                                                 include_ns pg_catalog.text[] DEFAULT NULL, fast pg_catalog.bool DEFAULT false)
RETURNS TABLE (run_id pg_catalog.int8, dry_run pg_catalog.bool, scanned pg_catalog.int8, deleted pg_catalog.int8,
               skipped pg_catalog.int8, bytes pg_catalog.int8, batches pg_catalog.int4)
AS 'MODULE_PATHNAME', 'omero_orphans_delete' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.omero_orphans_delete(pg_catalog.bool, pg_catalog.int4, pg_catalog.text[], pg_catalog.bool) IS
  'deletes the orphan annotations (dry_run: only counts), archiving each row; one transaction, batches of batch_size; fast (superuser): our re-check instead of the per-row foreign-key triggers';

CREATE PROCEDURE @extschema@.omero_orphans_delete_batches(dry_run pg_catalog.bool DEFAULT true, batch_size pg_catalog.int4 DEFAULT 10000,
                                                          include_ns pg_catalog.text[] DEFAULT NULL, fast pg_catalog.bool DEFAULT false)
AS 'MODULE_PATHNAME', 'omero_orphans_delete_batches' LANGUAGE C;
COMMENT ON PROCEDURE @extschema@.omero_orphans_delete_batches(pg_catalog.bool, pg_catalog.int4, pg_catalog.text[], pg_catalog.bool) IS
  'as omero_orphans_delete, committing after each batch (CALL outside a transaction block); the run id is in a NOTICE and omero_upgrade.orphan_run';

CREATE FUNCTION @extschema@.omero_orphans_restore(run_id pg_catalog.int8) RETURNS pg_catalog.int8
AS 'MODULE_PATHNAME', 'omero_orphans_restore' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.omero_orphans_restore(pg_catalog.int8) IS
  'puts back the annotation rows of a delete run with their original ids; refuses on any conflict';

-- extension/sql/40_colors.sql
-- Shape colours, ARGB <-> RGBA (extension/colors.cpp).

CREATE FUNCTION @extschema@.omero_argb_to_rgba(pg_catalog.int4) RETURNS pg_catalog.int4
AS 'MODULE_PATHNAME', 'omero_argb_to_rgba' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.omero_argb_to_rgba(pg_catalog.int4) IS
  'ARGB colour to RGBA as OMERO 5.3 converts it: alpha 0 becomes 255 (opaque)';

CREATE FUNCTION @extschema@.omero_rgba_to_argb(pg_catalog.int4) RETURNS pg_catalog.int4
AS 'MODULE_PATHNAME', 'omero_rgba_to_argb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.omero_rgba_to_argb(pg_catalog.int4) IS
  'RGBA colour to ARGB, the formula of OMERO''s reverse script (cannot give back an alpha of 0: use the journal)';

-- One row per conversion run (CALL, _tx or rewrite); dry runs leave none.
CREATE TABLE omero_upgrade.color_runs (
    run_id        bigserial PRIMARY KEY,
    direction     pg_catalog.text NOT NULL CONSTRAINT color_runs_direction_check
                  CHECK (direction OPERATOR(pg_catalog.=) ANY (ARRAY['argb_to_rgba', 'rgba_to_argb']::pg_catalog.text[])),
    method        pg_catalog.text NOT NULL CONSTRAINT color_runs_method_check
                  CHECK (method OPERATOR(pg_catalog.=) ANY (ARRAY['batch', 'tx', 'rewrite']::pg_catalog.text[])),
    scope         pg_catalog.jsonb NOT NULL,             -- {"all": true} or {"roi_ids": [...], "image_ids": [...], "shape_ids": [...]}
    started_at    pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at   pg_catalog.timestamptz,                -- NULL: running, or interrupted (see omero_colors_status)
    backend_pid   pg_catalog.int4 NOT NULL DEFAULT pg_catalog.pg_backend_pid(),
    backend_start pg_catalog.timestamptz,
    run_by        pg_catalog.name NOT NULL DEFAULT current_user,
    selected      pg_catalog.int8 NOT NULL DEFAULT 0,    -- shapes in scope
    converted     pg_catalog.int8 NOT NULL DEFAULT 0,    -- formula applied, originals journaled
    restored      pg_catalog.int8 NOT NULL DEFAULT 0,    -- originals of the opposite conversion put back
    already       pg_catalog.int8 NOT NULL DEFAULT 0,    -- already converted in this direction: untouched
    changed       pg_catalog.int8 NOT NULL DEFAULT 0,    -- changed by OMERO after the opposite conversion: untouched
    purged        pg_catalog.int8 NOT NULL DEFAULT 0,    -- opposite conversion's originals purged: untouched
    raced         pg_catalog.int8 NOT NULL DEFAULT 0,    -- colours changed while we worked: untouched, still pending
    resumed_by    pg_catalog.int8,                       -- an interrupted run: the later run that took over
    -- A finished all-shapes run (or rewrite): the highest shape id it covered. Shapes above it with
    -- no journal entry were created after it (a 5.3 server writes RGBA already): while it is the
    -- newest such run, later all-shapes runs in its direction leave them alone.
    covered_to    pg_catalog.int8
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
    run_id        pg_catalog.int8 NOT NULL,
    kind          pg_catalog.text NOT NULL CONSTRAINT color_journal_kind_check
                  CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['convert', 'restore']::pg_catalog.text[])),
    direction     pg_catalog.text NOT NULL CONSTRAINT color_journal_direction_check
                  CHECK (direction OPERATOR(pg_catalog.=) ANY (ARRAY['argb_to_rgba', 'rgba_to_argb']::pg_catalog.text[])),
    lo_id         pg_catalog.int8 NOT NULL,              -- min and max of shape_ids: finds chunks by id range
    hi_id         pg_catalog.int8 NOT NULL,
    done_at       pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),
    purged        pg_catalog.bool NOT NULL DEFAULT false, -- originals dropped; the ids still mark the state
    shape_ids     pg_catalog.int8[] NOT NULL,
    fill_before   pg_catalog.int4[],
    stroke_before pg_catalog.int4[],
    version_after pg_catalog.int4[],
    update_after  pg_catalog.int8[]
);
CREATE INDEX color_journal_range ON omero_upgrade.color_journal (lo_id, hi_id);
-- The arrays are mostly distinct integers that do not compress: store them uncompressed (no
-- compression attempt on write, no decompression on read).
ALTER TABLE omero_upgrade.color_journal ALTER shape_ids SET STORAGE EXTERNAL, ALTER fill_before SET STORAGE EXTERNAL,
  ALTER stroke_before SET STORAGE EXTERNAL, ALTER version_after SET STORAGE EXTERNAL,
  ALTER update_after SET STORAGE EXTERNAL;

-- Internal: the elements of one chunk for shape ids in [lo, hi] (and in want, unless NULL). Reads a
-- chunk with one binary search per element, where unnest() would return every element to be filtered.
CREATE FUNCTION omero_upgrade.color_journal_pick(shape_ids pg_catalog.int8[], fill_before pg_catalog.int4[],
                                                 stroke_before pg_catalog.int4[], version_after pg_catalog.int4[],
                                                 update_after pg_catalog.int8[], lo pg_catalog.int8, hi pg_catalog.int8,
                                                 want pg_catalog.int8[])
RETURNS TABLE (id pg_catalog.int8, f pg_catalog.int4, st pg_catalog.int4, v pg_catalog.int4, u pg_catalog.int8)
AS 'MODULE_PATHNAME', 'omero_color_journal_pick' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1000;

SELECT omero_upgrade._grant_state('omero_upgrade.color_runs'::pg_catalog.regclass);
SELECT omero_upgrade._grant_state('omero_upgrade.color_journal'::pg_catalog.regclass);
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.color_runs'::pg_catalog.regclass, ''::pg_catalog.text);
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.color_journal'::pg_catalog.regclass, ''::pg_catalog.text);
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.color_runs_run_id_seq'::pg_catalog.regclass, ''::pg_catalog.text);
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.color_journal_chunk_id_seq'::pg_catalog.regclass, ''::pg_catalog.text);

CREATE PROCEDURE @extschema@.omero_colors_convert(direction pg_catalog.text, roi_ids pg_catalog.int8[] DEFAULT NULL, image_ids pg_catalog.int8[] DEFAULT NULL,
                                      shape_ids pg_catalog.int8[] DEFAULT NULL, batch_size pg_catalog.int4 DEFAULT 50000,
                                      dry_run pg_catalog.bool DEFAULT false, method pg_catalog.text DEFAULT 'auto',
                                      jobs pg_catalog.int4 DEFAULT 1)
AS 'MODULE_PATHNAME', 'omero_colors_convert' LANGUAGE C;
COMMENT ON PROCEDURE @extschema@.omero_colors_convert(pg_catalog.text, pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int4, pg_catalog.bool, pg_catalog.text, pg_catalog.int4) IS
  'convert shape colours (argb_to_rgba or rgba_to_argb), journaled, committing per batch (jobs => N: in N background workers at once; or, every shape with the database to itself, one rewrite); CALL it again to resume';

CREATE FUNCTION @extschema@.omero_colors_convert_tx(direction pg_catalog.text, roi_ids pg_catalog.int8[] DEFAULT NULL, image_ids pg_catalog.int8[] DEFAULT NULL,
                                        shape_ids pg_catalog.int8[] DEFAULT NULL, batch_size pg_catalog.int4 DEFAULT 50000,
                                        dry_run pg_catalog.bool DEFAULT false)
RETURNS TABLE (run_id pg_catalog.int8, direction pg_catalog.text, dry_run pg_catalog.bool, selected pg_catalog.int8, converted pg_catalog.int8, restored pg_catalog.int8,
               already pg_catalog.int8, changed pg_catalog.int8, purged pg_catalog.int8, raced pg_catalog.int8, sample pg_catalog.jsonb)
AS 'MODULE_PATHNAME', 'omero_colors_convert_tx' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.omero_colors_convert_tx(pg_catalog.text, pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int4, pg_catalog.bool) IS
  'as CALL omero_colors_convert, inside the caller''s transaction; returns what it did (or would do)';

CREATE FUNCTION @extschema@.omero_colors_rewrite(direction pg_catalog.text, dry_run pg_catalog.bool DEFAULT false)
RETURNS TABLE (run_id pg_catalog.int8, direction pg_catalog.text, dry_run pg_catalog.bool, selected pg_catalog.int8, converted pg_catalog.int8, restored pg_catalog.int8,
               already pg_catalog.int8, changed pg_catalog.int8, purged pg_catalog.int8, raced pg_catalog.int8, sample pg_catalog.jsonb)
AS 'MODULE_PATHNAME', 'omero_colors_rewrite' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.omero_colors_rewrite(pg_catalog.text, pg_catalog.bool) IS
  'fast path: converts every shape by rewriting the shape table in one pass (server stopped, no other session), journaled';

CREATE FUNCTION @extschema@.omero_colors_status()
RETURNS TABLE (direction pg_catalog.text, converted pg_catalog.int8, pending pg_catalog.int8, purged pg_catalog.int8, first_at pg_catalog.timestamptz,
               last_at pg_catalog.timestamptz, runs pg_catalog.int8, running_runs pg_catalog.int8, interrupted_runs pg_catalog.int8,
               to_convert pg_catalog.int8, to_restore pg_catalog.int8, left_alone pg_catalog.int8)
AS 'MODULE_PATHNAME', 'omero_colors_status' LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.omero_colors_status() IS
  'per direction: shapes converted (journaled), with purged originals; when; runs done, running, interrupted; what a run of every shape in that direction would do: pending = to_convert (formula) + to_restore (journaled originals), left_alone';

CREATE FUNCTION @extschema@.omero_colors_purge_journal(forget pg_catalog.bool DEFAULT false, dry_run pg_catalog.bool DEFAULT false)
RETURNS TABLE (chunks_deleted pg_catalog.int8, originals_dropped pg_catalog.int8, shapes_still_marked pg_catalog.int8)
AS 'MODULE_PATHNAME', 'omero_colors_purge_journal' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.omero_colors_purge_journal(pg_catalog.bool, pg_catalog.bool) IS
  'drops the journaled originals (no exact reverse afterwards); converted shapes stay marked unless forget';

-- extension/sql/50_wells.sql
-- Moving annotations from Images to Wells (extension/wells.cpp).

CREATE FUNCTION @extschema@.omero_annotations_move_to_wells(
    screen_ids pg_catalog.int8[] DEFAULT NULL,
    plate_ids pg_catalog.int8[] DEFAULT NULL,
    well_ids pg_catalog.int8[] DEFAULT NULL,
    annotation_kind pg_catalog.text DEFAULT NULL,
    ns pg_catalog.text DEFAULT NULL,
    remove_image_links pg_catalog.bool DEFAULT false,
    dry_run pg_catalog.bool DEFAULT true,
    batch_size pg_catalog.int4 DEFAULT 10000)
RETURNS TABLE (plate_id pg_catalog.int8, wells pg_catalog.int8, wells_without_samples pg_catalog.int8, image_links pg_catalog.int8,
               links_created pg_catalog.int8, links_already_on_well pg_catalog.int8, links_removed pg_catalog.int8)
AS 'MODULE_PATHNAME', 'omero_annotations_move_to_wells' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.omero_annotations_move_to_wells(pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int8[], pg_catalog.text, pg_catalog.text, pg_catalog.bool, pg_catalog.bool, pg_catalog.int4) IS
  'link the annotations of the Images of the chosen Wells to the Wells (once per owner), optionally removing the image links; a dry run (the default) only reports, per plate';

CREATE PROCEDURE @extschema@.omero_annotations_move_to_wells_in_batches(
    screen_ids pg_catalog.int8[] DEFAULT NULL,
    plate_ids pg_catalog.int8[] DEFAULT NULL,
    well_ids pg_catalog.int8[] DEFAULT NULL,
    annotation_kind pg_catalog.text DEFAULT NULL,
    ns pg_catalog.text DEFAULT NULL,
    remove_image_links pg_catalog.bool DEFAULT false,
    dry_run pg_catalog.bool DEFAULT true,
    batch_size pg_catalog.int4 DEFAULT 10000,
    INOUT wells pg_catalog.int8 DEFAULT NULL,
    INOUT links_created pg_catalog.int8 DEFAULT NULL,
    INOUT links_removed pg_catalog.int8 DEFAULT NULL)
AS 'MODULE_PATHNAME', 'omero_annotations_move_to_wells_in_batches' LANGUAGE C;
COMMENT ON PROCEDURE @extschema@.omero_annotations_move_to_wells_in_batches(pg_catalog.int8[], pg_catalog.int8[], pg_catalog.int8[], pg_catalog.text, pg_catalog.text, pg_catalog.bool, pg_catalog.bool, pg_catalog.int4, pg_catalog.int8, pg_catalog.int8, pg_catalog.int8) IS
  'as omero_annotations_move_to_wells, committing after each batch of wells when CALLed outside a transaction block; totals in its INOUT arguments, a NOTICE per plate';

-- extension/sql/60_site_sql.sql
-- Site SQL steps (omero-upgrade db upgrade --site-sql DIR): one row per file applied, written by
-- the tool in the same transaction as the file (README "omero-upgrade db upgrade --site-sql").
-- A file whose SHA-256 no longer matches its row is refused. Rows are the tool's to write: the
-- OMERO database user (who runs the files) and the other state roles may; nobody else.
CREATE TABLE omero_upgrade.site_sql (
    file_name   pg_catalog.text PRIMARY KEY,
    sha256      pg_catalog.text NOT NULL
                CONSTRAINT site_sql_sha256_check
                CHECK (sha256 OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'::pg_catalog.text),
    applied_at  pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    db_role     pg_catalog.name NOT NULL DEFAULT SESSION_USER,
    os_user     pg_catalog.text,
    host        pg_catalog.text,
    db_version  pg_catalog.text
);
COMMENT ON TABLE omero_upgrade.site_sql IS 'site SQL files applied by omero-upgrade db upgrade --site-sql: name, SHA-256, who, when';
SELECT omero_upgrade._grant_state('omero_upgrade.site_sql'::pg_catalog.regclass);
SELECT pg_catalog.pg_extension_config_dump('omero_upgrade.site_sql'::pg_catalog.regclass, ''::pg_catalog.text);

-- extension/sql/70_history.sql
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
