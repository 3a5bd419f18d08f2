// Server distribution archives (OMERO.server-*.zip, or any format libarchive reads): the archive
// is opened once, as a regular file; every entry is checked before anything is extracted, then
// the archive is extracted from the same descriptor, every entry checked again on the way, into a
// temp dir beside the target and renamed into place, so a hostile, broken or swapped archive
// leaves nothing behind.
#pragma once

#include <functional>
#include <string>
#include <vector>

struct archive;

namespace ou {

// libarchive's message for the last error of a, never NULL (a truncated zip leaves none).
std::string archive_error(archive *a);

// One open archive file. Refuses (CommandError) anything but a regular file: a directory, a
// fifo (a fifo would also hand the check and the extraction different bytes), a device, a socket.
class ArchiveFile {
  public:
    explicit ArchiveFile(const std::string &path);
    ~ArchiveFile();
    ArchiveFile(const ArchiveFile &) = delete;
    ArchiveFile &operator=(const ArchiveFile &) = delete;
    const std::string &path() const { return path_; }
    unsigned long long size() const { return size_; }
    // A zip: read only through its central directory (libarchive's seekable zip reader), never
    // by streaming its local headers. The central directory, at the end, is the list of the
    // entries with their modes (symlinks, executables); a zip cut anywhere has none and is
    // refused as truncated, instead of being read as the entries before the cut.
    bool is_zip() const { return zip_; }
    // Opens a libarchive reader on the descriptor, from its start: a zip as above, anything else
    // with all formats and filters. The caller frees it (archive_read_free); the descriptor
    // stays open. Throws CommandError (naming the archive) when it cannot be read.
    archive *open_reader() const;

  private:
    std::string path_;
    int fd_ = -1;
    unsigned long long size_ = 0;
    bool zip_ = false;
    bool filtered_zip_ = false;  // a zip inside a compression filter (zip.gz): no central directory to seek
};

// What the check saw of one entry: the extraction must meet exactly the same entries, in order.
struct CheckedEntry {
    std::string name;  // normalized: no "", "." components, no trailing '/'
    unsigned type = 0;
    std::string symlink, hardlink;
    long long size = 0;
};

struct ArchiveCheck {
    std::vector<std::string> problems;  // one line per refused entry (empty: safe to extract)
    std::string top_dir;                // the single top-level directory of every entry, "" if none
    size_t entries = 0;
    unsigned long long bytes = 0;       // uncompressed size of the regular files
    bool has_bin_omero = false;         // <top>/bin/omero: a regular file (or a safe symlink)
    bool has_sql_psql = false;          // <top>/sql/psql: a directory, or entries below it
    std::vector<CheckedEntry> seen;     // every entry, in archive order
    bool ok() const { return problems.empty(); }
};

// Reads the whole archive without writing anything. Refuses: absolute paths, ".." components,
// duplicate names, entries other than regular files, directories and symlinks (device files,
// fifos, sockets), entries written through a symlink of the archive, symlinks whose target
// leaves the kept top directory (the archive's single top directory when it has one, else its
// root; followed the way the kernel would, through other symlinks of the archive, never above
// that directory even on the way), hard links to anything but an earlier regular file of the
// archive. Throws CommandError when it is not a readable archive. progress(bytes of the archive
// file read) is called after every entry.
ArchiveCheck check_archive(const ArchiveFile &file, const std::function<void(unsigned long long)> &progress = {});

// Extracts into dest, an existing empty directory, with libarchive's own secure flags as a
// second line of defence. Call only after check_archive() said ok, with its result: every entry
// read is checked again and must be the one the check saw (else nothing more is written and
// CommandError says the archive changed). progress(bytes written) is called after every block.
void extract_archive(const ArchiveFile &file, const ArchiveCheck &checked, const std::string &dest,
                     const std::function<void(unsigned long long)> &progress = {});

} // namespace ou
