-- omero_history() and omero_history_record(): entries recorded through the function (os_user and
-- host given, else from the session's omero_upgrade.os_user / omero_upgrade.host settings, else
-- none and the client's address or 'local'), the extension's own runs recorded by the extension
-- in their transaction (an orphan delete and its restore, a colour conversion, a move to wells),
-- dry runs and rolled-back runs recording nothing, bad kinds refused, and roles outside the
-- state roles neither reading nor writing the history.
CREATE DATABASE history;
\c history
\set version OMERO5.4__0
\i test/fixture/fixture.sql
CREATE EXTENSION omero_upgrade;
SET client_min_messages = warning;

SELECT count(*) AS entries FROM omero_history();
SELECT omero_history_record('hop', 'sql/psql/OMERO5.4__0/OMERO5.3__1.sql', 'OMERO5.3__1', 'OMERO5.4__0',
                            '{"sql/psql/OMERO5.4__0/OMERO5.3__1.sql": "00ff"}', NULL, 'alice', 'omero-host') > 0 AS recorded;
SELECT pg_catalog.set_config('omero_upgrade.os_user', 'bob', false) AS os_user,
       pg_catalog.set_config('omero_upgrade.host', 'h2', false) AS host;
SELECT omero_history_record('backup', 'pg_dump to /backups/x.pgdump', details => '{"bytes": 3}') > 0 AS recorded;
RESET omero_upgrade.os_user;
RESET omero_upgrade.host;
SELECT omero_history_record('site-sql', '010_widen.sql') > 0 AS recorded;
-- Refused: a kind that is not a lower-case word, no kind, no what.
\set VERBOSITY terse
SELECT omero_history_record('Bad Kind', 'x');
SELECT omero_history_record(NULL, 'x');
SELECT omero_history_record('hop', NULL);
\set VERBOSITY default

-- The extension's own runs record themselves; dry runs and rolled-back ones do not.
SELECT pg_catalog.set_config('omero_upgrade.os_user', 'carol', false) AS os_user;
SELECT scanned > 0 AS found FROM omero_orphans_delete(dry_run => true);
BEGIN;
SELECT deleted > 0 AS deleted FROM omero_orphans_delete(dry_run => false);
ROLLBACK;
SELECT deleted > 0 AS deleted FROM omero_orphans_delete(dry_run => false);
SELECT omero_orphans_restore((SELECT pg_catalog.max(id) FROM omero_upgrade.orphan_run)) > 0 AS restored;
SELECT selected > 0 AS dry FROM omero_colors_convert_tx('argb_to_rgba', dry_run => true);
SELECT converted > 0 AS converted FROM omero_colors_convert_tx('argb_to_rgba', roi_ids => '{1}');
SELECT pg_catalog.sum(links_created) > 0 AS would FROM omero_annotations_move_to_wells(screen_ids => '{1}', dry_run => true);
SELECT pg_catalog.sum(links_created) > 0 AS moved FROM omero_annotations_move_to_wells(screen_ids => '{1}', dry_run => false);

SELECT pg_catalog.row_number() OVER (ORDER BY id) AS n, db_role = session_user AS by_me, os_user, host, kind, what, from_version, to_version, checksums,
       recorded_at <= pg_catalog.clock_timestamp() AS timed
  FROM omero_history() ORDER BY id;
-- The runs' own rows are the details.
SELECT kind, details->>'status' AS status, (details->>'deleted')::int8 > 0 AS deleted,
       details->>'direction' AS direction, (details->>'links_created')::int8 > 0 AS links
  FROM omero_history() WHERE kind IN ('orphans', 'orphans-restore', 'colors', 'wells') ORDER BY id;

-- Only the state roles may read or write it: nobody else can read the history or forge an entry.
CREATE ROLE history_nobody;
SET ROLE history_nobody;
-- The SQLSTATE alone: which object PostgreSQL names first differs between majors (18: the table).
\set VERBOSITY sqlstate
SELECT count(*) FROM omero_history();
SELECT omero_history_record('hop', 'forged');
INSERT INTO omero_upgrade.history (kind, what) VALUES ('hop', 'forged');
RESET ROLE;
\set VERBOSITY default
SELECT count(*) AS forged FROM omero_upgrade.history WHERE what = 'forged';

\c omero_regress
DROP DATABASE history;
DROP ROLE history_nobody;
