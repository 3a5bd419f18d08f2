// The plan of `omero-upgrade run`: its options, what the new server distribution holds (a zip or
// a directory), the upgrade hops from its sql/psql, and the ordered list of steps, each the
// command line of one of this tool's own subcommands.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace ou {
class ArchiveFile;
}

namespace ou::run {

struct RunOptions {
    std::string new_server;      // NEW.zip or NEW_DIR (absolute)
    std::string backup_dir;      // absolute
    std::string target;          // database version to reach ("" = newest of the new server)
    int jobs = 0;                // backup -j
    bool orphans = false;        // delete orphaned annotations (archived, restorable)
    std::string colors;          // "" | "all" | "1,2,3" | "@FILE"
    std::string wells;           // "" | "all" | "screen:IDS" | "plate:IDS" | "well:IDS"
    bool vacuum_full = false;
    bool carry_scripts = false;  // binaries install --carry-scripts
    int stop_timeout = 0;        // server stop --timeout (0: its default)
    std::vector<std::string> force_steps;  // --force-step: the plan does not check their preconditions
    bool no_space_check = false;  // --no-space-check: passed to check and backup; the plan warns only
    std::string site_sql;        // db upgrade --site-sql DIR (absolute; "" = none)
    bool online = false;          // --online: db-verify, orphans and colors after server-start, OMERO up

    nlohmann::json to_json() const;
    static RunOptions from_json(const nlohmann::json &j);
};

// What a server distribution (zip or directory) holds, read without extracting it.
struct NewServer {
    std::string path;
    bool is_archive = false;
    std::string top_dir;                        // archive: its single top directory
    unsigned long long bytes = 0;               // archive: uncompressed size; dir: size on disk
    unsigned long long archive_bytes = 0;       // archive: its file size
    std::vector<std::pair<std::string, std::string>> hops;  // (from, to) of sql/psql/<to>/<from>.sql
    std::vector<std::string> prechecks;        // "<to>/<from>" with a -precheck.sql
    std::string newest;                         // newest version folder of sql/psql
    std::shared_ptr<ArchiveFile> archive;       // archive: the open file that was checked
};
// Throws CommandError when it is neither a readable archive nor a server directory.
NewServer inspect_new_server(const std::string &path);

// Copies the hop scripts of the new server (sql/psql/<to>/<from>.sql and <from>-precheck.sql,
// every version folder) into dir: what `precheck` reads before the new server is installed (the
// chain's first hop, its precheck if the release ships one).
void extract_prechecks(const NewServer &ns, const std::string &dir);

// Shortest chain of hops from → to among the scripts present (ties: through the newest
// versions); empty when from == to; throws CommandError when there is none.
std::vector<std::pair<std::string, std::string>> hop_path(const NewServer &ns, const std::string &from,
                                                           const std::string &to);

// How run tells the new server from the tree OMERO.server runs now (README, "omero-upgrade run":
// binaries-only upgrades). Its release name: a zip's top directory, a directory's own name after
// symlinks (OMERO.server-5.6.3); the current tree's is its resolved directory's name.
std::string release_name(const NewServer &ns);
// "" when the new server is another release than the tree `tree` (resolved); else why it is that
// tree: the same directory, or a distribution of the same release (same name, same newest
// sql/psql version), which binaries install would unpack onto the tree itself.
std::string same_release(const NewServer &ns, const std::string &tree);
// "" unless both names read as OMERO.server-X.Y.Z and the new one is older than the tree's.
std::string older_release(const NewServer &ns, const std::string &tree);

// Which way a step uses the server directory.
enum class StepDir { Server, Preview };

struct StepDef {
    std::string id, title;
    std::vector<std::string> command;  // the subcommand and its arguments (after the globals)
    std::string touches;               // what it reads/changes, for the plan
    bool offline = false;              // runs with the server stopped
    bool needs_backup = false;         // refused until a verified backup is recorded
    StepDir dir = StepDir::Server;
    bool internal = false;             // done by run itself, not a child
};

// The ordered steps (README, "omero-upgrade run"), built in run_steps.cpp beside what each
// records and how it is undone. db_hops false (a binaries-only upgrade: the
// database is at the target already): no db-upgrade step unless there is site SQL to apply.
std::vector<StepDef> build_steps(const RunOptions &o, const std::string &target, bool db_hops = true);

} // namespace ou::run
