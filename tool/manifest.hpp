// The backup manifest: omero-upgrade-backups.json in the backup directory, one entry per backup
// this tool made (README, "Design"). Updated under an exclusive lock, atomically (temp + rename).
//
// {"format": 1, "backups": [{"file": "omero-OMERO5.3__1-20261125T134500Z.pgdump",
//   "format": "custom"|"directory", "database": "omero", "dbpatch_version": "OMERO5.3__1",
//   "created_utc": "2026-11-25T13:45:00Z", "size_bytes": 123, "sha256": "<hex of the file, or of
//   the sidecar for a directory>", "server_version": "15.20", "pg_dump_version": "...",
//   "encoding": "UTF8", "source_encoding": "UTF8", "extension_installed": false,
//   "purpose": "backup"|"to-utf8", "host": "...", "port": "5432"}]}
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace ou {

constexpr const char *manifest_name = "omero-upgrade-backups.json";

// The manifest of a backup directory ({"format":1,"backups":[]} when there is none yet).
nlohmann::json read_manifest(const std::string &backup_dir);
// Appends one entry (replacing an entry for the same file, which never happens for new names).
void add_to_manifest(const std::string &backup_dir, const nlohmann::json &entry);
// The entry for a file name in that directory's manifest.
std::optional<nlohmann::json> manifest_entry(const std::string &backup_dir, const std::string &file);

} // namespace ou
