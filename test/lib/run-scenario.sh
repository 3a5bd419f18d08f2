# An upgrade scenario for the tests of `omero-upgrade run` (sourced after tap.sh and
# sample-server.sh):
#
#   run_template              once per cluster (a no-op when it exists): role omero, database
#                             run_template (fixture at OMERO5.3__1, with the extension)
#   scenario ROOT DB [FAIL_HOP]
#       ROOT/OMERO.server -> OMERO.server-5.3.5 (a sample server on database DB, a copy of the
#       template, data dir ROOT/data with a Bio-Formats cache), running; ROOT/OMERO.server-5.6.3.zip
#       the new release (its sql/psql from make_sample_sql, FAIL_HOP making one hop fail).
#   fingerprint ROOT DB       what an upgrade leaves, paths and names made neutral: the database's
#       schema, dbpatch versions and every public table's row count and content checksum (what
#       differs between two clean runs left out: see there); the server tree (where OMERO.server points, every file's type, size and checksum, config.xml), the
#       data dir. Stub bookkeeping (var/stub: calls, pid files) is left out.

run_template() {
  # Made once per cluster: later tests clone the same one (createdb -T), never change it.
  [ "$(psql -X -A -t -c "SELECT 1 FROM pg_database WHERE datname = 'run_template'" postgres)" = 1 ] && return 0
  psql -X -q -c "CREATE ROLE omero LOGIN" postgres 2>/dev/null
  # db vacuum --full checks the free space of PostgreSQL's data directory, which it must see.
  psql -X -q -c "GRANT pg_read_all_settings TO omero" postgres
  # rollback restores into a new database, as the OMERO database user.
  psql -X -q -c "ALTER ROLE omero CREATEDB" postgres
  fixture_db run_template --version OMERO5.3__1 --owner omero
  # The optional steps (--orphans, --colors, --move-annotations-to-wells) work through the
  # extension: every scenario's database has it, as a real server would after its install.
  q run_template -c "CREATE EXTENSION omero_upgrade"
}

scenario() {
  local root=$1 db=$2 fail=${3:-}
  mkdir -p "$root"
  createdb -T run_template -O omero "$db"
  make_sample_server "$root/OMERO.server-5.3.5" 5.3.5 "$db" omero "$root/data"
  ln -s OMERO.server-5.3.5 "$root/OMERO.server"
  mkdir -p "$root/data/BioFormatsCache/a/b" "$root/data/ManagedRepository"
  echo memo > "$root/data/BioFormatsCache/a/b/img.tif.bfmemo"
  echo image > "$root/data/ManagedRepository/img.tif"
  make_sample_server "$root/build/OMERO.server-5.6.3" 5.6.3
  rm "$root/build/OMERO.server-5.6.3/etc/grid/config.xml"  # distributions ship none
  if [ -n "$fail" ]; then
    rm -r "$root/build/OMERO.server-5.6.3/sql"
    make_sample_sql "$root/build/OMERO.server-5.6.3" "$fail"
  fi
  make_server_zip "$root/build/OMERO.server-5.6.3" "$root/OMERO.server-5.6.3.zip"
  rm -r "$root/build"
  "$TOOL" --server-dir "$root/OMERO.server" server start >/dev/null 2>&1
}

fingerprint() {
  local root=$1 db=$2 t
  echo "== database"
  pg_dump -s "$db" | grep -vE '^\\(un)?restrict |^-- Dumped' | md5sum | sed 's/ .*/ schema/'
  q "$db" -c "SELECT currentversion || '__' || currentpatch || ' from ' || previousversion || '__' || previouspatch
                     || ' ' || message || ' finished=' || (finished IS NOT NULL) FROM dbpatch ORDER BY id"
  # dbpatch is above (its finished times differ from run to run); every other public table in
  # full, in one session (\gexec runs the generated query of each table). Only what two clean runs
  # leave the same is compared: not the extension's own tables (schema omero_upgrade: run ids,
  # times, archives of each run), and of event and session (the record the wells step writes)
  # not the times nor the session's random uuid; their ids, counts and links are compared.
  q "$db" <<'SQL' | md5sum | sed 's/ .*/ table counts and contents/'
SELECT format('SELECT %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(x::text, ''|'' ORDER BY x::text)), ''-'') FROM (SELECT %s FROM %I) x',
              c.relname,
              (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  AND (c.relname, a.attname) NOT IN (('event', 'time'), ('session', 'started'),
                                                     ('session', 'closed'), ('session', 'uuid'))),
              c.relname)
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'dbpatch'
 ORDER BY c.relname
\gexec
SQL
  echo "== tree"
  echo "OMERO.server -> $(readlink "$root/OMERO.server")"
  (cd "$root" && find $(for d in OMERO.server-5.3.5 OMERO.server-5.6.3 data; do [ -d "$d" ] && echo "$d"; done) -path '*/var/stub' -prune -o -print | LC_ALL=C sort | while read -r f; do
     if [ -L "$f" ]; then echo "l $f -> $(readlink "$f")"
     elif [ -d "$f" ]; then echo "d $f"
     else echo "f $f $(sed "s|$root|ROOT|g; s|\"$db\"|\"DB\"|g" "$f" | md5sum | cut -c1-12)"; fi
   done)
  echo "== config.xml"
  sed "s|$root|ROOT|g; s|\"$db\"|\"DB\"|g" "$root/OMERO.server/etc/grid/config.xml"
}
