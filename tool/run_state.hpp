// The machinery of `run` and `rollback`: the state file (JSON, written atomically), the lock
// beside it, and steps run as child processes of this same binary (`omero-upgrade --json SUB …`),
// like git porcelain over plumbing: `run` depends only on the subcommands' CLI and JSON output.
#pragma once

#include "common.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ou::run {

// 2026-11-25T13:45:00Z
std::string iso_now();
// Seconds between two iso_now() stamps (0 when either is empty or malformed).
double seconds_between(const std::string &from, const std::string &to);
// h:mm:ss
std::string hms(double seconds);

// <parent of the server directory as given>/.omero-upgrade-run.json: beside OMERO.server, so it
// survives the symlink being repointed to the new tree.
std::string default_state_path(const std::string &server_dir);

// An flock()ed "<state>.lock" holding the owner's pid. The kernel releases it when the process
// dies, so a crash never leaves a stale lock. Throws CommandError (exit 2) when another process
// holds it.
class Lock {
public:
    // create = false: only tests whether another process holds it (dry run), writes nothing.
    explicit Lock(const std::string &state_path, bool create = true);
    ~Lock();
    Lock(const Lock &) = delete;
    Lock &operator=(const Lock &) = delete;

private:
    int fd_ = -1;
};

bool state_exists(const std::string &path);
// Throws CommandError when the file cannot be read or is not a state file of ours.
nlohmann::json load_state(const std::string &path);
// Temp file beside it, fsync, rename, fsync of the directory: a crash leaves the old or the new.
void save_state(const std::string &path, nlohmann::json &state);

// One step's record in a state file.
nlohmann::json new_step(const std::string &id, const std::string &title, const std::vector<std::string> &command,
                        const nlohmann::json &extra = nlohmann::json::object());
nlohmann::json *find_step(nlohmann::json &state, const std::string &id, const char *list = "steps");

// The path of this binary (/proc/self/exe).
std::string self_exe();

// The global options a child gets: --server-dir (server_dir, or the run's), the --db-* the user
// gave, the run's log file. Never a password: children read it from config.xml or libpq's files.
std::vector<std::string> child_globals(const GlobalOptions &g, const std::string &server_dir, const std::string &log_file);

struct ChildOutcome {
    int exit_code = 2;
    bool interrupted = false;
    nlohmann::json json;             // the child's JSON object (null when it printed none)
    std::string error;               // why it failed, for the user (empty when exit 0)
    std::vector<std::string> warnings;
    std::vector<std::string> stderr_tail;
};

// Runs `self --json GLOBALS ARGS…`: its "progress: " lines on stderr are shown as our progress
// (in place on a terminal, plain lines otherwise), prefixed with the step and its elapsed time;
// a step that shows nothing for 2 s gets an "elapsed" ticker. Ctrl-C: the child is stopped and
// the outcome says interrupted.
ChildOutcome run_child(const std::string &label, const std::vector<std::string> &globals,
                       const std::vector<std::string> &args);

// Whether this build has the subcommand ("binaries install" → `self binaries install --help`).
bool has_subcommand(const std::vector<std::string> &words);

// OMERO_UPGRADE_FAIL_AFTER_STEP=<step id>: the step runs, then the run stops as if it had failed
// (tests of --resume; documented in README).
bool fail_injected_after(const std::string &step_id);

} // namespace ou::run

#include <functional>

namespace ou::run {

// How execute() runs the steps of one list ("steps" of a run, "steps" of state["rollback"]).
struct Executor {
    GlobalOptions options;    // the command line's global options (the children's --db-*)
    std::string state_path;
    std::string server_dir;   // --server-dir for the children (as the user gave it)
    std::string preview_dir;  // --server-dir of steps marked "dir": "preview"
    std::string log_file;
    // The arguments for this attempt (default: step["command"]); may look at earlier attempts
    // (step["exit_code"] and step["result"] are still the previous attempt's). Empty: internal.
    std::function<std::vector<std::string>(nlohmann::json &step)> command;
    // Steps marked "internal" (or whose command() is empty): done in this process.
    std::function<ChildOutcome(nlohmann::json &step)> internal;
    // Returns why the step may not run now ("" = it may).
    std::function<std::string(nlohmann::json &step)> refuse;
    // Called before (started) and after a successful step, to record what it did.
    std::function<void(nlohmann::json &step)> on_start;
    std::function<void(nlohmann::json &step, const ChildOutcome &)> on_done;
    // A step whose non-zero exit is its verdict rather than a failure (db verify: 1 the schema
    // differs, 2 it could not verify): returns true to record it done (on_done is called, the
    // exit code is kept in the step). Never asked for an interrupted step.
    std::function<bool(nlohmann::json &step, const ChildOutcome &)> accept;
};

// Runs every step of `steps` not yet done, in order, saving `root` (the whole state file) before
// and after each. Stops at the first failure: the step is "failed" (or "interrupted" on Ctrl-C),
// `state` (the run, or its "rollback" part) says so in "status" and "failed_step", and the exit code is returned (1 a problem, 2 could not run or
// interrupted). 0 when all are done.
int execute(nlohmann::json &root, nlohmann::json &state, nlohmann::json &steps, const Executor &x);

} // namespace ou::run
