// The OMERO server as every step sees it: the server directory's bin/omero, run with timeouts
// (its output in the log), whether it runs, and the sessions still on its database ("is it down").
#include "omero_server.hpp"
#include "progress.hpp"

#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>

namespace ou {

ProcResult run_omero(const Settings &s, const std::vector<std::string> &args, int timeout_s)
{
    require_omero_bin(s);
    std::vector<std::string> argv{s.server_path("bin/omero")};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcOptions o;
    o.cwd = s.server_dir;
    o.timeout_s = timeout_s;
    o.log_stdout = true;
    std::string shown = "bin/omero";
    for (const auto &a : args)
        shown += " " + shell_quote(a);
    // bin/omero reports nothing of its progress (starting Ice and the JVMs can take minutes): after
    // 2 s, a line every 5 s with the elapsed time and the deadline, so that a wait is never silent.
    auto t0 = std::chrono::steady_clock::now();
    double shown_at = 0;
    o.on_tick = [&] {
        double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (el < 2 || (shown_at > 0 && el - shown_at < 5))
            return;
        shown_at = el;
        out().progress(shown + ": running, elapsed " + clock_hms(el) + ", ETA unknown (bin/omero reports no " +
                       "progress; gives up after " + clock_hms(timeout_s) + ")");
    };
    ProcResult r = run_process(argv, o);
    if (r.timed_out)
        throw CommandError(shown + " did not finish within " + std::to_string(timeout_s) + " s (stopped it)",
                           "see the server's logs (var/log/) and try it by hand; --timeout gives it longer");
    if (r.exit_code == 126 || r.exit_code == 127)
        throw CommandError(shown + " could not run (" + r.describe() + "): " + r.err_tail(3),
                           "check that bin/omero works in " + s.server_dir + " (Python, Ice, OMERODIR)");
    return r;
}

bool omero_admin_running(const Settings &s, int timeout_s)
{
    ProcResult r = run_omero(s, {"admin", "status"}, timeout_s);
    if (r.exit_code == 0)
        return true;
    // `bin/omero admin status` exits 1 when the server is not running. Anything else (another exit
    // code, a signal, a Python traceback or error on stderr) means bin/omero itself is broken: reading
    // that as "stopped" would let a stop, an upgrade or a cache clear go ahead on a running server.
    bool broken_output = r.err.find("Traceback") != std::string::npos || r.err.find("Error") != std::string::npos;
    if (r.exit_code == 1 && !broken_output)
        return false;
    std::string tail = r.err_tail(5);
    throw CommandError("bin/omero admin status failed (" + r.describe() + ")" + (tail.empty() ? "" : ":\n" + tail) +
                           "\nwhether the server runs is unknown",
                       "check that bin/omero works in " + s.server_dir + " (Python, Ice, OMERODIR) and try "
                       "bin/omero admin status by hand");
}

std::string DbSession::describe() const
{
    std::string d = "pid " + pid + " " + user + "@" + (application.empty() ? "(no application name)" : application);
    if (!client.empty())
        d += " from " + client;
    if (!state.empty())
        d += " (" + state + (since.empty() ? "" : " since " + since) + ")";
    return d;
}

std::vector<DbSession> other_sessions(Db &db, const std::string &omero_user)
{
    // Client backends only (not autovacuum or replication); our own connection excluded. Without
    // pg_read_all_stats, backend_type of other users' sessions is NULL, but user and database show.
    Rows r = db.query(
        "SELECT pid::text AS pid, coalesce(usename::text, '') AS usr, coalesce(application_name, '') AS app,"
        "       coalesce(host(client_addr), CASE WHEN client_port = -1 THEN 'local socket' ELSE '' END) AS client,"
        "       coalesce(state, '') AS state, coalesce(to_char(state_change, 'YYYY-MM-DD HH24:MI:SS'), '') AS since,"
        "       (usename = $1 OR application_name ILIKE 'OMERO%' OR application_name = 'PostgreSQL JDBC Driver') AS omero"
        "  FROM pg_catalog.pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_catalog.pg_backend_pid()"
        "   AND (backend_type = 'client backend' OR (backend_type IS NULL AND usename IS NOT NULL))"
        " ORDER BY pid",
        {omero_user});
    std::vector<DbSession> v;
    for (size_t i = 0; i < r.rows.size(); i++)
        v.push_back({r.str(i, "pid"), r.str(i, "usr"), r.str(i, "app"), r.str(i, "client"), r.str(i, "state"),
                     r.str(i, "since"), r.str(i, "omero") == "t"});
    return v;
}

std::string describe_sessions(const std::vector<DbSession> &sessions, size_t max)
{
    std::string d = std::to_string(sessions.size()) + " session(s): ";
    for (size_t i = 0; i < sessions.size() && i < max; i++)
        d += (i ? "; " : "") + sessions[i].describe();
    if (sessions.size() > max)
        d += "; and " + std::to_string(sessions.size() - max) + " more";
    return d;
}

nlohmann::json sessions_json(const std::vector<DbSession> &sessions)
{
    nlohmann::json a = nlohmann::json::array();
    for (const auto &x : sessions)
        a.push_back({{"pid", std::stoll(x.pid)},
                     {"user", x.user},
                     {"application", x.application},
                     {"client", x.client},
                     {"state", x.state},
                     {"since", x.since},
                     {"omero", x.omero}});
    return a;
}

} // namespace ou
