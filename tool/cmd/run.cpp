// omero-upgrade run --new-server NEW.zip|NEW_DIR: the guide's whole checklist, in order, as this
// tool's own subcommands run one after the other (run_state.hpp), with a state file so that
// --resume continues after a failure or Ctrl-C, a lock against a second run, a --dry-run plan and a
// report. Nothing that changes the server or the database runs before a verified backup is
// recorded; everything that can run with the server up runs before it is stopped.
#include "commands.hpp"
#include "run_plan.hpp"
#include "run_steps.hpp"
#include "run_report.hpp"
#include "run_preflight.hpp"
#include "run_state.hpp"
#include "run_undo.hpp"

#include "backup.hpp"
#include "common.hpp"
#include "db.hpp"
#include "fsutil.hpp"
#include "installation.hpp"
#include "settings.hpp"
#include "site_sql.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <regex>

#ifndef OMERO_UPGRADE_VERSION
#define OMERO_UPGRADE_VERSION "dev"
#endif

namespace ou::run {

static std::string real_path(const std::string &p)
{
    return resolved_path(p);
}

namespace {

struct RunCommandOptions {
    RunOptions o;
    std::string state_file, into;
    bool resume = false, dry_run = false, report = false;
};

// ---- preparing a run ----------------------------------------------------------------------
struct Prepared {
    nlohmann::json state;
    NewServer ns;
    std::vector<std::pair<std::string, std::string>> hops;
    std::vector<StepDef> steps;
    std::vector<std::string> problems;  // the plan cannot run
    std::string nothing;                // set: the installation is already upgraded (why)
};

// The run's options with every path made absolute (and the default backup directory).
RunOptions absolute_options(const RunCommandOptions &a, Context &ctx)
{
    RunOptions o = a.o;
    if (o.new_server.empty())
        throw CommandError("--new-server is required (the OMERO.server zip or its unpacked directory)");
    o.new_server = lexical_absolute(o.new_server);
    if (o.backup_dir.empty())
        o.backup_dir = default_backup_dir(ctx.global());  // the default of every command
    o.backup_dir = lexical_absolute(o.backup_dir);
    if (!o.colors.empty() && o.colors != "all" && o.colors[0] == '@')
        o.colors = "@" + lexical_absolute(o.colors.substr(1));
    if (!o.site_sql.empty())
        o.site_sql = lexical_absolute(o.site_sql);
    return o;
}

// The database against the target and the new server against the tree OMERO.server runs now:
// the hops (p.hops), and the problems that stop the plan.
void check_versions(Prepared &p, const RunOptions &o, const OmeroDbState &st, const std::string &target,
                    const std::string &old_tree, const std::string &same)
{
    if (!st.finished)
        p.problems.push_back("the newest dbpatch row (" + st.version +
                             ") has no finished time: an upgrade died half-way; restore a backup first");
    if (compare_versions(st.version, target) > 0)
        p.problems.push_back("the database (" + st.version + ") is newer than the target " + target);
    else
        p.hops = hop_path(p.ns, st.version, target);
    if ((o.orphans || !o.colors.empty() || !o.wells.empty()) && st.extension_version.empty())
        p.problems.push_back("--orphans, --colors and --move-annotations-to-wells need the extension in " + st.dbname +
                             ": CREATE EXTENSION omero_upgrade (as the database owner) first");
    // Nothing to do only when the new server is the release OMERO.server runs now (the same tree,
    // or a distribution of the same release) and the database is at the target, finished. Another
    // release whose scripts lead to the same version is a binaries-only upgrade: the swap, no hop.
    bool db_at = st.finished && st.version == target;
    if (!same.empty() && !(db_at && tree_newest_version(old_tree) == target))
        p.problems.push_back("the new server " + o.new_server + " is the current server tree (" + same +
                             "): it is installed already" +
                             (db_at ? "" : "; the database is at " + st.version + ": omero-upgrade db upgrade"));
    if (std::string older = older_release(p.ns, old_tree); !older.empty())
        p.problems.push_back(older + " (to go back, omero-upgrade rollback)");
}

// Site SQL: what would run (the plan's site_sql, null without --site-sql); a changed file
// (refused by db upgrade) stops the plan now. pending: some file is to be applied.
nlohmann::json plan_site(Prepared &p, const RunOptions &o, const Settings &s, Db &db, bool &pending)
{
    pending = false;
    if (o.site_sql.empty())
        return nullptr;
    SitePlan sp = plan_site_sql(s, db, o.site_sql);
    pending = sp.pending() > 0;
    for (const auto &f : sp.files)
        if (f.status == "changed")
            p.problems.push_back("site SQL " + f.name + " was applied with sha256 " + f.record.value("sha256", "") +
                                 " but now has sha256 " + f.sha256 + ": an applied file must not change");
        else if (f.status == "refused")
            p.problems.push_back("site SQL " + f.name + " is refused: " + f.problem);
    return sp.to_json();
}

// The steps' records (new_step()s) of the plan; the wells step gets its journal (what its undo
// needs), one per run: a resumed attempt continues it.
nlohmann::json step_records(const std::vector<StepDef> &defs, const RunOptions &o, const std::string &run_id)
{
    nlohmann::json steps = nlohmann::json::array();
    for (const auto &d : defs) {
        nlohmann::json extra = {{"offline", d.offline}, {"needs_backup", d.needs_backup}};
        if (d.internal)
            extra["internal"] = true;
        if (d.dir == StepDir::Preview)
            extra["dir"] = "preview";
        steps.push_back(new_step(d.id, d.title, d.command, extra));
    }
    for (auto &x : steps)
        if (x.value("id", "") == step_id::wells) {
            x["command"].push_back("--journal");
            x["command"].push_back(o.backup_dir + "/wells-move-" + run_id + ".json");
        }
    return steps;
}

// The database a later rollback restores into: --rollback-into, else <db>_before_<date>.
std::string rollback_into(const std::string &given, const std::string &dbname)
{
    if (!given.empty())
        return given;
    std::string stamp = utc_timestamp();
    for (auto &c : stamp)
        c = std::tolower((unsigned char)c);
    return dbname.substr(0, 63 - 21) + "_before_" + stamp.substr(0, 13);  // omero_before_20261125t1345
}

// The new run's record (the state file's content before its first step).
nlohmann::json new_run_state(const Prepared &p, const RunOptions &o, const Settings &s, const OmeroDbState &st,
                             const std::string &target, const std::string &sdir, const std::string &old_tree,
                             const std::string &state_path, const nlohmann::json &site_json, const std::string &into)
{
    nlohmann::json hops = nlohmann::json::array();
    for (const auto &[f, t] : p.hops)
        hops.push_back({{"from", f}, {"to", t}, {"script", "sql/psql/" + t + "/" + f + ".sql"}});
    std::string run_id = utc_timestamp() + "-" + std::to_string(getpid());
    std::string log = out().log_file().empty() ? dir_name(state_path) + "/omero-upgrade-run-" + run_id + ".log"
                                               : lexical_absolute(out().log_file());
    return {
        {"kind", "omero-upgrade-run"},
        {"format", 1},
        {"run_id", run_id},
        {"tool_version", OMERO_UPGRADE_VERSION},
        {"status", "planned"},
        {"created", iso_now()},
        {"state_file", state_path},
        {"log_file", log},
        {"options", o.to_json()},
        {"server", {{"dir", sdir}, {"old_tree", old_tree}, {"new_tree", nullptr}, {"config", s.config_path}}},
        {"database",
         {{"name", st.dbname},
          {"host", s.conn.host},
          {"port", s.conn.port},
          {"user", s.conn.user},
          {"omero_db_user", s.omero_db_user},
          {"version_before", st.version},
          {"target", target},
          {"encoding", st.encoding},
          {"size_bytes", st.size_bytes},
          {"extension", st.extension_version}}},
        {"new_server",
         {{"path", p.ns.path},
          {"archive", p.ns.is_archive},
          {"top_dir", p.ns.top_dir},
          {"bytes", p.ns.bytes},
          {"newest", p.ns.newest}}},
        {"hops", hops},
        {"site_sql", site_json},
        {"steps", step_records(p.steps, o, run_id)},
        {"backup", nullptr},
        {"schema", nullptr},
        {"downtime", {{"stop_began", nullptr}, {"stopped_at", nullptr}, {"started_at", nullptr}, {"seconds", nullptr}}},
        {"rollback", {{"into", into}, {"status", "not run"}}},
    };
}

// Space: the backup needs about the database's size (compressed: less); the new tree its size.
void check_space(Prepared &p, const RunOptions &o, const OmeroDbState &st, const std::string &sdir)
{
    unsigned long long free_backup = free_bytes(path_exists(o.backup_dir) ? o.backup_dir : dir_name(o.backup_dir));
    unsigned long long free_parent = free_bytes(dir_name(sdir));
    DumpEstimate need = dump_space_needed(o.backup_dir, st);
    p.state["space"] = {{"backup_dir", o.backup_dir},
                        {"backup_dir_free", free_backup},
                        {"backup_needs_about", need.needed},
                        {"backup_estimate", need.how},
                        {"server_parent_free", free_parent},
                        {"new_tree_needs_about", p.ns.bytes}};
    if (need.needed > free_backup) {
        std::string msg = "not enough free space for the backup in " + o.backup_dir + ": " + human_bytes(free_backup) +
                          " free, the dump needs about " + human_bytes(need.needed) + " (" + need.how + ")";
        if (o.no_space_check)
            out().warn(msg + "; --no-space-check: the backup tries anyway");
        else
            p.problems.push_back(msg + " (--no-space-check: try anyway)");
    }
    if (p.ns.is_archive && p.ns.bytes > free_parent)
        p.problems.push_back("not enough free space to unpack the new server beside " + sdir + ": " +
                             human_bytes(free_parent) + " free, it needs " + human_bytes(p.ns.bytes));
}

Prepared prepare(const RunCommandOptions &a, Context &ctx, const std::string &sdir, const std::string &state_path)
{
    Prepared p;
    RunOptions o = absolute_options(a, ctx);
    Settings &s = ctx.settings();
    ctx.require_omero_bin();
    if (!a.dry_run)
        ensure_dir(o.backup_dir);  // before `check`, which measures its free space
    std::string old_tree = real_path(sdir);
    auto db = ctx.connect();  // closed before the steps run (db upgrade refuses other sessions)
    OmeroDbState st = read_omero_state(*db);
    if (!st.is_omero)
        throw CommandError("database " + st.dbname + " has no dbpatch rows: not an OMERO database");
    p.ns = inspect_new_server(o.new_server);
    std::string target = o.target.empty() ? p.ns.newest : o.target;
    std::string same = same_release(p.ns, old_tree);
    check_versions(p, o, st, target, old_tree, same);
    p.steps = build_steps(o, target, !p.hops.empty());
    bool site_pending = false;
    nlohmann::json site_json = plan_site(p, o, s, *db, site_pending);
    // Already upgraded: the database at the target, finished, and the tree OMERO.server points to
    // made for it. Nothing to do means no stop, no backup, no new run record.
    bool db_at = st.finished && st.version == target;
    bool nothing = db_at && !same.empty() && tree_newest_version(old_tree) == target && !site_pending;
    // Every step's preconditions, while the server still runs (nothing to do: none to check).
    if (!nothing) {
        std::vector<std::string> ids;
        for (const auto &d : p.steps)
            ids.push_back(d.id);
        for (const auto &x : step_preconditions(o, s, *db, st, sdir, ids))
            p.problems.push_back(x);
    }
    if (nothing)
        p.nothing = "the installation is already upgraded: " + st.dbname + " is at " + target + " and " + same;
    p.state = new_run_state(p, o, s, st, target, sdir, old_tree, state_path, site_json, rollback_into(a.into, st.dbname));
    check_space(p, o, st, sdir);
    return p;
}

// The preview directory for `precheck` before the new server is installed: the current
// config.xml (how to reach the database; mode 0600, it may hold the password) and the new
// server's hop scripts and -precheck.sql scripts. Removed when the process ends.
struct Preview {
    std::string dir;
    Preview(const nlohmann::json &state)
    {
        dir = make_private_temp_dir("omero-upgrade-preview");
        std::string cfg;
        ensure_dir(dir + "/etc");
        ensure_dir(dir + "/etc/grid");
        if (read_file(state["server"].value("config", ""), cfg)) {
            write_file_atomic(dir + "/etc/grid/config.xml", cfg);
            chmod((dir + "/etc/grid/config.xml").c_str(), 0600);
        }
        NewServer ns = inspect_new_server(state["new_server"].value("path", ""));
        extract_prechecks(ns, dir);
    }
    ~Preview()
    {
        if (!dir.empty())
            remove_tree(dir);
    }
};

std::vector<std::string> subcommand_words(const nlohmann::json &cmd)
{
    // The subcommand's words are its leading words that are not options or paths.
    std::vector<std::string> w;
    for (const auto &x : cmd) {
        std::string s = x.get<std::string>();
        if (s.empty() || s[0] == '-' || s[0] == '/' || s[0] == '(' || w.size() == 3)
            break;
        w.push_back(s);
    }
    return w;
}

std::vector<std::string> missing_subcommands(const nlohmann::json &steps)
{
    std::vector<std::string> missing;
    for (const auto &s : steps) {
        if (s.value("internal", false) || s.value("status", "") == "done")
            continue;
        std::vector<std::string> w = subcommand_words(s["command"]);
        if (!has_subcommand(w)) {
            std::string name;
            for (const auto &x : w)
                name += (name.empty() ? "" : " ") + x;
            missing.push_back("step " + s.value("id", "") + " needs `omero-upgrade " + name +
                              "`, which this build does not have");
        }
    }
    return missing;
}

std::string command_line(const nlohmann::json &state, const nlohmann::json &step)
{
    std::string sd = step.value("dir", "") == "preview" ? "<current config + new prechecks>"
                                                         : state["server"].value("dir", "");
    std::string c = "omero-upgrade --server-dir " + shell_quote(sd);
    if (step.value("internal", false))
        return "(done by run itself)";
    for (const auto &x : step["command"])
        c += " " + shell_quote(x.get<std::string>());
    return c;
}

void print_plan(const nlohmann::json &st)
{
    const auto &db = st["database"];
    const auto &ns = st["new_server"];
    const auto &sp = st["space"];
    out().say("Plan: upgrade " + st["server"].value("dir", "") + " (now " + st["server"].value("old_tree", "") + ")");
    out().say("  database   " + db.value("name", "") + " on " + db.value("host", "") + ":" + db.value("port", "") +
              ", " + db.value("version_before", "") + " → " + db.value("target", "") + ", " +
              human_bytes(db.value("size_bytes", 0ULL)) + ", " + db.value("encoding", ""));
    out().say("  new server " + ns.value("path", "") +
              (ns.value("archive", false) ? " (archive, top directory " + ns.value("top_dir", "") + ")" : " (directory)") +
              ", " + human_bytes(ns.value("bytes", 0ULL)) + " unpacked");
    out().say("  scripts    " + std::to_string(st["hops"].size()) + " hop(s) from the new server's sql/psql:");
    for (const auto &h : st["hops"])
        out().say("               " + h.value("from", "") + " → " + h.value("to", "") + ": " + h.value("script", "") +
                  " (after its -precheck.sql when present)");
    if (st.contains("site_sql") && st["site_sql"].is_object()) {
        const auto &ss = st["site_sql"];
        out().say("  site SQL   " + ss.value("dir", "") + ": " + std::to_string(ss["files"].size()) + " file(s), " +
                  std::to_string(ss.value("pending", 0)) + " to apply after the hops (in name order, each in its own "
                  "transaction; records in " +
                  (ss.value("store", "") == "extension" ? std::string("omero_upgrade.site_sql") : ss.value("store_file", "")) +
                  "):");
        for (const auto &f : ss["files"]) {
            std::string stt = f.value("status", "");
            out().say("               " + f.value("name", "") + ": " +
                      (stt == "pending"   ? "would apply"
                       : stt == "applied" ? "already applied, skipped"
                       : stt == "refused" ? "REFUSED: " + f.value("problem", std::string())
                                          : std::string("CHANGED since applied: refused")) +
                      " (sha256 " + f.value("sha256", "") + ")");
        }
    }
    out().say("  space      backup dir " + sp.value("backup_dir", "") + ": " +
              human_bytes(sp.value("backup_dir_free", 0ULL)) + " free, needs about " +
              human_bytes(sp.value("backup_needs_about", 0ULL)) + "; beside the server: " +
              human_bytes(sp.value("server_parent_free", 0ULL)) + " free, needs about " +
              human_bytes(sp.value("new_tree_needs_about", 0ULL)));
    out().say("  state      " + st.value("state_file", "") + " (lock: " + st.value("state_file", "") + ".lock)");
    out().say("  log        " + st.value("log_file", ""));
    out().say("Steps (the server is down from server-stop to server-start):");
    int i = 0;
    for (const auto &s : st["steps"]) {
        char head[160];
        std::snprintf(head, sizeof head, "  %2d. %-18s %s%s", ++i, s.value("id", "").c_str(),
                      s.value("title", "").c_str(), s.value("offline", false) ? "  [server down]" : "");
        out().say(head);
        if (s.contains("live")) {
            // --resume --dry-run: the record and, where it shows, the live installation.
            std::string rec = s.value("status", "pending") == "done" ? "done" : "pending";
            std::string l = s.value("live", "");
            std::string line = "        [" + l + "] ";
            if (l != rec)
                line += "recorded " + s.value("status", "pending") + ", but live " + l;
            else
                line += rec == "done" ? "done" : "pending (" + s.value("status", "pending") + ")";
            if (s.contains("live_why"))
                line += ": " + s.value("live_why", "");
            out().say(line + (rec == "done" ? "; --resume skips it" : "; --resume runs it"));
        }
        out().say("        " + command_line(st, s));
        if (s.contains("touches"))
            out().say("        " + s.value("touches", ""));
    }
}

// The preconditions of a recorded run's steps not yet done (run --resume before its stop).
std::vector<std::string> resume_preconditions(const Context &ctx, const nlohmann::json &st)
{
    Settings s = ctx.fresh_settings(true);
    auto db = connect_db(s);
    OmeroDbState dbs = read_omero_state(*db);
    std::vector<std::string> ids;
    for (const auto &x : st["steps"])
        if (x.value("status", "") != "done")
            ids.push_back(x.value("id", ""));
    return step_preconditions(RunOptions::from_json(st["options"]), s, *db, dbs, st["server"].value("dir", ""), ids);
}

// run --resume --dry-run: each step's "live" state ("done" | "pending"), and why, from the live
// installation (installation.hpp) where it shows the step's effect, beside the recorded status.
// A step whose record and live state differ says so in the plan.
void mark_live(nlohmann::json &st, const Installation &m)
{
    std::string target = st["database"].value("target", ""), name = st["database"].value("name", "");
    std::string new_tree = st["server"]["new_tree"].is_string() ? st["server"].value("new_tree", "") : "";
    bool db_here = m.db_read && m.db_name == name;
    bool db_at = db_here && m.db.is_omero && m.db.finished && m.db.version == target;
    bool installed = !m.tree.empty() && (m.tree == new_tree || (m.tree != old_tree_now(st) && m.tree_newest == target));
    for (auto &s : st["steps"]) {
        std::string id = s.value("id", ""), live, why;
        if (id == step_id::server_stop) {
            // Once server-start is recorded done the server runs again by design: the record tells.
            nlohmann::json *start = find_step(st, step_id::server_start);
            bool started = start && start->value("status", "") == "done";
            live = started || (m.server != ServerRun::Down && m.server != ServerRun::Running)
                       ? (s.value("status", "") == "done" ? "done" : "pending")
                       : m.server == ServerRun::Down ? "done" : "pending";
            why = std::string("the server is ") + server_run_name(m.server);
        } else if (id == step_id::binaries_install) {
            live = installed ? "done" : "pending";
            why = m.server_dir + " → " + (m.tree.empty() ? "(nothing)" : m.tree);
        } else if (id == step_id::db_upgrade) {
            live = db_at ? "done" : "pending";
            why = !db_here ? "config.xml names " + m.db_name + ", not " + name
                  : m.db_read ? name + " is at " + m.db.version + (m.db.finished ? "" : " (unfinished)")
                              : "the database cannot be read: " + m.db_error;
        } else if (id == step_id::server_start) {
            live = m.server == ServerRun::Running && installed && db_at ? "done" : "pending";
            why = std::string("the server is ") + server_run_name(m.server);
        } else if (id == step_id::backup) {
            bool have = st["backup"].is_object() && path_exists(st["backup"].value("path", ""));
            live = have ? "done" : "pending";
            why = have ? "the backup " + st["backup"].value("path", "") + " is there" : "no recorded backup file";
        } else {
            live = s.value("status", "") == "done" ? "done" : "pending";  // nothing outside the record shows it
        }
        s["live"] = live;
        if (!why.empty())
            s["live_why"] = why;
    }
}

// ---- running --------------------------------------------------------------------------------
// "" when the config.xml the server directory leads to now (the new tree's once binaries-install
// has swapped it) names the run's database; else why not. Every step but the run's own checks
// works on that database, and server-start starts the server on it: a config.xml edited since
// the plan (or a stale one) would make them upgrade, change or run another database.
std::string database_moved(const Context &ctx, const nlohmann::json &state)
{
    const auto &db = state["database"];
    Settings s;
    try {
        s = ctx.fresh_settings(true);
    } catch (const std::exception &e) {
        return std::string("cannot read the server's settings: ") + e.what();
    }
    auto where = [](const std::string &n, const std::string &h, const std::string &p) {
        return n + " on " + (h.empty() ? "(local socket)" : h) + ":" + (p.empty() ? "5432" : p);
    };
    std::string now = where(s.conn.dbname, s.conn.host, s.conn.port);
    std::string want = where(db.value("name", ""), db.value("host", ""), db.value("port", ""));
    if (now == want)
        return "";
    return s.config_path + " names the database " + now + ", but this run upgrades " + want +
           ": set omero.db.name (host, port) back to it, or roll the run back (omero-upgrade rollback)";
}

// The database the server uses after this invocation, read back (never taken from the plan):
// database.name_after, version_after, finished_after; read_back_error when it could not be read.
void read_back(const Context &ctx, nlohmann::json &state)
{
    auto &db = state["database"];
    for (const char *k : {"name_after", "version_after", "finished_after", "read_back_error"})
        db.erase(k);
    try {
        Settings s = ctx.fresh_settings(false);
        db["name_after"] = s.conn.dbname;
        auto c = connect_db(s);
        OmeroDbState o = read_omero_state(*c);
        db["version_after"] = o.version;
        db["finished_after"] = o.finished;
    } catch (const std::exception &e) {
        db["read_back_error"] = e.what();
        out().warn(std::string("could not read the database version back after the run: ") + e.what());
    }
}

Executor make_executor(const Context &ctx, nlohmann::json &state, const std::string &state_path, const std::string &preview)
{
    Executor x;
    x.options = ctx.global();
    x.state_path = state_path;
    x.server_dir = state["server"].value("dir", "");
    x.preview_dir = preview;
    x.log_file = state.value("log_file", "");
    // What each step runs, records and accepts: run_steps.cpp.
    x.command = [&state](nlohmann::json &step) { return step_command(state, step); };
    x.internal = [&state](nlohmann::json &step) { return run_internal_step(state, step); };
    x.refuse = [&state, &ctx](nlohmann::json &step) {
        if (step.value("needs_backup", false))
            if (std::string why = backup_missing(state); !why.empty())
                return "nothing that changes the server or the database runs before a verified backup: " + why;
        if (!step.value("internal", false) && step.value("dir", "") != "preview")
            return database_moved(ctx, state);
        return std::string();
    };
    x.on_start = [&state](nlohmann::json &step) { record_step_start(state, step); };
    x.accept = [](nlohmann::json &step, const ChildOutcome &o) { return step_accepts(step, o); };
    x.on_done = [&state](nlohmann::json &step, const ChildOutcome &o) { record_step_done(state, step, o); };
    return x;
}

} // namespace

namespace {

// A rollback of an earlier run (past the records passed over or rolled back) that has not
// finished: "" when none, else why a new run must wait (run_undo.hpp).
std::string unfinished_rollback(const std::string &state_path, const nlohmann::json &st)
{
    return unfinished_rollback_in_chain(state_path, st);
}

int dry_run(const RunCommandOptions &a, Context &ctx, const std::string &sdir, const std::string &state_path)
{
    nlohmann::json st;
    std::vector<std::string> problems;
    if (state_exists(state_path)) {
        st = load_state(state_path);
        std::string status = st.value("status", "");
        if (status != "completed" && status != "rolled back" && !a.resume)
            problems.push_back("an unfinished run is recorded in " + state_path + ": use --resume");
        if (std::string u = unfinished_rollback(state_path, st); !u.empty() && !a.resume)
            problems.push_back(u + ": finish it first (omero-upgrade rollback)");
    }
    if (!a.resume || st.is_null()) {
        Prepared p = prepare(a, ctx, sdir, state_path);
        st = p.state;
        problems.insert(problems.end(), p.problems.begin(), p.problems.end());
        if (!p.nothing.empty() && p.problems.empty()) {
            out().say("nothing to do: " + p.nothing);
            out().result() = {{"dry_run", true}, {"nothing_to_do", true}, {"reason", p.nothing}, {"can_run", true}};
            return EXIT_OK;
        }
    } else {
        if (nlohmann::json *stop = find_step(st, step_id::server_stop); stop && stop->value("status", "") != "done")
            for (const auto &x : resume_preconditions(ctx, st))  // as run --resume checks them
                problems.push_back(x);
        mark_live(st, read_installation(ctx.global(), {true, state_path}));
    }
    for (auto &s : st["steps"]) {
        for (const auto &d : build_steps(RunOptions::from_json(st["options"]), st["database"].value("target", "")))
            if (d.id == s.value("id", ""))
                s["touches"] = d.touches;
    }
    print_plan(st);
    try {
        Lock l(state_path, false);
    } catch (const CommandError &e) {
        problems.push_back(e.what());
    }
    for (const auto &m : missing_subcommands(st["steps"]))
        problems.push_back(m);
    // The read-only steps run for real: their verdict is the plan's.
    Preview pv(st);
    out().say("Read-only checks:");
    for (const char *id : {step_id::check, step_id::precheck}) {
        nlohmann::json *s = find_step(st, id);
        if (!s || s->value("status", "") == "done")
            continue;
        auto args = (*s)["command"].get<std::vector<std::string>>();
        // The backup directory is created by the run: until then, check the space of its parent.
        for (size_t i = 0; i + 1 < args.size(); i++)
            if (args[i] == "--backup-dir" && !path_exists(args[i + 1]))
                args[i + 1] = dir_name(args[i + 1]);
        ChildOutcome o = run_child(id, child_globals(ctx.global(), std::string(id) == step_id::precheck ? pv.dir : sdir, ""), args);
        out().say(std::string("  ") + id + ": " + (o.exit_code == 0 ? "ok" : "NOT OK: " + o.error));
        for (const auto &w : o.warnings)
            out().say("    warning: " + w);
        if (o.exit_code != 0)
            problems.push_back(std::string(id) + ": " + o.error);
    }
    nlohmann::json r = st;
    r["dry_run"] = true;
    r["problems"] = problems;
    r["can_run"] = problems.empty();
    out().result() = r;
    if (!problems.empty()) {
        out().say("The plan cannot run:");
        for (const auto &p : problems)
            out().error(p);
        return EXIT_PROBLEM;
    }
    out().say("The plan can run (--dry-run: nothing was changed).");
    return EXIT_OK;
}

void add_run_options(CLI::App &sub, RunCommandOptions &a)
{
    sub.add_option("--new-server", a.o.new_server, "the new OMERO.server: its zip, or its unpacked directory");
    sub.add_flag("--dry-run", a.dry_run, "print the exact plan and run only the read-only checks; change nothing");
    sub.add_flag("--resume", a.resume, "continue the recorded run from its first unfinished step");
    sub.add_flag("--report", a.report, "print the report of the recorded run");
    sub.add_option("--state", a.state_file,
                   "the state file (default: .omero-upgrade-run.json beside the server directory)");
    sub.add_option("--backup-dir", a.o.backup_dir,
                   "where the backup goes (default: omero-upgrade-backups beside the server directory)");
    sub.add_option("--target", a.o.target, "database version to reach (default: the newest the new server has)");
    sub.add_flag("--no-space-check", a.o.no_space_check,
                 "too little free space for the backup is a warning: check and backup get --no-space-check");
    sub.add_option("-j,--jobs", a.o.jobs, "backup with N parallel pg_dump jobs")->check(CLI::Range(1, 64));
    sub.add_flag("--orphans", a.o.orphans, "also delete orphaned annotations (archived, restorable)");
    sub.add_option("--colors", a.o.colors,
                   "also convert shape colours ARGB → RGBA: all, ROI ids (1,2,3) or @FILE of ROI ids");
    sub.add_option("--move-annotations-to-wells", a.o.wells,
                   "also move annotations from Images to Wells: screen:IDS, plate:IDS or well:IDS")
        ->check([](const std::string &v) -> std::string {
            static const std::regex form("^(screen|plate|well):[0-9]+([, ][0-9]+)*$");
            return std::regex_match(v, form) ? "" : "expected screen:IDS, plate:IDS or well:IDS (e.g. plate:1,2)";
        });
    sub.add_flag("--vacuum-full", a.o.vacuum_full, "also VACUUM FULL ANALYZE the upgraded database");
    sub.add_flag("--online", a.o.online,
                 "run db-verify, --orphans and --colors after server-start, with OMERO up (colours by "
                 "journaled batches): a shorter offline window");
    sub.add_option("--force-step", a.o.force_steps,
                   "do not check the preconditions of this step in the plan (repeatable: "
                   "backup, binaries-install, db-upgrade, db-verify, orphans, colors, wells, vacuum-full, cache-clear); "
                   "vacuum-full also "
                   "gets --force (you made sure of the free space)")
        ->check(CLI::IsMember(checked_steps()));
    sub.add_flag("--carry-scripts", a.o.carry_scripts,
                 "carry scripts added to the old server's lib/scripts over to the new one");
    sub.add_option("--stop-timeout", a.o.stop_timeout,
                   "seconds server stop may wait for the server to be down (default: its own)")
        ->check(CLI::Range(1, 86400));
    sub.add_option("--site-sql", a.o.site_sql,
                   "after the official hops, apply DIR's *.sql files not applied yet (db upgrade --site-sql)");
    sub.add_option("--rollback-into", a.into,
                   "the database a later rollback restores into (default: <db>_before_<date>)");
}

// run --report: the recorded run's report, with the versions read back now from the database
// the server uses (not saved).
int report_only(Context &ctx, const std::string &state_path)
{
    if (!state_exists(state_path))
        throw CommandError("no run recorded: no state file " + state_path);
    nlohmann::json st = load_state(state_path);
    read_back(ctx, st);
    return print_report(ctx.global(), st);
}

// --force-step given to --resume: recorded, and the step's command gets --force.
void add_forced_steps(nlohmann::json &st, const std::vector<std::string> &force_steps)
{
    for (const auto &f : force_steps) {
        auto &fs = st["options"]["force_steps"];
        if (!fs.is_array())
            fs = nlohmann::json::array();
        if (std::find(fs.begin(), fs.end(), f) == fs.end())
            fs.push_back(f);
        nlohmann::json *s = find_step(st, f.c_str());
        if (f == step_id::vacuum_full && s && s->value("status", "") != "done") {
            auto &c = (*s)["command"];
            if (std::find(c.begin(), c.end(), "--force") == c.end())
                c.push_back("--force");
        }
    }
}

// Before the stop, the steps still to run are checked as a new plan's are: an exit code when
// they cannot run (said, with the server as it is now).
std::optional<int> resume_refused(Context &ctx, const nlohmann::json &st)
{
    std::vector<std::string> problems = resume_preconditions(ctx, st);
    if (problems.empty())
        return std::nullopt;
    for (const auto &x : problems)
        out().error(x);
    // What this resume did; the server as it is now (an earlier attempt may have stopped it
    // before failing).
    ServerRun now = ServerRun::Unknown;
    try {
        now = read_installation(ctx.global()).server;
    } catch (const std::exception &) {
    }
    out().say(now == ServerRun::Running
                  ? "nothing was changed; the server was not stopped"
                  : std::string("nothing was changed by this resume; the server is ") + server_run_name(now) +
                        " (as the earlier attempt left it): fix the above and resume, or start it "
                        "again with omero-upgrade server start");
    out().result() = {{"problems", problems}};
    return EXIT_PROBLEM;
}

// run --resume of the recorded run st: an exit code when it ends here (already finished, or
// refused before the stop).
std::optional<int> resume(const RunCommandOptions &a, Context &ctx, nlohmann::json &st)
{
    std::string status = st.value("status", "");
    if (status == "completed" || status == "rolled back") {
        out().say("run " + st.value("run_id", "") + " is already " + status + "; nothing to do");
        read_back(ctx, st);  // the report's versions as they are now (not saved)
        return print_report(ctx.global(), st);
    }
    if (!a.o.new_server.empty() && lexical_absolute(a.o.new_server) != st["options"].value("new_server", ""))
        throw CommandError("--resume continues the recorded run, whose new server is " +
                           st["options"].value("new_server", "") + ", not " + a.o.new_server);
    out().step("resuming run " + st.value("run_id", "") + " (" + st.value("status", "") + " at step " +
               st.value("failed_step", "?") + ")" +
               (backup_age(st).empty() ? std::string() : "; its backup is " + backup_age(st)));
    add_forced_steps(st, a.o.force_steps);
    if (nlohmann::json *stop = find_step(st, step_id::server_stop); stop && stop->value("status", "") != "done")
        return resume_refused(ctx, st);
    return std::nullopt;
}

// A new run over a finished one: the old record's run id (it is kept beside the new one, which
// names it: previous_run), after refusing an unfinished run or rollback.
std::string finished_run_to_keep(const nlohmann::json &st, const std::string &state_path)
{
    std::string status = st.value("status", "");
    if (status != "completed" && status != "rolled back")
        throw CommandError("an unfinished run (" + st.value("run_id", "") + ", " + status + " at step " +
                               st.value("failed_step", "?") + ") is recorded in " + state_path,
                           "continue it with: omero-upgrade run --resume (or roll it back: omero-upgrade "
                           "rollback)");
    if (std::string u = unfinished_rollback(state_path, st); !u.empty())
        throw CommandError(u, "finish it first: omero-upgrade rollback");
    // Kept aside (start_run, once there is something to do): rollback follows the chain back to
    // the newest run that changed something.
    return st.value("run_id", "old");
}

// A new run: planned (prepare), refused on any problem, or nothing to do; else its record in st,
// naming the record kept aside (keep_old). An exit code when it ends here.
std::optional<int> start_run(const RunCommandOptions &a, Context &ctx, const std::string &sdir,
                             const std::string &state_path, const std::string &keep_old, nlohmann::json &st)
{
    Prepared p = prepare(a, ctx, sdir, state_path);
    if (!p.problems.empty()) {
        for (const auto &x : p.problems)
            out().error(x);
        out().say("nothing was changed; see omero-upgrade run --dry-run");
        out().result() = {{"problems", p.problems}};
        return EXIT_PROBLEM;
    }
    if (!p.nothing.empty()) {
        out().say("nothing to do: " + p.nothing + " (no server stop, no backup, no run recorded)");
        out().result() = {{"nothing_to_do", true}, {"reason", p.nothing}};
        return EXIT_OK;
    }
    if (!keep_old.empty())
        rename_noreplace(state_path, state_path + "." + keep_old);
    st = p.state;
    if (!keep_old.empty())
        st["previous_run"] = {{"run_id", keep_old}, {"state_file", state_path + "." + keep_old}};
    return std::nullopt;
}

// The steps not done yet, then the report (the versions read back from the database the server
// uses now).
int run_recorded(const RunCommandOptions &a, Context &ctx, const std::string &state_path, nlohmann::json &st)
{
    out().set_log_file(st.value("log_file", ""));
    out().log("omero-upgrade run " + st.value("run_id", "") + (a.resume ? " resumed" : " started"));
    // Every subcommand the remaining steps need must exist before anything is done.
    std::vector<std::string> missing = missing_subcommands(st["steps"]);
    if (!missing.empty()) {
        for (const auto &m : missing)
            out().error(m);
        throw CommandError("this build of omero-upgrade cannot run the whole plan; nothing was changed");
    }
    save_state(state_path, st);
    std::unique_ptr<Preview> pv;
    if (nlohmann::json *pre = find_step(st, step_id::precheck); pre && pre->value("status", "") != "done")
        pv = std::make_unique<Preview>(st);
    Executor x = make_executor(ctx, st, state_path, pv ? pv->dir : "");
    int rc = execute(st, st, st["steps"], x);
    pv.reset();
    if (rc == EXIT_OK) {
        st["status"] = "completed";
        st["finished"] = iso_now();
        st.erase("failed_step");
    }
    read_back(ctx, st);
    save_state(state_path, st);
    int rep = print_report(ctx.global(), st);
    return rc != EXIT_OK ? rc : rep;
}

int run_run(const RunCommandOptions &a, Context &ctx)
{
    std::string sdir = given_server_dir(ctx.global());
    std::string state_path = a.state_file.empty() ? default_state_path(sdir) : lexical_absolute(a.state_file);
    if (a.report)
        return report_only(ctx, state_path);
    if (a.dry_run)
        return dry_run(a, ctx, sdir, state_path);

    Lock lock(state_path);
    nlohmann::json st;
    std::string keep_old;
    if (state_exists(state_path) && a.resume) {
        st = load_state(state_path);
        if (std::optional<int> rc = resume(a, ctx, st))
            return *rc;
    } else if (state_exists(state_path)) {
        keep_old = finished_run_to_keep(load_state(state_path), state_path);
    } else if (a.resume) {
        throw CommandError("no run to resume: no state file " + state_path, "start one with omero-upgrade run --new-server NEW");
    }
    if (st.is_null())
        if (std::optional<int> rc = start_run(a, ctx, sdir, state_path, keep_old, st))
            return *rc;
    return run_recorded(a, ctx, state_path, st);
}

} // namespace

} // namespace ou::run

namespace ou {

CommandRun setup_run(CLI::App &sub)
{
    return command_setup<run::RunCommandOptions, run::add_run_options, run::run_run>(sub);
}

} // namespace ou
