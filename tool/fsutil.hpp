// File-system helpers for steps that must never lose a byte: atomic writes (temp file, fsync,
// rename), renames that never overwrite, sizes, free space, removal of our own partial files.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ou {

bool path_exists(const std::string &p);   // lstat: a dangling symlink exists too
bool is_directory(const std::string &p);
bool read_file(const std::string &p, std::string &out);
// The names in a directory, without "." and "..", in readdir order; nullopt (errno set) when it
// cannot be read. The one place the tool lists a directory by name.
std::optional<std::vector<std::string>> dir_entries(const std::string &dir);
// Writes a temp file beside p, fsyncs it, renames it over p, fsyncs the directory. The temp file
// is created O_EXCL|O_NOFOLLOW (nothing planted at its name is written through) and gets exactly
// `mode` whatever the umask: 0600 by default, since every file the tool writes so holds data or
// state (sidecars, manifests, run and binaries state, listings, a preview's config.xml).
void write_file_atomic(const std::string &p, const std::string &data, bool overwrite = true, unsigned mode = 0600);
// rename(2) that fails with a clear error when `to` exists (RENAME_NOREPLACE).
void rename_noreplace(const std::string &from, const std::string &to);
// fsync a file, or every file of a directory and the directory itself.
void fsync_path(const std::string &p);
void fsync_dir(const std::string &dir);
// Bytes of a file, or of every file below a directory.
unsigned long long path_size(const std::string &p);
// Bytes available to this user on the file system holding p (statvfs f_bavail).
unsigned long long free_bytes(const std::string &p);
// Removes a file or a directory tree (our own partial dumps only).
void remove_tree(const std::string &p);
// A new private directory (mkdtemp: 0700) $TMPDIR/PREFIX.XXXXXX (else under /tmp); CommandError
// when it cannot be made.
std::string make_private_temp_dir(const std::string &prefix);
// Writes text into a new file (O_EXCL, 0600 whatever the umask); CommandError when it cannot,
// the partial file removed.
void write_private_file(const std::string &path, const std::string &text);
// A private temporary directory (make_private_temp_dir), removed with what it holds at the end.
class PrivateTempDir {
public:
    explicit PrivateTempDir(const std::string &prefix) : dir_(make_private_temp_dir(prefix)) {}
    ~PrivateTempDir() { remove_tree(dir_); }
    PrivateTempDir(const PrivateTempDir &) = delete;
    PrivateTempDir &operator=(const PrivateTempDir &) = delete;
    const std::string &path() const { return dir_; }
    // A new private file NAME in it, holding text; its path.
    std::string write(const std::string &name, const std::string &text) const
    {
        std::string p = dir_ + "/" + name;
        write_private_file(p, text);
        return p;
    }

private:
    std::string dir_;
};
std::string dir_name(const std::string &p);
std::string base_name(const std::string &p);
// Creates dir (one level) when missing; throws CommandError when it cannot be used. Returns
// whether it created it. A created directory gets exactly `mode` whatever the umask (0700 by
// default: the tool's directories hold backups, state and previews). An existing directory keeps
// its mode (it may be the user's own, "."): what the tool writes into it is private by itself.
bool ensure_dir(const std::string &dir, unsigned mode = 0700);
// Opens (creating when missing, O_NOFOLLOW) a lock or log file of the tool: created 0600, and
// made 0600 when it is ours and looser (a file of an older version). Returns the descriptor or -1.
int open_private(const std::string &p, int flags);
// Makes a file 0600, or a directory tree private: directories 0700, files 0600 (no symlink is
// followed). For what a child program wrote (a pg_dump file or directory).
void make_private(const std::string &p);

} // namespace ou
