// Site SQL steps (`db upgrade --site-sql DIR`, `run --site-sql DIR`): a site's own *.sql files,
// applied in name order after the official hops, each once, each in its own transaction (psql
// -1 -v ON_ERROR_STOP=1, as the OMERO database user), recorded with the SHA-256 of the exact
// bytes psql ran. A recorded file whose content changed is refused (like Flyway's validate).
//
// Records: the table omero_upgrade.site_sql when the extension (1.2 or later) is installed,
// written in the same transaction as the file; otherwise the private file
// .omero-upgrade-site-sql.json (0600) beside the run state file (the parent of the server
// directory as given), keyed by database. Both are read, so a file recorded before the extension
// was installed is not applied again after.
#pragma once

#include "db.hpp"
#include "settings.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ou {

struct SiteFile {
    std::string name;     // file name in DIR (the key of its record)
    std::string path;     // DIR/name
    std::string content;  // the bytes read once: hashed and given to psql
    std::string sha256;
    // "pending" (to apply), "applied" (recorded with this checksum), "changed" (recorded with
    // another checksum: refused), "refused" (not applied, and it includes another file: problem)
    std::string status;
    std::string problem;    // why a file is refused
    nlohmann::json record;  // the record when there is one
};

struct SitePlan {
    std::string dir;
    std::string store;      // "extension" (omero_upgrade.site_sql) | "file"
    std::string store_file; // the private file (also read when store is "extension")
    std::vector<SiteFile> files;
    std::vector<std::string> recorded_missing;  // recorded names with no file in DIR (warned)
    size_t pending() const;
    size_t changed() const;
    size_t refused() const;
    size_t blocking() const { return changed() + refused(); }  // any: nothing may run
    nlohmann::json to_json() const;
};

// The *.sql regular files of dir in name order (bytes), read and hashed; throws CommandError
// when dir is not a readable directory or a file cannot be read.
// The plan: every file with its status against the records of the database db is connected to.
SitePlan plan_site_sql(const Settings &s, Db &db, const std::string &dir);

// A psql include (\i, \ir, \include, \include_relative) in a site file: "line N: TEXT", or "".
// What it includes would run without being part of the file's checksum, so such a file is
// refused before anything runs.
std::string find_psql_include(const std::string &content);

// Prints the plan's lines ("site SQL 010_lsid.sql: apply (sha256 …)", "… already applied …",
// refusals with both checksums) and warnings. Returns false when a file changed or is refused.
bool show_site_plan(const SitePlan &p, bool dry_run);

// Applies the pending files in order, as the OMERO database user; returns the JSON of what was
// applied. Throws CommandError (exit 2) at the first failure, naming the file; psql's error is in
// the message, the file's transaction was rolled back and nothing of it recorded.
nlohmann::json apply_site_sql(const Settings &s, Db &db, SitePlan &p, const std::string &db_version,
                              const std::string &scripts_dir);

} // namespace ou
