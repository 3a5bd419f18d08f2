-- omero_db_version, omero_upgrade_path, omero_precheck(_report), omero_filename_trace_2017_sv5
-- on fixture databases: ready, each failure, several at once, already at target, not OMERO.
-- The rows whose detail depends on the server (its version, its other sessions) show status only.
\set VERBOSITY default

-- A database that is not OMERO
CREATE DATABASE precheck_plain;
\c precheck_plain
CREATE EXTENSION omero_upgrade;
SELECT omero_db_version();
SELECT * FROM omero_upgrade_path();
SELECT omero_precheck();
SELECT * FROM omero_precheck_report();
SELECT * FROM omero_filename_trace_2017_sv5();
CREATE TABLE dbpatch (id int8, currentversion varchar, currentpatch int4);
SELECT omero_db_version();
SELECT * FROM omero_precheck_report();
DROP TABLE dbpatch;
CREATE TABLE dbpatch (id int8, currentversion varchar, currentpatch int4, previousversion varchar,
                      previouspatch int4, finished timestamp, message varchar);
SELECT omero_db_version();
DROP TABLE dbpatch;

-- Ready: OMERO5.3__1 → OMERO5.4__0, with the default search_path right after CREATE EXTENSION
CREATE DATABASE precheck_531;
\c precheck_531
\set version OMERO5.3__1
\i test/fixture/fixture.sql
CREATE EXTENSION omero_upgrade;
SELECT omero_db_version();
SELECT * FROM omero_upgrade_path();
SELECT * FROM omero_upgrade_path('OMERO5.4__0');
SELECT omero_precheck();
SELECT omero_precheck('OMERO5.4__0');
SELECT check_name, status,
       CASE WHEN check_name IN ('postgresql_version', 'other_sessions') THEN '…' ELSE detail END AS detail
  FROM omero_precheck_report();
-- It changes nothing and works in a read-only transaction
BEGIN READ ONLY;
SELECT omero_precheck();
SELECT count(*) AS checks FROM omero_precheck_report();
COMMIT;
-- Bad targets
SELECT omero_precheck('OMERO5.9__0');
SELECT omero_precheck('');
SELECT * FROM omero_upgrade_path('OMERO5.2__0');
SELECT omero_precheck('OMERO5.2__0');
-- Already at target
SELECT omero_precheck('OMERO5.3__1');
SELECT * FROM omero_upgrade_path('OMERO5.3__1');
-- PostgreSQL prerequisite (the knob can only lower the version seen)
SET omero_upgrade.pretend_server_version_num = 90205;
SELECT omero_precheck();
SET omero_upgrade.pretend_server_version_num = 999999;
SELECT omero_precheck();
RESET omero_upgrade.pretend_server_version_num;
-- No SV5 scan on a path that starts at OMERO5.3__1
SELECT count(*) FROM omero_precheck_report() WHERE check_name = 'sv5_filename_trace';
-- … even though the function itself can always be called
SELECT count(*) FROM omero_filename_trace_2017_sv5();

-- OMERO5.3__0 with traces of 2017-SV5-filename-2
CREATE DATABASE precheck_530_sv5;
\c precheck_530_sv5
\set version OMERO5.3__0
\set sv5_trace 1
\i test/fixture/fixture.sql
\unset sv5_trace
CREATE EXTENSION omero_upgrade;
SELECT * FROM omero_upgrade_path();
SELECT repo, path, ids, count FROM omero_filename_trace_2017_sv5();
-- the same groups as the official rule written as plain SQL
SELECT array_agg(id ORDER BY id) AS ids
  FROM (SELECT id, repo, regexp_split_to_array('/' || path || name || '/', '/+') AS fp
          FROM originalfile WHERE repo IS NOT NULL) f
 GROUP BY repo, fp HAVING count(*) > 1
EXCEPT
SELECT ids FROM omero_filename_trace_2017_sv5();
SELECT check_name, status,
       CASE WHEN check_name IN ('postgresql_version', 'other_sessions') THEN '…' ELSE detail END AS detail
  FROM omero_precheck_report();
SELECT omero_precheck();
-- a path from 5.3__0 to 5.3__1 starts before OMERO5.3__1 too: scanned
SELECT status FROM omero_precheck_report('OMERO5.3__1') WHERE check_name = 'sv5_filename_trace';

-- OMERO5.3__0 without traces: ready
CREATE DATABASE precheck_530;
\c precheck_530
\set version OMERO5.3__0
\i test/fixture/fixture.sql
CREATE EXTENSION omero_upgrade;
SELECT count(*) FROM omero_filename_trace_2017_sv5();
SELECT omero_precheck();

-- An unfinished upgrade (half-applied), at 5.3__1
CREATE DATABASE precheck_unfinished;
\c precheck_unfinished
\set version OMERO5.3__0
\set unfinished 1
\i test/fixture/fixture.sql
\unset unfinished
CREATE EXTENSION omero_upgrade;
SELECT currentversion, currentpatch, previousversion, previouspatch, finished IS NULL AS unfinished, message
  FROM dbpatch ORDER BY id DESC LIMIT 1;
SELECT omero_db_version();
SELECT check_name, status, detail FROM omero_precheck_report() WHERE status <> 'ok';
SELECT omero_precheck();
-- its unfinished row's own version as the target: half-upgraded, never "already at"
SELECT check_name, status, detail FROM omero_precheck_report('OMERO5.3__1') WHERE status <> 'ok';
SELECT omero_precheck('OMERO5.3__1');

-- Not UTF8, with SV5 traces and an old server: several problems at once, all listed
CREATE DATABASE precheck_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c precheck_latin1
\set version OMERO5.3__0
\set sv5_trace 1
\i test/fixture/fixture.sql
\unset sv5_trace
CREATE EXTENSION omero_upgrade;
SET omero_upgrade.pretend_server_version_num = 90204;
SELECT check_name, status FROM omero_precheck_report();
SELECT omero_precheck();
RESET omero_upgrade.pretend_server_version_num;
-- already at the target, but not UTF8: said so, and still an error
SELECT omero_precheck('OMERO5.3__0');

-- OMERO5.2__0: two hops, and the data checks of the 5.2 → 5.3 precheck
CREATE DATABASE precheck_520;
\c precheck_520
\set version OMERO5.2__0
\i test/fixture/fixture.sql
CREATE EXTENSION omero_upgrade;
SELECT * FROM omero_upgrade_path();
SELECT * FROM omero_upgrade_path('OMERO5.3__0');
SELECT check_name, status,
       CASE WHEN check_name IN ('postgresql_version', 'other_sessions') THEN '…' ELSE detail END AS detail
  FROM omero_precheck_report();
-- OMERO 5.2 still had roi.keywords/namespaces and a text shape.transform
ALTER TABLE roi ADD COLUMN keywords text[], ADD COLUMN namespaces text[];
ALTER TABLE shape DROP COLUMN transform;
ALTER TABLE shape ADD COLUMN transform text;
UPDATE roi SET keywords = ARRAY['', ''] WHERE id = (SELECT min(id) FROM roi);
UPDATE shape SET transform = v
  FROM (VALUES (1, 'none'), (2, ''), (3, 'matrix(1 0 0 1 10.5 -3)'), (4, '[ 1 0 0 1 0 0 ]'), (5, '[1 0 0 1 0 0]'),
               (6, 'translate(5)'), (7, 'scale(2 3)'), (8, 'rotate(45 1 1)'), (9, 'skewX(10)'), (10, 'skewY(-1e3)'))
       AS t(sid, v)
 WHERE shape.id = (SELECT id FROM shape ORDER BY id OFFSET t.sid - 1 LIMIT 1);
SELECT status, detail FROM omero_precheck_report() WHERE check_name IN ('roi_keywords_namespaces', 'shape_transform');
SELECT omero_precheck();
UPDATE roi SET keywords = ARRAY['', 'old keyword'] WHERE id = (SELECT min(id) FROM roi);
UPDATE shape SET transform = 'rotate(45 1)' WHERE id = (SELECT id FROM shape ORDER BY id OFFSET 20 LIMIT 1);
UPDATE shape SET transform = 'matrix(1 0 0 1 x 0)' WHERE id = (SELECT id FROM shape ORDER BY id OFFSET 21 LIMIT 1);
UPDATE shape SET transform = 'shear(1)' WHERE id = (SELECT id FROM shape ORDER BY id OFFSET 22 LIMIT 1);
SELECT status, regexp_replace(detail, 'roi ids \{[0-9]+\}', 'roi ids {…}') AS detail
  FROM omero_precheck_report() WHERE check_name IN ('roi_keywords_namespaces', 'shape_transform');

-- Already at the newest version
CREATE DATABASE precheck_540;
\c precheck_540
\set version OMERO5.4__0
\i test/fixture/fixture.sql
CREATE EXTENSION omero_upgrade;
SELECT * FROM omero_upgrade_path();
SELECT omero_precheck();

\c omero_regress
DROP DATABASE precheck_plain;
DROP DATABASE precheck_531;
DROP DATABASE precheck_530_sv5;
DROP DATABASE precheck_530;
DROP DATABASE precheck_unfinished;
DROP DATABASE precheck_latin1;
DROP DATABASE precheck_520;
DROP DATABASE precheck_540;
