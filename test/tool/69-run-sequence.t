#!/usr/bin/env bash
# Random sequences (issue 14): seeded and reproducible, OU_SEQ_STEPS steps (default 200 in make
# test) from OU_SEQ_SEED (default: a fresh seed, printed; give it back to replay), of run, run
# --resume, rollback, Ctrl-C (SIGINT to the tool at a random moment of a run, resume or rollback),
# binaries rollback, server stop, server start, a manual edit of config.xml (omero.db.name to
# another database of the installation), a write by the users (a marker row), runs with random
# optional steps (--orphans, --colors all, --move-annotations-to-wells) and run --report, against
# a model of what must hold, checked after every step:
#   I1 the server never runs on a database whose version differs from its tree's newest scripts
#      (every OMERO session's database, for the one tree that runs; never two trees running);
#   I2 every report's versions equal what is read back: every database line of every report
#      (run, resume, Ctrl-C'd run, run --report) names the database the server's config.xml
#      names, at the version the report gives;
#   I3 no step stops a server when nothing is to be done (run: nothing to do, or refused;
#      rollback: nothing to roll back);
#   I4 a rollback always gets back the state before the last run that changed something: the
#      model keeps the runs in effect as a stack (a new run recorded pushes it; a rollback pops the
#      run it undid and the runs above it); the run a rollback undoes is in that stack, and every
#      run above it was rolled back already or changed nothing (no backup, or the tree it started
#      from is the tree now) and is marked so by the rollback; a rollback that finds nothing to undo
#      leaves no run in effect that changed the tree; a rollback that restores gives back the state
#      before that run: OMERO.server's tree, and the database the server uses at the version, with
#      the marker and the content the optional steps change (annotations, shape colours, well links)
#      it had before that run; one that only switches back, the tree and the version;
#   I5 a run that completed leaves the server on the database it used before the run.
# Three releases: 5.6.3 (the hop to OMERO5.4__0), 5.3.6 and 5.6.4 (binaries-only beside 5.3.5 and
# 5.6.3: the same newest scripts). The sequence begins with successive upgrades across them and
# rollbacks (5.3.5 → 5.3.6 → 5.6.3, rollback: back to 5.3.6 with the database restored, not to
# 5.3.5; again 5.6.3, then 5.6.4, rollback: back to 5.6.3, switched only; a second rollback: back
# to 5.3.6, restored (the run to 5.6.3 is the last one in effect); a third: back to 5.3.5,
# switched only (the run to 5.6.3 before it was rolled back already: the run to 5.3.6 is in effect);
# a fourth: nothing left to undo), then goes on at random, each run to one of the three.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

steps=${OU_SEQ_STEPS:-200}
seed=${OU_SEQ_SEED:-$(( $(date +%s%N) % 1000000 ))}
diag "sequence of $steps steps, seed $seed (replay: OU_SEQ_SEED=$seed OU_SEQ_STEPS=$steps)"
RANDOM=$seed

t=$(scratch)
run_template
r=$t/a
scenario "$r" sq_a
zip=$r/OMERO.server-5.6.3.zip
for v in 5.3.6 5.6.4; do
  make_sample_server "$r/build/OMERO.server-$v" "$v"
  rm "$r/build/OMERO.server-$v/etc/grid/config.xml"
  make_server_zip "$r/build/OMERO.server-$v" "$r/OMERO.server-$v.zip"
done
rm -r "$r/build"
z536=$r/OMERO.server-5.3.6.zip z564=$r/OMERO.server-5.6.4.zip
zips=("$zip" "$zip" "$z536" "$z564")
# The beginning: upgrades across releases and rollbacks (see above), then random steps.
script=("run $z536" "run $zip" rollback "run $zip" "run $z564" rollback rollback rollback rollback)
state=$r/.omero-upgrade-run.json
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
dbv() { q "$1" -c "SELECT currentversion || '__' || currentpatch || CASE WHEN finished IS NULL THEN ' (unfinished)' ELSE '' END
                    FROM dbpatch ORDER BY id DESC LIMIT 1" 2>/dev/null; }
cur_db() { config_value "$r/OMERO.server" omero.db.name; }
marker() { q "$1" -c "SELECT value FROM configuration WHERE name = 'seq.marker'" 2>/dev/null; }
stops() { cat "$r"/OMERO.server-*/var/stub/calls 2>/dev/null | grep -c '^admin stop'; }
newest() { ls "$1/sql/psql" 2>/dev/null | sort -V | tail -1; }
run_id() { jq -r .run_id "$state" 2>/dev/null; }

# What the optional steps change: annotations (orphans), shape colours (colors), well links (wells).
content() { q "$1" -c "SELECT (SELECT count(*) FROM annotation) || '/' || (SELECT count(*) FROM wellannotationlink) || '/' ||
                             (SELECT md5(coalesce(string_agg(id || ':' || coalesce(fillcolor, 0) || ':' || coalesce(strokecolor, 0), ',' ORDER BY id), '')) FROM shape)" 2>/dev/null; }
declare -A before_link before_ver before_mark before_content bk_done  # by run id: the installation before that run
declare -A run_at rb_of nc_seen  # the scripted beginning: the run recorded / rolled back at step n; runs whose "passed over" was checked
inef=()  # the runs in effect, oldest first (the model's stack)
record_of() { if [ "$(run_id)" = "$1" ]; then echo "$state"; else echo "$state.$1"; fi; }
fails=0
bad() { fails=$((fails + 1)); diag "step $n ($op): $*"; }

# I1: at most one tree runs; every OMERO session is on a database at that tree's newest version.
check_i1() {
  local running=() tree d v
  for tree in "$r"/OMERO.server-*/; do
    tree=${tree%/}
    [ -f "$tree/var/stub/running" ] && running+=("$tree")
  done
  [ ${#running[@]} -le 1 ] || { bad "I1: two trees run: ${running[*]}"; return; }
  [ ${#running[@]} -eq 1 ] || return
  for d in $(psql -X -A -t -c "SELECT DISTINCT datname FROM pg_stat_activity WHERE application_name = 'OMERO.blitz' AND datname LIKE 'sq\_a%'" postgres); do
    v=$(dbv "$d")
    [ "$v" = "$(newest "${running[0]}")" ] || bad "I1: ${running[0]##*/} runs on $d at '$v', its scripts lead to $(newest "${running[0]}")"
  done
}

# I2: every database line of every report in the output against what is read back now.
check_i2() {
  local line name after re='^  database ([^:]+): [^ ]+( → |, now )(OMERO[0-9.]+__[0-9]+( \(unfinished\))?)'
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    reports=$((reports + 1))
    if ! [[ $line =~ $re ]]; then
      # not read back: only when the database cannot be read
      [[ $line == *"not read back"* ]] && [ -n "$(dbv "$(cur_db)")" ] && bad "I2: not read back, but $(cur_db) answers: $line"
      continue
    fi
    name=${BASH_REMATCH[1]} after=${BASH_REMATCH[3]}
    [ "$name" = "$(cur_db)" ] || bad "I2: the report names $name, the server's config.xml $(cur_db)"
    [ "$after" = "$(dbv "$name")" ] || bad "I2: the report says $name is at $after, it is at $(dbv "$name")"
  done < <(grep '^  database [^ ]*: ' <<<"$out")
}
reports=0 restores=0 fallbacks=0 switches=0 begin_ok=0

ops=(run run run runopt resume resume rollback rollback ctrlc ctrlc binrb stop start start edit write report)
# Optional steps of a run: any of them (the fixture's screen 1 holds the plates with wells).
opt_steps() {
  local o=()
  ((RANDOM % 2)) && o+=(--orphans)
  ((RANDOM % 2)) && o+=(--colors all)
  ((RANDOM % 2)) && o+=(--move-annotations-to-wells screen:1)
  [ ${#o[@]} -gt 0 ] || o=(--orphans)
  printf '%s\n' "${o[@]}"
}
[ "$steps" -ge ${#script[@]} ] || steps=${#script[@]}
for n in $(seq 1 "$steps"); do
  op=${ops[RANDOM % ${#ops[@]}]} nz=${zips[RANDOM % ${#zips[@]}]}
  if [ "$n" -le ${#script[@]} ]; then
    op=${script[n - 1]%% *} nz=${script[n - 1]#* }
  fi
  s0=$(stops) id0=$(run_id) link0=$(readlink "$r/OMERO.server") db0=$(cur_db)
  ver0=$(dbv "$db0") mark0=$(marker "$db0") content0=$(content "$db0")
  out= rc=0
  case $op in
    run) op="run ${nz##*/}"; out=$(ou run --new-server "$nz" 2>&1); rc=$? ;;
    runopt)
      mapfile -t o < <(opt_steps)
      op="runopt ${nz##*/} ${o[*]}"
      out=$(ou run --new-server "$nz" "${o[@]}" 2>&1); rc=$? ;;
    report) out=$(ou run --report 2>&1); rc=$? ;;
    resume) out=$(ou run --resume 2>&1); rc=$? ;;
    rollback) out=$(ou rollback 2>&1); rc=$? ;;
    ctrlc)
      case $((RANDOM % 4)) in
        0) set -- run --new-server "$zip" ;; 1) set -- run --resume ;; 2) set -- rollback ;;
        3) set -- run --new-server "$zip" --orphans --colors all --move-annotations-to-wells screen:1 ;;
      esac
      op="ctrlc $1 $2"
      "$TOOL" --server-dir "$r/OMERO.server" "$@" >"$t/bg.out" 2>&1 &
      pid=$!
      sleep "$((RANDOM % 3)).$((RANDOM % 10))"
      kill -INT "$pid" 2>/dev/null
      wait "$pid"; rc=$?
      out=$(cat "$t/bg.out") ;;
    binrb) out=$(ou binaries rollback 2>&1); rc=$? ;;
    stop) out=$(ou server stop 2>&1); rc=$? ;;
    start) out=$(ou server start 2>&1); rc=$? ;;
    edit)
      dbs=($(psql -X -A -t -c "SELECT datname FROM pg_database WHERE datname LIKE 'sq\_a%' ORDER BY 1" postgres))
      "$r/OMERO.server/bin/omero" config set omero.db.name "${dbs[RANDOM % ${#dbs[@]}]}" ;;
    write) q "$db0" -c "DELETE FROM configuration WHERE name = 'seq.marker';
                        INSERT INTO configuration (name, value) VALUES ('seq.marker', '$n')" >/dev/null 2>&1 ;;
  esac
  echo "$n $op rc=$rc link=$(readlink "$r/OMERO.server") db=$(cur_db)@$(dbv "$(cur_db)") run=$(run_id)/$(jq -r .status "$state" 2>/dev/null)" >> "$t/trace"
  # A new run recorded: the installation before it is what a rollback must give back.
  id1=$(run_id)
  if [ -n "$id1" ] && [ "$id1" != null ] && [ "$id1" != "$id0" ]; then
    before_link[$id1]=$link0 before_ver[$id1]=$ver0 before_mark[$id1]=$mark0 before_content[$id1]=$content0
    inef+=("$id1") run_at[$n]=$id1
  fi
  # The backup a rollback restores was taken during this step (before anything changed): the state
  # before the run is the one before this step (a user's write may have come since the run began).
  if [ -n "$id1" ] && [ "$id1" != null ] && [ -z "${bk_done[$id1]:-}" ] &&
     [ "$(jq -r '.steps[] | select(.id == "backup") | .status' "$state" 2>/dev/null)" = done ]; then
    bk_done[$id1]=1
    before_link[$id1]=$link0 before_ver[$id1]=$ver0 before_mark[$id1]=$mark0 before_content[$id1]=$content0
  fi
  check_i1
  case $op in run*|resume|report|"ctrlc run"*) check_i2 ;; esac
  # I5: a fresh run that completed upgraded the database the server used before it, and the
  # server uses that one after it.
  if [[ $op == run* ]] && [ "$rc" -eq 0 ] && grep -q "^Report of run [^ ]*: completed" <<<"$out"; then
    [ "$(cur_db)" = "$db0" ] || bad "I5: the server used $db0 before the run, its config.xml names $(cur_db) after it"
  fi
  if [[ $op == run* ]] && { grep -q "^nothing to do" <<<"$out" || grep -q "nothing was changed" <<<"$out"; }; then
    [ "$(stops)" = "$s0" ] || bad "I3: run had nothing to do (or refused) but stopped the server"
  fi
  if [[ $op == rollback ]] && grep -q "nothing to roll back" <<<"$out"; then
    [ "$(stops)" = "$s0" ] || bad "I3: rollback had nothing to roll back but stopped the server"
  fi
  # The run a rollback undid: "Rollback of run ID: …" (the recorded one, or the earlier one it fell back to).
  rid=$(sed -n 's/^Rollback of run \([^:]*\):.*/\1/p' <<<"$out" | tail -1)
  if [[ $op == rollback ]] && [ "$rc" -eq 0 ] && grep -q "^rolled back: .*(restored from" <<<"$out" && [ -n "$rid" ] &&
     [ -n "${before_link[$rid]+x}" ]; then
    restores=$((restores + 1))
    grep -q "rolling back the earlier run $rid" <<<"$out" && fallbacks=$((fallbacks + 1))
    [ "$(readlink "$r/OMERO.server")" = "${before_link[$rid]}" ] ||
      bad "I4: OMERO.server → $(readlink "$r/OMERO.server"), before run $rid it was ${before_link[$rid]}"
    [ "$(dbv "$(cur_db)")" = "${before_ver[$rid]}" ] ||
      bad "I4: the database is at $(dbv "$(cur_db)"), before run $rid it was at ${before_ver[$rid]}"
    [ "$(marker "$(cur_db)")" = "${before_mark[$rid]}" ] ||
      bad "I4: the marker is '$(marker "$(cur_db)")', before run $rid it was '${before_mark[$rid]}'"
    [ -z "${before_content[$rid]}" ] || [ "$(content "$(cur_db)")" = "${before_content[$rid]}" ] ||
      bad "I4: the content is '$(content "$(cur_db)")', before run $rid it was '${before_content[$rid]}'"
  fi
  # I4, passed over: a rollback (one that completed, or one Ctrl-C'd after it marked it) that
  # marks a run with a backup as unchanged does so because the tree is, before that rollback,
  # the one the run started from. Checked at the step that marked it: a later rollback that goes
  # on from there finds the tree the interrupted one had switched to.
  if [[ $op == rollback || $op == "ctrlc rollback"* ]]; then
    for x in "${inef[@]}"; do
      [ -z "${nc_seen[$x]:-}" ] || continue
      f=$(record_of "$x")
      jq -e '.rollback.nothing_changed // false' "$f" >/dev/null || continue
      nc_seen[$x]=1
      ! jq -e '.backup.path // empty' "$f" >/dev/null || [ "${before_link[$x]}" = "$link0" ] ||
        bad "I4: run $x was passed over as unchanged, but it started from ${before_link[$x]}, not $link0"
    done
  fi
  # I4, the stack: the run undone is in effect, every run above it is undone already or changed
  # nothing, and the rollback marked it so; they leave the stack with it.
  if [[ $op == rollback ]] && [ "$rc" -eq 0 ] && grep -q "^rolled back: " <<<"$out" && [ -n "$rid" ]; then
    rb_of[$n]=$rid
    k=-1
    for i in "${!inef[@]}"; do [ "${inef[i]}" = "$rid" ] && k=$i; done
    if [ "$k" -lt 0 ]; then
      bad "I4: the rollback undid run $rid, which is not in effect (in effect: ${inef[*]})"
    else
      for x in "${inef[@]:k+1}"; do
        f=$(record_of "$x")
        [ "$(jq -r .status "$f")" = "rolled back" ] || bad "I4: run $x, above run $rid, is not marked rolled back ($(jq -r .status "$f"))"
        jq -e '.rollback.nothing_changed // false' "$f" >/dev/null || [ "$(jq -r .rollback.finished "$f")" \< "$(jq -r .rollback.finished "$(record_of "$rid")")" ] ||
          bad "I4: run $x, above run $rid, was neither undone before nor passed over as unchanged"
      done
      inef=("${inef[@]:0:k}")
    fi
  fi
  # Nothing left to undo: no run in effect changed the tree (the ones still in the stack are
  # undone already, or started from the tree there is now).
  if [[ $op == rollback ]] && [ "$rc" -eq 0 ] && grep -q "^nothing to roll back" <<<"$out"; then
    for x in "${inef[@]}"; do
      f=$(record_of "$x")
      [ "$(jq -r .status "$f")" = "rolled back" ] || ! jq -e '.backup.path // empty' "$f" >/dev/null ||
        [ "${before_link[$x]}" = "$link0" ] || bad "I4: nothing to roll back, but run $x is in effect and started from ${before_link[$x]}, not $link0"
    done
  fi
  if [[ $op == rollback ]] && [ "$rc" -ne 0 ] && grep -q "^nothing was changed" <<<"$out"; then
    [ "$(stops)" = "$s0" ] || bad "I3: a refused rollback stopped the server"
  fi
  # A rollback that only switched back (the database unchanged, not restored): the tree before the
  # run, and the database at the version it had then (users' writes since are kept, by design).
  if [[ $op == rollback ]] && [ "$rc" -eq 0 ] && grep -q "^rolled back: .*(unchanged, not restored)" <<<"$out" &&
     [ -n "$rid" ] && [ -n "${before_link[$rid]+x}" ]; then
    switches=$((switches + 1))
    [ "$(readlink "$r/OMERO.server")" = "${before_link[$rid]}" ] ||
      bad "I4: OMERO.server → $(readlink "$r/OMERO.server"), before run $rid it was ${before_link[$rid]}"
    [ "$(dbv "$(cur_db)")" = "${before_ver[$rid]}" ] ||
      bad "I4: the database is at $(dbv "$(cur_db)"), before run $rid it was at ${before_ver[$rid]}"
  fi
  if [ "$n" -eq 7 ]; then
    # After the second rollback: status names the run a rollback undoes now, the run to 5.3.6.
    j=$(ou --json status 2>/dev/null)
    [ "$(jq -r '.result.rollback | [.possible, .run_id] | map(tostring) | join(" ")' <<<"$j")" = "true ${run_at[1]}" ] ||
      bad "status after the second rollback: $(jq -c .result.rollback <<<"$j")"
  fi
  if [ "$n" -eq ${#script[@]} ]; then
    # The scripted beginning: both kinds of rollback happened, each back to the release before
    # the last run still in effect (5.3.6 after the first, 5.6.3, 5.3.6, 5.3.5 after the next
    # three), and the fourth rollback found nothing left to undo and changed nothing.
    [ "$restores" -ge 2 ] && [ "$switches" -ge 2 ] || bad "the beginning rolled back $restores (restored) and $switches (switched) runs"
    [ "${rb_of[3]} ${rb_of[6]} ${rb_of[7]} ${rb_of[8]}" = "${run_at[2]} ${run_at[5]} ${run_at[4]} ${run_at[1]}" ] ||
      bad "the rollbacks of the beginning undid ${rb_of[3]} ${rb_of[6]} ${rb_of[7]} ${rb_of[8]}, not ${run_at[2]} ${run_at[5]} ${run_at[4]} ${run_at[1]}"
    [ "$(readlink "$r/OMERO.server")" = OMERO.server-5.3.5 ] || bad "after the beginning OMERO.server → $(readlink "$r/OMERO.server")"
    [ "$(dbv "$(cur_db)")" = OMERO5.3__1 ] || bad "after the beginning the database is at $(dbv "$(cur_db)")"
    [ "$(stops)" = "$s0" ] || bad "I3: the rollback with nothing left to undo stopped the server"
    grep -q "already rolled back" <<<"$out" || bad "the fourth rollback: $(tail -3 <<<"$out")"
    [ "$(ou --json status 2>/dev/null | jq -r .result.rollback.possible)" = false ] || bad "status after the beginning: a rollback possible"
    begin_ok=1
  fi
  [ "$fails" -eq 0 ] || { diag "$(tail -${OU_SEQ_TRACE:-8} "$t/trace")"; diag "$(tail -30 <<<"$out")"; break; }
done
is "$fails" 0 "$steps random steps (seed $seed): the invariants hold after every one"
diag "report database lines checked: $reports; rollbacks that restored: $restores (of an earlier run: $fallbacks)"
diag "ops: $(awk '{print $2}' "$t/trace" | sort | uniq -c | tr '\n' ' ')"
diag "runs that completed: $(grep -c ' run [^ ]* rc=0 .*/completed' "$t/trace"), rollbacks that completed: $(grep -c ' rollback rc=0 .*/rolled back' "$t/trace")"
ok "$([ "$(grep -c ' run [^ ]* rc=0' "$t/trace")" -gt 0 ]; echo $?)" "… the sequence has completed runs"
is "$begin_ok" 1 "… its beginning: 5.3.5 → 5.3.6 → 5.6.3, rolled back to 5.3.6 (restored); 5.6.3 → 5.6.4, rolled back to 5.6.3 (switched), 5.3.6 (restored), 5.3.5 (switched), then nothing left"
diag "rollbacks that only switched back: $switches"
ok "$([ "$reports" -gt 0 ]; echo $?)" "… and report lines checked against the database"
cp "$t/trace" "$OU_TMP/seq-trace.txt" 2>/dev/null

done_testing
