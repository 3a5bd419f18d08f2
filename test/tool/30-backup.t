#!/usr/bin/env bash
# omero-upgrade backup / backup list / backup verify: verified, checksummed dumps that never
# overwrite anything and never leave a partial file under a final name.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
fixture_db bk_src
srv=$t/srv
make_sample_server "$srv"
sample_config "$srv" omero.db.name=bk_src omero.db.user=postgres
bk=$t/bk
tool() { "$TOOL" --server-dir "$srv" "$@"; }
no_partial() { find "$1" -name '*.partial' | wc -l; }

out=$(tool backup --backup-dir "$bk" 2>&1)
is "$?" 0 "backup: exit 0"
f=$(ls "$bk"/*.pgdump)
like "$(basename "$f")" "^bk_src-OMERO5\.3__1-[0-9]{8}T[0-9]{6}Z\.pgdump$" "the name carries database, dbpatch version, UTC time"
like "$out" "backup verified and written: $f" "… and is reported"
is "$(cd "$bk" && sha256sum -c "$(basename "$f").sha256" 2>&1)" "$(basename "$f"): OK" "the sidecar works with sha256sum -c"
entry=$(jq -c --arg f "$(basename "$f")" '.backups[] | select(.file == $f)' "$bk/omero-upgrade-backups.json")
is "$(echo "$entry" | jq -r '.dbpatch_version + " " + .format + " " + .database')" "OMERO5.3__1 custom bk_src" \
  "the manifest records version, format, database"
is "$(echo "$entry" | jq -r .sha256)" "$(sha256sum "$f" | cut -d' ' -f1)" "… and the checksum"
is "$(echo "$entry" | jq -r .size_bytes)" "$(stat -c %s "$f")" "… and the size"
is "$(pg_restore -l "$f" | grep -c 'TABLE DATA public dbpatch')" 1 "pg_restore reads it"
is "$(no_partial "$bk")" 0 "no partial file is left"

# Never overwrite: backups in the same second get distinct names.
tool -q backup --backup-dir "$bk" && tool -q backup --backup-dir "$bk"
is "$(ls "$bk"/*.pgdump | wc -l)" 3 "three backups, three files (nothing overwritten)"
is "$(jq '.backups | length' "$bk/omero-upgrade-backups.json")" 3 "… three manifest entries"
is "$(sha256sum "$f" | cut -d' ' -f1)" "$(echo "$entry" | jq -r .sha256)" "the first file is unchanged"

out=$(tool backup list --backup-dir "$bk" 2>&1)
is "$?" 0 "backup list: exit 0"
is "$(echo "$out" | grep -c 'OMERO5.3__1')" 3 "… lists the three"
j=$(tool --json backup list --backup-dir "$bk")
is "$(echo "$j" | jq -r '[.result.backups[].present] | all')" true "--json: all present"

out=$(tool backup verify "$f" 2>&1)
is "$?" 0 "verify: exit 0"
like "$out" "^OK: .*custom format, [0-9]+ entries, dbpatch OMERO5.3__1, checksum matches" "… says what it checked"
out=$(tool backup verify --full "$f" 2>&1)
is "$?" 0 "verify --full reads every data block"

# Damaged copies (same name, other directory: the sidecar names the file).
for kind in altered truncated nosidecar; do mkdir -p "$t/$kind"; cp "$f" "$f.sha256" "$t/$kind/"; done
g=$(basename "$f")
size=$(stat -c %s "$f")
printf 'X' | dd of="$t/altered/$g" bs=1 seek=$((size / 2)) conv=notrunc status=none
truncate -s $((size / 2)) "$t/truncated/$g"
rm "$t/nosidecar/$g.sha256"
out=$(tool backup verify "$t/altered/$g" 2>&1)
is "$?" 1 "an altered dump: verify exit 1"
like "$out" "checksum mismatch \(the file was altered or damaged\)" "… checksum mismatch"
like "$out" "NOT OK: " "… NOT OK"
out=$(tool backup verify "$t/truncated/$g" 2>&1)
is "$?" 1 "a truncated dump: verify exit 1"
like "$out" "checksum mismatch" "… checksum mismatch"
out=$(tool backup verify "$t/nosidecar/$g" 2>&1)
is "$?" 1 "no sidecar: verify exit 1"
like "$out" "no checksum file" "… says so"
(cd "$t/truncated" && sha256sum "$g" > "$g.sha256")
out=$(tool backup verify --full "$t/truncated/$g" 2>&1)
is "$?" 1 "a truncated dump with a matching (recomputed) checksum: verify --full still finds it"
out=$(tool backup verify "$t/nothing.pgdump" 2>&1)
is "$?" 2 "verify of a missing file: exit 2"

# No space: a file-size limit kills pg_dump half-way; nothing is left under any name.
mkdir -p "$t/lim"
out=$(ulimit -f 100; tool backup --backup-dir "$t/lim" 2>&1)
is "$?" 2 "file size limit (ulimit -f 100): exit 2"
like "$out" "pg_dump failed \(killed by SIGXFSZ \(file size limit exceeded\)\).*the partial dump was removed" "… a clear reason"
is "$(ls -A "$t/lim" | grep -v '^\.omero-upgrade-backups.json.lock$' | wc -l)" 0 "… and no file is left (neither final nor partial)"
mkdir -p "$t/tiny"
if mount -t tmpfs -o size=256k tmpfs "$t/tiny" 2>/dev/null; then
  out=$(tool backup --backup-dir "$t/tiny" 2>&1)
  is "$?" 2 "a 256 KiB file system: refused before starting"
  like "$out" "not enough free space in .*tiny: 256.0 KiB available, the database is" "… with the numbers"
  out=$(tool backup --backup-dir "$t/tiny" --no-space-check 2>&1)
  is "$?" 2 "--no-space-check: pg_dump runs out of space, exit 2"
  like "$out" "No space left on device" "… the reason is shown"
  is "$(ls -A "$t/tiny" | grep -v '^\.omero-upgrade-backups.json.lock$' | wc -l)" 0 "… and nothing is left"
  umount "$t/tiny"
else
  diag "cannot mount a tmpfs here: the full-disk case is covered by ulimit -f only"
fi

# Directory format, parallel.
out=$(tool backup --backup-dir "$t/dir" --jobs 2 2>&1)
is "$?" 0 "backup --jobs 2: exit 0"
d=$(ls -d "$t/dir"/*.pgdir)
like "$(basename "$d")" "^bk_src-OMERO5\.3__1-.*Z\.pgdir$" "… a .pgdir directory"
is "$(cd "$t/dir" && sha256sum -c --quiet "$(basename "$d").sha256" && echo fine)" "fine" "… every file checks with sha256sum -c"
like "$(head -1 "$d.sha256")" "^[0-9a-f]{64}  $(basename "$d")/" "… one line per file"
out=$(tool backup verify "$d" 2>&1)
is "$?" 0 "verify of the directory: exit 0"
victim=$(ls "$d"/*.dat.gz | head -1)
printf 'junk' >> "$victim"
out=$(tool backup verify "$d" 2>&1)
is "$?" 1 "a changed file inside the directory: exit 1"
like "$out" "$(basename "$victim"): checksum mismatch" "… names the file"
touch "$d/extra.dat"
out=$(tool backup verify "$d" 2>&1)
like "$out" "extra.dat: not listed in" "… an added file is found too"

# Manifest shape and JSON output.
j=$(tool --json backup --backup-dir "$t/json")
is "$(echo "$j" | jq -r '.status + " " + .result.dbpatch_version + " " + .result.purpose')" "ok OMERO5.3__1 backup" "--json result"
is "$(echo "$j" | jq -r .result.path)" "$(ls "$t/json"/*.pgdump)" "… with the path"

# Not an OMERO database.
out=$(tool --db-name postgres backup --backup-dir "$t/none" 2>&1)
is "$?" 2 "backup of a database without dbpatch: exit 2"
like "$out" "is not an OMERO database" "… says so"

done_testing
