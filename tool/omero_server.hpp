// The OMERO server process as the upgrade steps see it: bin/omero run with a timeout (output in
// the log), whether the server runs, and who still holds connections to its database.
// Used by the `server` subcommands (server.cpp) and by every step that needs the server down.
#pragma once

#include "process.hpp"
#include "settings.hpp"

#include <string>
#include <vector>

namespace ou {

// Runs <server_dir>/bin/omero ARGS in the server directory, stdout and stderr logged. Throws
// CommandError when there is no executable bin/omero, it cannot start, or it times out.
ProcResult run_omero(const Settings &s, const std::vector<std::string> &args, int timeout_s);

// `bin/omero admin status`: exit 0 means running; 126/127 (cannot run) is an error; any other
// exit code means not running.
bool omero_admin_running(const Settings &s, int timeout_s);

// A client session on the database other than our own connection.
struct DbSession {
    std::string pid, user, application, client, state, since;
    bool omero = false;  // the OMERO database user, or an OMERO/JDBC application name
    std::string describe() const;  // "pid 123 omero@OMERO.blitz (idle since 12:00:01)"
};
std::vector<DbSession> other_sessions(Db &db, const std::string &omero_user);
// "3 session(s): pid 1 …; pid 2 …; …" (at most max listed).
std::string describe_sessions(const std::vector<DbSession> &sessions, size_t max = 5);
nlohmann::json sessions_json(const std::vector<DbSession> &sessions);

} // namespace ou
