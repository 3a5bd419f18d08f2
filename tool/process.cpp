// See process.hpp.
#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <sstream>

extern char **environ;

namespace ou {

namespace {

std::string signal_name(int sig)
{
    switch (sig) {
    case SIGXFSZ: return "SIGXFSZ (file size limit exceeded)";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGSEGV: return "SIGSEGV";
    case SIGPIPE: return "SIGPIPE";
    default: return "signal " + std::to_string(sig);
    }
}

// Appends complete lines of buf to the callback/log, keeping the incomplete tail.
void split_lines(std::string &pending, const char *data, size_t n, const std::function<void(const std::string &)> &f)
{
    pending.append(data, n);
    size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
        f(pending.substr(0, pos));
        pending.erase(0, pos + 1);
    }
}

} // namespace

std::string ProcResult::describe() const
{
    if (timed_out)
        return "timed out";
    if (signal)
        return "killed by " + signal_name(signal);
    return "exit code " + std::to_string(exit_code);
}

std::string ProcResult::err_tail(size_t lines) const
{
    std::vector<std::string> all;
    std::istringstream in(err);
    std::string l;
    while (std::getline(in, l))
        if (!l.empty())
            all.push_back(l);
    std::string t;
    for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); i++)
        t += (t.empty() ? "" : "\n") + all[i];
    return t;
}

std::string find_program(const std::string &name)
{
    if (name.find('/') != std::string::npos)
        return access(name.c_str(), X_OK) == 0 ? name : "";
    const char *path = std::getenv("PATH");
    std::istringstream in(path ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(in, dir, ':')) {
        std::string p = (dir.empty() ? "." : dir) + "/" + name;
        struct stat st;
        if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0)
            return p;
    }
    return "";
}

namespace {

// argv[0] found (on PATH unless it names a path), or a CommandError naming the fix.
std::string program_or_throw(const std::string &name)
{
    std::string prog = find_program(name);
    if (prog.empty())
        throw CommandError("cannot run " + name + ": not found" + (name.find('/') == std::string::npos ? " on PATH" : ""),
                           name.rfind("pg_", 0) == 0 || name == "psql"
                               ? "install the PostgreSQL client programs (e.g. apt install postgresql-client)"
                               : "");
    return prog;
}

// "running: PGHOST=… prog args (in DIR)", shown in detail and logged: the variables that say
// where it connects, never a password.
void show_command(const std::vector<std::string> &argv, const ProcOptions &opts)
{
    std::string shown;
    for (const auto &[k, v] : opts.env)
        if (k == "PGPASSFILE" || k == "PGHOST" || k == "PGPORT" || k == "PGOPTIONS")
            shown += k + "=" + shell_quote(v) + " ";
    for (const auto &a : argv)
        shown += (shown.empty() || shown.back() == ' ' ? "" : " ") + shell_quote(a);
    out().detail("running: " + shown + (opts.cwd.empty() ? "" : " (in " + opts.cwd + ")"));  // logged too
}

// The tool's environment with opts.env's variables replacing (or adding to) it.
std::vector<std::string> child_environment(const ProcOptions &opts)
{
    std::vector<std::string> envs;
    for (char **e = environ; *e; e++) {
        std::string kv = *e;
        std::string k = kv.substr(0, kv.find('='));
        bool overridden = false;
        for (const auto &[ok, ov] : opts.env)
            overridden |= ok == k;
        for (const auto &u : opts.unset_env)
            overridden |= u == k;
        if (!overridden)
            envs.push_back(kv);
    }
    for (const auto &[k, v] : opts.env)
        envs.push_back(k + "=" + v);
    return envs;
}

std::vector<char *> c_strings(const std::vector<std::string> &v)
{
    std::vector<char *> c;
    for (const auto &a : v)
        c.push_back(const_cast<char *>(a.c_str()));
    c.push_back(nullptr);
    return c;
}

// In the forked child: stdin /dev/null, stdout and stderr the pipes, a process group of its own,
// default signal handlers, then exec (126: no cwd, 127: no exec).
[[noreturn]] void exec_child(const std::string &prog, std::vector<char *> &cargv, std::vector<char *> &cenv,
                             const int outp[2], const int errp[2], const ProcOptions &opts)
{
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(outp[1], 1);
    dup2(errp[1], 2);
    // Its own process group, so a timeout or Ctrl-C stops everything it started (a shell
    // script's `sleep`, a JVM), not just the direct child.
    setpgid(0, 0);
    // The tool's own handlers must not survive into the child.
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    // The in-memory passfile (PassFile) is the one descriptor of ours a child inherits.
    for (const auto &[k, v] : opts.env)
        if (k == "PGPASSFILE" && passfile_fd(v) > 2)
            fcntl(passfile_fd(v), F_SETFD, 0);
    // So is a dump held open (DumpPin), given to it as an argument /dev/fd/N.
    for (size_t i = 1; i < cargv.size() && cargv[i]; i++)
        if (passfile_fd(cargv[i]) > 2)
            fcntl(passfile_fd(cargv[i]), F_SETFD, 0);
    if (opts.umask >= 0)
        ::umask((mode_t)opts.umask);
    if (!opts.cwd.empty() && chdir(opts.cwd.c_str()) != 0)
        _exit(126);
    execve(prog.c_str(), cargv.data(), cenv.data());
    _exit(127);
}

// A running child's group: stopped with SIGTERM to the whole group, SIGKILL after a grace
// period; once that has passed too, its pipes are no longer read (a process that left the group
// may hold them open forever).
struct ChildGroup {
    static constexpr std::chrono::seconds grace{5};
    explicit ChildGroup(pid_t p) : pid(p) {}
    pid_t pid;
    bool killed = false, hard_killed = false;
    std::chrono::steady_clock::time_point killed_at;

    void stop(std::chrono::steady_clock::time_point now)
    {
        kill(-pid, SIGTERM);
        killed = true;
        killed_at = now;
    }
    // SIGKILL once the grace period has passed; false when reading should stop.
    bool keep_reading(std::chrono::steady_clock::time_point now)
    {
        if (killed && !hard_killed && now - killed_at > grace) {
            kill(-pid, SIGKILL);
            hard_killed = true;
        }
        return !(hard_killed && now - killed_at > grace + std::chrono::seconds(1));
    }
};

// What a pipe holds now, into all and line by line to f; false at its end.
bool read_some(int fd, std::string &all, std::string &pending, const std::function<void(const std::string &)> &f)
{
    char buf[65536];
    ssize_t got = read(fd, buf, sizeof buf);
    if (got <= 0)
        return false;
    all.append(buf, got);
    split_lines(pending, buf, got, f);
    return true;
}

// The child's stdout and stderr read to their end into r, line by line to the log (and the
// callbacks); stops the group on Ctrl-C or the timeout; calls on_tick every half second.
void read_child_output(ChildGroup &g, int out_fd, int err_fd, const std::string &name, const ProcOptions &opts,
                       ProcResult &r)
{
    std::string pend_out, pend_err;
    auto on_err_line = [&](const std::string &l) {
        out().log("  " + name + ": " + l);
        if (opts.on_stderr_line)
            opts.on_stderr_line(l);
    };
    auto on_out_line = [&](const std::string &l) {
        if (opts.log_stdout)
            out().log("  " + name + ": " + l);
    };
    auto start = std::chrono::steady_clock::now();
    auto last_tick = start;
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
        pollfd fds[2];
        int n = 0;
        if (out_open)
            fds[n++] = {out_fd, POLLIN, 0};
        if (err_open)
            fds[n++] = {err_fd, POLLIN, 0};
        int pr = poll(fds, n, 200);
        if (pr < 0 && errno != EINTR)
            break;
        for (int i = 0; pr > 0 && i < n; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (fds[i].fd == out_fd)
                out_open = read_some(out_fd, r.out, pend_out, on_out_line);
            else
                err_open = read_some(err_fd, r.err, pend_err, on_err_line);
        }
        auto now = std::chrono::steady_clock::now();
        if (!g.killed && interrupted())
            g.stop(now);
        if (!g.killed && opts.timeout_s > 0 && now - start > std::chrono::seconds(opts.timeout_s)) {
            g.stop(now);
            r.timed_out = true;
        }
        if (!g.keep_reading(now))
            break;
        if (opts.on_tick && now - last_tick > std::chrono::milliseconds(500)) {
            last_tick = now;
            opts.on_tick();
        }
    }
    if (!pend_out.empty())
        on_out_line(pend_out);
    if (!pend_err.empty())
        on_err_line(pend_err);
}

// Waits for the direct child and takes its exit code or signal into r.
void wait_child(const ChildGroup &g, ProcResult &r)
{
    int status = 0;
    while (waitpid(g.pid, &status, 0) < 0 && errno == EINTR) {
    }
    // The direct child has ended but others of its group may still run (it exited on SIGTERM, they
    // ignored it): they go too.
    if (g.killed && !g.hard_killed)
        kill(-g.pid, SIGKILL);
    if (WIFEXITED(status))
        r.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        r.signal = WTERMSIG(status);
}

} // namespace

ProcResult run_process(const std::vector<std::string> &argv, const ProcOptions &opts)
{
    if (argv.empty())
        throw CommandError("internal: empty command");
    std::string prog = program_or_throw(argv[0]);
    show_command(argv, opts);

    int outp[2], errp[2];
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0)
        throw CommandError(std::string("cannot create a pipe: ") + std::strerror(errno));
    std::vector<std::string> envs = child_environment(opts);
    std::vector<char *> cargv = c_strings(argv), cenv = c_strings(envs);

    pid_t pid = fork();
    if (pid < 0)
        throw CommandError(std::string("cannot fork: ") + std::strerror(errno));
    if (pid == 0)
        exec_child(prog, cargv, cenv, outp, errp, opts);
    setpgid(pid, pid);  // also here: no race with the first kill(-pid)
    close(outp[1]);
    close(errp[1]);

    ProcResult r;
    ChildGroup g{pid};
    read_child_output(g, outp[0], errp[0], argv[0], opts, r);
    close(outp[0]);
    close(errp[0]);
    wait_child(g, r);
    out().log("  " + argv[0] + " finished: " + r.describe());
    if (interrupted())
        throw CommandError("interrupted (Ctrl-C): " + argv[0] + " was stopped");
    if (r.exit_code == 127 && r.err.empty())
        throw CommandError("cannot run " + prog);
    return r;
}

PassFile::PassFile(const std::string &password)
{
    if (password.find_first_of("\n\r") != std::string::npos)
        throw CommandError("the database password contains a line break: it cannot be handed to pg_dump, pg_restore "
                           "or psql (a libpq password file holds one password per line)",
                           "give the database role a password without line breaks");
    // An anonymous memory file: no name in any directory, so nothing is left behind whatever
    // happens to the tool (kill -9 included); it is gone when the last process holding it (the
    // child) ends. libpq reads it as /dev/fd/N: a regular file of mode 0600, as it requires.
    fd_ = memfd_create("omero-upgrade-pgpass", MFD_CLOEXEC);
    if (fd_ < 0)
        throw CommandError(std::string("cannot create an in-memory password file: ") + std::strerror(errno));
    // .pgpass syntax: ':' and '\' in a field are escaped with '\'.
    std::string line = "*:*:*:*:";
    for (char c : password) {
        if (c == ':' || c == '\\')
            line += '\\';
        line += c;
    }
    line += "\n";
    bool ok = fchmod(fd_, 0600) == 0 && write(fd_, line.data(), line.size()) == (ssize_t)line.size();
    std::fill(line.begin(), line.end(), '\0');
    if (!ok) {
        close(fd_);
        throw CommandError("cannot write the in-memory password file");
    }
    path_ = "/dev/fd/" + std::to_string(fd_);
}

PassFile::~PassFile()
{
    close(fd_);
}

int passfile_fd(const std::string &pgpassfile)
{
    static const std::string prefix = "/dev/fd/";
    if (pgpassfile.rfind(prefix, 0) != 0 || pgpassfile.size() == prefix.size() ||
        pgpassfile.find_first_not_of("0123456789", prefix.size()) != std::string::npos)
        return -1;
    return std::atoi(pgpassfile.c_str() + prefix.size());
}

std::string conninfo_quote(const std::string &v)
{
    std::string q = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\')
            q += '\\';
        q += c;
    }
    return q + "'";
}

PgClient pg_client(const ConnParams &p, const std::string &application_name)
{
    PgClient c;
    auto add = [&](const char *k, const std::string &v) {
        if (!v.empty())
            c.conninfo += std::string(c.conninfo.empty() ? "" : " ") + k + "=" + conninfo_quote(v);
    };
    for (const auto &[k, v] : p.extra)  // -d's other keywords (service, sslmode, …)
        add(k.c_str(), v);
    add("host", p.host);
    add("port", p.port);
    add("user", p.user);
    add("dbname", p.dbname);
    add("application_name", application_name);
    if (p.password) {
        c.passfile = std::make_unique<PassFile>(*p.password);
        c.env.emplace_back("PGPASSFILE", c.passfile->path());
    } else if (p.no_env_password) {
        c.env.emplace_back("PGPASSWORD", "");  // empty: libpq reads the password file instead
    }
    if (p.no_service)
        c.unset_env.push_back("PGSERVICE");  // read into the conninfo already, without its password
    return c;
}

int client_major_version(const std::string &program, std::string *full)
{
    if (find_program(program).empty())
        return 0;
    ProcOptions o;
    o.timeout_s = 30;
    ProcResult r = run_process({program, "--version"}, o);
    std::string text = r.out;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    if (full)
        *full = text;
    // "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)": the first number after ") ".
    size_t pos = text.find(") ");
    if (!r.ok() || pos == std::string::npos)
        return 0;
    return std::atoi(text.c_str() + pos + 2);
}

} // namespace ou
