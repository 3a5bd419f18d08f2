// omero-upgrade colors convert|revert|status: thin wrapper over the extension's journaled shape
// colour conversion (README, "Shape colours"). convert/revert CALL omero_colors_convert, which
// commits per batch: Ctrl-C (a libpq cancel) leaves every batch converted and journaled or
// untouched, and running the command again resumes. ROI/image/shape ids inline or from files.
#include "commands.hpp"
#include "extension_sql.hpp"
#include "extcall.hpp"
#include "help_text.hpp"
#include "progress.hpp"
#include "settings.hpp"

#include <chrono>
#include <optional>

namespace ou {

namespace {

// The one-pass rewrite's table phase (ALTER TABLE: rewrite and 7 index builds, then ANALYZE)
// against its journal phase (one read of the table into the journal), measured by bench/colors.sh.
constexpr double kRewriteFactor = 6.0;  // 7 at 2M shapes, 5.5 at 10M

struct ColorsOpts {
    std::vector<std::string> rois, roi_files, images, image_files, shapes, shape_files;
    int batch_size = 50000;
    int jobs = 1;
    bool rewrite = false, batches = false, dry_run = false;
    std::string direction;  // argb_to_rgba (convert) | rgba_to_argb (revert)
};

nlohmann::json counts_json(const Rows &r)
{
    nlohmann::json j;
    for (const char *c : {"selected", "converted", "restored", "already", "changed", "purged", "raced"})
        j[c] = std::stoll(r.str(0, c).empty() ? "0" : r.str(0, c));
    return j;
}

std::string counts_text(const nlohmann::json &c)
{
    return std::to_string(c["selected"].get<long long>()) + " shape(s) selected: " +
           std::to_string(c["converted"].get<long long>()) + " converted, " + std::to_string(c["restored"].get<long long>()) +
           " restored from the journal, " + std::to_string(c["already"].get<long long>()) + " already done, " +
           std::to_string(c["changed"].get<long long>()) + " changed by OMERO since (left alone), " +
           std::to_string(c["raced"].get<long long>()) + " changed while working (run again)";
}

void add_colors_change_options(CLI::App &sub, ColorsOpts &o)
{
    sub.add_option("--roi", o.rois, "ROI ids (comma- or space-separated; repeatable)");
    sub.add_option("--roi-file", o.roi_files, "file of ROI ids (whitespace or commas, '#' comments)");
    sub.add_option("--image", o.images, "image ids: their ROIs' shapes");
    sub.add_option("--image-file", o.image_files, "file of image ids");
    sub.add_option("--shape", o.shapes, "shape ids");
    sub.add_option("--shape-file", o.shape_files, "file of shape ids");
    sub.add_option("--batch-size", o.batch_size, "shapes per batch (one commit each)")->capture_default_str();
    sub.add_option("--jobs", o.jobs,
                   "batches converted at once, each by a background worker of the server (1: by this session; "
                   "needs as many free max_worker_processes slots)")
        ->capture_default_str();
    sub.add_flag("--rewrite", o.rewrite, "all shapes by rewriting the table once (server stopped, no other session)");
    sub.add_flag("--batches", o.batches,
                 "all shapes by batches even when the one-pass rewrite would apply (no other session, nothing "
                 "journaled: the default then rewrites the table)");
    sub.add_flag("--dry-run", o.dry_run, "count and show a sample, change nothing");
}

void add_colors_convert_options(CLI::App &sub, ColorsOpts &o)
{
    o.direction = "argb_to_rgba";
    add_colors_change_options(sub, o);
}

void add_colors_revert_options(CLI::App &sub, ColorsOpts &o)
{
    o.direction = "rgba_to_argb";
    add_colors_change_options(sub, o);
}

// The options that do not go together; subset: ids were given.
void check_colors_options(const ColorsOpts &o, bool subset)
{
    if (o.batch_size <= 0)
        throw CommandError("--batch-size must be positive");
    if (o.jobs < 1)
        throw CommandError("--jobs must be at least 1");
    if (o.jobs > 1 && o.rewrite)
        throw CommandError("--jobs converts by batches: not with --rewrite");
    if (o.rewrite && subset)
        throw CommandError("--rewrite converts every shape: it takes no --roi/--image/--shape");
    if (o.rewrite && o.batches)
        throw CommandError("--rewrite or --batches, not both");
}

// --rewrite: every shape in one pass.
Rows rewrite_every_shape(Db &db, const std::string &schema, const ColorsOpts &o)
{
    try {
        return ext::colors_rewrite(db, schema, o.direction, o.dry_run);
    } catch (const DbError &e) {
        // Its refusals (other sessions connected, shapes journaled, shapes newer than a
        // completed conversion) are preconditions refused: exit 1, as "other sessions use
        // the database" is in every command (README, "Exit codes").
        if (e.sqlstate == "55000" && std::string(e.what()).rfind("omero_colors_rewrite ", 0) == 0)
            throw Refused(cli_terms(e.what()), cli_terms(e.hint));
        throw;
    }
}

// The conversion by CALL, and its run's row. The one-pass rewrite's table phase is one ALTER
// TABLE, of which PostgreSQL reports nothing: from the extension's NOTICEs we know when the
// journal phase (one full read of the table) started and ended, and the table phase takes about
// kRewriteFactor times as long (bench/colors.sh, 2M and 10M shapes): an estimated ETA, ticking.
Rows convert_with_eta(Db &db, const std::string &schema, const ext::ColorsRequest &req, const std::string &method,
                      int jobs)
{
    using clock = std::chrono::steady_clock;
    std::optional<clock::time_point> rewrite_from, table_from;
    double journal_s = 0;
    db.on_notice([&](const Notice &n) {
        if (n.message.find("converting every shape by the one-pass rewrite") != std::string::npos)
            rewrite_from = clock::now();
        else if (rewrite_from && n.message.find("shapes journaled; rewriting the table") != std::string::npos) {
            table_from = clock::now();
            journal_s = std::chrono::duration<double>(*table_from - *rewrite_from).count();
        }
        show_extension_notice(n);
    });
    ext::colors_convert(db, schema, req, method, jobs, [&] {
        if (!table_from)
            return;
        double el = std::chrono::duration<double>(clock::now() - *table_from).count();
        if (el < 2)
            return;
        double est = journal_s * kRewriteFactor;
        out().progress("colors: rewriting the shape table and its indexes: elapsed " + clock_hms(el) +
                       ", ETA ~" + clock_hms(est > el ? est - el : 0) +
                       (est > el ? "" : " (longer than estimated)") +
                       " (estimated from the journal's pace; PostgreSQL reports no progress for this)");
    });
    show_extension_notices(db);
    return ext::colors_session_run(db);
}

// The run's counts into the result and a line; EXIT_PROBLEM when shapes were left alone.
int report_colors_run(const ColorsOpts &o, const Rows &r)
{
    nlohmann::json &res = out().result();
    if (r.empty()) {
        out().say("nothing to do");
        return EXIT_OK;
    }
    nlohmann::json c = counts_json(r);
    if (o.rewrite)
        res["method"] = "rewrite";
    else if (!o.dry_run)
        res["method"] = r.str(0, "method");  // batch, or rewrite (chosen by 'auto')
    res["counts"] = c;
    if (!r.str(0, "run_id").empty())
        res["run_id"] = std::stoll(r.str(0, "run_id"));
    out().say(std::string(o.dry_run ? "would do: " : "done: ") + o.direction + ": " + counts_text(c));
    if (c["raced"].get<long long>() > 0 || c["changed"].get<long long>() > 0)
        return EXIT_PROBLEM;
    return EXIT_OK;
}

int run_colors_change(const ColorsOpts &o, Context &ctx)
{
    Value rois = id_array(o.rois, o.roi_files, "ROI");
    Value images = id_array(o.images, o.image_files, "image");
    Value shapes = id_array(o.shapes, o.shape_files, "shape");
    bool subset = rois || images || shapes;
    check_colors_options(o, subset);
    Settings &s = ctx.settings();
    Db *db = &ctx.db();
    std::string schema = ctx.extension_schema();
    show_extension_notices(*db);
    nlohmann::json &res = out().result();
    res["direction"] = o.direction;
    res["database"] = s.conn.dbname;
    res["dry_run"] = o.dry_run;
    res["scope"] = subset ? "subset" : "all shapes";
    const ext::ColorsRequest req{o.direction, rois, images, shapes, o.batch_size};
    // CALL's method: 'auto' rewrites every shape in one pass when nothing else uses the database
    // and nothing is journaled (the extension checks and says which way it goes).
    const std::string method = o.batches ? "batch" : "auto";
    Rows r;
    if (o.rewrite)
        r = rewrite_every_shape(*db, schema, o);
    else if (o.dry_run)
        r = ext::colors_convert_dry_run(*db, schema, req);
    else
        r = convert_with_eta(*db, schema, req, method, o.jobs);
    return report_colors_run(o, r);
}

struct StatusOpts {
};

void add_colors_status_options(CLI::App &, StatusOpts &)
{
}

int run_colors_status(const StatusOpts &, Context &ctx)
{
    Db *db = &ctx.db();
    std::string schema = ctx.extension_schema();
    // pending: what a run of every shape in that direction would touch (to_convert by the
    // formula, to_restore from the journal); left_alone: what it would leave as it is.
    Rows r = ext::colors_status(*db, schema);
    nlohmann::json rows = nlohmann::json::array();
    for (size_t i = 0; i < r.rows.size(); i++) {
        nlohmann::json j = {{"direction", r.str(i, "direction")}, {"last_at", r.str(i, "last_at")}};
        for (const char *c : {"converted", "pending", "to_convert", "to_restore", "left_alone", "purged", "runs",
                              "running_runs", "interrupted_runs"})
            j[c] = std::stoll(r.str(i, c));
        rows.push_back(j);
        out().say(r.str(i, "direction") + ": " + r.str(i, "converted") + " converted, " + r.str(i, "pending") +
                  " pending (" + r.str(i, "to_convert") + " by the formula, " + r.str(i, "to_restore") +
                  " from the journal; " + r.str(i, "left_alone") + " left alone), " + r.str(i, "purged") +
                  " purged; " + r.str(i, "runs") + " run(s), " +
                  r.str(i, "running_runs") + " running, " + r.str(i, "interrupted_runs") + " interrupted" +
                  (r.str(i, "last_at").empty() ? "" : "; last " + r.str(i, "last_at")));
    }
    out().result()["directions"] = rows;
    return EXIT_OK;
}

} // namespace

CommandRun setup_colors_convert(CLI::App &sub)
{
    return command_setup<ColorsOpts, add_colors_convert_options, run_colors_change>(sub);
}

CommandRun setup_colors_revert(CLI::App &sub)
{
    return command_setup<ColorsOpts, add_colors_revert_options, run_colors_change>(sub);
}

CommandRun setup_colors_status(CLI::App &sub)
{
    return command_setup<StatusOpts, add_colors_status_options, run_colors_status>(sub);
}

} // namespace ou
