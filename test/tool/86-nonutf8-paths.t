#!/usr/bin/env bash
# Paths that are not UTF-8 survive the tool's own files byte for byte (issue 13 item 6): an
# installation under a directory whose name holds a Latin-1 byte is upgraded by a run that fails
# after the stop, resumed, rolled back, and its binaries switched back, each step finding the same
# trees by the paths recorded in the state, records and binaries state files. The files stay valid
# JSON; the output shows U+FFFD for the byte.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
e9=$'\xe9'
run_template
dbv() { q "$1" -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1"; }
r=$t/caf${e9}
scenario "$r" u86_run
out=$(OMERO_UPGRADE_FAIL_AFTER_STEP=server-stop "$TOOL" --server-dir "$r/OMERO.server" run \
      --new-server "$r/OMERO.server-5.6.3.zip" 2>&1); rc=$?
is "$rc $(jq -r '.status + " " + .failed_step' "$r/.omero-upgrade-run.json")" "2 failed server-stop" \
  "a run under caf\\xe9/ stopped (injected) right after the server stop"
jq -e . "$r/.omero-upgrade-run.json" >/dev/null; ok $? "… its state file is valid JSON"
# A resume that refuses before doing anything (here: one of OMERO's tables no longer owned by the
# OMERO user, so db-upgrade could not run) says the server is down, as the earlier attempt left
# it, not "the server was not stopped".
q u86_run -c "ALTER TABLE externalinfo OWNER TO CURRENT_USER"
out=$("$TOOL" --server-dir "$r/OMERO.server" run --resume 2>&1); rc=$?
is "$rc" 1 "run --resume with externalinfo owned by another role: exit 1 (refused before any step)"
like "$out" "step db-upgrade: .* does not own" "… naming the db-upgrade precondition"
like "$out" "nothing was changed by this resume; the server is down \(as the earlier attempt left it\)" \
  "… and saying the server is down, as the first attempt left it"
unlike "$out" "the server was not stopped" "… not 'the server was not stopped'"
q u86_run -c "ALTER TABLE externalinfo OWNER TO omero"
out=$("$TOOL" --server-dir "$r/OMERO.server" run --resume 2>&1); rc=$?
is "$rc" 0 "run --resume: exit 0, the binaries install and every later step finding caf\\xe9/ by its recorded path"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
st=$r/.omero-upgrade-run.json
is "$(jq -r .status "$st") $(readlink "$r/OMERO.server") $(dbv u86_run)" "completed OMERO.server-5.6.3 OMERO5.4__0" \
  "… the run completed: OMERO.server -> OMERO.server-5.6.3, the database at OMERO5.4__0"
[ -f "$r/OMERO.server/var/stub/running" ]; ok $? "… and the server runs"
for f in "$st" "$r/.omero-upgrade-binaries.json" "$r/omero-upgrade-backups/omero-upgrade-backups.json"; do
  jq -e . "$f" >/dev/null; ok $? "${f##*/} is valid JSON"
  LC_ALL=C grep -aq $'\xe9' "$f"; is "$?" 1 "… holding no byte that is not UTF-8"
done
hex=$(printf '%s' "$r/OMERO.server-5.3.5" | od -An -tx1 | tr -d ' \n')
jq -r '.. | strings' "$st" | grep -qxF $'\x01'"bytes:$hex"; ok $? "the state holds the old tree's path byte for byte (marker and hex)"
backup=$(jq -r '.backup.path' "$st")
like "$backup" '^.bytes:' "… and the backup's path the same way"

# The rollback acts on the recorded paths: it restores the backup found by its exact name and
# points OMERO.server back to the old tree, under caf\xe9/.
out=$("$TOOL" --server-dir "$r/OMERO.server" rollback 2>&1); rc=$?
is "$rc" 0 "rollback: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
into=$(jq -r .rollback.into "$st")
is "$(readlink "$r/OMERO.server") $(config_value "$r/OMERO.server" omero.db.name) $(dbv "$into")" \
  "OMERO.server-5.3.5 $into OMERO5.3__1" \
  "… OMERO.server -> OMERO.server-5.3.5 again, on the restored database at OMERO5.3__1"
[ -f "$r/OMERO.server/var/stub/running" ]; ok $? "… and the old server runs"
jq -e . "$st" >/dev/null; ok $? "… its record stays valid JSON"

# binaries install and rollback on their own, with --json (U+FFFD shown, the bytes kept).
"$TOOL" --server-dir "$r/OMERO.server" server stop >/dev/null 2>&1
j=$("$TOOL" --json --server-dir "$r/OMERO.server" binaries install "$r/OMERO.server-5.6.3.zip" 2>/dev/null); rc=$?
is "$rc" 0 "binaries install --json under caf\\xe9/: exit 0"
like "$(jq -r '.result | tostring' <<<"$j")" "caf"$'\xef\xbf\xbd' "… the JSON shows U+FFFD for the byte"
j=$("$TOOL" --json --server-dir "$r/OMERO.server" binaries rollback 2>/dev/null); rc=$?
is "$rc $(readlink "$r/OMERO.server")" "0 OMERO.server-5.3.5" "binaries rollback: exit 0, OMERO.server -> OMERO.server-5.3.5 by its recorded path"

# The marker itself is data: a path that starts with it is stored in the bytes form too, so it
# reads back as it was (no string is ever mistaken for an encoded one).
odd=$t/$'\x01'bytes:6869
mkdir -p "$odd"
scenario "$odd" u86_odd
OMERO_UPGRADE_FAIL_AFTER_STEP=server-stop "$TOOL" --server-dir "$odd/OMERO.server" run \
  --new-server "$odd/OMERO.server-5.6.3.zip" >/dev/null 2>&1
out=$("$TOOL" --server-dir "$odd/OMERO.server" run --resume 2>&1); rc=$?
is "$rc $(readlink "$odd/OMERO.server")" "0 OMERO.server-5.6.3" "a run under a directory named like the marker resumes and completes"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
out=$("$TOOL" --server-dir "$odd/OMERO.server" rollback 2>&1); rc=$?
is "$rc $(readlink "$odd/OMERO.server")" "0 OMERO.server-5.3.5" "… and rolls back to its old tree"
done_testing
