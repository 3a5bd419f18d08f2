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
    std::string newest;
    for (const auto &h : hops)
        if (newest.empty() || compare_versions(h.to, newest) > 0)
            newest = h.to;
    p.target = o.target.empty() ? newest : o.target;
    if (p.target.empty())
        throw CommandError("no upgrade scripts (sql/psql/<TO>/<FROM>.sql) in " + p.scripts_dir);
    if (!is_version_syntax(p.target))
        throw CommandError("'" + p.target + "' is not an OMERO database version", "versions are written like OMERO5.4__0");

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
    if (!chain) {
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
    p.hops = *chain;
    nlohmann::json a = nlohmann::json::array();
    for (size_t i = 0; i < p.hops.size(); i++)
        a.push_back({{"step", i + 1},
                     {"from", p.hops[i].from},
                     {"to", p.hops[i].to},
                     {"script", p.hops[i].script},
                     {"precheck", p.hops[i].precheck.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.hops[i].precheck)}});
    res["hops"] = a;
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
    ConnParams cp = conn_for(p.s);
    cp.user = p.s.omero_db_user;
    std::string pass = p.s.property("omero.db.pass");
    if (!pass.empty())
        cp.password = pass;
    else if (p.s.conn.user != cp.user)
        cp.password.reset();
    PgClient c = pg_client(cp);
    std::string needle = "application_name=" + conninfo_quote("omero-upgrade");
    size_t pos = c.conninfo.find(needle);
    if (pos != std::string::npos)
        c.conninfo.replace(pos, needle.size(), "application_name=" + conninfo_quote(appname));
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
    sub.add_option("--target", o.target, "version to reach (default: the newest the scripts lead to)");
    sub.add_option("--new-server", o.new_server, "server directory whose sql/psql to use (default: the server directory)");
    sub.add_flag("--dry-run", o.dry_run, "check and show the hops and commands, run nothing");
    sub.add_flag("--force", o.force, "run although the server or other sessions use the database");
    sub.add_option("--site-sql", o.site_sql,
                   "after the hops, apply DIR's *.sql files in name order, each once, in its own transaction, "
                   "recorded with its SHA-256");
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

    // Nothing else may use the database while its schema changes.
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
    if (find_program("psql").empty())
        throw CommandError("psql is not on PATH", "install the PostgreSQL client (e.g. apt install postgresql-client)");

    if (o.dry_run) {
        for (size_t i = 0; i < p.hops.size(); i++) {
            if (!p.hops[i].precheck.empty())
                out().say("would run: psql -X -q -v ON_ERROR_STOP=1 -U " + p.s.omero_db_user + " -f " + p.hops[i].precheck);
            out().say("would run: psql -X -q -v ON_ERROR_STOP=1 -U " + p.s.omero_db_user + " -f " + p.hops[i].script +
                      ", then check that dbpatch shows " + p.hops[i].to + " finished");
        }
        if (site)
            for (const auto &f : site->files)
                if (f.status == "pending")
                    out().say("would run: psql -X -q -1 -v ON_ERROR_STOP=1 -U " + p.s.omero_db_user + " -f " + f.path +
                              ", recording it with sha256 " + f.sha256);
        return EXIT_NOT_YET;  // hops or site SQL files pending
    }

    auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    std::string appname = "omero-upgrade-psql-" + std::to_string(getpid());
    nlohmann::json done = nlohmann::json::array();
    res["done"] = done;
    size_t n = p.hops.size();
    // Hops differ much in length: the ETA from the hops done is an estimate.
    Meter meter("db upgrade", "hops", n, true);
    for (size_t i = 0; i < n; i++) {
        const ScriptHop &h = p.hops[i];
        std::string hop = "hop " + std::to_string(i + 1) + " of " + std::to_string(n) + " (" + h.from + " → " + h.to + ")";
        auto hop_t0 = std::chrono::steady_clock::now();
        std::string phase;
        auto tick = [&] { meter.update(i, phase); };
        // What to tell when the hop did not complete: where the database is, what to do.
        auto fail = [&](const std::string &what, const ProcResult *r) -> int {
            OmeroDbState now = read_omero_state(*p.db);
            res["failed_hop"] = i + 1;
            res["db_version"] = now.version;
            res["db_finished"] = now.finished;
            out().error(hop + ": " + what + (r && !r->err_tail(4).empty() ? ":\n" + r->err_tail(4) : ""));
            if (now.version == h.from && now.finished) {
                out().error("the database " + p.s.conn.dbname + " is still at " + h.from +
                            " (the script's transaction was rolled back)" +
                            (i ? "; " + std::to_string(i) + " of " + std::to_string(n) + " hop(s) done" : ""));
                out().hint("fix the cause shown above, then run omero-upgrade db upgrade again: it goes on from " +
                          h.from + " (the full psql output is in the log, --log-file)");
            } else if (!now.finished) {
                out().error("the database " + p.s.conn.dbname + " is half-upgraded: its newest dbpatch row (" + now.version +
                            ") is unfinished");
                out().hint("restore the backup taken before the upgrade (omero-upgrade restore), then run "
                          "db upgrade again");
            } else {
                out().error("the database " + p.s.conn.dbname + " is at " + now.version + " (expected " + h.to + ")");
                out().hint("compare with db plan; if unsure, restore the backup taken before the upgrade");
            }
            return EXIT_PROBLEM;
        };
        auto on_interrupt = [&] {
            // psql was stopped; its backend may still run the statement: end it, so the
            // script's transaction rolls back and db upgrade can resume from this hop.
            try {
                p.db->query("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                            "WHERE application_name = $1",
                            {appname});
            } catch (const CommandError &) {
            }
            OmeroDbState now = read_omero_state(*p.db);
            throw CommandError("interrupted (Ctrl-C) during " + hop + ": the database is at " + now.version +
                                   (now.finished ? "" : " (unfinished)"),
                               "run omero-upgrade db upgrade again to go on");
        };

        phase = hop + ": precheck";
        meter.show(i, phase);
        if (!h.precheck.empty()) {
            PsqlRun pr = run_psql(p, h.precheck, appname, tick);
            if (pr.interrupted)
                on_interrupt();
            if (!pr.result.ok())
                return fail("the precheck " + h.precheck + " failed (" + pr.result.describe() + ")", &pr.result);
        }
        phase = hop + ": running " + h.script;
        meter.show(i, phase);
        PsqlRun sr = run_psql(p, h.script, appname, tick);
        if (sr.interrupted)
            on_interrupt();
        if (!sr.result.ok())
            return fail("the script " + h.script + " failed (" + sr.result.describe() + ")", &sr.result);
        OmeroDbState now = read_omero_state(*p.db);
        if (now.version != h.to || !now.finished)
            return fail("the script " + h.script + " ended without error, but dbpatch shows " + now.version +
                            (now.finished ? "" : " unfinished") + ", not " + h.to + " finished",
                        nullptr);
        double hop_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - hop_t0).count();
        nlohmann::json sums = {{h.script, sha256_file(p.scripts_dir + "/" + h.script)}};
        if (!h.precheck.empty())
            sums[h.precheck] = sha256_file(p.scripts_dir + "/" + h.precheck);
        record_history(p.s, p.db, {"hop", h.script, h.from, h.to, sums,
                                    {{"scripts_dir", p.scripts_dir + "/sql/psql"}, {"seconds", hop_s},
                                     {"db_user", p.s.omero_db_user}}});
        done.push_back({{"step", i + 1}, {"from", h.from}, {"to", h.to}, {"seconds", hop_s}});
        res["done"] = done;
        out().step(hop + ": done in " + hms(hop_s) + "; dbpatch shows " + h.to + " finished");
    }
    if (n)
        meter.finish();
    res["db_version"] = p.target;
    if (n)
        out().say("database " + p.s.conn.dbname + " upgraded from " + p.state.version + " to " + p.target + " in " +
                  std::to_string(n) + " hop(s), " + hms(elapsed()));
    if (site) {
        nlohmann::json applied = apply_site_sql(p.s, *p.db, *site, p.target, p.scripts_dir);
        res["site_sql"] = site->to_json();
        res["site_sql"]["applied"] = applied;
        out().say("site SQL: " + std::to_string(applied.size()) + " file(s) applied, " +
                  std::to_string(site->files.size() - applied.size()) + " already applied before");
    }
    res["elapsed_s"] = elapsed();
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
