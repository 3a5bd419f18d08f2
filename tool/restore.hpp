// Restoring a verified backup into a new UTF8 database (shared by `restore` and `db to-utf8`).
#pragma once

#include "backup.hpp"
#include "settings.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace ou {

struct RestoreOptions {
    std::string into;            // the new database
    std::string owner;           // default: the OMERO database user of config.xml
    int jobs = 0;                // pg_restore -j
    bool skip_extension = false; // leave out omero_upgrade even when the server has it
    std::string expected_version;  // the dbpatch version the restored database must have
};

struct RestoreResult {
    nlohmann::json info;
    bool version_ok = false;
};

// Validates a new database name (non-empty, at most 63 bytes: PostgreSQL would cut it silently).
void check_db_name(const std::string &name);

// Whether the restore may use the database `name`: false when it does not exist (restore_into
// creates it). An existing one is taken only when it is not a system or template database
// (postgres, template0, template1), belongs to `owner`, has no other session, holds no object made
// after initdb (relations, functions, operators, types, schemas, extensions… any OID from 16384 on,
// temporary schemas aside), has no settings of its own, grants CREATE (on itself or on public) to
// no other role, and is UTF8; otherwise CommandError saying which.
bool check_restore_target(const Settings &s, const std::string &name, const std::string &owner);
// The owner the restored database gets: --owner, else the OMERO database user.
std::string restore_owner(const Settings &s, const RestoreOptions &o);

// Creates (or takes an existing empty UTF8) database and restores the verified dump into it.
// A database created here is dropped again if the restore fails. The dump must have been checked
// with verify_backup first.
RestoreResult restore_into(const Settings &s, const VerifyResult &v, const RestoreOptions &o);

} // namespace ou
