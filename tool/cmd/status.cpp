// omero-upgrade status [--new-server DIR|ZIP] [--target V]: the live installation as one model
// (installation.hpp), like `flyway info` / `sqitch status`: where OMERO.server points, the tree's
// newest scripts, the database config.xml names and its dbpatch, whether the server runs, whether
// they agree; the last run and what a rollback would undo; with --new-server, what an upgrade
// would do (the hops, the steps). Changes nothing. Exit 0 all agree, 1 a problem (the database
// is not what the tree's scripts lead to, an unfinished upgrade or run), 2 could not tell.
#include "commands.hpp"
#include "installation.hpp"
#include "run_plan.hpp"
#include "run_state.hpp"
#include "run_undo.hpp"

namespace ou {

namespace {

struct StatusOptions {
    std::string new_server, target, state_file;
};

void say_installation(const Installation &m)
{
    out().say("installation " + m.server_dir + " (" + m.kind +
              (m.kind == "symlink" ? " → " + m.link_target : std::string()) + ")");
    out().say("  tree       " + (m.tree.empty() ? "(none)" : m.tree) + ": scripts up to " +
              (m.tree_newest.empty() ? "(no sql/psql)" : m.tree_newest));
    out().say("  config     " + m.config_path + (m.config_found ? "" : " (missing)") + ": database " + m.db_name +
              " on " + (m.db_host.empty() ? "(libpq default)" : m.db_host) + ":" + m.db_port + " as " + m.db_user);
    if (!m.db_read)
        out().say("  database   " + m.db_name + ": cannot be read: " + m.db_error);
    else if (!m.db.is_omero)
        out().say("  database   " + m.db_name + ": not an OMERO database (no dbpatch rows)");
    else
        out().say("  database   " + m.db_name + ": " + m.db.version +
                  (m.db.finished ? " (finished)" : " (half-upgraded: unfinished)") + ", extension " +
                  (m.db.extension_version.empty() ? "not installed" : m.db.extension_version));
    out().say(std::string("  server     ") + server_run_name(m.server) + " (" + m.server_how +
              (m.omero_sessions >= 0 ? "; " + std::to_string(m.omero_sessions) + " OMERO session(s)" : std::string()) +
              ")");
    std::string mm = m.mismatch();
    out().say("  agreement  " + (mm.empty() ? "the database is at the tree's newest scripts: the server can run on it" : mm));
}

void say_run(const Installation &m, nlohmann::json &res)
{
    if (!m.run.is_object()) {
        out().say("last run   none recorded (" + m.run_state_path + ")");
        res["last_run"] = nullptr;
        return;
    }
    const auto &r = m.run;
    std::string st = r.value("status", "");
    out().say("last run   " + r.value("run_id", "") + ": " + st +
              (r.contains("failed_step") ? " at step " + r.value("failed_step", "") : std::string()) + ", " +
              r["database"].value("version_before", "") + " → " + r["database"].value("target", "") + " (" +
              m.run_state_path + ")");
    nlohmann::json done = nlohmann::json::array(), pending = nlohmann::json::array();
    for (const auto &s : r["steps"])
        (s.value("status", "") == "done" ? done : pending).push_back(s.value("id", ""));
    res["last_run"] = {{"run_id", r.value("run_id", "")}, {"status", st}, {"failed_step", r.value("failed_step", "")},
                       {"steps_done", done}, {"steps_pending", pending}, {"state_file", m.run_state_path}};
    if (!m.earlier_runs.empty())
        out().say("           " + std::to_string(m.earlier_runs.size()) + " earlier run record(s) beside it");
    // The run a rollback would undo now: this one, or the newest earlier one still in effect that
    // changed something, past the runs that changed nothing and the runs rolled back (run_undo.hpp).
    run::RollbackTarget tg = run::rollback_target(m.run_state_path, m.run, m);
    nlohmann::json passed = nlohmann::json::array(), undone = nlohmann::json::array();
    for (const auto &[path, rec] : tg.passed)
        (rec.value("status", "") == "rolled back" && !rec["rollback"].value("nothing_changed", false) ? undone : passed)
            .push_back({{"run_id", rec.value("run_id", "")}, {"state_file", path}});
    if (tg.undoable && !tg.refusal.empty()) {
        out().say("rollback   refused (run " + tg.state.value("run_id", "") + ", " + tg.path + "): " + tg.refusal);
        res["rollback"] = {{"possible", false}, {"run_id", tg.state.value("run_id", "")}, {"state_file", tg.path},
                           {"refusal", tg.refusal}, {"passed_over", passed}, {"rolled_back", undone}};
        return;
    }
    if (!tg.undoable && tg.state.value("status", "") == "rolled back") {
        out().say("rollback   done already: run " + tg.state.value("run_id", "") + " was rolled back (" +
                  tg.state["rollback"].value("finished", "") + "), and " + tg.why_none + ": nothing more to undo");
        res["rollback"] = {{"possible", false}, {"run_id", tg.state.value("run_id", "")}, {"state_file", tg.path},
                           {"why_none", tg.why_none}, {"passed_over", passed}, {"rolled_back", undone}};
        return;
    }
    if (tg.fell_back())
        out().say("rollback   " +
                  (tg.crossed ? "run " + r.value("run_id", "") + (st == "rolled back" ? " was rolled back" : " changed nothing to undo") +
                                    ": a rollback now undoes the last run still in effect, " + tg.state.value("run_id", "")
                              : "run " + r.value("run_id", "") + " changed nothing to undo: a rollback undoes the earlier run " +
                                    tg.state.value("run_id", "")) +
                  " (" + tg.state.value("status", "") + ", " + tg.path + ")");
    const auto &R = tg.fell_back() ? tg.state : r;
    std::string rst = R.value("status", "");
    bool can = rst != "rolled back" && R["backup"].is_object();
    if (!can) {
        out().say("rollback   " + std::string(rst == "rolled back" ? "done already" : "not possible: the run made no backup"));
        res["rollback"] = {{"possible", false}, {"run_id", R.value("run_id", "")}};
        return;
    }
    run::RollbackPlan p = run::plan_rollback(R, m, R["rollback"].value("into", ""));
    nlohmann::json steps = nlohmann::json::array();
    for (const auto &s : p.steps)
        steps.push_back(s["command"]);
    out().say("rollback   " + std::string(p.steps.empty() ? "nothing to undo" : "possible") + " (run " +
              R.value("run_id", "") + "); backup " + R["backup"].value("path", "") + " " + run::backup_age(R));
    for (const auto &x : p.reasons)
        out().say("           " + x);
    std::vector<std::string> adv = run::advice(r, tg.fell_back() ? run::plan_rollback(r, m, "") : p);
    if (tg.fell_back())
        adv.push_back("roll back: omero-upgrade rollback undoes the earlier run " + R.value("run_id", "") + " instead: " +
                      (p.db_changed ? "it restores its backup " + run::backup_age(R) + "; writes made after it are lost"
                                    : "the database is unchanged, so nothing is lost"));
    for (const auto &x : adv)  // a completed run's line is no advice ("to undo this run: …")
        out().say((x.rfind("to undo this run: ", 0) == 0 || x.rfind("nothing to roll back", 0) == 0 ? "undo       " : "advice     ") + x);
    res["rollback"] = {{"possible", !p.steps.empty()}, {"switched", p.switched}, {"db_changed", p.db_changed},
                       {"restores", p.db_changed ? R["backup"].value("path", "") : ""}, {"reasons", p.reasons},
                       {"commands", steps}, {"advice", adv}, {"run_id", R.value("run_id", "")},
                       {"state_file", tg.fell_back() ? tg.path : m.run_state_path}, {"passed_over", passed},
                       {"rolled_back", undone}};
}

// What `run --new-server` would do from here.
bool say_upgrade(const Installation &m, const StatusOptions &o, nlohmann::json &res)
{
    run::NewServer ns = run::inspect_new_server(lexical_absolute(o.new_server));
    std::string target = o.target.empty() ? ns.newest : o.target;
    nlohmann::json u = {{"new_server", ns.path}, {"target", target}};
    bool ok = true;
    out().say("upgrade to " + ns.path + " (" + target + ")");
    if (!m.db_read || !m.db.is_omero) {
        out().say("  cannot plan: the database cannot be read");
        res["upgrade"] = u;
        return false;
    }
    if (!m.db.finished) {
        out().say("  refused: the database is half-upgraded (unfinished at " + m.db.version + "); restore a backup first");
        u["pending_hops"] = nlohmann::json::array();
        res["upgrade"] = u;
        return false;
    }
    // Nothing to do only for the release OMERO.server runs now (run's rule, run_plan.hpp); another
    // release at the same version is a binaries-only upgrade.
    std::string same = run::same_release(ns, m.tree);
    bool upgraded = m.db.version == target && m.tree_newest == target && !same.empty();
    u["binaries_only"] = m.db.version == target && same.empty();
    u["nothing_to_do"] = upgraded;
    nlohmann::json hops = nlohmann::json::array();
    if (compare_versions(m.db.version, target) > 0) {
        out().say("  the database (" + m.db.version + ") is newer than the target");
        ok = false;
    } else {
        for (const auto &[f, t] : run::hop_path(ns, m.db.version, target)) {
            hops.push_back({{"from", f}, {"to", t}, {"script", "sql/psql/" + t + "/" + f + ".sql"}});
            out().say("  pending hop " + f + " → " + t + ": sql/psql/" + t + "/" + f + ".sql");
        }
    }
    u["pending_hops"] = hops;
    nlohmann::json ids = nlohmann::json::array();
    if (upgraded) {
        out().say("  nothing to do: the installation is already upgraded (" + target + ", " + m.tree + ")");
    } else {
        if (u.value("binaries_only", false))
            out().say("  binaries only: the database is at " + target + " already; run swaps the server tree (" +
                      run::release_name(ns) + " for " + m.tree + ") with no hop");
        run::RunOptions ro;
        ro.new_server = ns.path;
        for (const auto &d : run::build_steps(ro, target, !hops.empty()))
            ids.push_back(d.id);
        out().say("  steps of run: " + json_text(ids));
    }
    u["steps"] = ids;
    res["upgrade"] = u;
    return ok;
}

void add_status_options(CLI::App &sub, StatusOptions &o)
{
    sub.add_option("--new-server", o.new_server, "also show what an upgrade to this release (zip or directory) would do");
    sub.add_option("--target", o.target, "with --new-server: the version to reach");
    sub.add_option("--state", o.state_file, "the run's state file (default: .omero-upgrade-run.json beside the server directory)");
}

int run_status(const StatusOptions &o, Context &ctx)
{
    Installation m = read_installation(ctx.global(), {true, o.state_file});
    nlohmann::json &res = out().result();
    res["installation"] = m.to_json();
    say_installation(m);
    say_run(m, res);
    bool ok = true;
    if (!o.new_server.empty())
        ok = say_upgrade(m, o, res);
    if (!m.db_read && m.kind == "missing")
        throw CommandError("no OMERO.server at " + m.server_dir + " and its database cannot be read",
                           "give the server directory with --server-dir DIR or OMERODIR");
    bool run_unfinished = m.run.is_object() && m.run.value("status", "") != "completed" &&
                          m.run.value("status", "") != "rolled back";
    bool server_wrong = m.server == ServerRun::Running && !m.mismatch().empty();
    if (server_wrong)
        out().error("the server runs on a database its tree was not made for: " + m.mismatch());
    if (run_unfinished)
        out().warn("run " + m.run.value("run_id", "") + " is unfinished (" + m.run.value("status", "") + ")");
    return (!m.mismatch().empty() || run_unfinished || !ok) ? EXIT_PROBLEM : EXIT_OK;
}

} // namespace

CommandRun setup_status(CLI::App &sub)
{
    return command_setup<StatusOptions, add_status_options, run_status>(sub);
}

} // namespace ou
