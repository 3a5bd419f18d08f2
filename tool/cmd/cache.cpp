// omero-upgrade cache clear: deletes everything below <omero.data.dir>/BioFormatsCache (stale
// Bio-Formats memo files after an upgrade) and nothing else. The walk is openat()-based and never
// follows a symlink (a link is removed, never what it points to), never crosses into another
// file system, and refuses a BioFormatsCache that is itself a symlink or resolves anywhere but
// <realpath of the data dir>/BioFormatsCache.
#include "commands.hpp"
#include "progress.hpp"
#include "omero_server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace ou {

namespace {

struct Tally {
    unsigned long long files = 0, dirs = 0, bytes = 0;
    std::vector<std::string> errors, skipped;
    std::function<void(const Tally &)> tick;  // after every file (progress)
};

// Removes (or, dry_run, counts) everything in the open directory fd; path is for messages.
void clear_dir(int fd, const std::string &path, dev_t dev, bool dry_run, Tally &t)
{
    int dup_fd = dup(fd);
    DIR *d = dup_fd < 0 ? nullptr : fdopendir(dup_fd);
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        t.errors.push_back("cannot list " + path + ": " + std::strerror(errno));
        return;
    }
    rewinddir(d);  // the dup shares fd's offset: a second walk (count, then remove) starts over
    std::vector<std::string> names;
    while (dirent *e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..")
            names.push_back(n);
    }
    closedir(d);
    for (const auto &n : names) {
        if (interrupted())
            return;
        std::string p = path + "/" + n;
        struct stat st;
        if (fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            t.errors.push_back("cannot stat " + p + ": " + std::strerror(errno));
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev) {
                t.skipped.push_back(p + " (another file system mounted there)");
                continue;
            }
            int sub = openat(fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                t.errors.push_back("cannot open " + p + ": " + std::strerror(errno));
                continue;
            }
            size_t errors_before = t.errors.size();
            clear_dir(sub, p, dev, dry_run, t);
            close(sub);
            if (!dry_run && t.errors.size() == errors_before && unlinkat(fd, n.c_str(), AT_REMOVEDIR) != 0) {
                t.errors.push_back("cannot remove " + p + ": " + std::strerror(errno));
                continue;
            }
            t.dirs++;
        } else {
            if (!dry_run && unlinkat(fd, n.c_str(), 0) != 0) {
                t.errors.push_back("cannot remove " + p + ": " + std::strerror(errno));
                continue;
            }
            t.files++;
            if (S_ISREG(st.st_mode))
                t.bytes += (unsigned long long)st.st_size;
            if (t.tick)
                t.tick(t);
        }
    }
}

std::string real_path(const std::string &p)
{
    char buf[PATH_MAX];
    return realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

struct ClearOpts {
    bool dry_run = false, force = false;
};

void add_cache_clear_options(CLI::App &sub, ClearOpts &o)
{
    sub.add_flag("--dry-run", o.dry_run, "count what would be removed, remove nothing");
    sub.add_flag("--force", o.force, "clear it although the server is running");
}

int run_cache_clear(const ClearOpts &o, Context &ctx)
{
    Settings &s = ctx.settings();
    std::string data = real_path(s.data_dir);
    std::string cache = s.data_dir + "/BioFormatsCache";
    nlohmann::json &res = out().result();
    res["data_dir"] = s.data_dir;
    res["cache_dir"] = cache;
    res["dry_run"] = o.dry_run;
    if (data.empty())
        throw CommandError("the OMERO data directory " + s.data_dir + " (omero.data.dir) does not exist",
                           "check omero.data.dir in " + s.config_path);
    struct stat lst;
    if (lstat(cache.c_str(), &lst) != 0) {
        res["files"] = 0;
        res["bytes"] = 0;
        out().say("no " + cache + ": nothing to clear");
        return EXIT_OK;
    }
    // The cache is exactly <realpath of data dir>/BioFormatsCache, a real directory: a symlink there
    // (even one into the data dir, e.g. to ManagedRepository) would make us delete whatever it
    // points at, so it is refused rather than followed.
    std::string cache_real = real_path(cache);
    std::string expected = data + "/BioFormatsCache";
    if (S_ISLNK(lst.st_mode) || cache_real != expected) {
        std::string where = cache_real.empty() ? "nothing (a dangling link)" : cache_real;
        out().error(cache + (S_ISLNK(lst.st_mode) ? " is a symbolic link: it" : "") + " resolves to " + where +
                    (cache_real.empty() || cache_real.compare(0, data.size() + 1, data + "/") != 0
                         ? ", outside the data directory " + data
                         : ", not " + expected) +
                    ": refusing to delete there; nothing was removed");
        out().hint("make " + cache + " a plain directory (not a link), or clear the cache by hand");
        return EXIT_PROBLEM;
    }
    if (!S_ISDIR(lst.st_mode)) {
        out().error(cache + " is not a directory: refusing to delete it; nothing was removed");
        return EXIT_PROBLEM;
    }
    if (access(s.server_path("bin/omero").c_str(), X_OK) == 0 && omero_admin_running(s, 120)) {
        if (!o.force)
            throw Refused("the server is running (bin/omero admin status): it may be writing memo files",
                               "stop it first (omero-upgrade server stop), or give --force");
        out().warn("the server is running (--force: clearing anyway)");
    }
    // O_NOFOLLOW: if the directory was swapped for a link since the check, the open fails.
    int fd = open(expected.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        throw CommandError("cannot open " + cache_real + ": " + std::strerror(errno));
    struct stat st;
    fstat(fd, &st);
    // Count first (a cheap walk; it is all a dry run does), so the removal shows done/total.
    Tally count;
    {
        Meter m("counting", "files");
        count.tick = [&](const Tally &c) { m.update(c.files, human_bytes(c.bytes)); };
        clear_dir(fd, cache_real, st.st_dev, true, count);
        m.finish(human_bytes(count.bytes));
    }
    Tally t;
    if (o.dry_run) {
        t = count;
    } else if (!interrupted()) {
        Meter m("removing", "files", count.files);
        t.tick = [&](const Tally &c) { m.update(c.files, human_bytes(c.bytes) + "/" + human_bytes(count.bytes)); };
        clear_dir(fd, cache_real, st.st_dev, false, t);
        m.finish(human_bytes(t.bytes) + "/" + human_bytes(count.bytes));
    }
    close(fd);
    if (interrupted())
        throw CommandError("interrupted (Ctrl-C): the cache is partly cleared; run cache clear again");
    res["files"] = t.files;
    res["directories"] = t.dirs;
    res["bytes"] = t.bytes;
    res["skipped"] = t.skipped;
    res["errors"] = t.errors;
    for (const auto &sk : t.skipped)
        out().warn("skipped " + sk);
    for (const auto &e : t.errors)
        out().error(e);
    out().say(std::string(o.dry_run ? "would remove " : "removed ") + std::to_string(t.files) + " file(s) and " +
              std::to_string(t.dirs) + " directory(ies), " + human_bytes(t.bytes) + ", below " + cache +
              (cache_real != cache ? " (" + cache_real + ")" : ""));
    return t.errors.empty() ? EXIT_OK : EXIT_PROBLEM;
}

} // namespace

CommandRun setup_cache_clear(CLI::App &sub)
{
    return command_setup<ClearOpts, add_cache_clear_options, run_cache_clear>(sub);
}

} // namespace ou
