// See extension_sql.hpp.
#include "extension_sql.hpp"

namespace ou::ext {

namespace {

const char *flag(bool b)
{
    return b ? "true" : "false";
}

// omero_colors_convert's and omero_colors_convert_tx's leading arguments.
const char *const k_colors_args = "$1, $2::pg_catalog.int8[], $3::pg_catalog.int8[], $4::pg_catalog.int8[], $5::pg_catalog.int4";

std::vector<Value> colors_params(const ColorsRequest &r)
{
    return {r.direction, r.rois, r.images, r.shapes, std::to_string(r.batch_size)};
}

// omero_annotations_move_to_wells(_in_batches)'s arguments, dry_run between the sixth and the batch size.
std::string wells_args(bool dry_run)
{
    return std::string("$1::pg_catalog.int8[], $2::pg_catalog.int8[], $3::pg_catalog.int8[], $4::pg_catalog.text, "
                       "$5::pg_catalog.text, $6::pg_catalog.bool, ") +
           flag(dry_run) + ", $7::pg_catalog.int4";
}

std::vector<Value> wells_params(const WellsRequest &r)
{
    return {r.screens, r.plates, r.wells, r.kind, r.ns, flag(r.remove_image_links), std::to_string(r.batch_size)};
}

} // namespace

std::optional<std::string> find_schema(Db &db)
{
    return db.scalar("SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e"
                     "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
                     " WHERE e.extname OPERATOR(pg_catalog.=) 'omero_upgrade'::pg_catalog.name");
}

std::string require_schema(Db &db)
{
    auto s = find_schema(db);
    if (!s)
        throw CommandError("the omero_upgrade extension is not installed in the database " + db.params().dbname,
                           "install it as the database owner or a superuser: CREATE EXTENSION omero_upgrade;");
    return *s;
}

bool has_state_table(Db &db, const std::string &table)
{
    Value v = db.scalar(
        "SELECT pg_catalog.count(*)::pg_catalog.text FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
        "JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
        " AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog.\"char\" "
        "JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid "
        " AND e.extname OPERATOR(pg_catalog.=) 'omero_upgrade'::pg_catalog.name "
        "WHERE n.nspname OPERATOR(pg_catalog.=) 'omero_upgrade'::pg_catalog.name "
        "  AND c.relname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
        {table});
    return v && *v != "0";
}

Rows history(Db &db, const std::string &schema)
{
    return db.query(
        "SELECT h.id::pg_catalog.text AS id, "
        "pg_catalog.to_char(pg_catalog.timezone('UTC'::pg_catalog.text, h.recorded_at), "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'::pg_catalog.text) AS recorded_at, "
        "h.db_role::pg_catalog.text AS db_role, h.os_user, h.host, h.kind, h.what, h.from_version, h.to_version, "
        "h.checksums::pg_catalog.text AS checksums, h.details::pg_catalog.text AS details "
        "FROM " + schema + ".omero_history() h ORDER BY h.id");
}

void history_record(Db &db, const std::string &schema, const std::string &kind, const std::string &what,
                    const Value &from_version, const Value &to_version, const std::string &checksums,
                    const std::string &details, const std::string &os_user, const std::string &host)
{
    db.query("SELECT " + schema + ".omero_history_record($1::pg_catalog.text, $2::pg_catalog.text, $3::pg_catalog.text, "
             "$4::pg_catalog.text, $5::pg_catalog.jsonb, $6::pg_catalog.jsonb, $7::pg_catalog.text, $8::pg_catalog.text)",
             {kind, what, from_version, to_version, checksums, details, os_user, host});
}

Rows precheck_report(Db &db, const std::string &schema, const Value &target)
{
    return db.query("SELECT check_name, status, detail FROM " + schema + ".omero_precheck_report($1::pg_catalog.text)",
                    {target});
}

Value newest_reachable(Db &db, const std::string &schema)
{
    return db.scalar("SELECT to_version FROM " + schema + ".omero_upgrade_path() ORDER BY step DESC LIMIT 1");
}

Value db_version(Db &db, const std::string &schema)
{
    return db.scalar("SELECT " + schema + ".omero_db_version()");
}

Value pg_prerequisite(Db &db, const std::string &schema, const std::string &target)
{
    return db.scalar("SELECT pg_catalog.max(pg_prerequisite)::pg_catalog.text FROM " + schema +
                         ".omero_upgrade_path($1::pg_catalog.text)",
                     {target});
}

Rows colors_rewrite(Db &db, const std::string &schema, const std::string &direction, bool dry_run)
{
    return db.query("SELECT * FROM " + schema + ".omero_colors_rewrite($1, $2::pg_catalog.bool)", {direction, flag(dry_run)});
}

Rows colors_convert_dry_run(Db &db, const std::string &schema, const ColorsRequest &r)
{
    return db.query("SELECT * FROM " + schema + ".omero_colors_convert_tx(" + k_colors_args + ", true)", colors_params(r));
}

void colors_convert(Db &db, const std::string &schema, const ColorsRequest &r, const std::string &method, int jobs,
                    const std::function<void()> &tick)
{
    std::vector<Value> params = colors_params(r);
    params.push_back(method);
    params.push_back(std::to_string(jobs));
    db.query_ticking("CALL " + schema + ".omero_colors_convert(" + k_colors_args + ", false, $6, $7::pg_catalog.int4)",
                     params, 1.0, tick);
}

Rows colors_session_run(Db &db)
{
    return db.query("SELECT run_id, method, selected, converted, restored, already, changed, purged, raced"
                    "  FROM omero_upgrade.color_runs WHERE backend_pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()"
                    " ORDER BY run_id DESC LIMIT 1");
}

Rows colors_status(Db &db, const std::string &schema)
{
    return db.query("SELECT direction, converted, pending, purged, coalesce(last_at::pg_catalog.text, '') AS last_at, runs,"
                    "       running_runs, interrupted_runs, to_convert, to_restore, left_alone FROM " + schema +
                    ".omero_colors_status()");
}

Rows orphans_summary(Db &db, const std::string &schema, const Value &include_ns)
{
    return db.query("SELECT kind, coalesce(discriminator, '') AS discriminator, coalesce(ns_kind, '') AS ns_kind,"
                    "       annotations, coalesce(bytes, 0) AS bytes, coalesce(detail, '') AS detail"
                    "  FROM " + schema + ".omero_orphans_summary($1::pg_catalog.text[])",
                    {include_ns});
}

Rows orphans_scan(Db &db, const std::string &schema, const Value &include_ns)
{
    return db.query("SELECT id, discriminator, coalesce(ns, '') AS ns FROM " + schema +
                        ".omero_orphans_scan($1::pg_catalog.text[]) ORDER BY id",
                    {include_ns});
}

Rows orphans_delete_dry_run(Db &db, const std::string &schema, const Value &include_ns, int batch_size)
{
    return db.query("SELECT scanned, bytes FROM " + schema +
                        ".omero_orphans_delete(true, $2::pg_catalog.int4, $1::pg_catalog.text[], false)",
                    {include_ns, std::to_string(batch_size)});
}

void orphans_delete_batches(Db &db, const std::string &schema, const Value &include_ns, int batch_size, bool fast)
{
    db.query("CALL " + schema +
                 ".omero_orphans_delete_batches(false, $2::pg_catalog.int4, $1::pg_catalog.text[], $3::pg_catalog.bool)",
             {include_ns, std::to_string(batch_size), flag(fast)});
}

Rows orphans_newest_run(Db &db)
{
    return db.query("SELECT id, status, scanned, deleted, skipped, bytes FROM omero_upgrade.orphan_run"
                    " WHERE run_by OPERATOR(pg_catalog.=) current_user ORDER BY id DESC LIMIT 1");
}

Rows orphans_run(Db &db, long long id)
{
    return db.query("SELECT status, deleted FROM omero_upgrade.orphan_run WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.int8",
                    {std::to_string(id)});
}

Value orphans_restore(Db &db, const std::string &schema, long long run)
{
    return db.scalar("SELECT " + schema + ".omero_orphans_restore($1::pg_catalog.int8)", {std::to_string(run)});
}

Rows wells_move_dry_run(Db &db, const std::string &schema, const WellsRequest &r)
{
    return db.query("SELECT plate_id, wells, wells_without_samples, image_links, links_created,"
                    "       links_already_on_well, links_removed"
                    "  FROM " + schema + ".omero_annotations_move_to_wells(" + wells_args(true) + ")"
                    " ORDER BY plate_id",
                    wells_params(r));
}

Rows wells_move(Db &db, const std::string &schema, const WellsRequest &r)
{
    return db.query("CALL " + schema + ".omero_annotations_move_to_wells_in_batches(" + wells_args(false) + ")",
                    wells_params(r));
}

Rows site_sql_records(Db &db)
{
    return db.query("SELECT file_name AS name, sha256, applied_at::pg_catalog.text AS applied_at, db_role, os_user, host, "
                    "db_version FROM omero_upgrade.site_sql ORDER BY file_name");
}

Value site_sql_sha256(Db &db, const std::string &file_name)
{
    return db.scalar("SELECT sha256 FROM omero_upgrade.site_sql WHERE file_name OPERATOR(pg_catalog.=) $1", {file_name});
}

} // namespace ou::ext
