#!/usr/bin/env bash
# Installed like a Debian tool: --version (version, git commit, libpq, the extension it expects);
# make install DESTDIR=… puts the tool, its man page (generated from --help) and its bash
# completion (written from the command table) in place; PREFIX moves them.
source "$(dirname "$0")/../lib/tap.sh"

t=$(scratch)
check() { eval "$1"; ok $? "$2"; }

# 1. --version
v=$("$TOOL" --version); rc=$?
is "$rc" 0 "--version exits 0"
ext=$(sed -n 's/^default_version *= *.\([0-9.]*\).*/\1/p' "$OU_SRC/omero_upgrade.control")
like "$(echo "$v" | sed -n 1p)" "^omero-upgrade $ext\$" "--version: the tool's version first (help2man reads it)"
commit=$(git -C "$OU_SRC" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
like "$(echo "$v" | sed -n 2p)" "^commit ${commit}(-dirty)?\$" "--version: the git commit it was built from"
# the tool links this Debian's libpq whatever PostgreSQL (PG=13/18) the extension is built for
libpq=$(pkg-config --modversion libpq 2>/dev/null | sed 's/^\([0-9]*\).*/\1/')
[ -n "$libpq" ] || libpq=$(/usr/bin/pg_config --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
like "$(echo "$v" | sed -n 3p)" "^libpq $libpq\\.[0-9]+\$" "--version: the libpq it runs with (PQlibVersion)"
like "$(echo "$v" | sed -n 4p)" "^extension omero_upgrade $ext " "--version: the extension version it expects"

# 2. make install DESTDIR=… (the checkout is built already: nothing is written into it)
make -s -C "$OU_SRC" install DESTDIR="$t/root" >"$t/install.log" 2>&1; rc=$?
is "$rc" 0 "make install DESTDIR=… succeeds" || diag "$(tail -20 "$t/install.log")"
bindir=$(pg_config --bindir); mandir=$(pg_config --mandir)
check "[ -x '$t/root$bindir/omero-upgrade' ]" "the tool is in pg_config's bindir under DESTDIR"
is "$("$t/root$bindir/omero-upgrade" --version | head -1)" "omero-upgrade $ext" "the installed tool runs"
check "[ -f '$t/root$mandir/man1/omero-upgrade.1' ]" "the man page is in pg_config's mandir/man1"
man1=$t/root$mandir/man1/omero-upgrade.1
like "$(head -c 2000 "$man1")" '\.TH OMERO-UPGRADE "1"' "the man page is a section 1 page (help2man)"
like "$(cat "$man1")" 'omero\\-upgrade db upgrade' "the man page holds every subcommand's help (db upgrade)"
like "$(cat "$man1")" 'omero\\-upgrade backup list' "the man page holds every subcommand's help (backup list)"
compdir=$(pkg-config --variable=completionsdir bash-completion 2>/dev/null || echo /usr/share/bash-completion/completions)
comp=$t/root$compdir/omero-upgrade
check "[ -f '$comp' ]" "the bash completion is in bash-completion's directory"
check "[ -f '$t/root$(pg_config --sharedir)/extension/omero_upgrade.control' ]" "the extension is installed under DESTDIR too"

# 3. the completion comes from the command table: every subcommand the help lists completes
words() { bash -c "source '$comp'; COMP_WORDS=($1); COMP_CWORD=\$((\${#COMP_WORDS[@]}-1)); _omero_upgrade; printf '%s\n' \"\${COMPREPLY[@]}\"" 2>&1; }
top=$("$TOOL" --help | sed -n '/^Subcommands:/,$p' | awk 'NR>1 && /^  [a-z]/ {print $1}' | sort -u)
check "[ -n '$top' ]" "the help lists subcommands"
missing=""
for c in $top; do words "omero-upgrade ''" | grep -qx "$c" || missing="$missing $c"; done
is "$missing" "" "every top-level subcommand completes"
like "$(words "omero-upgrade db ''" | tr '\n' ' ')" "upgrade" "db's subcommands complete after 'db'"
like "$(words "omero-upgrade backup --" | tr '\n' ' ')" "--backup-dir" "a subcommand's options complete"
like "$(words "omero-upgrade backup --" | tr '\n' ' ')" "--json" "global options complete after a subcommand"
unlike "$(words "omero-upgrade ''" | tr '\n' ' ')" "bash-completion|help-all" "the hidden generator flags are not offered"
is "$(words "omero-upgrade backup --backup-dir ''" | grep -c '^list$')" 0 "after an option taking a value, no subcommand names"
is "$("$TOOL" --bash-completion)" "$(cat "$comp")" "the installed completion is what the tool writes"

# 4. PREFIX moves all three
make -s -C "$OU_SRC" install-tool PREFIX=/opt/ou DESTDIR="$t/p" >"$t/p.log" 2>&1; rc=$?
is "$rc" 0 "make install-tool PREFIX=… succeeds" || diag "$(tail -20 "$t/p.log")"
check "[ -x '$t/p/opt/ou/bin/omero-upgrade' ] && [ -f '$t/p/opt/ou/share/man/man1/omero-upgrade.1' ] && [ -f '$t/p/opt/ou/share/bash-completion/completions/omero-upgrade' ]" \
  "PREFIX: bin, share/man/man1, share/bash-completion/completions"

done_testing
