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
