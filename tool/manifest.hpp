// The backup manifest: omero-upgrade-backups.json in a backup directory (0600), one entry per
// dump recorded there: made by `backup` (purpose "backup"), by `db to-utf8` ("to-utf8"), or
// adopted by `backup import` ("import"). Written only by add_to_manifest(): read-modify-write
// under an exclusive flock on .omero-upgrade-backups.json.lock (0600) in the same directory,
// then an atomic replace (write_file_atomic: temp file + rename). Read by `backup list`,
// `backup verify` (verify_backup: is the file recorded?), and the space check (dump_space_needed:
// the size of the newest recorded dump of the database). This file knows only the envelope and
// the "file" key; the other keys are written by tool/backup.cpp and read where they are used:
//
// {"format": 1, "backups": [
//   {"file": "omero-OMERO5.3__1-20261125T134500Z.pgdump" (or .pgdir, a directory-format dump),
//    "format": "custom"|"directory", "database": "omero", "dbpatch_version": "OMERO5.3__1",
//    "created_utc": "2026-11-25T13:45:00Z", "size_bytes": 123,
//    "sha256": "<hex of the file, or of its .sha256 sidecar for a directory>",
//    "extension_installed": false, "toc_entries": 1234, "purpose": "backup"|"to-utf8"|"import",
//    made by backup or db to-utf8 also:
//    "dbpatch_finished": true, "database_size_bytes": 456, "server_version": "15.20",
//    "pg_dump_version": "...", "encoding": "UTF8", "source_encoding": "SQL_ASCII",
//    "host": "...", "port": "5432", "dump_seconds": 1.5, and "jobs": 2 for a directory dump;
//    adopted by backup import also: "imported_from": "<the file as given, resolved>"}]}
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
