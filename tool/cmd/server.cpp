// omero-upgrade server stop|start|status|diagnostics|jvmcfg: the commands over tool/omero_server.hpp
// (the server directory's bin/omero, run with timeouts, its output in the log). "Stopped" means confirmed: `bin/omero admin status`
// says the server is down AND no OMERO session remains on its database, since a server that
// says it stopped may still hold connections (or a second server may use the same database).
#include "commands.hpp"
#include "commands.hpp"
#include "omero_server.hpp"
#include "progress.hpp"

#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>

namespace ou {

namespace {

std::vector<DbSession> only_omero(const std::vector<DbSession> &all, bool omero)
{
    std::vector<DbSession> v;
    for (const auto &x : all)
        if (x.omero == omero)
            v.push_back(x);
    return v;
}

// Prints the output of bin/omero (diagnostics, jvmcfg) as the command's result.
void show_output(const ProcResult &r)
{
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line))
        out().say(line);
}

int seconds_since(std::chrono::steady_clock::time_point t0)
{
    return (int)std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
}

struct StatusOpts {
    int timeout = 120;
    bool dry_run = false;
};

void add_server_status_options(CLI::App &sub, StatusOpts &o)
{
    sub.add_option("--timeout", o.timeout, "seconds bin/omero admin status may take")->capture_default_str();
    sub.add_flag("--dry-run", o.dry_run, "show what would be run");
}

int run_server_status(const StatusOpts &o, Context &ctx)
{
    ctx.require_omero_bin();
    Settings &s = ctx.settings();
    if (o.dry_run) {
        out().say("would run: bin/omero admin status (in " + s.server_dir + "), and list the sessions on " +
                  s.conn.describe());
        return EXIT_OK;
    }
    bool running = omero_admin_running(s, o.timeout);
    out().result()["server_dir"] = s.server_dir;
    out().result()["running"] = running;
    out().say(std::string("server: ") + (running ? "running" : "stopped") + " (bin/omero admin status, " +
              s.server_dir + ")");
    try {
        auto db = ctx.connect();
        auto all = other_sessions(*db, s.omero_db_user);
        auto omero = only_omero(all, true);
        out().result()["database"] = s.conn.dbname;
        out().result()["sessions"] = sessions_json(all);
        out().say("database " + s.conn.dbname + ": " + std::to_string(all.size()) + " other session(s), " +
                  std::to_string(omero.size()) + " of them OMERO's");
        for (const auto &x : all)
            out().say("  " + x.describe() + (x.omero ? "" : "  [not OMERO]"));
    } catch (const CommandError &e) {
        out().warn(std::string("cannot list the database sessions: ") + e.what());
    }
    return running ? EXIT_OK : EXIT_NOT_YET;  // 3 stopped, as LSB status and pg_ctl status
}

struct StopOpts {
    int timeout = 300;
    bool dry_run = false;
    bool skip_db = false;
};

void add_server_stop_options(CLI::App &sub, StopOpts &o)
{
    sub.add_option("--timeout", o.timeout, "seconds to wait until the stop is confirmed")->capture_default_str();
    sub.add_flag("--dry-run", o.dry_run, "show what would be done, change nothing");
    sub.add_flag("--skip-db-check", o.skip_db,
                 "do not wait for the database sessions to end (when the database cannot be reached from here)");
}

int run_server_stop(const StopOpts &o, Context &ctx)
{
    ctx.require_omero_bin();
    Settings &s = ctx.settings();
    std::unique_ptr<Db> db;
    if (!o.skip_db) {
        try {
            db = ctx.connect();
        } catch (const CommandError &e) {
            throw CommandError(std::string(e.what()) + " (needed to confirm that no OMERO session remains)",
                               "fix the connection settings, or give --skip-db-check to rely on bin/omero alone");
        }
    }
    out().result()["server_dir"] = s.server_dir;
    bool running = omero_admin_running(s, std::min(o.timeout, 120));
    if (o.dry_run) {
        out().say(std::string("server is ") + (running ? "running" : "stopped"));
        out().say("would run: bin/omero web stop");
        if (running)
            out().say("would run: bin/omero admin stop");
        out().say("would wait up to " + std::to_string(o.timeout) + " s until bin/omero admin status says down" +
                  (db ? " and no OMERO session remains on " + s.conn.describe() : std::string()));
        out().result()["running"] = running;
        out().result()["dry_run"] = true;
        return EXIT_OK;
    }
    auto t0 = std::chrono::steady_clock::now();
    ProcResult web = run_omero(s, {"web", "stop"}, std::min(o.timeout, 120));
    if (!web.ok())
        out().warn("bin/omero web stop: " + web.describe() + (web.err_tail(1).empty() ? "" : ": " + web.err_tail(1)) +
                   " (continuing: OMERO.web may not be set up in this server directory)");
    if (running) {
        out().step("stopping the server: bin/omero admin stop");
        ProcResult r = run_omero(s, {"admin", "stop"}, o.timeout);
        if (!r.ok())
            out().warn("bin/omero admin stop: " + r.describe() + (r.err_tail(2).empty() ? "" : ": " + r.err_tail(2)));
    } else {
        out().say("the server is already stopped (bin/omero admin status)");
    }
    // Wait for the confirmation: down, and no OMERO session left on the database.
    std::vector<DbSession> all, omero;
    int last_shown = -5;
    while (true) {
        running = omero_admin_running(s, std::min(o.timeout, 120));
        if (db) {
            all = other_sessions(*db, s.omero_db_user);
            omero = only_omero(all, true);
        }
        int el = seconds_since(t0);
        if (!running && omero.empty())
            break;
        if (el >= o.timeout || interrupted())
            break;
        if (el - last_shown >= 5) {
            out().progress("waiting for the server to stop: " + std::string(running ? "still running" : "down") +
                           (db ? ", " + std::to_string(omero.size()) + " OMERO session(s) on the database" : "") +
                           ", elapsed " + clock_hms(el) + ", ETA unknown (gives up after " +
                           clock_hms(o.timeout) + ")");
            last_shown = el;
        }
        std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (interrupted())
        throw CommandError("interrupted (Ctrl-C) while waiting for the server to stop");
    out().result()["running"] = running;
    out().result()["omero_sessions"] = sessions_json(omero);
    out().result()["elapsed_s"] = seconds_since(t0);
    if (running || !omero.empty()) {
        if (running)
            out().error("the server has not stopped within " + std::to_string(o.timeout) +
                        " s: bin/omero admin status still says it is running");
        if (!omero.empty())
            out().error("OMERO still holds connections to the database " + s.conn.dbname + ": " +
                        describe_sessions(omero));
        out().hint("stop whatever still runs (the server's processes, OMERO.web, another server on this "
                  "database; end a stale session with SELECT pg_terminate_backend(pid)), then run server stop again");
        out().result()["stopped"] = false;
        return EXIT_PROBLEM;
    }
    out().result()["stopped"] = true;
    out().say("server stopped: bin/omero admin status says down" +
              std::string(db ? " and no OMERO session remains on " + s.conn.dbname : " (database not checked)"));
    auto others = only_omero(all, false);
    if (!others.empty())
        out().warn("other sessions remain on " + s.conn.dbname + " (not OMERO's): " + describe_sessions(others) +
                   "; db upgrade refuses to run while they are connected");
    return EXIT_OK;
}

struct StartOpts {
    int timeout = 600;
    bool dry_run = false;
    bool force = false;
};

void add_server_start_options(CLI::App &sub, StartOpts &o)
{
    sub.add_option("--timeout", o.timeout, "seconds bin/omero admin start may take")->capture_default_str();
    sub.add_flag("--dry-run", o.dry_run, "show what would be done, change nothing");
    sub.add_flag("--force", o.force, "start even when the database is not at this server's version");
}

int run_server_start(const StartOpts &o, Context &ctx)
{
    ctx.require_omero_bin();
    Settings &s = ctx.settings();
    out().result()["server_dir"] = s.server_dir;
    if (omero_admin_running(s, std::min(o.timeout, 120))) {
        out().result()["running"] = true;
        out().result()["started"] = false;
        out().say("the server is already running: nothing to do");
        return EXIT_OK;
    }
    // The database must be at the version this server's scripts lead to.
    std::string newest = server_newest_version(s);
    try {
        auto db = ctx.connect();
        OmeroDbState st = read_omero_state(*db);
        out().result()["db_version"] = st.version;
        if (st.is_omero && !st.finished && !o.force) {
            out().error("the newest dbpatch row of " + s.conn.dbname + " (" + st.version +
                        ") is unfinished: an upgrade script stopped half-way");
            out().hint("restore the database from the backup taken before the upgrade, then run db upgrade again");
            return EXIT_PROBLEM;
        }
        int c = st.is_omero && !newest.empty() ? compare_versions(st.version, newest) : 0;
        if (c != 0) {
            // Behind: the server's code expects a schema the database does not have yet. Newer:
            // an old server on an upgraded database (after a binaries rollback without a restore).
            std::string msg = "the database " + s.conn.dbname + " is at " + st.version + " but this server (" +
                              s.server_dir + ") " + (c < 0 ? "needs " : "is made for ") + newest +
                              (c > 0 ? ": the database is newer than this server's scripts" : "");
            if (!o.force) {
                out().error(msg);
                out().hint(c < 0 ? "run omero-upgrade db upgrade first (or --force to start anyway)"
                                : "point OMERO.server at the server the database was upgraded for, or "
                                  "restore the backup taken before the upgrade (omero-upgrade rollback); --force "
                                  "starts anyway");
                return EXIT_PROBLEM;
            }
            out().warn(msg + " (--force: starting anyway)");
        }
    } catch (const CommandError &e) {
        out().warn(std::string("cannot check the database version before starting: ") + e.what());
    }
    if (o.dry_run) {
        out().say("would run: bin/omero admin start (in " + s.server_dir + "), then check bin/omero admin status");
        out().result()["dry_run"] = true;
        return EXIT_OK;
    }
    out().step("starting the server: bin/omero admin start");
    ProcResult r = run_omero(s, {"admin", "start"}, o.timeout);
    bool running = omero_admin_running(s, 120);
    out().result()["running"] = running;
    out().result()["started"] = running;
    if (!r.ok() || !running) {
        out().error("bin/omero admin start: " + r.describe() + (r.err_tail(3).empty() ? "" : ": " + r.err_tail(3)) +
                    (running ? "" : "; the server is not running"));
        out().hint("see var/log/ in the server directory and omero-upgrade server diagnostics");
        return running ? EXIT_OK : EXIT_PROBLEM;
    }
    out().say("server started (bin/omero admin status says running)");
    return EXIT_OK;
}

// diagnostics and jvmcfg: read-only reports of bin/omero.
struct ReportOpts {
    std::string what;  // diagnostics | jvmcfg
    int timeout = 300;
    bool dry_run = false;
};

void add_report_options(CLI::App &sub, ReportOpts &o)
{
    sub.add_option("--timeout", o.timeout, "seconds bin/omero may take")->capture_default_str();
    sub.add_flag("--dry-run", o.dry_run, "show what would be run");
}

void add_server_diagnostics_options(CLI::App &sub, ReportOpts &o)
{
    o.what = "diagnostics";
    add_report_options(sub, o);
}

void add_server_jvmcfg_options(CLI::App &sub, ReportOpts &o)
{
    o.what = "jvmcfg";
    add_report_options(sub, o);
}

int run_server_report(const ReportOpts &o, Context &ctx)
{
    const std::string &what = o.what;
    ctx.require_omero_bin();
    Settings &s = ctx.settings();
    if (o.dry_run) {
        out().say("would run: bin/omero admin " + what + " (in " + s.server_dir + ")");
        return EXIT_OK;
    }
    ProcResult r = run_omero(s, {"admin", what}, o.timeout);
    show_output(r);
    out().result()["output"] = r.out;
    out().result()["exit_code_omero"] = r.exit_code;
    if (!r.ok()) {
        out().error("bin/omero admin " + what + ": " + r.describe() + (r.err_tail(3).empty() ? "" : ": " + r.err_tail(3)));
        return EXIT_PROBLEM;
    }
    return EXIT_OK;
}

} // namespace

CommandRun setup_server_status(CLI::App &sub)
{
    return command_setup<StatusOpts, add_server_status_options, run_server_status>(sub);
}

CommandRun setup_server_stop(CLI::App &sub)
{
    return command_setup<StopOpts, add_server_stop_options, run_server_stop>(sub);
}

CommandRun setup_server_start(CLI::App &sub)
{
    return command_setup<StartOpts, add_server_start_options, run_server_start>(sub);
}

CommandRun setup_server_diagnostics(CLI::App &sub)
{
    return command_setup<ReportOpts, add_server_diagnostics_options, run_server_report>(sub);
}

CommandRun setup_server_jvmcfg(CLI::App &sub)
{
    return command_setup<ReportOpts, add_server_jvmcfg_options, run_server_report>(sub);
}

} // namespace ou
