// Verified backups (pg_dump), shared by `backup`, `restore`, `db to-utf8` and later `run`.
#pragma once

#include "settings.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <memory>
#include <string>
#include <vector>

namespace ou {

struct BackupOptions {
    std::string dir;                // the backup directory (holds the manifest); "": default_backup_dir()
    int jobs = 0;                   // > 0: directory format, pg_dump -j N
    bool skip_space_check = false;
    std::string encoding;           // pg_dump -E (db to-utf8: UTF8); "" = the database's
    std::string purpose = "backup";
};

struct BackupResult {
    std::string path;
    nlohmann::json entry;  // its manifest entry
};

// The free space a new dump of the database needs in the backup directory dir: twice the last
// dump of the same database recorded in dir's manifest (scaled by how the database grew since,
// when the manifest says its size then), never more than the database's size; the database's
// size when there is no earlier dump. how: the reason, for messages.
struct DumpEstimate {
    unsigned long long needed = 0;
    std::string how;
};
DumpEstimate dump_space_needed(const std::string &dir, const OmeroDbState &st);

// Dumps the database of `db` (connected as s says) into opts.dir: temp name, verify, checksum,
// sync, rename into place, sidecar, manifest. Throws CommandError (nothing left behind) on failure.
BackupResult make_backup(const Settings &s, Db &db, const BackupOptions &opts);

// One entry of pg_restore --list.
struct TocEntry {
    std::string id;      // dump id
    std::string desc;    // "TABLE DATA", "EXTENSION", …
    std::string rest;    // "<desc> <schema> <name> <owner>" as listed
    std::string line;    // the whole line
};

// A dump held open from its first check to its load: every reader (the checksum, pg_restore
// --list, --schema-only, the load itself) reads it as /dev/fd/N, so a file or directory renamed
// or swapped at its path after the checks is never what is loaded.
struct DumpPin {
    int fd = -1;
    DumpPin() = default;
    DumpPin(const DumpPin &) = delete;
    DumpPin &operator=(const DumpPin &) = delete;
    ~DumpPin();
};

struct VerifyResult {
    std::string path, dir, name;
    std::string io;                  // what its readers open: /dev/fd/N of pin (path when unpinned)
    std::shared_ptr<DumpPin> pin;
    std::string format;              // custom | directory
    std::vector<std::string> problems;
    std::vector<TocEntry> toc;
    std::string dbpatch_version;     // read from the dump's dbpatch data
    std::string dumped_dbname;
    std::optional<nlohmann::json> manifest;  // its manifest entry, if any
    bool has_extension_entries = false;      // omero_upgrade extension or its state
    bool ok() const { return problems.empty(); }
};

// Checks a dump: its SHA-256 against the sidecar (when checksum), pg_restore --list reads it, the
// key OMERO tables and their data are in it, the dbpatch data can be read, and the version agrees
// with the manifest. Problems are collected, not thrown; CommandError when it cannot run at all.
VerifyResult verify_backup(const std::string &path, bool checksum = true);

// Refuses (CommandError) a pinned dump that someone other than this user (or root) may change:
// its file, or its directory and each file in it, writable by group or others or owned by
// another user. Changed in place between the checks and the load, it would load unchecked.
void refuse_dump_others_may_write(const VerifyResult &v);

// backup import: adopts a dump made by hand (pg_dump -Fc, or -Fd) into the backup directory dir
// ("": default_backup_dir()): verified as a backup is (pg_restore --list, the key tables, the
// dbpatch data), copied in under a name that is not taken (a custom-format file; a dump already in
// dir is adopted in place), 0600, checksummed (sidecar), recorded in the manifest (purpose
// "import"). Throws CommandError when it is not a readable OMERO dump (nothing left behind).
BackupResult import_backup(const std::string &file, const std::string &dir);  // dir: never ""

// Whether a pg_restore --list line belongs to the omero_upgrade extension (or its state schema).
bool is_extension_toc_line(const std::string &rest);

// Runs pg_restore --list on a dump (throws CommandError on failure).
std::vector<TocEntry> read_toc(const std::string &path, std::string *dbname = nullptr);

// A name made safe for a file name (database names may hold '/', spaces, quotes).
std::string file_safe(const std::string &s);

} // namespace ou
