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
// Writes a temp file beside p, fsyncs it, renames it over p, fsyncs the directory.
void write_file_atomic(const std::string &p, const std::string &data, bool overwrite = true);
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
std::string dir_name(const std::string &p);
std::string base_name(const std::string &p);
// Creates dir (one level) when missing; throws CommandError when it cannot be used.
void ensure_dir(const std::string &dir);

} // namespace ou
