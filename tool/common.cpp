// See common.hpp.
#include "common.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>

namespace ou {

Output &out()
{
    static Output o;
    return o;
}

GlobalOptions &global_options()
{
    static GlobalOptions g;
    return g;
}

std::vector<CommandSpec> &commands()
{
    static std::vector<CommandSpec> c;
    return c;
}

Register::Register(CommandSpec spec)
{
    commands().push_back(std::move(spec));
}

std::string utc_timestamp(const char *format)
{
    char buf[64];
    std::time_t t = std::time(nullptr);
    std::tm tm;
    gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

std::string human_bytes(unsigned long long n)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

std::string shell_quote(const std::string &s)
{
    if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:@,+") ==
                          std::string::npos)
        return s;
    std::string q = "'";
    for (char c : s)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

void Output::begin(const GlobalOptions &opts, std::string command)
{
    opts_ = opts;
    command_ = std::move(command);
    log("omero-upgrade " + command_ + " started");
}

void Output::log(const std::string &line)
{
    if (opts_.log_file.empty())
        return;
    // Created 0600 whatever the umask: the log holds commands and their output.
    int fd = ::open(opts_.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char ts[32];
    std::time_t t = std::time(nullptr);
    std::tm tm;
    gmtime_r(&t, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::string text = std::string(ts) + " [" + std::to_string(getpid()) + "] " + line + "\n";
    for (size_t done = 0; done < text.size();) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += n;
    }
    ::close(fd);
}

void Output::end_progress_line()
{
    if (progress_open_) {
        std::cerr << "\n";
        progress_open_ = false;
    }
}

void Output::say(const std::string &line)
{
    log(line);
    if (opts_.json)
        return;
    end_progress_line();
    std::cout << line << "\n" << std::flush;
}

void Output::step(const std::string &line)
{
    log(line);
    if (opts_.json || opts_.quiet)
        return;
    end_progress_line();
    std::cerr << line << "\n" << std::flush;
}

void Output::hint(const std::string &line)
{
    log("hint: " + line);
    hints_.push_back(line);
    if (opts_.json)
        return;
    end_progress_line();
    std::cerr << "hint: " << line << "\n";
}

void Output::detail(const std::string &line)
{
    log(line);
    if (opts_.json || !opts_.verbose)
        return;
    end_progress_line();
    std::cerr << line << "\n";
}

namespace {

// Set by `run` for its children: "lines" (the run's stderr is not a terminal) or "lines-tty".
const std::string &progress_env()
{
    static const std::string e = [] {
        const char *v = std::getenv("OMERO_UPGRADE_PROGRESS");
        return std::string(v ? v : "");
    }();
    return e;
}

} // namespace

bool Output::progress_in_place() const
{
    if (opts_.json)
        return progress_env() == "lines-tty";
    return isatty(STDERR_FILENO);
}

void Output::progress(const std::string &line)
{
    log(line);
    // Under `run` (OMERO_UPGRADE_PROGRESS=lines or lines-tty) a --json child still shows its
    // progress: plain "progress: " lines on stderr, which the run shows (README, "Design").
    bool lines = progress_env() == "lines" || progress_env() == "lines-tty";
    if (opts_.json && lines) {
        std::cerr << "progress: " << line << "\n" << std::flush;
        return;
    }
    if (opts_.json || opts_.quiet)
        return;
    if (isatty(STDERR_FILENO)) {
        std::cerr << "\r\033[K" << line << std::flush;
        progress_open_ = true;
    } else {
        std::cerr << line << "\n";
    }
}

void Output::warn(const std::string &line)
{
    log("warning: " + line);
    warnings_.push_back(line);
    if (opts_.json)
        return;
    end_progress_line();
    std::cerr << "warning: " << line << "\n";
}

void Output::error(const std::string &line)
{
    log("error: " + line);
    errors_.push_back(line);
    if (opts_.json)
        return;
    end_progress_line();
    std::cerr << "error: " << line << "\n";
}

std::string json_text(const nlohmann::json &j, int indent)
{
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

int Output::finish(int code)
{
    end_progress_line();
    log("omero-upgrade " + command_ + " finished with exit code " + std::to_string(code));
    if (opts_.json) {
        nlohmann::json j = {
            {"command", command_},
            {"status", code == EXIT_OK        ? "ok"
                       : code == EXIT_PROBLEM ? "problem"
                       : code == EXIT_NOT_YET ? "pending"
                                              : "error"},
            {"exit_code", code},
            {"result", result_},
            {"warnings", warnings_},
            {"errors", errors_},
            {"hints", hints_},
        };
        std::cout << json_text(j, 2) << "\n" << std::flush;
    }
    return code;
}

} // namespace ou
