#!/usr/bin/perl
# sql-lint.pl: finds names in the extension's install and upgrade scripts that would be resolved
# through the search_path of whoever runs them. A trusted extension's script runs as the bootstrap
# superuser with the installer's path (the extension's schema, then pg_temp): an unqualified
# function or operator there can be captured by a more specific overload planted in that schema
# (format(text, name) for pg_catalog.format(text, VARIADIC "any"), =(oid, regclass) for
# =(oid, oid)), which then runs as superuser.
#
#   sql-lint.pl check FILE...   one line per finding (FILE:LINE: message); exit 1 if any
#   sql-lint.pl calls FILE...   what the scripts call: "call NAME ARITY", "op OP", "type NAME"
#                               (test/tool/60-security-install.t plants overloads for each)
#
# What it checks, outside comments and string literals, in the script and inside every
# LANGUAGE sql / plpgsql body and DO block:
#   - a name followed by "(" (a call, or a type with a modifier) is qualified with pg_catalog,
#     @extschema@ or omero_upgrade, unless it is SQL syntax (ARRAY, VALUES, CHECK, COALESCE…);
#   - every operator is written OPERATOR(pg_catalog.op); so are the operators SQL hides in
#     syntax: IN (…), LIKE, ILIKE, SIMILAR TO, BETWEEN, IS [NOT] DISTINCT FROM, NULLIF, OVERLAPS,
#     simple CASE x WHEN, JOIN … USING (…), NATURAL JOIN: each is reported;
#   - a built-in type name (text, int8, bigint, regclass, …) is qualified: pg_catalog.int8;
#   - the relation after FROM, JOIN, INSERT INTO, UPDATE, DELETE FROM, REFERENCES, TABLE,
#     SEQUENCE, INDEX … ON is qualified (or is a subquery, a function call or a CTE of the file).
# What it cannot see (reviewed by hand, see README "Security model"):
#   - SQL text inside string literals (EXECUTE 'GRANT …', format() templates): it runs with the
#     function's SET search_path = pg_catalog, pg_temp, which the check requires of every
#     sql/plpgsql function (SET search_path on the function, reported when missing);
#   - the SQL the C++ entry points run (extension/*.cpp: the run-time boundary's business);
#   - grammar it does not model: a CTE with a column list (WITH x(a) AS), unusual plpgsql forms
#     (= as plpgsql assignment is reported: write :=), identifiers named like types.
# It is a tokenizer with a few rules of context, not a parser: a finding it cannot make sense of
# is reported rather than let through.
use strict;
use warnings;

my %trusted_schema = map { $_ => 1 } ('pg_catalog', '@extschema@', 'omero_upgrade');

# Words followed by "(" that are syntax, not a function call or a type.
my %syntax_paren = map { $_ => 1 } qw(
  array values check key unique exists any all some table row cast coalesce greatest least
  extract position substring trim overlay over filter group exclude include distinct on and or
  not where when then else select return returning if elsif while is as by from join set with
  perform execute into limit offset having case default raise loop foreach for using returns
  language in like ilike similar between nullif overlaps natural window partition order rows
  references grouping xmlelement xmlforest xmlconcat normalize collation storage
);

# Built-in type names: qualify them (pg_catalog.int8). The SQL keywords among them map to
# pg_catalog by the grammar; they are reported too, so that one rule holds for every type.
my %type_hint = (
  bigint => 'pg_catalog.int8', int => 'pg_catalog.int4', integer => 'pg_catalog.int4',
  smallint => 'pg_catalog.int2', boolean => 'pg_catalog.bool', real => 'pg_catalog.float4',
  double => 'pg_catalog.float8', float => 'pg_catalog.float8', decimal => 'pg_catalog.numeric',
  character => 'pg_catalog.bpchar or pg_catalog.varchar', char => 'pg_catalog.bpchar',
);
my %builtin_type = map { $_ => 1 } (keys %type_hint, qw(
  int2 int4 int8 float4 float8 numeric bool text name varchar bpchar bytea json jsonb xml uuid
  date time timetz timestamp timestamptz interval oid xid tid cid regclass regproc regprocedure
  regoper regoperator regtype regrole regnamespace regconfig regdictionary regcollation
  void record trigger event_trigger anyelement anyarray anynonarray anyenum anyrange
  anycompatible anycompatiblearray internal cstring inet cidr macaddr money point tsvector
  tsquery aclitem pg_lsn
));
# serial types are no types: the grammar turns them into pg_catalog.int8 plus a sequence whose
# default is pg_catalog.nextval(regclass); they cannot be qualified.
my %serial = map { $_ => 1 } qw(serial bigserial smallserial serial4 serial8 serial2);

# Option names after which "=" is not an operator: SET x = v, RAISE … USING ERRCODE = '…'.
my %raise_option = map { $_ => 1 } qw(errcode message detail hint column constraint datatype table schema);

my @findings;
my (%calls, %ops, %types);

sub tokenize {
  my ($text, $line0) = @_;
  my @t;
  my $line = $line0;
  pos($text) = 0;
  my $len = length $text;
  while (pos($text) < $len) {
    if ($text =~ /\G(\s+)/gc) { $line += ($1 =~ tr/\n//); next; }
    if ($text =~ /\G--[^\n]*/gc) { next; }
    if ($text =~ /\G\/\*/gc) {
      my $depth = 1;
      while ($depth > 0) {
        if ($text =~ /\G\/\*/gc) { $depth++; }
        elsif ($text =~ /\G\*\//gc) { $depth--; }
        elsif ($text =~ /\G(\n)/gc) { $line++; }
        elsif ($text =~ /\G./gcs) { }
        else { push @t, ['bad', 'unterminated comment', $line]; last; }
      }
      next;
    }
    # psql meta-commands (\echo … \quit) at the start of a line
    if ((pos($text) == 0 || substr($text, pos($text) - 1, 1) eq "\n") && $text =~ /\G\\[^\n]*/gc) { next; }
    if ($text =~ /\G([EeBbXxNn]|[Uu]&)?'/gc) {
      my $escape = defined $1 && lc $1 eq 'e';
      my $start = $line;
      my $re = $escape ? qr/\G((?:[^'\\]|\\.|'')*)'/s : qr/\G((?:[^']|'')*)'/s;
      if ($text =~ /$re/gc) { $line += ($1 =~ tr/\n//); push @t, ['str', $1, $start]; }
      else { push @t, ['bad', 'unterminated string', $start]; last; }
      next;
    }
    if ($text =~ /\G(\$([A-Za-z_][A-Za-z0-9_]*)?\$)/gc) {
      my $tag = $1;
      my $start = $line;
      my $from = pos($text);
      my $end = index($text, $tag, $from);
      if ($end < 0) { push @t, ['bad', 'unterminated dollar quote', $start]; last; }
      my $body = substr($text, $from, $end - $from);
      pos($text) = $end + length $tag;
      $line += ($body =~ tr/\n//);
      push @t, ['dollar', $body, $start];
      next;
    }
    if ($text =~ /\G"((?:[^"]|"")*)"/gc) { (my $n = $1) =~ s/""/"/g; push @t, ['ident', $n, $line, 1]; next; }
    if ($text =~ /\G(\@extschema\@|\@extowner\@)/gc) { push @t, ['ident', $1, $line, 1]; next; }
    if ($text =~ /\G([A-Za-z_\x80-\xff][A-Za-z0-9_\$\x80-\xff]*)/gc) { push @t, ['ident', lc $1, $line, 0]; next; }
    if ($text =~ /\G(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|\.\d+)/gc) { push @t, ['num', $1, $line]; next; }
    if ($text =~ /\G(\$\d+)/gc) { push @t, ['param', $1, $line]; next; }
    if ($text =~ /\G(::|:=|=>|\.\.)/gc) { push @t, [$1, $1, $line]; next; }
    if ($text =~ /\G([(),;.\[\]:])/gc) { push @t, [$1, $1, $line]; next; }
    if ($text =~ /\G([-+*\/<>=~!@#%^&|`?]+)/gc) {
      my $op = $1;
      # PostgreSQL's lexer: a multi-char operator cannot end in + or - unless it holds ~!@#%^&|`?
      while (length $op > 1 && $op =~ /[-+]$/ && $op !~ /[~!@#%^&|`?]/) { chop $op; pos($text)--; }
      push @t, ['op', $op, $line];
      next;
    }
    $text =~ /\G(.)/gcs;
    push @t, ['bad', "unexpected character '$1'", $line];
  }
  return \@t;
}

sub word { my ($tok) = @_; return ($tok && $tok->[0] eq 'ident' && !$tok->[3]) ? $tok->[1] : ''; }
sub is_tok { my ($tok, $type) = @_; return $tok && $tok->[0] eq $type; }

sub finding { my ($file, $line, $msg) = @_; push @findings, "$file:$line: $msg"; }

# Lints one token list: the script (plpgsql 0) or a function body / DO block (plpgsql 1).
sub lint {
  my ($file, $t, $plpgsql) = @_;
  my %cte;
  for my $i (0 .. $#$t) {   # CTE names of this file: WITH x AS (, , y AS (
    if (is_tok($t->[$i], 'ident') && word($t->[$i + 1]) eq 'as' && is_tok($t->[$i + 2], '(')
        && ($i > 0 && (word($t->[$i - 1]) eq 'with' || word($t->[$i - 1]) eq 'recursive' || is_tok($t->[$i - 1], ',')))) {
      $cte{$t->[$i][1]} = 1;
    }
  }
  my @stmt;          # tokens of the current statement (for LANGUAGE and context)
  my @paren;         # stack of the word before each open "("
  my $stmt_start = 0;
  for (my $i = 0; $i <= $#$t; $i++) {
    my $tok = $t->[$i];
    my ($type, $text, $line) = @$tok;
    my $prev = $i > 0 ? $t->[$i - 1] : undef;
    my $prev2 = $i > 1 ? $t->[$i - 2] : undef;
    my $next = $t->[$i + 1];
    my $w = word($tok);
    my $first = word($t->[$stmt_start]);
    if ($type eq 'bad') { finding($file, $line, "cannot read the script here: $text"); next; }
    if ($type eq ';') { check_statement($file, [@$t[$stmt_start .. $i]], $plpgsql); $stmt_start = $i + 1; @paren = (); next; }
    if ($type eq '(') { push @paren, ($prev && $prev->[0] eq 'ident') ? $prev->[1] : ''; next; }
    if ($type eq ')') { pop @paren; next; }
    my $inside = @paren ? $paren[-1] : '';

    if ($type eq 'op') {
      next if $plpgsql && $text eq '%' && $next && ($next->[1] eq 'type' || $next->[1] eq 'rowtype');
      next if $text eq '*' && (!$prev || is_tok($prev, '(') || is_tok($prev, ',') || is_tok($prev, '.')
                               || word($prev) eq 'select' || word($prev) eq 'returning');
      next if $text eq '-' && $next && $next->[0] eq 'num'
              && (!$prev || $prev->[0] =~ /^(?:\(|,|op|=>|:=)$/ || ($prev->[0] eq 'ident' && !$prev->[3] && $syntax_paren{$prev->[1]}));
      if ($text eq '=') {
        # SET name = value, SET x.y = value; RAISE … USING option = value; option lists WITH (a = b)
        next if word($prev2) eq 'set' || (word($t->[$i - 4]) eq 'set' && is_tok($t->[$i - 2], '.'));
        next if $raise_option{word($prev)} && grep { word($_) eq 'raise' } @$t[$stmt_start .. $i];
        next if $inside eq 'with' || $inside eq 'set' || $inside eq 'reset';
      }
      if (is_tok($prev, '(') && word($prev2) eq 'operator') {
        $ops{$text} = 1;
        finding($file, $line, "OPERATOR($text) is resolved through the search_path: write OPERATOR(pg_catalog.$text)");
        next;
      }
      my $in_operator = is_tok($prev, '.') && is_tok($t->[$i - 3], '(') && word($t->[$i - 4]) eq 'operator';
      if ($in_operator) {
        my $schema = $t->[$i - 2][1];
        $ops{$text} = 1;
        finding($file, $line, "OPERATOR($schema.$text): only pg_catalog operators are trusted") unless $schema eq 'pg_catalog';
        next;
      }
      $ops{$text} = 1;
      my $hint = ($plpgsql && $text eq '=' && $stmt_start == $i - 1) ? ' (plpgsql assignment: write :=)' : '';
      finding($file, $line, "unqualified operator $text: write OPERATOR(pg_catalog.$text)$hint");
      next;
    }
    next unless $type eq 'ident';

    # Qualified names: schema.name — the schema must be one we trust.
    if (is_tok($next, '.') && $t->[$i + 2] && $t->[$i + 2][0] =~ /^(?:ident|op)$/
        && !(is_tok($prev, '.'))) {
      my $target = $t->[$i + 2];
      if ($target->[0] eq 'ident' && $t->[$i + 3] && is_tok($t->[$i + 3], '.')) { next; } # a.b.c: catalog.schema.x / table.col
      if (!$trusted_schema{$text} && is_tok($t->[$i + 3], '(') && !$cte{$text}) {
        finding($file, $line, "$text.$target->[1](…) is resolved in schema $text: qualify with pg_catalog, \@extschema\@ or omero_upgrade");
      }
      if ($trusted_schema{$text} && is_tok($t->[$i + 3], '(') && $target->[0] eq 'ident') {
        record_call($t, $i + 3, $target->[1]);
      }
      if ($text eq 'pg_catalog' && $target->[0] eq 'ident' && $builtin_type{$target->[1]} ) { $types{$target->[1]} = 1; }
      next;
    }
    next if is_tok($prev, '.');   # the second part of a qualified name

    # A name followed by "(": a call (or a type modifier) unless it is SQL syntax.
    if (is_tok($next, '(')) {
      if ($tok->[3] || !$syntax_paren{$text}) {
        next if $cte{$text};
        next if $text eq 'operator';
        # DDL names of our own objects in @extschema@ are reported too: write @extschema@.name(…)
        record_call($t, $i + 1, $text);
        finding($file, $line, "unqualified function call or type $text(…): qualify with pg_catalog. (or \@extschema\@. for ours)");
        next;
      }
      if ($text =~ /^(?:in|like|ilike|similar|between|nullif|overlaps)$/) {
        finding($file, $line, uc($text) . " (…) resolves an operator through the search_path: write the comparison with OPERATOR(pg_catalog.=) (x OPERATOR(pg_catalog.=) ANY (ARRAY[…]) for IN)");
        next;
      }
      if ($text eq 'using' && $first !~ /^(?:create|raise|execute|return|open|for|foreach)$/ && word($prev) ne 'errcode') {
        finding($file, $line, "JOIN … USING (…) resolves = through the search_path: write ON a.x OPERATOR(pg_catalog.=) b.x");
        next;
      }
      next;
    }
    if ($w =~ /^(?:like|ilike|similar|between|overlaps)$/ ) {
      finding($file, $line, uc($w) . " resolves an operator through the search_path: use OPERATOR(pg_catalog.…)");
      next;
    }
    if ($w eq 'natural') { finding($file, $line, "NATURAL JOIN resolves = through the search_path"); next; }
    if ($w eq 'distinct' && word($prev) eq 'is' || ($w eq 'distinct' && word($prev) eq 'not' && word($prev2) eq 'is')) {
      finding($file, $line, "IS [NOT] DISTINCT FROM resolves = through the search_path: write it with OPERATOR(pg_catalog.=) and IS NULL");
      next;
    }
    if ($w eq 'case' && $next && word($next) ne 'when') {
      finding($file, $line, "simple CASE x WHEN resolves = through the search_path: write CASE WHEN x OPERATOR(pg_catalog.=) …");
      next;
    }
    if ($w eq 'in' && $next && !is_tok($next, '(') && $plpgsql == 0 && $first =~ /^(?:select|update|delete|insert|with)$/) {
      finding($file, $line, "IN resolves = through the search_path");
      next;
    }

    # Types.
    if (!$tok->[3] && $serial{$text}) { next; }
    if ($builtin_type{$text}) {
      next if word($prev) eq 'language';
      next if is_tok($next, '=>') || is_tok($next, ':=');                # named argument / assignment
      next if $text eq 'time' && word($prev) eq 'at';                     # AT TIME ZONE
      $types{$text} = 1;
      my $hint = $type_hint{$text} // "pg_catalog.$text";
      finding($file, $line, "unqualified type $text: write $hint");
      next;
    }

    # Relations after FROM, JOIN, INTO, UPDATE, … must be qualified.
    my $pw = word($prev);
    my $relpos = 0;
    if ($pw eq 'from' && $first ne 'revoke' && $inside !~ /^(?:extract|substring|trim|overlay|position)$/) { $relpos = 1; }
    $relpos = 1 if $pw eq 'join' || $pw eq 'references' || $pw eq 'truncate' || $pw eq 'only';
    $relpos = 1 if $pw eq 'into' && word($prev2) eq 'insert';
    $relpos = 1 if $pw eq 'update' && ($i - 1 == $stmt_start || word($prev2) eq 'only');
    $relpos = 1 if $pw =~ /^(?:table|sequence|view)$/ && word($prev2) =~ /^(?:alter|create|on|drop|lock|exists|unlogged|temp|temporary)$/;
    $relpos = 1 if $pw eq 'on' && $first eq 'create' && grep { word($_) eq 'index' } @$t[$stmt_start .. $i];
    if ($relpos && !$cte{$text} && !$tok->[3] && $text !~ /^(?:lateral|only|select|unnest)$/) {
      finding($file, $line, "unqualified relation $text: qualify it with its schema");
      next;
    }
    if ($relpos && $tok->[3] && !$cte{$text}) {
      finding($file, $line, "unqualified relation \"$text\": qualify it with its schema");
      next;
    }
  }
  check_statement($file, [@$t[$stmt_start .. $#$t]], $plpgsql) if $stmt_start <= $#$t;
}

sub record_call {
  my ($t, $open, $name) = @_;
  # arity: top-level commas between the "(" at $open and its ")"
  my ($depth, $commas, $empty) = (0, 0, 1);
  for (my $j = $open; $j <= $#$t; $j++) {
    my $ty = $t->[$j][0];
    if ($ty eq '(' || $ty eq '[') { $depth++; next; }
    if ($ty eq ')' || $ty eq ']') { $depth--; last if $depth == 0; next; }
    $empty = 0;
    $commas++ if $depth == 1 && $ty eq ',';
  }
  my $arity = $empty ? 0 : $commas + 1;
  $calls{"$name $arity"} = 1;
}

# Per statement: function bodies are linted as plpgsql/sql, and every sql/plpgsql function
# must pin its search_path (the body may build SQL in strings the check cannot see).
sub check_statement {
  my ($file, $s, $plpgsql) = @_;
  return unless @$s;
  my @w = map { word($_) } @$s;
  my $lang = '';
  for my $k (0 .. $#w - 1) { $lang = word($s->[$k + 1]) || lc($s->[$k + 1][1] // '') if $w[$k] eq 'language'; }
  my $is_do = $w[0] eq 'do';
  my $is_routine = $w[0] eq 'create' && grep { $_ eq 'function' || $_ eq 'procedure' } @w[0 .. ($#w < 4 ? $#w : 4)];
  for my $tok (@$s) {
    next unless $tok->[0] eq 'dollar';
    if ($is_do || ($is_routine && ($lang eq 'plpgsql' || $lang eq 'sql'))) {
      lint($file, tokenize($tok->[1], $tok->[2]), ($is_do || $lang eq 'plpgsql') ? 1 : 0);
    } elsif ($is_routine) {
      finding($file, $tok->[2], "function body in language '$lang' is not checked");
    }
  }
  if ($is_routine && ($lang eq 'plpgsql' || $lang eq 'sql')) {
    my $pinned = 0;
    for my $k (0 .. $#w - 3) {
      if ($w[$k] eq 'set' && $w[$k + 1] eq 'search_path') {
        my @rest;
        for my $m ($k + 2 .. $#$s) {
          my $x = $s->[$m];
          last if $x->[0] eq 'dollar' || $x->[0] eq ';' || (word($x) =~ /^(?:as|language|set|security|immutable|stable|volatile|strict|parallel|cost|rows)$/);
          push @rest, $x->[0] eq 'ident' ? $x->[1] : $x->[0] eq 'str' ? $x->[1] : ($x->[1] eq ',' ? ',' : $x->[1]);
        }
        my $value = join('', grep { $_ ne '=' && lc $_ ne 'to' } @rest);
        $pinned = 1 if $value eq 'pg_catalog,pg_temp';
      }
    }
    finding($file, $s->[0][2], "LANGUAGE $lang function without SET search_path = pg_catalog, pg_temp") unless $pinned;
  }
}

my $mode = shift @ARGV // '';
die "usage: sql-lint.pl check|calls FILE...\n" unless ($mode eq 'check' || $mode eq 'calls') && @ARGV;
for my $file (@ARGV) {
  open(my $fh, '<', $file) or die "sql-lint.pl: $file: $!\n";
  local $/;
  my $text = <$fh>;
  close $fh;
  lint($file, tokenize($text, 1), 0);
}
if ($mode eq 'check') {
  print "$_\n" for @findings;
  exit(@findings ? 1 : 0);
}
print "call $_\n" for sort keys %calls;
print "op $_\n" for sort keys %ops;
print "type $_\n" for sort keys %types;
exit 0;
