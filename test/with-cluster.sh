#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster, then always removes the cluster.
#
#   test/with-cluster.sh CMD [ARGS...]
#
# The cluster lives in a fresh temp dir: a private copy of the server's install tree holding the
# freshly built extension (so nothing is installed into the system PostgreSQL), a data dir, a
# private unix socket dir and a free TCP port on 127.0.0.1 (password auth; local socket: trust).
# As root the server runs as the `postgres` user. It never touches an existing cluster.
#
# CMD sees: PGHOST PGPORT PGUSER=postgres PGDATABASE=postgres, and
#   OU_TMP       scratch dir writable by CMD and by the server user (regression output, dumps…)
#   OU_PGBIN     the server's bin dir (the private copy: postgres, initdb, pg_ctl; clients are there too)
#   OU_PGDATA    the data dir;  OU_PGLOG the server log;  OU_RUNAS the command prefix to act as
#                the server user ("runuser -u postgres --" as root, empty otherwise)
#   PATH         the private bin dir first: psql, pg_dump and pg_restore of the server's version
# Environment: PG_CONFIG (default pg_config) picks the PostgreSQL; OU_KEEP=1 keeps the temp dir.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
sharedir=$("$PG_CONFIG" --sharedir)
pkglibdir=$("$PG_CONFIG" --pkglibdir)

if [ "$(id -u)" -eq 0 ]; then
  runas=(runuser -u postgres --)
  OU_RUNAS="runuser -u postgres --"
else
  runas=()
  OU_RUNAS=""
fi

base=$(mktemp -d "${TMPDIR:-/tmp}/omero-upgrade-cluster.XXXXXX")
chmod 755 "$base"
inst=$base/inst
data=$base/data
sock=$base/sock
scratch=$base/tmp
log=$base/log/server.log
pid_started=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$pid_started" ] && [ -f "$data/postmaster.pid" ]; then
    "${runas[@]}" "$inst$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      "${runas[@]}" "$inst$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if [ "${OU_KEEP:-0}" = 1 ]; then
    echo "with-cluster: kept $base" >&2
  else
    rm -rf "$base"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# A private install tree: PostgreSQL finds its share and lib dirs relative to the postgres
# binary, so a copied binary beside symlinked libraries and share files is a complete server
# into which our extension is installed with DESTDIR, leaving the system installation alone.
mkdir -p "$inst$bindir" "$inst$pkglibdir" "$inst$sharedir"
for b in "$bindir"/*; do
  case $(basename "$b") in
    postgres|postmaster|initdb|pg_ctl) cp -p "$b" "$inst$bindir/" ;;
    *) ln -s "$b" "$inst$bindir/" ;;
  esac
done
for f in "$pkglibdir"/*; do
  case $(basename "$f") in omero_upgrade*|bitcode) ;; *) ln -s "$f" "$inst$pkglibdir/" ;; esac
done
cp -as "$sharedir/." "$inst$sharedir/"
rm -f "$inst$sharedir"/extension/omero_upgrade*
make -s -C "$here" install DESTDIR="$inst" PG_CONFIG="$PG_CONFIG" >/dev/null
chmod -R a+rX "$inst"

mkdir -p "$data" "$sock" "$scratch" "$base/log"
chmod 700 "$data"
chmod 1777 "$scratch"
if [ ${#runas[@]} -gt 0 ]; then chown postgres: "$data" "$sock" "$base/log"; fi

"${runas[@]}" "$inst$bindir/initdb" -D "$data" -U postgres -E UTF8 --locale=C \
  --auth-local=trust --auth-host=scram-sha-256 >"$base/initdb.log" 2>&1 ||
  { cat "$base/initdb.log" >&2; echo "with-cluster: initdb failed" >&2; exit 2; }

# A free port: ask the kernel for one, and retry if another process wins the race.
port=""
for attempt in 1 2 3 4 5; do
  candidate=$(( 20000 + RANDOM % 40000 ))
  if ss -Hltn "sport = :$candidate" 2>/dev/null | grep -q .; then continue; fi
  if "${runas[@]}" "$inst$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start \
       -o "-p $candidate -k $sock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" \
       >/dev/null 2>&1; then
    port=$candidate
    pid_started=1
    break
  fi
done
if [ -z "$port" ]; then
  cat "$log" >&2 || true
  echo "with-cluster: could not start PostgreSQL" >&2
  exit 2
fi

unset PGSERVICE PGSERVICEFILE PGPASSWORD PGPASSFILE PGSSLMODE PGOPTIONS PGHOSTADDR
export PGHOST=$sock PGPORT=$port PGUSER=postgres PGDATABASE=postgres
export OU_TMP=$scratch OU_PGBIN=$inst$bindir OU_PGDATA=$data OU_PGLOG=$log OU_RUNAS
export OU_SRC=$here PG_CONFIG
# The server's own client programs (psql, pg_dump, pg_restore) first on PATH, as a site running
# that PostgreSQL has them; the tool itself links this Debian's libpq whatever the server.
export PATH=$inst$bindir:$PATH
echo "with-cluster: PostgreSQL $("$inst$bindir/postgres" -V | awk '{print $3}') on port $port, socket $sock" >&2

set +e
"$@"
rc=$?
set -e
exit $rc
