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
