// The ids of the steps of `run` and of its `rollback`, as recorded in the state file
// ("steps"[].id, "rollback"."steps"[].id, "failed_step"), shown in the plan and the report and
// accepted by --force-step and OMERO_UPGRADE_FAIL_AFTER_STEP. Every use names one of these, so a
// misspelt step is a compile error; the strings themselves are part of the state file format and
// must not change.
#pragma once

namespace ou::run {

// The steps of a run, in plan order (run_plan.cpp builds them; run_steps.cpp holds each one's
// definition, what it records and how it is undone).
namespace step_id {
constexpr const char *check = "check";
constexpr const char *precheck = "precheck";
constexpr const char *tree_listing = "tree-listing";
constexpr const char *backup = "backup";
constexpr const char *server_stop = "server-stop";
constexpr const char *binaries_install = "binaries-install";
constexpr const char *db_upgrade = "db-upgrade";
constexpr const char *db_verify = "db-verify";
constexpr const char *orphans = "orphans";
constexpr const char *colors = "colors";
constexpr const char *wells = "wells";
constexpr const char *vacuum_full = "vacuum-full";
constexpr const char *cache_clear = "cache-clear";
constexpr const char *upgrade_check_off = "upgrade-check-off";
constexpr const char *environment = "environment";
constexpr const char *server_start = "server-start";
constexpr const char *diagnostics = "diagnostics";
} // namespace step_id

// The steps of a rollback (run_undo.cpp's plan_rollback), in order.
namespace rollback_step_id {
constexpr const char *stop = "stop";
constexpr const char *binaries_rollback = "binaries-rollback";
constexpr const char *db_name = "db-name";
constexpr const char *restore = "restore";
constexpr const char *start = "start";
constexpr const char *status = "status";
} // namespace rollback_step_id

} // namespace ou::run

// ---- each step in one place (run_steps.cpp) -------------------------------------------------
// Per step, in plan order: its definition (StepDef: title, command, what it touches, offline,
// needs_backup), what it records in the run state when it starts and once it is done, and what
// it did and how that is undone alone (the report's "did" and "undo alone" lines). The
// preconditions the plan checks are in run_preflight.cpp (checked_steps(), step_preconditions),
// how a whole run is rolled back in run_undo.cpp (plan_rollback: from the live installation,
// not per step).
#include "run_plan.hpp"
#include "run_state.hpp"
#include "run_undo.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ou::run {

// The arguments of this attempt of a step (Executor::command): its recorded command, except a
// backup an earlier attempt made, which is verified (backup verify) and kept.
std::vector<std::string> step_command(const nlohmann::json &state, const nlohmann::json &step);
// Steps marked internal (Executor::internal): tree-listing.
ChildOutcome run_internal_step(const nlohmann::json &state, const nlohmann::json &step);
// "" when a verified backup is recorded and its file is still the one verified (read once per
// process); else why not (every step marked needs_backup is refused then).
std::string backup_missing(const nlohmann::json &state);
// What a step records in the state when it starts (Executor::on_start) and once it is done
// (Executor::on_done).
void record_step_start(nlohmann::json &state, nlohmann::json &step);
void record_step_done(nlohmann::json &state, nlohmann::json &step, const ChildOutcome &o);
// A non-zero exit that is the step's verdict rather than a failure (Executor::accept).
bool step_accepts(const nlohmann::json &step, const ChildOutcome &o);

} // namespace ou::run
