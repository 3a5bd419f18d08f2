// Server distribution archives (OMERO.server-*.zip, or any format libarchive reads): every entry
// is checked before anything is extracted, then the archive is extracted into a temp dir beside
// the target and renamed into place, so a hostile or broken archive leaves nothing behind.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ou {

struct ArchiveCheck {
    std::vector<std::string> problems;  // one line per refused entry (empty: safe to extract)
    std::string top_dir;                // the single top-level directory of every entry, "" if none
    size_t entries = 0;
    unsigned long long bytes = 0;       // uncompressed size of the regular files
    bool ok() const { return problems.empty(); }
};

// Reads the whole archive without writing anything. Refuses: absolute paths, ".." components,
// entries written through a symlink of the archive, symlinks whose target leaves the archive's
// root (followed the way the kernel would, through other symlinks of the archive), hard links
// to paths outside it, device files, fifos and sockets. Throws CommandError when it is not a
// readable archive. progress(bytes of the archive file read) is called after every entry.
ArchiveCheck check_archive(const std::string &path, const std::function<void(unsigned long long)> &progress = {});

// Extracts into dest, an existing empty directory, with libarchive's own secure flags as a
// second line of defence. Call only after check_archive() said ok. progress(bytes written) is
// called after every data block.
void extract_archive(const std::string &path, const std::string &dest,
                     const std::function<void(unsigned long long)> &progress = {});

} // namespace ou
