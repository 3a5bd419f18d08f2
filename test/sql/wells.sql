-- omero_annotations_move_to_wells / omero_annotations_move_to_wells_in_batches on the fixture:
-- every link created or removed is compared with an independent SQL oracle written here; dry
-- runs change nothing; re-runs create nothing; the result keeps OMERO's constraints.
-- Ids of new rows depend on the sequences, so they are never shown; fixed annotations 84–90
-- (on the images of well 2) are shown by annotation, owner, group and permissions.
CREATE DATABASE wells;
\c wells
\set version OMERO5.4__0
\i test/fixture/fixture.sql
CREATE EXTENSION omero_upgrade;

-- Extra rows. Image 3 (field 0 of well 3) is also a field of well 5, so its links may only go
-- once both wells have its annotations. Image 4 (field 1 of well 3) is linked to 84 by carol
-- and to 85 by bob and alice, while well 3 already has 85 for alice only.
INSERT INTO wellsample (id, permissions, version, creation_id, group_id, owner_id, update_id, image, well, well_index)
SELECT ome_nextval('seq_wellsample'), ws.permissions, 0, ws.creation_id, ws.group_id, ws.owner_id, ws.update_id,
       3, 5, 2
  FROM wellsample AS ws WHERE ws.image = 3;
INSERT INTO imageannotationlink (id, permissions, version, parent, child, creation_id, group_id, owner_id, update_id)
VALUES (ome_nextval('seq_imageannotationlink'), -40, 0, 3, 84, 5, 4, 4, 5),
       (ome_nextval('seq_imageannotationlink'), -40, 0, 4, 85, 3, 4, 3, 3),
       (ome_nextval('seq_imageannotationlink'), -40, 0, 4, 85, 2, 4, 2, 2);
INSERT INTO wellannotationlink (id, permissions, version, parent, child, creation_id, group_id, owner_id, update_id)
VALUES (ome_nextval('seq_wellannotationlink'), -40, 0, 3, 85, 2, 4, 2, 2);

-- Snapshots taken before each step.
CREATE FUNCTION pg_temp.snapshot() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DROP TABLE IF EXISTS snap_wal, snap_ial, snap_counts;
    CREATE TABLE snap_wal AS SELECT * FROM wellannotationlink;
    CREATE TABLE snap_ial AS SELECT * FROM imageannotationlink;
    CREATE TABLE snap_counts AS
    SELECT (SELECT count(*) FROM event) AS events, (SELECT count(*) FROM session) AS sessions,
           (SELECT count(*) FROM eventlog) AS eventlogs;
END;
$$;
SELECT pg_temp.snapshot();
-- The oracle: for wells, the annotations of their images' links before the step (snap_ial, of
-- one discriminator and/or namespace), one per (well, annotation, owner), with group and
-- permissions of the oldest link.
CREATE FUNCTION pg_temp.oracle(wells int8[], disc text DEFAULT NULL, want_ns text DEFAULT NULL)
RETURNS TABLE (parent int8, child int8, owner_id int8, group_id int8, permissions int8)
LANGUAGE sql AS $$
    SELECT f.well, f.child, f.owner_id, il.group_id, il.permissions
      FROM (SELECT ws.well, l.child, l.owner_id, min(l.id) AS first_link
              FROM wellsample AS ws
              JOIN snap_ial AS l ON l.parent = ws.image
              JOIN annotation AS a ON a.id = l.child
             WHERE ws.well = ANY (wells)
               AND (disc IS NULL OR a.discriminator = disc)
               AND (want_ns IS NULL OR a.ns = want_ns)
             GROUP BY ws.well, l.child, l.owner_id) AS f
      JOIN snap_ial AS il ON il.id = f.first_link
$$;
CREATE FUNCTION pg_temp.wells_of(plates int8[]) RETURNS int8[] LANGUAGE sql AS $$
    SELECT array_agg(id ORDER BY id) FROM well WHERE plate = ANY (plates)
$$;
-- Links created since the snapshot that the oracle does not expect, and the reverse.
CREATE FUNCTION pg_temp.check_created(wells int8[], disc text DEFAULT NULL, want_ns text DEFAULT NULL)
RETURNS TABLE (created int8, unexpected int8, missing int8) LANGUAGE sql AS $$
    WITH created AS (
        SELECT parent, child, owner_id, group_id, permissions FROM wellannotationlink
         WHERE id NOT IN (SELECT id FROM snap_wal)),
    expected AS (
        SELECT o.* FROM pg_temp.oracle(wells, disc, want_ns) AS o
         WHERE NOT EXISTS (SELECT 1 FROM snap_wal AS s
                            WHERE s.parent = o.parent AND s.child = o.child AND s.owner_id = o.owner_id))
    SELECT (SELECT count(*) FROM created),
           (SELECT count(*) FROM (SELECT * FROM created EXCEPT SELECT * FROM expected) AS x),
           (SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM created) AS x)
$$;
-- Image links removed since the snapshot against those the oracle says may go: matching links
-- of the wells' images whose annotation is now on every well of the image for their owner.
CREATE FUNCTION pg_temp.check_removed(wells int8[], disc text DEFAULT NULL, want_ns text DEFAULT NULL)
RETURNS TABLE (removed int8, unexpected int8, missing int8) LANGUAGE sql AS $$
    WITH removed AS (SELECT id FROM snap_ial EXCEPT SELECT id FROM imageannotationlink),
    expected AS (
        SELECT l.id FROM snap_ial AS l JOIN annotation AS a ON a.id = l.child
         WHERE l.parent IN (SELECT image FROM wellsample WHERE well = ANY (wells))
           AND (disc IS NULL OR a.discriminator = disc)
           AND (want_ns IS NULL OR a.ns = want_ns)
           AND (SELECT bool_and(EXISTS (SELECT 1 FROM wellannotationlink AS x
                                         WHERE x.parent = ws.well AND x.child = l.child AND x.owner_id = l.owner_id))
                  FROM wellsample AS ws WHERE ws.image = l.parent))
    SELECT (SELECT count(*) FROM removed),
           (SELECT count(*) FROM (SELECT * FROM removed EXCEPT SELECT * FROM expected) AS x),
           (SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM removed) AS x)
$$;
-- Image links removed since the snapshot.
CREATE FUNCTION pg_temp.removed() RETURNS int8 LANGUAGE sql AS $$
    SELECT count(*) FROM (SELECT id FROM snap_ial EXCEPT SELECT id FROM imageannotationlink) AS x
$$;
-- Nothing at all changed since the snapshot.
CREATE FUNCTION pg_temp.unchanged() RETURNS boolean LANGUAGE sql AS $$
    SELECT NOT EXISTS (SELECT * FROM wellannotationlink EXCEPT SELECT * FROM snap_wal)
       AND NOT EXISTS (SELECT * FROM snap_wal EXCEPT SELECT * FROM wellannotationlink)
       AND NOT EXISTS (SELECT * FROM imageannotationlink EXCEPT SELECT * FROM snap_ial)
       AND NOT EXISTS (SELECT * FROM snap_ial EXCEPT SELECT * FROM imageannotationlink)
       AND (SELECT events FROM snap_counts) = (SELECT count(*) FROM event)
       AND (SELECT sessions FROM snap_counts) = (SELECT count(*) FROM session)
       AND (SELECT eventlogs FROM snap_counts) = (SELECT count(*) FROM eventlog)
$$;
-- Annotations 84–90 on well 2.
CREATE FUNCTION pg_temp.well2()
RETURNS TABLE (child int8, owner varchar, grp varchar, permissions int8, link text) LANGUAGE sql AS $$
SELECT l.child, e.omename AS owner, g.name AS grp, l.permissions,
       CASE WHEN l.id IN (SELECT id FROM snap_wal) THEN 'old' ELSE 'new' END AS link
  FROM wellannotationlink AS l
  JOIN experimenter AS e ON e.id = l.owner_id
  JOIN experimentergroup AS g ON g.id = l.group_id
 WHERE l.parent = 2 AND l.child BETWEEN 84 AND 90
 ORDER BY l.child, e.omename
$$;

-- 1. A dry run over everything reports, per plate, what the oracle expects, and changes nothing.
SELECT pg_temp.snapshot();
SELECT * FROM omero_annotations_move_to_wells(screen_ids => '{1,2}', plate_ids => '{4}', remove_image_links => true);
CREATE TEMP TABLE oracle_plates AS
SELECT p.id AS plate_id,
       (SELECT count(*) FROM well AS w WHERE w.plate = p.id) AS wells,
       (SELECT count(*) FROM well AS w WHERE w.plate = p.id
           AND NOT EXISTS (SELECT 1 FROM wellsample AS ws WHERE ws.well = w.id)) AS wells_without_samples,
       (SELECT count(DISTINCT l.id) FROM imageannotationlink AS l JOIN wellsample AS ws ON ws.image = l.parent
          JOIN well AS w ON w.id = ws.well WHERE w.plate = p.id) AS image_links,
       count(o.parent) FILTER (WHERE NOT o.present) AS links_created,
       count(o.parent) FILTER (WHERE o.present) AS links_already_on_well
  FROM plate AS p
  LEFT JOIN (SELECT o.*, w.plate, EXISTS (SELECT 1 FROM snap_wal AS s
                                           WHERE s.parent = o.parent AND s.child = o.child AND s.owner_id = o.owner_id) AS present
               FROM pg_temp.oracle(pg_temp.wells_of('{1,2,3,4}')) AS o JOIN well AS w ON w.id = o.parent) AS o
    ON o.plate = p.id
 GROUP BY p.id;
SELECT count(*) AS report_rows_unlike_oracle
  FROM (SELECT plate_id, wells, wells_without_samples, image_links, links_created, links_already_on_well
          FROM omero_annotations_move_to_wells(plate_ids => '{1,2,3,4}')
        EXCEPT SELECT * FROM oracle_plates) AS x;
SELECT pg_temp.unchanged() AS dry_run_changed_nothing;
-- A dry run also works in a read-only transaction.
BEGIN READ ONLY;
SELECT plate_id, links_created FROM omero_annotations_move_to_wells(well_ids => '{2}', dry_run => true);
COMMIT;

-- 2. Tags only, on plate 2: well 2 gets tag 84 for bob (alice already has it) and 90 for carol.
SELECT pg_temp.snapshot();
SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', annotation_kind => 'tag', dry_run => false);
SELECT * FROM pg_temp.check_created(pg_temp.wells_of('{2}'), '/basic/text/tag/');
SELECT pg_temp.removed() AS image_links_removed;
SELECT * FROM pg_temp.well2();

-- 3. Ratings (long annotations in the rating namespace), on well 2 only.
SELECT pg_temp.snapshot();
SELECT * FROM omero_annotations_move_to_wells(well_ids => '{2}', annotation_kind => 'Rating', dry_run => false);
SELECT * FROM pg_temp.check_created('{2}', '/basic/num/long/', 'openmicroscopy.org/omero/insight/rating');
SELECT pg_temp.removed() AS image_links_removed;
SELECT * FROM pg_temp.well2() WHERE link = 'new';

-- 4. One namespace, every kind, with removal: tag 90 is on well 2 already (step 2), so its
--    image link goes without a new link.
SELECT pg_temp.snapshot();
SELECT * FROM omero_annotations_move_to_wells(well_ids => '{2}', ns => 'example.org/lab', remove_image_links => true,
                                              dry_run => false);
SELECT * FROM pg_temp.check_created('{2}', NULL, 'example.org/lab');
SELECT * FROM pg_temp.check_removed('{2}', NULL, 'example.org/lab');
SELECT l.child, e.omename AS owner FROM snap_ial AS l JOIN experimenter AS e ON e.id = l.owner_id
 WHERE l.id NOT IN (SELECT id FROM imageannotationlink);

-- 4b. Wells 3 and 5 in batches of one, with removal: image 3 is in both, so the real run removes
--     its links in the second batch, once well 3 got the annotations in the first; the dry run
--     must say exactly that (it changes nothing, so it simulates the earlier batches). The real
--     run is rolled back.
SELECT pg_temp.snapshot();
CREATE TEMP TABLE dry35 AS
SELECT * FROM omero_annotations_move_to_wells(well_ids => '{3,5}', remove_image_links => true, batch_size => 1);
BEGIN;
SELECT string_agg(r::text, ' ' ORDER BY r.plate_id) AS real35
  FROM omero_annotations_move_to_wells(well_ids => '{3,5}', remove_image_links => true, batch_size => 1,
                                       dry_run => false) AS r \gset
ROLLBACK;
SELECT * FROM dry35;
SELECT :'real35' AS real_run,
       (SELECT string_agg(r::text, ' ' ORDER BY r.plate_id) FROM dry35 AS r) = :'real35' AS dry_run_says_the_same,
       pg_temp.unchanged() AS rolled_back;
-- The same once both wells have the annotations (moved without removal first): the first batch
-- removes image 3's links, so the second finds them gone; the dry run counts them once too.
BEGIN;
SELECT links_created FROM omero_annotations_move_to_wells(well_ids => '{3,5}', dry_run => false);
SELECT string_agg(r::text, ' ' ORDER BY r.plate_id) AS dry35
  FROM omero_annotations_move_to_wells(well_ids => '{3,5}', remove_image_links => true, batch_size => 1) AS r \gset
SELECT string_agg(r::text, ' ' ORDER BY r.plate_id) AS real35
  FROM omero_annotations_move_to_wells(well_ids => '{3,5}', remove_image_links => true, batch_size => 1,
                                       dry_run => false) AS r \gset
ROLLBACK;
SELECT :'dry35' AS dry_run, :'dry35' = :'real35' AS dry_run_says_the_same, pg_temp.unchanged() AS rolled_back;
-- 5. Well 3 alone, with removal: 85 goes to well 3 for bob (alice has it there already; carol's
--    tag 84 came in step 2); image 3 is also in well 5, so its links stay until well 5 has
--    their annotations too.
SELECT pg_temp.snapshot();
SELECT * FROM omero_annotations_move_to_wells(well_ids => '{3}', remove_image_links => true, dry_run => false);
SELECT * FROM pg_temp.check_created('{3}');
SELECT * FROM pg_temp.check_removed('{3}');
SELECT l.child, e.omename AS owner, l.id IN (SELECT id FROM snap_wal) AS before
  FROM wellannotationlink AS l JOIN experimenter AS e ON e.id = l.owner_id
 WHERE l.parent = 3 AND l.child IN (84, 85) ORDER BY 1, 2;
SELECT (SELECT count(*) FROM snap_ial WHERE parent = 3) AS image3_links_before,
       (SELECT count(*) FROM imageannotationlink WHERE parent = 3) AS image3_links_kept,
       (SELECT count(*) FROM imageannotationlink WHERE parent = 4) AS image4_links_kept;
SELECT pg_temp.snapshot();
SELECT * FROM omero_annotations_move_to_wells(well_ids => '{5}', remove_image_links => true, dry_run => false);
SELECT * FROM pg_temp.check_created('{5}');
SELECT * FROM pg_temp.check_removed('{5}');
SELECT count(*) AS image3_links_kept FROM imageannotationlink WHERE parent = 3;

-- 6. Everything in screen 1 (plates 1–3), without removal: links created match the oracle,
--    image links stay; the per-plate dry run said the same beforehand.
SELECT pg_temp.snapshot();
SELECT plate_id, links_created, links_removed
  FROM omero_annotations_move_to_wells(screen_ids => '{1}', batch_size => 7);
SELECT * FROM omero_annotations_move_to_wells(screen_ids => '{1}', batch_size => 7, dry_run => false);
SELECT * FROM pg_temp.check_created(pg_temp.wells_of('{1,2,3}'));
SELECT pg_temp.removed() AS image_links_removed;
SELECT * FROM pg_temp.well2();

-- 7. Running it again creates nothing, records nothing.
SELECT pg_temp.snapshot();
SELECT plate_id, links_created, links_removed
  FROM omero_annotations_move_to_wells(screen_ids => '{1}', dry_run => false);
SELECT pg_temp.unchanged() AS rerun_changed_nothing;

-- 8. The procedure, on plate 4 (in no screen), committing every 5 wells, with removal; then
--    plate 3 with removal (its links are on the wells since step 6: only removals).
SELECT pg_temp.snapshot();
SET client_min_messages = notice;
CALL omero_annotations_move_to_wells_in_batches(plate_ids => '{4}', remove_image_links => true, dry_run => false,
                                                batch_size => 5);
SET client_min_messages = warning;
SELECT * FROM pg_temp.check_created(pg_temp.wells_of('{4}'));
SELECT * FROM pg_temp.check_removed(pg_temp.wells_of('{4}'));
SELECT pg_temp.snapshot();
CALL omero_annotations_move_to_wells_in_batches(plate_ids => '{3}', remove_image_links => true, dry_run => false);
SELECT * FROM pg_temp.check_created(pg_temp.wells_of('{3}'));
SELECT * FROM pg_temp.check_removed(pg_temp.wells_of('{3}'));
-- Inside a transaction block it cannot commit: one transaction, rolled back here.
SELECT pg_temp.snapshot();
BEGIN;
CALL omero_annotations_move_to_wells_in_batches(plate_ids => '{2}', remove_image_links => true, dry_run => false,
                                                batch_size => 2);
SELECT pg_temp.removed() > 0 AS removed_inside;
ROLLBACK;
SELECT pg_temp.unchanged() AS rolled_back;

-- 9. OMERO's constraints hold (they are real constraints here; checked explicitly as well).
SELECT count(*) AS duplicate_well_links
  FROM (SELECT parent, child, owner_id FROM wellannotationlink GROUP BY 1, 2, 3 HAVING count(*) > 1) AS d;
SELECT count(*) FILTER (WHERE w.id IS NULL) AS bad_parent, count(*) FILTER (WHERE a.id IS NULL) AS bad_child,
       count(*) FILTER (WHERE ce.id IS NULL OR ue.id IS NULL) AS bad_event,
       count(*) FILTER (WHERE e.id IS NULL) AS bad_owner, count(*) FILTER (WHERE g.id IS NULL) AS bad_group,
       count(*) FILTER (WHERE l.permissions IS NULL OR l.version IS NULL) AS nulls
  FROM wellannotationlink AS l
  LEFT JOIN well AS w ON w.id = l.parent
  LEFT JOIN annotation AS a ON a.id = l.child
  LEFT JOIN event AS ce ON ce.id = l.creation_id
  LEFT JOIN event AS ue ON ue.id = l.update_id
  LEFT JOIN experimenter AS e ON e.id = l.owner_id
  LEFT JOIN experimentergroup AS g ON g.id = l.group_id;
SELECT (SELECT max(id) FROM wellannotationlink) <= (SELECT last_value FROM seq_wellannotationlink) AS link_seq_ok,
       (SELECT max(id) FROM eventlog) <= (SELECT last_value FROM seq_eventlog) AS eventlog_seq_ok,
       (SELECT max(id) FROM event) <= (SELECT last_value FROM seq_event) AS event_seq_ok,
       (SELECT max(id) FROM session) <= (SELECT last_value FROM seq_session) AS session_seq_ok;
-- The record of the operation: one closed session of root, one event per group, type Internal;
-- an eventlog row per link created (INSERT) or removed (DELETE).
-- Eight runs changed something (steps 2, 3, 4, 5 twice, 6, 8 twice; the rolled back one left nothing).
SELECT s.useragent, s.message, s.defaulteventtype, o.omename AS owner, count(DISTINCT s.id) AS sessions,
       bool_and(s.closed IS NOT NULL) AS closed, count(ev.id) AS events,
       count(*) = count(DISTINCT (s.id, ev.experimentergroup)) AS one_event_per_group,
       bool_and(t.value = 'Internal' AND ev.experimenter = 0) AS internal_by_root
  FROM session AS s
  JOIN experimenter AS o ON o.id = s.owner
  JOIN event AS ev ON ev.session = s.id
  JOIN eventtype AS t ON t.id = ev.type
 WHERE s.useragent = 'omero_upgrade'
 GROUP BY 1, 2, 3, 4;
SELECT l.action, l.entitytype, count(*),
       count(*) FILTER (WHERE l.action = 'INSERT' AND NOT EXISTS (
           SELECT 1 FROM wellannotationlink AS w WHERE w.id = l.entityid AND w.creation_id = l.event)) AS mismatched
  FROM eventlog AS l JOIN event AS ev ON ev.id = l.event JOIN session AS s ON s.id = ev.session
 WHERE s.useragent = 'omero_upgrade'
 GROUP BY 1, 2 ORDER BY 1;
SELECT (SELECT count(*) FROM eventlog AS l JOIN event AS ev ON ev.id = l.event JOIN session AS s ON s.id = ev.session
         WHERE s.useragent = 'omero_upgrade' AND l.action = 'INSERT')
     = (SELECT count(*) FROM wellannotationlink AS w JOIN event AS ev ON ev.id = w.creation_id
          JOIN session AS s ON s.id = ev.session WHERE s.useragent = 'omero_upgrade') AS every_new_link_logged;

\c omero_regress
DROP DATABASE wells;
