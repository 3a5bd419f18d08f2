#!/usr/bin/env bash
# The one-pass rewrite's own settings: its index builds run with maintenance_work_mem of at least
# 512 MB and max_parallel_maintenance_workers of at least LEAST(max_parallel_workers, 4) (seen from
# inside an index build, by an index expression), and both are the caller's again afterwards.
source "$(dirname "$0")/../lib/tap.sh"

db=rewrite_settings
fixture_db "$db" --version OMERO5.3__1
q "$db" -c "CREATE EXTENSION omero_upgrade"
# An index expression that reports the settings it is built under.
q "$db" -c "CREATE FUNCTION public.settings_probe(i int8) RETURNS int8 IMMUTABLE LANGUAGE plpgsql AS \$\$
  BEGIN RAISE NOTICE 'probe: % %', current_setting('max_parallel_maintenance_workers'), current_setting('maintenance_work_mem');
        RETURN i; END \$\$" \
  -c "CREATE INDEX shape_settings_probe ON shape (public.settings_probe(id)) WHERE id <= $(q "$db" -c "SELECT min(id) FROM shape")"
is "$(q "$db" -c "SELECT count(*) FROM pg_indexes WHERE indexname = 'shape_settings_probe'")" 1 "a probing index on shape"
want=$(q "$db" -c "SELECT LEAST(current_setting('max_parallel_workers')::int, 4)")
out=$(psql -X -q -A -t -d "$db" -c "SET max_parallel_maintenance_workers = 0" -c "SET maintenance_work_mem = '64MB'" \
        -c "CALL omero_colors_convert('argb_to_rgba')" \
        -c "SELECT 'after: ' || current_setting('max_parallel_maintenance_workers') || ' ' || current_setting('maintenance_work_mem')" 2>&1)
like "$out" "one-pass rewrite|rewrit" "the CALL took the rewrite"
like "$out" "probe: $want 512MB" "the index builds ran with $want maintenance workers and 512MB"
unlike "$out" "probe: 0 " "… not with the caller's 0"
like "$out" "after: 0 64MB" "the caller's settings are back afterwards"
is "$(q "$db" -c "SELECT method FROM omero_upgrade.color_runs")" rewrite "the run is recorded as a rewrite"
done_testing
