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

CREATE FUNCTION @extschema@.omero_colors_runs()
RETURNS TABLE (run_id pg_catalog.int8, direction pg_catalog.text, method pg_catalog.text, scope pg_catalog.jsonb,
               started_at pg_catalog.timestamptz, finished_at pg_catalog.timestamptz, backend_pid pg_catalog.int4,
               run_by pg_catalog.name, selected pg_catalog.int8, converted pg_catalog.int8, restored pg_catalog.int8,
               already pg_catalog.int8, changed pg_catalog.int8, purged pg_catalog.int8, raced pg_catalog.int8,
               resumed_by pg_catalog.int8)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.run_id, r.direction, r.method, r.scope, r.started_at, r.finished_at, r.backend_pid, r.run_by, r.selected,
       r.converted, r.restored, r.already, r.changed, r.purged, r.raced, r.resumed_by
  FROM omero_upgrade.color_runs r ORDER BY r.run_id
$$;
COMMENT ON FUNCTION @extschema@.omero_colors_runs() IS
  'every colour conversion run with its counts, oldest first (finished_at NULL: running or interrupted)';
