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
    bool reassign_owners = false;  // a dump with objects of several roles: give them all to the owner
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

// The objects of the database `db` is connected to that were made after initdb, belong to another
// role than `owner` and are held by no extension: "" or "1 functions of x, 2 relations of y".
// A dump of such a database is refused by restore_into (unless reassign_owners).
std::string objects_not_owned_by(Db &db, const std::string &owner);
// The extensions installed in it that only a superuser may create (superuser, not trusted).
std::vector<std::string> superuser_only_extensions(Db &db);

// Whether an existing database may be taken as db to-utf8's finished copy (run again with
// --switch): not a system or template database, owned by `owner`, used by no other session, and
// every object in it made after initdb belongs to `owner` (extension members aside); otherwise
// CommandError saying which. The caller compares its contents.
void check_reuse_target(const Settings &s, const std::string &name, const std::string &owner);

// Creates (or takes an existing empty UTF8) database and restores the verified dump into it, as
// the new database's owner (README, "Security model"). Before anything is created, the dump's own
// SQL is read: it is refused when its objects belong to other roles than the owner (one other
// role owning everything is taken over, unless the owner is a superuser; several need
// reassign_owners), or when it creates an extension this server lacks, or one only a superuser may
// create and the connecting role is none (then the tool creates it first, from this server's
// files, in the new database while no one else may connect). On PostgreSQL before 15 a dump that
// changes schema public's privileges gets public owned by the owner first, so the changes apply.
// A database created here is dropped again if the restore fails. The dump must have been checked
// with verify_backup first.
RestoreResult restore_into(const Settings &s, const VerifyResult &v, const RestoreOptions &o);

} // namespace ou
