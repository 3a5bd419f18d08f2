#!/usr/bin/env bash
# make demo: a whole OMERO upgrade on sample data, on the throwaway cluster of
# test/with-cluster.sh: a sample OMERO database at OMERO5.3__1 (our fixture), a running sample
# OMERO.server 5.3.5 tree (stub bin/omero), a sample OMERO.server 5.6.3 zip holding our own
# sample upgrade scripts; then `omero-upgrade run --dry-run`, the run itself with the optional
# steps, its report, and what the extension says afterwards. Everything lives in $OU_TMP and goes
# away with the cluster.
set -euo pipefail
: "${OU_TMP:?run me through test/with-cluster.sh (make demo)}"
src=${OU_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
export OU_SRC=$src
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }
source "$src/test/lib/sample-server.sh"
TOOL=$src/tool/omero-upgrade
demo=$OU_TMP/demo
mkdir -p "$demo"

step "A sample OMERO database at OMERO5.3__1 (our fixture), owned by the OMERO user 'omero'"
psql -X -q -c "CREATE ROLE omero LOGIN CREATEDB" -c "GRANT pg_read_all_settings TO omero" postgres
"$src/test/fixture/omero-fixture" omero --version OMERO5.3__1 --owner omero
show psql -X -U omero -d omero -c "CREATE EXTENSION omero_upgrade"

step "The current server: $demo/OMERO.server -> OMERO.server-5.3.5 (stub bin/omero), running"
make_sample_server "$demo/OMERO.server-5.3.5" 5.3.5 omero omero "$demo/data"
ln -s OMERO.server-5.3.5 "$demo/OMERO.server"
mkdir -p "$demo/data/BioFormatsCache/2017-06" "$demo/data/ManagedRepository"
echo memo > "$demo/data/BioFormatsCache/2017-06/image.tif.bfmemo"
"$TOOL" --server-dir "$demo/OMERO.server" server start

step "The new release: OMERO.server-5.6.3.zip with our own sample upgrade scripts"
make_sample_server "$OU_TMP/build/OMERO.server-5.6.3" 5.6.3
rm "$OU_TMP/build/OMERO.server-5.6.3/etc/grid/config.xml"   # distributions ship none
make_server_zip "$OU_TMP/build/OMERO.server-5.6.3" "$demo/OMERO.server-5.6.3.zip"
(cd "$demo" && unzip -l OMERO.server-5.6.3.zip | grep 'sql/psql/OMERO5.4__0')

# The optional steps this build can run (each is a subcommand of its own).
has() { "$TOOL" "$@" --help 2>/dev/null | grep -q "$* \[OPTIONS\]"; }
opts=(--vacuum-full)
if has db orphans; then opts+=(--orphans); else echo "(this build has no 'db orphans delete' yet: no --orphans)"; fi
if has colors convert; then opts+=(--colors all); else echo "(this build has no 'colors convert' yet: no --colors)"; fi
# Screen 1 of the fixture holds plates 1-3, whose wells' images carry annotations (test/fixture/README.md).
if has annotations move-to-wells; then opts+=(--move-annotations-to-wells screen:1)
else echo "(this build has no 'annotations move-to-wells' yet: no --move-annotations-to-wells)"; fi
cd "$demo"

step "The plan: omero-upgrade run --dry-run (changes nothing; exit 0 = it can run)"
show "$TOOL" --server-dir OMERO.server run --new-server OMERO.server-5.6.3.zip "${opts[@]}" --dry-run

step "The upgrade: omero-upgrade run"
show "$TOOL" --server-dir OMERO.server run --new-server OMERO.server-5.6.3.zip "${opts[@]}"

step "Afterwards"
show ls -l "$demo"
show psql -X -U omero -d omero -c "SELECT omero_db_version()" -c "SELECT omero_precheck()"
show psql -X -U omero -d omero -c "SELECT direction, converted, pending FROM omero_colors_status()"
show psql -X -U omero -d omero -c "SELECT kind, discriminator, ns_kind, annotations FROM omero_orphans_summary()"
if has db verify; then
  step "The schema against a fresh OMERO5.4__0 built from the new server's creation files: db verify"
  show "$TOOL" --server-dir OMERO.server db verify
fi
show "$TOOL" --server-dir OMERO.server rollback --dry-run

step "Done: the throwaway cluster and everything above are removed now"
