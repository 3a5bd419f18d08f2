// SHA-256 of backups (OpenSSL EVP) and their sidecar files in sha256sum format, so that
// `sha256sum -c NAME.sha256` run in the backup directory checks them without this tool.
// A custom-format dump has one line; a directory-format dump one line per file ("NAME/FILE").
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ou {

// Hex SHA-256 of a file; progress(bytes_read) is called now and then.
std::string sha256_file(const std::string &path, const std::function<void(unsigned long long)> &progress = {});
std::string sha256_string(const std::string &data);

// (hash, name relative to the backup directory) for a dump file or every file of a dump directory.
using ChecksumList = std::vector<std::pair<std::string, std::string>>;
// Checksums of `path` (a file or a directory) listed under the name `name`.
ChecksumList compute_checksums(const std::string &path, const std::string &name,
                               const std::function<void(unsigned long long)> &progress = {});
std::string format_sidecar(const ChecksumList &l);
// Parses a sidecar; throws CommandError when it is not in sha256sum format.
ChecksumList parse_sidecar(const std::string &text, const std::string &sidecar_path);

// The problems found comparing a dump (file or directory at dir/name) with its sidecar: missing,
// changed, or (directory) unlisted files. Empty when all match.
std::vector<std::string> verify_checksums(const std::string &dir, const std::string &name,
                                          const std::function<void(unsigned long long)> &progress = {},
                                          const std::string &data = "");

} // namespace ou
