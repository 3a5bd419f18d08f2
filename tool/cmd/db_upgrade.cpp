// omero-upgrade db plan | db upgrade: the official upgrade scripts of the NEW server
// (sql/psql/<TO>/<FROM>.sql and <FROM>-precheck.sql), chained from the database's version to the
// target by the files actually present (shortest chain; among equally short ones, the one
// through the newest versions, as omero_upgrade_path() does), and run one hop at a time with
// psql as the OMERO database user, each hop checked in dbpatch before the next one starts.
#include "commands.hpp"
#include "fsutil.hpp"
#include "progress.hpp"
#include "omero_server.hpp"
#include "site_sql.hpp"
#include "history.hpp"
#include "checksum.hpp"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <queue>

namespace ou {

namespace {

struct ScriptHop {
    std::string from, to, script, precheck;  // paths relative to the server directory
};

std::vector<std::string> list_dir(const std::string &dir)
{
    return dir_entries(dir).value_or(std::vector<std::string>{});
}

// Every hop the server directory ships a script for.
std::vector<ScriptHop> find_hops(const std::string &server_dir)
{
    std::vector<ScriptHop> hops;
    std::string psql_dir = server_dir + "/sql/psql";
    for (const auto &to : list_dir(psql_dir)) {
        if (!is_version_syntax(to) || !is_directory(psql_dir + "/" + to))
            continue;
        for (const auto &f : list_dir(psql_dir + "/" + to)) {
            if (f.size() <= 4 || f.compare(f.size() - 4, 4, ".sql") != 0)
                continue;
            std::string from = f.substr(0, f.size() - 4);
            if (!is_version_syntax(from) || from == to)
                continue;
            ScriptHop h{from, to, "sql/psql/" + to + "/" + f, ""};
            if (path_exists(psql_dir + "/" + to + "/" + from + "-precheck.sql"))
                h.precheck = "sql/psql/" + to + "/" + from + "-precheck.sql";
            hops.push_back(h);
        }
    }
    return hops;
}

std::string hms(double s)
{
    long t = (long)s;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    return buf;
}

struct PlanOpts {
    std::string target, new_server, site_sql;
    bool dry_run = false, force = false;
};

struct Plan {
    Settings s;               // the context's, as its connection completed them
    std::string scripts_dir;  // the server directory whose sql/psql is used
    Db *db = nullptr;         // the context's
    OmeroDbState state;
    std::string target;
    std::vector<ScriptHop> hops;
    int code = EXIT_OK;  // EXIT_PROBLEM: stop (explained already)
    bool nothing_to_do = false;
};

// --target, or the newest version the scripts lead to.
std::string choose_target(const PlanOpts &o, const std::vector<ScriptHop> &hops, const std::string &scripts_dir)
{
    std::string newest;
    for (const auto &h : hops)
        if (newest.empty() || compare_versions(h.to, newest) > 0)
            newest = h.to;
    std::string target = o.target.empty() ? newest : o.target;
    if (target.empty())
        throw CommandError("no upgrade scripts (sql/psql/<TO>/<FROM>.sql) in " + scripts_dir);
    if (!is_version_syntax(target))
        throw CommandError("'" + target + "' is not an OMERO database version", "versions are written like OMERO5.4__0");
    return target;
}

// No chain leads from the database's version to the target: which scripts there are, and where
// the database's version leads.
[[noreturn]] void throw_no_chain(const Plan &p, const std::vector<ScriptHop> &hops)
{
    std::string present;
    for (const auto &h : hops)
        present += (present.empty() ? "" : ", ") + h.from + " → " + h.to;
    std::string reach;
    for (const auto &h : hops)
        if (h.from == p.state.version)
            reach += (reach.empty() ? "" : ", ") + h.to;
    throw CommandError("no chain of upgrade scripts in " + p.scripts_dir + "/sql/psql leads from " + p.state.version +
                           " to " + p.target + " (a hop is missing; scripts present: " +
                           (present.empty() ? "none" : present) + ")",
                       reach.empty() ? "no script starts at " + p.state.version +
                                           ": upgrade through an intermediate server release first, or use the right server"
                                     : "from " + p.state.version + " the scripts lead to " + reach);
}

nlohmann::json hops_json(const std::vector<ScriptHop> &hops)
{
    nlohmann::json a = nlohmann::json::array();
    for (size_t i = 0; i < hops.size(); i++)
        a.push_back({{"step", i + 1},
                     {"from", hops[i].from},
                     {"to", hops[i].to},
                     {"script", hops[i].script},
                     {"precheck", hops[i].precheck.empty() ? nlohmann::json(nullptr) : nlohmann::json(hops[i].precheck)}});
    return a;
}

// The checks and the chain shared by plan and upgrade. Errors that prevent running throw.
Plan make_plan(const PlanOpts &o, Context &ctx)
{
    Plan p;
    p.s = ctx.settings();
    p.scripts_dir = o.new_server.empty() ? p.s.server_dir : o.new_server;
    if (!is_directory(p.scripts_dir + "/sql/psql"))
        throw CommandError("no sql/psql directory in " + p.scripts_dir,
                           "run this with the NEW server (after binaries install), or give --new-server DIR");
    std::vector<ScriptHop> hops = find_hops(p.scripts_dir);
    p.target = choose_target(o, hops, p.scripts_dir);

    p.db = &ctx.db();
    p.s = ctx.settings();
    p.state = read_omero_state(*p.db);
    nlohmann::json &res = out().result();
    res["database"] = p.s.conn.dbname;
    res["scripts_dir"] = p.scripts_dir + "/sql/psql";
    res["target"] = p.target;
    if (!p.state.is_omero)
        throw CommandError("the database " + p.s.conn.dbname + " is not an OMERO database (no dbpatch rows)",
                           "check omero.db.name in " + p.s.config_path + " or --db-name");
    res["current"] = p.state.version;
    res["current_finished"] = p.state.finished;
    if (!p.state.finished) {
        out().error("the newest dbpatch row of " + p.s.conn.dbname + " (" + p.state.version + ", message '" +
                    p.state.message + "') has no finished time: an upgrade script stopped half-way, or one is running now");
        out().hint("do not run further scripts. If no upgrade is running, restore the backup taken before the "
                  "upgrade (omero-upgrade restore), then run db upgrade again");
        p.code = EXIT_PROBLEM;
        return p;
    }
    int c = compare_versions(p.state.version, p.target);
    if (c == 0) {
        p.nothing_to_do = true;
        res["hops"] = nlohmann::json::array();
        out().say("the database " + p.s.conn.dbname + " is already at " + p.target +
                  (o.site_sql.empty() ? ": nothing to do" : ": no hop to run"));
        return p;
    }
    if (c > 0)
        throw CommandError("the database " + p.s.conn.dbname + " is at " + p.state.version + ", newer than the target " +
                           p.target);
    auto chain = shortest_chain_of(hops, p.state.version, p.target);
    if (!chain)
        throw_no_chain(p, hops);
    p.hops = *chain;
    res["hops"] = hops_json(p.hops);
    return p;
}

void show_plan(const Plan &p)
{
    out().say("database " + p.s.conn.dbname + ": " + p.state.version + " → " + p.target + " in " +
              std::to_string(p.hops.size()) + " hop(s), scripts from " + p.scripts_dir + "/sql/psql");
    for (size_t i = 0; i < p.hops.size(); i++)
        out().say("  " + std::to_string(i + 1) + ". " + p.hops[i].from + " → " + p.hops[i].to + ": " + p.hops[i].script +
                  " (precheck: " + (p.hops[i].precheck.empty() ? "none" : p.hops[i].precheck) + ")");
}

void add_db_plan_options(CLI::App &sub, PlanOpts &o)
{
    sub.add_option("--target", o.target, "version to reach (default: the newest the scripts lead to)");
    sub.add_option("--new-server", o.new_server, "server directory whose sql/psql to use (default: the server directory)");
}

int run_db_plan(const PlanOpts &o, Context &ctx)
{
    Plan p = make_plan(o, ctx);
    if (p.code != EXIT_OK || p.nothing_to_do)
        return p.code;
    show_plan(p);
    return EXIT_NOT_YET;  // hops pending (0 at the target), as omego's db upgrade -n
}

// psql as the OMERO database user (new objects get the right owner), password only through a
// temp passfile in the child's environment. A unique application_name lets us end its backend.
struct PsqlRun {
    ProcResult result;
    bool interrupted = false;
};

PsqlRun run_psql(const Plan &p, const std::string &file, const std::string &appname,
                 const std::function<void()> &on_tick)
{
    PgClient c = pg_client(omero_user_conn(p.s), appname);
    ProcOptions po;
    po.env = c.env;
    // OMERO's scripts resolve names in OMERO's schema, then pg_catalog: no "$user", no other
    // schema, and no plant in OMERO's schema (checked before each hop and each precheck).
    po.env.emplace_back("PGOPTIONS", pgoptions_with(omero_code_pgoptions(*p.db, p.state.schema)));
    po.cwd = p.scripts_dir;
    po.log_stdout = true;
    po.on_tick = on_tick;
    PsqlRun r;
    try {
        r.result = run_process({"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", c.conninfo, "-f", file}, po);
    } catch (const CommandError &e) {
        if (!interrupted())
            throw;
        r.interrupted = true;
    }
    return r;
}

void add_db_upgrade_options(CLI::App &sub, PlanOpts &o)
{
    add_db_plan_options(sub, o);
    sub.add_flag("--dry-run", o.dry_run, "check and show the hops and commands, run nothing");
    sub.add_flag("--force", o.force, "run although the server or other sessions use the database");
    sub.add_option("--site-sql", o.site_sql,
                   "after the hops, apply DIR's *.sql files in name order, each once, in its own transaction, "
                   "recorded with its SHA-256");
}

// Nothing else may use the database while its schema changes: other sessions, a running server
// (each refused unless --force). EXIT_OK to go on.
int check_database_unused(const Plan &p, const PlanOpts &o)
{
    nlohmann::json &res = out().result();
    auto others = other_sessions(*p.db, p.s.omero_db_user);
    res["other_sessions"] = sessions_json(others);
    if (!others.empty()) {
        std::string msg = "other sessions use the database " + p.s.conn.dbname + ": " + describe_sessions(others);
        if (!o.force) {
            out().error(msg);
            out().hint("stop the server (omero-upgrade server stop) and other clients first, or give --force");
            return EXIT_PROBLEM;
        }
        out().warn(msg + " (--force: going on)");
    }
    if (access(p.s.server_path("bin/omero").c_str(), X_OK) == 0 && omero_admin_running(p.s, 120)) {
        if (!o.force) {
            out().error("the server in " + p.s.server_dir + " is running (bin/omero admin status)");
            out().hint("omero-upgrade server stop first, or give --force");
            return EXIT_PROBLEM;
        }
        out().warn("the server in " + p.s.server_dir + " is running (--force: going on)");
    }
    return EXIT_OK;
}

// --dry-run: the commands each hop and each pending site SQL file would run.
void show_dry_run(const Plan &p, const std::optional<SitePlan> &site)
{
    for (const auto &h : p.hops) {
        if (!h.precheck.empty())
            out().say("would run: psql -X -q -v ON_ERROR_STOP=1 -U " + p.s.omero_db_user + " -f " + h.precheck);
        out().say("would run: psql -X -q -v ON_ERROR_STOP=1 -U " + p.s.omero_db_user + " -f " + h.script +
                  ", then check that dbpatch shows " + h.to + " finished");
    }
    if (site)
        for (const auto &f : site->files)
            if (f.status == "pending")
                out().say("would run: psql -X -q -1 -v ON_ERROR_STOP=1 -U " + p.s.omero_db_user + " -f " + f.path +
                          ", recording it with sha256 " + f.sha256);
}

double seconds_since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One hop of the chain as it runs: its place in the chain and its psql's application_name.
struct HopRun {
    const Plan &p;
    const ScriptHop &h;
    size_t i, n;           // hop i (0-based) of n
    std::string appname;   // of its psql, to end its backend on Ctrl-C
    std::string label;     // "hop 2 of 3 (A → B)"
};

// What to tell when the hop did not complete: where the database is, what to do.
int report_failed_hop(const HopRun &r, const std::string &what, const ProcResult *pr)
{
    nlohmann::json &res = out().result();
    const std::string &dbname = r.p.s.conn.dbname;
    OmeroDbState now = read_omero_state(*r.p.db);
    res["failed_hop"] = r.i + 1;
    res["db_version"] = now.version;
    res["db_finished"] = now.finished;
    out().error(r.label + ": " + what + (pr && !pr->err_tail(4).empty() ? ":\n" + pr->err_tail(4) : ""));
    if (now.version == r.h.from && now.finished) {
        out().error("the database " + dbname + " is still at " + r.h.from + " (the script's transaction was rolled back)" +
                    (r.i ? "; " + std::to_string(r.i) + " of " + std::to_string(r.n) + " hop(s) done" : ""));
        out().hint("fix the cause shown above, then run omero-upgrade db upgrade again: it goes on from " + r.h.from +
                   " (the full psql output is in the log, --log-file)");
    } else if (!now.finished) {
        out().error("the database " + dbname + " is half-upgraded: its newest dbpatch row (" + now.version +
                    ") is unfinished");
        out().hint("restore the backup taken before the upgrade (omero-upgrade restore), then run "
                   "db upgrade again");
    } else {
        out().error("the database " + dbname + " is at " + now.version + " (expected " + r.h.to + ")");
        out().hint("compare with db plan; if unsure, restore the backup taken before the upgrade");
    }
    return EXIT_PROBLEM;
}

// psql was stopped; its backend may still run the statement: end it, so the script's
// transaction rolls back and db upgrade can resume from this hop.
[[noreturn]] void stop_interrupted_hop(const HopRun &r)
{
    try {
        r.p.db->query("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                      "WHERE application_name = $1",
                      {r.appname});
    } catch (const CommandError &) {
    }
    OmeroDbState now = read_omero_state(*r.p.db);
    throw CommandError("interrupted (Ctrl-C) during " + r.label + ": the database is at " + now.version +
                           (now.finished ? "" : " (unfinished)"),
                       "run omero-upgrade db upgrade again to go on");
}

// The hop's history entry: its scripts with their SHA-256.
void record_hop(const HopRun &r, double hop_s)
{
    const Plan &p = r.p;
    nlohmann::json sums = {{r.h.script, sha256_file(p.scripts_dir + "/" + r.h.script)}};
    if (!r.h.precheck.empty())
        sums[r.h.precheck] = sha256_file(p.scripts_dir + "/" + r.h.precheck);
    record_history(p.s, p.db, {"hop", r.h.script, r.h.from, r.h.to, sums,
                               {{"scripts_dir", p.scripts_dir + "/sql/psql"}, {"seconds", hop_s},
                                {"db_user", p.s.omero_db_user}}});
}

// Runs one hop (its precheck, its script), checks dbpatch after it and records it in history and
// in the result's "done". EXIT_OK, or EXIT_PROBLEM explained.
int run_hop(const HopRun &r, Meter &meter, nlohmann::json &done)
{
    auto hop_t0 = std::chrono::steady_clock::now();
    std::string phase;
    auto tick = [&] { meter.update(r.i, phase); };
    phase = r.label + ": precheck";
    meter.show(r.i, phase);
    if (!r.h.precheck.empty()) {
        PsqlRun pr = run_psql(r.p, r.h.precheck, r.appname, tick);
        if (pr.interrupted)
            stop_interrupted_hop(r);
        if (!pr.result.ok())
            return report_failed_hop(r, "the precheck " + r.h.precheck + " failed (" + pr.result.describe() + ")",
                                     &pr.result);
    }
    phase = r.label + ": running " + r.h.script;
    meter.show(r.i, phase);
    PsqlRun sr = run_psql(r.p, r.h.script, r.appname, tick);
    if (sr.interrupted)
        stop_interrupted_hop(r);
    if (!sr.result.ok())
        return report_failed_hop(r, "the script " + r.h.script + " failed (" + sr.result.describe() + ")", &sr.result);
    OmeroDbState now = read_omero_state(*r.p.db);
    if (now.version != r.h.to || !now.finished)
        return report_failed_hop(r, "the script " + r.h.script + " ended without error, but dbpatch shows " +
                                        now.version + (now.finished ? "" : " unfinished") + ", not " + r.h.to +
                                        " finished",
                                 nullptr);
    double hop_s = seconds_since(hop_t0);
    record_hop(r, hop_s);
    done.push_back({{"step", r.i + 1}, {"from", r.h.from}, {"to", r.h.to}, {"seconds", hop_s}});
    out().result()["done"] = done;
    out().step(r.label + ": done in " + hms(hop_s) + "; dbpatch shows " + r.h.to + " finished");
    return EXIT_OK;
}

// The hops of the plan in order, with a progress meter; stops at the first that fails.
int run_hops(const Plan &p, std::chrono::steady_clock::time_point t0)
{
    nlohmann::json &res = out().result();
    std::string appname = "omero-upgrade-psql-" + std::to_string(getpid());
    nlohmann::json done = nlohmann::json::array();
    res["done"] = done;
    size_t n = p.hops.size();
    // Hops differ much in length: the ETA from the hops done is an estimate.
    Meter meter("db upgrade", "hops", n, true);
    for (size_t i = 0; i < n; i++) {
        const ScriptHop &h = p.hops[i];
        HopRun r{p, h, i, n, appname,
                 "hop " + std::to_string(i + 1) + " of " + std::to_string(n) + " (" + h.from + " → " + h.to + ")"};
        if (int code = run_hop(r, meter, done); code != EXIT_OK)
            return code;
    }
    if (n)
        meter.finish();
    res["db_version"] = p.target;
    if (n)
        out().say("database " + p.s.conn.dbname + " upgraded from " + p.state.version + " to " + p.target + " in " +
                  std::to_string(n) + " hop(s), " + hms(seconds_since(t0)));
    return EXIT_OK;
}

// After the hops: the pending site SQL files, each once, recorded.
void apply_site(const Plan &p, SitePlan &site)
{
    nlohmann::json &res = out().result();
    nlohmann::json applied = apply_site_sql(p.s, *p.db, site, p.target, p.scripts_dir);
    res["site_sql"] = site.to_json();
    res["site_sql"]["applied"] = applied;
    out().say("site SQL: " + std::to_string(applied.size()) + " file(s) applied, " +
              std::to_string(site.files.size() - applied.size()) + " already applied before");
}

int run_db_upgrade(const PlanOpts &o, Context &ctx)
{
    Plan p = make_plan(o, ctx);
    if (p.code != EXIT_OK)
        return p.code;
    // Site SQL is checked before anything runs: a changed file refuses the whole command.
    std::optional<SitePlan> site;
    if (!o.site_sql.empty()) {
        site = plan_site_sql(p.s, *p.db, o.site_sql);
        out().result()["site_sql"] = site->to_json();
    }
    if (p.nothing_to_do && (!site || (site->pending() == 0 && site->blocking() == 0))) {
        if (site)
            show_site_plan(*site, o.dry_run);
        return p.code;
    }
    if (!p.nothing_to_do)
        show_plan(p);
    if (site && !show_site_plan(*site, o.dry_run)) {
        out().say(site->changed() ? "hint: nothing was run; a site SQL file that was applied must keep its content (like "
                                    "Flyway's validate): restore it, and put further changes in a new file"
                                  : "hint: nothing was run; fix the refused site SQL file(s) and run again");
        return EXIT_PROBLEM;
    }
    nlohmann::json &res = out().result();
    res["dry_run"] = o.dry_run;
    if (int code = check_database_unused(p, o); code != EXIT_OK)
        return code;
    if (find_program("psql").empty())
        throw CommandError("psql is not on PATH", "install the PostgreSQL client (e.g. apt install postgresql-client)");
    if (o.dry_run) {
        show_dry_run(p, site);
        return EXIT_NOT_YET;  // hops or site SQL files pending
    }
    auto t0 = std::chrono::steady_clock::now();
    if (int code = run_hops(p, t0); code != EXIT_OK)
        return code;
    if (site)
        apply_site(p, *site);
    res["elapsed_s"] = seconds_since(t0);
    return EXIT_OK;
}

} // namespace

CommandRun setup_db_plan(CLI::App &sub)
{
    return command_setup<PlanOpts, add_db_plan_options, run_db_plan>(sub);
}

CommandRun setup_db_upgrade(CLI::App &sub)
{
    return command_setup<PlanOpts, add_db_upgrade_options, run_db_upgrade>(sub);
}

} // namespace ou
