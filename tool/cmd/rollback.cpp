// omero-upgrade rollback: undoes a run recorded in its state file, with the same machinery
// (steps as child subcommands, recorded under state["rollback"], resumable by running it again):
// stop the new server, point OMERO.server back at the old tree, restore the pre-upgrade backup
// into a new database and set omero.db.name to it (restore --switch, on the old tree's
// config.xml), start the old server, and check it runs. The upgraded database is kept.
#include "commands.hpp"
#include "extension_sql.hpp"
#include "history.hpp"
#include "run_state.hpp"
#include "run_steps.hpp"

#include "common.hpp"
#include "fsutil.hpp"
#include "installation.hpp"
#include "run_undo.hpp"
#include "settings.hpp"

#include <optional>

namespace ou::run {

namespace {

struct RollbackOptions {
    std::string state_file, into;
    bool dry_run = false;
    bool reassign_owners = false;  // passed on to the restore
};

// A database name for the restore that no database has yet (<db>_before_<date>, then _2, _3…).
std::string free_database_name(Context &ctx, const std::string &want)
{
    auto db = ctx.connect();
    for (int i = 1;; i++) {
        std::string n = i == 1 ? want : want.substr(0, 60) + "_" + std::to_string(i);
        if (db->query("SELECT 1 FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) $1::pg_catalog.name", {n}).empty())
            return n;
    }
}

void add_rollback_options(CLI::App &sub, RollbackOptions &o)
{
    sub.add_option("--state", o.state_file,
                   "the run's state file (default: .omero-upgrade-run.json beside the server directory)");
    sub.add_option("--into", o.into,
                   "the new database to restore into (default: the one the run's report names)");
    sub.add_flag("--dry-run", o.dry_run, "show the steps, change nothing");
    sub.add_flag("--reassign-owners", o.reassign_owners,
                 "the backup holds objects of several roles: they all become the OMERO user's (restore --reassign-owners)");
}

// What one rollback works with: the run it undoes (its record st, at state_path) and the newer
// records passed over.
struct Rollback {
    const RollbackOptions &o;
    Context &ctx;
    std::string sdir, state_path;
    nlohmann::json st;
    nlohmann::json passed = nlohmann::json::array();

    Rollback(const RollbackOptions &opts, Context &c) : o(opts), ctx(c), sdir(given_server_dir(c.global())) {}
};

// The records passed over for the earlier run: each says so, and one that changed nothing is
// marked finished (nothing to undo), pointing to the run rolled back in its place.
void pass_over(Rollback &r, RollbackTarget &tg)
{
    for (auto &[path, rec] : tg.passed) {
        if (rec.value("status", "") == "rolled back") {
            out().say("run " + rec.value("run_id", "") + " was rolled back (" + rec["rollback"].value("finished", "") +
                      "): the run before it is in effect again");
            continue;
        }
        out().say("run " + rec.value("run_id", "") + " (" + rec.value("status", "") +
                  (rec.contains("failed_step") ? " at step " + rec.value("failed_step", "") : std::string()) +
                  ") changed nothing that a rollback would undo");
        r.passed.push_back({{"run_id", rec.value("run_id", "")}, {"state_file", path}});
        if (r.o.dry_run)
            continue;
        rec["rollback"] = {{"status", "completed"}, {"nothing_changed", true},
                           {"rolled_back_run", tg.state.value("run_id", "")},
                           {"rolled_back_state", tg.path}, {"finished", iso_now()}};
        rec["status"] = "rolled back";
        save_state(path, rec);
    }
    out().say("rolling back the earlier run " + tg.state.value("run_id", "") + " (" + tg.path + "), the " +
              (tg.crossed ? "last run still in effect" : "newest that changed something") +
              (tg.database.empty() || tg.database == tg.state["database"].value("name", "")
                   ? std::string()
                   : " (on the database " + tg.database + " the rollback of run " + tg.gave_back_run + " gave back)"));
    r.state_path = tg.path;
    r.st = tg.state;
}

// The rollback undoes the newest recorded run still in effect that changed something: a run that
// changed nothing does not hide the run before it, and a run rolled back is undone, so the run
// before it is in effect again (run_undo.hpp). An exit code when the rollback ends here.
std::optional<int> choose_run(Rollback &r)
{
    RollbackTarget tg = rollback_target(r.state_path, r.st, read_installation(r.ctx.global(), {true, r.state_path}));
    if (tg.undoable && !tg.refusal.empty()) {
        out().error(tg.refusal);
        out().say("nothing was changed; put the installation back as run " + tg.state.value("run_id", "") +
                  " left it, or undo it by hand: omero-upgrade run --report --state " + shell_quote(tg.path) +
                  " shows its steps and how to undo each");
        out().result() = {{"rolled_back", false}, {"reason", "refused"}, {"refusal", tg.refusal},
                          {"run_id", tg.state.value("run_id", "")}, {"state_file", tg.path}};
        return EXIT_PROBLEM;
    }
    if (!tg.undoable && tg.state.value("status", "") == "rolled back") {
        const auto &trb = tg.state["rollback"];
        out().say("nothing to roll back (already rolled back): run " + tg.state.value("run_id", "") + " was rolled back (" +
                  trb.value("finished", "") + ")" + (tg.path != r.state_path ? " (" + tg.path + ")" : std::string()) +
                  ", and " + tg.why_none);
        out().result() = {{"rolled_back", false}, {"reason", "already rolled back"},
                          {"run_id", tg.state.value("run_id", "")}, {"state_file", tg.path}, {"why_none", tg.why_none}};
        return EXIT_OK;
    }
    if (tg.fell_back())
        pass_over(r, tg);
    return std::nullopt;
}

// The steps of a rollback not begun yet: only what changed, as the installation shows it now
// (rb["steps"], rb["reasons"], rb["into"]). An exit code when there is nothing to roll back.
std::optional<int> plan_steps(Rollback &r, nlohmann::json &rb)
{
    const RollbackOptions &o = r.o;
    if (!o.into.empty())
        rb["into"] = o.into;
    if (rb.value("into", "").empty())
        rb["into"] = run_database(r.st) + "_before_upgrade";
    if (o.into.empty())
        rb["into"] = free_database_name(r.ctx, rb.value("into", ""));
    Installation m = read_installation(r.ctx.global(), {true, r.state_path});
    RollbackPlan p = plan_rollback(r.st, m, rb.value("into", ""));
    for (auto &step : p.steps)
        if (o.reassign_owners && step.value("id", "") == rollback_step_id::restore)
            step["command"].push_back("--reassign-owners");
    for (const auto &x : p.reasons)
        out().say("  " + x);
    if (p.steps.empty()) {
        out().say("nothing to roll back: run " + r.st.value("run_id", "") + " left the installation as it was "
                  "(the old tree, the unchanged database, the server running)");
        out().result() = {{"rolled_back", false}, {"reason", "nothing changed"}, {"reasons", p.reasons}};
        return EXIT_OK;
    }
    rb["steps"] = p.steps;
    rb["reasons"] = p.reasons;
    return std::nullopt;
}

// The rollback as the result: its record, the run and the records passed over.
void set_result(const Rollback &r, const nlohmann::json &rb)
{
    out().result() = rb;
    out().result()["run_id"] = r.st.value("run_id", "");
    out().result()["state_file"] = r.state_path;
    out().result()["passed_over"] = r.passed;
}

void say_dry_run(const Rollback &r, const nlohmann::json &rb)
{
    int i = 0;
    for (const auto &s : rb["steps"]) {
        std::string c = "omero-upgrade --server-dir " + shell_quote(r.sdir);
        for (const auto &x : s["command"])
            c += " " + shell_quote(x.get<std::string>());
        out().say("  " + std::to_string(++i) + ". " + s.value("title", "") + " [" + s.value("status", "") + "]: " + c);
    }
    set_result(r, rb);
    out().result()["dry_run"] = true;
}

// The internal steps (db-name, and a restore done before whose --switch is done again): set
// omero.db.name of the tree the server points to now.
ChildOutcome set_db_name(Context &ctx, const nlohmann::json &st, const nlohmann::json &rb, const nlohmann::json &step)
{
    ChildOutcome o;
    Settings s = ctx.fresh_settings(true);
    require_omero_bin(s);
    if (step.value("id", "") == rollback_step_id::db_name) {
        omero_config_set(s, "omero.db.name", run_database(st));
        out().step("      omero.db.name set to " + run_database(st));
        o.exit_code = 0;
        o.json = {{"result", {{"database", run_database(st)}, {"switched", true}}}};
        return o;
    }
    omero_config_set(s, "omero.db.name", rb.value("into", ""));
    out().step("      restored before into " + rb.value("into", "") + "; omero.db.name set to it again");
    o.exit_code = 0;
    o.json = {{"result", {{"database", rb.value("into", "")}, {"switched", true}, {"restored_before", true}}}};
    return o;
}

// Why a rollback step may not run now ("" = it may).
std::string refuse_step(Context &ctx, const nlohmann::json &st, nlohmann::json &rb, const nlohmann::json &step)
{
    std::string id = step.value("id", "");
    if (id == rollback_step_id::restore && !path_exists(st["backup"].value("path", "")))
        return "the backup " + st["backup"].value("path", "") + " is gone";
    // The old server is started on the database the rollback gives back: the restored one
    // (once restored), else the run's own, unchanged. A config.xml edited since (during a
    // rollback that was interrupted) would start it on another.
    if (id == rollback_step_id::start || id == rollback_step_id::status) {
        nlohmann::json *r = find_step(rb, rollback_step_id::restore);
        std::string want = r ? rb.value("into", "") : run_database(st);
        Settings s = ctx.fresh_settings(false);
        if ((!r || r->value("status", "") == "done") && s.conn.dbname != want)
            return s.config_path + " names the database " + s.conn.dbname + ", but this rollback gives back " + want +
                   ": set omero.db.name to " + want + " (bin/omero config set omero.db.name " + want +
                   ") and run rollback again";
    }
    return "";
}

Executor rollback_executor(Rollback &r, nlohmann::json &rb)
{
    Executor x;
    const nlohmann::json &st = r.st;
    x.options = r.ctx.global();
    x.state_path = r.state_path;
    x.server_dir = st["server"].value("dir", "");
    x.log_file = st.value("log_file", "");
    // restore is not re-runnable once it succeeded (the database exists, not empty): a later
    // attempt (after a failure recorded after it) only re-does its --switch.
    x.command = [&rb](nlohmann::json &step) {
        auto args = step["command"].get<std::vector<std::string>>();
        if (step.value("id", "") == rollback_step_id::restore && step["exit_code"] == 0 && step["result"].is_object() &&
            step["result"].value("database", "") == rb.value("into", ""))
            return std::vector<std::string>{};
        return args;
    };
    x.internal = [&r, &rb](nlohmann::json &step) { return set_db_name(r.ctx, r.st, rb, step); };
    x.refuse = [&r, &rb](nlohmann::json &step) { return refuse_step(r.ctx, r.st, rb, step); };
    x.on_done = [](nlohmann::json &step, const ChildOutcome &) {
        if (step.value("id", "") == rollback_step_id::status && !step["result"].value("running", false)) {
            step["status"] = "failed";
            step["errors"].push_back("the old server does not run after bin/omero admin start");
        }
    };
    return x;
}

// In the database the server now uses (the restored one has its own history from the backup),
// and in the upgraded one, kept.
void record_rollback_history(Rollback &r, const nlohmann::json &rb, bool restores)
{
    const nlohmann::json &st = r.st;
    nlohmann::json sums = nlohmann::json::object();
    if (restores && st["backup"].is_object())
        sums[st["backup"].value("path", "")] = st["backup"].value("sha256", "");
    try {
        Settings hs = r.ctx.fresh_settings(false);
        HistoryEntry e{"rollback", "run " + st.value("run_id", "") + " rolled back",
                       st["database"].value("version_after", st["database"].value("target", "")),
                       st["database"].value("version_before", ""), sums,
                       {{"run_id", st.value("run_id", "")},
                        {"database", restores ? rb.value("into", "") : run_database(st)},
                        {"restored", restores},
                        {"server", r.sdir},
                        {"tree", st["server"].value("old_tree", "")}}};
        record_history(hs, e);  // the database the server now uses
        std::string upgraded = run_database(st);
        if (restores && !upgraded.empty() && upgraded != hs.conn.dbname) {
            auto db = connect_db(hs, upgraded);  // and the upgraded one, kept
            if (ext::has_history(*db))
                record_history(hs, db.get(), e);
        }
    } catch (const CommandError &e) {
        out().warn(std::string("the rollback is not in the history: ") + e.what());
    }
}

// Runs the rollback's steps; execute() marks the "status" step done on exit 0, but a server that
// does not run is a failure. The rollback's own status lives in rb; the file is saved with the
// whole state.
int execute_rollback(Rollback &r, nlohmann::json &rb, bool restores)
{
    nlohmann::json &st = r.st;
    Executor x = rollback_executor(r, rb);
    out().set_log_file(x.log_file);
    out().log("omero-upgrade rollback of run " + st.value("run_id", ""));
    int rc = execute(st, rb, rb["steps"], x);
    nlohmann::json *status = find_step(rb, rollback_step_id::status);
    if (rc == EXIT_OK && status && status->value("status", "") == "failed") {
        rb["status"] = "failed";
        rc = EXIT_PROBLEM;
        out().error("the old server does not run: see bin/omero admin diagnostics");
    }
    if (rc == EXIT_OK) {
        rb["status"] = "completed";
        rb["finished"] = iso_now();
        st["status"] = "rolled back";
        out().say("rolled back: " + r.sdir + " runs the old tree again, on database " +
                  (restores ? rb.value("into", "") + " (restored from " + st["backup"].value("path", "") + ")"
                            : run_database(st) + " (unchanged, not restored)"));
        record_rollback_history(r, rb, restores);
    }
    return rc;
}

// A run that made no backup changed nothing: an exit code then.
std::optional<int> made_no_backup(const Rollback &r)
{
    const nlohmann::json &st = r.st;
    if (st["backup"].is_object() && !st["backup"].value("path", "").empty())
        return std::nullopt;
    out().say("run " + st.value("run_id", "") + " made no backup, so it changed neither the server nor the "
              "database: there is nothing to roll back");
    out().result() = {{"rolled_back", false}, {"reason", "nothing changed"}};
    return EXIT_PROBLEM;
}

// A rollback of the run that completed already: an exit code then.
std::optional<int> already_rolled_back(const Rollback &r, nlohmann::json &rb)
{
    if (rb.value("status", "") != "completed")
        return std::nullopt;
    out().say("run " + r.st.value("run_id", "") + " was already rolled back (" + rb.value("finished", "") +
              "): the server runs the old tree on database " +
              (rb.value("into", "").empty() || !find_step(rb, rollback_step_id::restore) ? run_database(r.st)
                                                                                       : rb.value("into", "")));
    out().result() = rb;
    return EXIT_OK;
}

int run_rollback(const RollbackOptions &o, Context &ctx)
{
    Rollback r(o, ctx);
    r.state_path = o.state_file.empty() ? default_state_path(r.sdir) : lexical_absolute(o.state_file);
    if (!state_exists(r.state_path))
        throw CommandError("no run to roll back: no state file " + r.state_path,
                           "give the state file of the run with --state");
    std::unique_ptr<Lock> lock;
    if (!o.dry_run)
        lock = std::make_unique<Lock>(r.state_path);
    r.st = load_state(r.state_path);
    bool begun = r.st["rollback"].is_object() && r.st["rollback"].contains("steps") &&
                 r.st["rollback"].value("status", "") != "completed";
    if (!begun)
        if (std::optional<int> rc = choose_run(r))
            return *rc;
    if (std::optional<int> rc = made_no_backup(r))
        return *rc;
    nlohmann::json &st = r.st;
    nlohmann::json &rb = st["rollback"];
    if (!rb.is_object())
        rb = nlohmann::json::object();
    if (std::optional<int> rc = already_rolled_back(r, rb))
        return *rc;
    bool started = rb.contains("steps") && rb["steps"].is_array();
    if (!started) {
        if (std::optional<int> rc = plan_steps(r, rb))
            return *rc;
    } else if (!o.into.empty() && o.into != rb.value("into", "")) {
        throw CommandError("this rollback was started with --into " + rb.value("into", "") + "; run it again without --into");
    }
    bool restores = find_step(rb, rollback_step_id::restore) != nullptr;
    out().say("Rollback of run " + st.value("run_id", "") + ": " + st["server"].value("dir", "") + " back to " +
              old_tree_now(st) +
              (restores ? ", database restored from " + st["backup"].value("path", "") + " into " + rb.value("into", "") +
                              " (the upgraded database " + run_database(st) + " is kept)"
                        : ", database " + run_database(st) + " kept as it is (unchanged)"));
    if (o.dry_run) {
        say_dry_run(r, rb);
        return EXIT_OK;
    }
    if (rb.value("status", "") != "not run" && started)
        out().step("continuing the rollback from its first unfinished step");
    rb["status"] = "running";
    if (!rb.contains("started"))
        rb["started"] = iso_now();
    save_state(r.state_path, st);
    int rc = execute_rollback(r, rb, restores);
    save_state(r.state_path, st);
    set_result(r, rb);
    return rc;
}

} // namespace

} // namespace ou::run

namespace ou {

CommandRun setup_rollback(CLI::App &sub)
{
    return command_setup<run::RollbackOptions, run::add_rollback_options, run::run_rollback>(sub);
}

} // namespace ou
