# A sample OMERO.server directory for the tool's tests (sourced after tap.sh):
#   make_server DIR [KEY=VALUE...]   DIR/etc/grid/config.xml whose active profile "default" holds
#                                    the given properties, and a stub DIR/bin/omero
#   omero_calls DIR                  the calls the stub received, one per line, args joined by '|'
# The stub answers `admin status` by exit code (0 when DIR/running exists, else 1) and
# `config set KEY VALUE` by editing config.xml (the active profile); it records every call.

xml_escape() { local s=$1; s=${s//&/&amp;}; s=${s//</&lt;}; s=${s//>/&gt;}; s=${s//\"/&quot;}; printf '%s' "$s"; }

make_server() {
  local dir=$1 kv; shift
  mkdir -p "$dir/etc/grid" "$dir/bin"
  {
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<icegrid>'
    echo '  <properties id="__ACTIVE__">'
    echo '    <property name="omero.config.version" value="5.1.0"/>'
    echo '    <property name="omero.config.profile" value="default"/>'
    echo '  </properties>'
    echo '  <properties id="default">'
    echo '    <property name="omero.config.version" value="5.1.0"/>'
    for kv; do echo "    <property name=\"${kv%%=*}\" value=\"$(xml_escape "${kv#*=}")\"/>"; done
    echo '  </properties>'
    echo '</icegrid>'
  } > "$dir/etc/grid/config.xml"
  cat > "$dir/bin/omero" <<'STUB'
#!/usr/bin/env bash
# Stub of bin/omero for omero_upgrade's tests: records its calls, answers two commands.
here=$(cd "$(dirname "$0")/.." && pwd)
(IFS='|'; echo "$*") >> "$here/omero-calls.log"
case "$1 $2" in
  "admin status")
    if [ -e "$here/running" ]; then echo "OMERO.server running"; exit 0; fi
    echo "OMERO.server not running" >&2; exit 1 ;;
  "config set")
    [ $# -eq 4 ] || { echo "usage: config set KEY VALUE" >&2; exit 2; }
    KEY=$3 VALUE=$4 perl -0pi -e '
      my ($k, $v) = ($ENV{KEY}, $ENV{VALUE});
      $v =~ s/&/&amp;/g; $v =~ s/</&lt;/g; $v =~ s/>/&gt;/g; $v =~ s/"/&quot;/g;
      s/(<property name="\Q$k\E" value=")[^"]*(")/$1$v$2/
        or s/(<properties id="default">)/$1\n    <property name="$k" value="$v"\/>/;
    ' "$here/etc/grid/config.xml" ;;
  *) echo "stub bin/omero: not supported: $*" >&2; exit 2 ;;
esac
STUB
  chmod 755 "$dir/bin/omero"
}

omero_calls() { cat "$1/omero-calls.log" 2>/dev/null; }

# The value of a property in the default profile of DIR's config.xml.
config_value() { perl -ne 'print $1 if /<property name="\Q'"$2"'\E" value="([^"]*)"/' "$1/etc/grid/config.xml"; }

# Content fingerprint of the key OMERO tables: row count and md5 of every row, ordered by id
# (of the text in UTF8, so that databases of different encodings compare).
db_fingerprint() {
  local db=$1 t
  for t in dbpatch experimenter experimentergroup event image annotation originalfile roi shape; do
    q "$db" -c "SELECT '$t', count(*), md5(convert_to(coalesce(string_agg(x::text, '|' ORDER BY x.id), ''), 'UTF8')) FROM $t x"
  done
}
