#!/usr/bin/env bash
# binaries install ARCHIVE [--name X] and an existing directory X beside the server (issue 13):
# X is used again only when binaries install extracted it there from this same archive (the
# binaries record holds the archive's SHA-256 and bin/omero's as extracted). Attacks: a hostile X
# planted before the first install (the archive's top directory name, its own bin/omero); an X
# extracted by the tool whose bin/omero was replaced since; an X extracted from another archive of
# the same top directory, given by --name. Each is refused with a clear message, nothing changed
# (the symlink, X, the record); the fix --name gives a fresh directory, which works. An install,
# rollback and the same install again still reuse the tree the tool extracted.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
opt=$t/opt
old=$opt/OMERO.server
make_sample_server "$opt/OMERO.server-5.4.10" 5.4.10
ln -s OMERO.server-5.4.10 "$old"
rel=OMERO.server-5.6.3-ice36-b228
mkdir -p "$t/build"
make_sample_server "$t/build/$rel" 5.6.3
rm "$t/build/$rel/etc/grid/config.xml"
make_server_zip "$t/build/$rel" "$t/good.zip"
ou() { "$TOOL" --server-dir "$old" "$@"; }
state=$opt/.omero-upgrade-binaries.json
snap() { (cd "$opt" && find . -path '*/var/stub' -prune -o -print | sort | xargs -d '\n' stat -c '%n %F %s %Y' 2>/dev/null; readlink OMERO.server; cat .omero-upgrade-binaries.json 2>/dev/null) | md5sum; }

# --- a hostile X planted where the archive would be extracted --------------------------------
cp -a "$t/build/$rel" "$opt/$rel"
printf '#!/bin/sh\necho pwned > "%s/pwned"\n' "$t" > "$opt/$rel/bin/omero"
chmod 755 "$opt/$rel/bin/omero"
before=$(snap)
out=$(ou binaries install "$t/good.zip" 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "a planted $rel (its own bin/omero): install refused (exit $rc)"
like "$out" "$opt/$rel exists already, but binaries install did not extract it" "… saying the tool did not extract it"
like "$out" "nothing was changed" "… that nothing was changed"
like "$out" "--name" "… and the fix: --name for a fresh directory"
is "$(snap)" "$before" "… the symlink, the planted tree and the record are as they were"
is "$(readlink "$old")" OMERO.server-5.4.10 "… OMERO.server still points to the old tree"
ok "$([ ! -e "$t/pwned" ]; echo $?)" "… and the planted bin/omero never ran"
out=$(ou binaries install "$t/good.zip" --dry-run 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "… --dry-run refuses the same (exit $rc)"
out=$(ou binaries install "$t/good.zip" --name "$rel-fresh" 2>&1); rc=$?
is "$rc" 0 "--name $rel-fresh: extracted there and installed"
[ "$rc" -eq 0 ] || diag "$out"
is "$(readlink "$old")" "$rel-fresh" "… OMERO.server points to it"
cmp -s "$t/build/$rel/bin/omero" "$opt/$rel-fresh/bin/omero"; ok $? "… with the archive's bin/omero"
is "$(jq -r --arg k "$opt/$rel-fresh" '.extracted[$k].archive_sha256' "$state")" "$(sha256sum "$t/good.zip" | cut -c1-64)" \
  "… the record holds the archive's SHA-256 for it"

# --- install, rollback, install again: the tree the tool extracted is used again ------------
out=$(ou binaries rollback 2>&1); rc=$?
is "$rc" 0 "binaries rollback"
out=$(ou binaries install "$t/good.zip" --name "$rel-fresh" 2>&1); rc=$?
is "$rc" 0 "the same archive again: installed"
like "$out" "exists already \(extracted before\): using it, as extracted from this archive \(sha256 $(sha256sum "$t/good.zip" | cut -c1-64)\)" "… reusing its own extraction"
is "$(readlink "$old")" "$rel-fresh" "… OMERO.server points to it again"

# --- that tree's bin/omero replaced since --------------------------------------------------
ou binaries rollback >/dev/null 2>&1
printf '#!/bin/sh\necho pwned > "%s/pwned"\n' "$t" > "$opt/$rel-fresh/bin/omero"
before=$(snap)
out=$(ou binaries install "$t/good.zip" --name "$rel-fresh" 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "its bin/omero replaced since the extraction: refused (exit $rc)"
like "$out" "its bin/omero changed since it was extracted" "… saying so"
is "$(snap)" "$before" "… nothing changed"
ok "$([ ! -e "$t/pwned" ]; echo $?)" "… the replaced bin/omero never ran"

# --- an X extracted from another archive of the same top directory -------------------------
make_sample_server "$t/build2/$rel" 5.6.3
rm "$t/build2/$rel/etc/grid/config.xml"
echo "# another build" >> "$t/build2/$rel/bin/omero"
make_server_zip "$t/build2/$rel" "$t/other.zip"
out=$(ou binaries install "$t/other.zip" --name "$rel-other" 2>&1); rc=$?
is "$rc" 0 "another archive, into $rel-other: installed"
ou binaries rollback >/dev/null 2>&1
before=$(snap)
out=$(ou binaries install "$t/good.zip" --name "$rel-other" 2>&1); rc=$?
ok "$([ "$rc" -ne 0 ]; echo $?)" "good.zip into $rel-other (extracted from other.zip): refused (exit $rc)"
like "$out" "it was extracted from another archive \($t/other.zip, sha256 [0-9a-f]{64}\), not from this one" "… naming both"
is "$(snap)" "$before" "… nothing changed"
is "$(readlink "$old")" OMERO.server-5.4.10 "… OMERO.server still points to the old tree"

done_testing
