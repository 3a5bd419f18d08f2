#!/usr/bin/env bash
# omero-upgrade db to-utf8: a LATIN1 database copied into a new UTF8 one, verified (row counts of
# every table, dbpatch), non-ASCII text intact, the original untouched; --switch; and a database
# whose bytes cannot become UTF8 leaves nothing behind.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
fixture_db u_latin1 --encoding LATIN1
PGCLIENTENCODING=UTF8 q u_latin1 -c "CREATE TABLE site_notes (id int8 PRIMARY KEY, note text);
  INSERT INTO site_notes VALUES (1, 'Zürich café, Ångström, señal, ½ µm');"
srv=$t/srv
make_sample_server "$srv"
sample_config "$srv" omero.db.name=u_latin1 omero.db.user=postgres
tool() { "$TOOL" --server-dir "$srv" "$@"; }
fp_before=$(db_fingerprint u_latin1)

out=$(tool db to-utf8 --into u_utf8 --backup-dir "$t/bk" 2>&1)
is "$?" 0 "db to-utf8: exit 0"
like "$out" "converting 'u_latin1' \(LATIN1\) into a new UTF8 database 'u_utf8'" "says what it does"
like "$out" "verified: [0-9]+ tables with equal row counts, dbpatch OMERO5.3__1" "… and what it verified"
is "$(q postgres -c "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'u_utf8'")" "UTF8" "the new database is UTF8"
is "$(PGCLIENTENCODING=UTF8 q u_utf8 -c "SELECT note FROM site_notes")" "Zürich café, Ångström, señal, ½ µm" "non-ASCII text is intact"
is "$(db_fingerprint u_utf8)" "$fp_before" "the key tables are identical"
is "$(q postgres -c "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'u_latin1'")" "LATIN1" "the original is still LATIN1"
is "$(db_fingerprint u_latin1)" "$fp_before" "… and unchanged"
is "$(jq -r '.backups[0].purpose + " " + .backups[0].encoding + " " + .backups[0].source_encoding' "$t/bk/omero-upgrade-backups.json")" \
  "to-utf8 UTF8 LATIN1" "the UTF8 dump is kept as a recorded backup"
is "$(omero_calls "$srv" | grep -c '^config')" 0 "no --switch: config.xml is not touched"
like "$out" "to use it: bin/omero config set omero.db.name u_utf8" "… and says how to switch"

out=$(tool db to-utf8 --into u_utf8 --backup-dir "$t/bk2" 2>&1)
is "$?" 2 "into an existing non-empty database: exit 2"
is "$(ls "$t/bk2" 2>/dev/null | wc -l)" 0 "… refused before any dump is made"

out=$(tool --json db to-utf8 --into u_utf8_b --backup-dir "$t/bk3" --switch)
is "$(echo "$out" | jq -r '.status + " " + (.result.switched|tostring) + " " + .result.previous_db_name')" "ok true u_latin1" "--switch"
is "$(omero_calls "$srv" | grep '^config')" "config|set|omero.db.name|u_utf8_b" "… through bin/omero config set"
out=$(tool db to-utf8 --into u_again --backup-dir "$t/bk4" 2>&1)
is "$?" 0 "now config.xml names a UTF8 database…"
like "$out" "'u_utf8_b' is already UTF8: nothing to do" "… so there is nothing to do"

# SQL_ASCII holding bytes that are not UTF8: the restore fails and the new database is dropped.
fixture_db u_ascii --encoding SQL_ASCII
q u_ascii -c "CREATE TABLE site_notes (note text); INSERT INTO site_notes VALUES (convert_from('\\x5a8179'::bytea, 'SQL_ASCII'))"
out=$(tool --db-name u_ascii db to-utf8 --into u_ascii_utf8 --backup-dir "$t/bk5" 2>&1)
is "$?" 2 "bytes that are not UTF8: exit 2"
like "$out" "invalid byte sequence for encoding \"UTF8\"" "… the reason is shown"
is "$(q postgres -c "SELECT count(*) FROM pg_database WHERE datname = 'u_ascii_utf8'")" 0 "… and the new database was dropped"
is "$(q u_ascii -c "SELECT count(*) FROM site_notes")" 1 "… the original is untouched"

# "run again with --switch" (the hint above): the copy made without --switch is compared again
# and switched to, without a second dump; a copy that no longer matches is not switched to.
sample_config "$srv" omero.db.name=u_latin1 omero.db.user=postgres
: > "$srv/var/stub/calls"; : > "$srv/var/stub/argv"
PGCLIENTENCODING=UTF8 q u_utf8 -c "INSERT INTO site_notes VALUES (2, 'added since')"
out=$(tool db to-utf8 --into u_utf8 --backup-dir "$t/bk6" --switch 2>&1); rc=$?
is "$rc" 1 "again with --switch, the copy changed since: exit 1"
like "$out" "site_notes: 1 rows in 'u_latin1', 2 in 'u_utf8'" "… naming the difference"
is "$(config_value "$srv" omero.db.name)" "u_latin1" "… and not switched"
q u_utf8 -c "DELETE FROM site_notes WHERE id = 2"
j=$(tool --json db to-utf8 --into u_utf8 --backup-dir "$t/bk6" --switch 2>/dev/null); rc=$?
is "$rc" 0 "again with --switch on the unchanged copy: exit 0 (the hint works)"
is "$(echo "$j" | jq -r '(.result.reused|tostring) + " " + (.result.switched|tostring) + " " + .result.previous_db_name')" "true true u_latin1" \
  "… the existing copy compared and switched to"
is "$(config_value "$srv" omero.db.name)" "u_utf8" "… config.xml names it"
is "$(ls "$t/bk6" 2>/dev/null | grep -c pgdump)" 0 "… without a second dump"

done_testing
