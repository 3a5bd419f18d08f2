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

CREATE FUNCTION @extschema@.omero_orphans_runs()
RETURNS TABLE (run_id pg_catalog.int8, status pg_catalog.text, run_by pg_catalog.name, include_ns pg_catalog.text[],
               batch_size pg_catalog.int4, scanned pg_catalog.int8, deleted pg_catalog.int8, skipped pg_catalog.int8,
               bytes pg_catalog.int8, started_at pg_catalog.timestamptz, finished_at pg_catalog.timestamptz,
               restored_at pg_catalog.timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.id, r.status, r.run_by, r.include_ns, r.batch_size, r.scanned, r.deleted, r.skipped, r.bytes, r.started_at,
       r.finished_at, r.restored_at
  FROM omero_upgrade.orphan_run r ORDER BY r.id
$$;
COMMENT ON FUNCTION @extschema@.omero_orphans_runs() IS
  'every orphan delete run (running, deleted or restored) with its counts, oldest first';
