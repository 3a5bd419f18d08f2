#!/usr/bin/env bash
# Files holding data are private whatever the umask (issue 13 item 5): a backup directory the tool
# creates is 0700; dumps (custom and directory format, private from the first byte pg_dump
# writes), checksum sidecars, the manifest and its lock are 0600; so are a run's state file, its
# lock, its log and listing, the run's backups and the binaries state. Tried under umask 022 (the
# usual) and 000 (the worst). A file planted at the name of a temporary file is never written
# through.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"
source "$OU_SRC/test/lib/run-scenario.sh"

t=$(scratch)
fixture_db pv_src
srv=$t/srv
make_sample_server "$srv"
sample_config "$srv" omero.db.name=pv_src omero.db.user=postgres
mode() { stat -c %a "$1"; }
# Everything below a directory (itself included) that is not 0600 (files) or 0700 (directories).
loose() { find "$1" \( -type f ! -perm 600 \) -o \( -type d ! -perm 700 \) | sed "s|^$1|.|"; }

# A pg_dump first on PATH that records the modes of its output when the real pg_dump has finished,
# before the tool could change anything: the dump was private from its creation, not chmod-ed later.
wrap=$t/wrap
mkdir -p "$wrap"
real_pg_dump=$(command -v pg_dump)
cat > "$wrap/pg_dump" <<SH
#!/bin/sh
"$real_pg_dump" "\$@"; rc=\$?
for a in "\$@"; do case \$a in --file=*) f=\${a#--file=}; stat -c '%a %F' "\$f" >> "$t/dump-modes.log"
  [ -d "\$f" ] && find "\$f" -mindepth 1 -exec stat -c '%a %F' {} + >> "$t/dump-modes.log";; esac; done
exit \$rc
SH
chmod 755 "$wrap/pg_dump"

for um in 022 000; do
  bk=$t/bk-$um
  : > "$t/dump-modes.log"
  out=$(umask $um; PATH=$wrap:$PATH "$TOOL" --server-dir "$srv" --log-file "$t/log-$um" backup --backup-dir "$bk" 2>&1)
  is "$?" 0 "umask $um: backup exit 0"
  is "$(mode "$bk")" 700 "umask $um: the backup directory the tool created is 0700"
  f=$(ls "$bk"/*.pgdump)
  is "$(mode "$f")" 600 "umask $um: the dump is 0600"
  is "$(mode "$f.sha256")" 600 "umask $um: its checksum sidecar is 0600"
  is "$(mode "$bk/omero-upgrade-backups.json")" 600 "umask $um: the manifest is 0600"
  is "$(mode "$bk/.omero-upgrade-backups.json.lock")" 600 "umask $um: the manifest's lock is 0600"
  is "$(mode "$t/log-$um")" 600 "umask $um: the log file is 0600"
  is "$(sort -u "$t/dump-modes.log")" "600 regular file" "umask $um: pg_dump created the dump 0600 (before any chmod)"

  : > "$t/dump-modes.log"
  (umask $um; PATH=$wrap:$PATH "$TOOL" --server-dir "$srv" -q backup --backup-dir "$bk" --jobs 2 >/dev/null 2>&1)
  is "$?" 0 "umask $um: directory-format backup (--jobs 2) exit 0"
  d=$(ls -d "$bk"/*.pgdir)
  is "$(loose "$d")" "" "umask $um: the directory dump is 0700 with 0600 files"
  like "$(cat "$t/dump-modes.log")" "regular file" "umask $um: the wrapper saw the directory dump's files"
  is "$(grep -v '^600 regular file$\|^700 directory$' "$t/dump-modes.log")" "" \
    "umask $um: pg_dump created its directory and files private"
  is "$(loose "$bk")" "" "umask $um: nothing in the backup directory is open to others"
done

# An existing directory keeps its mode (it may be the user's own), what goes into it is private.
mkdir -m 755 "$t/mine"
(umask 000; "$TOOL" --server-dir "$srv" -q backup --backup-dir "$t/mine" >/dev/null 2>&1)
is "$(mode "$t/mine")" 755 "an existing backup directory keeps its mode"
is "$(find "$t/mine" -type f | wc -l)" 4 "… it holds the dump, its sidecar, the manifest and its lock"
is "$(find "$t/mine" -type f ! -perm 600 | wc -l)" 0 "… each of them 0600"
# A manifest lock of an older version (0644) is made private when used again.
chmod 644 "$t/mine/.omero-upgrade-backups.json.lock"
"$TOOL" --server-dir "$srv" -q backup --backup-dir "$t/mine" >/dev/null 2>&1
is "$(mode "$t/mine/.omero-upgrade-backups.json.lock")" 600 "a looser lock file of ours is made 0600"

# A symlink planted at the name of the manifest's temporary file is not written through.
echo original > "$t/victim"
ln -s "$t/victim" "$t/mine/.omero-upgrade-backups.json.tmp.99999999"
"$TOOL" --server-dir "$srv" -q backup --backup-dir "$t/mine" >/dev/null 2>&1
is "$?" 0 "a backup next to a planted symlink still works"
is "$(cat "$t/victim")" original "… the file a planted link points to is untouched"

# A whole run under umask 000: its state, lock, log, listing, backups and the binaries state are private.
run_template
r=$t/run
scenario "$r" pv_run
(umask 000; "$TOOL" --server-dir "$r/OMERO.server" run --new-server "$r/OMERO.server-5.6.3.zip" >"$t/run.out" 2>&1)
rc=$?
is "$rc" 0 "run under umask 000: exit 0"
[ "$rc" = 0 ] || diag "$(tail -20 "$t/run.out")"
is "$(mode "$r/.omero-upgrade-run.json")" 600 "run: the state file is 0600"
is "$(mode "$r/.omero-upgrade-run.json.lock")" 600 "run: its lock is 0600"
is "$(mode "$r/omero-upgrade-backups")" 700 "run: its backup directory is 0700"
is "$(loose "$r/omero-upgrade-backups")" "" "run: every backup file 0600"
is "$(mode "$r/.omero-upgrade-binaries.json")" 600 "run: the binaries state is 0600"
written=$(find "$r" -maxdepth 1 -type f \( -name '.omero-upgrade*' -o -name 'omero-upgrade*' \) | sort)
like "$written" "omero-upgrade-run-.*\.log" "run: its log is among the files it wrote beside the server"
is "$(find "$r" -maxdepth 1 -type f \( -name '.omero-upgrade*' -o -name 'omero-upgrade*' \) ! -perm 600)" "" \
  "run: every file it wrote beside the server is 0600 ($(echo "$written" | wc -l) files)"

q postgres -c "DROP DATABASE pv_src" -c "DROP DATABASE pv_run WITH (FORCE)" >/dev/null
done_testing
