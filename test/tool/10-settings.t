#!/usr/bin/env bash
# Settings: the server directory (--server-dir, OMERODIR, ./OMERO.server), config.xml (missing,
# malformed, several profiles, OMERO_CONFIG), the precedence --db-* > config.xml > libpq
# environment > OMERO defaults, and passwords: from config.xml, never in argv, logs or errors.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
fixture_db set_a
fixture_db set_b
# `check --json` shows the settings it used (result.settings); a failed connection names its target.
settings() { "$TOOL" --json "$@" check --backup-dir "$t" 2>/dev/null | jq -c .result.settings; }
field() { echo "$1" | jq -r "$2"; }

# 1. several profiles: the active one, or OMERO_CONFIG's
sample_config "$t/multi" --active second --profile default omero.db.name=set_a \
  --profile second omero.db.name=set_b omero.db.user=postgres omero.data.dir=/srv/omero-data
s=$(settings --server-dir "$t/multi")
is "$(field "$s" .profile),$(field "$s" .db_name),$(field "$s" .sources.dbname)" "second,set_b,config.xml" \
  "the active profile of config.xml gives the database"
is "$(field "$s" .data_dir)" "/srv/omero-data" "omero.data.dir from the active profile"
s=$(OMERO_CONFIG=default settings --server-dir "$t/multi")
is "$(field "$s" .profile),$(field "$s" .profile_source),$(field "$s" .db_name)" "default,OMERO_CONFIG,set_a" \
  "OMERO_CONFIG overrides the active profile"
is "$(field "$s" .db_user),$(field "$s" .sources.user)" "postgres,PGUSER" \
  "a key the profile lacks comes from the libpq environment (PGUSER)"
s=$(OMERODIR="$t/multi" settings)
is "$(field "$s" .server_dir_source),$(field "$s" .db_name)" "OMERODIR,set_b" "OMERODIR names the server directory"
s=$(cd "$t" && mkdir -p OMERO.server && cp -r multi/etc OMERO.server/ && settings)
is "$(field "$s" .server_dir_source),$(field "$s" .db_name)" "default,set_b" "./OMERO.server is the default"

# 2. precedence: --db-* over config.xml over the environment over OMERO's defaults
s=$(PGDATABASE=set_a settings --server-dir "$t/multi")
is "$(field "$s" .db_name)" "set_b" "the environment (PGDATABASE) does not override config.xml"
s=$(settings --server-dir "$t/multi" --db-name set_a)
is "$(field "$s" .db_name),$(field "$s" .sources.dbname)" "set_a,--db-name" "--db-name overrides config.xml"
mkdir -p "$t/empty"
out=$(cd "$t/empty" && env -u PGUSER -u PGDATABASE -u OMERODIR "$TOOL" --db-host "$PGHOST" check 2>&1)
rc=$?
is "$rc" 2 "no config.xml, no environment: OMERO's defaults are tried (exit 2 when they do not connect)"
like "$out" 'omero@.*/omero' "… as user omero on database omero"
unlike "$out" "warning: no .*config.xml" "a missing default ./OMERO.server is not worth a warning"
out=$(env -u PGUSER -u PGDATABASE -u PGHOST "$TOOL" --server-dir "$t/nowhere" --db-port 1 check 2>&1)
like "$out" 'omero@localhost:1/omero' "OMERO's default host localhost when neither config.xml nor PGHOST say (--db-port 1)"
out=$("$TOOL" --server-dir "$t/nowhere" --db-name set_a check 2>&1)
like "$out" "warning: no .*/nowhere/etc/grid/config.xml" "an explicit server dir without config.xml is a warning"
out=$("$TOOL" --server-dir "$t/multi" --db-port 99999 check 2>&1)
rc=$?
is "$rc" 2 "a port that is not a number: exit 2"
like "$out" "port '99999'.*is not a port number" "… with a clear message"

# 3. malformed config.xml: refused, nothing guessed
make_sample_server "$t/bad" && sample_config "$t/bad" omero.db.name=set_a
printf '<icegrid><properties id="default"><property name="omero.db.name" value="x"></icegrid>' > "$t/bad/etc/grid/config.xml"
out=$("$TOOL" --server-dir "$t/bad" check 2>&1)
rc=$?
is "$rc" 2 "malformed config.xml: exit 2"
like "$out" "config.xml is not valid XML .*refusing to guess" "… and says why"
printf '<?xml version="1.0"?><other/>' > "$t/bad/etc/grid/config.xml"
out=$("$TOOL" --server-dir "$t/bad" check 2>&1)
like "$out" "no <icegrid> root element" "config.xml that is not OMERO's is refused"
out=$("$TOOL" --server-dir "$t/nowhere" restore x.pgdump --into y --switch 2>&1)
rc=$?
is "$rc" 2 "a subcommand that needs config.xml (restore --switch) refuses to run without it"
like "$out" "no OMERO.server configuration at .*nowhere/etc/grid/config.xml" "… naming the path"

# 4. passwords: over TCP (scram), from config.xml only, never shown
pw='S3cret;pa:ss\word'
echo "CREATE ROLE pw_owner LOGIN PASSWORD :'pw'" | psql -X -q -v ON_ERROR_STOP=1 -v pw="$pw" -d postgres
fixture_db pw_db --owner pw_owner
make_sample_server "$t/pw"
sample_config "$t/pw" omero.db.host=127.0.0.1 "omero.db.port=$PGPORT" omero.db.name=pw_db omero.db.user=pw_owner "omero.db.pass=$pw"
mkdir -p "$t/pw/tmp" "$t/pw/bk"
# Watch every process's argv and environment while the backup runs over TCP with that password.
( while [ ! -e "$t/pw/done" ]; do
    ps -eo args >> "$t/pw/ps.txt" 2>/dev/null
    cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' | grep -a PGPASS >> "$t/pw/environ.txt"
    sleep 0.05
  done ) &
watcher=$!
# pg_dump waits ~1.5 s for a lock held on a table nothing else reads, so the watcher surely sees it.
psql -X -q -d pw_db -c "BEGIN; LOCK TABLE dichroic IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1.5); COMMIT;" >/dev/null &
locker=$!
until [ "$(q pw_db -c "SELECT count(*) FROM pg_locks WHERE relation = 'dichroic'::regclass AND granted")" = 1 ]; do sleep 0.05; done
out=$(env -u PGHOST -u PGPORT TMPDIR="$t/pw/tmp" "$TOOL" --server-dir "$t/pw" --log-file "$t/pw/log" \
      backup --backup-dir "$t/pw/bk" 2>&1)
rc=$?
touch "$t/pw/done"; wait "$watcher" "$locker"
grep -q "pg_dump .*--dbname=.*pw_db" "$t/pw/ps.txt"; ok $? "the watcher saw pg_dump running (so the checks below can fail)"
is "$rc" 0 "backup over TCP with config.xml's password (pg_dump gets it through a passfile)"
[ "$rc" = 0 ] || diag "$out"
is "$(ls -A "$t/pw/tmp")" "" "the temporary passfile is removed"
grep -qF "$pw" "$t/pw/ps.txt"; is "$?" 1 "the password never appears in any process's argv (ps)"
grep -aqF "S3cret" "$t/pw/environ.txt"; is "$?" 1 "… nor in any environment (PGPASSWORD)"
grep -qF "PGPASSFILE" "$t/pw/log"; ok $? "the log shows that a passfile was used"
grep -qF "S3cret" "$t/pw/log"; is "$?" 1 "… and not the password"
sample_config "$t/pw" omero.db.host=127.0.0.1 "omero.db.port=$PGPORT" omero.db.name=pw_db omero.db.user=pw_owner "omero.db.pass=Wr0ng;$pw"
out=$(env -u PGHOST -u PGPORT "$TOOL" --server-dir "$t/pw" --log-file "$t/pw/log2" check 2>&1)
rc=$?
is "$rc" 2 "wrong password: exit 2"
like "$out" 'password authentication failed for user "pw_owner"' "… a clear error"
unlike "$out" "S3cret|Wr0ng" "… that does not contain the password"
grep -qE "S3cret|Wr0ng" "$t/pw/log2"; is "$?" 1 "… nor does the log"
jout=$(env -u PGHOST -u PGPORT "$TOOL" --json --server-dir "$t/pw" check 2>&1)
is "$(echo "$jout" | jq -r .status)" "error" "--json: status error"
unlike "$jout" "S3cret|Wr0ng" "--json output has no password either"
out=$(env -u PGHOST -u PGPORT "$TOOL" --server-dir "$t/pw" --db-user postgres check 2>&1)
like "$out" 'password authentication failed for user "postgres"|no password supplied' \
  "config.xml's password is not sent for another user (--db-user)"
"$TOOL" --server-dir "$t/pw" --db-pass x check >/dev/null 2>&1
is "$?" 2 "there is no password option"

done_testing
