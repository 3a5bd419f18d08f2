#!/usr/bin/env bash
# db orphans scan|delete|restore and colors convert|revert|status: the tool's wrappers over the
# extension on a fixture database (results compared with the extension's own answers), ids from
# the command line and from a file, Ctrl-C cancelling a running conversion (blocked on a row
# lock) and the next run resuming.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_w LOGIN" postgres
fixture_db w_db --version OMERO5.4__0 --owner omero_w
psql -X -q -U omero_w -d w_db -c "CREATE EXTENSION omero_upgrade"
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 w_db omero_w
ou() { "$TOOL" --server-dir "$srv" "$@"; }
n_orphans=$(q w_db -c "SELECT count(*) FROM omero_orphans_scan()")
n_ann=$(q w_db -c "SELECT count(*) FROM annotation")
ann_sum() { q w_db -c "SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM annotation a"; }
sum0=$(ann_sum)

# ---- orphans ----------------------------------------------------------------------------------------
j=$(ou --json db orphans scan)
is "$(jq -r '.command, .result.action' <<<"$j" | tr '\n' ' ')" "db orphans scan scan " "db orphans scan is a subcommand of its own (result.action kept)"
is "$(jq -r '.exit_code, .result.orphans' <<<"$j" | tr '\n' ' ')" "0 $n_orphans " "orphans scan: the extension's count ($n_orphans)"
out=$(ou db orphans scan --list 2>&1)
is "$(grep -c '^  annotation ' <<<"$out")" "$n_orphans" "scan --list lists each"
like "$out" "annotation 1 /basic/bool/" "… e.g. annotation 1"
unlike "$out" "annotation 4 " "… not one with a custom namespace"
j=$(ou --json db orphans scan --include-ns example.org/lab)
is "$(jq -r '.result.orphans' <<<"$j")" "$(q w_db -c "SELECT count(*) FROM omero_orphans_scan(ARRAY['example.org/lab'])")" \
  "--include-ns passes the namespace"
j=$(ou --json db orphans scan --include-ns 'x,"y}' --include-ns 'z\')
is "$(jq -r '.exit_code, .result.orphans' <<<"$j" | tr '\n' ' ')" "0 $n_orphans " "namespaces with commas, quotes, braces, backslashes stay single elements"

out=$(ou db orphans delete --dry-run 2>&1); rc=$?
is "$rc" 0 "delete --dry-run"
like "$out" "would delete $n_orphans orphan annotation\(s\)" "… counts"
is "$(q w_db -c "SELECT count(*) FROM annotation")" "$n_ann" "… deletes nothing"

out=$(ou db orphans delete 2>&1); rc=$?
is "$rc" 0 "delete without --apply"
like "$out" "would delete $n_orphans orphan annotation\(s\)" "… is a dry run: counts"
like "$out" "DRY RUN: nothing was changed; give --apply" "… says so"
is "$(q w_db -c "SELECT count(*) FROM annotation")" "$n_ann" "… deletes nothing"
is "$(q w_db -c "SELECT count(*) FROM omero_upgrade.orphan_run")" "0" "… starts no run"
j=$(ou --json db orphans delete)
is "$(jq -r '.exit_code, .result.dry_run, .result.orphans' <<<"$j" | tr '\n' ' ')" "0 true $n_orphans " "… JSON: dry_run true"
out=$(ou db orphans delete --apply --dry-run 2>&1); rc=$?
is "$rc" 2 "--apply with --dry-run: exit 2"
is "$(q w_db -c "SELECT count(*) FROM annotation")" "$n_ann" "… deletes nothing"

out=$(ou db orphans delete --apply --fast 2>&1); rc=$?
is "$rc" 2 "delete --fast as a role that is not a superuser: exit 2"
like "$out" "error: --fast needs a superuser" "… the error names the flag"
like "$out" "hint: Connect as a superuser, or use no --fast \(the default\)" "… and so does the hint"
unlike "$out" "=>" "… no SQL parameter syntax"
is "$(ann_sum)" "$sum0" "… nothing was deleted"
j=$(ou --json db orphans delete --apply --batch-size 7)
is "$(jq -r '.exit_code, .result.deleted' <<<"$j" | tr '\n' ' ')" "0 $n_orphans " "delete: all $n_orphans deleted (batches of 7)"
run=$(jq -r '.result.run_id' <<<"$j")
is "$(q w_db -c "SELECT count(*) FROM annotation")" "$((n_ann - n_orphans))" "… gone from annotation"
is "$(q w_db -c "SELECT count(*) FROM omero_upgrade.orphan_archive WHERE run_id = $run")" "$n_orphans" "… and archived under run $run"
j=$(ou --json db orphans delete --apply)
is "$(jq -r '.exit_code, .result.deleted' <<<"$j" | tr '\n' ' ')" "0 0 " "delete again: nothing left"

out=$(ou db orphans restore --run "$run" --dry-run 2>&1)
like "$out" "would put back $n_orphans annotation" "restore --dry-run"
out=$(ou db orphans restore --run "$run" 2>&1); rc=$?
is "$rc" 0 "restore --run $run"
is "$(ann_sum)" "$sum0" "… every annotation row is back exactly"
out=$(ou db orphans restore --run "$run" 2>&1); rc=$?
is "$rc" 0 "restore again: safe"
like "$out" "already restored" "… nothing to do"
out=$(ou db orphans restore 2>&1); rc=$?
is "$rc" 2 "restore without --run: exit 2"
out=$(ou db orphans frobnicate 2>&1); rc=$?
is "$rc" 2 "an unknown action: exit 2"

# ---- colours -------------------------------------------------------------------------------------------
colours() { q w_db -c "SELECT md5(string_agg(id || ':' || coalesce(fillcolor::text, '-') || ':' || coalesce(strokecolor::text, '-'), ',' ORDER BY id)) FROM shape"; }
orig=$(colours)
n_shapes=$(q w_db -c "SELECT count(*) FROM shape")
out=$(ou colors status 2>&1); rc=$?
is "$rc" 0 "colors status"
like "$out" "argb_to_rgba: 0 converted, $n_shapes pending" "… nothing converted yet"

out=$(ou colors convert --roi 1,2 --dry-run 2>&1); rc=$?
is "$rc" 0 "convert --roi 1,2 --dry-run"
like "$out" "would do: argb_to_rgba: 20 shape\(s\) selected: 20 converted" "… ROIs 1 and 2 hold 20 shapes"
is "$(colours)" "$orig" "… nothing changed"

printf '# ROIs to convert\n1\n2, 3\n' > "$t/rois.txt"
j=$(ou --json colors convert --roi-file "$t/rois.txt" --roi 4)
is "$(jq -r '.exit_code, .result.counts.converted' <<<"$j" | tr '\n' ' ')" "0 40 " "convert ROIs from a file and inline: 40 shapes"
is "$(q w_db -c "SELECT fillcolor FROM shape WHERE id = 31")" "-16776961" "shape 31 (ROI 4, ARGB red with alpha 0) is opaque red RGBA now"
is "$(q w_db -c "SELECT fillcolor FROM shape WHERE id = 61")" "-65536" "shape 61 (ROI 7, opaque red ARGB) is untouched"

out=$(ou colors convert --roi 1,x 2>&1); rc=$?
is "$rc" 2 "a bad id: exit 2"
like "$out" "not a ROI id: 'x'" "… named"

# Ctrl-C: another session holds a row lock on the last shape; the conversion blocks on it, SIGINT
# cancels the statement; batches done so far stay converted and journaled; the next run resumes.
maxid=$(q w_db -c "SELECT max(id) FROM shape")
psql -X -q -d w_db <<SQL >/dev/null 2>&1 &
BEGIN; SELECT id FROM shape WHERE id = $maxid FOR UPDATE; SELECT pg_sleep(30); ROLLBACK;
SQL
locker=$!
for _ in $(seq 50); do [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'w_db' AND state = 'active' AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")" -ge 1 ] && break; sleep 0.1; done
"$TOOL" --server-dir "$srv" colors convert --batch-size 100 > "$t/int.out" 2>&1 &   # the tool itself: SIGINT goes to it
conv=$!
for _ in $(seq 100); do [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'w_db' AND wait_event_type = 'Lock'")" -ge 1 ] && break; sleep 0.1; done
kill -INT "$conv"; wait "$conv"; rc=$?
is "$rc" 2 "Ctrl-C during colors convert: exit 2"
like "$(cat "$t/int.out")" "interrupted" "… says interrupted"
part=$(q w_db -c "SELECT converted FROM omero_colors_status() WHERE direction = 'argb_to_rgba'")
[ "$part" -gt 40 ] && [ "$part" -lt "$n_shapes" ]; ok $? "… the batches before the lock are converted ($part of $n_shapes)"
q postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'w_db' AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$locker" 2>/dev/null

j=$(ou --json colors convert)
is "$(jq -r '.exit_code, .result.counts.converted, .result.counts.already' <<<"$j" | tr '\n' ' ')" "0 $((n_shapes - part)) $part " \
  "convert again resumes: the rest converted, the rest already done"
out=$(ou colors status 2>&1)
like "$out" "argb_to_rgba: $n_shapes converted, 0 pending" "status: all converted"
like "$out" "rgba_to_argb: 0 converted, $n_shapes pending \(0 by the formula, $n_shapes from the journal; 0 left alone\)" \
  "… the reverse would restore every shape from the journal"

j=$(ou --json colors revert)
is "$(jq -r '.exit_code, .result.counts.restored' <<<"$j" | tr '\n' ' ')" "0 $n_shapes " "colors revert: every shape restored from the journal"
is "$(colours)" "$orig" "… exactly the original colours (alpha 0 included)"
j=$(ou --json colors status)
is "$(jq -r '.result.directions[] | select(.direction == "rgba_to_argb") | [.pending, .to_convert, .to_restore, .left_alone] | @tsv' <<<"$j")" \
  "0	0	0	$n_shapes" "status after the revert: nothing pending in that direction (a run would change nothing)"
is "$(jq -r '.result.directions[] | select(.direction == "argb_to_rgba") | [.pending, .to_convert] | @tsv' <<<"$j")" \
  "$n_shapes	$n_shapes" "… and every shape pending (by the formula) in the other"

# Every shape with the database to itself and nothing journaled: the one-pass rewrite (CALL's
# method 'auto'); otherwise batches, saying why; results the same
q w_db -c "CREATE TABLE fast_saved AS SELECT id, fillcolor, strokecolor FROM shape" >/dev/null
q w_db -c "SELECT omero_colors_purge_journal(forget => true)" >/dev/null
exact_fast() { q w_db -c "SELECT count(*) FROM shape s JOIN fast_saved v USING (id)
  WHERE s.fillcolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.fillcolor) AND s.strokecolor IS NOT DISTINCT FROM omero_argb_to_rgba(v.strokecolor)"; }
j=$(ou --json colors convert)
is "$(jq -r '.exit_code, .result.method, .result.counts.converted' <<<"$j" | tr '\n' ' ')" "0 rewrite $n_shapes " \
  "convert with the database to itself and nothing journaled: the one-pass rewrite, every shape"
is "$(exact_fast)" "$n_shapes" "… every shape converted exactly once"
j=$(ou --json colors convert)
is "$(jq -r '.exit_code, .result.method, .result.counts.converted, .result.counts.already' <<<"$j" | tr '\n' ' ')" \
  "0 batch 0 $n_shapes " "convert again: by batches (the journal holds the conversion), nothing changes"
is "$(exact_fast)" "$n_shapes" "… colours unchanged"
out=$(ou colors convert --rewrite 2>&1); rc=$?
is "$rc" 1 "--rewrite when every shape is converted already: refused (a precondition: exit 1)"
like "$out" "already converted" "… saying why"
like "$out" "hint: omero-upgrade colors convert --batches converts only what is left" "… the hint names the command and flag to use"
unlike "$out" "CALL |=> |omero_colors_rewrite" "… not the extension's SQL"
ou colors revert >/dev/null 2>&1
is "$(colours)" "$orig" "revert after the rewrite: the originals"
q w_db -c "SELECT omero_colors_purge_journal(forget => true)" >/dev/null
psql -X -q -d w_db -c "SELECT pg_sleep(20)" >/dev/null 2>&1 &
sleeper=$!
for _ in $(seq 50); do [ "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'w_db' AND query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()")" -ge 1 ] && break; sleep 0.1; done
out=$(ou colors convert 2>&1); rc=$?
is "$rc" 0 "convert while another session is connected"
like "$out" "converting by batches, not by the one-pass rewrite: 1 other session\(s\) are connected" "… by batches, saying why"
is "$(q w_db -c "SELECT method FROM omero_upgrade.color_runs ORDER BY run_id DESC LIMIT 1")" "batch" "… recorded as a batch run"
is "$(exact_fast)" "$n_shapes" "… every shape converted"
out=$(ou colors revert --rewrite 2>&1); rc=$?
is "$rc" 1 "revert --rewrite while another session is connected: refused with exit 1 (other sessions: 1 in every command)"
like "$out" "needs the database to itself: 1 other session\(s\) are connected" "… saying why"
q postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'w_db' AND query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$sleeper" 2>/dev/null
ou colors revert >/dev/null 2>&1
q w_db -c "SELECT omero_colors_purge_journal(forget => true)" >/dev/null
out=$(ou colors convert --batches 2>&1); rc=$?
is "$rc" 0 "convert --batches with the database to itself"
is "$(q w_db -c "SELECT method FROM omero_upgrade.color_runs ORDER BY run_id DESC LIMIT 1")" "batch" "… goes by batches"
like "$(ou colors convert --batches 2>&1)" "converting by batches, not by the one-pass rewrite: the journal holds earlier conversions|nothing to do|already" \
  "… and again changes nothing"
out=$(ou colors convert --rewrite --roi 1 2>&1); rc=$?
is "$rc" 2 "--rewrite with --roi: exit 2"
like "$out" "converts every shape" "… explained"

# The one-pass rewrite's table phase (one ALTER TABLE, no progress from PostgreSQL) on a table big
# enough for it to last more than 2 s: a ticking line with an ETA estimated from the journal's pace.
ou colors revert >/dev/null 2>&1
q w_db -c "SELECT omero_colors_purge_journal(forget => true)" >/dev/null
cols=$(q w_db -c "SELECT string_agg(CASE attname WHEN 'id' THEN 's.id + g.k * 10000' WHEN 'roi_index'
                    THEN 's.roi_index + g.k * 100000' ELSE 's.' || quote_ident(attname) END, ', ' ORDER BY attnum)
                    FROM pg_attribute WHERE attrelid = 'shape'::regclass AND attnum > 0 AND NOT attisdropped")
q w_db -c "ALTER TABLE shape DISABLE TRIGGER ALL" \
  -c "INSERT INTO shape SELECT $cols FROM generate_series(1, 600) g(k), shape s WHERE s.id < 10000" \
  -c "ALTER TABLE shape ENABLE TRIGGER ALL" -c "VACUUM ANALYZE shape" >/dev/null
big=$(q w_db -c "SELECT count(*) FROM shape")
out=$(ou colors convert 2>&1); rc=$?
is "$rc" 0 "convert $big shapes by the one-pass rewrite"
like "$out" "colors: rewriting the shape table and its indexes: elapsed 0:00:0[2-9], ETA ~[0-9]+:[0-9][0-9]:[0-9][0-9]" \
  "… the table phase shows the elapsed time and an estimated ETA"

psql -X -q -c "CREATE DATABASE w_noext" postgres
out=$(ou --db-name w_noext db orphans scan 2>&1); rc=$?
is "$rc" 2 "no extension in the database: exit 2"
like "$out" "CREATE EXTENSION omero_upgrade" "… with the fix"

q postgres -c "DROP DATABASE w_db" -c "DROP DATABASE w_noext" -c "DROP ROLE omero_w"
done_testing
