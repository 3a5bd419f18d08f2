#!/usr/bin/env bash
# omero-upgrade run --online: db-verify, the orphan delete and the colour conversion (by journaled
# batches) run after server-start, with the new server up, so the offline window holds only the
# stop, the binaries, the hops, the cache and the start. The plan says so, the record says so, the
# data ends as a run without --online leaves it, and a rollback still gets the old state back.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
r=$t/a
scenario "$r" online_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
state=$r/.omero-upgrade-run.json
fingerprint "$r" online_a > "$t/original.fp"
zip=$r/OMERO.server-5.6.3.zip

# --- the plan ------------------------------------------------------------------------------------
j=$(ou --json run --new-server "$zip" --orphans --colors all --online --dry-run 2>/dev/null); rc=$?
is "$rc" 0 "--online --dry-run: the plan can run"
is "$(jq -r '[.result.steps[].id] | join(",")' <<<"$j")" \
  "check,precheck,tree-listing,backup,server-stop,binaries-install,db-upgrade,cache-clear,upgrade-check-off,environment,server-start,db-verify,orphans,colors,diagnostics" \
  "… db-verify, orphans and colors come after server-start"
is "$(jq -r '[.result.steps[] | select(.id == "db-verify" or .id == "orphans" or .id == "colors") | .offline] | map(tostring) | join(",")' <<<"$j")" \
  "false,false,false" "… and are not offline steps"
is "$(jq -r '.result.steps[] | select(.id == "colors") | .command | join(" ")' <<<"$j")" "colors convert --batches" \
  "… the colours go by batches (never the rewrite's table lock with OMERO up)"
out=$(ou run --new-server "$zip" --orphans --colors all --online --dry-run 2>&1)
unlike "$(grep -E ' (orphans|colors|db-verify) ' <<<"$out")" "server down" "the human plan marks none of them [server down]"
j0=$(ou --json run --new-server "$zip" --orphans --colors all --dry-run 2>/dev/null)
is "$(jq -r '[.result.steps[].id] | index("orphans") < index("server-start")' <<<"$j0")" "true" \
  "without --online they stay inside the window (the default is unchanged)"

# --- the run ------------------------------------------------------------------------------------
orphans=$(q online_a -c "SELECT count(*) FROM omero_orphans_scan()")
colored=$(q online_a -c "SELECT count(*) FROM shape")
out=$(ou run --new-server "$zip" --orphans --colors all --online 2>&1); rc=$?
is "$rc" 0 "run --online: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -30 <<<"$out")"
j=$(cat "$state")
is "$(jq -r '.status + " " + ([.steps[].status] | unique | join(","))' <<<"$j")" "completed done" "… completed, every step done"
is "$(jq -r '.options.online' <<<"$j")" "true" "… --online recorded with the run's options (resume keeps it)"
started=$(jq -r '.steps[] | select(.id == "server-start") | .ended' <<<"$j")
for s in db-verify orphans colors; do
  b=$(jq -r --arg s "$s" '.steps[] | select(.id == $s) | .started' <<<"$j")
  ok "$([[ "$started" < "$b" || "$started" == "$b" ]]; echo $?)" "$s began after the server was started ($b >= $started)"
done
is "$(jq -r '.downtime.started_at' <<<"$j")" "$started" "the window closes at server-start"
is "$(jq -r '.steps[] | select(.id == "colors") | .result.method' <<<"$j")" "batch" "the colours were converted by batches"
is "$(q online_a -c "SELECT string_agg(method || ' ' || converted, ',') FROM omero_upgrade.color_runs")" "batch $colored" \
  "… every shape ($colored), in one journaled run"
is "$(q online_a -c "SELECT count(*) FROM omero_orphans_scan()") $(q online_a -c "SELECT string_agg(status || ' ' || deleted, ',') FROM omero_upgrade.orphan_run")" \
  "0 deleted $orphans" "the orphans ($orphans) were deleted, archived"
is "$(jq -r '.schema.verdict' <<<"$j")" "conforms" "db verify's verdict is recorded"
is "$(ou --json server status | jq -r .result.running)" "true" "the new server runs"
is "$(q online_a -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" "OMERO5.4__0" \
  "the database is at OMERO5.4__0"
like "$out" "downtime [0-9]+:[0-9]{2}:[0-9]{2}" "the report states the downtime"
# The stub's session (application OMERO.blitz) was open while the colours were converted.
like "$(cat "$r/OMERO.server-5.6.3/var/stub/calls" | tr '\n' ';')" "admin start;" "the new server was started by run"

# The same data as a run without --online leaves (another scenario, same template).
r2=$t/b
scenario "$r2" online_b
"$TOOL" --server-dir "$r2/OMERO.server" run --new-server "$r2/OMERO.server-5.6.3.zip" --orphans --colors all >"$t/b.out" 2>&1
is "$?" 0 "a run without --online on a twin scenario"
x="SELECT md5(string_agg(id || ':' || coalesce(fillcolor, 0) || ':' || coalesce(strokecolor, 0), ',' ORDER BY id)) FROM shape"
is "$(q online_a -c "$x")" "$(q online_b -c "$x")" "… both left the same shape colours"
is "$(q online_a -c "SELECT count(*) FROM annotation")" "$(q online_b -c "SELECT count(*) FROM annotation")" "… and the same annotations"

# --- rollback ------------------------------------------------------------------------------------
out=$(ou rollback 2>&1); rc=$?
is "$rc" 0 "rollback after an --online run: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
is "$(readlink "$r/OMERO.server")" "OMERO.server-5.3.5" "… OMERO.server points to the old tree again"
db=$("$r/OMERO.server/bin/omero" config get omero.db.name)
is "$(q "$db" -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1")" "OMERO5.3__1" \
  "… on a database at OMERO5.3__1 ($db)"
is "$(q "$db" -c "SELECT count(*) FROM omero_orphans_scan()")" "$orphans" "… with the orphans of before"

done_testing
