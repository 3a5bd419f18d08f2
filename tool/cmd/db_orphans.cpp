// omero-upgrade db orphans scan|delete|restore: thin wrapper over the extension's orphan
// annotation functions (README, "Orphan annotations"). delete is a dry run unless --apply
// (README Design: the tool passes dry_run true unless told otherwise); restore, the undo, puts
// back unless --dry-run. delete commits per batch (CALL of
// omero_orphans_delete_batches) and archives every row, so Ctrl-C (a libpq cancel) leaves whole
// batches done and restorable, and running it again carries on.
#include "commands.hpp"
#include "extension_sql.hpp"
#include "extcall.hpp"
#include "settings.hpp"

namespace ou {

namespace {

struct OrphansOpts {
    std::string action;
    std::vector<std::string> include_ns;
    bool list = false, fast = false, apply = false, dry_run = false;
    int batch_size = 10000;
    long long run = 0;
};

// db orphans scan|delete|restore: one subcommand each (the command lines of the single
// "db orphans ACTION" of before parse the same, with the same JSON result).
void add_include_ns(CLI::App &sub, OrphansOpts &o)
{
    sub.add_option("--include-ns", o.include_ns, "also treat annotations of this exact custom namespace as orphans");
}

void add_db_orphans_scan_options(CLI::App &sub, OrphansOpts &o)
{
    o.action = "scan";
    add_include_ns(sub, o);
    sub.add_flag("--list", o.list, "list every orphan annotation");
}

void add_db_orphans_delete_options(CLI::App &sub, OrphansOpts &o)
{
    o.action = "delete";
    add_include_ns(sub, o);
    sub.add_option("--batch-size", o.batch_size, "annotations per batch (one commit each)")->capture_default_str();
    sub.add_flag("--fast", o.fast, "skip the per-row foreign-key triggers (superuser; see README)");
    sub.add_flag("--apply", o.apply, "delete them (without it: a dry run that changes nothing)");
    // The default anyway, kept so that older command lines still run.
    sub.add_flag("--dry-run", o.dry_run, "count, change nothing (the default)");
}

void add_db_orphans_restore_options(CLI::App &sub, OrphansOpts &o)
{
    o.action = "restore";
    sub.add_option("--run", o.run, "the delete run to put back (required)");
    sub.add_flag("--dry-run", o.dry_run, "say what would be put back, change nothing");
}

// db orphans scan: the summary by kind and namespace, and with --list every id.
int scan_orphans(const OrphansOpts &o, Db &db, const std::string &schema, const Value &ns)
{
    nlohmann::json &res = out().result();
    Rows r = ext::orphans_summary(db, schema, ns);
    nlohmann::json rows = nlohmann::json::array();
    long long total = 0;
    for (size_t i = 0; i < r.rows.size(); i++) {
        long long n = std::stoll(r.str(i, "annotations"));
        rows.push_back({{"kind", r.str(i, "kind")},
                        {"discriminator", r.str(i, "discriminator")},
                        {"ns_kind", r.str(i, "ns_kind")},
                        {"annotations", n},
                        {"bytes", std::stoll(r.str(i, "bytes"))},
                        {"detail", r.str(i, "detail")}});
        if (r.str(i, "kind") == "orphans")
            out().say("  " + r.str(i, "discriminator") + " (ns " + r.str(i, "ns_kind") + "): " + std::to_string(n) +
                      " annotation(s), " + human_bytes(std::stoull(r.str(i, "bytes"))));
        else if (r.str(i, "kind") == "total") {
            total = n;
            out().say("total: " + r.str(i, "detail"));
        } else
            out().say(r.str(i, "kind") + ": " + r.str(i, "detail"));
    }
    res["summary"] = rows;
    res["orphans"] = total;
    if (o.list) {
        Rows l = ext::orphans_scan(db, schema, ns);
        nlohmann::json ids = nlohmann::json::array();
        for (size_t i = 0; i < l.rows.size(); i++) {
            ids.push_back(std::stoll(l.str(i, "id")));
            out().say("  annotation " + l.str(i, "id") + " " + l.str(i, "discriminator") +
                      (l.str(i, "ns").empty() ? "" : " ns " + l.str(i, "ns")));
        }
        res["ids"] = ids;
    }
    return EXIT_OK;
}

// db orphans delete: a dry run, or (--apply) the delete by batches and its run.
int delete_orphans(const OrphansOpts &o, Db &db, const std::string &schema, const Value &ns)
{
    nlohmann::json &res = out().result();
    if (o.batch_size <= 0)
        throw CommandError("--batch-size must be positive");
    if (!o.apply) {
        Rows r = ext::orphans_delete_dry_run(db, schema, ns, o.batch_size);
        res["dry_run"] = true;
        res["orphans"] = std::stoll(r.str(0, "scanned"));
        out().say("would delete " + r.str(0, "scanned") + " orphan annotation(s) (" +
                  human_bytes(std::stoull(r.str(0, "bytes"))) + "), archived for restore");
        out().say("DRY RUN: nothing was changed; give --apply to delete them");
        return EXIT_OK;
    }
    res["dry_run"] = false;
    ext::orphans_delete_batches(db, schema, ns, o.batch_size, o.fast);
    Rows r = ext::orphans_newest_run(db);
    if (r.empty())
        throw CommandError("internal: the delete left no run in omero_upgrade.orphan_run");
    res["run_id"] = std::stoll(r.str(0, "id"));
    res["deleted"] = std::stoll(r.str(0, "deleted"));
    res["skipped"] = std::stoll(r.str(0, "skipped"));
    res["bytes"] = std::stoll(r.str(0, "bytes"));
    out().say("deleted " + r.str(0, "deleted") + " orphan annotation(s) in run " + r.str(0, "id") + " (" +
              r.str(0, "skipped") + " skipped: linked meanwhile); undo with: omero-upgrade db orphans restore --run " +
              r.str(0, "id"));
    return EXIT_OK;
}

// db orphans restore --run ID: the annotations of that delete run put back (or, --dry-run, counted).
int restore_orphans(const OrphansOpts &o, Db &db, const std::string &schema)
{
    nlohmann::json &res = out().result();
    if (o.run <= 0)
        throw CommandError("give the delete run to restore: --run ID", "the runs are in omero_upgrade.orphan_run");
    Rows r = ext::orphans_run(db, o.run);
    if (r.empty())
        throw CommandError("no orphan delete run " + std::to_string(o.run));
    res["run_id"] = o.run;
    if (o.dry_run) {
        res["dry_run"] = true;
        out().say("run " + std::to_string(o.run) + " (" + r.str(0, "status") + "): " +
                  (r.str(0, "status") == "restored" ? std::string("already restored, nothing to do")
                                                   : "would put back " + r.str(0, "deleted") + " annotation(s)"));
        return EXIT_OK;
    }
    Value n = ext::orphans_restore(db, schema, o.run);
    res["restored"] = std::stoll(n.value_or("0"));
    out().say("run " + std::to_string(o.run) + ": " + n.value_or("0") + " annotation(s) put back");
    return EXIT_OK;
}

int run_db_orphans(const OrphansOpts &o, Context &ctx)
{
    if (o.apply && o.dry_run)
        throw CommandError("give --apply or --dry-run, not both");
    Settings &s = ctx.settings();
    Db *db = &ctx.db();
    std::string schema = ctx.extension_schema();
    show_extension_notices(*db);
    nlohmann::json &res = out().result();
    res["action"] = o.action;
    res["database"] = s.conn.dbname;
    // Namespaces as one text[] parameter (CALL takes no subquery).
    Value ns = text_array(o.include_ns);
    if (o.action == "scan")
        return scan_orphans(o, *db, schema, ns);
    if (o.action == "delete")
        return delete_orphans(o, *db, schema, ns);
    return restore_orphans(o, *db, schema);
}

} // namespace

CommandRun setup_db_orphans_scan(CLI::App &sub)
{
    return command_setup<OrphansOpts, add_db_orphans_scan_options, run_db_orphans>(sub);
}

CommandRun setup_db_orphans_delete(CLI::App &sub)
{
    return command_setup<OrphansOpts, add_db_orphans_delete_options, run_db_orphans>(sub);
}

CommandRun setup_db_orphans_restore(CLI::App &sub)
{
    return command_setup<OrphansOpts, add_db_orphans_restore_options, run_db_orphans>(sub);
}

} // namespace ou
