-- The OMERO-shaped fixture (test/fixture) builds and keeps its invariants.
-- Loaded into a schema of its own so that it does not meet other tests' objects.
CREATE SCHEMA fixture_check;
SET search_path = fixture_check;
\set version OMERO5.3__0
\set unfinished 1
\set sv5_trace 1
\i test/fixture/fixture.sql
\i test/fixture/check.sql
RESET search_path;
DROP SCHEMA fixture_check CASCADE;
\unset version
\unset unfinished
\unset sv5_trace
