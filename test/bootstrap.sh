#!/usr/bin/env bash
# Installs the Debian packages omero_upgrade needs to build, test and run its demo.
# Does nothing when all are present; otherwise says what it installs, then one apt-get update
# and one non-interactive apt-get install (as root, or through sudo).
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
packages=(
  g++ make pkg-config perl bc                     # compiler, make, prove (TAP runner)
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" postgresql-client-"$PG_MAJOR"
  libpq-dev libcli11-dev libpugixml-dev libarchive-dev libssl-dev nlohmann-json3-dev
  zip unzip util-linux procps iproute2 jq mount  # sample archives; runuser, flock; ps/pkill; ss; JSON in tests
  help2man bash-completion                        # the man page (make all), the completion test
)

# make test PG=NN builds that PostgreSQL from Debian's source package (test/pg-source.sh): apt's
# own source download, dpkg-source, the archive keyring, and the -dev packages of its configure.
if [ "${OU_PG_SOURCE:-0}" = 1 ]; then
  packages+=(dpkg-dev debian-archive-keyring gpgv xz-utils bzip2 ca-certificates bison flex  # 18's tarball has no generated parsers
             libxml2-dev libssl-dev zlib1g-dev libreadline-dev libicu-dev)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "bootstrap: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "bootstrap: these packages are missing and I am neither root nor able to sudo: ${missing[*]}" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "bootstrap: done"
