// See run_state.hpp.
#include "run_state.hpp"

#include "common.hpp"
#include "db.hpp"
#include "fsutil.hpp"
#include "process.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <ctime>

namespace ou::run {

std::string iso_now()
{
    // Milliseconds: a downtime of a few seconds must not read as 0.
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char buf[40];
    std::tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return buf;
}

static bool parse_iso(const std::string &s, double &t)
{
    std::tm tm{};
    const char *rest = s.size() >= 19 ? strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) : nullptr;
    if (!rest)
        return false;
    t = (double)timegm(&tm);
    if (*rest == '.')
        t += std::atof(rest);
    return true;
}

double seconds_between(const std::string &from, const std::string &to)
{
    double a, b;
    if (!parse_iso(from, a) || !parse_iso(to, b))
        return 0;
    return std::round((b - a) * 10) / 10;
}

std::string hms(double seconds)
{
    long s = seconds < 0 ? 0 : (long)(seconds + 0.5);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    return buf;
}

std::string default_state_path(const std::string &server_dir)
{
    std::string d = server_dir;
    while (d.size() > 1 && d.back() == '/')
        d.pop_back();
    return dir_name(d) + "/.omero-upgrade-run.json";
}

Lock::Lock(const std::string &state_path, bool create)
{
    std::string path = state_path + ".lock";
    fd_ = create ? open_private(path, O_RDWR) : open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd_ < 0 && !create && errno == ENOENT)
        return;  // no lock file: nobody holds it
    if (fd_ < 0)
        throw CommandError("cannot open the lock file " + path + ": " + std::strerror(errno),
                           "the directory of the state file must be writable (or give --state FILE)");
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char buf[64] = {0};
        ssize_t n = pread(fd_, buf, sizeof buf - 1, 0);
        std::string holder = n > 0 ? std::string(buf, n) : "";
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
            holder.pop_back();
        close(fd_);
        fd_ = -1;
        if (e == EWOULDBLOCK)
            throw CommandError("another omero-upgrade run or rollback is in progress" +
                                   (holder.empty() ? "" : " (pid " + holder + ")") + ": it holds " + path,
                               "wait for it to finish; the lock goes away by itself when that process ends");
        throw CommandError("cannot lock " + path + ": " + std::strerror(e));
    }
    if (!create)
        return;  // only testing (dry run): write nothing
    std::string pid = std::to_string(getpid()) + "\n";
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, pid.data(), pid.size(), 0) != (ssize_t)pid.size())
        out().log("could not write the pid into " + path);
}

Lock::~Lock()
{
    if (fd_ >= 0)
        close(fd_);  // releases the flock; the file stays (removing it would race a waiting locker)
}

bool state_exists(const std::string &path)
{
    return path_exists(path);
}

nlohmann::json load_state(const std::string &path)
{
    std::string text;
    if (!read_file(path, text))
        throw CommandError("cannot read the state file " + path);
    nlohmann::json j = parse_stored_json(text);
    if (j.is_discarded() || !j.is_object() || j.value("kind", "") != "omero-upgrade-run")
        throw CommandError(path + " is not a state file of omero-upgrade run",
                           "give the right file with --state, or move this one away");
    return j;
}

void save_state(const std::string &path, nlohmann::json &state)
{
    state["updated"] = iso_now();
    write_file_atomic(path, stored_json_text(state, 2) + "\n");
}

nlohmann::json new_step(const std::string &id, const std::string &title, const std::vector<std::string> &command,
                        const nlohmann::json &extra)
{
    nlohmann::json s = {{"id", id},         {"title", title},      {"command", command},
                        {"status", "pending"}, {"attempts", 0},   {"started", nullptr},
                        {"ended", nullptr}, {"seconds", nullptr}, {"exit_code", nullptr},
                        {"result", nullptr}, {"warnings", nlohmann::json::array()},
                        {"errors", nlohmann::json::array()}};
    for (auto &[k, v] : extra.items())
        s[k] = v;
    return s;
}

nlohmann::json *find_step(nlohmann::json &state, const std::string &id, const char *list)
{
    if (!state.contains(list))
        return nullptr;
    for (auto &s : state[list])
        if (s.value("id", "") == id)
            return &s;
    return nullptr;
}

std::string self_exe()
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        throw CommandError("cannot find this program's own path (/proc/self/exe)");
    return std::string(buf, n);
}

std::vector<std::string> child_globals(const GlobalOptions &g, const std::string &server_dir, const std::string &log_file)
{
    std::vector<std::string> a = {"--json"};
    if (!server_dir.empty())
        a.insert(a.end(), {"--server-dir", server_dir});
    if (!g.db_host.empty())
        a.insert(a.end(), {"--db-host", g.db_host});
    if (!g.db_port.empty())
        a.insert(a.end(), {"--db-port", g.db_port});
    if (!g.db_name.empty())
        a.insert(a.end(), {"--db-name", g.db_name});
    if (!g.db_user.empty())
        a.insert(a.end(), {"--db-user", g.db_user});
    if (!log_file.empty())
        a.insert(a.end(), {"--log-file", log_file});
    return a;
}

ChildOutcome run_child(const std::string &label, const std::vector<std::string> &globals,
                       const std::vector<std::string> &args)
{
    std::vector<std::string> argv = {self_exe()};
    argv.insert(argv.end(), globals.begin(), globals.end());
    argv.insert(argv.end(), args.begin(), args.end());

    using clock = std::chrono::steady_clock;
    auto start = clock::now(), last_shown = start;
    bool tty = isatty(STDERR_FILENO);
    ChildOutcome o;
    auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };

    ProcOptions po;
    // The child's meters show a line every second when we rewrite it in place, else every 10 s.
    po.env = {{"OMERO_UPGRADE_PROGRESS", tty ? "lines-tty" : "lines"}, {"OMERO_UPGRADE_JSON", "stored"}};
    po.on_stderr_line = [&](const std::string &l) {
        if (l.rfind("progress: ", 0) == 0) {
            out().progress("[" + label + " " + hms(elapsed()) + "] " + l.substr(10));
            last_shown = clock::now();
            return;
        }
        o.stderr_tail.push_back(l);
        if (o.stderr_tail.size() > 8)
            o.stderr_tail.erase(o.stderr_tail.begin());
        out().detail("  " + l);
    };
    // A step quiet for 2 s gets a ticker: in place on a terminal, a plain line every 30 s otherwise.
    po.on_tick = [&] {
        auto now = clock::now();
        double quiet = std::chrono::duration<double>(now - last_shown).count();
        if (elapsed() < 2 || quiet < (tty ? 1 : 30))
            return;
        out().progress("[" + label + " " + hms(elapsed()) + "] running");
        last_shown = now;
    };
    ProcResult r;
    try {
        r = run_process(argv, po);
    } catch (const CommandError &e) {
        o.exit_code = EXIT_ERROR;
        o.interrupted = interrupted();
        o.error = e.what();
        return o;
    }
    o.exit_code = r.exit_code < 0 ? EXIT_ERROR : r.exit_code;
    o.json = parse_stored_json(r.out);
    if (o.json.is_discarded() || !o.json.is_object()) {
        o.json = nullptr;
        if (o.exit_code == 0)
            o.exit_code = EXIT_ERROR;
        o.error = "it printed no JSON result (" + r.describe() + ")";
        std::string tail = r.err_tail(3);
        if (!tail.empty())
            o.error += ": " + tail;
        return o;
    }
    for (const auto &w : o.json.value("warnings", nlohmann::json::array()))
        if (w.is_string())
            o.warnings.push_back(w.get<std::string>());
    if (o.exit_code != 0) {
        std::string errs;
        for (const auto &e : o.json.value("errors", nlohmann::json::array()))
            if (e.is_string())
                errs += (errs.empty() ? "" : "; ") + e.get<std::string>();
        // Subcommands that report problems in their result (check: failed checks; precheck,
        // verify: problems) rather than as errors.
        const nlohmann::json &res = o.json.value("result", nlohmann::json::object());
        if (errs.empty() && res.is_object()) {
            for (const auto &c : res.value("checks", nlohmann::json::array()))
                if (c.is_object() && c.value("status", "") == "failed")
                    errs += (errs.empty() ? "" : "; ") + c.value("name", "") + ": " + c.value("detail", "");
            for (const auto &p : res.value("problems", nlohmann::json::array()))
                if (p.is_string())
                    errs += (errs.empty() ? "" : "; ") + p.get<std::string>();
        }
        o.error = errs.empty() ? (r.describe() + (o.exit_code == 1 ? ": a problem was found" : "")) : errs;
    }
    return o;
}

bool has_subcommand(const std::vector<std::string> &words)
{
    std::vector<std::string> argv = {self_exe()};
    argv.insert(argv.end(), words.begin(), words.end());
    argv.push_back("--help");
    ProcOptions po;
    po.timeout_s = 20;
    ProcResult r = run_process(argv, po);
    // CLI11 prints the subcommand's own usage line when it knows it; the last word may be a
    // positional argument of a shorter one ("db orphans delete", "config upgrade-check off").
    std::string usage;
    for (const auto &w : words)
        usage += " " + w;
    if (r.ok() && r.out.find(usage + " [OPTIONS]") != std::string::npos)
        return true;
    std::string shorter = usage.substr(0, usage.rfind(' '));
    return words.size() >= 2 && r.ok() && r.out.find(shorter + " [OPTIONS] ") != std::string::npos;
}

bool fail_injected_after(const std::string &step_id)
{
    const char *e = std::getenv("OMERO_UPGRADE_FAIL_AFTER_STEP");
    return e && step_id == e;
}

} // namespace ou::run

namespace ou::run {

namespace {

// The step and the list it is in stop the run: status, failed_step, saved; the error said.
int stop_at(nlohmann::json &root, nlohmann::json &state, nlohmann::json &step, const Executor &x, const std::string &status,
            const std::string &error, const std::string &said)
{
    std::string id = step.value("id", "");
    step["status"] = status;
    step["errors"].push_back(error);
    state["status"] = status;
    state["failed_step"] = id;
    save_state(x.state_path, root);
    out().error(said);
    return EXIT_ERROR;
}

// A new attempt of the step begins: recorded (and saved) with the arguments it runs, and shown.
std::vector<std::string> begin_attempt(nlohmann::json &root, nlohmann::json &state, nlohmann::json &step,
                                       const Executor &x, size_t i, size_t n)
{
    std::string id = step.value("id", "");
    if (step.value("status", "") == "running")
        out().warn("step " + id + " was left running by a process that ended (crash or kill): running it again");
    std::vector<std::string> args = x.command ? x.command(step) : step["command"].get<std::vector<std::string>>();
    step["status"] = "running";
    step["attempts"] = step.value("attempts", 0) + 1;
    step["started"] = iso_now();
    step["ended"] = nullptr;
    step["errors"] = nlohmann::json::array();
    step["warnings"] = nlohmann::json::array();
    step["ran"] = args;
    state["status"] = "running";
    state["pid"] = getpid();
    if (x.on_start)
        x.on_start(step);
    save_state(x.state_path, root);
    std::string shown = "omero-upgrade";
    for (const auto &a : args)
        shown += " " + shell_quote(a);
    // What is being done now: chatter on stderr (dropped by -q); the report is the result.
    out().step("[" + std::to_string(i) + "/" + std::to_string(n) + "] " + step.value("title", id) +
               (step.value("internal", false) || args.empty() ? "" : ": " + shown));
    return args;
}

// The step run: internal ones in this process, the others as a child.
ChildOutcome run_step(nlohmann::json &step, const std::vector<std::string> &args, const Executor &x)
{
    ChildOutcome o;
    if (step.value("internal", false) || args.empty()) {
        try {
            o = x.internal(step);
        } catch (const CommandError &e) {
            o.exit_code = EXIT_ERROR;
            o.error = e.what();
            o.interrupted = interrupted();
        }
        return o;
    }
    std::string dir = step.value("dir", "") == "preview" ? x.preview_dir : x.server_dir;
    return run_child(step.value("id", ""), child_globals(x.options, dir, x.log_file), args);
}

// The outcome in the step's record: when it ended, how long, its exit code, result and warnings.
void record_outcome(nlohmann::json &step, const ChildOutcome &o, double secs)
{
    step["ended"] = iso_now();
    step["seconds"] = std::round(secs * 10) / 10;
    step["exit_code"] = o.exit_code;
    step["result"] = o.json.is_object() ? o.json.value("result", nlohmann::json()) : nlohmann::json();
    step["warnings"] = o.warnings;
    for (const auto &w : o.warnings)
        out().warn(step.value("id", "") + ": " + w);
}

} // namespace

int execute(nlohmann::json &root, nlohmann::json &state, nlohmann::json &steps, const Executor &x)
{
    size_t n = steps.size(), i = 0;
    for (auto &step : steps) {
        i++;
        std::string id = step.value("id", ""), st = step.value("status", "");
        if (st == "done" || st == "skipped")
            continue;
        if (interrupted()) {
            state["status"] = "interrupted";
            save_state(x.state_path, root);
            out().error("interrupted (Ctrl-C) before step " + id);
            return EXIT_ERROR;
        }
        if (std::string why = x.refuse ? x.refuse(step) : ""; !why.empty())
            return stop_at(root, state, step, x, "failed", why, "step " + id + " refused: " + why);
        std::vector<std::string> args = begin_attempt(root, state, step, x, i, n);
        auto t0 = std::chrono::steady_clock::now();
        ChildOutcome o = run_step(step, args, x);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        record_outcome(step, o, secs);
        bool intr = o.interrupted || interrupted();
        if (o.exit_code == 0 || (!intr && x.accept && x.accept(step, o))) {
            step["status"] = "done";
            if (x.on_done)
                x.on_done(step, o);
            if (fail_injected_after(id))
                return stop_at(root, state, step, x, "failed",
                               "injected failure after the step had run (OMERO_UPGRADE_FAIL_AFTER_STEP)",
                               "step " + id + ": injected failure (OMERO_UPGRADE_FAIL_AFTER_STEP=" + id + ")");
            save_state(x.state_path, root);
            out().step("      done in " + hms(secs));
            continue;
        }
        stop_at(root, state, step, x, intr ? "interrupted" : "failed", o.error,
                "step " + id + (intr ? " interrupted" : " failed") + " after " + hms(secs) + ": " + o.error);
        for (const auto &l : o.stderr_tail)
            out().detail("  " + l);
        return intr ? EXIT_ERROR : (o.exit_code == EXIT_PROBLEM ? EXIT_PROBLEM : EXIT_ERROR);
    }
    return EXIT_OK;
}

} // namespace ou::run
