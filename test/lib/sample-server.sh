# Sample OMERO.server pieces for tests and the demo (sourced, after tap.sh in tests): the one
# place that builds server directories. Our own writing, following the conventions of the
# official scripts (omero-facts.md): version check, prerequisite checks, dbpatch insert, schema
# change, `finished` set, the success line; prechecks in BEGIN … ROLLBACK.
#
#   make_sample_server DIR …         a whole server tree with a stub bin/omero (below)
#   sample_config DIR [KEY=VALUE…]   (re)writes DIR/etc/grid/config.xml: the active profile
#                                    "default" holds exactly the given properties; several
#                                    profiles: sample_config DIR --active P --profile P K=V… --profile Q K=V…
#   make_sample_sql DIR [FAIL_HOP]   writes DIR/sql/psql/<to>/<from>.sql (+ -precheck.sql) for
#                                    every hop of the facts, and the creation files of every <to>
#                                    (psql-header.sql, schema.sql, views.sql, psql-footer.sql, as
#                                    `omero db script` assembles them; see "Sample versions" below);
#                                    FAIL_HOP "FROM:TO" makes that hop's script fail half-way
#                                    (after its dbpatch insert).
#   make_server_zip DIR ZIP          DIR zipped as OMERO.server zips are
#   omero_calls DIR                  the calls the stub bin/omero received, one per line, args joined by '|'
#   config_value DIR KEY             the value of KEY in DIR's config.xml
#   db_fingerprint DB                row count and md5 of the key OMERO tables

# ---- Sample versions ---------------------------------------------------------------------------
# Our own model of what each sample release changed in the schema (not OMERO's changes). The
# fixture's DDL, test/fixture/schema.sql, is the schema of OMERO5.2__0; each later version adds
# its part below, cumulatively (OMERO5.4__0 has the changes of 5.3__0, 5.3__1 and its own):
#   OMERO5.3__0  the colour columns and annotation.ns retyped (to the types they already have),
#                index sample_omero5_3_0
#   OMERO5.3__1  index sample_omero5_3_1, function sample_annotation_kind(varchar)
#   OMERO5.4__0  index sample_omero5_4_0, the unique originalfile_repo_path_index a real 5.4 has
#                (exactly as the fixture builds it at OMERO5.4__0), view
#                sample_count_imageannotationlinks_by_owner
# A hop script into TO applies all of TO's changes, idempotently (IF NOT EXISTS, OR REPLACE,
# retyping to the same type), since a fixture database claims its version only by its dbpatch
# rows: so a fixture database of any older version, upgraded by the sample scripts along any
# chain, has exactly TO's schema. TO's creation files build that same schema from scratch: the
# header (BEGIN, the prerequisite checks), schema.sql = the fixture's DDL verbatim, views.sql =
# TO's views, the footer = TO's other changes, the creation dbpatch row and COMMIT. That is what
# `omero-upgrade db verify` checks (test/tool/70-db-verify.t). The header and the footer use
# `omero db script`'s substitutions: %(TIME)s, %(DIR)s, %(SCRIPT)s and %% in both (Python %
# formatting), @DBVERSION@, @DBPATCH@ and @ROOTPASS@ in the footer.
_sample_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

_sample_changes() {  # $1 version: its schema changes beyond the fixture's DDL, views aside
  case $1 in OMERO5.3__0|OMERO5.3__1|OMERO5.4__0)
    echo "ALTER TABLE shape ALTER COLUMN fillcolor TYPE int4, ALTER COLUMN strokecolor TYPE int4;"
    echo "ALTER TABLE annotation ALTER COLUMN ns TYPE text;"
    echo "CREATE INDEX IF NOT EXISTS sample_omero5_3_0 ON annotation (discriminator);" ;;
  esac
  case $1 in OMERO5.3__1|OMERO5.4__0)
    echo "CREATE INDEX IF NOT EXISTS sample_omero5_3_1 ON annotation (discriminator, ns);"
    echo "CREATE OR REPLACE FUNCTION sample_annotation_kind(d varchar) RETURNS text"
    echo "    LANGUAGE sql IMMUTABLE AS \$\$ SELECT split_part(d, '/', 2) \$\$;" ;;
  esac
  case $1 in OMERO5.4__0)
    echo "CREATE INDEX IF NOT EXISTS sample_omero5_4_0 ON annotation (discriminator);"
    echo "CREATE UNIQUE INDEX IF NOT EXISTS originalfile_repo_path_index ON originalfile"
    echo "    (repo, regexp_split_to_array('/' || path || name || '/', '/+'))"
    echo "    WHERE repo IS NOT NULL;" ;;
  esac
}

_sample_views() {  # $1 version: its views
  case $1 in OMERO5.4__0)
    echo "CREATE OR REPLACE VIEW sample_count_imageannotationlinks_by_owner (image_id, owner_id, count) AS"
    echo "    SELECT parent, owner_id, count(*) FROM imageannotationlink GROUP BY parent, owner_id;" ;;
  esac
}

# The creation files of version $2 in $1/sql/psql/$2 (our own writing, in OMERO's layout).
_sample_creation() {
  local d=$1/sql/psql/$2
  mkdir -p "$d"
  cat > "$d/psql-header.sql" <<SQL
--
-- Sample creation script of %(SCRIPT)s, written for omero_upgrade's tests (not OMERO's).
-- Assembled %(TIME)s from %(DIR)s.
--
BEGIN;

CREATE FUNCTION pg_temp.sample_creation_check() RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE n int := current_setting('server_version_num')::int; e text;
BEGIN
    SELECT pg_encoding_to_char(encoding) INTO STRICT e FROM pg_database WHERE datname = current_database();
    IF n < 90300 THEN
        RAISE EXCEPTION 'PostgreSQL database server version %% is less than OMERO prerequisite %%', n, 90300;
    END IF;
    IF e <> 'UTF8' THEN
        RAISE EXCEPTION 'OMERO database character encoding must be UTF8, not %%', e;
    END IF;
END \$\$;
SELECT pg_temp.sample_creation_check();
SQL
  cp "$_sample_here/../fixture/schema.sql" "$d/schema.sql"
  {
    echo "-- Sample views of $2, written for omero_upgrade's tests (not OMERO's)."
    _sample_views "$2"
  } > "$d/views.sql"
  {
    echo "-- Sample creation script footer of $2, written for omero_upgrade's tests (not OMERO's)."
    _sample_changes "$2" | sed 's/%/%%/g'
    echo "INSERT INTO dbpatch (currentversion, currentpatch, previousversion, previouspatch, message)"
    echo "    VALUES ('@DBVERSION@', @DBPATCH@, '@DBVERSION@', @DBPATCH@, 'Initializing');"
    echo "INSERT INTO configuration (name, value) VALUES ('sample.root.password', '@ROOTPASS@');"
    echo "-- 100%% built: the creation row is finished."
    echo "UPDATE dbpatch SET message = 'Database ready.', finished = clock_timestamp()"
    echo " WHERE currentversion = '@DBVERSION@' AND currentpatch = @DBPATCH@"
    echo "   AND previousversion = '@DBVERSION@' AND previouspatch = @DBPATCH@;"
    echo "COMMIT;"
  } > "$d/psql-footer.sql"
}

_sample_hops="OMERO5.2__0:OMERO5.3__0 OMERO5.2__0:OMERO5.3__1 OMERO5.3__0:OMERO5.3__1 OMERO5.3__0:OMERO5.4__0 OMERO5.3__1:OMERO5.4__0"
_sample_prechecks="OMERO5.2__0:OMERO5.3__0 OMERO5.2__0:OMERO5.3__1 OMERO5.3__0:OMERO5.4__0 OMERO5.3__1:OMERO5.4__0"

_sample_checks() {  # $1 from-version $2 from-patch: the checks both kinds of script start with
  cat <<SQL
CREATE FUNCTION pg_temp.sample_check_version() RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE v varchar; p int;
BEGIN
    SELECT currentversion, currentpatch INTO STRICT v, p FROM dbpatch ORDER BY id DESC LIMIT 1;
    IF v <> '$1' OR p <> $2 THEN
        RAISE EXCEPTION 'wrong OMERO database version for this upgrade script';
    END IF;
END \$\$;
SELECT pg_temp.sample_check_version();

CREATE FUNCTION pg_temp.sample_check_server() RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE n int := current_setting('server_version_num')::int; e text;
BEGIN
    SELECT pg_encoding_to_char(encoding) INTO STRICT e FROM pg_database WHERE datname = current_database();
    IF n < 90300 THEN
        RAISE EXCEPTION 'PostgreSQL database server version % is less than OMERO prerequisite 9.3.0', n;
    END IF;
    IF e <> 'UTF8' THEN
        RAISE EXCEPTION 'OMERO database character encoding must be UTF8, not %', e;
    END IF;
END \$\$;
SELECT pg_temp.sample_check_server();
SQL
}

make_sample_sql() {
  local dir=$1 fail=${2:-} hop from to fv fp tv tp f
  for hop in $_sample_hops; do
    from=${hop%%:*} to=${hop##*:}
    fv=${from%__*} fp=${from##*__} tv=${to%__*} tp=${to##*__}
    mkdir -p "$dir/sql/psql/$to"
    f=$dir/sql/psql/$to/$from.sql
    {
      echo "-- Sample upgrade script $from -> $to, written for omero_upgrade's tests (not OMERO's)."
      echo "BEGIN;"
      _sample_checks "$fv" "$fp"
      echo "INSERT INTO dbpatch (id, currentversion, currentpatch, previousversion, previouspatch)"
      echo "    VALUES (ome_nextval('seq_dbpatch'), '$tv', $tp, '$fv', $fp);"
      echo "-- schema changes of the kind real scripts make, on tables the extension reads: all of $to's"
      _sample_changes "$to"
      _sample_views "$to"
      if [ "$hop" = "$fail" ]; then
        echo "-- injected failure, half-way through"
        echo "SELECT 1 / 0 AS injected_failure;"
      fi
      echo "UPDATE dbpatch SET message = 'Database updated.', finished = clock_timestamp()"
      echo " WHERE currentversion = '$tv' AND currentpatch = $tp AND previousversion = '$fv' AND previouspatch = $fp;"
      echo "SELECT E'\\n\\n\\nYOU HAVE SUCCESSFULLY UPGRADED YOUR DATABASE TO VERSION $to\\n\\n\\n' AS Status;"
      echo "COMMIT;"
    } > "$f"
  done
  for to in OMERO5.3__0 OMERO5.3__1 OMERO5.4__0; do
    _sample_creation "$dir" "$to"
  done
  for hop in $_sample_prechecks; do
    from=${hop%%:*} to=${hop##*:}
    fv=${from%__*} fp=${from##*__}
    f=$dir/sql/psql/$to/$from-precheck.sql
    {
      echo "-- Sample precheck $from -> $to, written for omero_upgrade's tests (not OMERO's)."
      echo "BEGIN;"
      _sample_checks "$fv" "$fp"
      echo "SELECT E'\\n\\n\\nYOUR DATABASE IS READY FOR UPGRADE TO VERSION $to\\n\\n\\n' AS Status;"
      echo "ROLLBACK;"
    } > "$f"
  done
}

# sample_config (see the top): config.xml as OMERO writes it, values XML-escaped.
xml_escape() { local s=$1; s=${s//&/&amp;}; s=${s//</&lt;}; s=${s//>/&gt;}; s=${s//\"/&quot;}; printf '%s' "$s"; }

sample_config() {
  local dir=$1 active=default open= arg; shift
  if [ "${1:-}" = --active ]; then active=$2; shift 2; fi
  mkdir -p "$dir/etc/grid"
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<icegrid>'
    echo '  <properties id="__ACTIVE__">'
    echo '    <property name="omero.config.version" value="5.1.0"/>'
    echo "    <property name=\"omero.config.profile\" value=\"$(xml_escape "$active")\"/>"
    echo '  </properties>'
    [ "${1:-}" = --profile ] || set -- --profile default "$@"
    while [ $# -gt 0 ]; do
      arg=$1; shift
      if [ "$arg" = --profile ]; then
        [ -z "$open" ] || echo '  </properties>'
        echo "  <properties id=\"$(xml_escape "$1")\">"
        echo '    <property name="omero.config.version" value="5.1.0"/>'
        open=1; shift
      else
        echo "    <property name=\"${arg%%=*}\" value=\"$(xml_escape "${arg#*=}")\"/>"
      fi
    done
    echo '  </properties>'
    echo '</icegrid>'
  } > "$dir/etc/grid/config.xml"
}

#   make_sample_server DIR [VERSION] [DB] [DB_USER] [DATA_DIR]
#       a sample OMERO.server tree in DIR (release VERSION, default 5.6.3): a stub bin/omero,
#       etc/grid/config.xml naming the test cluster (PGHOST/PGPORT) and database DB (default
#       omero) of user DB_USER (default omero), omero.data.dir DATA_DIR (default DIR/../data),
#       lib/scripts with a few scripts, and sql/psql from make_sample_sql (a 5.3.x release has
#       no OMERO5.4__0 folder).
#   The stub bin/omero appends every call ("ARGS") to DIR/var/stub/calls (and, args joined by '|',
#   to DIR/var/stub/argv: see omero_calls) and keeps the server's
#   state in DIR/var/stub/running. `admin start` opens a session on the database (application
#   OMERO.blitz) as a running server would; `admin stop` ends it. Misbehaviour on request: a file
#   var/stub/stop-fails (admin stop fails, server keeps running), var/stub/start-fails,
#   var/stub/stop-delay holding N (the session ends N seconds after admin stop returns).
#   `config get|set` read/edit config.xml's profile block.
make_sample_server() {
  local dir=$1 version=${2:-5.6.3} db=${3:-omero} user=${4:-omero} data=${5:-}
  [ -n "$data" ] || data=$(dirname "$dir")/data
  mkdir -p "$dir/bin" "$dir/etc/grid" "$dir/lib/scripts/omero/util_scripts" \
           "$dir/lib/scripts/omero/export_scripts" "$dir/lib/scripts/.git" "$dir/var"
  make_sample_sql "$dir"
  case $version in 5.3.*) rm -rf "$dir/sql/psql/OMERO5.4__0" ;; esac
  echo "$version" > "$dir/VERSION"
  sample_config "$dir" "omero.db.host=$PGHOST" "omero.db.port=$PGPORT" "omero.db.name=$db" "omero.db.user=$user" \
    "omero.data.dir=$data"
  # lib/scripts: a git checkout in real servers; contents differ a little between releases.
  printf '# Combine images (sample script of release %s)\n' "$version" > "$dir/lib/scripts/omero/util_scripts/Combine_Images.py"
  printf '# Batch export (sample)\n' > "$dir/lib/scripts/omero/export_scripts/Batch_Image_Export.py"
  printf 'Sample scripts\n' > "$dir/lib/scripts/README.md"
  printf 'ref: refs/heads/release-%s\n' "$version" > "$dir/lib/scripts/.git/HEAD"
  cat > "$dir/bin/omero" <<'STUB'
#!/usr/bin/env bash
# Stub of OMERO's bin/omero for omero_upgrade's tests (see test/lib/sample-server.sh).
here=$(cd "$(dirname "$0")/.." && pwd -P)
var=$here/var/stub
mkdir -p "$var"
echo "$*" >> "$var/calls"
(IFS='|'; echo "$*") >> "$var/argv"
cfg=$here/etc/grid/config.xml
prop() { sed -n "s|.*<property name=\"$1\" value=\"\([^\"]*\)\"/>.*|\1|p" "$cfg" | tail -1; }
psql_db() {
  psql -X -q -A -t -h "$(prop omero.db.host)" -p "$(prop omero.db.port)" -U "$(prop omero.db.user)" \
    -d "$(prop omero.db.name)" "$@"
}
end_sessions() {
  psql_db -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'OMERO.blitz'
              AND datname = current_database() AND pid <> pg_backend_pid()" >/dev/null 2>&1
  # A stopping server ends its own session wherever it is, also when config.xml was edited to
  # name another database since it started (the database it started on is in var/stub/session.db).
  if [ -s "$var/session.db" ] && [ "$(cat "$var/session.db")" != "$(prop omero.db.name)" ]; then
    psql -X -q -A -t -h "$(prop omero.db.host)" -p "$(prop omero.db.port)" -U "$(prop omero.db.user)" -d "$(cat "$var/session.db")" \
      -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'OMERO.blitz'
          AND datname = current_database() AND pid <> pg_backend_pid()" >/dev/null 2>&1
  fi
  rm -f "$var/session.db"
}
case "$1 $2" in
  "admin status")
    if [ -f "$var/running" ]; then echo "OMERO.blitz running"; exit 0; fi
    echo "OMERO.blitz not running" >&2; exit 1 ;;
  "admin start")
    if [ -f "$var/start-fails" ]; then echo "Error: could not start (stub)" >&2; exit 1; fi
    if [ -f "$var/running" ]; then echo "OMERO.blitz already running"; exit 0; fi
    if [ -f "$var/start-delay" ]; then sleep "$(cat "$var/start-delay")"; fi   # a slow start (JVMs)
    touch "$var/running"
    if [ -n "$(prop omero.db.name)" ]; then
      PGAPPNAME=OMERO.blitz psql_db -c "SELECT pg_sleep(86400)" </dev/null >/dev/null 2>&1 &
      echo $! > "$var/session.pid"
      prop omero.db.name > "$var/session.db"
      for _ in $(seq 50); do
        [ "$(psql_db -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'OMERO.blitz'" 2>/dev/null)" -ge 1 ] 2>/dev/null && break
        sleep 0.1
      done
    fi
    echo "Starting OMERO.blitz (stub)"; exit 0 ;;
  "admin stop")
    if [ -f "$var/stop-fails" ]; then echo "Error: could not stop (stub)" >&2; exit 1; fi
    rm -f "$var/running"
    if [ -f "$var/stop-delay" ]; then
      ( sleep "$(cat "$var/stop-delay")"; end_sessions ) </dev/null >/dev/null 2>&1 &
    else
      end_sessions
    fi
    echo "OMERO.blitz stopped (stub)"; exit 0 ;;
  "web stop") echo "OMERO.web not started"; exit 0 ;;
  "admin diagnostics")
    echo "OMERO Diagnostics (stub) $(cat "$here/VERSION")"
    echo "Server: $here"
    echo "Java version: 11 (stub)"; exit 0 ;;
  "admin jvmcfg")
    echo "JVM Settings:"
    echo "blitz=-Xmx2048m -XX:MaxPermSize=1g (stub)"; exit 0 ;;
  "config get")
    if [ -z "$3" ]; then
      sed -n '/<properties id="__ACTIVE__">/,/<\/properties>/d; s|.*<property name="\([^"]*\)" value="\([^"]*\)"/>.*|\1=\2|p' "$cfg"
    else
      prop "$3"
    fi
    exit 0 ;;
  "config set")
    [ -n "$3" ] || { echo "usage: config set KEY [VALUE]" >&2; exit 2; }
    # With no VALUE the key is removed, as OMERO does.
    KEY=$3 VAL=$4 HAS=$(( $# >= 4 )) perl -0777 -i -pe '
      my ($k, $v) = ($ENV{KEY}, $ENV{VAL});
      $v =~ s/&/&amp;/g; $v =~ s/</&lt;/g; $v =~ s/>/&gt;/g; $v =~ s/"/&quot;/g;
      my $line = qq{<property name="$k" value="$v"/>};
      if (!$ENV{HAS}) { s{[ \t]*<property name="\Q$k\E" value="[^"]*"/>\n}{}g }
      elsif (!s{<property name="\Q$k\E" value="[^"]*"/>}{$line}) {
        s{(.*)(</properties>)}{$1  $line\n  $2}s }' "$cfg"
    exit 0 ;;
  *) echo "bin/omero (stub): unknown command: $*" >&2; exit 2 ;;
esac
STUB
  chmod 755 "$dir/bin/omero"
}

# make_server_zip DIR ZIP: zips the server tree DIR (its basename is the archive's top directory)
# the way OMERO.server zips are made, symlinks stored as links.
make_server_zip() {
  local dir=$1 zip=$2
  rm -f "$zip"
  (cd "$(dirname "$dir")" && zip -q -r -y "$zip" "$(basename "$dir")")
}

# The calls the stub bin/omero of DIR received, one per line, arguments joined by '|' (so that
# one argument holding spaces stays visibly one).
omero_calls() { cat "$1/var/stub/argv" 2>/dev/null; }

# The value of a property in DIR's config.xml (one profile; sample_config writes each key once).
config_value() { perl -ne 'print $1 if /<property name="\Q'"$2"'\E" value="([^"]*)"/' "$1/etc/grid/config.xml"; }

# Content fingerprint of the key OMERO tables: row count and md5 of every row, ordered by id
# (of the text in UTF8, so that databases of different encodings compare).
db_fingerprint() {
  local db=$1 t
  for t in dbpatch experimenter experimentergroup event image annotation originalfile roi shape; do
    q "$db" -c "SELECT '$t', count(*), md5(convert_to(coalesce(string_agg(x::text, '|' ORDER BY x.id), ''), 'UTF8')) FROM $t x"
  done
}
