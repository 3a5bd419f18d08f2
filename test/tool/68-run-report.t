#!/usr/bin/env bash
# What the run tells (issue 14). The report's rollback lines: correct when the server was a plain
# directory (moved to OMERO.server-old by the install, so the lines point the symlink there, never OMERO.server at
# itself), with -h/-p/-U of the run's connection and -T template0 for createdb; run by hand as
# printed they give back the old server on the restored database. `rollback` of a run on a plain
# directory points OMERO.server back to the moved tree.
# run --resume --dry-run marks each step done/pending from the live installation (issue 14), not
# only from the record: a step whose effect is there although the record says it failed, or whose
# effect is gone although the record says done, is shown as such. The human report says what each
# step did (orphans deleted in run N, shapes converted and how, links created) and how to undo it
# alone; the printed undo of the orphans step, run as printed, restores them.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
dbv() { q "$1" -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1"; }
# A plain-directory OMERO.server (no symlink), as many installations are.
plain() {
  local root=$1 db=$2
  scenario "$root" "$db"
  "$TOOL" --server-dir "$root/OMERO.server" server stop >/dev/null 2>&1
  rm "$root/OMERO.server"; mv "$root/OMERO.server-5.3.5" "$root/OMERO.server"
  "$TOOL" --server-dir "$root/OMERO.server" server start >/dev/null 2>&1
}

r=$t/a
plain "$r" rl_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
out=$(ou run --new-server "$r/OMERO.server-5.6.3.zip" 2>&1); rc=$?
is "$rc" 0 "a run on a plain-directory server completes"
is "$(readlink "$r/OMERO.server") $([ -d "$r/OMERO.server-old" ] && echo moved)" "OMERO.server-5.6.3 moved" \
  "… OMERO.server is a symlink to the new tree, the old one moved to OMERO.server-old"
lines=$(sed -n '/^To roll back:/,$p' <<<"$out")
unlike "$lines" "ln -sfn [^ ]*/OMERO.server [^ ]*/OMERO.server( |$)" "the rollback lines never point OMERO.server at itself"
like "$lines" "ln -sfn [^ ]*/OMERO.server-old [^ ]*/OMERO.server &&" "… they point it to OMERO.server-old"
like "$lines" "createdb -h $PGHOST -p $PGPORT -U [^ ]+ -T template0 -E UTF8 -O omero " "createdb with -h -p -U and -T template0"
like "$lines" "pg_restore -h $PGHOST -p $PGPORT -U [^ ]+ --no-owner --exit-on-error -d " "pg_restore with -h -p, as the OMERO user (-U), --no-owner, --exit-on-error"
like "$out" "old tree kept: $r/OMERO.server-old" "the report names where the old tree is kept"

# The lines by hand, as printed (the server stopped first).
ou server stop >/dev/null 2>&1
by_hand=$(grep -A2 "or with PostgreSQL's and OMERO's own tools" <<<"$lines" | tail -2)
bash -e -c "$by_hand" >"$t/hand.out" 2>&1; is "$?" 0 "the by-hand lines run"
into=$(jq -r .rollback.into "$r/.omero-upgrade-run.json")
is "$(readlink "$r/OMERO.server")" "$r/OMERO.server-old" "… OMERO.server points to the old tree"
is "$(config_value "$r/OMERO.server" omero.db.name) $(dbv "$into")" "$into OMERO5.3__1" "… which names the restored database, at OMERO5.3__1"
ou server start >/dev/null 2>&1; is "$?" 0 "… and the old server starts on it"

# rollback of a run on a plain directory points OMERO.server back to the moved tree.
b=$t/b
plain "$b" rl_b
ob() { "$TOOL" --server-dir "$b/OMERO.server" "$@"; }
ob run --new-server "$b/OMERO.server-5.6.3.zip" >/dev/null 2>&1; is "$?" 0 "a second plain-directory run"
out=$(ob rollback 2>&1); rc=$?
is "$rc" 0 "rollback: exit 0"
[ "$rc" -eq 0 ] || diag "$out"
is "$(readlink -f "$b/OMERO.server")" "$(readlink -f "$b/OMERO.server-old")" "… OMERO.server points back to the old tree"
is "$(ob --json server status | jq -r .result.running)" true "… the old server runs"
intob=$(jq -r .rollback.into "$b/.omero-upgrade-run.json")
is "$(config_value "$b/OMERO.server" omero.db.name) $(dbv "$intob")" "$intob OMERO5.3__1" "… on the restored database"


# ==== run --resume --dry-run from the live installation; what each step did ==================
r=$t/c
scenario "$r" lv_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
OMERO_UPGRADE_FAIL_AFTER_STEP=db-upgrade ou run --new-server "$r/OMERO.server-5.6.3.zip" >"$t/1.out" 2>&1
is "$?" 2 "a run stopped after db-upgrade (recorded failed, the database upgraded)"
live() { jq -r --arg s "$2" '.result.steps[] | select(.id == $s) | (.status + " " + .live)' <<<"$1"; }
j=$(ou --json run --resume --dry-run 2>/dev/null)
is "$(live "$j" db-upgrade)" "failed done" "db-upgrade: recorded failed, live done (the database is at the target)"
is "$(live "$j" server-stop)" "done done" "server-stop: done, the server is down"
is "$(live "$j" binaries-install)" "done done" "binaries-install: done, OMERO.server points to the new tree"
is "$(live "$j" server-start)" "pending pending" "server-start: pending"
out=$(ou run --resume --dry-run 2>&1)
like "$out" "\[done\] recorded failed, but live done: lv_a is at OMERO5.4__0; --resume runs it" "the plan says so in words"

# The server started by hand, OMERO.server pointed back by hand: the record says done, live not.
ou binaries rollback --force >/dev/null 2>&1
"$r/OMERO.server/bin/omero" admin start >/dev/null 2>&1
j=$(ou --json run --resume --dry-run 2>/dev/null)
is "$(live "$j" server-stop)" "done pending" "server-stop: recorded done, live pending (the server runs)"
is "$(live "$j" binaries-install)" "done pending" "binaries-install: recorded done, live pending (OMERO.server points back)"
out=$(ou run --resume --dry-run 2>&1)
like "$out" "\[pending\] recorded done, but live pending: the server is running; --resume skips it" "… in words"

# --- the report: what each step did, how to undo it alone ------------------------------------
b=$t/d
scenario "$b" lv_b
ob() { "$TOOL" --server-dir "$b/OMERO.server" "$@"; }
out=$(ob run --new-server "$b/OMERO.server-5.6.3.zip" --orphans --colors all --move-annotations-to-wells screen:1 2>&1)
is "$?" 0 "a run with the optional steps"
st=$b/.omero-upgrade-run.json
orun=$(jq -r '.steps[] | select(.id == "orphans") | .result.run_id' "$st")
odel=$(jq -r '.steps[] | select(.id == "orphans") | .result.deleted' "$st")
like "$out" "did: deleted $odel orphaned annotation\(s\) in orphans run $orun " "orphans: how many, in which run"
like "$out" "undo alone: omero-upgrade --server-dir [^ ]+ db orphans restore --run $orun" "… and its own undo"
conv=$(jq -r '.steps[] | select(.id == "colors") | .result.counts.converted' "$st")
like "$out" "did: converted $conv shape\(s\) ARGB → RGBA \(all shapes, method [a-z]+, colours run [0-9]+" "colors: how many and how"
like "$out" "undo alone: omero-upgrade --server-dir [^ ]+ colors revert" "… undone by colors revert"
made=$(jq -r '.steps[] | select(.id == "wells") | .result.totals.links_created' "$st")
like "$out" "did: created $made well annotation link\(s\)" "wells: the links created"
like "$out" "did: OMERO.server → $b/OMERO.server-5.6.3 \(was $b/OMERO.server-5.3.5\)" "binaries-install: the switch"
like "$out" "undo alone: omero-upgrade --server-dir [^ ]+ binaries rollback" "… undone by binaries rollback"
like "$out" "did: ran 1 upgrade script\(s\): OMERO5.3__1 → OMERO5.4__0" "db-upgrade: the scripts"
undo=$(grep -A1 "did: deleted $odel orphaned" <<<"$out" | sed -n 's/.*undo alone: //p')
out=$(eval "\"$TOOL\"${undo#omero-upgrade}" 2>&1); rc=$?
is "$rc" 0 "the orphans undo, run as printed"
is "$("$TOOL" --server-dir "$b/OMERO.server" --json db orphans restore --run "$orun" 2>/dev/null | jq -r .result.restored)" 0 \
  "… restored them all (nothing left to restore)"
[ "$odel" -gt 0 ]; ok $? "… of $odel deleted"

done_testing
