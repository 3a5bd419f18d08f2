#!/usr/bin/env bash
# libpq habits (README, "Design"): -d/--dbname takes a name, a conninfo string or a postgresql://
# URI, expanded as psql expands it (psql itself is the oracle for which field wins); -h/-p/-U are
# psql's (--help is long only); -v shows where libpq really connected (PGSERVICE included); an
# authentication error names where the password came from, never the password.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
fixture_db lq_a
fixture_db lq_b
nowhere=$t/nowhere   # no server directory: only the command line and libpq's environment count
# conn ARGS…: `check` (it connects first) with -v; prints its stderr and stdout
conn() { "$TOOL" -v --server-dir "$nowhere" "$@" check --backup-dir "$t" 2>&1; }
dbname_of() { "$TOOL" --json --server-dir "$nowhere" "$@" check --backup-dir "$t" 2>/dev/null | jq -r '.result.settings | "\(.db_name) \(.sources.dbname)"'; }
enc() { jq -rn --arg s "$1" '$s|@uri'; }

# 1. -d: a name, a conninfo string, a URI
like "$(conn -d lq_a)" "connected to host $PGHOST, port $PGPORT, database lq_a, user postgres" \
  "-d NAME: the database; -v shows host, port, database and user as libpq resolved them"
is "$(dbname_of -d lq_a)" "lq_a --db-name" "… its source is --db-name"
is "$(dbname_of --db-name lq_a)" "lq_a --db-name" "--db-name still works"
out=$(env -u PGHOST -u PGPORT "$TOOL" -v --server-dir "$nowhere" -d "host=$PGHOST port=$PGPORT dbname=lq_b user=postgres" check --backup-dir "$t" 2>&1)
like "$out" "connected to host $PGHOST, port $PGPORT, database lq_b, user postgres" \
  "-d 'host=… port=… dbname=… user=…': a conninfo is expanded (not taken as a database name)"
is "$(dbname_of -d "dbname=lq_b")" "lq_b --db-name conninfo" "… the source says so"
out=$(env -u PGHOST -u PGPORT "$TOOL" -v --server-dir "$nowhere" -d "postgresql://postgres@$(enc "$PGHOST"):$PGPORT/lq_a" check --backup-dir "$t" 2>&1)
like "$out" "connected to host $PGHOST, port $PGPORT, database lq_a, user postgres" \
  "-d postgresql://user@%2Fsocket:port/db: a URI is expanded"
out=$(env -u PGHOST -u PGPORT "$TOOL" -v --server-dir "$nowhere" -d "postgres:///lq_b?host=$(enc "$PGHOST")&port=$PGPORT" check --backup-dir "$t" 2>&1)
like "$out" "database lq_b" "-d postgres:///db?host=…&port=…: the URI's query parameters too"
# which wins, a conninfo field or -p: as psql does (psql is the oracle)
psql -X -d "port=$PGPORT dbname=lq_a" -p 1 -c 'SELECT 1' >/dev/null 2>&1; psql_rc=$?
out=$(conn -d "port=$PGPORT dbname=lq_a" -p 1); rc=$?
like "$out" "connected to host $PGHOST, port $PGPORT, database lq_a" "-d 'port=… dbname=…' -p 1: the conninfo's port wins"
is "$psql_rc" 0 "… as in psql (psql -d 'port=…' -p 1 connects too)"
like "$(conn -d "dbname=lq_a" -p "$PGPORT" -U postgres)" "port $PGPORT, database lq_a, user postgres" \
  "-p/-U fill what the conninfo leaves out"
out=$(conn -d "dbname=lq_a sslmode=disable connect_timeout=7 application_name=lq"); rc=$?
like "$out" "connected to .*database lq_a" "other conninfo keywords (sslmode, connect_timeout, …) are passed on"
out=$("$TOOL" --server-dir "$nowhere" -d "host=x port" check 2>&1); rc=$?
is "$rc" 2 "an invalid conninfo: exit 2"
like "$out" "neither a database name nor a valid conninfo string or URI: .*port" "… with libpq's reason"
out=$("$TOOL" --json --server-dir "$nowhere" -d "postgresql://postgres:Hush3d@$(enc "$PGHOST"):$PGPORT/lq_a" check 2>&1); rc=$?
is "$rc" 2 "a password in the URI: refused, exit 2 (argv is visible in ps)"
like "$out" "holds a password" "… saying why"
unlike "$out" "Hush3d" "… without repeating it"
out=$("$TOOL" --server-dir "$nowhere" -d "dbname=lq_a password=Hush3d" check 2>&1); rc=$?
is "$rc" 2 "a password= in a conninfo: refused too"
unlike "$out" "Hush3d" "… without repeating it"

# 2. -h is the host, as in psql; --help is long only
out=$(env -u PGHOST "$TOOL" -v --server-dir "$nowhere" -h "$PGHOST" -d lq_a check --backup-dir "$t" 2>&1)
like "$out" "connected to host $PGHOST, port $PGPORT, database lq_a" "-h HOST is the database host (as psql's -h)"
out=$(env -u PGHOST "$TOOL" -v --server-dir "$nowhere" check --backup-dir "$t" -h "$PGHOST" -d lq_b -U postgres 2>&1)
like "$out" "connected to host $PGHOST, port $PGPORT, database lq_b, user postgres" "… also after the subcommand, with -d and -U"
h=$("$TOOL" --help); rc=$?
is "$rc" 0 "--help: exit 0"
like "$h" "-h,--db-host" "--help shows -h as --db-host"
unlike "$h" "-h,--help" "… and no -h for help"
out=$("$TOOL" -h 2>&1); rc=$?
is "$rc" 2 "-h without a host: exit 2 (not the help)"
like "$out" "-h is the database host.*--help" "… with a clear message naming --help"
"$TOOL" db plan -h >/dev/null 2>&1; is "$?" 2 "… the same after a subcommand"

# 3. PGSERVICE and -d service=…: the service file, as libpq reads it
cat >"$t/pg_service.conf" <<EOF
[lq_svc]
host=$PGHOST
port=$PGPORT
dbname=lq_b
user=postgres
EOF
out=$(PGSERVICEFILE="$t/pg_service.conf" PGSERVICE=lq_svc PGDATABASE=lq_a PGPORT=1 conn); rc=$?
like "$out" "connected to host $PGHOST, port $PGPORT, database lq_b, user postgres, PGSERVICE lq_svc" \
  "PGSERVICE: the service file's host, port and database (over PGPORT and PGDATABASE, as libpq), shown by -v"
out=$(PGSERVICEFILE="$t/pg_service.conf" PGPORT=1 conn -d service=lq_svc); rc=$?
like "$out" "connected to host $PGHOST, port $PGPORT, database lq_b, user postgres, service lq_svc" \
  "-d service=NAME: the same"
out=$(PGSERVICEFILE="$t/pg_service.conf" conn -d "service=lq_svc dbname=lq_a"); rc=$?
like "$out" "database lq_a" "-d 'service=… dbname=…': the conninfo's own field wins over the service's"
mkdir -p "$t/bk"
out=$(PGSERVICEFILE="$t/pg_service.conf" PGPORT=1 "$TOOL" --server-dir "$nowhere" -d service=lq_svc backup --backup-dir "$t/bk" 2>&1); rc=$?
is "$rc" 0 "backup with -d service=…: pg_dump is given the service too"
[ "$rc" = 0 ] || diag "$out"
like "$(ls "$t/bk")" "^lq_b-" "… and dumped the service's database"
srv=$t/srv
make_sample_server "$srv"
sample_config "$srv" omero.db.name=lq_a
out=$(PGSERVICEFILE="$t/pg_service.conf" PGSERVICE=lq_svc "$TOOL" -v --server-dir "$srv" check --backup-dir "$t" 2>&1)
like "$out" "database lq_a" "PGSERVICE does not override config.xml's omero.db.name (the environment never does)"
# What the service resolved is what results and messages name (not an empty database name).
j=$(PGSERVICEFILE="$t/pg_service.conf" PGPORT=1 "$TOOL" --json --server-dir "$srv" -d service=lq_svc db plan 2>/dev/null)
is "$(jq -r '.result.database' <<<"$j")" "lq_b" "-d service=…: db plan's result names the service's database"
out=$(PGSERVICEFILE="$t/pg_service.conf" PGPORT=1 "$TOOL" --server-dir "$srv" -d service=lq_svc db plan 2>&1)
like "$out" "database lq_b" "… and so does its text"
unlike "$out" "database (  | :)" "… never an empty name"

# 4. authentication errors name where the password came from, never the password
pw='Pa55;w0rd:lq'
echo "CREATE ROLE lq_pw LOGIN PASSWORD :'pw'" | psql -X -q -v ON_ERROR_STOP=1 -v pw="$pw" -d postgres
tcp=(-h 127.0.0.1 -p "$PGPORT" -U lq_pw -d lq_a)
mkdir -p "$t/home"
auth() { env -u PGPASSWORD -u PGPASSFILE HOME="$t/home" "$@" 2>&1; }
out=$(auth PGPASSWORD="Wr0ng$pw" "$TOOL" --server-dir "$nowhere" "${tcp[@]}" check); rc=$?
is "$rc" 2 "a wrong PGPASSWORD: exit 2"
like "$out" 'password authentication failed for user "lq_pw".*password from: PGPASSWORD' "… names PGPASSWORD"
unlike "$out" "Wr0ng|Pa55" "… and not the password"
printf '127.0.0.1:%s:*:lq_pw:Wr0ng%s\n' "$PGPORT" "$pw" >"$t/passfile"; chmod 600 "$t/passfile"
out=$(auth PGPASSFILE="$t/passfile" "$TOOL" --server-dir "$nowhere" "${tcp[@]}" check); rc=$?
is "$rc" 2 "a wrong password in PGPASSFILE: exit 2"
like "$out" "password from: the password file $t/passfile" "… names the password file"
unlike "$out" "Wr0ng|Pa55" "… and not the password"
cp "$t/passfile" "$t/home/.pgpass"
out=$(auth "$TOOL" --server-dir "$nowhere" "${tcp[@]}" check); rc=$?
like "$out" "password from: the password file $t/home/.pgpass" "~/.pgpass is named when it is the source"
rm "$t/home/.pgpass"
out=$(auth "$TOOL" --server-dir "$nowhere" "${tcp[@]}" check); rc=$?
is "$rc" 2 "no password anywhere: exit 2"
like "$out" "password from: none \(no omero.db.pass in config.xml for this user, no PGPASSWORD, no password file" "… says none was found"
like "$out" "hint: .*PGPASSWORD or a password file" "… and hints where to put one"
make_sample_server "$t/pw"
sample_config "$t/pw" omero.db.host=127.0.0.1 "omero.db.port=$PGPORT" omero.db.name=lq_a omero.db.user=lq_pw "omero.db.pass=Wr0ng$pw"
out=$(auth "$TOOL" --server-dir "$t/pw" check); rc=$?
is "$rc" 2 "a wrong omero.db.pass: exit 2"
like "$out" "password from: config.xml \(omero.db.pass\)" "… names config.xml"
like "$out" "hint: check omero.db.pass" "… and hints at it"
unlike "$out" "Wr0ng|Pa55" "… and not the password"
jout=$(auth "$TOOL" --json --server-dir "$t/pw" check)
like "$(echo "$jout" | jq -r '.errors[0]')" "password from: config.xml" "--json: the error names config.xml too"
unlike "$jout" "Wr0ng|Pa55" "… without the password"
printf '127.0.0.1:%s:*:lq_pw:%s\n' "$PGPORT" "${pw//:/\\:}" >"$t/passfile"   # ':' escaped, as .pgpass wants
out=$(auth PGPASSFILE="$t/passfile" "$TOOL" -v --server-dir "$nowhere" "${tcp[@]}" check --backup-dir "$t"); rc=$?
like "$out" "connected to host 127.0.0.1, port $PGPORT, database lq_a, user lq_pw, password: the password file $t/passfile" \
  "the right password in PGPASSFILE: connected, -v names the password file"
out=$(auth PGPASSWORD="$pw" "$TOOL" -v --server-dir "$nowhere" -d "postgresql://lq_pw@127.0.0.1:$PGPORT/lq_b" check --backup-dir "$t"); rc=$?
like "$out" "connected to host 127.0.0.1, port $PGPORT, database lq_b, user lq_pw, password: PGPASSWORD" \
  "a TCP URI with PGPASSWORD: connected, -v names PGPASSWORD"
unlike "$out" "Pa55" "… never the password"

done_testing
