#!/usr/bin/env bash
# Truncated release archives (issue 13 item 4): a zip made the way OMERO.server zips are made
# (a sample server, stored and deflated members, symlinks as links), and the same tree as a
# .tar.gz, are cut at many offsets: inside the first local header, inside a member's name and
# data, between members, inside every central directory record, inside the end record, one byte
# short; and the zip with a damaged local header (its central directory intact) at every member.
# On each, `binaries install` and `check --new-server` (which reads the archive through the same
# code: a zip through its central directory, every entry checked) never die of a signal
# (libarchive's archive_error_string() returns NULL on a damaged local header: that was a
# SIGSEGV), exit 2 with a clear message naming the archive, install nothing and leave the old
# tree untouched. A zip cut inside its central directory once passed check (the entries before
# the cut read by streaming their local headers) while install refused it.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
log=$(mktemp "$OU_TMP/59-log.XXXXXX")
db=ou_t59
fixture_db "$db" --version OMERO5.3__1
opt=$t/opt
srv=$opt/OMERO.server
make_sample_server "$srv" 5.4.10 "$db" "$(psql -X -A -t -c "select current_user" -d postgres)"
"$srv/bin/omero" admin status >/dev/null 2>&1   # the stub's first call creates var/stub
ou() { timeout 60 "$TOOL" --server-dir "$srv" --log-file "$log" "$@"; }

src=$t/src
top=OMERO.server-5.6.3-ice36-b228
mkdir -p "$src"
make_sample_server "$src/$top" 5.6.3
rm -r "$src/$top/etc/grid/config.xml" "$src/$top/var"
# Members with real data: a compressible jar-sized file (deflated) and an incompressible one
# (stored), so that cuts fall inside compressed data and inside stored data.
mkdir -p "$src/$top/lib/server"
perl -e 'print "omero.class.Entry$_ = value $_\n" for 1..20000' > "$src/$top/lib/server/blitz.properties"
head -c 65536 /dev/urandom > "$src/$top/lib/server/blitz.jar"
ln -s server/blitz.jar "$src/$top/lib/blitz-link.jar"
make_server_zip "$src/$top" "$src/full.zip"
(cd "$src" && tar -czf "$src/full.tar.gz" "$top")

# Every path below $t but the sources and the stub's call records, with type, size and mtime
# (a directory's mtime left out: a staging directory made and removed beside the server is not
# an installation; what it held would show).
snapshot() { (cd "$t" && find . -path ./src -prune -o -path '*/var/stub' -prune -o -print | LC_ALL=C sort | xargs -d '\n' stat -c '%n %F %s %Y' 2>/dev/null | sed 's/^\(.* directory [0-9]*\) [0-9]*$/\1/'); }
before=$(snapshot)

# The sanity of the fixture: the whole archives install-check fine (so that a refusal below is
# the truncation's doing); checked with check --new-server, which extracts nothing.
for full in full.zip full.tar.gz; do
  out=$(ou check --new-server "$src/$full" 2>&1); rc=$?
  unlike "$out" "cannot read the archive|extracting .* failed|not an OMERO.server" "the whole $full reads fine in check --new-server"
  ok $((rc < 2 ? 0 : 1)) "… exit $rc (0 or 1)"
done
is "$(snapshot)" "$before" "check --new-server on the whole archives changes nothing"

# Offsets in the zip: every local header (+1, +20, inside its name, +40 = past the name, inside
# the data), every central directory record (+1, +30, +46 = inside its name), the end record
# (+4, +12, +20), and a spread over the file.
zip_cuts() {
  perl -e '
    local $/; open my $f, "<", $ARGV[0] or die; binmode $f; my $d = <$f>; my $n = length $d; my %c;
    while ($d =~ /PK\x03\x04/g) { my $o = pos($d) - 4; my ($nl, $el) = unpack "v v", substr($d, $o + 26, 4);
      my $cs = unpack "V", substr($d, $o + 18, 4); my $data = $o + 30 + $nl + $el;
      $c{$_} = 1 for $o, $o + 1, $o + 20, $o + 30 + int($nl / 2), $data, $data + int($cs / 2), $data + $cs - 1 }
    my $e = rindex $d, "PK\x05\x06"; my $cd = unpack "V", substr($d, $e + 16, 4);
    pos($d) = $cd; while ($d =~ /PK\x01\x02/g) { my $o = pos($d) - 4; $c{$_} = 1 for $o, $o + 1, $o + 30, $o + 46 + 3 }
    $c{$_} = 1 for $e, $e + 4, $e + 12, $e + 20, $n - 1, 1, 2, 3, 4, 22;
    $c{int($n * $_ / 16)} = 1 for 1..15;
    print join("\n", sort { $a <=> $b } grep { $_ > 0 && $_ < $n } keys %c), "\n"' "$1"
}
# Every local header (the central directory's records left intact).
zip_locals() { perl -e 'local $/; open my $f, "<", $ARGV[0] or die; binmode $f; my $d = <$f>; my $e = rindex $d, "PK\x05\x06";
  my $cd = unpack "V", substr($d, $e + 16, 4); while ($d =~ /PK\x03\x04/g) { print pos($d) - 4, "\n" if pos($d) - 4 < $cd }' "$1"; }
tgz_cuts() { local n; n=$(stat -c %s "$1"); for i in 1 2 10 11 $(seq 1 15 | while read -r k; do echo $((n * k / 16)); done) $((n - 8)) $((n - 4)) $((n - 1)); do echo "$i"; done; }

# The case check once let through: cut inside the central directory, every member before it whole.
cd_at=$(perl -e 'local $/; open my $f, "<", $ARGV[0] or die; binmode $f; my $d = <$f>; print unpack "V", substr($d, rindex($d, "PK\x05\x06") + 16, 4)' "$src/full.zip")
head -c $((cd_at + 100)) "$src/full.zip" > "$src/cd-cut.zip"
for cmd in "check --new-server" "binaries install"; do
  # shellcheck disable=SC2086
  out=$(ou $cmd "$src/cd-cut.zip" 2>&1); rc=$?
  is "$rc" 2 "$cmd on the zip cut inside its central directory (at $((cd_at + 100))): exit 2"
  like "$out" "cannot read the archive $src/cd-cut.zip: a zip without its central directory .*truncated" "… it says the zip is truncated"
done
rm "$src/cd-cut.zip"

signals=0 unclear=0 rc_other=0 changed=0 cases=0
for full in full.zip full.tar.gz damaged.zip; do
  size=$(stat -c %s "$src/${full/damaged/full}")
  case $full in
    full.zip) cuts=$(zip_cuts "$src/$full") what="cut offsets" ;;
    full.tar.gz) cuts=$(tgz_cuts "$src/$full") what="cut offsets" ;;
    damaged.zip) cuts=$(zip_locals "$src/full.zip") what="local headers to damage" ;;
  esac
  ncuts=$(echo "$cuts" | wc -l)
  ok $((ncuts >= 20 ? 0 : 1)) "$full ($size bytes): $ncuts $what"
  ext=.${full#*.}
  for cut in $cuts; do
    cut_file=$src/cut-$cut$ext
    if [ "$full" = damaged.zip ]; then
      # 16 bytes of 0xff over the header's fields after its signature (version, flags, method,
      # time, crc, sizes): the entries are listed whole in the central directory, but reading
      # the member fails.
      perl -e 'local $/; open my $f, "<", $ARGV[0] or die; binmode $f; my $d = <$f>; substr($d, $ARGV[1] + 4, 16) = "\xff" x 16;
        binmode STDOUT; print $d' "$src/full.zip" "$cut" > "$cut_file"
    else
      head -c "$cut" "$src/$full" > "$cut_file"
    fi
    for cmd in "binaries install" "check --new-server"; do
      cases=$((cases + 1))
      # shellcheck disable=SC2086
      out=$(ou $cmd "$cut_file" 2>&1); rc=$?
      if [ "$rc" -ge 128 ]; then signals=$((signals + 1)); diag "$cmd on $full cut at $cut: rc $rc (a signal): $out"
      elif [ "$rc" -ne 2 ]; then rc_other=$((rc_other + 1)); diag "$cmd on $full cut at $cut: rc $rc, not 2: $out"
      elif ! [[ $out =~ (cannot\ read\ the\ archive|extracting\ |is\ not\ an\ OMERO.server|not\ a\ zip|not\ an\ archive).*$cut_file|$cut_file.*(truncated|damaged|unreadable|not\ an\ OMERO.server) ]]; then
        unclear=$((unclear + 1)); diag "$cmd on $full cut at $cut: unclear message: $out"
      fi
      now=$(snapshot)
      if [ "$now" != "$before" ]; then changed=$((changed + 1)); diag "$cmd on $full cut at $cut changed the trees:"; diag "$(diff <(echo "$before") <(echo "$now") | head -20)"; fi
    done
    rm -f "$cut_file"
  done
done
is "$signals" 0 "no run of the $cases died of a signal (rc >= 128)"
is "$rc_other" 0 "every run exited 2 (could not run)"
is "$unclear" 0 "every run said clearly that the archive cannot be read, naming it"
is "$changed" 0 "no run installed anything or touched the old tree"
is "$(readlink "$srv" 2>/dev/null)" "" "the server directory is still the old real directory"
is "$(cat "$srv/VERSION")" "5.4.10" "… holding the old release"
ok "$([ -z "$(ls -A "$opt" | grep -v '^OMERO.server$')" ]; echo $?)" "nothing else beside it: $(ls -A "$opt" | tr '\n' ' ')"

# A zip whose local headers disagree with its central directory (each copy intact on its own):
# libarchive lists the members from the central directory but takes a member's name and sizes from
# its local header, so a local name unlike the central one once installed under the local name,
# and a data-descriptor flag set in the local header alone went through. Every disagreement is
# refused before anything is read; so are members overlapping one another (one member's bytes read
# as two) and a member that is not where the central directory says.
member_at() { perl -e 'local $/; open my $f, "<", $ARGV[0] or die; binmode $f; my $d = <$f>; my $o = -1;
  while (($o = index($d, "PK\x03\x04", $o + 1)) >= 0) { my ($nl) = unpack "v", substr($d, $o + 26, 2);
    if (substr($d, $o + 30, $nl) =~ /\Q$ARGV[1]\E$/) { print $o; exit } }' "$1" "$2"; }
lh=$(member_at "$src/full.zip" lib/server/blitz.properties)
ok "$([ -n "$lh" ]; echo $?)" "the local header of lib/server/blitz.properties is at $lh"
damage() {  # $1 what, $2 output
  perl -e 'local $/; open my $f, "<", $ARGV[0] or die; binmode $f; my $d = <$f>; my ($o, $w) = @ARGV[1, 2];
    my ($nl, $el) = unpack "v v", substr($d, $o + 26, 4);
    if ($w eq "signature") { substr($d, $o, 2) = "XX" }
    elsif ($w eq "name") { substr($d, $o + 30 + $nl - 5, 1) = "X" }
    elsif ($w eq "flags") { substr($d, $o + 6, 2) = pack "v", (unpack("v", substr($d, $o + 6, 2)) | 8) }
    elsif ($w eq "method") { substr($d, $o + 8, 2) = "\x00\x00" }
    elsif ($w eq "crc") { substr($d, $o + 14, 4) = "\x01\x02\x03\x04" }
    elsif ($w eq "csize") { substr($d, $o + 18, 4) = pack "V", 16 }
    elsif ($w eq "usize") { substr($d, $o + 22, 4) = pack "V", 16 }
    elsif ($w eq "overlap") { substr($d, $o + 28, 2) = pack "v", $el + 4 }
    binmode STDOUT; print $d' "$src/full.zip" "$lh" "$1" > "$2"
}
for w in signature name flags method crc csize usize overlap; do
  z=$src/local-$w.zip
  damage "$w" "$z"
  ok "$(cmp -s "$z" "$src/full.zip"; [ $? -eq 1 ]; echo $?)" "local-$w.zip differs from full.zip"
  for cmd in "binaries install" "check --new-server"; do
    # shellcheck disable=SC2086
    out=$(ou $cmd "$z" 2>&1); rc=$?
    is "$rc" 2 "$cmd on a zip whose local header of blitz.properties has another $w: exit 2"
    like "$out" "cannot read the archive $z: a damaged or inconsistent zip: .*blitz.properties" "… naming the archive and the member"
  done
  is "$(snapshot)" "$before" "… nothing installed, the old tree untouched"
  rm -f "$z"
done
# Sound zips of other makers still install: one streamed (data descriptors, as Java's and
# streaming zippers write), one forced to zip64 fields, one behind a self-extractor stub (every
# offset shifted), one written by Python's zipfile.
# (Python's zipfile writes data descriptors when its output cannot seek; symlinks left out.)
(cd "$src" && python3 -c '
import os, sys, zipfile
with zipfile.ZipFile(sys.stdout.buffer, "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk(sys.argv[1]):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p): z.write(p)
' "$top" | cat > "$src/stream.zip")
(cd "$src" && zip -q -r -y -fz "$src/zip64.zip" "$top")
{ printf '#!/bin/sh\necho a self-extractor stub\nexit 0\n'; cat "$src/full.zip"; } > "$src/sfx.zip"
(cd "$src" && python3 -c '
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk(sys.argv[2]):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p): z.write(p)
' "$src/python.zip" "$top")
ok "$(LC_ALL=C zipinfo -v "$src/stream.zip" | grep -q 'extended local header: *yes'; echo $?)" "stream.zip has data descriptors"
for z in stream zip64 sfx python; do
  out=$(ou check --new-server "$src/$z.zip" 2>&1); rc=$?
  unlike "$out" "cannot read the archive|inconsistent" "check --new-server reads $z.zip"
  ok $((rc < 2 ? 0 : 1)) "… exit $rc (0 or 1)"
done
is "$(snapshot)" "$before" "… and changes nothing"
cp -a "$srv" "$t/srv-copy"
out=$(timeout 60 "$TOOL" --server-dir "$t/srv-copy" binaries install "$src/stream.zip" 2>&1); rc=$?
is "$rc" 0 "binaries install of the streamed zip (data descriptors): exit 0"
[ "$rc" -eq 0 ] || diag "$out"
cmp -s "$t/srv-copy/lib/server/blitz.jar" "$src/$top/lib/server/blitz.jar"; ok $? "… its members installed whole"

done_testing
