#!/usr/bin/env bash
# Defaults shared by every command (issue 15): one backup directory default (omero-upgrade-backups
# beside the server directory) for backup, backup list, check and run; the space check estimates
# the dump from the last dump of the database recorded in the manifest (twice its size) instead
# of the database's size; run --no-space-check passes --no-space-check to check and backup.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
run_template
r=$t/r
scenario "$r" df_a
ou() { "$TOOL" --server-dir "$r/OMERO.server" "$@"; }
zip=$r/OMERO.server-5.6.3.zip
def=$r/omero-upgrade-backups

# 1. one default backup directory
out=$(ou backup 2>&1); rc=$?
is "$rc" 0 "backup without --backup-dir: exit 0"
like "$(ls "$def" 2>&1)" "df_a-OMERO5.3__1-.*\.pgdump" "… writes into omero-upgrade-backups beside the server directory"
is "$(stat -c %a "$def")" 700 "… a directory it made 0700"
out=$(ou backup list 2>/dev/null); rc=$?
is "$rc" 0 "backup list without --backup-dir: exit 0"
like "$out" "df_a-OMERO5.3__1-.*\.pgdump" "… lists the same directory"
j=$(ou --json check 2>/dev/null)
like "$(echo "$j" | jq -r '.result.checks[] | select(.name == "backup_space") | .detail')" "free in $def," \
  "check without --backup-dir measures the same directory"
out=$(ou run --new-server "$zip" --dry-run 2>&1); rc=$?
like "$out" "space +backup dir $def:" "run's plan uses the same directory"
like "$out" "omero-upgrade --server-dir .* backup --backup-dir '?$def'?" "… and its backup step writes there"
rm -r "$def"
j=$(ou --json check 2>/dev/null)
is "$(echo "$j" | jq -r '.result.checks[] | select(.name == "backup_space") | .status')" ok \
  "check: the default directory not made yet is not a failure (its parent's space counts)"

# 2. the space check estimates the dump from the manifest
size=$(q df_a -c "SELECT pg_database_size(current_database())")
mkdir -p "$t/tiny"
if mount -t tmpfs -o size=8m tmpfs "$t/tiny" 2>/dev/null; then
  chmod 700 "$t/tiny"
  out=$(ou backup --backup-dir "$t/tiny" 2>&1); rc=$?
  is "$rc" 2 "8 MiB free, a $((size / 1048576)) MiB database, no earlier dump: refused (exit 2)"
  like "$out" "the dump needs about [0-9.]+ MiB \(its size: no earlier dump of it in the manifest\)" "… saying why"
  out=$(ou backup --backup-dir "$t/tiny" --no-space-check 2>&1); rc=$?
  is "$rc" 0 "--no-space-check: the dump is made"
  dump=$(jq -r '.backups[0].size_bytes' "$t/tiny/omero-upgrade-backups.json")
  # autovacuum may add a free-space or visibility map between the reads: the size recorded lies
  # between the sizes read before and after the dump
  after=$(q df_a -c "SELECT pg_database_size(current_database())")
  rec=$(jq -r '.backups[0].database_size_bytes' "$t/tiny/omero-upgrade-backups.json")
  ok "$([ "$rec" -ge "$((size < after ? size : after))" ] && [ "$rec" -le "$((size > after ? size : after))" ] && echo 0 || echo 1)" \
    "the manifest records the database's size then ($rec bytes; before $size, after $after)"
  ok "$([ "$((2 * dump))" -lt $((7 * 1048576)) ] && echo 0 || echo 1)" "… the dump ($dump bytes) is small"
  out=$(ou -v backup --backup-dir "$t/tiny" 2>&1); rc=$?
  is "$rc" 0 "a second backup without --no-space-check: the last dump's size counts, not the database's"
  like "$out" "the dump needs about .*twice the last dump of df_a, df_a-OMERO5.3__1-" "… -v says so"
  j=$(ou --json check --backup-dir "$t/tiny" 2>/dev/null)
  is "$(echo "$j" | jq -r '.result.checks[] | select(.name == "backup_space") | .status')" ok "check uses the same estimate"
  out=$(ou run --new-server "$zip" --dry-run --backup-dir "$t/tiny" 2>&1); rc=$?
  like "$out" "space +backup dir $t/tiny:.*needs about" "… and run's plan"
  unlike "$out" "not enough free space for the backup" "… which finds no shortage"
  umount "$t/tiny"
else
  ok 1 "cannot mount a tmpfs here: the space estimate is not tested"
fi

# 3. run --no-space-check
mkdir -p "$t/tiny2"
if mount -t tmpfs -o size=256k tmpfs "$t/tiny2" 2>/dev/null; then
  out=$(ou run --new-server "$zip" --dry-run --backup-dir "$t/tiny2" 2>&1); rc=$?
  is "$rc" 1 "run --dry-run with 256 KiB for the backup: refused (exit 1)"
  like "$out" "not enough free space for the backup in $t/tiny2: .*--no-space-check: try anyway" "… naming --no-space-check"
  out=$(ou run --new-server "$zip" --dry-run --backup-dir "$t/tiny2" --no-space-check 2>&1); rc=$?
  is "$rc" 0 "run --dry-run --no-space-check: the plan runs"
  [ "$rc" = 0 ] || diag "$out"
  like "$out" "warning: not enough free space for the backup in $t/tiny2" "… with a warning"
  like "$out" "backup --backup-dir '?$t/tiny2'? --no-space-check" "… and passes --no-space-check to backup"
  like "$out" "check --target [^ ]+ --backup-dir '?$t/tiny2'? --no-space-check" "… and to check"
  umount "$t/tiny2"
else
  ok 1 "cannot mount a tmpfs here: run --no-space-check is not tested"
fi

# 4. streams: what is being done (chatter) on stderr, dropped by -q; results on stdout
mkdir -p "$t/bk4"
ou backup --backup-dir "$t/bk4" >"$t/o" 2>"$t/e"; rc=$?
is "$rc" 0 "backup: exit 0"
like "$(cat "$t/o")" "^backup verified and written: .*checksum: " "stdout: the results (the file, its checksum)"
unlike "$(cat "$t/o")" "backing up|pg_dump: |checksum: [0-9.]+ [KMG]?i?B" "stdout: no chatter, no progress line"
like "$(cat "$t/e")" "backing up .*/df_a " "stderr: what is being done"
ou -q backup --backup-dir "$t/bk4" >"$t/o" 2>"$t/e"; rc=$?
like "$(cat "$t/o")" "^backup verified and written: " "-q: the results still on stdout"
unlike "$(cat "$t/e")" "backing up" "-q: no chatter"
ou server stop >"$t/o" 2>"$t/e"
unlike "$(cat "$t/o")" "stopping the server" "server stop: the step on stderr, not stdout"
like "$(cat "$t/e")" "stopping the server: bin/omero admin stop" "… there"
like "$(cat "$t/o")" "server stopped" "… the result on stdout"
ou server start >"$t/o" 2>"$t/e"
like "$(cat "$t/e")" "starting the server" "server start: the step on stderr"
like "$(cat "$t/o")" "server started" "… the result on stdout"

# 5. run: its step lines ("[i/n] …", "done in …") are chatter on stderr; stdout holds the report
ou run --new-server "$zip" --no-space-check >"$t/o" 2>"$t/e"; rc=$?
is "$rc" 0 "run (the whole upgrade): exit 0"
like "$(cat "$t/o")" "(^|"$'\n'")Report of run [^ ]+: " "… stdout: the report"
unlike "$(cat "$t/o")" "(^|"$'\n'")(\[[0-9]+/[0-9]+\] |      done in |      comparing the SHA-256|      backup .* sha256 |      [0-9]+ files, )" \
  "… no step line on stdout"
unlike "$(cat "$t/o")" "(^|"$'\n'")(hint|warning|progress): |elapsed [0-9]+:[0-9]{2}:[0-9]{2}|ETA (unknown|~?[0-9])" \
  "… no hint, warning or progress line on stdout"
like "$(cat "$t/e")" "(^|"$'\n'")\[1/[0-9]+\] .*(^|"$'\n'")      done in " "… the step lines on stderr"
ou -q run --resume >"$t/o" 2>"$t/e"; rc=$?
is "$rc" 0 "-q run --resume of the finished run: exit 0"
like "$(cat "$t/o")" "Report of run [^ ]+: " "… -q keeps the report on stdout"

ou server stop >/dev/null 2>&1
done_testing
