#!/usr/bin/env bash
# binaries install|rollback on real directory trees and real zip archives: the good archive is
# extracted beside the server and the symlink swapped; every hostile archive (zip-slip, absolute
# path, symlink escapes, a file written through a symlink, a symlink chain) is refused before
# anything is written anywhere.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
log=$(mktemp "$OU_TMP/41-log.XXXXXX")
opt=$t/opt
old=$opt/OMERO.server
make_sample_server "$old" 5.4.10
mkdir -p "$old/lib/scripts/omero/custom"
echo "# a site's own script" > "$old/lib/scripts/omero/custom/My_Script.py"
chmod 750 "$old/lib/scripts/omero/custom/My_Script.py"
chmod 640 "$old/etc/grid/config.xml"
chown 65534:65534 "$old/etc/grid/config.xml"
rel=OMERO.server-5.6.3-ice36-b228
mkdir -p "$t/build"
make_sample_server "$t/build/$rel" 5.6.3
rm "$t/build/$rel/etc/grid/config.xml"   # distributions ship none
make_server_zip "$t/build/$rel" "$t/good.zip"
ou() { "$TOOL" --server-dir "$old" --log-file "$log" "$@"; }
# Every path below $t but the sources and the stub's own call records, with type, size and mtime.
snapshot() { (cd "$t" && find . -path ./build -prune -o -path ./arch -prune -o -path '*/var/stub' -prune -o -print | sort | xargs -d '\n' stat -c '%n %F %s %Y' 2>/dev/null); }

# ---- hostile archives -------------------------------------------------------------------------
mkdir -p "$t/arch" "$t/outside"
top=OMERO.server-5.9.9-ice36-b1
mkstage() { rm -rf "$t/arch/stage"; mkdir -p "$t/arch/stage/$top/bin"; printf '#!/bin/sh\n' > "$t/arch/stage/$top/bin/omero"; chmod 755 "$t/arch/stage/$top/bin/omero"; }
patchzip() { FROM=$2 TO=$3 perl -0777 -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g' "$1"; }
# zip-slip: an entry ../evil.txt (stored as zz/evil.txt, renamed in the archive's bytes)
mkstage; mkdir "$t/arch/stage/zz"; echo evil > "$t/arch/stage/zz/evil.txt"
(cd "$t/arch/stage" && zip -q -r "$t/arch/slip.zip" "$top" zz)
patchzip "$t/arch/slip.zip" "zz/evil.txt" "../evil.txt"
like "$(unzip -l "$t/arch/slip.zip")" '\.\./evil\.txt' "the zip-slip archive holds ../evil.txt"
# absolute path: $t/outside/abs.txt
mkstage; mkdir -p "$t/arch/stage/X${t#/}/outside"; echo abs > "$t/arch/stage/X${t#/}/outside/abs.txt"
(cd "$t/arch/stage" && zip -q -r "$t/arch/abs.zip" "$top" "X${t#/}")
patchzip "$t/arch/abs.zip" "X${t#/}/outside/abs.txt" "/${t#/}/outside/abs.txt"
like "$(unzip -l "$t/arch/abs.zip")" " $t/outside/abs.txt" "the absolute-path archive holds $t/outside/abs.txt"
# a symlink pointing outside (relative)
mkstage; ln -s ../../outside "$t/arch/stage/$top/escape"
(cd "$t/arch/stage" && zip -q -r -y "$t/arch/symlink.zip" "$top")
# a symlink to an absolute path, then a file written through it
mkstage; ln -s "$t/outside" "$t/arch/stage/$top/lib"
(cd "$t/arch/stage" && zip -q -r -y "$t/arch/through.zip" "$top")
rm "$t/arch/stage/$top/lib"; mkdir "$t/arch/stage/$top/lib"; echo pwned > "$t/arch/stage/$top/lib/pwned.txt"
(cd "$t/arch/stage" && zip -q -y "$t/arch/through.zip" "$top/lib/pwned.txt")
like "$(unzip -Z1 "$t/arch/through.zip" | tr '\n' ' ')" "$top/lib .*$top/lib/pwned.txt" "through.zip: the symlink, then a file below it"
# a chain: a/up -> .. is inside, but x -> a/up/../.. leaves the root only when followed as the kernel does
mkstage; mkdir "$t/arch/stage/$top/a"; ln -s .. "$t/arch/stage/$top/a/up"; ln -s a/up/../.. "$t/arch/stage/$top/x"
(cd "$t/arch/stage" && zip -q -r -y "$t/arch/chain.zip" "$top")

"$old/bin/omero" admin status >/dev/null 2>&1   # the stub's first call creates var/stub
before=$(snapshot)
for case in "slip:path with '\.\.'" "abs:absolute path" "symlink:symlink pointing outside the archive \(\.\./\.\./outside\)" \
            "through:written through the symlink $top/lib" "chain:$top/x: symlink pointing outside"; do
  name=${case%%:*} want=${case#*:}
  out=$(ou binaries install "$t/arch/$name.zip" 2>&1); rc=$?
  is "$rc" 1 "$name.zip is refused (exit 1)"
  like "$out" "unsafe archive entry: .*$want" "… because of: $want"
  is "$(snapshot)" "$before" "… and nothing was written anywhere (server, its parent, outside)"
done
is "$(ls -A "$t/outside")" "" "nothing in the outside directory"
[ ! -e "$opt/evil.txt" ] && [ ! -e "$t/evil.txt" ]; ok $? "no evil.txt beside or above the server"
out=$(ou binaries install --dry-run "$t/arch/slip.zip" 2>&1); rc=$?
is "$rc" 1 "--dry-run refuses a hostile archive too"

# ---- the good archive, from a plain OMERO.server directory --------------------------------------
out=$(ou binaries install --dry-run "$t/good.zip" 2>&1); rc=$?
is "$rc" 0 "install --dry-run: $out"
like "$out" "would move $old to $old-old" "… would move the directory aside"
like "$out" "would point $old to $opt/$rel" "… would point the symlink"
is "$(snapshot)" "$before" "… and changes nothing"

touch "$old/var/stub/running"
out=$(ou binaries install "$t/good.zip" 2>&1); rc=$?
is "$rc" 1 "refused while the server runs (exit 1, as in db upgrade)"
like "$out" "is running \(bin/omero admin status\)" "… saying so"
is "$(snapshot)" "$before" "… and changes nothing"
rm "$old/var/stub/running"

out=$(PATH="$old/bin:$PATH" PYTHONPATH="$old-old/lib/python" ou binaries install "$t/good.zip" 2>&1); rc=$?
is "$rc" 0 "binaries install good.zip: $out"
is "$(readlink "$old")" "$rel" "OMERO.server is now a symlink to the versioned directory (relative, as ln -s)"
is "$(cat "$old-old/VERSION")" "5.4.10" "the old tree is kept as OMERO.server-old"
is "$(cat "$old/VERSION")" "5.6.3" "OMERO.server/ is the new release"
cmp -s "$old-old/etc/grid/config.xml" "$old/etc/grid/config.xml"; ok $? "config.xml copied"
is "$(stat -c '%a %u:%g' "$old/etc/grid/config.xml")" "640 65534:65534" "… with its mode and owner"
like "$out" "lib/scripts/omero/custom/My_Script.py exists only in the old server" "the added script is reported"
like "$out" "lib/scripts/omero/util_scripts/Combine_Images.py differs" "the changed script is reported"
unlike "$out" "\.git" "lib/scripts/.git is not compared"
[ ! -e "$old/lib/scripts/omero/custom/My_Script.py" ]; ok $? "… and not carried without --carry-scripts"
like "$out" "PYTHONPATH still points into the old server tree: $old-old/lib/python" "PYTHONPATH into the old tree: warned"
unlike "$out" "warning: PATH still points" "PATH through the OMERO.server symlink: no warning"
state=$opt/.omero-upgrade-binaries.json
is "$(jq -r '.previous, .current, .previous_was_directory' "$state" | tr '\n' ' ')" "$old-old $opt/$rel true " \
  "the state file records the previous and the new tree"
is "$(ls -A "$opt" | grep -c omero-upgrade-extract)" 0 "no temp extraction directory left"

out=$(ou binaries install --carry-scripts "$t/good.zip" 2>&1); rc=$?
is "$rc" 0 "install again with --carry-scripts: $out"
like "$out" "already points to $opt/$rel" "… the swap is not repeated"
cmp -s "$old-old/lib/scripts/omero/custom/My_Script.py" "$old/lib/scripts/omero/custom/My_Script.py"; ok $? "… the added script is carried"
is "$(stat -c %a "$old/lib/scripts/omero/custom/My_Script.py")" 750 "… with its mode"
like "$out" "is already the old server's config.xml" "… config.xml already there"
is "$(jq -r .previous "$state")" "$old-old" "… the state file still knows the old tree"
j=$(ou --json binaries install --carry-scripts "$t/good.zip")
is "$(jq -r '.exit_code, (.result.scripts.added | length), .result.swapped' <<<"$j" | tr '\n' ' ')" "0 0 false " \
  "a third run: nothing left to carry, nothing swapped (--json)"

# ---- rollback ------------------------------------------------------------------------------------
out=$(ou binaries rollback --dry-run 2>&1); rc=$?
is "$rc" 0 "rollback --dry-run"
is "$(readlink "$old")" "$rel" "… changes nothing"
out=$(ou binaries rollback 2>&1); rc=$?
is "$rc" 0 "rollback: $out"
is "$(readlink "$old")" "OMERO.server-old" "OMERO.server points back to the old tree"
[ -d "$opt/$rel" ]; ok $? "… and the new tree is kept"
out=$(ou binaries rollback 2>&1); rc=$?
is "$rc" 0 "rollback again is safe"
like "$out" "already points to the previous tree" "… nothing to do"

out=$(ou binaries install "$t/good.zip" 2>&1); rc=$?
is "$rc" 0 "install after rollback reuses the extracted tree"
like "$out" "exists already \(extracted before\): using it" "… saying so"
is "$(readlink "$old")" "$rel" "… and points the symlink at it again"

# ---- an upgrade from a symlinked server, from a directory beside it -------------------------------
make_sample_server "$opt/OMERO.server-5.6.4" 5.6.4
rm "$opt/OMERO.server-5.6.4/etc/grid/config.xml"
out=$(ou binaries install "$opt/OMERO.server-5.6.4" 2>&1); rc=$?
is "$rc" 0 "install from a directory, the server being a symlink: $out"
is "$(readlink "$old")" "OMERO.server-5.6.4" "the symlink is repointed"
[ -d "$opt/$rel" ] && [ -d "$old-old" ]; ok $? "both older trees are kept"
cmp -s "$opt/$rel/etc/grid/config.xml" "$old/etc/grid/config.xml"; ok $? "config.xml comes from the previous tree"
is "$(jq -r '.previous' "$state")" "$opt/$rel" "the state file now names the 5.6.3 tree as previous"
ou binaries rollback >/dev/null 2>&1
is "$(readlink "$old")" "$rel" "rollback goes back to 5.6.3"

# The symlink changed by hand: rollback refuses to guess.
ln -sfn OMERO.server-old "$old"
out=$(ou binaries rollback 2>&1); rc=$?
is "$rc" 1 "rollback refuses when the symlink was changed by hand"
like "$out" "not to what binaries install made it point to" "… saying why"

# A plain directory with OMERO.server-old in the way.
make_sample_server "$t/opt2/OMERO.server" 5.4.10
mkdir "$t/opt2/OMERO.server-old"
out=$("$TOOL" --server-dir "$t/opt2/OMERO.server" binaries install "$t/good.zip" 2>&1); rc=$?
is "$rc" 2 "refused when OMERO.server-old exists"
like "$out" "OMERO.server-old already exists" "… saying so"
[ -d "$t/opt2/OMERO.server" ] && [ ! -L "$t/opt2/OMERO.server" ] && [ ! -e "$t/opt2/$rel" ]; ok $? "… before touching anything"

out=$(ou binaries install "$t/nothing.zip" 2>&1); rc=$?
is "$rc" 2 "a missing archive: exit 2"
echo "not a zip" > "$t/junk.zip"
out=$(ou binaries install "$t/junk.zip" 2>&1); rc=$?
is "$rc" 2 "a file that is no archive: exit 2"
like "$out" "cannot read the archive" "… with a clear message"
done_testing
