-- Orphan annotations (extension/orphans.cpp) on the fixture (OMERO 5.4 structure): the link
-- tables found in the catalog, the scanned and deleted set against the official rule written
-- here as plain SQL (the oracle), the summary, bad input, delete then restore giving back the
-- identical table, and schemas with more references than OMERO's.
-- (The link inserted by another session between scan and delete: test/tool/51-orphans-concurrent.t.)
CREATE DATABASE orphans_regress;
\c orphans_regress
\set version OMERO5.4__0
\i test/fixture/fixture.sql
CREATE EXTENSION omero_upgrade;

-- 1. Discovery: exactly the 28 link tables of the official rule, the parent column of
--    annotationannotationlink, and annotation_mapvalue as the only other reference.
SELECT kind, count(*) FROM omero_orphans_references() GROUP BY kind ORDER BY kind;
WITH official(t) AS (
    SELECT unnest(ARRAY['annotation', 'channel', 'dataset', 'detector', 'dichroic', 'experimenter',
        'experimentergroup', 'fileset', 'filter', 'folder', 'image', 'instrument', 'lightpath',
        'lightsource', 'namespace', 'node', 'objective', 'originalfile', 'planeinfo',
        'plateacquisition', 'plate', 'project', 'reagent', 'roi', 'screen', 'session', 'shape',
        'well']) || 'annotationlink'),
     found AS (SELECT table_name AS t FROM omero_orphans_references() WHERE kind = 'link' AND columns = 'child')
SELECT 'missing' AS problem, t FROM (SELECT t FROM official EXCEPT SELECT t FROM found) AS m
UNION ALL
SELECT 'extra', t FROM (SELECT t FROM found EXCEPT SELECT t FROM official) AS e;
SELECT * FROM omero_orphans_references() WHERE kind <> 'link';

-- 2. The oracle: the official rule as plain SQL, one NOT IN per link table (28) and one for
--    the parent column of annotationannotationlink.
CREATE VIEW official_orphans AS
SELECT id FROM annotation
 WHERE discriminator IN ('/basic/bool/', '/basic/num/double/', '/basic/num/long/', '/basic/term/',
                         '/basic/time/', '/basic/text/comment/')
   AND (ns IS NULL OR ns = '' OR ns LIKE 'openmicroscopy.org/%')
   AND id NOT IN (SELECT child FROM annotationannotationlink)
   AND id NOT IN (SELECT child FROM channelannotationlink)
   AND id NOT IN (SELECT child FROM datasetannotationlink)
   AND id NOT IN (SELECT child FROM detectorannotationlink)
   AND id NOT IN (SELECT child FROM dichroicannotationlink)
   AND id NOT IN (SELECT child FROM experimenterannotationlink)
   AND id NOT IN (SELECT child FROM experimentergroupannotationlink)
   AND id NOT IN (SELECT child FROM filesetannotationlink)
   AND id NOT IN (SELECT child FROM filterannotationlink)
   AND id NOT IN (SELECT child FROM folderannotationlink)
   AND id NOT IN (SELECT child FROM imageannotationlink)
   AND id NOT IN (SELECT child FROM instrumentannotationlink)
   AND id NOT IN (SELECT child FROM lightpathannotationlink)
   AND id NOT IN (SELECT child FROM lightsourceannotationlink)
   AND id NOT IN (SELECT child FROM namespaceannotationlink)
   AND id NOT IN (SELECT child FROM nodeannotationlink)
   AND id NOT IN (SELECT child FROM objectiveannotationlink)
   AND id NOT IN (SELECT child FROM originalfileannotationlink)
   AND id NOT IN (SELECT child FROM planeinfoannotationlink)
   AND id NOT IN (SELECT child FROM plateacquisitionannotationlink)
   AND id NOT IN (SELECT child FROM plateannotationlink)
   AND id NOT IN (SELECT child FROM projectannotationlink)
   AND id NOT IN (SELECT child FROM reagentannotationlink)
   AND id NOT IN (SELECT child FROM roiannotationlink)
   AND id NOT IN (SELECT child FROM screenannotationlink)
   AND id NOT IN (SELECT child FROM sessionannotationlink)
   AND id NOT IN (SELECT child FROM shapeannotationlink)
   AND id NOT IN (SELECT child FROM wellannotationlink)
   AND id NOT IN (SELECT parent FROM annotationannotationlink);
SELECT count(*) AS official_orphans FROM official_orphans;
-- The scan returns exactly the oracle's set (no row either way).
(SELECT id, 'only official' AS side FROM official_orphans EXCEPT SELECT id, 'only official' FROM omero_orphans_scan())
UNION ALL
(SELECT id, 'only scan' FROM omero_orphans_scan() EXCEPT SELECT id, 'only scan' FROM official_orphans);
-- Edge cases (ids 1..90, see test/fixture/README.md): 1-24 minus the custom 4k+4, 49 (bare
-- prefix) and 50 (non-ASCII text); not 45 (parent only), 47/48 (child only), 51-78 (one link
-- each), 79-83 (near-miss namespaces), maps and files (25-40), 84-90 (linked).
SELECT s.id, s.discriminator, s.ns, s.owner_id, s.group_id, s.creation_time = e.time AS time_ok
  FROM omero_orphans_scan() s JOIN event e ON e.id = (SELECT creation_id FROM annotation WHERE id = s.id)
 WHERE s.id <= 100 ORDER BY s.id;
SELECT a.discriminator, count(*) FROM omero_orphans_scan() s JOIN annotation a USING (id)
 GROUP BY 1 ORDER BY 1;
-- Custom namespaces only when named, exactly.
SELECT count(*) AS with_lab, count(*) FILTER (WHERE ns = 'example.org/lab') AS lab,
       count(*) FILTER (WHERE ns IS NULL OR ns = '' OR ns LIKE 'openmicroscopy.org/%') AS official
  FROM omero_orphans_scan(ARRAY['example.org/lab', 'no.such/namespace']);
SELECT id, ns FROM omero_orphans_scan(ARRAY['example.org/lab', 'openmicroscopy.org', ' ']) WHERE id <= 100
EXCEPT SELECT id, ns FROM omero_orphans_scan() ORDER BY id;
SELECT count(*) AS empty_list_adds_nothing FROM omero_orphans_scan('{}');

-- 3. Summary: per discriminator and namespace kind; the total matches the scan.
SELECT kind, discriminator, ns_kind, annotations, bytes > 0 AS has_bytes,
       regexp_replace(detail, '\(\d+ bytes\)', '(N bytes)') AS detail
  FROM omero_orphans_summary();
SELECT (SELECT annotations FROM omero_orphans_summary() WHERE kind = 'total') = (SELECT count(*) FROM omero_orphans_scan()) AS count_ok,
       (SELECT bytes FROM omero_orphans_summary() WHERE kind = 'total') =
       (SELECT sum(pg_column_size(a.*)) FROM annotation a JOIN omero_orphans_scan() s USING (id)) AS bytes_ok;
SELECT ns_kind, sum(annotations) FROM omero_orphans_summary(ARRAY['example.org/lab'])
 WHERE kind = 'orphans' GROUP BY 1 ORDER BY 1;

-- 4. Bad input: a clear error (with its SQLSTATE), nothing deleted.
SELECT count(*) AS annotations_before FROM annotation;
SELECT * FROM omero_orphans_scan(ARRAY['a', NULL]);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_orphans_scan(ARRAY[['a'], ['b']]);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_orphans_delete(false, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_orphans_delete(false, 1000001);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_orphans_delete(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_orphans_delete(false, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_orphans_delete(false, 10, ARRAY[NULL]::text[]);
\echo :LAST_ERROR_SQLSTATE
SELECT omero_orphans_restore(42);
\echo :LAST_ERROR_SQLSTATE
SELECT omero_orphans_restore(NULL);
\echo :LAST_ERROR_SQLSTATE
-- The caller's search_path plays no part: OMERO's tables are those of the schema holding dbpatch
-- (and the caller's search_path is as it was afterwards).
SET search_path = pg_catalog;
SELECT count(*) AS orphans_found FROM public.omero_orphans_scan();
SHOW search_path;
RESET search_path;
-- Two schemas holding a dbpatch table: an error naming both, until omero_upgrade.omero_schema
-- says which holds OMERO's tables.
CREATE SCHEMA decoy;
CREATE TABLE decoy.dbpatch (id int8);
SELECT count(*) FROM omero_orphans_scan();
\echo :LAST_ERROR_SQLSTATE
SET omero_upgrade.omero_schema = 'decoy';
SELECT count(*) FROM omero_orphans_scan();
\echo :LAST_ERROR_SQLSTATE
SET omero_upgrade.omero_schema = 'nowhere';
SELECT count(*) FROM omero_orphans_scan();
\echo :LAST_ERROR_SQLSTATE
SET omero_upgrade.omero_schema = 'public';
SELECT count(*) AS orphans_found FROM omero_orphans_scan();
RESET omero_upgrade.omero_schema;
DROP SCHEMA decoy CASCADE;
SELECT count(*) AS annotations_after, (SELECT count(*) FROM omero_upgrade.orphan_run) AS runs FROM annotation;

-- 5. Dry run (the default): counts, changes nothing, records no run.
SELECT run_id, dry_run, scanned, deleted, skipped, batches,
       bytes = (SELECT bytes FROM omero_orphans_summary() WHERE kind = 'total') AS bytes_ok
  FROM omero_orphans_delete();
SELECT count(*) AS annotations, (SELECT count(*) FROM omero_upgrade.orphan_run) AS runs FROM annotation;

-- 6. Delete in batches of 7: the deleted set is the oracle's, archived whole.
CREATE TABLE annotation_before AS SELECT * FROM annotation;
CREATE TABLE expected_deleted AS SELECT id FROM official_orphans;
SELECT run_id, dry_run, scanned, deleted, skipped, bytes > 0 AS has_bytes, batches
  FROM omero_orphans_delete(false, 7);
(SELECT id, 'deleted, not official' AS problem FROM annotation_before EXCEPT SELECT id, 'deleted, not official' FROM annotation
 EXCEPT SELECT id, 'deleted, not official' FROM expected_deleted)
UNION ALL
(SELECT id, 'official, not deleted' FROM expected_deleted INTERSECT SELECT id, 'official, not deleted' FROM annotation);
SELECT count(*) AS archived,
       count(*) FILTER (WHERE v.row_image = to_jsonb(b)) AS whole_rows
  FROM omero_upgrade.orphan_archive v JOIN annotation_before b ON b.id = v.annotation_id WHERE v.run_id = 1;
SELECT id, status, include_ns, batch_size, scanned, deleted, skipped, bytes > 0 AS has_bytes,
       finished_at >= started_at AS finished, restored_at
  FROM omero_upgrade.orphan_run;
-- Maps, files and everything else untouched.
SELECT discriminator, count(*) FROM annotation_before
 WHERE discriminator NOT IN ('/basic/bool/', '/basic/num/double/', '/basic/num/long/', '/basic/term/',
                             '/basic/time/', '/basic/text/comment/')
 GROUP BY 1
EXCEPT SELECT discriminator, count(*) FROM annotation GROUP BY 1;
SELECT (SELECT count(*) FROM annotation_mapvalue) AS mapvalues;
-- Running it again finds nothing.
SELECT run_id, scanned, deleted FROM omero_orphans_delete(false);

-- 7. Restore: refuses on a conflict (nothing restored), then gives back the identical table.
INSERT INTO annotation SELECT * FROM annotation_before WHERE id = 49;
SELECT omero_orphans_restore(1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS annotations FROM annotation;
DELETE FROM annotation WHERE id = 49;
-- Refuses too when rows its annotations refer to are gone (here: archived row images edited to
-- name an experimenter, an event and a group that do not exist), listing them all with 23503
-- instead of PostgreSQL's first foreign-key error; nothing is restored.
CREATE TEMP TABLE archive_before AS SELECT * FROM omero_upgrade.orphan_archive WHERE run_id = 1;
UPDATE omero_upgrade.orphan_archive
   SET row_image = row_image || '{"owner_id": 999999, "update_id": 888888}'::jsonb
 WHERE run_id = 1 AND annotation_id IN (SELECT annotation_id FROM archive_before ORDER BY 1 LIMIT 2);
UPDATE omero_upgrade.orphan_archive
   SET row_image = row_image || '{"group_id": 777777}'::jsonb
 WHERE run_id = 1 AND annotation_id = (SELECT max(annotation_id) FROM archive_before);
SELECT omero_orphans_restore(1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS annotations FROM annotation;
SELECT status FROM omero_upgrade.orphan_run WHERE id = 1;
UPDATE omero_upgrade.orphan_archive v SET row_image = b.row_image
  FROM archive_before b WHERE v.run_id = b.run_id AND v.annotation_id = b.annotation_id;
SELECT omero_orphans_restore(1);
(SELECT 'missing' AS problem, * FROM annotation_before EXCEPT SELECT 'missing', * FROM annotation)
UNION ALL
(SELECT 'extra', * FROM annotation EXCEPT SELECT 'extra', * FROM annotation_before);
SELECT count(*) = (SELECT count(*) FROM annotation_before) AS same_count FROM annotation;
SET client_min_messages = notice;
SELECT omero_orphans_restore(1);
SET client_min_messages = warning;
SELECT id, status, restored_at IS NOT NULL AS restored FROM omero_upgrade.orphan_run ORDER BY id;

-- 8. The procedure commits per batch (CALL outside a transaction block); same set; restore.
CALL omero_orphans_delete_batches(false, 5);
SELECT id, status, scanned, deleted, batch_size FROM omero_upgrade.orphan_run WHERE id = 3;
SELECT count(*) AS not_official FROM (SELECT annotation_id FROM omero_upgrade.orphan_archive WHERE run_id = 3
                                      EXCEPT SELECT id FROM expected_deleted) AS x;
SELECT omero_orphans_restore(3);
-- Inside a transaction block it cannot commit: it runs in the caller's transaction.
BEGIN;
CALL omero_orphans_delete_batches(false, 5);
ROLLBACK;
SELECT count(*) = (SELECT count(*) FROM annotation_before) AS nothing_deleted FROM annotation;

-- 9. include_ns: custom namespaces deleted only when named; restore.
SELECT run_id, scanned, deleted FROM omero_orphans_delete(false, 100, ARRAY['example.org/lab']);
SELECT count(*) AS lab_deleted FROM omero_upgrade.orphan_archive
 WHERE run_id = 4 AND row_image->>'ns' = 'example.org/lab';
SELECT include_ns FROM omero_upgrade.orphan_run WHERE id = 4;
SELECT omero_orphans_restore(4);

-- 10. fast => true (superuser): the same set, without PostgreSQL's per-row foreign-key triggers
--     (our re-check covers every foreign key); refused where it could skip anything else or miss
--     a link; session_replication_role is back as it was afterwards.
SELECT run_id, scanned, deleted, skipped FROM omero_orphans_delete(false, 10, fast => true);
SELECT count(*) AS archived, count(*) FILTER (WHERE annotation_id IN (SELECT id FROM expected_deleted)) AS official
  FROM omero_upgrade.orphan_archive WHERE run_id = 5;
SHOW session_replication_role;
SELECT omero_orphans_restore(5);
BEGIN;
SELECT deleted FROM omero_orphans_delete(false, fast => true);
SHOW session_replication_role;
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM omero_orphans_delete(false, fast => true);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
CREATE FUNCTION annotation_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN old; END $$;
CREATE TRIGGER annotation_audit BEFORE DELETE ON annotation FOR EACH ROW EXECUTE FUNCTION annotation_audit();
SELECT * FROM omero_orphans_delete(false, fast => true);
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER annotation_audit ON annotation;
DROP FUNCTION annotation_audit();
CREATE ROLE regress_orphans_user;
SET ROLE regress_orphans_user;
SELECT * FROM omero_orphans_delete(false, fast => true);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_orphans_user;
SELECT * FROM omero_orphans_delete(false, fast => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) = (SELECT count(*) FROM annotation_before) AS nothing_deleted FROM annotation;

-- 11. More references than OMERO's: another link table and a site's own table. Both keep the
--     rows they reference; the summary names the site table.
CREATE TABLE widget (id int8 PRIMARY KEY);
INSERT INTO widget VALUES (1);
CREATE TABLE widgetannotationlink (id int8 PRIMARY KEY, parent int8 NOT NULL REFERENCES widget (id),
                                   child int8 NOT NULL REFERENCES annotation (id));
INSERT INTO widgetannotationlink VALUES (1, 1, 50);
CREATE TABLE site_note (id int8 PRIMARY KEY, about int8 REFERENCES annotation (id), note text);
INSERT INTO site_note VALUES (1, 49, 'keep this one');
SELECT table_name, columns, kind FROM omero_orphans_references()
 WHERE kind <> 'link' OR table_name = 'widgetannotationlink' ORDER BY 1;
SELECT id FROM omero_orphans_scan() WHERE id IN (49, 50);
SELECT kind, annotations, regexp_replace(detail, '\(\d+ bytes\)', '(N bytes)') AS detail
  FROM omero_orphans_summary() WHERE kind <> 'orphans';
SELECT deleted FROM omero_orphans_delete(false);
SELECT id FROM annotation WHERE id IN (49, 50) ORDER BY id;

-- 12. DROP EXTENSION takes its state with it.
DROP EXTENSION omero_upgrade;
SELECT count(*) FROM pg_namespace WHERE nspname = 'omero_upgrade';
\c omero_regress
DROP DATABASE orphans_regress;
