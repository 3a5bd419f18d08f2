#!/usr/bin/env bash
# Builds PostgreSQL MAJOR from Debian's own source package into a cache directory outside the
# checkout, and prints the path of its pg_config (the only thing on stdout).
#
#   test/pg-source.sh 13        # → /var/cache/omero-upgrade/pg-13/inst/bin/pg_config
#
# Where the source comes from: a private deb-src sources list (Debian 11 "bullseye" for 13,
# "unstable" for 18; OU_PG_SUITE overrides) read by `apt-get source --download-only` with a
# private state and cache directory: the machine's apt configuration is never touched and no
# binary package of another suite is installed. apt checks the suite's InRelease signature
# against debian-archive-keyring and the downloaded files against the signed Sources index;
# dpkg-source then unpacks them and applies Debian's patches.
#
# The cache (OU_PG_CACHE, default /var/cache/omero-upgrade/pg-MAJOR) is reused when it holds a
# complete build of that major made by this recipe; it is rebuilt when absent, incomplete, of
# another version or made by another recipe. OU_PG_REFRESH=1 asks the archive for a newer
# Debian revision and rebuilds when there is one.
#
# Configured with what the tests need: --with-libxml (OMERO's schema uses xml), --with-openssl
# (contrib/pgcrypto, which the tests install, is built too), ICU, zlib, readline; no JIT.
# Build: make -j${OU_PG_JOBS:-2} under nice, logs in the cache directory.
set -euo pipefail

major=${1:?usage: test/pg-source.sh MAJOR}
case $major in (*[!0-9]*|'') echo "pg-source: not a PostgreSQL major version: $major" >&2; exit 2 ;; esac

suite=${OU_PG_SUITE:-}
if [ -z "$suite" ]; then
  case $major in
    13) suite=bullseye ;;
    15) suite=bookworm ;;
    17) suite=trixie ;;      # listed by Debian, but its source files are not served to these machines
    18) suite=unstable ;;
    *) echo "pg-source: no Debian suite known for PostgreSQL $major (set OU_PG_SUITE)" >&2; exit 2 ;;
  esac
fi
mirror=${OU_PG_MIRROR:-http://deb.debian.org/debian}
keyring=${OU_PG_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
cache=${OU_PG_CACHE:-/var/cache/omero-upgrade/pg-$major}
jobs=${OU_PG_JOBS:-2}
pkg=postgresql-$major
# The recipe: changing it (flags, steps) rebuilds every cache made by an older one.
configure_flags=(--with-libxml --with-openssl --with-icu --with-zlib --with-readline --without-llvm
                 --without-systemd --without-gssapi --without-ldap --without-pam --without-perl --without-python --without-tcl)
contrib=(pgcrypto)
recipe="pg-source 1; ${configure_flags[*]}; contrib ${contrib[*]}"

log() { echo "pg-source: $*" >&2; }
die() { echo "pg-source: $*" >&2; exit 2; }

inst=$cache/inst
stamp=$cache/BUILT

# Reuse: a stamp written after a successful install, naming the major, the Debian version and the recipe.
if [ -f "$stamp" ] && [ -x "$inst/bin/pg_config" ] && [ "${OU_PG_REFRESH:-0}" != 1 ]; then
  if [ "$(sed -n 's/^major=//p' "$stamp")" = "$major" ] && [ "$(sed -n 's/^recipe=//p' "$stamp")" = "$recipe" ] &&
     "$inst/bin/pg_config" --version | grep -qE "^PostgreSQL $major(\.|[a-z])"; then
    log "reusing PostgreSQL $("$inst/bin/pg_config" --version | awk '{print $2}') (Debian $(sed -n 's/^debian=//p' "$stamp")) in $inst"
    echo "$inst/bin/pg_config"
    exit 0
  fi
  log "the cache $cache holds another version or recipe: rebuilding"
fi

[ -r "$keyring" ] || die "no Debian archive keyring at $keyring (install debian-archive-keyring)"
command -v dpkg-source >/dev/null || die "dpkg-source missing (install dpkg-dev)"

mkdir -p "$cache"
chmod 755 "$cache"
# One build at a time per cache directory.
exec 9>"$cache/.lock"
flock 9
# Another process may have built it while this one waited.
if [ -f "$stamp" ] && [ "${OU_PG_REFRESH:-0}" != 1 ] && [ "$(sed -n 's/^recipe=//p' "$stamp")" = "$recipe" ] &&
   [ "$(sed -n 's/^major=//p' "$stamp")" = "$major" ] && [ -x "$inst/bin/pg_config" ]; then
  echo "$inst/bin/pg_config"; exit 0
fi

# ---- the source, through a private apt configuration ------------------------------------
apt_dir=$cache/apt
rm -rf "$apt_dir"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/etc"
echo "deb-src [signed-by=$keyring] $mirror $suite main" >"$apt_dir/etc/sources.list"
if id _apt >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then chown -R _apt "$apt_dir/lists" "$apt_dir/cache"; fi
apt_opts=(-q -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
          -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
          -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
          -o APT::Get::Only-Source=true)
log "fetching the $pkg source package from $mirror $suite (private apt lists in $apt_dir)"
apt-get "${apt_opts[@]}" update >"$cache/apt-update.log" 2>&1 ||
  { tail -20 "$cache/apt-update.log" >&2; die "apt-get update of the private deb-src list failed"; }
# A signature that could not be checked leaves the suite unusable; say so rather than build unverified.
if grep -qiE 'NO_PUBKEY|not signed|is not signed|EXPKEYSIG|BADSIG' "$cache/apt-update.log"; then
  cat "$cache/apt-update.log" >&2; die "the $suite Release file could not be verified against $keyring"
fi

srcdir=$cache/src
rm -rf "$srcdir"
mkdir -p "$srcdir"
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$srcdir"; fi
(cd "$srcdir" && apt-get "${apt_opts[@]}" source --download-only "$pkg") >"$cache/apt-source.log" 2>&1 ||
  { tail -20 "$cache/apt-source.log" >&2; die "apt-get source $pkg failed (is it served for $suite?)"; }
dsc=$(ls "$srcdir"/"${pkg}"_*.dsc 2>/dev/null | head -1)
[ -n "$dsc" ] || die "no .dsc downloaded for $pkg"
debver=$(sed -n 's/^Version: //p' "$dsc" | head -1)
log "unpacking $pkg $debver (Debian's patches applied)"
(cd "$srcdir" && dpkg-source --no-check -x "$(basename "$dsc")" tree) >"$cache/unpack.log" 2>&1 ||
  { tail -20 "$cache/unpack.log" >&2; die "dpkg-source -x failed"; }
# (--no-check: the files were already checked by apt against the signed Sources index; the .dsc's
#  own signature is by the uploader, whose key is not in debian-archive-keyring.)

# ---- configure, build, install -----------------------------------------------------------
rm -rf "$inst" "$stamp"
build=$srcdir/tree
log "configuring and building PostgreSQL $debver into $inst (make -j$jobs under nice; logs in $cache)"
start=$(date +%s)
(cd "$build" && nice ./configure --prefix="$inst" "${configure_flags[@]}") >"$cache/configure.log" 2>&1 ||
  { tail -30 "$cache/configure.log" >&2; die "configure failed (missing -dev packages? see $cache/configure.log)"; }
(cd "$build" && nice make -j"$jobs" && make install) >"$cache/build.log" 2>&1 ||
  { tail -30 "$cache/build.log" >&2; die "build failed (see $cache/build.log)"; }
for c in "${contrib[@]}"; do
  (cd "$build/contrib/$c" && nice make -j"$jobs" && make install) >>"$cache/build.log" 2>&1 ||
    { tail -30 "$cache/build.log" >&2; die "contrib/$c failed (see $cache/build.log)"; }
done
chmod -R a+rX "$inst"
{ echo "major=$major"; echo "debian=$debver"; echo "suite=$suite"; echo "recipe=$recipe"
  echo "seconds=$(( $(date +%s) - start ))"; } >"$stamp.tmp" && mv "$stamp.tmp" "$stamp"
log "built PostgreSQL $("$inst/bin/pg_config" --version | awk '{print $2}') in $(( $(date +%s) - start ))s"
rm -rf "$srcdir" "$apt_dir"
echo "$inst/bin/pg_config"
