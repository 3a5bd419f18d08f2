// See records.hpp.
#include "records.hpp"

#include "common.hpp"
#include "fsutil.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace ou {

std::string os_user_name()
{
    struct passwd pw, *res = nullptr;
    char buf[4096];
    if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &res) == 0 && res && res->pw_name)
        return res->pw_name;
    return "uid " + std::to_string(geteuid());
}

std::string host_name()
{
    char buf[HOST_NAME_MAX + 1] = {0};
    if (gethostname(buf, sizeof buf - 1) != 0)
        return "unknown";
    return buf;
}

namespace {

nlohmann::json parse_kind(const std::string &file, const std::string &text, const std::string &kind)
{
    nlohmann::json j = parse_stored_json(text);
    if (j.is_discarded() || !j.is_object() || j.value("kind", "") != kind)
        throw CommandError(file + " is not a record file of omero-upgrade (kind " + kind + ")",
                           "move it away if it is not ours; the tool never overwrites it");
    return j;
}

struct FileLock {
    int fd = -1;
    explicit FileLock(const std::string &path)
    {
        fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            throw CommandError("cannot open the lock " + path + ": " + std::strerror(errno));
        fchmod(fd, 0600);
        if (flock(fd, LOCK_EX) != 0) {
            int e = errno;
            close(fd);
            throw CommandError("cannot lock " + path + ": " + std::strerror(e));
        }
    }
    ~FileLock()
    {
        if (fd >= 0)
            close(fd);  // releases the flock
    }
};

void write_private(const std::string &file, const std::string &data)
{
    std::string tmp = file + ".tmp." + std::to_string(getpid());
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        throw CommandError("cannot write " + tmp + ": " + std::strerror(errno));
    bool ok = fchmod(fd, 0600) == 0;
    for (size_t done = 0; ok && done < data.size();) {
        ssize_t n = write(fd, data.data() + done, data.size() - done);
        ok = n > 0;
        done += ok ? (size_t)n : 0;
    }
    ok = ok && fsync(fd) == 0;
    int err = errno;
    close(fd);
    if (!ok || rename(tmp.c_str(), file.c_str()) != 0) {
        err = ok ? errno : err;
        unlink(tmp.c_str());
        throw CommandError("cannot write " + file + ": " + std::strerror(err));
    }
    fsync_dir(dir_name(file));
}

} // namespace

nlohmann::json read_private_json(const std::string &file, const std::string &kind)
{
    std::string text;
    if (!path_exists(file))
        return nullptr;
    if (!read_file(file, text))
        throw CommandError("cannot read " + file + ": " + std::strerror(errno));
    return parse_kind(file, text, kind);
}

void update_private_json(const std::string &file, const std::string &kind,
                         const std::function<bool(nlohmann::json &)> &update)
{
    FileLock lock(file + ".lock");
    nlohmann::json j = read_private_json(file, kind);
    if (j.is_null())
        j = {{"kind", kind}, {"format", 1}};
    if (!update(j))
        return;
    write_private(file, stored_json_text(j, 2) + "\n");
}

} // namespace ou
