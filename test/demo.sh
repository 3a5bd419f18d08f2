#!/usr/bin/env bash
# make demo: on the throwaway cluster of test/with-cluster.sh, a sample OMERO database and what
# omero_upgrade says about it. Cleans up with the cluster.
set -euo pipefail
: "${OU_TMP:?run me through test/with-cluster.sh (make demo)}"
src=${OU_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }

step "A sample OMERO database at OMERO5.3__0 (our fixture), owned by the OMERO user"
psql -X -q -c "CREATE ROLE omero LOGIN" postgres
"$src/test/fixture/omero-fixture" omero --version OMERO5.3__0 --owner omero
export PGDATABASE=omero PGUSER=omero

step "The extension, installed by the database owner"
show psql -X -c "CREATE EXTENSION omero_upgrade"
show psql -X -c "SELECT omero_db_version()"
show psql -X -c "SELECT * FROM omero_upgrade_path()"
show psql -X -c "SELECT omero_precheck()"
show psql -X -c "SELECT check_name, status, detail FROM omero_precheck_report()"

step "The tool"
show "$src/tool/omero-upgrade" --version

step "Done: the throwaway cluster is removed now"
