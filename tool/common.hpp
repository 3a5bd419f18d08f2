// Shared plumbing of omero-upgrade: exit codes, global options, output (human or JSON), the log,
// errors. The commands and their table: tool/command.hpp, tool/cmd/commands.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ou {

// Exit codes of every subcommand (README, "Design"): 0 ok; 1 a problem was found or a
// precondition refused (the server is running, other sessions, …); 2 could not run (bad
// arguments, no connection, missing files, interrupted); 3 not there yet, as LSB init scripts
// and pg_ctl status (hops pending, the server stopped).
enum ExitCode { EXIT_OK = 0, EXIT_PROBLEM = 1, EXIT_ERROR = 2, EXIT_NOT_YET = 3 };

// "Could not run": a clear message for the user, exit code 2. Never carries a password.
struct CommandError : std::runtime_error {
    explicit CommandError(const std::string &msg, std::string hint = {}, int code = EXIT_ERROR)
        : std::runtime_error(msg), hint(std::move(hint)), code(code)
    {
    }
    std::string hint;
    int code;
};

// A precondition refused (the server is running, …): the same condition gets exit code 1 in
// every command.
struct Refused : CommandError {
    explicit Refused(const std::string &msg, std::string hint = {}) : CommandError(msg, std::move(hint), EXIT_PROBLEM) {}
};

// The one way JSON becomes text (stdout, state files, manifests): strings that are not valid
// UTF-8 (a Latin-1 file name, a SQL_ASCII database's text, a byte in an option) get U+FFFD for
// each invalid byte instead of nlohmann's type_error.316. indent as nlohmann's dump().
std::string json_text(const nlohmann::json &j, int indent = -1);

// The tool's own files (run state, run records, binaries state, backup manifests, journals,
// history) keep every byte, since the tool acts on the paths they hold: a string (or key) that is
// not valid UTF-8 is stored as the marker "\u0001bytes:" and its bytes in hex, and read back to
// the same bytes; a string that starts with the marker itself is stored the same way, so the
// encoding is exact both ways. Everything valid UTF-8 is stored as it is.
std::string stored_json_text(const nlohmann::json &j, int indent = -1);
// Parses what stored_json_text() wrote (or any JSON); is_discarded() when the text is not JSON.
nlohmann::json parse_stored_json(const std::string &text);
bool valid_utf8(const std::string &s);
// s itself when valid UTF-8, else with U+FFFD for each invalid byte (for text a database column
// or a message shows; what the tool acts on keeps its bytes, see stored_json_text()).
std::string valid_text(const std::string &s);

// Options every subcommand shares.
struct GlobalOptions {
    bool json = false;
    bool verbose = false;
    bool quiet = false;
    std::string log_file;
    std::string server_dir;  // --server-dir, else OMERODIR, else ./OMERO.server
    std::string db_host, db_port, db_name, db_user;
};

// Output of one subcommand run: human lines on stderr/stdout, or one JSON object on stdout.
//
// JSON shape (README, "Design"): {"command": "...", "status": "ok"|"problem"|"error"|"pending",
//   "exit_code": 0|1|2|3, "result": {...}, "warnings": [...], "errors": [...], "hints": [...]}
// Streams: results on stdout (shown with -q too: -q drops chatter, never the data asked for);
// hints, warnings, errors, details and progress on stderr.
class Output {
public:
    void begin(const GlobalOptions &opts, std::string command);
    // Human text for the result (stdout); silent in --json mode.
    void say(const std::string &line);
    // Chatter: what is being done now ("backing up …", "starting the server …"), on stderr; dropped
    // by -q and --json (always logged). Results stay say()'s.
    void step(const std::string &line);
    // What to do about an error or a warning: "hint: …" on stderr, "hints" in --json.
    void hint(const std::string &line);
    // Detail shown with -v (always logged).
    void detail(const std::string &line);
    // Progress line: on a terminal rewritten in place, otherwise plain lines; never in --json.
    void progress(const std::string &line);
    // Whether progress lines are rewritten in place: a terminal, or a child of `run` on one
    // (OMERO_UPGRADE_PROGRESS=lines-tty). Meters (tool/progress.hpp) throttle by it.
    bool progress_in_place() const;
    void warn(const std::string &line);
    void error(const std::string &line);
    // Log only.
    void log(const std::string &line);
    nlohmann::json &result() { return result_; }
    const std::string &command() const { return command_; }
    bool json() const { return opts_.json; }
    bool quiet() const { return opts_.quiet; }
    // The log file chosen after begin() (run: a log beside its state file).
    void set_log_file(const std::string &path) { opts_.log_file = path; }
    const std::string &log_file() const { return opts_.log_file; }
    // Prints the JSON object (in --json mode) and returns the exit code.
    int finish(int code);

private:
    void end_progress_line();
    GlobalOptions opts_;
    std::string command_;
    nlohmann::json result_ = nlohmann::json::object();
    std::vector<std::string> warnings_, errors_, hints_;
    bool progress_open_ = false;
};

Output &out();

// The commands, their shape and what the driver gives them: tool/command.hpp.

// Utilities used by many subcommands.
// Now in UTC: 20261125T134500Z by default (names), "%Y-%m-%dT%H:%M:%SZ" for ISO 8601 (records).
std::string utc_timestamp(const char *format = "%Y%m%dT%H%M%SZ");
std::string human_bytes(unsigned long long n);  // 1.5 GiB
std::string shell_quote(const std::string &s);  // for showing commands, never for running them

} // namespace ou
