#!/usr/bin/env bash
# The suite runs on the PostgreSQL that make test PG=NN names (13, 15 or 18), with that server's
# own clients first on PATH; and the tool against a server of another major than Debian 12's
# pg_dump (15): check and backup say when pg_dump is older than the server, and which package
# gives a matching one.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

server_num=$(q postgres -c "SHOW server_version_num")
server_major=$((server_num / 10000))
diag "server: PostgreSQL $(q postgres -c 'SHOW server_version') (pg_config: ${PG_CONFIG:-pg_config})"
pgc_major=$("${PG_CONFIG:-pg_config}" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
is "$pgc_major" "$server_major" "the cluster is of the PostgreSQL that PG_CONFIG names"
is "$(pg_dump --version | sed -E 's/.*\) ([0-9]+).*/\1/')" "$server_major" "the server's own pg_dump is first on PATH"
ext_ver=$(q postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'omero_upgrade'")
is "$ext_ver" "$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$OU_SRC/omero_upgrade.control")" "the extension built against that PGXS is installed in the cluster (at this build's version)"

t=$(scratch)
fixture_db ver_db
srv=$t/srv
make_sample_server "$srv"
sample_config "$srv" omero.db.name=ver_db omero.db.user=postgres
status_of() { echo "$1" | jq -r ".result.checks[] | select(.name == \"$2\") | .status"; }
fix_of() { echo "$1" | jq -r ".result.checks[] | select(.name == \"$2\") | .fix"; }
detail_of() { echo "$1" | jq -r ".result.checks[] | select(.name == \"$2\") | .detail"; }

j=$("$TOOL" --json --server-dir "$srv" check --backup-dir "$t")
is "$(status_of "$j" pg_dump),$(status_of "$j" pg_restore)" "ok,ok" "the server's own clients: ok"

# Who may create in public: every role before PostgreSQL 15 (template1's default), nobody but the
# owner since. check warns while PUBLIC has CREATE on public or OMERO's schema, and names the fix.
pub=$(q ver_db -c "SELECT has_schema_privilege('public', 'public', 'CREATE')")
if [ "$server_major" -lt 15 ]; then
  is "$pub" t "PostgreSQL $server_major: PUBLIC may create in public by default"
  is "$(status_of "$j" schema_privileges)" warning "… check warns"
  like "$(detail_of "$j" schema_privileges)" "every role may create objects in schema public \(the default before PostgreSQL 15; this server is $server_major\." "… saying it is this version's default"
else
  is "$pub" f "PostgreSQL $server_major: PUBLIC may not create in public"
  is "$(status_of "$j" schema_privileges)" ok "… check: ok"
  q ver_db -c "GRANT CREATE ON SCHEMA public TO PUBLIC"
  j=$("$TOOL" --json --server-dir "$srv" check --backup-dir "$t")
  is "$(status_of "$j" schema_privileges)" warning "after GRANT CREATE ON SCHEMA public TO PUBLIC: check warns"
  like "$(detail_of "$j" schema_privileges)" "every role may create objects in schema public \(granted to PUBLIC on this database\)" "… saying it was granted"
fi
like "$(fix_of "$j" schema_privileges)" "REVOKE CREATE ON SCHEMA public FROM PUBLIC" "… and the fix is the REVOKE"
q ver_db -c "REVOKE CREATE ON SCHEMA public FROM PUBLIC"
j=$("$TOOL" --json --server-dir "$srv" check --backup-dir "$t")
is "$(status_of "$j" schema_privileges)" ok "after the REVOKE: ok"
is "$(echo "$j" | jq -r .exit_code)" 0 "… and check still exits 0 (a warning is not a failure)"

# Debian 12's own clients (15) in front, as on a machine whose tool and clients are 15.
deb=/usr/lib/postgresql/15/bin
if [ -x "$deb/pg_dump" ]; then
  j=$(PATH="$deb:$PATH" "$TOOL" --json --server-dir "$srv" check --backup-dir "$t")
  if [ "$server_major" -gt 15 ]; then
    is "$(status_of "$j" pg_dump),$(status_of "$j" pg_restore)" "failed,failed" \
      "PostgreSQL $server_major with Debian's 15 pg_dump/pg_restore: failed"
    like "$(detail_of "$j" pg_dump)" "pg_dump \(PostgreSQL\) 15\..* cannot handle a PostgreSQL $server_major" "… saying why"
    like "$(fix_of "$j" pg_dump)" "install postgresql-client-$server_major" "… naming the package with a matching one"
    out=$(PATH="$deb:$PATH" "$TOOL" --server-dir "$srv" backup --backup-dir "$t/bk" 2>&1)
    ok $((! $?)) "backup refuses to start with the older pg_dump"
    like "$out" "cannot dump PostgreSQL $server_major.*postgresql-client-$server_major" "… and names the package"
    is "$(ls "$t/bk" 2>/dev/null | wc -l)" 0 "… leaving no file"
  else
    is "$(status_of "$j" pg_dump),$(status_of "$j" pg_restore)" "ok,ok" \
      "PostgreSQL $server_major with Debian's 15 pg_dump/pg_restore (not older): ok"
    out=$(PATH="$deb:$PATH" "$TOOL" --server-dir "$srv" backup --backup-dir "$t/bk" 2>&1)
    ok $? "backup by Debian's 15 pg_dump of a PostgreSQL $server_major server: $(echo "$out" | tail -1)"
  fi
else
  diag "no $deb/pg_dump: Debian's 15 clients are not installed"
  ok 1 "Debian's postgresql-client-15 is installed (bootstrap installs it)"
fi
done_testing
