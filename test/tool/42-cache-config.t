#!/usr/bin/env bash
# cache clear on a real data directory with symlinks leading out of the cache (never followed),
# a cache dir that resolves outside the data dir (refused); config upgrade-check off through the
# stub bin/omero's config set.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
srv=$t/OMERO.server
data=$t/data
make_sample_server "$srv" 5.6.3 omero omero "$data"
ou() { "$TOOL" --server-dir "$srv" "$@"; }
cache=$data/BioFormatsCache
mkdir -p "$cache/a/b" "$data/ManagedRepository" "$t/precious/dir"
head -c 100 /dev/zero > "$cache/a/one.bfmemo"
head -c 200 /dev/zero > "$cache/a/b/two.bfmemo"
echo keep > "$data/ManagedRepository/keep.txt"
echo keep > "$t/precious/file"
echo keep > "$t/precious/dir/inner"
ln -s "$t/precious/file" "$cache/a/link-to-file"
ln -s "$t/precious/dir" "$cache/link-to-dir"
ln -s ../../ManagedRepository "$cache/a/link-up"
precious() { (cd "$t" && find precious data/ManagedRepository | sort | xargs stat -c '%n %s'); }
before=$(precious)

out=$(ou cache clear --dry-run 2>&1); rc=$?
is "$rc" 0 "cache clear --dry-run"
like "$out" "would remove 5 file\(s\) and 2 directory\(ies\), 300 B" "… counts 2 files + 3 links, 2 dirs, 300 bytes"
is "$(find "$cache" | wc -l)" 8 "… and removes nothing"

j=$(ou --json cache clear)
is "$(jq -r '.exit_code, .result.files, .result.directories, .result.bytes' <<<"$j" | tr '\n' ' ')" "0 5 2 300 " \
  "cache clear: 5 files (links included), 2 directories, 300 bytes (--json)"
is "$(ls -A "$cache")" "" "the cache directory is empty"
[ -d "$cache" ]; ok $? "… and is still there"
is "$(precious)" "$before" "nothing the links pointed to was touched (files, dirs, the rest of the data dir)"

out=$(ou cache clear 2>&1); rc=$?
is "$rc" 0 "clear again is safe"
like "$out" "removed 0 file\(s\)" "… nothing left to remove"

# BioFormatsCache as a symlink is never followed, even into the data dir (it would delete whatever
# it points at, e.g. the user's images in ManagedRepository); outside the data dir is refused too.
mkdir -p "$data/cache-store/x" "$t/elsewhere"
echo memo > "$data/cache-store/x/m.bfmemo"
echo mine > "$t/elsewhere/important.txt"
rmdir "$cache" && ln -s cache-store "$cache"
out=$(ou cache clear 2>&1); rc=$?
is "$rc" 1 "a BioFormatsCache symlink into the data dir: refused"
like "$out" "$cache is a symbolic link: it resolves to $data/cache-store.*nothing was removed" "… saying where it leads"
is "$(cat "$data/cache-store/x/m.bfmemo")" "memo" "… and nothing is deleted"
rm "$cache" && ln -s ManagedRepository "$cache"
out=$(ou cache clear 2>&1); rc=$?
is "$rc" 1 "a BioFormatsCache symlink to ManagedRepository: refused"
is "$(precious)" "$before" "… the user's images survive"
out=$(ou cache clear --dry-run 2>&1); rc=$?
is "$rc" 1 "… refused with --dry-run too"
rm "$cache" && ln -s "$t/elsewhere" "$cache"
out=$(ou cache clear 2>&1); rc=$?
is "$rc" 1 "a BioFormatsCache resolving outside the data dir is refused"
like "$out" "resolves to $t/elsewhere, outside the data directory" "… saying where it leads"
is "$(cat "$t/elsewhere/important.txt")" "mine" "… and nothing there is touched"
rm "$cache" && mkdir "$cache" && touch "$cache/m"

touch "$srv/var/stub/running"
out=$(ou cache clear 2>&1); rc=$?
is "$rc" 1 "refused while the server runs (exit 1, as in db upgrade)"
[ -e "$cache/m" ]; ok $? "… removing nothing"
rm "$srv/var/stub/running"

rm -rf "$cache"
out=$(ou cache clear 2>&1); rc=$?
is "$rc" 0 "no cache directory: nothing to do"
sed -i "s|$data|$t/no-data|" "$srv/etc/grid/config.xml"
out=$(ou cache clear 2>&1); rc=$?
is "$rc" 2 "a missing data directory: exit 2"
like "$out" "the OMERO data directory $t/no-data \(omero.data.dir\) does not exist" "… with a clear message"

# ---- config upgrade-check off ---------------------------------------------------------------------
calls=$srv/var/stub/calls
: > "$calls"
cp "$srv/etc/grid/config.xml" "$t/config.before"
out=$(ou config upgrade-check off --dry-run 2>&1); rc=$?
is "$rc" 0 "config upgrade-check off --dry-run"
like "$out" "would run: bin/omero config set omero.upgrades.url ''" "… says what it would run"
cmp -s "$t/config.before" "$srv/etc/grid/config.xml"; ok $? "… and changes nothing"
out=$(ou config upgrade-check off 2>&1); rc=$?
is "$rc" 0 "config upgrade-check off: $out"
is "$(cat "$calls")" "config set omero.upgrades.url " "bin/omero config set omero.upgrades.url '' was run"
like "$(cat "$srv/etc/grid/config.xml")" '<property name="omero.upgrades.url" value=""/>' "config.xml has it empty"
out=$(ou config upgrade-check off 2>&1); rc=$?
is "$rc" 0 "again: safe"
like "$out" "already off" "… says it is already off"
is "$(grep -c 'config set' "$calls")" 1 "… without running config set again"
rec=$(dirname "$srv")/.omero-upgrade-upgrade-check.json
is "$(jq -r '.key + " " + (.previous_set|tostring)' "$rec")" "omero.upgrades.url false" "off recorded the value it replaced (unset) beside the server directory"
is "$(stat -c %a "$rec")" 600 "… mode 0600"
out=$(ou config upgrade-check on --dry-run 2>&1); rc=$?
like "$out" "would run: bin/omero config set omero.upgrades.url \(restoring unset" "on --dry-run says what it would restore"
out=$(ou config upgrade-check on 2>&1); rc=$?
is "$rc" 0 "config upgrade-check on: $out"
unlike "$(cat "$srv/etc/grid/config.xml")" 'omero.upgrades.url' "… the key is removed again (it was unset: OMERO's default)"
[ ! -e "$rec" ]; ok $? "… and the record is gone"
out=$(ou config upgrade-check on 2>&1); rc=$?
is "$rc" 0 "on again: safe"
like "$out" "already on" "… says it is already on"
"$srv/bin/omero" config set omero.upgrades.url "https://upgrade.example.org/check"
ou config upgrade-check off >/dev/null 2>&1
is "$(config_value "$srv" omero.upgrades.url)" "" "off with a value set: empty"
out=$(ou config upgrade-check on 2>&1); rc=$?
is "$rc" 0 "on: exit 0"
is "$(config_value "$srv" omero.upgrades.url)" "https://upgrade.example.org/check" "on restores the recorded value, not OMERO's default"
out=$(ou config upgrade-check maybe 2>&1); rc=$?
is "$rc" 2 "only off and on are accepted"
done_testing
