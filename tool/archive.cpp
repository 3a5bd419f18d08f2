// See archive.hpp.
#include "archive.hpp"

#include "common.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>

namespace ou {

std::string archive_error(archive *a)
{
    const char *s = a ? archive_error_string(a) : nullptr;
    if (s && *s)
        return s;
    int e = a ? archive_errno(a) : 0;
    return e > 0 ? std::string(std::strerror(e)) : std::string("unreadable data (truncated or damaged archive?)");
}

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
// through the archive's own symlinks. False when it would climb above the first `floor`
// components of the path (the kept top directory; 0: the archive's root), even on the way
// back down (a/b -> ../a/c names another place once the top directory is renamed), or loops.
bool resolve_inside(const std::map<std::string, std::string> &links, Parts dir, const std::string &target,
                    size_t floor, int &depth, Parts &result)
{
    bool absolute = false;
    Parts parts = split_path(target, &absolute);
    if (absolute)
        return false;
    for (const auto &c : parts) {
        if (c == "..") {
            if (dir.size() <= floor)
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
            if (!resolve_inside(links, dir, it->second, floor, depth, resolved))
                return false;
            dir = resolved;
        }
    }
    result = dir;
    return true;
}

// An entry as read from a header, normalized; what the check records and the extraction compares.
CheckedEntry read_entry(archive_entry *e, bool &absolute, std::string &stored)
{
    CheckedEntry ce;
    const char *name = archive_entry_pathname(e);
    stored = name ? name : "";
    ce.name = join(split_path(stored, &absolute));
    ce.type = archive_entry_filetype(e);
    if (const char *s = archive_entry_symlink(e))
        ce.symlink = s;
    if (const char *h = archive_entry_hardlink(e))
        ce.hardlink = h;
    ce.size = archive_entry_size_is_set(e) ? (long long)archive_entry_size(e) : -1;
    return ce;
}

// The checks of one entry on its own ("" when it may be written), in both passes.
std::string entry_problem(const CheckedEntry &ce, bool absolute, const std::string &stored)
{
    Parts parts = split_path(stored);
    if (stored.empty() || parts.empty())
        return "an entry without a name";
    if (absolute)
        return stored + ": absolute path";
    if (has_dotdot(parts))
        return stored + ": path with '..'";
    if (!ce.hardlink.empty()) {
        if (ce.type != AE_IFREG && ce.type != 0)
            return stored + ": hard link of an unsupported type";
        return "";
    }
    switch (ce.type) {
    case AE_IFREG:
    case AE_IFDIR:
        return "";
    case AE_IFLNK:
        return ce.symlink.empty() ? stored + ": symlink without a target" : "";
    case AE_IFCHR:
    case AE_IFBLK:
        return stored + ": device file";
    case AE_IFIFO:
        return stored + ": fifo";
    case AE_IFSOCK:
        return stored + ": socket";
    default:
        return stored + ": unsupported entry type (only files, directories and symlinks)";
    }
}

bool same_entry(const CheckedEntry &a, const CheckedEntry &b)
{
    return a.name == b.name && a.type == b.type && a.symlink == b.symlink && a.hardlink == b.hardlink &&
           a.size == b.size;
}

struct Reader {
    archive *a;
    explicit Reader(const ArchiveFile &f) : a(f.open_reader()) {}
    ~Reader() { archive_read_free(a); }
};

const char *kind_name(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a fifo" : S_ISCHR(m) || S_ISBLK(m) ? "a device" :
           S_ISSOCK(m) ? "a socket" : "not a regular file";
}

// The zip's own structure, read from the descriptor: every central directory record (what
// libarchive's seekable reader lists) must have, at its offset, a local header that says the same
// (signature, name, flags, method and, without a data descriptor, CRC and sizes), and the members
// must lie one after another before the central directory without overlapping. libarchive trusts
// the central directory for the list and the local header for the rest (it installs a member
// under its local name); unzip, Java and OMERO's own tools may read either. A zip whose two
// copies disagree is damaged or crafted to show different trees to different readers: refused.
// Returns an empty string when sound, else what is wrong.
unsigned zip_u16(const unsigned char *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

unsigned long long zip_u32(const unsigned char *p)
{
    return (unsigned long long)p[0] | (unsigned long long)p[1] << 8 | (unsigned long long)p[2] << 16 |
           (unsigned long long)p[3] << 24;
}

unsigned long long zip_u64(const unsigned char *p)
{
    return zip_u32(p) | zip_u32(p + 4) << 32;
}

// Reads of the zip's bytes at an offset, never beyond its size.
struct ZipBytes {
    int fd;
    unsigned long long size;

    bool read_at(unsigned long long off, size_t n, std::vector<unsigned char> &buf) const
    {
        buf.assign(n, 0);
        if (off > size || n > size - off)
            return false;
        size_t done = 0;
        while (done < n) {
            ssize_t r = pread(fd, buf.data() + done, n - done, (off_t)(off + done));
            if (r <= 0)
                return false;
            done += (size_t)r;
        }
        return true;
    }
};

// Where the end record (zip64's when there is one) says the central directory is.
struct ZipDirectory {
    unsigned long long count = 0, cd_size = 0, cd_off = 0;
    unsigned long long cd_end_pos = 0;  // where the central directory must end
};

// The end record: the last "PK\5\6" within the final 64 KiB + 22 bytes, and the zip64 end record
// its fields point to when they are full. "" when found, else what is wrong.
std::string find_zip_directory(const ZipBytes &z, ZipDirectory &d)
{
    std::vector<unsigned char> tail;
    unsigned long long tail_len = std::min<unsigned long long>(z.size, 65536 + 22);
    if (!z.read_at(z.size - tail_len, (size_t)tail_len, tail))
        return "cannot read its end";
    long long eocd = -1;
    for (long long i = (long long)tail_len - 22; i >= 0; --i)
        if (tail[i] == 'P' && tail[i + 1] == 'K' && tail[i + 2] == 5 && tail[i + 3] == 6) {
            eocd = i;
            break;
        }
    if (eocd < 0)
        return "no end of central directory record";
    const unsigned char *e = tail.data() + eocd;
    unsigned long long eocd_pos = z.size - tail_len + (unsigned long long)eocd;
    if (zip_u16(e + 4) != 0 || zip_u16(e + 6) != 0)
        return "a multi-part (spanned) zip";
    d.count = zip_u16(e + 10);
    d.cd_size = zip_u32(e + 12);
    d.cd_off = zip_u32(e + 16);
    d.cd_end_pos = eocd_pos;
    if (d.count == 0xFFFF || d.cd_size == 0xFFFFFFFFull || d.cd_off == 0xFFFFFFFFull) {
        std::vector<unsigned char> loc, z64;
        if (eocd_pos < 20 || !z.read_at(eocd_pos - 20, 20, loc) || zip_u32(loc.data()) != 0x07064b50)
            return "a zip64 end record without its locator";
        unsigned long long z_off = zip_u64(loc.data() + 8);
        if (!z.read_at(z_off, 56, z64) || zip_u32(z64.data()) != 0x06064b50)
            return "a zip64 end record that is not where its locator says";
        d.count = zip_u64(z64.data() + 32);
        d.cd_size = zip_u64(z64.data() + 40);
        d.cd_off = zip_u64(z64.data() + 48);
        d.cd_end_pos = z_off;
    }
    return "";
}

// One central directory record, its zip64 values in place.
struct ZipRecord {
    std::string name;
    unsigned flags = 0, method = 0;
    unsigned long long crc = 0, csize = 0, usize = 0, off = 0;
};

// The record at cd[p] (record i+1), p moved past it. "" when sound, else what is wrong.
std::string read_central_record(const std::vector<unsigned char> &cd, size_t &p, unsigned long long i, ZipRecord &r)
{
    if (p + 46 > cd.size() || zip_u32(&cd[p]) != 0x02014b50)
        return "central directory record " + std::to_string(i + 1) + " is damaged";
    const unsigned char *c = &cd[p];
    r.flags = zip_u16(c + 8);
    r.method = zip_u16(c + 10);
    r.crc = zip_u32(c + 16);
    r.csize = zip_u32(c + 20);
    r.usize = zip_u32(c + 24);
    r.off = zip_u32(c + 42);
    size_t nl = zip_u16(c + 28), el = zip_u16(c + 30), kl = zip_u16(c + 32);
    if (p + 46 + nl + el + kl > cd.size())
        return "central directory record " + std::to_string(i + 1) + " is damaged";
    r.name.assign(reinterpret_cast<const char *>(c + 46), nl);
    // zip64 values, in the order of the fields that are 0xFFFFFFFF.
    for (size_t x = 46 + nl; x + 4 <= 46 + nl + el;) {
        unsigned id = zip_u16(c + x), len = zip_u16(c + x + 2);
        if (x + 4 + len > 46 + nl + el)
            break;
        if (id == 1) {
            size_t q = x + 4, qe = x + 4 + len;
            auto take = [&](unsigned long long &v) {
                if (v == 0xFFFFFFFFull && q + 8 <= qe) {
                    v = zip_u64(c + q);
                    q += 8;
                }
            };
            take(r.usize);
            take(r.csize);
            take(r.off);
        }
        x += 4 + len;
    }
    p += 46 + nl + el + kl;
    return "";
}

// The CRC and sizes of a local header (without a data descriptor), its zip64 extra read.
void local_crc_and_sizes(const std::vector<unsigned char> &lh, const std::vector<unsigned char> &rest, size_t lnl,
                         size_t lel, unsigned long long &lcrc, unsigned long long &lcs, unsigned long long &lus)
{
    lcrc = zip_u32(&lh[14]);
    lcs = zip_u32(&lh[18]);
    lus = zip_u32(&lh[22]);
    for (size_t x = lnl; x + 4 <= lnl + lel;) {
        unsigned id = zip_u16(&rest[x]), len = zip_u16(&rest[x + 2]);
        if (x + 4 + len > lnl + lel)
            break;
        if (id == 1) {
            size_t q = x + 4, qe = x + 4 + len;
            if (lus == 0xFFFFFFFFull && q + 8 <= qe) {
                lus = zip_u64(&rest[q]);
                q += 8;
            }
            if (lcs == 0xFFFFFFFFull && q + 8 <= qe)
                lcs = zip_u64(&rest[q]);
        }
        x += 4 + len;
    }
}

// A member's bytes in the zip (its local header to the end of its data).
struct ZipMember {
    unsigned long long start, end;
    std::string name;
};

// The local header at the record's offset must say what the record says; the member's extent
// into m. "" when it does, else what is wrong.
std::string check_local_header(const ZipBytes &z, unsigned long long base, const ZipDirectory &d, const ZipRecord &r,
                               ZipMember &m)
{
    std::vector<unsigned char> lh;
    if (r.off >= d.cd_off || !z.read_at(base + r.off, 30, lh) || zip_u32(lh.data()) != 0x04034b50)
        return r.name + ": no local header where the central directory says";
    size_t lnl = zip_u16(&lh[26]), lel = zip_u16(&lh[28]);
    std::vector<unsigned char> rest;
    if (!z.read_at(base + r.off + 30, lnl + lel, rest))
        return r.name + ": its local header is cut";
    std::string lname(reinterpret_cast<const char *>(rest.data()), lnl);
    if (lname != r.name)
        return r.name + ": its local header names it " + lname;
    unsigned lflags = zip_u16(&lh[6]), lmethod = zip_u16(&lh[8]);
    if (lmethod != r.method || (lflags & 0x0809) != (r.flags & 0x0809))
        return r.name + ": its local header disagrees with the central directory (method or flags)";
    if (!(r.flags & 0x0008)) {
        unsigned long long lcrc, lcs, lus;
        local_crc_and_sizes(lh, rest, lnl, lel, lcrc, lcs, lus);
        if (lcrc != r.crc || lcs != r.csize || lus != r.usize)
            return r.name + ": its local header disagrees with the central directory (CRC or sizes)";
    }
    unsigned long long start = r.off, end = r.off + 30 + lnl + lel + r.csize;
    if (end > d.cd_off || end < start)
        return r.name + ": its data runs into the central directory";
    m = {start, end, r.name};
    return "";
}

std::string zip_structure_problem(int fd, unsigned long long size)
{
    const ZipBytes z{fd, size};
    ZipDirectory d;
    if (std::string why = find_zip_directory(z, d); !why.empty())
        return why;
    // A self-extractor stub before the zip shifts every offset by its length.
    if (d.cd_size > d.cd_end_pos || d.cd_off > d.cd_end_pos - d.cd_size)
        return "its central directory is not where its end record says";
    unsigned long long base = d.cd_end_pos - d.cd_size - d.cd_off;
    std::vector<unsigned char> cd;
    if (!z.read_at(base + d.cd_off, (size_t)d.cd_size, cd))
        return "cannot read its central directory";
    std::vector<ZipMember> members;
    size_t p = 0;
    for (unsigned long long i = 0; i < d.count; ++i) {
        ZipRecord r;
        if (std::string why = read_central_record(cd, p, i, r); !why.empty())
            return why;
        ZipMember m;
        if (std::string why = check_local_header(z, base, d, r, m); !why.empty())
            return why;
        members.push_back(m);
    }
    if (p != cd.size())
        return "its central directory holds more than its end record counts";
    std::sort(members.begin(), members.end(), [](const ZipMember &a, const ZipMember &b) { return a.start < b.start; });
    for (size_t i = 1; i < members.size(); ++i)
        if (members[i].start < members[i - 1].end)
            return members[i].name + ": overlaps " + members[i - 1].name + " (one member's bytes read as two)";
    return "";
}

} // namespace

ArchiveFile::ArchiveFile(const std::string &path) : path_(path)
{
    const char *hint = "give an OMERO.server zip (or a directory holding an unpacked server)";
    struct stat st, fst;
    if (stat(path.c_str(), &st) != 0)
        throw CommandError("cannot read the archive " + path + ": " + std::strerror(errno), hint);
    // Never opened when it is not a regular file: opening a fifo would wait for a writer, a
    // device may act on open; and a fifo gives different bytes to every reader.
    if (!S_ISREG(st.st_mode))
        throw CommandError("cannot read the archive " + path + ": it is " + kind_name(st.st_mode) +
                               ", not a regular file",
                           hint);
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd_ < 0)
        throw CommandError("cannot read the archive " + path + ": " + std::strerror(errno), hint);
    if (fstat(fd_, &fst) != 0 || !S_ISREG(fst.st_mode) || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
        close(fd_);
        throw CommandError("cannot read the archive " + path + ": it was replaced while being opened", hint);
    }
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    size_ = (unsigned long long)fst.st_size;

    // Is it a zip? Its first bytes (a local header, an empty zip's end record, a spanning
    // marker), or libarchive's own choice among all formats (a zip behind a self-extractor
    // stub, or one read by its streaming reader because its end is missing).
    unsigned char magic[4] = {0, 0, 0, 0};
    if (pread(fd_, magic, 4, 0) == 4 && magic[0] == 'P' && magic[1] == 'K' &&
        ((magic[2] == 3 && magic[3] == 4) || (magic[2] == 5 && magic[3] == 6) || (magic[2] == 7 && magic[3] == 8)))
        zip_ = true;
    if (archive *p = archive_read_new()) {
        archive_read_support_filter_all(p);
        archive_read_support_format_all(p);
        archive_entry *e;
        if (archive_read_open_fd(p, fd_, 65536) == ARCHIVE_OK && archive_read_next_header(p, &e) >= ARCHIVE_WARN &&
            (archive_format(p) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_ZIP) {
            zip_ = true;
            filtered_zip_ = archive_filter_count(p) > 1;
        }
        archive_read_free(p);
    }
    if (zip_ && !filtered_zip_) {
        std::string problem = zip_structure_problem(fd_, size_);
        if (!problem.empty()) {
            close(fd_);
            fd_ = -1;
            bool no_cd = problem.rfind("no end of central directory", 0) == 0 ||
                         problem.rfind("its central directory is not where", 0) == 0 ||
                         problem.rfind("cannot read its", 0) == 0 || problem.rfind("a zip64 end record", 0) == 0;
            throw CommandError("cannot read the archive " + path +
                                   (no_cd ? ": a zip without its central directory (the list of its entries, at its "
                                            "end): truncated or damaged (" + problem + ")"
                                          : ": a damaged or inconsistent zip: " + problem),
                               "download it again (and compare its checksum with the one of the download site)");
        }
    }
}

ArchiveFile::~ArchiveFile()
{
    if (fd_ >= 0)
        close(fd_);
}

archive *ArchiveFile::open_reader() const
{
    if (lseek(fd_, 0, SEEK_SET) != 0)
        throw CommandError("cannot rewind the archive " + path_ + ": " + std::strerror(errno));
    const char *hint = "give an OMERO.server zip (or a directory holding an unpacked server)";
    if (filtered_zip_)
        throw CommandError("cannot read the archive " + path_ + ": it is a compressed zip", "uncompress it first");
    archive *a = archive_read_new();
    if (!a)
        throw CommandError("cannot read the archive " + path_ + ": out of memory");
    if (zip_) {
        archive_read_support_format_zip_seekable(a);
    } else {
        archive_read_support_filter_all(a);
        archive_read_support_format_all(a);
    }
    if (archive_read_open_fd(a, fd_, 65536) != ARCHIVE_OK) {
        std::string msg = archive_error(a);
        archive_read_free(a);
        if (zip_)
            throw CommandError("cannot read the archive " + path_ +
                                   ": a zip without its central directory (the list of its entries, at its end): "
                                   "truncated or damaged (" + msg + ")",
                               "download it again (and compare its checksum with the one of the download site)");
        throw CommandError("cannot read the archive " + path_ + ": " + msg, hint);
    }
    return a;
}

namespace {

// What the first pass keeps of the entries without a problem of their own.
struct KeptEntries {
    struct Kept {
        Parts parts;
        std::string stored;
        size_t index;
    };
    std::vector<Kept> kept;
    std::map<std::string, std::string> links;    // normalized path of a symlink → its target
    std::map<std::string, size_t> regulars;      // normalized path of a regular file → its index
};

// The first pass: every header read, each entry checked on its own and against the names before.
KeptEntries read_entries(const ArchiveFile &file, const std::function<void(unsigned long long)> &progress,
                         ArchiveCheck &c)
{
    Reader r(file);
    KeptEntries k;
    std::set<std::string> names;
    archive_entry *e;
    int rc;
    while ((rc = archive_read_next_header(r.a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        bool absolute = false;
        std::string stored;
        CheckedEntry ce = read_entry(e, absolute, stored);
        size_t index = c.entries++;
        c.seen.push_back(ce);
        std::string problem = entry_problem(ce, absolute, stored);
        if (problem.empty() && !names.insert(ce.name).second)
            problem = stored + ": a second entry of the same name";
        if (!problem.empty()) {
            c.problems.push_back(problem);
        } else {
            if (ce.type == AE_IFLNK && ce.hardlink.empty())
                k.links[ce.name] = ce.symlink;
            if (ce.type == AE_IFREG && ce.hardlink.empty()) {
                c.bytes += ce.size > 0 ? (unsigned long long)ce.size : 0;
                k.regulars[ce.name] = index;
            }
            k.kept.push_back({split_path(stored), stored, index});
        }
        if (archive_read_data_skip(r.a) < ARCHIVE_WARN)
            throw CommandError("cannot read the archive " + file.path() + ": " + archive_error(r.a) + " (in " +
                               stored + ")");
        if (progress)
            progress((unsigned long long)archive_filter_bytes(r.a, -1));
    }
    if (rc != ARCHIVE_EOF)
        throw CommandError("cannot read the archive " + file.path() + ": " + archive_error(r.a) + " (after " +
                           std::to_string(c.entries) + " entries)");
    return k;
}

// A single top-level directory (OMERO.server-5.6.3-ice36-b228/...), not a lone file: it is
// what is kept (renamed into the versioned directory), so nothing may lead above it. "" if none.
std::string single_top_dir(const KeptEntries &k, const ArchiveCheck &c)
{
    std::set<std::string> tops;
    bool lone_file = false;
    for (const auto &e : k.kept) {
        tops.insert(e.parts[0]);
        const CheckedEntry &ce = c.seen[e.index];
        lone_file |= e.parts.size() == 1 && (ce.type != AE_IFDIR || !ce.hardlink.empty());
    }
    return tops.size() == 1 && !lone_file ? *tops.begin() : "";
}

// The second pass's check of one kept link entry: where its symlink or hard link leads.
void check_link_entry(const KeptEntries &k, const KeptEntries::Kept &e, size_t floor, ArchiveCheck &c)
{
    const CheckedEntry &ce = c.seen[e.index];
    if (ce.type == AE_IFLNK && ce.hardlink.empty()) {
        Parts dir(e.parts.begin(), e.parts.end() - 1), result;
        int depth = 0;
        if (!resolve_inside(k.links, dir, ce.symlink, floor, depth, result))
            c.problems.push_back(e.stored + ": symlink pointing outside the archive (" + ce.symlink + ")" +
                                 (floor ? ", or above its top directory " + c.top_dir + " (the tree kept)" : ""));
    }
    if (!ce.hardlink.empty()) {
        bool absolute = false;
        Parts h = split_path(ce.hardlink, &absolute);
        auto it = k.regulars.find(join(h));
        std::string via;
        for (size_t n = 1; n <= h.size() && via.empty(); n++)
            if (k.links.count(join(h, n)))
                via = join(h, n);
        if (absolute || h.empty() || has_dotdot(h))
            c.problems.push_back(e.stored + ": hard link to a path outside the archive (" + ce.hardlink + ")");
        else if (!via.empty())
            c.problems.push_back(e.stored + ": hard link through the symlink " + via);
        else if (it == k.regulars.end() || it->second > e.index)
            c.problems.push_back(e.stored + ": hard link to " + ce.hardlink +
                                 ", which is not an earlier regular file of the archive");
    }
}

} // namespace

ArchiveCheck check_archive(const ArchiveFile &file, const std::function<void(unsigned long long)> &progress)
{
    ArchiveCheck c;
    KeptEntries k = read_entries(file, progress, c);
    c.top_dir = single_top_dir(k, c);
    size_t floor = c.top_dir.empty() ? 0 : 1;
    std::string prefix = c.top_dir.empty() ? "" : c.top_dir + "/";
    for (const auto &e : k.kept) {
        const CheckedEntry &ce = c.seen[e.index];
        // Written through a symlink of the archive: its real place is not where its name says.
        bool through = false;
        for (size_t n = 1; n < e.parts.size() && !through; n++)
            if (k.links.count(join(e.parts, n))) {
                c.problems.push_back(e.stored + ": written through the symlink " + join(e.parts, n) +
                                     " of the archive");
                through = true;
            }
        if (through)
            continue;
        check_link_entry(k, e, floor, c);
        if (ce.name == prefix + "bin/omero" && (ce.type == AE_IFREG || ce.type == AE_IFLNK || !ce.hardlink.empty()))
            c.has_bin_omero = true;
        if (ce.name == prefix + "sql/psql" || ce.name.rfind(prefix + "sql/psql/", 0) == 0)
            c.has_sql_psql = true;
    }
    return c;
}

namespace {

// Every entry again, before it is written (index: its place): the bytes read now are the ones
// written. "" when it is the entry that was checked, else why not.
std::string recheck_entry(archive_entry *e, const ArchiveCheck &checked, size_t index, std::string &stored)
{
    bool absolute = false;
    CheckedEntry ce = read_entry(e, absolute, stored);
    std::string problem = entry_problem(ce, absolute, stored);
    if (!problem.empty())
        return "unsafe entry met while extracting: " + problem;
    if (index >= checked.seen.size() || !same_entry(ce, checked.seen[index]))
        return "the archive changed since it was checked (entry " + std::to_string(index + 1) + ", " + stored + ")";
    return "";
}

// The current entry's data from the reader to the disk writer. "" when all of it is written.
std::string write_entry_data(archive *in, archive *w, const std::string &stored, unsigned long long &written,
                             const std::function<void(unsigned long long)> &progress)
{
    const void *buf;
    size_t size;
    la_int64_t offset;
    int d;
    while ((d = archive_read_data_block(in, &buf, &size, &offset)) == ARCHIVE_OK) {
        if (archive_write_data_block(w, buf, size, offset) < ARCHIVE_OK)
            return stored + ": " + archive_error(w);
        written += size;
        if (progress)
            progress(written);
    }
    if (d != ARCHIVE_EOF)
        return stored + ": " + archive_error(in);
    return "";
}

} // namespace

void extract_archive(const ArchiveFile &file, const ArchiveCheck &checked, const std::string &dest,
                     const std::function<void(unsigned long long)> &progress)
{
    if (!checked.ok())
        throw CommandError("refusing to extract " + file.path() + ": its check found unsafe entries");
    unsigned long long written = 0;
    Reader r(file);
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
    size_t index = 0;
    while ((rc = archive_read_next_header(r.a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        std::string stored;
        failure = recheck_entry(e, checked, index, stored);
        if (!failure.empty())
            break;
        index++;
        // No set-uid/set-gid/sticky bits from an archive; owners are not restored either.
        archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
        if (archive_write_header(w.get(), e) < ARCHIVE_WARN) {
            failure = stored + ": " + archive_error(w.get());
            break;
        }
        failure = write_entry_data(r.a, w.get(), stored, written, progress);
        if (!failure.empty())
            break;
        if (archive_write_finish_entry(w.get()) < ARCHIVE_WARN) {
            failure = stored + ": " + archive_error(w.get());
            break;
        }
    }
    if (failure.empty() && rc != ARCHIVE_EOF)
        failure = archive_error(r.a);
    if (failure.empty() && index != checked.seen.size())
        failure = "the archive changed since it was checked (" + std::to_string(index) + " entries instead of " +
                  std::to_string(checked.seen.size()) + ")";
    if (failure.empty() && archive_write_close(w.get()) != ARCHIVE_OK)
        failure = archive_error(w.get());
    int back = fchdir(cwd);
    close(cwd);
    if (!failure.empty())
        throw CommandError("extracting " + file.path() + " failed: " + failure);
    if (back != 0)
        throw CommandError(std::string("cannot return to the working directory: ") + std::strerror(errno));
}

} // namespace ou
