#!/usr/bin/env bash
# omero-upgrade check: each prerequisite ok / warning / failed with its fix; exit 1 when any failed.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
fixture_db chk_good
fixture_db chk_latin1 --encoding LATIN1
fixture_db chk_unfinished --version OMERO5.3__0 --unfinished
# Healthy on every PostgreSQL: before 15, PUBLIC may create in public by default (test 88).
q chk_good -c "REVOKE CREATE ON SCHEMA public FROM PUBLIC"
srv=$t/srv
make_sample_server "$srv"
sample_config "$srv" omero.db.name=chk_good omero.db.user=postgres
status_of() { echo "$1" | jq -r ".result.checks[] | select(.name == \"$2\") | .status"; }
fix_of() { echo "$1" | jq -r ".result.checks[] | select(.name == \"$2\") | .fix"; }
detail_of() { echo "$1" | jq -r ".result.checks[] | select(.name == \"$2\") | .detail"; }

out=$("$TOOL" --server-dir "$srv" check --backup-dir "$t" 2>&1)
is "$?" 0 "a healthy database: exit 0"
like "$out" "ok +dbpatch +version OMERO5.3__1" "human output: the dbpatch version"
like "$out" "ok +postgresql_version +PostgreSQL [0-9.]+ \(OMERO5.4__0 needs 9.3.0 or newer\)" \
  "the PostgreSQL prerequisite of the target (the newest in the server's sql/psql)"
like "$out" "WARNING +extension +omero_upgrade is available but not installed.*
 +fix: psql -d chk_good -c 'CREATE EXTENSION omero_upgrade'" "a warning comes with its fix on the next line"
like "$out" "[0-9]+ ok, 1 warning\(s\), 0 failed" "a summary line"

j=$("$TOOL" --json --server-dir "$srv" check --backup-dir "$t")
is "$(echo "$j" | jq -r '[.result.checks[].name] | join(",")')" \
  "config,target,dbpatch,postgresql_version,encoding,schema_privileges,pg_dump,pg_restore,open_files,backup_space,vacuum_space,omero_server,extension" \
  "--json: every prerequisite, in order"
is "$(status_of "$j" encoding),$(status_of "$j" pg_dump),$(status_of "$j" pg_restore),$(status_of "$j" omero_server)" \
  "ok,ok,ok,ok" "encoding, client programs, server not running: ok"
like "$(detail_of "$j" omero_server)" "bin/omero admin status: exit code 1" "… as bin/omero admin status says"
like "$(detail_of "$j" open_files)" "of the current user \(ulimit -n" "the open-file limit: of the current user when no server runs"
like "$(detail_of "$j" backup_space)" "free in $t, database [0-9.]+ MiB" "free space where the backup goes, against the database size"
like "$(detail_of "$j" vacuum_space)" "free in .*data, largest table" "free space in the data directory for VACUUM FULL"
like "$(omero_calls "$srv")" "admin\|status" "the stub was asked for the server status"

# The server running, and its open-file limit read from its own process.
mkdir -p "$srv/var/stub" && touch "$srv/var/stub/running"
bash -c 'ulimit -n 1000; exec -a "$0" sleep 60' "$srv/bin/icegridnode" &
fake=$!
sleep 0.3
j=$("$TOOL" --json --server-dir "$srv" check --backup-dir "$t")
is "$(echo "$j" | jq -r .exit_code)" 0 "a running server is a warning, not a failure"
is "$(status_of "$j" omero_server)" warning "… omero_server: warning"
like "$(fix_of "$j" omero_server)" "bin/omero admin stop" "… fix: stop it"
is "$(status_of "$j" open_files)" warning "a server process with ulimit -n 1000: warning"
like "$(detail_of "$j" open_files)" "^1000 of the running OMERO process $fake " "… naming that process and its limit"
like "$(fix_of "$j" open_files)" "LimitNOFILE" "… with the fix"
kill "$fake"; wait "$fake" 2>/dev/null
rm -f "$srv/var/stub/running"

# Failures: a LATIN1 database, an unfinished upgrade, a too old pg_dump.
j=$("$TOOL" --json --server-dir "$srv" --db-name chk_latin1 check --backup-dir "$t")
is "$(echo "$j" | jq -r .exit_code)" 1 "LATIN1: exit 1"
is "$(status_of "$j" encoding)" failed "… encoding failed"
is "$(fix_of "$j" encoding)" "omero-upgrade db to-utf8 --into chk_latin1_utf8 --switch" "… the fix is db to-utf8"
j=$("$TOOL" --json --server-dir "$srv" --db-name chk_unfinished check --backup-dir "$t")
is "$(status_of "$j" dbpatch)" failed "an unfinished dbpatch row: failed"
like "$(detail_of "$j" dbpatch)" "OMERO5.3__1: the newest dbpatch row has no finished time" "… naming the version"
mkdir -p "$t/oldbin"
printf '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n' > "$t/oldbin/pg_dump"
chmod 755 "$t/oldbin/pg_dump"
j=$(PATH="$t/oldbin:$PATH" "$TOOL" --json --server-dir "$srv" check --backup-dir "$t")
is "$(status_of "$j" pg_dump),$(status_of "$j" pg_restore)" "failed,ok" "a pg_dump older than the server: failed"
like "$(fix_of "$j" pg_dump)" "install postgresql-client-[0-9]+" "… with the fix"
j=$("$TOOL" --json --server-dir "$srv" check --target OMERO5.2__0 --backup-dir "$t")
like "$(detail_of "$j" postgresql_version)" "OMERO5.2__0 needs 9.2.0" "--target picks the release whose prerequisite counts"

# Too little space where the backup goes (a 1 MiB file system, when we may mount one).
mkdir -p "$t/tiny"
if mount -t tmpfs -o size=1m tmpfs "$t/tiny" 2>/dev/null; then
  j=$("$TOOL" --json --server-dir "$srv" check --backup-dir "$t/tiny")
  is "$(status_of "$j" backup_space)" failed "1 MiB free for a 20 MiB database: backup_space failed"
  is "$(echo "$j" | jq -r .exit_code)" 1 "… exit 1"
  umount "$t/tiny"
else
  diag "cannot mount a tmpfs here: the small-disk case of check is not tested"
fi
j=$("$TOOL" --json --server-dir "$srv" check --backup-dir "$t/does-not-exist")
is "$(status_of "$j" backup_space)" failed "a backup dir that does not exist: failed"

# Not an OMERO database.
j=$("$TOOL" --json --server-dir "$srv" --db-name postgres check --backup-dir "$t")
is "$(status_of "$j" dbpatch)" failed "a database without dbpatch: failed"

done_testing
