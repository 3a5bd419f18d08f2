-- Shape colours: the two formulas, and the journaled conversion (subset, superset, repeat,
-- dry run, reverse, shapes OMERO changed, purge, rewrite fast path, bad input).
-- Progress NOTICEs appear only after 2 s, so these small runs print just their summaries.
\set VERBOSITY default

-- The fixture database (its colour edge cases are shapes 1-100, ROIs 1-10)
CREATE DATABASE colors_db;
\c colors_db
\i test/fixture/fixture.sql
CREATE EXTENSION omero_upgrade;
SET client_min_messages = notice;
-- 1. The formulas (in the fixture database, where the extension is), against an independent expression in integer arithmetic (no bit operators)
CREATE FUNCTION pg_temp.ref_argb_to_rgba(x int4) RETURNS int4 LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN r >= 2147483648 THEN r - 4294967296 ELSE r END::int4
    FROM (SELECT (u % 16777216) * 256 + CASE WHEN u / 16777216 = 0 THEN 255 ELSE u / 16777216 END AS r
            FROM (SELECT (x::int8 + 4294967296) % 4294967296 AS u) a) b $$;
CREATE FUNCTION pg_temp.ref_rgba_to_argb(x int4) RETURNS int4 LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN r >= 2147483648 THEN r - 4294967296 ELSE r END::int4
    FROM (SELECT (u % 256) * 16777216 + u / 256 AS r
            FROM (SELECT (x::int8 + 4294967296) % 4294967296 AS u) a) b $$;
SELECT x, to_hex(x) AS argb, omero_argb_to_rgba(x), to_hex(omero_argb_to_rgba(x)) AS rgba,
       omero_rgba_to_argb(x), to_hex(omero_rgba_to_argb(x)) AS "rgba->argb"
  FROM unnest(ARRAY[0, -1, 16711680, -2147483648, 2147483647, -65536, -16776961, 255, 2130771712, 1,
                    256, 16777215, 16777216, -16777216, 65280]) AS x;
SELECT omero_argb_to_rgba(NULL), omero_rgba_to_argb(NULL);
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel FROM pg_proc p
 WHERE p.proname IN ('omero_argb_to_rgba', 'omero_rgba_to_argb') ORDER BY 1;
-- every value near the edges, and half a million random ones
SELECT setseed(0.5);
WITH v AS (SELECT x::int4 AS x FROM generate_series(-2147483648, -2147483648 + 20000) x
           UNION ALL SELECT x::int4 FROM generate_series(2147483647 - 20000, 2147483647) x
           UNION ALL SELECT x::int4 FROM generate_series(-20000, 20000) x
           UNION ALL SELECT (floor(random() * 4294967296) - 2147483648)::int4 FROM generate_series(1, 500000))
SELECT count(*) AS values_checked,
       count(*) FILTER (WHERE omero_argb_to_rgba(x) <> pg_temp.ref_argb_to_rgba(x)) AS argb_to_rgba_wrong,
       count(*) FILTER (WHERE omero_rgba_to_argb(x) <> pg_temp.ref_rgba_to_argb(x)) AS rgba_to_argb_wrong,
       count(*) FILTER (WHERE x >> 24 <> 0 AND omero_rgba_to_argb(omero_argb_to_rgba(x)) <> x) AS round_trip_wrong
  FROM v;

-- 2. Bulk conversion. Helpers (functions, not views: views would pin the column types)
CREATE TABLE saved AS SELECT id, roi, fillcolor, strokecolor, version, update_id FROM shape;
-- Per ROI: how many shapes are as saved (orig), converted once (conv), or neither (other).
CREATE FUNCTION pg_temp.per_roi() RETURNS TABLE (roi int8, orig int8, conv int8, other int8) LANGUAGE sql AS $$
SELECT s.roi, count(*) FILTER (WHERE s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                                AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor) AS orig,
       count(*) FILTER (WHERE s.fillcolor IS NOT DISTINCT FROM pg_temp.ref_argb_to_rgba(v.fillcolor)
                          AND s.strokecolor IS NOT DISTINCT FROM pg_temp.ref_argb_to_rgba(v.strokecolor)
                          AND NOT (s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                                   AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor)) AS conv,
       count(*) FILTER (WHERE NOT (s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                                   AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor)
                          AND NOT (s.fillcolor IS NOT DISTINCT FROM pg_temp.ref_argb_to_rgba(v.fillcolor)
                                   AND s.strokecolor IS NOT DISTINCT FROM pg_temp.ref_argb_to_rgba(v.strokecolor)))
         AS other
  FROM shape s JOIN saved v USING (id) GROUP BY s.roi $$;
CREATE FUNCTION pg_temp.summary() RETURNS TABLE (rois_original int8, rois_converted int8, rois_other int8,
    shapes_original_or_fixed_point numeric, shapes_converted numeric, shapes_other numeric) LANGUAGE sql AS $$
SELECT count(*) FILTER (WHERE orig > 0 AND conv = 0 AND other = 0) AS rois_original,
       count(*) FILTER (WHERE conv > 0 AND other = 0) AS rois_converted,
       count(*) FILTER (WHERE other > 0) AS rois_other,
       sum(orig) AS shapes_original_or_fixed_point, sum(conv) AS shapes_converted, sum(other) AS shapes_other
  FROM pg_temp.per_roi() $$;
SELECT * FROM pg_temp.summary();

-- bad input: clear errors, nothing changed
CALL omero_colors_convert('argb-to-rgba');
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert(NULL);
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{}');
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{1, 999999, 999998, -4}');
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', image_ids => '{1, 888888}');
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', shape_ids => '{1, 777777}');
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', shape_ids => '{1, NULL}');
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', batch_size => 0);
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', batch_size => -5);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_colors_convert_tx('rgba', roi_ids => '{1}');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{1}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- more than one dimension
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{{1, 2}, {3, 4}}');
\echo :LAST_ERROR_SQLSTATE
-- NULL is not false: a NULL flag, batch size or method is an error (22023) that changes nothing
SELECT * FROM omero_colors_convert_tx('argb_to_rgba', roi_ids => '{1}', dry_run => NULL);
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{1}', dry_run => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_colors_convert_tx('argb_to_rgba', batch_size => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_colors_rewrite('argb_to_rgba', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.summary();
SELECT count(*) AS runs FROM omero_upgrade.color_runs;

-- dry run: counts and a sample, nothing changed, no run recorded
SELECT run_id, direction, dry_run, selected, converted, restored, already, changed, purged, raced,
       jsonb_array_length(sample) AS n_sample, sample->0 AS first, sample->3 AS fourth
  FROM omero_colors_convert_tx('argb_to_rgba', roi_ids => '{1, 2}', dry_run => true);
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{1, 2}', dry_run => true);
SELECT * FROM pg_temp.summary();
SELECT count(*) AS runs FROM omero_upgrade.color_runs;

-- a subset of ROIs, then the same again (nothing to do), then a superset (only the rest)
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{1, 2, 3}');
SELECT * FROM pg_temp.summary();
SELECT roi, orig, conv, other FROM pg_temp.per_roi() WHERE roi <= 5 ORDER BY roi;
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{1, 2, 3}');
SELECT * FROM pg_temp.summary();
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{1, 2, 3, 4, 5}', batch_size => 7);
SELECT roi, orig, conv, other FROM pg_temp.per_roi() WHERE roi <= 6 ORDER BY roi;
-- by image (ROI r is on image r for r <= 10) and by shape id
SELECT * FROM omero_colors_convert_tx('argb_to_rgba', image_ids => '{5, 6}');
SELECT * FROM omero_colors_convert_tx('argb_to_rgba', shape_ids => '{61, 62, 63, 75}');
SELECT roi, orig, conv, other FROM pg_temp.per_roi() WHERE roi BETWEEN 5 AND 8 ORDER BY roi;
SELECT direction, converted, pending, purged, first_at IS NOT NULL AS has_first, last_at >= first_at AS ordered,
       runs, running_runs, interrupted_runs FROM omero_colors_status();

-- in the caller's transaction: rolled back, nothing happened
BEGIN;
SELECT selected, converted, already FROM omero_colors_convert_tx('argb_to_rgba');
SELECT * FROM pg_temp.summary();
ROLLBACK;
SELECT * FROM pg_temp.summary();

-- everything, in small batches: each shape converted exactly once
CALL omero_colors_convert('argb_to_rgba', batch_size => 300);
SELECT * FROM pg_temp.summary();
SELECT count(*) AS shapes, count(*) FILTER (WHERE s.fillcolor IS NOT DISTINCT FROM pg_temp.ref_argb_to_rgba(v.fillcolor)
                                             AND s.strokecolor IS NOT DISTINCT FROM pg_temp.ref_argb_to_rgba(v.strokecolor)) AS exact
  FROM shape s JOIN saved v USING (id);
SELECT count(*) AS journaled, count(DISTINCT id) AS distinct_ids
  FROM omero_upgrade.color_journal c, unnest(c.shape_ids) id WHERE c.kind = 'convert';
SELECT run_id, direction, method, scope, finished_at IS NOT NULL AS finished, selected, converted, restored,
       already, changed, purged, raced FROM omero_upgrade.color_runs ORDER BY run_id;
SELECT run_id, covered_to = (SELECT max(id) FROM saved) AS covers_all FROM omero_upgrade.color_runs
 WHERE covered_to IS NOT NULL;
-- a shape OMERO 5.3 created after the conversion (RGBA already: opaque red): running the same
-- conversion again changes nothing and says so; given explicitly, it would be converted
CREATE TEMP TABLE newer AS SELECT * FROM shape WHERE id = 1;
UPDATE newer SET id = (SELECT max(id) + 1 FROM shape), roi_index = 1000, fillcolor = -16776961, strokecolor = -16776961;
INSERT INTO shape SELECT * FROM newer;
CALL omero_colors_convert('argb_to_rgba');
SELECT selected, converted, already FROM omero_colors_convert_tx('argb_to_rgba', batch_size => 700, dry_run => true);
SELECT s.fillcolor, s.strokecolor FROM shape s JOIN newer USING (id);
SELECT selected, converted, already
  FROM omero_colors_convert_tx('argb_to_rgba', shape_ids => ARRAY[(SELECT id FROM newer)], dry_run => true);
DELETE FROM shape WHERE id = (SELECT id FROM newer);

-- the reverse restores the exact originals (alpha 0 included), except what OMERO changed since
UPDATE shape SET fillcolor = 123, version = version + 1 WHERE id = 25;
UPDATE shape SET update_id = 2 WHERE id = 1234;
SELECT * FROM omero_colors_convert_tx('rgba_to_argb', roi_ids => '{1}', dry_run => true);
CALL omero_colors_convert('rgba_to_argb', roi_ids => '{1}');
SELECT id, to_hex(fillcolor) AS fill, to_hex(strokecolor) AS stroke FROM shape WHERE id IN (4, 31, 34, 40) ORDER BY id;
CALL omero_colors_convert('rgba_to_argb', batch_size => 500);
SELECT count(*) AS shapes,
       count(*) FILTER (WHERE s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                          AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor) AS exact_originals
  FROM shape s JOIN saved v USING (id);
SELECT id, fillcolor, strokecolor FROM shape WHERE id IN (25, 1234) ORDER BY id;
SELECT direction, converted, pending, purged, runs, running_runs, interrupted_runs FROM omero_colors_status();
-- the reverse again changes nothing (the changed shapes are reported again)
CALL omero_colors_convert('rgba_to_argb');
-- converting forward after the reverse is a fresh conversion
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{11, 12}');
SELECT direction, converted, pending FROM omero_colors_status();

-- a database converted by the official script (no journal): the reverse formula applies, and
-- converting forward again gives back the exact values
SELECT * FROM omero_colors_purge_journal(forget => true);
UPDATE shape s SET fillcolor = v.fillcolor, strokecolor = v.strokecolor, version = v.version, update_id = v.update_id
  FROM saved v WHERE s.id = v.id;
SELECT * FROM omero_colors_convert_tx('rgba_to_argb', roi_ids => '{4}');
SELECT id, to_hex(fillcolor) AS fill, to_hex(strokecolor) AS stroke FROM shape WHERE id IN (31, 34) ORDER BY id;
SELECT * FROM omero_colors_convert_tx('argb_to_rgba', roi_ids => '{4}');
SELECT * FROM pg_temp.summary();

-- purge: originals dropped, converted shapes stay marked
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{8, 9}');
-- (NULL is not false: NULL flags purge nothing)
SELECT * FROM omero_colors_purge_journal(NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_colors_purge_journal(forget => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_colors_purge_journal(dry_run => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_colors_purge_journal(dry_run => true);
SELECT * FROM omero_colors_purge_journal();
SELECT direction, converted, pending, purged FROM omero_colors_status();
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{8}');
CALL omero_colors_convert('rgba_to_argb', roi_ids => '{8}');
SELECT roi, orig, conv, other FROM pg_temp.per_roi() WHERE roi IN (8, 9) ORDER BY roi;
SELECT * FROM omero_colors_purge_journal(forget => true);
SELECT direction, converted, pending, purged FROM omero_colors_status();
UPDATE shape s SET fillcolor = v.fillcolor, strokecolor = v.strokecolor FROM saved v WHERE s.id = v.id;
SELECT * FROM pg_temp.summary();

-- a subset by image with nothing journaled: one statement (planner settings put back after it)
BEGIN;
SELECT selected, converted, already, raced FROM omero_colors_convert_tx('argb_to_rgba', image_ids => '{2, 3}');
SELECT bool_and(setting = reset_val) AS settings_back FROM pg_settings
 WHERE name IN ('enable_hashjoin', 'enable_mergejoin', 'enable_seqscan', 'jit');
SELECT roi, orig, conv, other FROM pg_temp.per_roi() WHERE roi <= 4 ORDER BY roi;
SELECT count(*) AS chunks, sum(cardinality(shape_ids)) AS journaled FROM omero_upgrade.color_journal;
ROLLBACK;

-- the rewrite fast path: the whole table in one pass, journaled like the rest
SELECT run_id, direction, dry_run, selected, converted, jsonb_array_length(sample) AS n_sample
  FROM omero_colors_rewrite('argb_to_rgba', dry_run => true);
SELECT * FROM pg_temp.summary();
SELECT run_id IS NOT NULL AS has_run, direction, dry_run, selected, converted, restored, already
  FROM omero_colors_rewrite('argb_to_rgba');
SELECT * FROM pg_temp.summary();
SELECT direction, converted, pending FROM omero_colors_status();
SELECT count(*) AS indexes_valid FROM pg_index WHERE indrelid = 'shape'::regclass AND indisvalid;
SELECT * FROM omero_colors_rewrite('argb_to_rgba');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_colors_rewrite('rgba_to_argb', dry_run => true);
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba');
CALL omero_colors_convert('rgba_to_argb', batch_size => 1000);
SELECT count(*) AS shapes,
       count(*) FILTER (WHERE s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                          AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor) AS exact_originals
  FROM shape s JOIN saved v USING (id);
SELECT * FROM omero_colors_rewrite('wrong');
\echo :LAST_ERROR_SQLSTATE
-- every shape restored by rgba_to_argb: the batch path says "already", so the fast path refuses
-- that direction (it would convert all of them again), while argb_to_rgba is a fresh conversion
SELECT selected, converted, restored, already FROM omero_colors_convert_tx('rgba_to_argb', dry_run => true);
SELECT * FROM omero_colors_rewrite('rgba_to_argb');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_colors_rewrite('rgba_to_argb', dry_run => true);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FILTER (WHERE s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                          AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor) AS exact_originals
  FROM shape s JOIN saved v USING (id);
SELECT selected, converted FROM omero_colors_rewrite('argb_to_rgba', dry_run => true);

-- CALL with method 'auto' (the default), every shape, no other session, nothing journaled: the
-- one-pass rewrite; the reverse then goes by batches (the journal is not empty) and is exact;
-- the methods' errors
SELECT * FROM omero_colors_purge_journal(forget => true);
CALL omero_colors_convert('argb_to_rgba');
SELECT method, selected, converted, finished_at IS NOT NULL AS finished FROM omero_upgrade.color_runs
 WHERE run_id = (SELECT max(run_id) FROM omero_upgrade.color_runs);
SELECT count(*) AS shapes, count(*) FILTER (WHERE s.fillcolor IS NOT DISTINCT FROM pg_temp.ref_argb_to_rgba(v.fillcolor)
                                             AND s.strokecolor IS NOT DISTINCT FROM pg_temp.ref_argb_to_rgba(v.strokecolor)) AS exact
  FROM shape s JOIN saved v USING (id);
CALL omero_colors_convert('rgba_to_argb');
SELECT method FROM omero_upgrade.color_runs WHERE run_id = (SELECT max(run_id) FROM omero_upgrade.color_runs);
SELECT count(*) FILTER (WHERE s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                          AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor) AS exact_originals
  FROM shape s JOIN saved v USING (id);
CALL omero_colors_convert('rgba_to_argb', method => 'rewrite');
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{1}', method => 'rewrite');
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', method => 'fast');
\echo :LAST_ERROR_SQLSTATE
CALL omero_colors_convert('argb_to_rgba', method => NULL);
\echo :LAST_ERROR_SQLSTATE

-- a CALL cancelled by statement_timeout (each batch slowed by a trigger, so that the timeout
-- strikes in the first batch, after the run was recorded): the next CALL of the same session
-- takes the run over, as it does runs of sessions that are gone
CREATE FUNCTION pg_temp.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(10); RETURN NULL; END $$;
CREATE TRIGGER slow AFTER UPDATE ON shape FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.slow();
SET statement_timeout = '2s';
\set VERBOSITY terse
CALL omero_colors_convert('argb_to_rgba', batch_size => 500);
\set VERBOSITY default
RESET statement_timeout;
DROP TRIGGER slow ON shape;
SELECT direction, converted, running_runs, interrupted_runs FROM omero_colors_status();
SELECT count(*) AS unfinished FROM omero_upgrade.color_runs WHERE finished_at IS NULL AND resumed_by IS NULL;
CALL omero_colors_convert('argb_to_rgba', batch_size => 500);
SELECT o.resumed_by = n.run_id AS taken_over, n.finished_at IS NOT NULL AS resumed_finished
  FROM omero_upgrade.color_runs o, omero_upgrade.color_runs n
 WHERE o.finished_at IS NULL AND n.run_id = (SELECT max(run_id) FROM omero_upgrade.color_runs);
SELECT direction, converted, running_runs, interrupted_runs FROM omero_colors_status();
SELECT * FROM pg_temp.summary();

-- status: pending is what a run of every shape in that direction would touch (to_convert by the
-- formula + to_restore from the journal), left_alone the rest; each time checked against that
-- run's own dry run. On a database never converted both directions would convert every shape.
CREATE FUNCTION pg_temp.status_vs_run() RETURNS TABLE (direction text, converted int8, pending int8, to_convert int8,
    to_restore int8, left_alone int8, agrees_with_dry_run bool) LANGUAGE sql AS $$
SELECT s.direction, s.converted, s.pending, s.to_convert, s.to_restore, s.left_alone,
       s.to_convert = d.converted AND s.to_restore = d.restored AND s.pending + s.left_alone = (SELECT count(*) FROM shape)
  FROM omero_colors_status() s
 CROSS JOIN LATERAL omero_colors_convert_tx(s.direction, dry_run => true) d ORDER BY s.direction $$;
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT count(*) >= 0 AS forgotten FROM omero_colors_purge_journal(forget => true);
UPDATE shape s SET fillcolor = v.fillcolor, strokecolor = v.strokecolor, version = v.version, update_id = v.update_id
  FROM saved v WHERE s.id = v.id;
SELECT * FROM pg_temp.status_vs_run();
CALL omero_colors_convert('argb_to_rgba', method => 'batch');
SELECT * FROM pg_temp.status_vs_run();
-- OMERO changes a converted shape; a 5.3 server creates one (above the full run's covered_to)
UPDATE shape SET fillcolor = 77, version = version + 1 WHERE id = 30;
INSERT INTO shape SELECT * FROM newer;
SELECT * FROM pg_temp.status_vs_run();
-- the reverse of every shape: now nothing is pending in that direction (1.0 said all of them)
CALL omero_colors_convert('rgba_to_argb', method => 'batch');
SELECT * FROM pg_temp.status_vs_run();
-- purged originals: the reverse leaves them alone
CALL omero_colors_convert('argb_to_rgba', roi_ids => '{2}');
SELECT count(*) >= 0 AS purged FROM omero_colors_purge_journal();
SELECT * FROM pg_temp.status_vs_run();
SELECT count(*) >= 0 AS forgotten FROM omero_colors_purge_journal(forget => true);
DELETE FROM shape WHERE id = (SELECT id FROM newer);
UPDATE shape s SET fillcolor = v.fillcolor, strokecolor = v.strokecolor, version = v.version, update_id = v.update_id
  FROM saved v WHERE s.id = v.id;
SET client_min_messages = notice;
\set VERBOSITY default

-- the journal reader: only the elements asked about, by range and by list (in any order); a
-- purged chunk (NULL arrays) gives NULL originals; arrays of different lengths are an error
SELECT * FROM omero_upgrade.color_journal_pick('{5,3,9,7}', '{50,30,90,70}', '{-1,-3,NULL,-7}', '{1,1,2,2}',
                                               '{10,10,20,20}', 4, 9, NULL);
SELECT * FROM omero_upgrade.color_journal_pick('{5,3,9,7}', '{50,30,90,70}', '{-1,-3,NULL,-7}', '{1,1,2,2}',
                                               '{10,10,20,20}', 0, 100, '{9,3,4}');
SELECT * FROM omero_upgrade.color_journal_pick('{5,3}', NULL, NULL, NULL, NULL, 0, 100, '{3}');
SELECT * FROM omero_upgrade.color_journal_pick('{5,3}', '{1}', NULL, NULL, NULL, 0, 100, NULL);
\echo :LAST_ERROR_SQLSTATE

-- not an OMERO database
CREATE DATABASE colors_plain;
\c colors_plain
CREATE EXTENSION omero_upgrade;
CALL omero_colors_convert('argb_to_rgba');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM omero_colors_status();
\echo :LAST_ERROR_SQLSTATE
SELECT omero_argb_to_rgba(-65536) = -16776961 AS red_ok;
\c colors_db
DROP EXTENSION omero_upgrade;
SELECT count(*) AS state_tables_left FROM pg_class WHERE relname LIKE 'color\_%';
\c omero_regress
DROP DATABASE colors_db;
DROP DATABASE colors_plain;
