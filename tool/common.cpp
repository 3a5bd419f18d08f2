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

bool valid_utf8(const std::string &s)
{
    // RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
    const auto *p = reinterpret_cast<const unsigned char *>(s.data());
    size_t n = s.size(), i = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; ++k)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF)
                return false;
        i += len;
    }
    return true;
}

std::string valid_text(const std::string &s)
{
    if (valid_utf8(s))
        return s;
    std::string quoted = json_text(nlohmann::json(s));
    return nlohmann::json::parse(quoted).get<std::string>();
}

namespace {

const std::string k_bytes_marker("\x01" "bytes:");

bool needs_bytes(const std::string &s)
{
    return !valid_utf8(s) || s.compare(0, k_bytes_marker.size(), k_bytes_marker) == 0;
}

std::string to_bytes_form(const std::string &s)
{
    static const char hex[] = "0123456789abcdef";
    std::string r = k_bytes_marker;
    for (unsigned char c : s) {
        r += hex[c >> 4];
        r += hex[c & 15];
    }
    return r;
}

bool from_bytes_form(const std::string &s, std::string &out)
{
    if (s.compare(0, k_bytes_marker.size(), k_bytes_marker) != 0)
        return false;
    auto nib = [](char c) -> int {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    size_t n = s.size() - k_bytes_marker.size();
    if (n % 2)
        return false;
    std::string r;
    for (size_t i = k_bytes_marker.size(); i < s.size(); i += 2) {
        int a = nib(s[i]), b = nib(s[i + 1]);
        if (a < 0 || b < 0)
            return false;
        r += static_cast<char>(a * 16 + b);
    }
    out = std::move(r);
    return true;
}

nlohmann::json encode_stored(const nlohmann::json &j)
{
    if (j.is_string()) {
        const auto &s = j.get_ref<const std::string &>();
        return needs_bytes(s) ? nlohmann::json(to_bytes_form(s)) : j;
    }
    if (j.is_array()) {
        nlohmann::json r = nlohmann::json::array();
        for (const auto &v : j)
            r.push_back(encode_stored(v));
        return r;
    }
    if (j.is_object()) {
        nlohmann::json r = nlohmann::json::object();
        for (auto it = j.begin(); it != j.end(); ++it)
            r[needs_bytes(it.key()) ? to_bytes_form(it.key()) : it.key()] = encode_stored(it.value());
        return r;
    }
    return j;
}

void decode_stored(nlohmann::json &j)
{
    if (j.is_string()) {
        std::string raw;
        if (from_bytes_form(j.get_ref<const std::string &>(), raw))
            j = raw;
    } else if (j.is_array()) {
        for (auto &v : j)
            decode_stored(v);
    } else if (j.is_object()) {
        nlohmann::json r = nlohmann::json::object();
        for (auto it = j.begin(); it != j.end(); ++it) {
            std::string key = it.key(), raw;
            if (from_bytes_form(key, raw))
                key = raw;
            decode_stored(it.value());
            r[key] = std::move(it.value());
        }
        j = std::move(r);
    }
}

} // namespace

std::string stored_json_text(const nlohmann::json &j, int indent)
{
    return encode_stored(j).dump(indent, ' ', false, nlohmann::json::error_handler_t::strict);
}

nlohmann::json parse_stored_json(const std::string &text)
{
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_discarded())
        decode_stored(j);
    return j;
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
        // A run's children print their result in the stored form (stored_json_text), which the
        // run parses back byte for byte: a path in a step's result (a backup, a tree) is acted on
        // later. Anyone else gets strict UTF-8, U+FFFD for each invalid byte.
        const char *form = std::getenv("OMERO_UPGRADE_JSON");
        bool lossless = form && std::string(form) == "stored";
        std::cout << (lossless ? stored_json_text(j, 2) : json_text(j, 2)) << "\n" << std::flush;
    }
    return code;
}

} // namespace ou
