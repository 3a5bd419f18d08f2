#!/usr/bin/env bash
# Settings and secrets (issue 13 item 8): a profile that config.xml does not hold (a typo in
# OMERO_CONFIG or omero.config.profile) is an error, never a silent fall to the libpq environment
# (another database); an id file (--roi-file /etc/shadow) is reported by line and column, never
# echoed; the password reaches pg_dump in a file that exists in no directory (so a tool killed
# with SIGKILL leaves none behind); a password with a line break is refused up front.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
fixture_db ss_db
srv=$t/srv
make_sample_server "$srv"

# 1. Profiles. The environment names another database that exists: a fall to it would "work".
fixture_db ss_other
sample_config "$srv" --active prod --profile prod "omero.db.host=$PGHOST" "omero.db.port=$PGPORT" \
  omero.db.name=ss_db omero.db.user=postgres
out=$(PGDATABASE=ss_other OMERO_CONFIG=prdo "$TOOL" --server-dir "$srv" --json check --backup-dir "$t" 2>/dev/null); rc=$?
is "$rc" 2 "OMERO_CONFIG names a profile config.xml does not hold: exit 2"
is "$(jq -r .status <<<"$out")" error "… status error"
like "$(jq -r '.errors[0]' <<<"$out")" "profile 'prdo' \(from OMERO_CONFIG\) is not in .*config.xml" "… naming the profile and the file"
out=$(PGDATABASE=ss_other OMERO_CONFIG=prdo "$TOOL" --server-dir "$srv" --log-file "$t/p.log" check 2>&1); rc=$?
is "$rc" 2 "check with that typo: exit 2"
unlike "$(cat "$t/p.log" 2>/dev/null)$out" "ss_other" "… it never went to the environment's database"
out=$(PGDATABASE=ss_other OMERO_CONFIG=prod "$TOOL" --server-dir "$srv" --json check --backup-dir "$t" 2>/dev/null)
is "$(jq -r '.result.settings.db_name' <<<"$out")" ss_db "OMERO_CONFIG naming a profile that exists: its database"
sample_config "$srv" --active prdo --profile prod "omero.db.host=$PGHOST" "omero.db.port=$PGPORT" \
  omero.db.name=ss_db omero.db.user=postgres
out=$(PGDATABASE=ss_other "$TOOL" --server-dir "$srv" --json check --backup-dir "$t" 2>/dev/null); rc=$?
is "$rc" 2 "omero.config.profile in config.xml names a missing profile: exit 2"
like "$(jq -r '.errors[0]' <<<"$out")" "profile 'prdo' \(from config.xml\) is not in" "… naming it"
# An absent "default" profile is OMERO's defaults (a config.xml never edited): a warning, as before.
out=$(OMERO_CONFIG=default "$TOOL" --server-dir "$srv" --json check --backup-dir "$t" 2>/dev/null); rc=$?
unlike "$(jq -r '.errors[]' <<<"$out")" "profile" "OMERO_CONFIG=default without a default profile: no profile error (OMERO's defaults)"
like "$(jq -r '.warnings[]' <<<"$out")" "profile 'default' .* is not in .*using OMERO's defaults" "… but a warning"

# 2. Id files: a bad token is placed by line and column, never shown.
sample_config "$srv" "omero.db.host=$PGHOST" "omero.db.port=$PGPORT" omero.db.name=ss_db omero.db.user=postgres
printf '# ids\n1, 2\n3 root:$6$s3cr3tHash:19000:0:99999:7:::\n' > "$t/shadow"
for c in "colors convert --dry-run --roi-file" "colors convert --dry-run --image-file" \
         "annotations move-to-wells --plate-file" "annotations move-to-wells --well-file"; do
  out=$("$TOOL" --server-dir "$srv" --log-file "$t/id.log" $c "$t/shadow" 2>&1); rc=$?
  is "$rc" 2 "$c FILE with a bad token: exit 2"
  like "$out" "id at line 3, column 3 of $t/shadow" "… placed at line 3, column 3"
  unlike "$out$(cat "$t/id.log")" "s3cr3t|root:" "… the token is neither shown nor logged"
done
out=$("$TOOL" --server-dir "$srv" --json colors convert --dry-run --roi-file "$t/shadow" 2>&1)
unlike "$out" "s3cr3t|root:" "--json: not in the JSON either"
like "$("$TOOL" --server-dir "$srv" colors convert --dry-run --roi 1,x 2>&1)" "not a ROI id: 'x'" \
  "a bad id given on the command line is still named (it is the user's own text)"

# 3. The passfile: over TCP with config.xml's password; the tool killed (SIGKILL) while pg_dump runs.
pw='S3cret;pa:ss\word'
echo "CREATE ROLE ss_owner LOGIN PASSWORD :'pw'" | psql -X -q -v ON_ERROR_STOP=1 -v pw="$pw" -d postgres
q ss_db -c "ALTER DATABASE ss_db OWNER TO ss_owner" -c "GRANT pg_read_all_data TO ss_owner"
sample_config "$srv" omero.db.host=127.0.0.1 "omero.db.port=$PGPORT" omero.db.name=ss_db omero.db.user=ss_owner "omero.db.pass=$pw"
mkdir -p "$t/tmp" "$t/bk"
psql -X -q -d ss_db -c "BEGIN; LOCK TABLE dichroic IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;" >/dev/null &
locker=$!
for _ in $(seq 200); do
  [ "$(q ss_db -c "SELECT count(*) FROM pg_locks WHERE relation = 'dichroic'::regclass AND granted")" = 1 ] && break
  sleep 0.05
done
env -u PGHOST -u PGPORT TMPDIR="$t/tmp" "$TOOL" --server-dir "$srv" backup --backup-dir "$t/bk" >"$t/kill.out" 2>&1 &
tool_pid=$!
dump_pid=
for _ in $(seq 100); do
  for p in $(ps -eo pid=,ppid=,comm= | awk -v pp="$tool_pid" '$2 == pp && $3 == "pg_dump" {print $1}'); do dump_pid=$p; done
  [ -n "$dump_pid" ] && break
  sleep 0.05
done
ok $([ -n "$dump_pid" ]; echo $?) "pg_dump runs as the tool's child (pid ${dump_pid:-none})"
pf=$(tr '\0' '\n' < "/proc/$dump_pid/environ" 2>/dev/null | sed -n 's/^PGPASSFILE=//p')
like "$pf" "^/dev/fd/[0-9]+$" "its PGPASSFILE is a descriptor it holds ($pf), not a path in any directory"
target=$(readlink "/proc/$dump_pid/fd/${pf#/dev/fd/}" 2>/dev/null)
like "$target" "^/memfd:.*\(deleted\)$" "… an anonymous memory file ($target)"
is "$(stat -L -c %a "/proc/$dump_pid/fd/${pf#/dev/fd/}" 2>/dev/null)" 600 "… of mode 0600"
kill -9 "$tool_pid"; wait "$tool_pid" 2>/dev/null
wait "$locker"
for _ in $(seq 100); do [ -d "/proc/$dump_pid" ] || break; sleep 0.1; done
is "$(ls -A "$t/tmp")" "" "the tool killed with SIGKILL: nothing left in TMPDIR"
is "$(find "$t" -xdev -name '*pgpass*' 2>/dev/null)" "" "… and no passfile anywhere in the scratch dir"
# Not killed, the backup works with it (pg_dump and its --jobs workers read it).
out=$(env -u PGHOST -u PGPORT TMPDIR="$t/tmp" "$TOOL" --server-dir "$srv" backup --backup-dir "$t/bk" --jobs 2 2>&1); rc=$?
is "$rc" 0 "a directory-format backup over TCP with that password works"
[ "$rc" = 0 ] || diag "$out"
unlike "$out" "S3cret" "… and never shows the password"

# 4. A password with a line break cannot go into a passfile: refused before anything runs.
sample_config "$srv" omero.db.host=127.0.0.1 "omero.db.port=$PGPORT" omero.db.name=ss_db omero.db.user=ss_owner "omero.db.pass=Line1NLLine2"
sed -i 's/Line1NLLine2/Line1\&#10;Line2/' "$srv/etc/grid/config.xml"
grep -q 'Line1&#10;Line2' "$srv/etc/grid/config.xml"; ok $? "config.xml holds a password with a line break (&#10;)"
out=$(env -u PGHOST -u PGPORT "$TOOL" --server-dir "$srv" --log-file "$t/nl.log" backup --backup-dir "$t/bk2" 2>&1); rc=$?
is "$rc" 2 "backup with that password: exit 2"
like "$out" "omero.db.pass in .*config.xml contains a line break" "… a clear message"
unlike "$out$(cat "$t/nl.log")" "Line1|Line2" "… that does not show the password"
ok $([ ! -e "$t/bk2" ]; echo $?) "… before anything was written"

q postgres -c "DROP DATABASE ss_db WITH (FORCE)" -c "DROP DATABASE ss_other" -c "DROP ROLE ss_owner" >/dev/null
done_testing
