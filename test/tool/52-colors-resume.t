#!/usr/bin/env bash
# Shape colour conversion interrupted by pg_terminate_backend and by a server crash, then
# resumed: every shape ends converted exactly once (compared with the formula applied once to a
# saved copy), and the reverse gives back the exact originals. Also: the rewrite fast path
# refuses to run while another session is connected.
set -uo pipefail
source "$(dirname "$0")/../lib/tap.sh"

db=colors_resume
fixture_db "$db"
q "$db" -c "CREATE EXTENSION omero_upgrade" >/dev/null
# More shapes (copies of the fixture's, new ids), so that a run has many batches.
q "$db" -c "INSERT INTO shape SELECT discriminator, id + 100000 * k, permissions, fillcolor, fillrule, fontfamily,
              fontsizeunit, fontsize, fontstyle, locked, strokecolor, strokedasharray, strokewidthunit, strokewidth,
              thec, thet, thez, version, radiusx, radiusy, textvalue, x, y, markerend, markerstart, x1, x2, y1, y2,
              bytes, height, width, d, points, creation_id, NULL, group_id, owner_id, update_id, roi, transform,
              pixels, roi_index + 1000 * k
            FROM shape, generate_series(1, 4) k" >/dev/null
q "$db" -c "CREATE TABLE saved AS SELECT id, fillcolor, strokecolor FROM shape" >/dev/null
# Slow each batch down (a statement trigger on shape), so that the run can be caught mid-way.
q "$db" -c "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
              BEGIN PERFORM pg_sleep(0.15); RETURN NULL; END \$\$;
            CREATE TRIGGER slow AFTER UPDATE ON shape FOR EACH STATEMENT EXECUTE FUNCTION slow()" >/dev/null
total=$(q "$db" -c "SELECT count(*) FROM shape")
diag "$total shapes"

# Shapes journaled as converted by argb_to_rgba (in runs from ${1:-1} on): exactly the ones whose
# colours are the formula applied once; the others are untouched.
# Prints "journaled wrong_converted wrong_untouched dupes".
check() {
  q "$db" -c "
    WITH j AS (SELECT id, count(*) AS n FROM omero_upgrade.color_journal c, unnest(c.shape_ids) id
                WHERE c.kind = 'convert' AND c.direction = 'argb_to_rgba' AND c.run_id >= ${1:-1} GROUP BY id)
    SELECT count(j.id),
           count(*) FILTER (WHERE j.id IS NOT NULL AND NOT (s.fillcolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.fillcolor)
                                   AND s.strokecolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.strokecolor))),
           count(*) FILTER (WHERE j.id IS NULL AND NOT (s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                                   AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor)),
           count(*) FILTER (WHERE j.n > 1)
      FROM shape s JOIN saved v USING (id) LEFT JOIN j USING (id)" | tr '|' ' '
}
journaled() { q "$db" -c "SELECT coalesce(sum(cardinality(shape_ids)), 0) FROM omero_upgrade.color_journal"; }
# Waits until the journal holds at least $1 shapes (or 30 s).
wait_journal() {
  for _ in $(seq 300); do [ "$(journaled)" -ge "$1" ] && return 0; sleep 0.1; done
  return 1
}

# 1. pg_terminate_backend
psql -X -q -d "$db" -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 200, method => 'batch')" >"$OU_TMP/colors-kill.out" 2>&1 &
bg=$!
wait_journal 1000
ok $? "the conversion is under way"
pid=$(q "$db" -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL omero_colors_convert%' AND pid <> pg_backend_pid()")
q postgres -c "SELECT pg_terminate_backend($pid)" >/dev/null
wait $bg
ok $(( $? == 0 )) "the killed CALL failed"
read -r n wrong_conv wrong_orig dupes <<<"$(check)"
diag "killed after $n shapes"
ok $(( n > 0 && n < total ? 0 : 1 )) "part of the shapes converted when killed ($n of $total)"
is "$wrong_conv $wrong_orig $dupes" "0 0 0" "journaled shapes converted once, the rest untouched"
is "$(q "$db" -c "SELECT interrupted_runs FROM omero_colors_status() WHERE direction = 'argb_to_rgba'")" 1 \
  "status shows the interrupted run"

q "$db" -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 2000, method => 'batch')" >/dev/null 2>&1
ok $? "the resumed run finishes"
is "$(check)" "$total 0 0 0" "after resuming: every shape converted exactly once"
is "$(q "$db" -c "SELECT converted, pending, interrupted_runs FROM omero_colors_status() WHERE direction = 'argb_to_rgba'")" \
  "$total|0|0" "status: all converted, none pending, the interrupted run taken over"

# 2. a server crash (immediate restart) in the middle of the reverse
psql -X -q -d "$db" -c "CALL omero_colors_convert('rgba_to_argb', batch_size => 200, method => 'batch')" >"$OU_TMP/colors-crash.out" 2>&1 &
bg=$!
restored() { q "$db" -c "SELECT coalesce(sum(cardinality(shape_ids)), 0) FROM omero_upgrade.color_journal WHERE kind = 'restore'"; }
for _ in $(seq 300); do [ "$(restored)" -ge 1000 ] && break; sleep 0.1; done
$OU_RUNAS "$OU_PGBIN/pg_ctl" -D "$OU_PGDATA" -l "$OU_PGLOG" -m immediate -w -t 60 restart >/dev/null 2>&1
ok $? "server crashed and restarted"
wait $bg
for _ in $(seq 100); do q postgres -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
r=$(restored)
diag "crashed after restoring $r shapes"
ok $(( r > 0 && r < total ? 0 : 1 )) "part of the shapes restored at the crash ($r of $total)"
is "$(q "$db" -c "WITH r AS (SELECT DISTINCT id FROM omero_upgrade.color_journal c, unnest(c.shape_ids) id
                                WHERE c.kind = 'restore')
                  SELECT count(*) FILTER (WHERE r.id IS NOT NULL AND NOT (s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                                             AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor))
                         + count(*) FILTER (WHERE r.id IS NULL AND NOT (s.fillcolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.fillcolor)
                                             AND s.strokecolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.strokecolor)))
                  FROM shape s JOIN saved v USING (id) LEFT JOIN r USING (id)")" 0 \
  "journaled restores have the originals back, the rest is still converted"
q "$db" -c "CALL omero_colors_convert('rgba_to_argb')" >/dev/null 2>&1
ok $? "the resumed reverse finishes"
is "$(q "$db" -c "SELECT count(*) FILTER (WHERE s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                                        AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor)
                  FROM shape s JOIN saved v USING (id)")" "$total" "every shape has its exact original colours again"

# 3. the rewrite fast path needs the database to itself
psql -X -q -d "$db" -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
other=$!
for _ in $(seq 50); do
  [ "$(q "$db" -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'")" = 1 ] && break
  sleep 0.1
done
out=$(psql -X -q -d "$db" -c "SELECT * FROM omero_colors_rewrite('argb_to_rgba')" 2>&1)
like "$out" "other session\(s\) are connected" "rewrite refused while another session is connected"
kill "$other" 2>/dev/null; wait "$other" 2>/dev/null
q postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'" >/dev/null
for _ in $(seq 50); do
  [ "$(q "$db" -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                    AND backend_type = 'client backend'")" = 0 ] && break
  sleep 0.1
done
q "$db" -c "DROP TRIGGER slow ON shape" >/dev/null
q "$db" -c "SELECT converted FROM omero_colors_rewrite('argb_to_rgba')" >"$OU_TMP/colors-rewrite.out" 2>&1
ok $? "rewrite runs once the database is free"
last_run=$(q "$db" -c "SELECT max(run_id) FROM omero_upgrade.color_runs WHERE method = 'rewrite'")
is "$(check "$last_run")" "$total 0 0 0" "rewrite: every shape converted exactly once and journaled"

q postgres -c "DROP DATABASE $db" >/dev/null
done_testing
