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
