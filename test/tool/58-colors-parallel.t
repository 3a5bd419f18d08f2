#!/usr/bin/env bash
# CALL omero_colors_convert(…, jobs => N): batches converted by N background workers at once.
#   1. jobs => 2 gives the same colours, journal and run counts as jobs => 1 on the same data
#      (every shape, then a subset of shapes reversed), and really runs two workers, as the
#      calling role (never the superuser), which omero_colors_status() and the tool see alike;
#   2. a cancel of the caller (pg_cancel_backend) mid-way stops every worker: each batch is
#      converted and journaled or untouched; a new CALL (jobs => 2) resumes and completes;
#   3. no free worker slot (more jobs than max_worker_processes): a clean refusal (53400),
#      nothing changed, no worker left; jobs 0 or NULL: 22023;
#   4. a worker's error (a trigger on shape that fails in a worker) is raised by the CALL with its
#      message and SQLSTATE, the other worker stopped, the journal consistent; a re-run completes;
#   5. omero-upgrade colors convert --jobs 2.
set -uo pipefail
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

psql -X -q -c "CREATE ROLE omero_par LOGIN" postgres
as() { local db=$1; shift; psql -X -q -A -t -v ON_ERROR_STOP=1 -U omero_par -d "$db" "$@"; }

# Two identical databases (the fixture grown to many shapes), owned by omero_par.
make_db() {
  fixture_db "$1" --owner omero_par
  as "$1" -c "CREATE EXTENSION omero_upgrade" >/dev/null
  as "$1" -c "INSERT INTO shape SELECT discriminator, id + 100000 * k, permissions, fillcolor, fillrule, fontfamily,
                fontsizeunit, fontsize, fontstyle, locked, strokecolor, strokedasharray, strokewidthunit, strokewidth,
                thec, thet, thez, version, radiusx, radiusy, textvalue, x, y, markerend, markerstart, x1, x2, y1, y2,
                bytes, height, width, d, points, creation_id, NULL, group_id, owner_id, update_id, roi, transform,
                pixels, roi_index + 1000 * k
              FROM shape, generate_series(1, 4) k" >/dev/null
  as "$1" -c "CREATE TABLE saved AS SELECT id, fillcolor, strokecolor FROM shape" >/dev/null
}
make_db par_one
make_db par_two
total=$(q par_one -c "SELECT count(*) FROM shape")
diag "$total shapes"

colours() { q "$1" -c "SELECT md5(string_agg(concat_ws(',', id, fillcolor, strokecolor, version, update_id), ';' ORDER BY id)) FROM shape"; }
# The journal without its chunk and run numbers (which differ between runs).
journal() { q "$1" -c "SELECT md5(string_agg(concat_ws('|', kind, direction, lo_id, hi_id, purged, shape_ids, fill_before,
                                  stroke_before, version_after, update_after), ';' ORDER BY lo_id, kind, direction))
                         FROM omero_upgrade.color_journal"; }
runs() { q "$1" -c "SELECT string_agg(concat_ws(',', direction, method, scope, selected, converted, restored, already, changed,
                               purged, raced, covered_to, finished_at IS NOT NULL, run_by), ';' ORDER BY run_id)
                      FROM omero_upgrade.color_runs"; }
chunks() { q "$1" -c "SELECT count(*) FROM omero_upgrade.color_journal"; }
workers() { q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'omero_upgrade colors worker'"; }
wait_no_workers() { for _ in $(seq 100); do [ "$(workers)" = 0 ] && return 0; sleep 0.1; done; return 1; }

# ---- 1. jobs => 2 as jobs => 1 ---------------------------------------------------------------------
# Who runs the batch statements: a statement trigger on shape records the roles and the process.
for d in par_one par_two; do
  q "$d" -c "CREATE TABLE who (usr name, sess name, superuser bool, backend text, app text);
             GRANT INSERT ON who TO PUBLIC;
             CREATE FUNCTION public.record_who() RETURNS trigger LANGUAGE plpgsql AS \$\$
               BEGIN INSERT INTO public.who SELECT current_user, session_user,
                       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user),
                       (SELECT backend_type FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid()),
                       pg_catalog.current_setting('application_name');
               RETURN NULL; END \$\$;
             CREATE TRIGGER record_who AFTER UPDATE ON shape FOR EACH STATEMENT EXECUTE FUNCTION public.record_who()" >/dev/null
done
out1=$(as par_one -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 500, method => 'batch')" 2>&1)
ok $? "jobs => 1 converts every shape: $out1"
out2=$(as par_two -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 500, method => 'batch', jobs => 2)" 2>&1)
ok $? "jobs => 2 converts every shape: $out2"
is "$(sed 's/^NOTICE: *//' <<<"$out2" | grep 'omero_colors_convert: argb_to_rgba')" \
   "$(sed 's/^NOTICE: *//' <<<"$out1" | grep 'omero_colors_convert: argb_to_rgba')" "… and reports the same counts"
is "$(colours par_two)" "$(colours par_one)" "the same colours, versions and update ids"
is "$(journal par_two)" "$(journal par_one)" "the same journal (chunk by chunk: ids, originals, versions)"
is "$(runs par_two)" "$(runs par_one)" "the same run row (scope, counts, covered_to, by omero_par)"
is "$(q par_two -c "SELECT string_agg(DISTINCT concat_ws(',', usr, sess, superuser, backend, app), ';') FROM who")" \
   "omero_par,omero_par,f,omero_upgrade colors worker,omero_upgrade colors worker" \
   "every batch of jobs => 2 ran in a background worker, as omero_par (not a superuser)"
is "$(q par_two -c "SELECT count(*) FROM who")" "$(chunks par_two)" "… one statement per batch"
is "$(q par_one -c "SELECT string_agg(DISTINCT backend, ';') FROM who")" "client backend" "(jobs => 1: the caller's own session)"
is "$(q par_two -c "SELECT direction, converted, pending, purged, runs, running_runs, interrupted_runs, to_convert,
                           to_restore, left_alone FROM omero_colors_status()")" \
   "$(q par_one -c "SELECT direction, converted, pending, purged, runs, running_runs, interrupted_runs, to_convert,
                           to_restore, left_alone FROM omero_colors_status()")" "omero_colors_status() says the same"
# A subset reversed, by listed shape ids (some 3% of them, scattered).
ids="DECLARE ids int8[] := (SELECT array_agg(id ORDER BY id) FROM shape WHERE id % 31 = 3);"
out=$(as par_one -c "DO \$\$ $ids BEGIN CALL omero_colors_convert('rgba_to_argb', shape_ids => ids, batch_size => 20); END \$\$" 2>&1)
ok $? "a subset reversed, jobs => 1: $out"
out=$(as par_two -c "DO \$\$ $ids BEGIN CALL omero_colors_convert('rgba_to_argb', shape_ids => ids, batch_size => 20, jobs => 2); END \$\$" 2>&1)
ok $? "the same subset reversed, jobs => 2: $out"
is "$(colours par_two)" "$(colours par_one)" "the same colours after the reverse"
is "$(journal par_two)" "$(journal par_one)" "the same journal after the reverse"
is "$(runs par_two)" "$(runs par_one)" "the same run rows"
like "$(q par_two -c "SELECT count(*) > 2 FROM who WHERE backend = 'omero_upgrade colors worker'")" t "(the reverse ran in the workers too)"
is "$(q par_one -c "SELECT count(*) FROM shape s JOIN saved v USING (id) WHERE s.id % 31 = 3
                     AND (s.fillcolor IS DISTINCT FROM v.fillcolor OR s.strokecolor IS DISTINCT FROM v.strokecolor)")" 0 \
   "(the reversed shapes hold their originals)"
# A ROI subset bigger than a batch (tried in one statement first, under the journal lock), back
# again: converted by the workers.
rois="DECLARE r int8[] := (SELECT array_agg(id ORDER BY id) FROM roi WHERE id % 3 = 1);"
out=$(as par_one -c "DO \$\$ $rois BEGIN CALL omero_colors_convert('argb_to_rgba', roi_ids => r, batch_size => 50); END \$\$" 2>&1)
ok $? "a ROI subset converted, jobs => 1: $out"
out=$(timeout 60 psql -X -q -A -t -v ON_ERROR_STOP=1 -U omero_par -d par_two \
        -c "DO \$\$ $rois BEGIN CALL omero_colors_convert('argb_to_rgba', roi_ids => r, batch_size => 50, jobs => 2); END \$\$" 2>&1)
ok $? "the same ROI subset, jobs => 2 (within 60 s): $out"
is "$(colours par_two)" "$(colours par_one)" "the same colours"
is "$(journal par_two)" "$(journal par_one)" "the same journal"
is "$(runs par_two)" "$(runs par_one)" "the same run rows"
is "$(workers)" 0 "no worker is left after the runs"

# ---- 2. cancel mid-way, resume ---------------------------------------------------------------------
make_db par_cancel
# Slow each batch down (a statement trigger on shape), so that the run can be caught mid-way.
q par_cancel -c "CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
                   BEGIN PERFORM pg_catalog.pg_sleep(0.2); RETURN NULL; END \$\$;
                 CREATE TRIGGER slow AFTER UPDATE ON shape FOR EACH STATEMENT EXECUTE FUNCTION public.slow()" >/dev/null
# Journaled shapes converted exactly once by argb_to_rgba, the others untouched:
# "journaled wrong_converted wrong_untouched dupes".
check() {
  q par_cancel -c "
    WITH j AS (SELECT id, count(*) AS n FROM omero_upgrade.color_journal c, unnest(c.shape_ids) id
                WHERE c.kind = 'convert' AND c.direction = 'argb_to_rgba' GROUP BY id)
    SELECT count(j.id),
           count(*) FILTER (WHERE j.id IS NOT NULL AND NOT (s.fillcolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.fillcolor)
                                   AND s.strokecolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.strokecolor))),
           count(*) FILTER (WHERE j.id IS NULL AND NOT (s.fillcolor IS NOT DISTINCT FROM v.fillcolor
                                   AND s.strokecolor IS NOT DISTINCT FROM v.strokecolor)),
           count(*) FILTER (WHERE j.n > 1)
      FROM shape s JOIN saved v USING (id) LEFT JOIN j USING (id)" | tr '|' ' '
}
journaled() { q par_cancel -c "SELECT coalesce(sum(cardinality(shape_ids)), 0) FROM omero_upgrade.color_journal"; }
as par_cancel -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 100, method => 'batch', jobs => 2)" \
  >"$OU_TMP/par-cancel.out" 2>&1 &
bg=$!
for _ in $(seq 300); do [ "$(journaled)" -ge 600 ] && break; sleep 0.1; done
is "$(workers)" 2 "two workers are converting"
pid=$(q postgres -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL omero_colors_convert%' AND backend_type = 'client backend'")
q postgres -c "SELECT pg_cancel_backend($pid)" >/dev/null
wait $bg
ok $(( $? == 0 )) "the cancelled CALL failed: $(tr '\n' ' ' <"$OU_TMP/par-cancel.out")"
like "$(cat "$OU_TMP/par-cancel.out")" "canceling statement due to user request" "… by the cancel"
wait_no_workers
ok $? "every worker stopped with the caller"
n0=$(journaled)
sleep 0.5
is "$(journaled)" "$n0" "nothing is converted after the cancel"
read -r n wrong_conv wrong_orig dupes <<<"$(check)"
ok $(( n > 0 && n < total ? 0 : 1 )) "part of the shapes converted when cancelled ($n of $total)"
is "$wrong_conv $wrong_orig $dupes" "0 0 0" "every batch converted and journaled, or untouched"
is "$(q par_cancel -c "SELECT interrupted_runs FROM omero_colors_status() WHERE direction = 'argb_to_rgba'")" 1 \
   "status shows the interrupted run"
out=$(as par_cancel -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 300, method => 'batch', jobs => 2)" 2>&1)
ok $? "the re-run (jobs => 2) finishes: $out"
is "$(check)" "$total 0 0 0" "after resuming: every shape converted exactly once"
is "$(q par_cancel -c "SELECT converted, pending, interrupted_runs FROM omero_colors_status() WHERE direction = 'argb_to_rgba'")" \
   "$total|0|0" "status: all converted, none pending, the interrupted run taken over"

# The caller terminated (pg_terminate_backend: no cleanup runs in it): its workers see it gone
# before their next batch and end; nothing is converted after that.
as par_cancel -c "CALL omero_colors_convert('rgba_to_argb', batch_size => 100, method => 'batch', jobs => 2)" \
  >"$OU_TMP/par-term.out" 2>&1 &
bg=$!
restored() { q par_cancel -c "SELECT coalesce(sum(cardinality(shape_ids)), 0) FROM omero_upgrade.color_journal WHERE kind = 'restore'"; }
for _ in $(seq 300); do [ "$(restored)" -ge 600 ] && break; sleep 0.1; done
is "$(workers)" 2 "two workers are restoring"
pid=$(q postgres -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL omero_colors_convert%' AND backend_type = 'client backend'")
q postgres -c "SELECT pg_terminate_backend($pid)" >/dev/null
wait $bg
wait_no_workers
ok $? "the workers of a terminated caller end"
r0=$(restored)
sleep 0.5
is "$(restored)" "$r0" "nothing is restored after that ($r0 shapes were)"
out=$(as par_cancel -c "CALL omero_colors_convert('rgba_to_argb', batch_size => 300, method => 'batch', jobs => 2)" 2>&1)
ok $? "the re-run finishes: $out"
is "$(q par_cancel -c "SELECT count(*) FROM shape s JOIN saved v USING (id) WHERE s.fillcolor IS DISTINCT FROM v.fillcolor
                        OR s.strokecolor IS DISTINCT FROM v.strokecolor")" 0 "every shape holds its exact originals again"

# ---- 3. refusals before anything changes -----------------------------------------------------------
make_db par_refuse
before=$(colours par_refuse)
max=$(q postgres -c "SHOW max_worker_processes")
out=$(as par_refuse -v VERBOSITY=verbose -c "CALL omero_colors_convert('argb_to_rgba', method => 'batch', batch_size => 100, jobs => $((max + 1)))" 2>&1)
ok $(( $? == 0 )) "jobs => max_worker_processes + 1 ($((max + 1))) is refused"
like "$out" "53400" "… 53400 (configuration_limit_exceeded)"
like "$out" "no background worker slot free" "… saying no worker slot is free"
like "$out" "Nothing was changed" "… and that nothing was changed"
is "$(q par_refuse -c "SELECT count(*) FROM omero_upgrade.color_runs")|$(chunks par_refuse)|$(colours par_refuse)" "0|0|$before" \
   "no run row, no journal chunk, no colour changed"
wait_no_workers
ok $? "no worker is left by the refusal"
for j in 0 -1 NULL 65; do
  out=$(as par_refuse -v VERBOSITY=verbose -c "CALL omero_colors_convert('argb_to_rgba', method => 'batch', jobs => $j)" 2>&1)
  ok $(( $? == 0 )) "jobs => $j is refused"
  like "$out" "22023" "… 22023: $(head -1 <<<"$out")"
done
is "$(q par_refuse -c "SELECT count(*) FROM omero_upgrade.color_runs")|$(colours par_refuse)" "0|$before" "… nothing changed"

# ---- 4. a worker's error ---------------------------------------------------------------------------
# The trigger fails only in a background worker, on the batch holding shape 100005 (so after
# other batches have been committed).
q par_refuse -c "CREATE FUNCTION public.fail_in_worker() RETURNS trigger LANGUAGE plpgsql AS \$\$
                   BEGIN
                     IF pg_catalog.current_setting('application_name') = 'omero_upgrade colors worker'
                        AND EXISTS (SELECT 1 FROM new_rows WHERE id = 100005) THEN
                       RAISE EXCEPTION 'shape 100005 refused by a site trigger' USING ERRCODE = 'P0042';
                     END IF;
                     RETURN NULL;
                   END \$\$;
                 CREATE TRIGGER fail_in_worker AFTER UPDATE ON shape REFERENCING NEW TABLE AS new_rows
                   FOR EACH STATEMENT EXECUTE FUNCTION public.fail_in_worker()" >/dev/null
out=$(as par_refuse -v VERBOSITY=verbose -c "CALL omero_colors_convert('argb_to_rgba', method => 'batch', batch_size => 100, jobs => 2)" 2>&1)
ok $(( $? == 0 )) "the CALL fails when a worker fails"
like "$out" "P0042" "… with the worker's SQLSTATE"
like "$out" "omero_colors_convert: background worker [12]: shape 100005 refused by a site trigger" "… and its message"
like "$out" "CALL omero_colors_convert again to resume" "… and how to go on"
wait_no_workers
ok $? "no worker is left after the error"
conv=$(q par_refuse -c "SELECT count(*) FROM shape s JOIN saved v USING (id) WHERE s.fillcolor IS DISTINCT FROM v.fillcolor
                         OR s.strokecolor IS DISTINCT FROM v.strokecolor")
jn=$(q par_refuse -c "SELECT count(*) FROM shape s JOIN saved v USING (id) WHERE s.id IN (SELECT unnest(shape_ids) FROM omero_upgrade.color_journal)
                       AND (s.fillcolor IS DISTINCT FROM v.fillcolor OR s.strokecolor IS DISTINCT FROM v.strokecolor)")
is "$conv" "$jn" "only journaled shapes were changed ($jn)"
is "$(q par_refuse -c "SELECT count(*) FROM omero_upgrade.color_journal WHERE 100005 = ANY (shape_ids)")" 0 "the failed batch is untouched"
q par_refuse -c "DROP TRIGGER fail_in_worker ON shape" >/dev/null
out=$(as par_refuse -c "CALL omero_colors_convert('argb_to_rgba', method => 'batch', batch_size => 100, jobs => 2)" 2>&1)
ok $? "without the trigger the re-run completes: $out"
is "$(q par_refuse -c "SELECT count(*) FROM shape s JOIN saved v USING (id)
                        WHERE s.fillcolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.fillcolor)
                          AND s.strokecolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.strokecolor)")" "$total" \
   "every shape converted exactly once"

# ---- 5. the tool -----------------------------------------------------------------------------------
make_db par_tool
t=$(scratch)
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 par_tool omero_par
ou() { "$TOOL" --server-dir "$srv" "$@"; }
j=$(ou --json colors convert --batches --batch-size 500 --jobs 2)
is "$(jq -r '.exit_code, .result.method, .result.counts.converted' <<<"$j" | tr '\n' ' ')" "0 batch $total " \
   "omero-upgrade colors convert --batches --jobs 2: every shape, by batches"
is "$(q par_tool -c "SELECT count(*) FROM shape s JOIN saved v USING (id)
                      WHERE s.fillcolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.fillcolor)
                        AND s.strokecolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.strokecolor)")" "$total" \
   "… every shape converted exactly once"
out=$(ou colors convert --jobs 0 2>&1)
is "$?" 2 "--jobs 0 is a usage error: $out"

for d in par_one par_two par_cancel par_refuse par_tool; do q postgres -c "DROP DATABASE $d" >/dev/null; done
q postgres -c "DROP ROLE omero_par" >/dev/null
done_testing
