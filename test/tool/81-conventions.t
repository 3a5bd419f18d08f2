#!/usr/bin/env bash
# The conventions every subcommand follows (README, "Design"), checked on every command of the
# registry (omero-upgrade --list-commands: a new command is covered without editing this file):
#   --help shows its exit codes, an example and a pointer to the global options;
#   --json prints one JSON object on stdout for every outcome (ok, problem, pending, error, and a
#   command line that does not parse), with exit_code equal to the exit status;
#   stdout never holds hint:/warning:/error: lines; -q keeps the data asked for;
#   the exit code is the documented one for each outcome tried.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

t=$(scratch)
psql -X -q -c "CREATE ROLE omero_cv LOGIN" postgres
fixture_db cv_db --version OMERO5.3__1 --owner omero_cv
srv=$t/OMERO.server
make_sample_server "$srv" 5.6.3 cv_db omero_cv "$t/data"
mkdir -p "$t/data/BioFormatsCache/a"
ou() { "$TOOL" --server-dir "$srv" "$@"; }
status_of() { case $1 in 0) echo ok ;; 1) echo problem ;; 3) echo pending ;; *) echo error ;; esac; }
# envelope FILE RC CMD NAME: one JSON object, the usual keys, exit_code = RC, status after RC
envelope() {
  local f=$1 rc=$2 cmd=$3 name=$4 got
  got=$(jq -s -r --arg cmd "$cmd" 'if length != 1 then "objects: \(length)" else .[0] |
          [(.command == $cmd), (.exit_code|tostring), .status, (.hints|type), (.warnings|type), (.errors|type), (.result|type)] | join(" ") end' "$f" 2>&1)
  is "$got" "true $rc $(status_of "$rc") array array array object" "$name: one JSON envelope, exit_code $rc"
}
no_chatter() {
  unlike "$(cat "$1")" "(^|"$'\n'")(hint|warning|error): " "$2: no hint:/warning:/error: line on stdout"
  unlike "$(cat "$1")" "(^|"$'\n'")progress: |elapsed [0-9]+:[0-9]{2}:[0-9]{2}|ETA (unknown|~?[0-9])" "$2: no progress line on stdout"
}

cmds=$("$TOOL" --list-commands)
is "$?" 0 "--list-commands"
like "$cmds" "db upgrade" "… lists the registry (db upgrade)"
while IFS= read -r c; do
  # shellcheck disable=SC2086
  h=$("$TOOL" $c --help); rc=$?
  is "$rc" 0 "$c --help: exit 0"
  like "$h" "Exit codes: 0 [^"$'\n'"]*2 could not run" "$c --help: its exit codes"
  like "$h" "Example: omero-upgrade $c" "$c --help: an example of it"
  like "$h" "Global options .*see omero-upgrade --help" "$c --help: a pointer to the global options"
  unlike "$h" "[A-Za-z] TEXT( |$|"$'\n'")" "$c --help: value types say what (FILE, DIR, DB…), never TEXT"
  # a command line that does not parse
  # shellcheck disable=SC2086
  "$TOOL" --json $c --no-such-option >"$t/o" 2>"$t/e"; rc=$?
  is "$rc" 2 "$c --no-such-option: exit 2"
  envelope "$t/o" 2 "$c" "$c --no-such-option --json"
  # no OMERO.server, no database: whatever it says, in the form asked for, with the code it says
  # shellcheck disable=SC2086
  PGPORT=1 "$TOOL" --json --server-dir "$t/nowhere" $c >"$t/o" 2>"$t/e"; rc=$?
  like "$rc" "^[0-3]$" "$c without a server: a documented exit code ($rc)"
  envelope "$t/o" "$rc" "$c" "$c without a server --json"
  # shellcheck disable=SC2086
  PGPORT=1 "$TOOL" --server-dir "$t/nowhere" $c >"$t/o" 2>"$t/e"; hrc=$?
  is "$hrc" "$rc" "$c without a server: the same exit code without --json"
  no_chatter "$t/o" "$c without a server"
done <<<"$cmds"

# every group entry (the words before a command's last) has a description of its own
groups=$(while IFS= read -r c; do w=${c% *}; while [ "$w" != "$c" ] && [ -n "$w" ]; do echo "$w"; c=$w; w=${w% *}; done; done <<<"$cmds" | sort -u)
like "$groups" "db orphans" "the groups include db orphans (scan, delete, restore are subcommands)"
while IFS= read -r gr; do
  # shellcheck disable=SC2086
  first=$("$TOOL" $gr --help | head -1)
  unlike "$first" "subcommands$" "$gr --help: a real description ($first)"
  # shellcheck disable=SC2086
  "$TOOL" --json $gr >"$t/o" 2>"$t/e"; rc=$?
  is "$rc" 2 "$gr without a subcommand: exit 2"
done <<<"$groups"
h=$("$TOOL" --help)
unlike "$h" "[A-Za-z] TEXT( |$|"$'\n'")" "omero-upgrade --help: no TEXT either"

# the parse errors of issue 15, in JSON
for args in "--json bogus" "--json --bogus" "--json db" "--json -v -q status" "--json"; do
  # shellcheck disable=SC2086
  "$TOOL" $args >"$t/o" 2>"$t/e"; rc=$?
  is "$rc" 2 "'$args': exit 2"
  w=$(echo "$args" | sed 's/--json//; s/-v -q//; s/--bogus//; s/bogus//; s/^ *//; s/ *$//')
  envelope "$t/o" 2 "$w" "'$args'"
  like "$(jq -r '.hints[0]' "$t/o")" "--help" "'$args': a hint in the envelope"
done
"$TOOL" >"$t/o" 2>"$t/e"; rc=$?
is "$rc" 2 "no subcommand: exit 2"
like "$(cat "$t/e")" "Usage: .*Subcommands:" "… with the usage on stderr"
is "$(cat "$t/o")" "" "… and nothing on stdout"

# outcomes with their documented codes, in both forms
outcome() {  # outcome RC NAME ARGS…: exit RC in JSON and human mode, JSON envelope, no chatter on stdout
  local want=$1 name=$2 rc; shift 2
  ou --json "$@" >"$t/o" 2>"$t/e"; rc=$?
  is "$rc" "$want" "$name: exit $want"
  local cmd="" c   # the longest command of the registry the arguments start with
  while IFS= read -r c; do [[ "$* " == "$c "* && ${#c} -gt ${#cmd} ]] && cmd=$c; done <<<"$cmds"
  envelope "$t/o" "$want" "$cmd" "$name"
  ou "$@" >"$t/h" 2>"$t/e"; rc=$?
  is "$rc" "$want" "$name: exit $want without --json"
  no_chatter "$t/h" "$name"
  ou -q "$@" >"$t/q" 2>/dev/null
  is "$(cat "$t/q")" "$(cat "$t/h")" "$name: -q prints the same results"
}
outcome 3 "server status, stopped" server status
like "$(cat "$t/q")" "server: stopped" "-q server status says it"
touch "$srv/var/stub/running"
outcome 0 "server status, running" server status
outcome 1 "cache clear while the server runs (refused)" cache clear
outcome 1 "db upgrade while the server runs (refused)" db upgrade
rm "$srv/var/stub/running"
outcome 3 "db plan, hops pending" db plan
outcome 3 "db upgrade --dry-run, hops pending" db upgrade --dry-run
outcome 0 "precheck, ready" precheck
outcome 0 "db plan at the target" db plan --target OMERO5.3__1
mkdir -p "$t/bk"
outcome 0 "backup list, empty" backup list --backup-dir "$t/bk"
outcome 2 "backup verify of a missing file" backup verify "$t/none.pgdump"
ou db upgrade >"$t/o" 2>"$t/e"
is "$(version=$(q cv_db -c "SELECT currentversion || '__' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1"); echo "$version")" "OMERO5.4__0" "db upgrade to the target"
outcome 0 "db plan at the target, after the upgrade" db plan
outcome 0 "db upgrade --dry-run at the target" db upgrade --dry-run

# One shape for a command (README "Design"): the driver gives each command its settings and
# connection (tool/command.hpp); no command reads them itself, and none keeps its options in a
# global of its file or reads process-wide global options.
is "$(grep -l 'load_settings(' "$OU_SRC"/tool/cmd/*.cpp | tr '\n' ' ')" "" "no command file calls load_settings (its Context gives the settings)"
is "$(grep -rln --include='*.cpp' --include='*.hpp' 'global_options()' "$OU_SRC"/tool | tr '\n' ' ')" "" "no process-wide global options"
is "$(grep -nE '^\} [A-Za-z_]+;$|^[A-Z][A-Za-z]*Opt(ion)?s [a-z_]+;$' "$OU_SRC"/tool/cmd/*.cpp | tr '\n' ' ')" "" "no file-level options object in a command file"

q postgres -c "DROP DATABASE cv_db" -c "DROP ROLE omero_cv" >/dev/null
done_testing
