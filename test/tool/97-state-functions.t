# The extension's state through functions (1.4, issue 19: the tool reads none of the extension's
# private tables): omero_colors_runs(), omero_orphans_runs(), omero_site_sql_records() and
# omero_site_sql_record(). Each gives what the table holds, with the caller's rights (a role
# without rights on the state gets PostgreSQL's permission error, not an empty answer).
source "$(dirname "$0")/../lib/tap.sh"

owner=st97_owner
psql -X -q -c "CREATE ROLE $owner LOGIN" -c "CREATE ROLE st97_nobody LOGIN" postgres
fixture_db st97 --owner "$owner"
as() { local role=$1; shift; PGOPTIONS="-c client_min_messages=warning" psql -X -q -A -t -U "$role" -d st97 "$@" 2>&1; }
as $owner -c "CREATE EXTENSION omero_upgrade" >/dev/null

# Colours: a subset run, then a full one; the function lists both with the table's counts.
roi=$(q st97 -c "SELECT min(roi) FROM shape")
as $owner -c "CALL omero_colors_convert('argb_to_rgba', roi_ids => ARRAY[$roi]::int8[])" >/dev/null
as $owner -c "CALL omero_colors_convert('argb_to_rgba', batch_size => 500, method => 'batch')" >/dev/null
is "$(as $owner -c "SELECT string_agg(concat_ws(' ', run_id, direction, method, selected, converted, already, finished_at IS NOT NULL, run_by), '; ' ORDER BY run_id) FROM omero_colors_runs()")" \
   "$(q st97 -c "SELECT string_agg(concat_ws(' ', run_id, direction, method, selected, converted, already, finished_at IS NOT NULL, run_by), '; ' ORDER BY run_id) FROM omero_upgrade.color_runs")" \
   "omero_colors_runs() lists every run with the table's counts"
like "$(as $owner -c "SELECT count(*) || ' ' || bool_and(run_by = '$owner') || ' ' || max(converted) FROM omero_colors_runs()")" "^2 true [1-9][0-9]*$" \
   "… two runs, by the owner, with shapes converted"
is "$(as $owner -c "SELECT scope->>'all' FROM omero_colors_runs() ORDER BY run_id DESC LIMIT 1")" "true" "… the full run's scope"

# Orphans: a delete run, then its restore.
as $owner -c "SELECT * FROM omero_orphans_delete(dry_run => false)" >/dev/null
is "$(as $owner -c "SELECT run_id || ' ' || status || ' ' || (deleted > 0) || ' ' || (deleted = scanned - skipped) FROM omero_orphans_runs()")" "1 deleted true true" \
   "omero_orphans_runs(): the delete run, its status and counts"
as $owner -c "SELECT omero_orphans_restore(1)" >/dev/null
is "$(as $owner -c "SELECT status || ' ' || (restored_at IS NOT NULL) FROM omero_orphans_runs() WHERE run_id = 1")" "restored true" "… then restored"

# Site SQL: record a file, list it; a second record of the same file is refused.
sha=$(printf 'b%.0s' $(seq 64))
out=$(as $owner -c "SELECT omero_site_sql_record('10-site.sql', '$sha', 'alice', 'db.example.org', 'OMERO5.3__1')")
is "$out" "" "omero_site_sql_record() records a file"
is "$(as $owner -c "SELECT concat_ws(' ', file_name, sha256 = '$sha', db_role, os_user, host, db_version, applied_at IS NOT NULL) FROM omero_site_sql_records()")" \
   "10-site.sql t $owner alice db.example.org OMERO5.3__1 t" "omero_site_sql_records() lists it, with who recorded it"
like "$(as $owner -c "SELECT omero_site_sql_record('10-site.sql', '$sha', 'alice', 'db.example.org', 'OMERO5.3__1')")" "duplicate key value" \
   "… a second record of the same file is refused"
like "$(as $owner -c "SELECT omero_site_sql_record('11-bad.sql', 'not a checksum', NULL, NULL, NULL)")" "site_sql_sha256_check" \
   "… and a record without a SHA-256"

# The caller's rights: a role without rights on the state is told so.
for f in "omero_colors_runs()" "omero_orphans_runs()" "omero_site_sql_records()"; do
  like "$(as st97_nobody -c "SELECT count(*) FROM $f")" "permission denied for (table|schema) " "$f for a role without rights on the state: permission denied"
done
like "$(as st97_nobody -c "SELECT omero_site_sql_record('12-x.sql', '$sha', NULL, NULL, NULL)")" "permission denied" \
   "omero_site_sql_record() for a role without rights: permission denied"
done_testing
