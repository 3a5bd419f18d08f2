#!/usr/bin/env bash
# backup import FILE: a dump made by hand with the guide's pg_dump -Fc is adopted (verified with
# pg_restore --list and the key tables, copied in 0600, checksummed, recorded in the manifest)
# instead of being refused without a hint; what is not an OMERO dump is refused, nothing left.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
fixture_db im_db
srv=$t/OMERO.server
make_sample_server "$srv"
sample_config "$srv" omero.db.name=im_db omero.db.user=postgres
ou() { "$TOOL" --server-dir "$srv" "$@"; }
bk=$t/bk
mkdir -p "$t/hand"
pg_dump -Fc -f "$t/hand/omero.pgdump" im_db

out=$(ou backup verify "$t/hand/omero.pgdump" 2>&1); rc=$?
is "$rc" 1 "backup verify of a dump made by hand: no checksum, exit 1"
like "$out" "adopt it with: omero-upgrade backup import .*hand/omero.pgdump" "… with a hint to import it"

j=$(ou --json backup import "$t/hand/omero.pgdump" --backup-dir "$bk" 2>"$t/e"); rc=$?
is "$rc" 0 "backup import: exit 0"
[ "$rc" = 0 ] || diag "$(cat "$t/e") $j"
f=$(echo "$j" | jq -r .result.path)
is "$f" "$bk/omero.pgdump" "… copied into the backup directory under its name"
cmp -s "$f" "$t/hand/omero.pgdump"; ok $? "… byte for byte"
is "$(stat -c %a "$f") $(stat -c %a "$f.sha256") $(stat -c %a "$bk")" "600 600 700" "… 0600 (sidecar too), the directory 0700"
(cd "$bk" && sha256sum -c --quiet omero.pgdump.sha256); ok $? "… its checksum file checks with sha256sum -c"
is "$(jq -r '.backups[0] | [.file, .database, .dbpatch_version, .purpose] | join(" ")' "$bk/omero-upgrade-backups.json")" \
  "omero.pgdump im_db OMERO5.3__1 import" "… recorded in the manifest (database, dbpatch version from the dump)"
is "$(jq -r '.backups[0].sha256' "$bk/omero-upgrade-backups.json")" "$(sha256sum "$f" | cut -d' ' -f1)" "… with its SHA-256"
out=$(ou backup verify "$f" 2>&1); rc=$?
is "$rc" 0 "backup verify of the imported copy: exit 0"
out=$(ou backup list --backup-dir "$bk" 2>/dev/null); rc=$?
like "$out" "omero.pgdump +OMERO5.3__1" "backup list shows it"
j=$(ou --json backup import "$t/hand/omero.pgdump" --backup-dir "$bk" 2>/dev/null); rc=$?
is "$rc $(echo "$j" | jq -r .result.file)" "0 omero-2.pgdump" "importing again: a new name, nothing overwritten"

# a dump already in the backup directory, not in the manifest: adopted in place
pg_dump -Fc -f "$bk/by-hand.pgdump" im_db
out=$(ou backup list --backup-dir "$bk" 2>&1 >/dev/null)
like "$out" "by-hand.pgdump is in .* but not in the manifest.*hint: adopt it: omero-upgrade backup import " "backup list hints at import"
out=$(ou backup import "$bk/by-hand.pgdump" --backup-dir "$bk" 2>&1); rc=$?
is "$rc" 0 "import in place: exit 0"
like "$out" "imported and verified: $bk/by-hand.pgdump .* in place" "… says so"
is "$(stat -c %a "$bk/by-hand.pgdump")" 600 "… made 0600"
out=$(ou backup import "$bk/by-hand.pgdump" --backup-dir "$bk" 2>&1); rc=$?
is "$rc" 2 "importing a recorded dump again: exit 2"
like "$out" "already recorded in the manifest" "… saying why"

# the default backup directory
out=$(ou backup import "$t/hand/omero.pgdump" 2>&1); rc=$?
is "$rc" 0 "without --backup-dir: exit 0"
[ -f "$t/omero-upgrade-backups/omero.pgdump" ]; ok $? "… into omero-upgrade-backups beside the server directory"

# not an OMERO dump: refused, nothing left
createdb im_other
pg_dump -Fc -f "$t/hand/other.pgdump" im_other
echo "not a dump" > "$t/hand/text.pgdump"
for f in other text; do
  out=$(ou backup import "$t/hand/$f.pgdump" --backup-dir "$t/bk2" 2>&1); rc=$?
  is "$rc" 2 "import of $f.pgdump: exit 2"
  [ -z "$(ls -A "$t/bk2" 2>/dev/null | grep -v '^\.omero-upgrade-backups.json.lock$')" ]; ok $? "… nothing left in the backup directory"
done
like "$out" "pg_restore --list" "… pg_restore --list said why"

done_testing
