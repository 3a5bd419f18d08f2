#!/usr/bin/env bash
# History (omero-upgrade history [--json], omero_history()): after a whole run on a database with
# the extension (backup, binaries swap, hops, site SQL, orphans, colours, moves to wells) and its
# rollback (binaries rollback, restore, rollback), every kind of change is listed with who (the
# database role, the OS user, the host), when, from which version to which, and the SHA-256 of
# the scripts and the backup; the extension's own runs name the tool's OS user. Without the
# extension the tool's changes go to a private 0600 file beside the server directory, listed too.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
r=$t/a
scenario "$r" hist_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
site=$t/site
mkdir -p "$site"
printf '%s\n' "CREATE TABLE site_notes (id int8 PRIMARY KEY);" > "$site/010_notes.sql"
me=$(id -un); host=$(hostname)

t0=$(date -u +%Y-%m-%dT%H:%M:%S)
out=$(ou run --new-server "$r/OMERO.server-5.6.3.zip" --site-sql "$site" --orphans --colors all \
      --move-annotations-to-wells screen:1 2>&1); rc=$?
t1=$(date -u +%Y-%m-%dT%H:%M:%S.999Z)
is "$rc" 0 "a whole run with site SQL, orphans, colours and wells: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
state=$r/.omero-upgrade-run.json
bk=$(jq -r .backup.path "$state"); bsha=$(jq -r .backup.sha256 "$state")

j=$(ou --json history); rc=$?
is "$rc" 0 "history --json: exit 0"
is "$(jq -r '[.result.entries[].kind] | join(",")' <<<"$j")" \
  "backup,binaries-install,hop,site-sql,orphans,colors,wells" "… every change of the run, in order"
is "$(jq -r '[.result.entries[] | .source + " " + .database] | unique | join(",")' <<<"$j")" "database hist_a" \
  "… all kept in the upgraded database's omero_upgrade.history"
is "$(jq -r --arg me "$me" --arg h "$host" '[.result.entries[] | (.os_user == $me and .host == $h and (.db_role | length) > 0)] | all' <<<"$j")" \
  "true" "… each with the database role, the OS user ($me) and the host — the extension's own runs too"
# (Compared to the second: an entry of the history file says ...:SSZ, one of the table
# ...:SS.ffffffZ, and "Z" sorts after "." — the cause of the one failure of the earlier check.)
is "$(jq -r --arg t0 "$t0" --arg t1 "${t1:0:19}" '[.result.entries[].recorded_at] | (map(.[0:19]) | . == sort) and all(test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")) and all(.[0:19] >= $t0 and .[0:19] <= $t1)' <<<"$j")" \
  "true" "… each with when (UTC, in order, within the run: $t0 … ${t1:0:19})"
is "$(jq -r '[.result.entries[] | select((.what | length) == 0)] | length' <<<"$j")" "0" "… and what, for every entry"
is "$(jq -r --arg bk "$bk" '.result.entries[] | select(.kind == "backup") | [.what, .checksums[$bk], .from_version] | join(" ")' <<<"$j")" \
  "$bk $bsha OMERO5.3__1" "the backup: its path, SHA-256 and the version it holds"
hop_sha=$(unzip -p "$r/OMERO.server-5.6.3.zip" 'OMERO.server-5.6.3/sql/psql/OMERO5.4__0/OMERO5.3__1.sql' | sha256sum | cut -d' ' -f1)
is "$(jq -r '.result.entries[] | select(.kind == "hop") | [.what, .from_version, .to_version, .checksums["sql/psql/OMERO5.4__0/OMERO5.3__1.sql"]] | join(" ")' <<<"$j")" \
  "sql/psql/OMERO5.4__0/OMERO5.3__1.sql OMERO5.3__1 OMERO5.4__0 $hop_sha" "the hop: its script, versions and the script's SHA-256"
is "$(jq -r --arg f "$site/010_notes.sql" '.result.entries[] | select(.kind == "site-sql") | [.what, .to_version, .checksums[$f]] | join(" ")' <<<"$j")" \
  "010_notes.sql OMERO5.4__0 $(sha256sum "$site/010_notes.sql" | cut -d' ' -f1)" "the site SQL file: its name, version and SHA-256"
is "$(jq -r '[.result.entries[] | select(.kind == "orphans" or .kind == "colors") | .details.status // .details.direction] | join(",")' <<<"$j")" \
  "deleted,argb_to_rgba" "the orphan delete and the colour run, with their runs' rows"
like "$(jq -r '.result.entries[] | select(.kind == "binaries-install") | .details.to' <<<"$j")" "OMERO.server-5.6.3$" \
  "the binaries swap, to the new tree"
out=$(ou history 2>&1)
like "$out" "[0-9T:.-]+Z  hop  sql/psql/OMERO5.4__0/OMERO5.3__1.sql \(OMERO5.3__1 → OMERO5.4__0\)  by [a-z_]+, $me@$host \[database hist_a\];.* sha256 $hop_sha sql/psql/OMERO5.4__0/OMERO5.3__1.sql" \
  "history (text): one line per change, who, where it is kept, the checksums"
is "$(q hist_a -c "SELECT string_agg(kind, ',' ORDER BY id) FROM omero_history()")" "backup,binaries-install,hop,site-sql,orphans,colors,wells" \
  "SELECT * FROM omero_history() lists the same"

# --- the rollback: binaries rollback, restore, rollback --------------------------------------------
out=$(ou rollback 2>&1); rc=$?
is "$rc" 0 "rollback: exit 0"
[ "$rc" -eq 0 ] || diag "$(tail -20 <<<"$out")"
into=$(jq -r .rollback.into "$state")
is "$(q hist_a -c "SELECT string_agg(kind, ',' ORDER BY id) FROM omero_history()")" \
  "backup,binaries-install,hop,site-sql,orphans,colors,wells,binaries-rollback,restore,rollback" \
  "the upgraded database (kept) has the whole story, the rollback's changes too"
j=$(ou --json history)
is "$(jq -r '[.result.entries[] | .kind] | join(",")' <<<"$j") $(jq -r .result.database <<<"$j")" "restore,rollback $into" \
  "history now reads the restored database: the backup's own history (nothing before it) and the restore and rollback"
is "$(jq -r --arg bk "$bk" '.result.entries[] | select(.kind == "restore") | [.checksums[$bk], .details.into] | join(" ")' <<<"$j")" \
  "$bsha $into" "… the restore with the backup's SHA-256"
is "$(jq -r '.result.entries[] | select(.kind == "rollback") | [.from_version, .to_version] | join(" ")' <<<"$j")" \
  "OMERO5.4__0 OMERO5.3__1" "… the rollback, from which version to which"

# --- without the extension: a private file -------------------------------------------------------------
psql -X -q -c "CREATE ROLE omero_hn LOGIN" postgres
fixture_db hist_plain --version OMERO5.3__1 --owner omero_hn
mkdir -p "$t/plain"
make_sample_server "$t/plain/OMERO.server" 5.6.3 hist_plain omero_hn
op() { "$TOOL" --server-dir "$t/plain/OMERO.server" "$@"; }
op db upgrade >/dev/null 2>&1
op backup --backup-dir "$t/plain/bk" >/dev/null 2>&1
f=$t/plain/.omero-upgrade-history.json
is "$(stat -c %a "$f" 2>/dev/null) $(jq -r '[.entries[] | .kind + " " + .database] | join(",")' "$f")" "600 hop hist_plain,backup hist_plain" \
  "no extension: the hop and the backup in a private (0600) file beside the server directory"
j=$(op --json history)
is "$(jq -r '[.result.entries[] | .source + ":" + .kind] | join(",")' <<<"$j")" "file:hop,file:backup" "history lists them (source file)"
like "$(jq -r '.result.entries[0].checksums["sql/psql/OMERO5.4__0/OMERO5.3__1.sql"]' <<<"$j")" "^[0-9a-f]{64}$" "… with the script's SHA-256"

done_testing
