#!/usr/bin/env bash
# --json never dies on text that is not UTF-8 (issue 13 item 6): every string that reaches JSON
# (stdout, the run's state file, the binaries state file) is made valid, invalid bytes becoming
# U+FFFD, whatever its source:
#   - a Latin-1 file name under lib/scripts (binaries install, carried with its own bytes);
#   - a SQL_ASCII database whose dbpatch.message holds a Latin-1 byte (check);
#   - a byte that is not UTF-8 in --db-name (check, status, db plan: errors in JSON, not exit 134);
#   - a run that meets such a file name: the binaries-install step works, --resume works, and
#     the server is started again.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
e9=$'\xe9'            # é in Latin-1: not UTF-8 on its own
fffd=$'\xef\xbf\xbd'   # U+FFFD, the replacement character, in UTF-8
valid_json() { [ -n "$1" ] && jq -e 'type == "object"' >/dev/null 2>&1 <<<"$1"; }

# ---- a Latin-1 file name under lib/scripts -------------------------------------------------------
opt=$t/opt
srv=$opt/OMERO.server
make_sample_server "$srv" 5.4.10
mkdir -p "$srv/lib/scripts/omero/custom"
echo "# caf${e9}" > "$srv/lib/scripts/omero/custom/Caf${e9}.py"
make_sample_server "$opt/OMERO.server-5.6.3" 5.6.3
rm "$opt/OMERO.server-5.6.3/etc/grid/config.xml"
j=$("$TOOL" --json --server-dir "$srv" binaries install --carry-scripts "$opt/OMERO.server-5.6.3" 2>/dev/null); rc=$?
is "$rc" 0 "--json binaries install with a Latin-1 script name: exit 0 (was 134)"
valid_json "$j"; ok $? "… prints valid JSON"
is "$(jq -r '.result.scripts.carried[]' <<<"$j")" "omero/custom/Caf${fffd}.py" "… the name with U+FFFD for the byte"
cmp -s "$srv-old/lib/scripts/omero/custom/Caf${e9}.py" "$opt/OMERO.server-5.6.3/lib/scripts/omero/custom/Caf${e9}.py"
ok $? "… and the file carried under its own bytes"
jq -e . "$opt/.omero-upgrade-binaries.json" >/dev/null; ok $? "the binaries state file is valid JSON"

# ---- a SQL_ASCII database with a Latin-1 dbpatch.message ------------------------------------------
# (omero-fixture runs CREATE DATABASE … ENCODING 'SQL_ASCII' TEMPLATE template0)
fixture_db u57_ascii --encoding SQL_ASCII
is "$(q u57_ascii -c "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()")" \
  SQL_ASCII "the database is SQL_ASCII"
q u57_ascii -c "UPDATE dbpatch SET message = convert_from('\\x446f6e6520e9'::bytea, 'SQL_ASCII') WHERE id = (SELECT max(id) FROM dbpatch)"
is "$(q u57_ascii -c "SELECT encode(convert_to(message, 'SQL_ASCII'), 'hex') FROM dbpatch ORDER BY id DESC LIMIT 1")" \
  446f6e6520e9 "its newest dbpatch.message is 'Done ' and the Latin-1 byte e9"
s2=$t/srv2
make_sample_server "$s2"
sample_config "$s2" omero.db.name=u57_ascii omero.db.user=postgres
j=$("$TOOL" --json --server-dir "$s2" check --backup-dir "$t" 2>/dev/null); rc=$?
is "$rc" 1 "--json check on it: exit 1 (the encoding check fails), not 134"
valid_json "$j"; ok $? "… prints valid JSON"
like "$(jq -r '.result.checks[] | select(.name == "dbpatch") | .detail' <<<"$j")" "Done ${fffd}" \
  "… the message with U+FFFD for the byte"

# ---- a byte that is not UTF-8 in --db-name ----------------------------------------------------------
for cmd in check status "db plan"; do
  # shellcheck disable=SC2086
  j=$("$TOOL" --json --server-dir "$s2" --db-name "omero${e9}" $cmd 2>/dev/null); rc=$?
  ok "$([ "$rc" -eq 1 ] || [ "$rc" -eq 2 ]; echo $?)" "--json --db-name 'omero\\xe9' $cmd: exit $rc, not 134"
  valid_json "$j"; ok $? "… prints valid JSON"
done
like "$(jq -r '[.errors[], (.result | tostring)] | join(" ")' <<<"$j")" "omero${fffd}" "… naming the database with U+FFFD"

# ---- a run that meets a Latin-1 file name, failed after the stop, then resumed -------------------------
run_template
r=$t/run
scenario "$r" u57_run
mkdir -p "$r/OMERO.server-5.3.5/lib/scripts/omero/custom"
echo "# caf${e9}" > "$r/OMERO.server-5.3.5/lib/scripts/omero/custom/Caf${e9}.py"
out=$(OMERO_UPGRADE_FAIL_AFTER_STEP=server-stop "$TOOL" --server-dir "$r/OMERO.server" run --carry-scripts \
      --new-server "$r/OMERO.server-5.6.3.zip" 2>&1); rc=$?
is "$rc $(jq -r '.status + " " + .failed_step' "$r/.omero-upgrade-run.json")" "2 failed server-stop" \
  "a run stopped (injected) right after the server stop"
j=$("$TOOL" --json --server-dir "$r/OMERO.server" run --resume 2>/dev/null); rc=$?
is "$rc" 0 "--json run --resume goes through binaries install with the Latin-1 name: exit 0"
valid_json "$j"; ok $? "… prints valid JSON"
is "$(jq -r '.status' "$r/.omero-upgrade-run.json")" "completed" "… the run is completed"
[ -f "$r/OMERO.server/var/stub/running" ]; ok $? "… and the server runs again"
cmp -s "$r/OMERO.server-5.3.5/lib/scripts/omero/custom/Caf${e9}.py" "$r/OMERO.server/lib/scripts/omero/custom/Caf${e9}.py"
ok $? "… the script carried under its own bytes"
jq -e . "$r/.omero-upgrade-run.json" >/dev/null; ok $? "… the run's state file is valid JSON"
done_testing
