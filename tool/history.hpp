// The history of every change the tool makes (hops, site SQL steps, backups, restores, binaries
// swaps, rollbacks; the extension records its own orphan, colour and wells runs). Where it lives
// (README "omero-upgrade history"):
//   - in the database, table omero_upgrade.history, when the omero_upgrade extension (1.2 or
//     later) is installed there;
//   - otherwise in .omero-upgrade-history.json (0600) beside the run state file (the parent of
//     the server directory as given), entries of the same shape.
// `omero-upgrade history` lists both, merged by time, each entry saying where it is kept.
#pragma once

#include "db.hpp"
#include "settings.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace ou {

struct HistoryEntry {
    std::string kind;  // hop, site-sql, backup, restore, binaries-install, binaries-rollback, rollback
    std::string what;
    std::optional<std::string> from_version, to_version;
    nlohmann::json checksums = nlohmann::json::object();  // {"file": "<sha256>"}
    nlohmann::json details = nlohmann::json::object();
};

// The private history file for the server directory as given (s.options).
std::string history_file(const Settings &s);


// Tells the extension who runs the tool (session settings omero_upgrade.os_user and
// omero_upgrade.host), so that its own records of runs made through this connection name them.
void identify_session(Db &db);

// Records e in db's history table when it has one, else in the private file (database: db's
// name, or dbname). Never fails the caller's action: a record that cannot be written is a
// warning. db may be null (then: the private file, beside the server directory of s).
void record_history(const Settings &s, Db *db, const HistoryEntry &e, const std::string &dbname = "");

// The same, connecting to the settings' database (dbname: another one) when it can.
void record_history(const Settings &s, const HistoryEntry &e, const std::string &dbname = "");

} // namespace ou
