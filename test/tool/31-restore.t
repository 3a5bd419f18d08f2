#!/usr/bin/env bash
# omero-upgrade restore: verified first (a damaged dump creates nothing), a new UTF8 database
# owned by the OMERO user, identical data, hostile names, the extension left out where the server
# lacks it, --switch through bin/omero config set.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -d postgres -c "CREATE ROLE rt_owner LOGIN"
fixture_db rt_src
q rt_src -c "CREATE EXTENSION omero_upgrade"
srv=$t/srv
# The OMERO user is rt_owner; the tool connects as postgres (--db-user) to create databases.
make_sample_server "$srv"
sample_config "$srv" omero.db.name=rt_src omero.db.user=rt_owner
bk=$t/bk
tool() { "$TOOL" --server-dir "$srv" --db-user postgres "$@"; }
dbs() { q postgres -c "SELECT count(*) FROM pg_database WHERE datname = \$\$$1\$\$"; }

tool -q backup --backup-dir "$bk"
f=$(ls "$bk"/*.pgdump)
ok $? "a backup to restore"
is "$(pg_restore -l "$f" | grep -c 'EXTENSION - omero_upgrade')" 1 "… it holds the omero_upgrade extension"

# Round trip.
out=$(tool restore "$f" --into rt_copy 2>&1)
is "$?" 0 "restore: exit 0"
like "$out" "verified .*checksum.*dbpatch OMERO5.3__1" "verified before anything else"
like "$out" "created database 'rt_copy' \(UTF8, owner rt_owner\)" "a new UTF8 database owned by the OMERO user"
is "$(q postgres -c "SELECT pg_encoding_to_char(encoding) || ' ' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'rt_copy'")" \
  "UTF8 rt_owner" "… as the catalog says"
is "$(db_fingerprint rt_copy)" "$(db_fingerprint rt_src)" "identical rows and content in the key tables"
is "$(q rt_copy -c "SELECT extversion FROM pg_extension WHERE extname = 'omero_upgrade'")" "$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$OU_SRC/omero_upgrade.control")" \
  "the extension came along (at this build's version)"

# Refusals that touch nothing.
out=$(tool restore "$f" --into rt_src 2>&1)
is "$?" 2 "into an existing non-empty database: exit 2"
like "$out" "'rt_src' already exists and is not empty" "… refused"
is "$(db_fingerprint rt_src)" "$(db_fingerprint rt_copy)" "… and it is untouched"
psql -X -q -d postgres -c "CREATE DATABASE rt_latin1 ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
out=$(tool restore "$f" --into rt_latin1 2>&1)
like "$out" "already exists with encoding LATIN1, not UTF8" "into an existing empty LATIN1 database: refused"
psql -X -q -d postgres -c "CREATE DATABASE rt_empty ENCODING 'UTF8' TEMPLATE template0 OWNER rt_owner"
out=$(tool restore "$f" --into rt_empty 2>&1)
is "$?" 0 "into an existing empty UTF8 database: fine"
is "$(db_fingerprint rt_empty)" "$(db_fingerprint rt_src)" "… identical data"
long=$(printf 'x%.0s' $(seq 64))
out=$(tool restore "$f" --into "$long" 2>&1)
is "$?" 2 "a name longer than 63 bytes: exit 2"
is "$(dbs "${long:0:63}")" 0 "… nothing created"

mkdir -p "$t/bad"; cp "$f" "$f.sha256" "$t/bad/"
g=$(basename "$f")
printf 'X' | dd of="$t/bad/$g" bs=1 seek=$(( $(stat -c %s "$f") / 3 )) conv=notrunc status=none
out=$(tool restore "$t/bad/$g" --into rt_from_bad 2>&1)
is "$?" 1 "an altered dump: exit 1"
like "$out" "checksum mismatch.*
.*refusing to restore .*nothing was created" "… refused before anything is created"
is "$(dbs rt_from_bad)" 0 "… no database"
truncate -s 1000 "$t/bad/$g"
out=$(tool restore "$t/bad/$g" --into rt_from_bad 2>&1)
is "$?,$(dbs rt_from_bad)" "1,0" "a truncated dump: exit 1, no database"

# The version recorded in the manifest must be what comes back.
mkdir -p "$t/mv"; cp "$f" "$f.sha256" "$t/mv/"
jq '.backups[0].dbpatch_version = "OMERO5.2__0" | {format: 1, backups: [.backups[0]]}' "$bk/omero-upgrade-backups.json" \
  | jq --arg f "$g" '.backups[0].file = $f' > "$t/mv/omero-upgrade-backups.json"
out=$(tool restore "$t/mv/$g" --into rt_mv 2>&1)
is "$?,$(dbs rt_mv)" "1,0" "a dump whose dbpatch differs from its manifest entry: exit 1, no database"
like "$out" "dbpatch version OMERO5.3__1 differs from the manifest's OMERO5.2__0" "… says so"

# Hostile names: quotes, spaces, semicolons, reach PostgreSQL as names, never as SQL.
hostile="rt q'uo\"te; DROP DATABASE rt_src; --"
out=$(tool restore "$f" --into "$hostile" 2>&1)
is "$?" 0 "restore into a name with quotes, spaces, semicolons: exit 0"
is "$(dbs "$hostile")" 1 "… the database has exactly that name"
is "$(dbs rt_src)" 1 "… and rt_src is still there"
is "$(db_fingerprint "$hostile")" "$(db_fingerprint rt_src)" "… identical data"
out=$(tool --db-name "$hostile" backup --backup-dir "$t/hb" 2>&1)
is "$?" 0 "backup of that database"
like "$(ls "$t/hb" | grep 'pgdump$')" "^rt_q_uo_te__DROP_DATABASE_rt_src__---OMERO5\.3__1-[0-9T]+Z\.pgdump" "… under a file-safe name"
out=$(tool backup verify "$t/hb"/*.pgdump 2>&1)
is "$?" 0 "… which verifies"

# --switch: bin/omero config set omero.db.name NEW_DB, with the name passed intact.
out=$(tool restore "$f" --into "rt switched;'x" --switch 2>&1)
is "$?" 0 "restore --switch: exit 0"
is "$(omero_calls "$srv" | grep '^config')" "config|set|omero.db.name|rt switched;'x" "bin/omero config set got the exact name as one argument"
is "$(config_value "$srv" omero.db.name)" "rt switched;'x" "config.xml now names the new database"
like "$out" "switched: omero.db.name is now 'rt switched;'x' \(was 'rt_src'" "… and the old name is shown"
j=$("$TOOL" --json --server-dir "$srv" --db-user postgres check --backup-dir "$t")
is "$(echo "$j" | jq -r .result.settings.db_name)" "rt switched;'x" "the tool itself now uses the new database"

# A server without the omero_upgrade extension: its entries are left out.
inst=${OU_PGBIN%"$("${PG_CONFIG:-pg_config}" --bindir)"}
ctl=$inst$("${PG_CONFIG:-pg_config}" --sharedir)/extension/omero_upgrade.control
mv "$ctl" "$ctl.away"
trap 'mv "$ctl.away" "$ctl" 2>/dev/null' EXIT
out=$(tool restore "$f" --into rt_noext 2>&1)
rc=$?
mv "$ctl.away" "$ctl"
is "$rc" 0 "restore on a server lacking the extension: exit 0"
like "$out" "warning: this server has no omero_upgrade extension: the extension and its state .* are left out" "… with a warning"
is "$(q rt_noext -c "SELECT count(*) FROM pg_extension WHERE extname = 'omero_upgrade'")" 0 "… no extension in the new database"
is "$(db_fingerprint rt_noext)" "$(db_fingerprint rt_src)" "… the OMERO data are identical"
out=$(tool --json restore "$f" --into rt_skip --skip-extension)
is "$(echo "$out" | jq -r '.result.extension_left_out')" true "--skip-extension leaves it out on purpose"

# Parallel restore of a directory-format backup.
tool -q backup --backup-dir "$t/dirbk" --jobs 2
out=$(tool restore "$(ls -d "$t/dirbk"/*.pgdir)" --into rt_par --jobs 2 2>&1)
is "$?" 0 "restore --jobs 2 of a .pgdir: exit 0"
is "$(db_fingerprint rt_par)" "$(db_fingerprint rt_src)" "… identical data"

# The objects' owner role is gone: the dump is loaded as the new owner (--no-owner), so it restores.
psql -X -q -d postgres -c "CREATE ROLE rt_gone LOGIN" -c "CREATE ROLE rt_reader"
fixture_db rt_gone_src --owner rt_gone
q rt_gone_src -c "GRANT SELECT ON dbpatch TO rt_reader"
"$TOOL" -q --server-dir "$srv" --db-user postgres --db-name rt_gone_src backup --backup-dir "$t/gone"
psql -X -q -d postgres -c "DROP DATABASE rt_gone_src" -c "DROP ROLE rt_gone"
psql -X -q -d postgres -c "CREATE ROLE rt_gone2 LOGIN"
out=$(tool restore "$(ls "$t/gone"/*.pgdump)" --into rt_gone_ok --owner rt_gone2 2>&1)
is "$?" 0 "the objects' owner role is gone: restored, loaded as the new owner"
is "$(q rt_gone_ok -c "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'dbpatch'::regclass")" rt_gone2 \
  "… its tables belong to the new owner"
like "$out" "into 'rt_gone_ok' as rt_gone2" "… the step says who loads the dump"
psql -X -q -d postgres -c "DROP DATABASE rt_gone_ok"

# A restore that fails half-way (a grant to a role that is gone): the database created for it is dropped again.
fixture_db rt_gone_src2 --owner rt_gone2
q rt_gone_src2 -c "GRANT SELECT ON dbpatch TO rt_reader"
"$TOOL" -q --server-dir "$srv" --db-user postgres --db-name rt_gone_src2 backup --backup-dir "$t/gone2"
psql -X -q -d postgres -c "DROP DATABASE rt_gone_src2" -c "DROP ROLE rt_reader"
out=$(tool restore "$(ls "$t/gone2"/*.pgdump)" --into rt_gone_copy --owner postgres 2>&1)
is "$?" 1 "--owner postgres: refused, a superuser would load rt_gone2's objects (test 99)"
is "$(dbs rt_gone_copy)" 0 "… nothing was created"
out=$(tool restore "$(ls "$t/gone2"/*.pgdump)" --into rt_gone_copy --owner rt_gone2 2>&1)
is "$?" 2 "pg_restore fails (a role granted to is gone): exit 2"
like "$out" 'role "rt_reader" does not exist' "… the error is shown"
like "$out" "dropped the database 'rt_gone_copy' created by this run" "… and the half-restored database is dropped"
is "$(dbs rt_gone_copy)" 0 "… it is gone"

done_testing
