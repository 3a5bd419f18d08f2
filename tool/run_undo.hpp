// What a rollback of a recorded run would undo, decided from the live installation
// (installation.hpp), never from the record alone: only what changed is undone. Used by
// `rollback` (its steps), `status` (what a rollback would restore) and the run's report (which of
// "continue" and "roll back" fits).
#pragma once

#include "installation.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ou::run {

struct RollbackPlan {
    bool has_backup = false;   // the run recorded a verified backup
    bool switched = false;     // OMERO.server points elsewhere than the run's old tree
    bool db_changed = false;   // the run's database is not as before the run (version, unfinished, content steps)
    std::string db_now;        // its version now ("" unread)
    bool server_down = false;  // the server is confirmed down (a rollback starts it again)
    std::vector<std::string> reasons;  // one line per thing to undo, or why nothing is to be undone
    nlohmann::json steps = nlohmann::json::array();  // new_step()s, in order
    bool nothing() const { return !switched && !db_changed && !server_down; }
};

// The run's old tree where it is now: server.old_tree, except for a server directory that was a
// plain directory when the run was planned (old_tree is then the server directory itself):
// binaries install moved it to <dir>-old, so that is the old tree once it is there.
std::string old_tree_now(const nlohmann::json &state);

// What a done step of the run did, in words, and how to undo that step alone (for the report; run_steps.cpp):
// {"", ""} for a step with nothing to tell. Read from the step's recorded result.
struct StepEffect {
    std::string did, undo;
};
StepEffect step_effect(const nlohmann::json &state, const nlohmann::json &step);

// into: the database a restore would create.
RollbackPlan plan_rollback(const nlohmann::json &state, const Installation &m, const std::string &into);

// Which of "continue" and "roll back" fits a run in this state, in words (for the report, status
// and resume): "continue: …" / "roll back: …" for a run that did not complete; for a completed
// run no advice, only "to undo this run: …" (or that there is nothing of it to undo).
std::vector<std::string> advice(const nlohmann::json &state, const RollbackPlan &p);

// The run a rollback undoes: the newest recorded run still in effect that changed something (the
// installation shows its switch or its database change), following the chain of records back from
// the state file (each new run records the one it kept aside in "previous_run": {"run_id",
// "state_file"}). A run rolled back is undone already: the run before it is in effect again, so the
// search goes on to it (a rollback always gets back the state before the last run that changed
// something, run after run). A run that changed nothing (no backup, or nothing of it shows) is
// passed over for the run before it, so a failed run that changed nothing never hides the way back
// to before the last run that did. A run whose rollback has begun ends the search (it is the one to
// finish). Reached past a run rolled back, a run is rolled back only when the installation is as it
// left it (its new tree, the database that rollback gave back, at the version it left), its backup
// and its old tree still there; otherwise `refusal` says why.
struct RollbackTarget {
    std::string path;          // the record of the run to roll back
    nlohmann::json state;      // that record
    std::vector<std::pair<std::string, nlohmann::json>> passed;  // newer records passed over (path, record)
    // The run has something to undo (it changed something, or its rollback has begun): a
    // rollback falls back to it only then.
    bool undoable = false;
    bool crossed = false;      // a newer run passed over was rolled back (undone), not just unchanged
    // Past a run rolled back: the database that rollback gave back (the one the earlier run's
    // rollback works on, "" = the run's own).
    std::string database;
    std::string gave_back_run;  // the run whose rollback gave it back
    std::string refusal;        // set: the run is the one to undo, but a rollback of it must refuse (why)
    std::string why_none;       // no run to undo: why the search ended ("" when it found one)
    bool fell_back() const { return !passed.empty() && undoable; }
};
RollbackTarget rollback_target(const std::string &state_path, const nlohmann::json &state, const Installation &m);

// The database a rollback of the run works on: state.rollback.database (set when the run is
// rolled back past a later run rolled back, which gave another database back), else the run's own.
std::string run_database(const nlohmann::json &state);

// What a rollback with plan p of the run needs and no longer has (its backup, its old tree): ""
// when all is there.
std::string rollback_missing(const nlohmann::json &state, const RollbackPlan &p);

// A rollback begun and not finished in the chain of records from the state file (a run rolled back
// past the newer records passed over): "" when none, else which and where.
std::string unfinished_rollback_in_chain(const std::string &state_path, const nlohmann::json &state);

// The record kept aside before this one (its "previous_run", else, for records written before
// there was one, the newest .<run id> record beside the state file state_path (the main one)
// older than it): path, or "".
std::string previous_record(const std::string &state_path, const nlohmann::json &state);

// "2:03:11 old (taken 2026-12-02T10:00:00.000Z)" of the run's backup, "" when none.
std::string backup_age(const nlohmann::json &state);

} // namespace ou::run
