-- omero_annotations_move_to_wells: bad input gets a clear error (SQLSTATE 22023 for arguments,
-- 55000 for a database that is not OMERO) and changes nothing.
\set VERBOSITY default
CREATE DATABASE wells_plain;
\c wells_plain
CREATE EXTENSION omero_upgrade;
SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{1}');

CREATE DATABASE wells_input;
\c wells_input
\i test/fixture/fixture.sql
CREATE EXTENSION omero_upgrade;
CREATE TABLE snap AS
SELECT (SELECT count(*) FROM wellannotationlink) AS well_links, (SELECT count(*) FROM imageannotationlink) AS image_links,
       (SELECT count(*) FROM event) AS events, (SELECT count(*) FROM session) AS sessions,
       (SELECT count(*) FROM eventlog) AS eventlogs;
-- The SQLSTATE a statement fails with ('ok' when it does not).
CREATE FUNCTION pg_temp.sqlstate(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END;
$$;

-- Nothing chosen
SELECT * FROM omero_annotations_move_to_wells();
SELECT * FROM omero_annotations_move_to_wells(screen_ids => '{}', plate_ids => '{}', well_ids => '{}', dry_run => false);
-- Ids that do not exist: all of them are named, nothing is done
SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2,999,1000}', dry_run => false);
SELECT * FROM omero_annotations_move_to_wells(screen_ids => '{1,77}', dry_run => false);
SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', well_ids => '{2,5000}', dry_run => false);
SELECT * FROM omero_annotations_move_to_wells(well_ids => '{2,NULL}');
-- Unknown kind; a kind whose namespace contradicts ns; a bad batch size
SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', annotation_kind => 'photo', dry_run => false);
SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', annotation_kind => 'rating', ns => 'example.org/lab');
SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', batch_size => 0);
CALL omero_annotations_move_to_wells_in_batches(plate_ids => '{2}', annotation_kind => 'photo', dry_run => false);
SELECT pg_temp.sqlstate($$SELECT * FROM omero_annotations_move_to_wells()$$) AS nothing_chosen,
       pg_temp.sqlstate($$SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{999}')$$) AS no_such_plate,
       pg_temp.sqlstate($$SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', annotation_kind => 'photo')$$) AS unknown_kind,
       pg_temp.sqlstate($$SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', batch_size => -1)$$) AS bad_batch;
-- NULL is not false: a NULL dry_run, remove_image_links or batch_size is an error, never a default.
SELECT pg_temp.sqlstate($$SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', dry_run => NULL)$$) AS dry_run_null,
       pg_temp.sqlstate($$SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', dry_run => false,
                                                                       remove_image_links => NULL)$$) AS remove_null,
       pg_temp.sqlstate($$SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', batch_size => NULL)$$) AS batch_null,
       pg_temp.sqlstate($$CALL omero_annotations_move_to_wells_in_batches(plate_ids => '{2}', dry_run => NULL)$$) AS call_dry_run_null;
SELECT * FROM omero_annotations_move_to_wells(plate_ids => '{2}', remove_image_links => true, dry_run => NULL);
\c wells_plain
DO $$
BEGIN
    PERFORM * FROM omero_annotations_move_to_wells(plate_ids => '{1}');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'not OMERO: %', SQLSTATE;
END
$$;
\c wells_input

-- Kinds are case-insensitive; a well without samples and a plate without wells are counted.
SELECT plate_id, wells, wells_without_samples, links_created > 0 AS would_create, links_removed
  FROM omero_annotations_move_to_wells(plate_ids => '{1}', well_ids => '{1,2}', annotation_kind => 'TAG');
SELECT * FROM omero_annotations_move_to_wells(well_ids => '{1}', dry_run => false);
-- A screen without plates is a valid choice with nothing to report.
SELECT * FROM omero_annotations_move_to_wells(screen_ids => '{2}', dry_run => false);

SELECT (SELECT count(*) FROM wellannotationlink) = well_links AS well_links_same,
       (SELECT count(*) FROM imageannotationlink) = image_links AS image_links_same,
       (SELECT count(*) FROM event) = events AND (SELECT count(*) FROM session) = sessions
       AND (SELECT count(*) FROM eventlog) = eventlogs AS nothing_recorded
  FROM snap;

\c omero_regress
DROP DATABASE wells_input;
DROP DATABASE wells_plain;
