// The tool's side of the omero_upgrade extension's SQL contract, in one file: one typed function
// per entry point the tool calls. Every name is qualified (the extension's functions by its
// schema, as the server quotes it; built-ins and types by pg_catalog), every value a parameter.
// The tool reads none of the extension's private tables (omero_upgrade.*) but through these;
// the few that have no public function yet are marked PRIVATE below (README "Design": the
// extension's side is to return what the tool needs).
#pragma once

#include "db.hpp"

#include <functional>
#include <optional>
#include <string>

namespace ou::ext {

// The extension's schema, quoted by the server (for qualified calls); nullopt when the
// extension is not installed in this database.
std::optional<std::string> find_schema(Db &db);
// The same; a clear error (with the CREATE EXTENSION to run) when it is not installed.
std::string require_schema(Db &db);

// Whether db has the extension's state table omero_upgrade.<table> (a member of the extension):
// "history" and "site_sql" came with 1.2.
bool has_state_table(Db &db, const std::string &table);

// ---- history (1.2) ----------------------------------------------------------------------
// Whether db has the extension's history (1.2 or later).
inline bool has_history(Db &db)
{
    return has_state_table(db, "history");
}
// omero_history(), oldest first: id, recorded_at (ISO 8601 UTC with milliseconds), db_role,
// os_user, host, kind, what, from_version, to_version, checksums and details (jsonb as text).
Rows history(Db &db, const std::string &schema);
// omero_history_record(): one change (checksums and details: jsonb text).
void history_record(Db &db, const std::string &schema, const std::string &kind, const std::string &what,
                    const Value &from_version, const Value &to_version, const std::string &checksums,
                    const std::string &details, const std::string &os_user, const std::string &host);

// ---- versions and precheck ---------------------------------------------------------------
// omero_precheck_report(target): check_name, status, detail (target null: the newest known).
Rows precheck_report(Db &db, const std::string &schema, const Value &target);
// The last to_version of omero_upgrade_path() (null at the newest version).
Value newest_reachable(Db &db, const std::string &schema);
// omero_db_version().
Value db_version(Db &db, const std::string &schema);
// The highest PostgreSQL major any hop of omero_upgrade_path(target) needs (null: no hop).
Value pg_prerequisite(Db &db, const std::string &schema, const std::string &target);

// ---- colours -----------------------------------------------------------------------------
// What a colour conversion works on: direction (argb_to_rgba | rgba_to_argb), the subset
// (int8[] literals, null: not given) and the batch size.
struct ColorsRequest {
    std::string direction;
    Value rois, images, shapes;
    int batch_size = 50000;
};
// omero_colors_rewrite(direction, dry_run): the one-pass rewrite's counts.
Rows colors_rewrite(Db &db, const std::string &schema, const std::string &direction, bool dry_run);
// omero_colors_convert_tx(…, dry_run => true): what a conversion would do.
Rows colors_convert_dry_run(Db &db, const std::string &schema, const ColorsRequest &r);
// CALL omero_colors_convert(…, dry_run => false, method, jobs), tick called about every second.
void colors_convert(Db &db, const std::string &schema, const ColorsRequest &r, const std::string &method, int jobs,
                    const std::function<void()> &tick);
// PRIVATE (omero_upgrade.color_runs; no public function): the counts of this session's newest run:
// run_id, method, selected, converted, restored, already, changed, purged, raced.
Rows colors_session_run(Db &db);
// omero_colors_status(): per direction.
Rows colors_status(Db &db, const std::string &schema);

// ---- orphan annotations ------------------------------------------------------------------
// include_ns: a text[] literal (null: none).
Rows orphans_summary(Db &db, const std::string &schema, const Value &include_ns);
Rows orphans_scan(Db &db, const std::string &schema, const Value &include_ns);
// omero_orphans_delete(dry_run => true, …): scanned, bytes.
Rows orphans_delete_dry_run(Db &db, const std::string &schema, const Value &include_ns, int batch_size);
// CALL omero_orphans_delete_batches(dry_run => false, …).
void orphans_delete_batches(Db &db, const std::string &schema, const Value &include_ns, int batch_size, bool fast);
// PRIVATE (omero_upgrade.orphan_run; no public function): the current user's newest delete run:
// id, status, scanned, deleted, skipped, bytes.
Rows orphans_newest_run(Db &db);
// PRIVATE (omero_upgrade.orphan_run): status, deleted of run id.
Rows orphans_run(Db &db, long long id);
// omero_orphans_restore(run): how many were put back.
Value orphans_restore(Db &db, const std::string &schema, long long run);

// ---- annotations to wells ----------------------------------------------------------------
struct WellsRequest {
    Value screens, plates, wells;  // int8[] literals, null: not given
    Value kind, ns;                // null: all
    bool remove_image_links = false;
    int batch_size = 0;
};
// omero_annotations_move_to_wells(…, dry_run => true): per plate, ordered by plate_id.
Rows wells_move_dry_run(Db &db, const std::string &schema, const WellsRequest &r);
// CALL omero_annotations_move_to_wells_in_batches(…, dry_run => false): the totals.
Rows wells_move(Db &db, const std::string &schema, const WellsRequest &r);

// ---- site SQL (1.2) ----------------------------------------------------------------------
// PRIVATE (omero_upgrade.site_sql; no public function): every record, by file name: name,
// sha256, applied_at, db_role, os_user, host, db_version. (The record of a file is written by
// the psql run of the file itself, in its transaction: tool/site_sql.cpp.)
Rows site_sql_records(Db &db);
// PRIVATE (omero_upgrade.site_sql): the recorded SHA-256 of one file (null: no record).
Value site_sql_sha256(Db &db, const std::string &file_name);

} // namespace ou::ext
