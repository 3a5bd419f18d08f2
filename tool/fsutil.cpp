// See fsutil.hpp.
#include "fsutil.hpp"
#include "common.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

namespace ou {

bool path_exists(const std::string &p)
{
    struct stat st;
    return lstat(p.c_str(), &st) == 0;
}

bool is_directory(const std::string &p)
{
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool read_file(const std::string &p, std::string &out)
{
    std::ifstream f(p, std::ios::binary);
    if (!f)
        return false;
    std::ostringstream s;
    s << f.rdbuf();
    out = s.str();
    return true;
}

std::string dir_name(const std::string &p)
{
    size_t pos = p.find_last_of('/');
    if (pos == std::string::npos)
        return ".";
    return pos == 0 ? "/" : p.substr(0, pos);
}

std::string base_name(const std::string &p)
{
    size_t pos = p.find_last_of('/');
    return pos == std::string::npos ? p : p.substr(pos + 1);
}

void fsync_dir(const std::string &dir)
{
    int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    fsync(fd);
    close(fd);
}

std::optional<std::vector<std::string>> dir_entries(const std::string &dir)
{
    DIR *d = opendir(dir.c_str());
    if (!d)
        return std::nullopt;
    std::vector<std::string> names;
    while (dirent *e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..")
            names.push_back(std::move(n));
    }
    int saved = errno;
    closedir(d);
    errno = saved;
    return names;
}

void fsync_path(const std::string &p)
{
    if (is_directory(p)) {
        for (const auto &n : dir_entries(p).value_or(std::vector<std::string>{}))
            fsync_path(p + "/" + n);
        fsync_dir(p);
        return;
    }
    int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw CommandError("cannot open " + p + " to sync it: " + std::strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0)
        throw CommandError("cannot sync " + p + " to disk: " + std::strerror(e));
}

void rename_noreplace(const std::string &from, const std::string &to)
{
    if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0)
        return;
    int e = errno;
    if (e == EEXIST)
        throw CommandError("refusing to overwrite " + to + ": it already exists");
    if (e == EINVAL || e == ENOSYS) {
        // A file system without RENAME_NOREPLACE: check, then rename (a narrow race, documented).
        if (path_exists(to))
            throw CommandError("refusing to overwrite " + to + ": it already exists");
        if (rename(from.c_str(), to.c_str()) == 0)
            return;
        e = errno;
    }
    throw CommandError("cannot rename " + from + " to " + to + ": " + std::strerror(e));
}

void write_file_atomic(const std::string &p, const std::string &data, bool overwrite, unsigned mode)
{
    std::string tmp = dir_name(p) + "/." + base_name(p) + ".tmp." + std::to_string(getpid());
    unlink(tmp.c_str());  // a leftover of ours with this pid (its mode may be another); a link is removed, never followed
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0600);
    if (fd < 0)
        throw CommandError("cannot write " + tmp + ": " + std::strerror(errno));
    if (fchmod(fd, mode) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp.c_str());
        throw CommandError("cannot set the mode of " + tmp + ": " + std::strerror(e));
    }
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            close(fd);
            unlink(tmp.c_str());
            throw CommandError("cannot write " + tmp + ": " + std::strerror(e));
        }
        done += n;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp.c_str());
        throw CommandError("cannot sync " + tmp + ": " + std::strerror(e));
    }
    close(fd);
    try {
        if (overwrite) {
            if (rename(tmp.c_str(), p.c_str()) != 0)
                throw CommandError("cannot rename " + tmp + " to " + p + ": " + std::strerror(errno));
        } else {
            rename_noreplace(tmp, p);
        }
    } catch (...) {
        unlink(tmp.c_str());
        throw;
    }
    fsync_dir(dir_name(p));
}

unsigned long long path_size(const std::string &p)
{
    struct stat st;
    if (lstat(p.c_str(), &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return (unsigned long long)st.st_size;
    unsigned long long total = 0;
    for (const auto &n : dir_entries(p).value_or(std::vector<std::string>{}))
        total += path_size(p + "/" + n);
    return total;
}

unsigned long long free_bytes(const std::string &p)
{
    struct statvfs v;
    if (statvfs(p.c_str(), &v) != 0)
        throw CommandError("cannot tell the free space of " + p + ": " + std::strerror(errno));
    return (unsigned long long)v.f_bavail * v.f_frsize;
}

std::string make_private_temp_dir(const std::string &prefix)
{
    const char *tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data()))
        throw CommandError("cannot create a private temporary directory in " + dir_name(tmpl) + ": " +
                           std::strerror(errno));
    return buf.data();
}

void write_private_file(const std::string &path, const std::string &text)
{
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    for (size_t done = 0; ok && done < text.size();) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        ok = n > 0;
        done += ok ? (size_t)n : 0;
    }
    int err = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        if (fd >= 0)
            unlink(path.c_str());
        throw CommandError("cannot write " + path + ": " + std::strerror(err));
    }
}

void remove_tree(const std::string &p)
{
    struct stat st;
    if (lstat(p.c_str(), &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        for (const auto &n : dir_entries(p).value_or(std::vector<std::string>{}))
            remove_tree(p + "/" + n);
        rmdir(p.c_str());
    } else {
        unlink(p.c_str());
    }
}

bool ensure_dir(const std::string &dir, unsigned mode)
{
    bool created = false;
    if (!is_directory(dir)) {
        if (path_exists(dir))
            throw CommandError(dir + " exists and is not a directory");
        if (mkdir(dir.c_str(), 0700) != 0)
            throw CommandError("cannot create the directory " + dir + ": " + std::strerror(errno));
        if (chmod(dir.c_str(), mode) != 0)
            throw CommandError("cannot set the mode of " + dir + ": " + std::strerror(errno));
        out().detail("created " + dir);
        created = true;
    }
    if (access(dir.c_str(), W_OK | X_OK) != 0)
        throw CommandError("cannot write into " + dir + ": " + std::strerror(errno));
    return created;
}

int open_private(const std::string &p, int flags)
{
    int fd = open(p.c_str(), flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 077))
        fchmod(fd, 0600);
    return fd;
}

void make_private(const std::string &p)
{
    struct stat st;
    if (lstat(p.c_str(), &st) != 0)
        throw CommandError("cannot read " + p + ": " + std::strerror(errno));
    if (S_ISLNK(st.st_mode))
        return;
    if (chmod(p.c_str(), S_ISDIR(st.st_mode) ? 0700 : 0600) != 0)
        throw CommandError("cannot make " + p + " private: " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return;
    auto names = dir_entries(p);
    if (!names)
        throw CommandError("cannot read the directory " + p + ": " + std::strerror(errno));
    for (const auto &n : *names)
        make_private(p + "/" + n);
}

} // namespace ou
