// One model of the live installation, read fresh by every command that decides (status, run,
// rollback, server start, precheck): where OMERO.server points, each tree's newest sql/psql
// version, the database the active config.xml names and its dbpatch (version, finished), whether
// the server runs (confirmed as "the server is down" is: bin/omero admin status AND no OMERO
// session on the database), the recorded run and the binaries record. Records say what a command
// did; this says what is there now, and decisions come from it, never from a record alone.
#pragma once

#include "settings.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ou {

// p made absolute without resolving symlinks (OMERO.server is a symlink that a run repoints).
std::string lexical_absolute(const std::string &p);
// The server directory as the user named it (--server-dir, OMERODIR, ./OMERO.server), absolute,
// not resolved.
std::string given_server_dir(const GlobalOptions &g);
// The one default backup directory of every command (backup, backup list, backup import, check,
// db to-utf8, run): omero-upgrade-backups beside the server directory (given_server_dir()).
std::string default_backup_dir(const GlobalOptions &g);
// realpath(p), "" when it does not resolve.
std::string resolved_path(const std::string &p);
// The newest OMERO version folder of TREE/sql/psql (OMERO5.4__0), "" when there is none.
std::string tree_newest_version(const std::string &tree);

enum class ServerRun {
    Running,      // bin/omero admin status: exit 0
    Down,         // confirmed: bin/omero says down and no OMERO session is on the database
    Unconfirmed,  // bin/omero says down, but OMERO sessions remain on the database
    Unknown,      // no bin/omero, it did not answer, or the database could not be asked
};
const char *server_run_name(ServerRun r);  // "running" | "down" | "unconfirmed" | "unknown"

struct Installation {
    GlobalOptions options;    // the command line's global options it was read with
    std::string server_dir;   // as given, absolute, not resolved
    std::string kind;         // "symlink" | "directory" | "dangling" | "missing"
    std::string link_target;  // readlink(server_dir) when a symlink
    std::string tree;         // what server_dir resolves to
    std::string tree_newest;  // newest version of the tree's sql/psql
    bool has_bin = false;     // executable bin/omero

    std::string config_path;  // the active config.xml (through server_dir)
    bool config_found = false;
    std::string db_name, db_host, db_port, db_user;  // what the settings resolve to

    bool db_read = false;     // the database answered
    std::string db_error;     // why not
    OmeroDbState db;

    ServerRun server = ServerRun::Unknown;
    std::string server_how;   // what said so
    int omero_sessions = -1;  // OMERO's sessions on the database (-1 unknown)

    std::string run_state_path;  // the run record (.omero-upgrade-run.json or --state)
    nlohmann::json run;          // null: none
    std::vector<std::string> earlier_runs;  // kept records beside it (.omero-upgrade-run.json.<id>)
    std::string binaries_state_path;
    nlohmann::json binaries;     // null: none

    // The database the server would run on is not the one its tree's scripts lead to: "" when
    // they agree (finished, version == tree_newest), else why (behind, newer, unfinished, unread).
    std::string mismatch() const;
    bool half_upgraded() const { return db_read && db.is_omero && !db.finished; }
    nlohmann::json to_json() const;
};

struct ReadInstallation {
    bool ask_server = true;  // run bin/omero admin status (and list the database's sessions)
    std::string state_path;  // "" = the default beside the server directory
};
// Reads everything fresh; never throws for what is missing (the model says so), only for a
// malformed config.xml (guessing could mean the wrong database).
Installation read_installation(const GlobalOptions &g, const ReadInstallation &o = {});

// The version and finished flag of another database on the same server (the one a run record
// names, when config.xml now names another): nullopt when it cannot be read.
std::optional<OmeroDbState> read_database(const Settings &s, const std::string &dbname);

} // namespace ou

namespace ou {

// The version an upgrade would reach, as check and precheck (and status) decide it: --target,
// else the newest of --new-server DIR|ZIP, else the newest of the server directory's own sql/psql
// (before the binaries swap that is the CURRENT release: then no newer target is known).
struct UpgradeTarget {
    std::string version;       // "" when none is known
    std::string source;        // "--target" | "--new-server" | "server directory" | ""
    std::string scripts_dir;   // a tree holding sql/psql/<version>/*-precheck.sql ("" none)
    // Set when the target was not named and the database is already at it: the tool cannot know
    // of a newer release, so it must not say "ready" or "already at".
    std::string no_newer;
    ~UpgradeTarget();          // removes a temporary scripts_dir (the prechecks of a zip)
    bool temp = false;
};
// new_server "" = not given. Throws CommandError when new_server is neither a server tree nor an
// archive holding one.
std::unique_ptr<UpgradeTarget> resolve_upgrade_target(const Settings &s, const OmeroDbState &st,
                                                      const std::string &target, const std::string &new_server);

} // namespace ou
