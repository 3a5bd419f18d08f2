// run's report and its rollback recipe: what a run did, step by step (each step's effect and
// its undo alone: run_undo.hpp), the versions read back, the downtime, the schema verdict, the
// warnings, and how to roll back only what changed (or to continue). Printed at the end of every
// run, by run --report, and kept as the JSON result.
#pragma once

#include "common.hpp"
#include "run_undo.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ou::run {

// Every step's warnings, "<step>: <warning>", in step order.
void collect_warnings(const nlohmann::json &state, std::vector<std::string> &w);

// The commands that roll the run back: the one rollback command, and by_hand also the steps it
// takes and the same with PostgreSQL's and OMERO's own tools. plan: only what changed, as the
// installation shows it now (null: all of it).
std::string rollback_commands(const nlohmann::json &state, bool by_hand, const RollbackPlan *plan = nullptr);

// Prints the report of the run recorded in state (the installation read afresh with the global
// options g for the rollback plan) and makes it the JSON result; 0 when the run completed, else 1.
int print_report(const GlobalOptions &g, const nlohmann::json &state);

} // namespace ou::run
