// See manifest.hpp.
#include "manifest.hpp"
#include "common.hpp"
#include "fsutil.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ou {

nlohmann::json read_manifest(const std::string &backup_dir)
{
    std::string path = backup_dir + "/" + manifest_name;
    std::string text;
    if (!read_file(path, text))
        return {{"format", 1}, {"backups", nlohmann::json::array()}};
    auto j = parse_stored_json(text);
    if (j.is_discarded() || !j.is_object() || !j.contains("backups") || !j["backups"].is_array())
        throw CommandError(path + " is not a valid backup manifest: it was not written by this tool, or was damaged",
                           "move it aside; the backups and their .sha256 files are still usable");
    return j;
}

void add_to_manifest(const std::string &backup_dir, const nlohmann::json &entry)
{
    // Two runs at once must not lose an entry: an exclusive lock around read-modify-write.
    std::string lock = backup_dir + "/." + manifest_name + ".lock";
    int fd = open_private(lock, O_RDWR);
    if (fd < 0)
        throw CommandError("cannot open " + lock + ": " + std::strerror(errno));
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    try {
        nlohmann::json m = read_manifest(backup_dir);
        nlohmann::json kept = nlohmann::json::array();
        for (const auto &e : m["backups"])
            if (e.value("file", "") != entry.value("file", ""))
                kept.push_back(e);
        kept.push_back(entry);
        m["backups"] = kept;
        write_file_atomic(backup_dir + "/" + manifest_name, stored_json_text(m, 2) + "\n", true, 0600);
    } catch (...) {
        close(fd);
        throw;
    }
    close(fd);
}

std::optional<nlohmann::json> manifest_entry(const std::string &backup_dir, const std::string &file)
{
    nlohmann::json m = read_manifest(backup_dir);
    for (const auto &e : m["backups"])
        if (e.value("file", "") == file)
            return e;
    return std::nullopt;
}

} // namespace ou
