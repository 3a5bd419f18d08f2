#!/usr/bin/env bash
# binaries install against hostile archives and trees (issue 13 item 4, issue 14), on real zip and
# tar archives and real directory trees beside a sample server (stub bin/omero):
#   - symlinks that climb to the archive's root (TOP/etc -> .., TOP/etc/grid ->
#     ../../OMERO.server-old/lib, TOP/lib/scripts -> ../..) are refused; a directory given with
#     the same links is refused before anything is repointed: config.xml (with the password) and
#     --carry-scripts files are never written outside the new tree;
#   - the archive is opened once, as a regular file: a fifo, a device, is refused (without
#     hanging); an archive swapped (renamed over, or rewritten in place) between the check and the
#     extraction installs nothing unchecked (no block device);
#   - hard links to anything but an earlier regular file of the archive are refused;
#   - a truncated zip is a clear error (no crash), in binaries install and db plan;
#   - names the tool uses itself (OMERO.server-old, .omero-upgrade-binaries.json, the link) are
#     refused before anything is extracted;
#   - an archive or directory that is not an OMERO.server (no bin/omero, no sql/psql) is refused
#     before anything is extracted or repointed.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
log=$(mktemp "$OU_TMP/56-log.XXXXXX")
opt=$t/opt
srv=$opt/OMERO.server
make_sample_server "$srv" 5.4.10
sample_config "$srv" "omero.db.name=omero" "omero.db.user=omero" "omero.db.pass=S3cret-56"
mkdir -p "$srv/lib/scripts/omero/custom"
echo "# a site's own script" > "$srv/lib/scripts/omero/custom/My_Script.py"
# The stub bin/omero, wrapped: `admin status` (run between the archive's check and its
# extraction, to see that the server is stopped) first runs $t/src/between once when it exists
# (in $t/src, outside the snapshot: removing it changes no mtime that is compared).
wrap_stub() {
  mv "$1/bin/omero" "$1/bin/omero.stub"
  cat > "$1/bin/omero" <<EOF
#!/usr/bin/env bash
if [ "\$1 \$2" = "admin status" ] && [ -f "$t/src/between" ]; then bash "$t/src/between"; rm -f "$t/src/between"; fi
exec "\$(dirname "\$0")/omero.stub" "\$@"
EOF
  chmod 755 "$1/bin/omero"
}
wrap_stub "$srv"
"$srv/bin/omero" admin status >/dev/null 2>&1   # the stub's first call creates var/stub
ou() { timeout 60 "$TOOL" --server-dir "$srv" --log-file "$log" "$@"; }

src=$t/src   # archives and their staging trees (not part of the snapshot)
top=OMERO.server-5.9.9-ice36-b1
mkdir -p "$src/pristine"
make_sample_server "$src/pristine/$top" 5.9.9
rm -r "$src/pristine/$top/etc/grid/config.xml" "$src/pristine/$top/var"
wrap_stub "$src/pristine/$top"
stage() { rm -rf "$src/stage"; mkdir -p "$src/stage"; cp -a "$src/pristine/$top" "$src/stage/$top"; }
zipit() { (cd "$src/stage" && zip -q -r -y "$src/$1" "$2"); }
# tar NAME [perl statements adding entries to $t]: the staged tree (symlinks as symlinks), plus
# entries built by Archive::Tar (block devices, hard links) that need no real file.
tarit() {
  local name=$1 extra=${2:-}
  (cd "$src/stage" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort > "$src/list" &&
   EXTRA=$extra OUT=$src/$name perl -MArchive::Tar -e '
     my $t = Archive::Tar->new; chomp(my @f = `cat '"$src/list"'`); $t->add_files(@f);
     eval $ENV{EXTRA}; die $@ if $@; $t->write($ENV{OUT}) or die $t->error')
}
# Every path below $t but the sources and the stub's call records, with type, size and mtime.
snapshot() { (cd "$t" && find . -path ./src -prune -o -path '*/var/stub' -prune -o -print | LC_ALL=C sort | xargs -d '\n' stat -c '%n %F %s %Y' 2>/dev/null); }
no_secret_outside() {  # the password appears nowhere below $t but in the old server's config.xml
  grep -rl "S3cret-56" "$t" --exclude-dir=src 2>/dev/null | grep -v -e "^$srv/etc/grid/config.xml$" -e "^$srv-old/etc/grid/config.xml$"
}

# ---- symlinks that climb to the archive's root --------------------------------------------------
stage; rm -r "$src/stage/$top/etc"; ln -s .. "$src/stage/$top/etc"; zipit climb-etc.zip "$top"
stage; rm -r "$src/stage/$top/etc/grid"; ln -s ../../OMERO.server-old/lib "$src/stage/$top/etc/grid"; zipit climb-grid.zip "$top"
stage; rm -r "$src/stage/$top/lib/scripts"; ln -s ../.. "$src/stage/$top/lib/scripts"; tarit climb-scripts.tar
# "inside the root" on the way only: a -> ../TOP/bin names another place once TOP is renamed
stage; ln -s "../$top/bin" "$src/stage/$top/a"; zipit climb-back.zip "$top"
like "$(unzip -Z "$src/climb-etc.zip" "$top/etc")" '^l' "climb-etc.zip holds $top/etc as a symlink"

before=$(snapshot)
for case in "climb-etc.zip:$top/etc: symlink pointing outside the archive \(\.\.\), or above its top directory $top" \
            "climb-grid.zip:$top/etc/grid: symlink pointing outside the archive \(\.\./\.\./OMERO.server-old/lib\), or above its top directory $top" \
            "climb-scripts.tar:$top/lib/scripts: symlink pointing outside the archive \(\.\./\.\.\), or above its top directory $top" \
            "climb-back.zip:$top/a: symlink pointing outside"; do
  name=${case%%:*} want=${case#*:}
  out=$(ou binaries install --carry-scripts "$src/$name" 2>&1); rc=$?
  is "$rc" 1 "$name is refused (exit 1)"
  like "$out" "unsafe archive entry: $want" "… because of: $want"
  is "$(snapshot)" "$before" "… and nothing was written anywhere (server, its parent, outside)"
done

# ---- the same links in a directory given as the new server -------------------------------------
for d in etc grid scripts; do cp -a "$src/pristine/$top" "$opt/new-$d"; done
rm -r "$opt/new-etc/etc"; ln -s .. "$opt/new-etc/etc"
rm -r "$opt/new-grid/etc/grid"; ln -s ../../OMERO.server-old/lib "$opt/new-grid/etc/grid"
rm -r "$opt/new-scripts/lib/scripts"; ln -s ../.. "$opt/new-scripts/lib/scripts"
before=$(snapshot)
for case in "new-etc:$opt/new-etc/etc is a symlink" "new-grid:$opt/new-grid/etc/grid is a symlink" \
            "new-scripts:$opt/new-scripts/lib/scripts is a symlink"; do
  name=${case%%:*} want=${case#*:}
  out=$(ou binaries install --carry-scripts "$opt/$name" 2>&1); rc=$?
  is "$rc" 2 "directory $name is refused (exit 2)"
  like "$out" "not safe to write into: $want: refusing to write through it.*nothing was repointed" "… saying why"
  is "$(snapshot)" "$before" "… before anything is moved, repointed or copied"
done
[ -d "$srv" ] && [ ! -L "$srv" ] && [ ! -e "$srv-old" ]; ok $? "OMERO.server is still the plain directory"
[ ! -e "$opt/grid" ] && [ ! -e "$t/omero" ]; ok $? "no config.xml beside the server, no carried script above it"
is "$(no_secret_outside)" "" "the password is in no file but the old server's config.xml"

# ---- the archive is a regular file, opened once --------------------------------------------------
mkfifo "$src/fifo.zip"
before=$(snapshot)
out=$(ou binaries install "$src/fifo.zip" 2>&1); rc=$?
is "$rc" 2 "a fifo given as the archive: exit 2 (and no hang)"
like "$out" "cannot read the archive $src/fifo.zip: it is a fifo, not a regular file" "… saying why"
out=$(ou binaries install /dev/null 2>&1); rc=$?
is "$rc" 2 "a device given as the archive: exit 2"
like "$out" "it is a device, not a regular file" "… saying why"
out=$(ou status --new-server "$src/fifo.zip" 2>&1); rc=$?
is "$rc" 2 "status --new-server FIFO (the plan of run): exit 2 (no hang)"
like "$out" "it is a fifo, not a regular file" "… saying why"
is "$(snapshot)" "$before" "nothing written"

# A good tar, and an evil one with the same top directory and a block device.
stage; tarit good.tar
tarit evil.tar '$t->add_data("'"$top"'/lib/sda", "", {type => Archive::Tar::Constant::BLOCKDEV, devmajor => 7, devminor => 0, mode => 0644})'
like "$(tar -tvf "$src/evil.tar" | grep sda)" '^b' "evil.tar holds a block device"
out=$(ou binaries install --dry-run "$src/evil.tar" 2>&1); rc=$?
is "$rc" 1 "evil.tar on its own is refused"
like "$out" "unsafe archive entry: $top/lib/sda: device file" "… for its device"
# Swapped between the check and the extraction: the checked bytes are the ones installed.
cp "$src/good.tar" "$src/swap.tar"
echo "mv -f '$src/evil.tar' '$src/swap.tar'" > "$t/src/between"
out=$(ou binaries install "$src/swap.tar" 2>&1); rc=$?
is "$rc" 0 "an archive renamed over between check and extraction: the checked one is installed: $out"
[ ! -e "$t/src/between" ]; ok $? "… (the swap did happen, between the two)"
is "$(find "$t" -path "$src" -prune -o -type b -print)" "" "… no block device anywhere"
is "$(readlink "$srv")" "$top" "… OMERO.server points to the new tree"
cmp -s "$srv-old/etc/grid/config.xml" "$srv/etc/grid/config.xml"; ok $? "… config.xml copied into it"
is "$(no_secret_outside | grep -v "^$opt/$top/etc/grid/config.xml$")" "" \
  "… and the password in no other file"
# Rewritten in place (same file, other bytes) between the two: refused, nothing repointed.
stage; top2=OMERO.server-5.9.10; mv "$src/stage/$top" "$src/stage/$top2"
tarit good2.tar
tarit evil2.tar '$t->add_data("'"$top2"'/bin/sda", "", {type => Archive::Tar::Constant::BLOCKDEV, devmajor => 7, devminor => 0})'
cp "$src/good2.tar" "$src/inplace.tar"
"$srv/bin/omero" admin status >/dev/null 2>&1   # the new tree's stub makes its var/stub
echo "cat '$src/evil2.tar' > '$src/inplace.tar'" > "$t/src/between"
before=$(snapshot)
out=$(ou binaries install "$src/inplace.tar" 2>&1); rc=$?
is "$rc" 2 "an archive rewritten in place between check and extraction: exit 2"
like "$out" "extracting $src/inplace.tar failed: (the archive changed since it was checked|unsafe entry met while extracting)" "… saying so"
# (the temp dir made and removed in $opt changed its mtime: that line aside)
is "$(snapshot | grep -v '^\./opt directory ')" "$(grep -v '^\./opt directory ' <<<"$before")" \
  "… nothing left (no tree, no temp dir), nothing repointed"
is "$(find "$t" -path "$src" -prune -o -type b -print)" "" "… no block device anywhere"

# ---- hard links ------------------------------------------------------------------------------------
stage
tarit hl-abs.tar '$t->add_data("'"$top"'/lib/passwd", "", {type => Archive::Tar::Constant::HARDLINK, linkname => "/etc/passwd"})'
tarit hl-missing.tar '$t->add_data("'"$top"'/lib/x", "", {type => Archive::Tar::Constant::HARDLINK, linkname => "'"$top"'/nothere"})'
tarit hl-dir.tar '$t->add_data("'"$top"'/lib/d", "", {type => Archive::Tar::Constant::HARDLINK, linkname => "'"$top"'/bin"})'
ln -s bin "$src/stage/$top/b"
tarit hl-through.tar '$t->add_data("'"$top"'/lib/h", "", {type => Archive::Tar::Constant::HARDLINK, linkname => "'"$top"'/b/omero"})'
rm "$src/stage/$top/b"
tarit hl-good.tar '$t->add_data("'"$top"'/bin/omero2", "", {type => Archive::Tar::Constant::HARDLINK, linkname => "'"$top"'/bin/omero"})'
before=$(snapshot)
for case in "hl-abs:hard link to a path outside the archive \(/etc/passwd\)" \
            "hl-missing:$top/lib/x: hard link to $top/nothere, which is not an earlier regular file" \
            "hl-dir:$top/lib/d: hard link to $top/bin, which is not an earlier regular file" \
            "hl-through:hard link through the symlink $top/b"; do
  name=${case%%:*} want=${case#*:}
  out=$(ou binaries install "$src/$name.tar" 2>&1); rc=$?
  is "$rc" 1 "$name.tar is refused (exit 1)"
  like "$out" "unsafe archive entry: .*$want" "… because of: $want"
done
is "$(snapshot)" "$before" "… and nothing was written"
out=$(ou binaries install --dry-run --name OMERO.server-hl "$src/hl-good.tar" 2>&1); rc=$?
is "$rc" 0 "a hard link to an earlier file of the archive is fine (--dry-run)"
like "$out" "all safe; would extract it" "… says so"

# ---- a truncated zip ------------------------------------------------------------------------------
stage; zipit full.zip "$top"
size=$(stat -c %s "$src/full.zip")
for cut in $((size / 2)) 100; do
  head -c "$cut" "$src/full.zip" > "$src/trunc.zip"
  out=$(ou binaries install "$src/trunc.zip" 2>&1); rc=$?
  is "$rc" 2 "a zip truncated to $cut of $size bytes: exit 2, no crash"
  like "$out" "cannot read the archive $src/trunc.zip|extracting $src/trunc.zip failed" "… a clear message: $out"
  out=$(ou status --new-server "$src/trunc.zip" 2>&1); rc=$?
  is "$rc" 2 "status --new-server on it (the plan of run): exit 2, no crash"
  like "$out" "cannot read the archive $src/trunc.zip" "… a clear message"
  is "$(snapshot)" "$before" "… nothing left behind"
done

# ---- names the tool uses itself ---------------------------------------------------------------------
for clash in OMERO.server-old .omero-upgrade-binaries.json OMERO.server; do
  stage; mv "$src/stage/$top" "$src/stage/$clash"; zipit "clash$clash.zip" "$clash"
  out=$(ou binaries install "$src/clash$clash.zip" 2>&1); rc=$?
  is "$rc" 2 "an archive whose top directory is $clash: exit 2"
  like "$out" "cannot use '$clash' as the name of the new server directory: omero-upgrade uses $opt/$clash itself.*nothing was extracted" "… saying why"
  is "$(snapshot)" "$before" "… before anything is extracted"
done
stage; zipit plain.zip "$top"
out=$(ou binaries install --name OMERO.server-old "$src/plain.zip" 2>&1); rc=$?
is "$rc" 2 "--name OMERO.server-old: exit 2"
like "$out" "cannot use 'OMERO.server-old'" "… saying why"
is "$(snapshot)" "$before" "… before anything is extracted"

# ---- not an OMERO.server -------------------------------------------------------------------------------
stage; rm -r "$src/stage/$top/sql"; zipit nosql.zip "$top"
stage; rm -r "$src/stage/$top/sql" "$src/stage/$top/bin"; zipit nothing.zip "$top"
out=$(ou binaries install "$src/nosql.zip" 2>&1); rc=$?
is "$rc" 2 "an archive with bin/omero but no sql/psql: exit 2"
like "$out" "$src/nosql.zip is not an OMERO.server: it holds no $top/sql/psql; nothing was extracted" "… saying why"
out=$(ou binaries install "$src/nothing.zip" 2>&1); rc=$?
is "$rc" 2 "an archive with neither: exit 2"
like "$out" "is not an OMERO.server: it holds no $top/bin/omero and no $top/sql/psql" "… naming both"
cp -a "$src/pristine/$top" "$opt/nosql"; rm -r "$opt/nosql/sql"
before=$(snapshot)
out=$(ou binaries install "$opt/nosql" 2>&1); rc=$?
is "$rc" 2 "a directory with bin/omero but no sql/psql: exit 2"
like "$out" "$opt/nosql is not an OMERO.server: it has no sql/psql; nothing was changed" "… saying why"
is "$(snapshot)" "$before" "… nothing extracted, nothing repointed"
is "$(readlink "$srv")" "$top" "OMERO.server still points to the installed tree"
done_testing
