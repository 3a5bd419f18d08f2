// See archive.hpp.
#include "archive.hpp"

#include "common.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>

namespace ou {

namespace {

using Parts = std::vector<std::string>;

// Splits an archive path into components, dropping "" and "."; sets absolute for a leading '/'.
Parts split_path(const std::string &p, bool *absolute = nullptr)
{
    if (absolute)
        *absolute = !p.empty() && p[0] == '/';
    Parts parts;
    size_t i = 0;
    while (i <= p.size()) {
        size_t j = p.find('/', i);
        if (j == std::string::npos)
            j = p.size();
        std::string c = p.substr(i, j - i);
        if (!c.empty() && c != ".")
            parts.push_back(c);
        i = j + 1;
    }
    return parts;
}

std::string join(const Parts &p, size_t n = std::string::npos)
{
    std::string s;
    for (size_t i = 0; i < p.size() && i < n; i++)
        s += (i ? "/" : "") + p[i];
    return s;
}

bool has_dotdot(const Parts &p)
{
    for (const auto &c : p)
        if (c == "..")
            return true;
    return false;
}

// Follows target from directory dir (components below the root) the way the kernel would,
// through the archive's own symlinks. False when it would leave the root or loops.
bool resolve_inside(const std::map<std::string, std::string> &links, Parts dir, const std::string &target,
                    int &depth, Parts &result)
{
    bool absolute = false;
    Parts parts = split_path(target, &absolute);
    if (absolute)
        return false;
    for (const auto &c : parts) {
        if (c == "..") {
            if (dir.empty())
                return false;
            dir.pop_back();
            continue;
        }
        dir.push_back(c);
        auto it = links.find(join(dir));
        if (it != links.end()) {
            if (++depth > 40)
                return false;
            dir.pop_back();
            Parts resolved;
            if (!resolve_inside(links, dir, it->second, depth, resolved))
                return false;
            dir = resolved;
        }
    }
    result = dir;
    return true;
}

struct Entry {
    std::string name;  // as stored
    Parts parts;
    unsigned type = 0;
    std::string symlink, hardlink;
};

struct ReadArchive {
    archive *a = archive_read_new();
    ~ReadArchive() { archive_read_free(a); }
};

void open_for_reading(ReadArchive &r, const std::string &path)
{
    archive_read_support_filter_all(r.a);
    archive_read_support_format_all(r.a);
    if (archive_read_open_filename(r.a, path.c_str(), 65536) != ARCHIVE_OK)
        throw CommandError("cannot read the archive " + path + ": " + archive_error_string(r.a),
                           "give an OMERO.server zip (or a directory holding an unpacked server)");
}

} // namespace

ArchiveCheck check_archive(const std::string &path, const std::function<void(unsigned long long)> &progress)
{
    ReadArchive r;
    open_for_reading(r, path);
    ArchiveCheck c;
    std::vector<Entry> entries;
    std::map<std::string, std::string> links;  // normalized path of a symlink → its target
    archive_entry *e;
    int rc;
    while ((rc = archive_read_next_header(r.a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        Entry en;
        const char *name = archive_entry_pathname(e);
        en.name = name ? name : "";
        bool absolute = false;
        en.parts = split_path(en.name, &absolute);
        en.type = archive_entry_filetype(e);
        if (const char *s = archive_entry_symlink(e))
            en.symlink = s;
        if (const char *h = archive_entry_hardlink(e))
            en.hardlink = h;
        c.entries++;
        if (en.name.empty() || en.parts.empty())
            c.problems.push_back("an entry without a name");
        else if (absolute)
            c.problems.push_back(en.name + ": absolute path");
        else if (has_dotdot(en.parts))
            c.problems.push_back(en.name + ": path with '..'");
        else if (en.type == AE_IFCHR || en.type == AE_IFBLK)
            c.problems.push_back(en.name + ": device file");
        else if (en.type == AE_IFIFO)
            c.problems.push_back(en.name + ": fifo");
        else if (en.type == AE_IFSOCK)
            c.problems.push_back(en.name + ": socket");
        else {
            if (en.type == AE_IFLNK)
                links[join(en.parts)] = en.symlink;
            if (en.type == AE_IFREG && en.hardlink.empty())
                c.bytes += (unsigned long long)archive_entry_size(e);
            entries.push_back(en);
        }
        archive_read_data_skip(r.a);
        if (progress)
            progress((unsigned long long)archive_filter_bytes(r.a, -1));
    }
    if (rc != ARCHIVE_EOF)
        throw CommandError("cannot read the archive " + path + ": " + archive_error_string(r.a) +
                           " (after " + std::to_string(c.entries) + " entries)");

    std::set<std::string> tops;
    for (const Entry &en : entries) {
        tops.insert(en.parts[0]);
        // Written through a symlink of the archive: its real place is not where its name says.
        bool through = false;
        for (size_t n = 1; n < en.parts.size() && !through; n++)
            if (links.count(join(en.parts, n))) {
                c.problems.push_back(en.name + ": written through the symlink " + join(en.parts, n) +
                                     " of the archive");
                through = true;
            }
        if (through)
            continue;
        if (en.type == AE_IFLNK) {
            Parts dir(en.parts.begin(), en.parts.end() - 1), result;
            int depth = 0;
            if (en.symlink.empty())
                c.problems.push_back(en.name + ": symlink without a target");
            else if (!resolve_inside(links, dir, en.symlink, depth, result))
                c.problems.push_back(en.name + ": symlink pointing outside the archive (" + en.symlink + ")");
        }
        if (!en.hardlink.empty()) {
            bool absolute = false;
            Parts h = split_path(en.hardlink, &absolute);
            if (absolute || h.empty() || has_dotdot(h))
                c.problems.push_back(en.name + ": hard link to a path outside the archive (" + en.hardlink + ")");
            else
                for (size_t n = 1; n <= h.size(); n++)
                    if (links.count(join(h, n))) {
                        c.problems.push_back(en.name + ": hard link through the symlink " + join(h, n));
                        break;
                    }
        }
    }
    if (tops.size() == 1) {
        // A single top-level directory (OMERO.server-5.6.3-ice36-b228/...), not a lone file.
        bool lone_file = false;
        for (const Entry &en : entries)
            lone_file |= en.parts.size() == 1 && en.type != AE_IFDIR;
        if (!lone_file)
            c.top_dir = *tops.begin();
    }
    return c;
}

void extract_archive(const std::string &path, const std::string &dest,
                     const std::function<void(unsigned long long)> &progress)
{
    unsigned long long written = 0;
    ReadArchive r;
    open_for_reading(r, path);
    std::unique_ptr<archive, int (*)(archive *)> w(archive_write_disk_new(), archive_write_free);
    archive_write_disk_set_options(w.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                                ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
    archive_write_disk_set_standard_lookup(w.get());

    // libarchive writes relative to the working directory: extract from inside dest.
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0)
        throw CommandError(std::string("cannot open the working directory: ") + std::strerror(errno));
    if (chdir(dest.c_str()) != 0) {
        close(cwd);
        throw CommandError("cannot enter " + dest + ": " + std::strerror(errno));
    }
    std::string failure;
    archive_entry *e;
    int rc;
    while ((rc = archive_read_next_header(r.a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        // No set-uid/set-gid/sticky bits from an archive; owners are not restored either.
        archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
        if (archive_write_header(w.get(), e) < ARCHIVE_WARN) {
            failure = std::string(archive_entry_pathname(e)) + ": " + archive_error_string(w.get());
            break;
        }
        const void *buf;
        size_t size;
        la_int64_t offset;
        int d;
        while ((d = archive_read_data_block(r.a, &buf, &size, &offset)) == ARCHIVE_OK) {
            if (archive_write_data_block(w.get(), buf, size, offset) < ARCHIVE_OK) {
                d = ARCHIVE_FATAL;
                failure = std::string(archive_entry_pathname(e)) + ": " + archive_error_string(w.get());
                break;
            }
            written += size;
            if (progress)
                progress(written);
        }
        if (d != ARCHIVE_EOF) {
            if (failure.empty())
                failure = std::string(archive_entry_pathname(e)) + ": " + archive_error_string(r.a);
            break;
        }
        if (archive_write_finish_entry(w.get()) < ARCHIVE_WARN) {
            failure = std::string(archive_entry_pathname(e)) + ": " + archive_error_string(w.get());
            break;
        }
    }
    if (failure.empty() && rc != ARCHIVE_EOF)
        failure = archive_error_string(r.a);
    if (failure.empty() && archive_write_close(w.get()) != ARCHIVE_OK)
        failure = archive_error_string(w.get());
    int back = fchdir(cwd);
    close(cwd);
    if (!failure.empty())
        throw CommandError("extracting " + path + " failed: " + failure);
    if (back != 0)
        throw CommandError(std::string("cannot return to the working directory: ") + std::strerror(errno));
}

} // namespace ou
