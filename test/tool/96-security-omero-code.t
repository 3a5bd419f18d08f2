# OMERO's code runs as OMERO's role (issue 13, finding F1): the owner of OMERO's tables attaches
# code to them (triggers, a CHECK constraint, an index expression, a column default, a view in a
# table's place, a row-level security policy) and a superuser, a member of the owner or another
# role calls the extension's writing functions, or the tool with --db-user postgres. Before the
# fix, a trigger on shape ran as the superuser who called CALL omero_colors_convert(…, method =>
# 'batch') and the owner became superuser.
#
# Every plant writes a row to plant.log (who ran it) and, run as a superuser, makes the owner a
# superuser. After each call: the owner is no superuser and every log row names the owner (the
# plant ran with the owner's rights only, which it has anyway). The owner's own calls show the
# plants do fire (rows appear), so the test can fail; the calls that must work convert, delete,
# restore or move for real.
source "$(dirname "$0")/../lib/tap.sh"
source "$OU_SRC/test/lib/sample-server.sh"

owner=sec96_owner     # owns OMERO's tables (omero.db.user)
member=sec96_member   # a member of the owner (inherits its rights)
other=sec96_other     # neither: granted what a call needs, by hand
psql -X -q -c "CREATE ROLE $owner LOGIN" -c "CREATE ROLE $member LOGIN IN ROLE $owner" \
     -c "CREATE ROLE $other LOGIN" postgres

as() { local role=$1 db=$2; shift 2; PGOPTIONS="-c client_min_messages=warning" psql -X -q -A -t -U "$role" -d "$db" "$@" 2>&1; }
is_super() { q postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = '$owner'"; }
unsuper() { q postgres -c "ALTER ROLE $owner NOSUPERUSER"; }

# A fixture owned by $owner with the extension, the log and plant.fire(); $2: the fixture version.
make_db() {
  local db=$1 version=${2:-OMERO5.3__1}
  fixture_db "$db" --version "$version" --owner "$owner"
  as "$owner" "$db" -v ON_ERROR_STOP=1 <<SQL >/dev/null
CREATE EXTENSION omero_upgrade;
CREATE SCHEMA plant;
CREATE TABLE plant.log (plant text, run_by name, at timestamptz DEFAULT clock_timestamp());
GRANT USAGE ON SCHEMA plant TO PUBLIC;
GRANT INSERT, SELECT ON plant.log TO PUBLIC;
CREATE FUNCTION plant.fire(what text) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN
    INSERT INTO plant.log (plant, run_by) VALUES (what, current_user);
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        BEGIN EXECUTE 'ALTER ROLE $owner SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
    END IF;
END \$\$;
GRANT EXECUTE ON FUNCTION plant.fire(text) TO PUBLIC;
CREATE FUNCTION plant.trg() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN PERFORM plant.fire(TG_TABLE_NAME || ' ' || TG_WHEN || ' ' || TG_OP || ' ' || TG_LEVEL); RETURN NULL; END \$\$;
CREATE FUNCTION plant.ok(int4) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN PERFORM plant.fire('check'); RETURN true; END \$\$;
CREATE FUNCTION plant.idx(int4) RETURNS int4 LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN PERFORM plant.fire('index'); RETURN \$1; END \$\$;
CREATE FUNCTION plant.def() RETURNS int8 LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN PERFORM plant.fire('default'); RETURN NULL; END \$\$;
SQL
}
# The plants on shape: row and statement triggers, a CHECK constraint, an index expression.
plant_shape() {
  as "$owner" "$1" -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE TRIGGER p_row AFTER UPDATE ON shape FOR EACH ROW EXECUTE FUNCTION plant.trg();
CREATE TRIGGER p_stmt BEFORE UPDATE ON shape FOR EACH STATEMENT EXECUTE FUNCTION plant.trg();
ALTER TABLE shape ADD CONSTRAINT p_check CHECK (plant.ok(fillcolor));
CREATE INDEX p_index ON shape (plant.idx(strokecolor));
TRUNCATE plant.log;
SQL
}
# Rows of the log not run by the owner ("" when none), and how many the owner ran.
foreign_runs() { q "$1" -c "SELECT coalesce(string_agg(DISTINCT plant || ' as ' || run_by, '; '), '') FROM plant.log WHERE run_by <> '$owner'"; }
owner_runs() { q "$1" -c "SELECT count(*) FROM plant.log WHERE run_by = '$owner'"; }
clear_log() { q "$1" -c "TRUNCATE plant.log"; }
# The shapes still at their original colours (the fixture's), out of all.
unconverted() { q "$1" -c "SELECT count(*) FROM shape s JOIN orig_shape o USING (id) WHERE s.fillcolor IS NOT DISTINCT FROM o.fillcolor AND s.fillcolor IS NOT NULL"; }
keep_colours() { q "$1" -c "CREATE TABLE public.orig_shape AS SELECT id, fillcolor FROM shape WHERE fillcolor IS NOT NULL AND fillcolor <> omero_argb_to_rgba(fillcolor)"; }

# Each plant asserts: nothing ran as anyone but the owner, the owner gained nothing.
check_clean() {
  local db=$1 what=$2
  is "$(foreign_runs "$db")" "" "$what: no plant ran with another role's rights"
  is "$(is_super)" "f" "$what: the owner did not become superuser"
  unsuper
}

# 1. Colours by batches, serial and with two workers, as the superuser, the member and the owner.
for caller in postgres $member $owner; do
  for jobs in 1 2; do
    db=s96_c_${caller#sec96_}_$jobs
    make_db $db; plant_shape $db; keep_colours $db
    before=$(unconverted $db)
    out=$(as $caller $db -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 100, method => 'batch', jobs => $jobs)")
    check_clean $db "colors convert batch, jobs $jobs, called by $caller"
    is "$(unconverted $db)" "0" "colors convert batch, jobs $jobs, by $caller: every shape converted ($before before)"
    ok "$([ "$(owner_runs $db)" -gt 0 ] && echo 0 || echo 1)" "colors convert batch, jobs $jobs, by $caller: the plants fired, as the owner"
    [ "$(unconverted $db)" = 0 ] || diag "$out"
  done
done

# 2. The revert of a subset, and convert_tx, as the superuser.
db=s96_c_tx; make_db $db; plant_shape $db
roi=$(q $db -c "SELECT min(roi) FROM shape")
out=$(as postgres $db -c "SELECT converted FROM omero_colors_convert_tx('argb_to_rgba', roi_ids => ARRAY[$roi]::int8[])")
ok "$([ "$out" -gt 0 ] 2>/dev/null && echo 0 || echo 1)" "convert_tx of ROI $roi as the superuser converts ($out)"
out=$(as postgres $db -c "CALL omero_colors_convert('rgba_to_argb', roi_ids => ARRAY[$roi]::int8[], batch_size => 5)")
check_clean $db "convert_tx and a subset revert as the superuser"

# 3. The one-pass rewrite as the superuser: it checks shape's CHECK constraint again and rebuilds
# its indexes (the index expression), code of shape's owner.
db=s96_c_rewrite; make_db $db; plant_shape $db; keep_colours $db
out=$(as postgres $db -c "SELECT converted FROM omero_colors_rewrite('argb_to_rgba')")
is "$(unconverted $db)" "0" "colors rewrite as the superuser converts every shape ($out)"
ok "$([ "$(owner_runs $db)" -gt 0 ] && echo 0 || echo 1)" "colors rewrite: the CHECK and the index expression ran, as the owner"
check_clean $db "colors rewrite as the superuser"

# 4. The tool, --db-user postgres, colors convert --roi (the batch path) and the whole conversion.
t=$(scratch)
db=s96_tool; make_db $db; plant_shape $db
srv=$t/OMERO.server; make_sample_server "$srv" 5.4.10; sample_config "$srv" "omero.db.name=$db" "omero.db.user=$owner"
roi=$(q $db -c "SELECT min(roi) FROM shape")
out=$("$TOOL" --server-dir "$srv" --db-user postgres colors convert --roi "$roi" 2>&1); rc=$?
is "$rc" "0" "tool --db-user postgres colors convert --roi $roi works"
check_clean $db "tool --db-user postgres colors convert --roi"
out=$("$TOOL" --server-dir "$srv" --db-user postgres colors convert 2>&1); rc=$?
is "$rc" "0" "tool --db-user postgres colors convert (every shape) works"
check_clean $db "tool --db-user postgres colors convert"

# 5. Orphans: delete and restore as the superuser, with triggers on annotation.
db=s96_orph; make_db $db
as $owner $db -v ON_ERROR_STOP=1 -c "CREATE TRIGGER p_del AFTER DELETE ON annotation FOR EACH ROW EXECUTE FUNCTION plant.trg()" \
   -c "CREATE TRIGGER p_ins AFTER INSERT ON annotation FOR EACH STATEMENT EXECUTE FUNCTION plant.trg()" >/dev/null
n=$(q $db -c "SELECT count(*) FROM annotation")
run=$(as postgres $db -c "SELECT run_id FROM omero_orphans_delete(dry_run => false)")
ok "$([ "$(q $db -c "SELECT count(*) FROM annotation")" -lt "$n" ] && echo 0 || echo 1)" "orphans delete as the superuser deletes (run $run)"
check_clean $db "orphans delete as the superuser"
out=$(as postgres $db -c "SELECT * FROM omero_orphans_restore($run)")
is "$(q $db -c "SELECT count(*) FROM annotation")" "$n" "orphans restore as the superuser restores every row"
ok "$([ "$(owner_runs $db)" -gt 0 ] && echo 0 || echo 1)" "orphans: the triggers fired, as the owner"
check_clean $db "orphans restore as the superuser"
out=$(as postgres $db -c "CALL omero_orphans_delete_batches(dry_run => false, batch_size => 7)")
is "$(q $db -c "SELECT count(*) FROM annotation")" "$((n - $(q $db -c "SELECT deleted FROM omero_upgrade.orphan_run WHERE id = $run")))" "orphans delete in batches as the superuser deletes the same rows again"
check_clean $db "orphans delete in batches as the superuser"

# 6. Wells: triggers on the link tables, session and event, a default on eventlog.
db=s96_wells; make_db $db OMERO5.4__0
as $owner $db -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE TRIGGER p_wl AFTER INSERT ON wellannotationlink FOR EACH ROW EXECUTE FUNCTION plant.trg();
CREATE TRIGGER p_il AFTER DELETE ON imageannotationlink FOR EACH STATEMENT EXECUTE FUNCTION plant.trg();
CREATE TRIGGER p_se AFTER INSERT ON session FOR EACH ROW EXECUTE FUNCTION plant.trg();
CREATE TRIGGER p_ev AFTER INSERT ON event FOR EACH ROW EXECUTE FUNCTION plant.trg();
ALTER TABLE eventlog ALTER COLUMN external_id SET DEFAULT plant.def();
TRUNCATE plant.log;
SQL
links=$(q $db -c "SELECT count(*) FROM wellannotationlink")
out=$(as postgres $db -c "SELECT sum(links_created) FROM omero_annotations_move_to_wells(plate_ids => '{1,2,3,4}', remove_image_links => true, dry_run => false)")
ok "$([ "$(q $db -c "SELECT count(*) FROM wellannotationlink")" -gt "$links" ] && echo 0 || echo 1)" "wells move as the superuser links ($out)"
ok "$([ "$(owner_runs $db)" -gt 0 ] && echo 0 || echo 1)" "wells move: the triggers and the default fired, as the owner"
check_clean $db "wells move as the superuser"

# 7. A role that is not the owner, not a member, not a superuser, granted by hand every right a
# call needs: OMERO's code would run with its rights, so the call is refused before anything runs.
db=s96_other; make_db $db; plant_shape $db
q $db -c "GRANT SELECT, UPDATE ON shape, roi TO $other" -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO $other" >/dev/null
keep_colours $db
q $db -c "GRANT USAGE ON SCHEMA omero_upgrade TO $other" -c "GRANT ALL ON ALL TABLES IN SCHEMA omero_upgrade TO $other" \
      -c "GRANT ALL ON ALL SEQUENCES IN SCHEMA omero_upgrade TO $other" >/dev/null
before=$(unconverted $db)
out=$(as $other $db -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 100, method => 'batch')")
like "$out" "runs OMERO's own code.*runs as OMERO's database role \"$owner\": role \"$other\" is not that role" "another role: refused, naming the owner"
is "$(unconverted $db)" "$before" "another role: no shape changed"
is "$(q $db -c "SELECT count(*) FROM plant.log")" "0" "another role: no plant ran"
out=$(as $other $db -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 100, method => 'batch', jobs => 2)")
like "$out" "is not that role, not a member of it and not a superuser" "another role, jobs 2: refused"
is "$(q $db -c "SELECT count(*) FROM plant.log")" "0" "another role, jobs 2: no plant ran"
check_clean $db "another role"

# 8. Reading: a view in the place of one of OMERO's tables runs its functions as the reader; a
# row-level security policy runs as a reader it applies to.
db=s96_view; make_db $db
as $owner $db -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE FUNCTION plant.v() RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM plant.fire('view'); RETURN true; END $$;
ALTER TABLE originalfile RENAME TO originalfile_t;
CREATE VIEW originalfile AS SELECT * FROM originalfile_t WHERE plant.v();
SQL
as $owner $db -c "SELECT count(*) FROM originalfile" >/dev/null   # the plant works when read
ok "$([ "$(q $db -c "SELECT count(*) FROM plant.log")" -gt 0 ] && echo 0 || echo 1)" "the view plant runs when read"
clear_log $db
out=$(as postgres $db -c "SELECT count(*) FROM omero_filename_trace_2017_sv5()")
like "$out" "OMERO's table .*originalfile is not a table \(relkind v\)" "a view in place of originalfile: refused"
check_clean $db "a view in place of originalfile, read by the superuser"

db=s96_rls; make_db $db
as $owner $db -v ON_ERROR_STOP=1 <<SQL >/dev/null
CREATE FUNCTION plant.pol() RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN PERFORM plant.fire('policy'); RETURN true; END \$\$;
GRANT EXECUTE ON FUNCTION plant.pol() TO PUBLIC;
ALTER TABLE annotation ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON annotation USING (plant.pol());
GRANT SELECT ON ALL TABLES IN SCHEMA public TO $other;
SQL
as $other $db -c "SELECT count(*) FROM annotation" >/dev/null   # the plant works for a reader
ok "$([ "$(q $db -c "SELECT count(*) FROM plant.log WHERE run_by = '$other'")" -gt 0 ] && echo 0 || echo 1)" "the policy plant runs for a reader"
clear_log $db
out=$(as $other $db -c "SELECT count(*) FROM omero_orphans_scan()")
like "$out" "row-level security is active for you on OMERO's tables: (public\\.)?annotation" "a policy that applies to the reader: refused"
is "$(foreign_runs $db)" "" "a policy: it did not run as the reader"
out=$(as postgres $db -c "SELECT count(*) FROM omero_orphans_scan()")
ok "$([ "$out" -gt 0 ] 2>/dev/null && echo 0 || echo 1)" "the superuser (who bypasses row security) scans ($out)"
check_clean $db "row-level security"

# 10. The tool's own writes to OMERO's tables (the undo of a wells move) with --db-user postgres:
# they run as OMERO's user (omero.db.user), as its upgrade scripts do, never as the superuser.
db=s96_wundo; make_db $db OMERO5.4__0
srv=$t/OMERO.server-w; make_sample_server "$srv" 5.4.10; sample_config "$srv" "omero.db.name=$db" "omero.db.user=$owner"
mkdir -m 700 "$t/j"
out=$("$TOOL" --server-dir "$srv" --db-user postgres annotations move-to-wells --plate 2 --remove-image-links --apply --journal "$t/j/move.json" 2>&1); rc=$?
is "$rc" "0" "tool --db-user postgres annotations move-to-wells --apply works"
as $owner $db -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE TRIGGER p_wd AFTER DELETE ON wellannotationlink FOR EACH STATEMENT EXECUTE FUNCTION plant.trg();
CREATE TRIGGER p_ii AFTER INSERT ON imageannotationlink FOR EACH STATEMENT EXECUTE FUNCTION plant.trg();
CREATE TRIGGER p_se AFTER INSERT ON session FOR EACH ROW EXECUTE FUNCTION plant.trg();
TRUNCATE plant.log;
SQL
out=$("$TOOL" --server-dir "$srv" --db-user postgres annotations move-to-wells --undo "$t/j/move.json" --apply 2>&1); rc=$?
is "$rc" "0" "tool --db-user postgres annotations move-to-wells --undo --apply works"
[ "$rc" = 0 ] || diag "$out"
ok "$([ "$(owner_runs $db)" -gt 0 ] && echo 0 || echo 1)" "wells undo: the triggers fired, as the owner"
check_clean $db "tool --db-user postgres wells undo"

# 11. Deferrable triggers fire at commit, after the switch back: one on shape is refused before
# anything runs; one OMERO's code creates while it runs (on a table of its own) is refused by
# PostgreSQL (no deferred event may be queued in a security-restricted operation); the owner's
# own calls keep them.
db=s96_defer; make_db $db; plant_shape $db; keep_colours $db
as $owner $db -v ON_ERROR_STOP=1 -c "CREATE CONSTRAINT TRIGGER p_late AFTER UPDATE ON shape DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION plant.trg()" >/dev/null
before=$(unconverted $db)
out=$(as postgres $db -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 100, method => 'batch')")
like "$out" "triggers that fire at commit \\(INITIALLY DEFERRED\\) are in the database: p_late on (public\\.)?shape" "a deferrable trigger on shape: refused"
is "$(unconverted $db)" "$before" "a deferrable trigger on shape: no shape changed"
check_clean $db "a deferrable trigger on shape"
out=$(as $owner $db -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 100, method => 'batch')")
is "$(unconverted $db)" "0" "a deferrable trigger on shape: the owner's own call converts"
ok "$([ "$(q $db -c "SELECT count(*) FROM plant.log WHERE plant LIKE 'shape AFTER UPDATE ROW'")" -gt 0 ] && echo 0 || echo 1)" "the owner's call: its deferred trigger fired at commit, as the owner"
check_clean $db "the owner's call with a deferrable trigger"
# A deferred foreign key (its trigger is PostgreSQL's, run as the tables' owners): refused by
# name for the superuser, the owner's own delete works.
db=s96_deferfk; make_db $db
q $db -A -t -c "SELECT format('ALTER TABLE %s ALTER CONSTRAINT %I DEFERRABLE INITIALLY DEFERRED;', conrelid::regclass, conname)
                  FROM pg_constraint WHERE contype = 'f' AND confrelid = 'annotation'::regclass" | as $owner $db -v ON_ERROR_STOP=1 >/dev/null
n=$(q $db -c "SELECT count(*) FROM annotation")
out=$(as postgres $db -c "SELECT deleted FROM omero_orphans_delete(dry_run => false)")
like "$out" "triggers that fire at commit \\(INITIALLY DEFERRED\\) are in the database: .* and [0-9]+ more" "a deferred foreign key: the superuser's delete is refused, naming the triggers"
is "$(q $db -c "SELECT count(*) FROM annotation")" "$n" "a deferred foreign key: nothing deleted"
out=$(as $owner $db -c "SELECT deleted FROM omero_orphans_delete(dry_run => false)")
ok "$([ "$(q $db -c "SELECT count(*) FROM annotation")" -lt "$n" ] && echo 0 || echo 1)" "a deferred foreign key: the owner's own delete works ($out)"
check_clean $db "a deferred foreign key"
db=s96_defer2; make_db $db; keep_colours $db
as $owner $db -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE FUNCTION plant.late() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'p_later') THEN
        CREATE CONSTRAINT TRIGGER p_later AFTER INSERT ON plant.log DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION plant.trg();
    END IF;
    INSERT INTO plant.log (plant, run_by) VALUES ('late setup', current_user);
    PERFORM pg_catalog.set_config('application_name', 'set by a plant', false);
    RETURN NULL;
END $$;
CREATE TRIGGER p_setup AFTER UPDATE ON shape FOR EACH STATEMENT EXECUTE FUNCTION plant.late();
SQL
before=$(unconverted $db)
out=$(as postgres $db -c "SET application_name = 'mine'" -c "SELECT converted FROM omero_colors_convert_tx('argb_to_rgba')" -c "SHOW application_name")
like "$out" "cannot fire deferred trigger within security-restricted operation" "a deferrable trigger made by OMERO's code while it runs: refused (by PostgreSQL: its event is queued as OMERO's role)"
is "$(unconverted $db)" "$before" "…and nothing of the call stays (the transaction is rolled back)"
check_clean $db "a deferrable trigger made while OMERO's code runs"
q $db -c "DROP TRIGGER p_setup ON shape" -c "CREATE OR REPLACE FUNCTION plant.late() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN PERFORM pg_catalog.set_config('application_name', 'set by a plant', false); RETURN NULL; END \$\$" \
      -c "ALTER FUNCTION plant.late() OWNER TO $owner" -c "CREATE TRIGGER p_setup AFTER UPDATE ON shape FOR EACH STATEMENT EXECUTE FUNCTION plant.late()" >/dev/null
out=$(as postgres $db -c "SET application_name = 'mine'" -c "SELECT converted > 0 FROM omero_colors_convert_tx('argb_to_rgba')" -c "SHOW application_name")
is "$out" "$(printf 't\nmine')" "a setting OMERO's code changes does not outlive the statement"

# 12. Found by a hostile review of the above. (a) The wells move reads its tables through the
# view check too. (b) A table swapped for a view between two batches of a CALL (the procedure
# commits, so its locks are gone): each new transaction locks and checks OMERO's tables again.
# (c) The orphans restore's checks make rows of annotation's type: a domain's CHECK on one of its
# columns runs as OMERO's code. (d) The tool's move-to-wells --apply and (e) its precheck without
# the extension run OMERO's code as omero.db.user, not as --db-user postgres.
plant_view() { # db table: the table renamed, a view that fires in its place
  as $owner "$1" -v ON_ERROR_STOP=1 <<SQL >/dev/null
CREATE FUNCTION plant.v() RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN PERFORM plant.fire('view'); RETURN true; END \$\$;
GRANT EXECUTE ON FUNCTION plant.v() TO PUBLIC;
ALTER TABLE $2 RENAME TO ${2}_t;
CREATE VIEW $2 AS SELECT * FROM ${2}_t WHERE plant.v();
SQL
}
db=s96_wview; make_db $db OMERO5.4__0; plant_view $db wellsample
out=$(as postgres $db -c "SELECT count(*) FROM omero_annotations_move_to_wells(plate_ids => '{1,2,3,4}', remove_image_links => true, dry_run => true)")
like "$out" "OMERO's table .*wellsample is not a table \(relkind v\)" "(a) a view in place of wellsample: the wells move refuses"
check_clean $db "(a) a view in place of wellsample"
swap() { # db table call: a slow statement trigger, the call in the background, the swap after 1.5 s
  local db=$1 tbl=$2 call=$3
  as $owner $db -v ON_ERROR_STOP=1 <<SQL >/dev/null
CREATE FUNCTION plant.v() RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS \$\$
BEGIN PERFORM plant.fire('view'); RETURN true; END \$\$;
GRANT EXECUTE ON FUNCTION plant.v() TO PUBLIC;
CREATE FUNCTION plant.slow() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN PERFORM pg_catalog.pg_sleep(0.4); RETURN NULL; END \$\$;
CREATE TRIGGER p_slow AFTER UPDATE OR INSERT OR DELETE ON $tbl FOR EACH STATEMENT EXECUTE FUNCTION plant.slow();
SQL
  ( as postgres $db -c "$call" > "$t/$db.out" 2>&1 ) &
  local bg=$!
  sleep 1.5
  as $owner $db -v ON_ERROR_STOP=1 -c "BEGIN" -c "ALTER TABLE $tbl RENAME TO ${tbl}_t" \
     -c "CREATE VIEW $tbl AS SELECT * FROM ${tbl}_t WHERE plant.v()" -c "COMMIT" > "$t/$db.swap" 2>&1
  wait $bg
  like "$(cat "$t/$db.out")" "is not a table \(relkind v\)" "(b) $tbl swapped for a view between two batches: the next batch refuses"
  check_clean $db "(b) $tbl swapped for a view mid-call"
}
db=s96_swap; make_db $db; swap $db shape "CALL omero_colors_convert('argb_to_rgba', batch_size => 100, method => 'batch')"
db=s96_swapw; make_db $db OMERO5.4__0
swap $db wellannotationlink "CALL omero_annotations_move_to_wells_in_batches(plate_ids => '{1,2,3,4}', remove_image_links => true, dry_run => false, batch_size => 1)"
db=s96_dom; make_db $db
run=$(as postgres $db -c "SELECT run_id FROM omero_orphans_delete(dry_run => false)")
as $owner $db -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE FUNCTION plant.okt(text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM plant.fire('domain'); RETURN true; END $$;
GRANT EXECUTE ON FUNCTION plant.okt(text) TO PUBLIC;
CREATE DOMAIN plant.dom AS varchar(255) CHECK (plant.okt(VALUE::text));
ALTER TABLE annotation ALTER COLUMN discriminator TYPE plant.dom;
TRUNCATE plant.log;
SQL
out=$(as postgres $db -c "SELECT omero_orphans_restore($run)")
like "$out" "^[1-9][0-9]*$" "(c) orphans restore with a domain on annotation.discriminator, as the superuser, restores ($out)"
ok "$([ "$(owner_runs $db)" -gt 0 ] && echo 0 || echo 1)" "(c) the domain's CHECK ran, as the owner"
check_clean $db "(c) a domain on annotation, restore as the superuser"
db=s96_tmove; make_db $db OMERO5.4__0; plant_view $db session
srv=$t/OMERO.server-m; make_sample_server "$srv" 5.4.10; sample_config "$srv" "omero.db.name=$db" "omero.db.user=$owner"
out=$("$TOOL" --server-dir "$srv" --db-user postgres annotations move-to-wells --plate 2 --remove-image-links --apply --journal "$t/j/move2.json" 2>&1)
check_clean $db "(d) tool --db-user postgres annotations move-to-wells --apply, a view in place of session"
db=s96_pre; make_db $db
as $owner $db -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE FUNCTION plant.okt(pg_catalog.text) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM plant.fire('domain public.text'); RETURN true; END $$;
GRANT EXECUTE ON FUNCTION plant.okt(pg_catalog.text) TO PUBLIC;
CREATE DOMAIN public.text AS pg_catalog.text CHECK (plant.okt(VALUE));
SQL
q $db -c "DROP EXTENSION omero_upgrade" >/dev/null
srv=$t/OMERO.server-p; make_sample_server "$srv" 5.4.10; sample_config "$srv" "omero.db.name=$db" "omero.db.user=$owner"
out=$("$TOOL" --server-dir "$srv" --db-user postgres precheck 2>&1)
check_clean $db "(e) tool --db-user postgres precheck without the extension, a domain public.text"

# 9. The workers take the caller's session_replication_role: with replica, the same triggers fire
# (none) with one job and with two.
for jobs in 1 2; do
  db=s96_rep_$jobs; make_db $db; plant_shape $db
  as postgres $db -c "SET session_replication_role = replica" \
     -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 100, method => 'batch', jobs => $jobs)" >/dev/null
  is "$(q $db -c "SELECT count(*) FROM plant.log WHERE plant LIKE 'shape%'")" "0" "session_replication_role replica, jobs $jobs: no trigger fired"
  unsuper
done
done_testing
