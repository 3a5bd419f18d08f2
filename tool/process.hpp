// Running other programs (pg_dump, pg_restore, psql, bin/omero): fork/exec with an argv vector,
// never a shell; the command and its output go to the log; timeouts; Ctrl-C stops the child.
// Database passwords reach a child only through a temporary passfile (PassFile), never argv.
#pragma once

#include "db.hpp"

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ou {

struct ProcOptions {
    std::vector<std::pair<std::string, std::string>> env;  // set in the child only
    std::vector<std::string> unset_env;                    // taken out of the child's environment
    std::string cwd;
    int timeout_s = 0;                                     // 0: none
    std::function<void()> on_tick;                         // about every 0.5 s while it runs
    std::function<void(const std::string &)> on_stderr_line;
    bool log_stdout = false;  // stdout is captured; also log it line by line
    int umask = -1;           // the child's umask (e.g. 077 for private files); -1: the tool's
};

struct ProcResult {
    int exit_code = -1;  // -1 when killed by a signal
    int signal = 0;
    bool timed_out = false;
    std::string out, err;
    bool ok() const { return exit_code == 0; }
    // "exit code 3" / "killed by signal SIGXFSZ (file size limit exceeded)" / "timed out after…"
    std::string describe() const;
    // The last non-empty stderr lines (for error messages).
    std::string err_tail(size_t lines = 5) const;
};

// Runs argv[0] (looked up on PATH when it has no '/'). Throws CommandError when it cannot start
// or when interrupted (the child is stopped first).
ProcResult run_process(const std::vector<std::string> &argv, const ProcOptions &opts = {});

// The path of a program on PATH, or "" when there is none.
std::string find_program(const std::string &name);

// A libpq passfile that exists in no directory: an anonymous memory file (memfd, mode 0600)
// named /dev/fd/N, inherited by the child run_process starts with PGPASSFILE=/dev/fd/N (and by
// no other), gone when both the tool and that child have closed it: no file outlives the child,
// even when the tool is killed. Holds "*:*:*:*:<password>" so the child uses it for whatever it
// connects to. A password with a line break cannot be written so: refused with a clear error.
class PassFile {
public:
    explicit PassFile(const std::string &password);
    ~PassFile();
    PassFile(const PassFile &) = delete;
    PassFile &operator=(const PassFile &) = delete;
    const std::string &path() const { return path_; }

private:
    int fd_ = -1;
    std::string path_;
};
// N of a PGPASSFILE value /dev/fd/N, else -1.
int passfile_fd(const std::string &pgpassfile);

// How a libpq client program (pg_dump, pg_restore, psql) reaches a database: a connection string
// for -d (no password in it) and the environment (PGPASSFILE when there is a password).
struct PgClient {
    std::string conninfo;
    std::vector<std::pair<std::string, std::string>> env;
    std::vector<std::string> unset_env;  // PGSERVICE when its keys are in conninfo already
    std::unique_ptr<PassFile> passfile;
};
// application_name: what pg_stat_activity shows for the client ("omero-upgrade", or a step's own).
PgClient pg_client(const ConnParams &p, const std::string &application_name = "omero-upgrade");

// libpq connection-string quoting of one value: 'it''s' style, backslash-escaped.
std::string conninfo_quote(const std::string &v);

// The major version of a PostgreSQL client program ("pg_dump (PostgreSQL) 15.2" → 15), 0 when
// it cannot run; full = the version text.
int client_major_version(const std::string &program, std::string *full = nullptr);

} // namespace ou
