// The preconditions of every step of a run (rights, space, the extension, options), checked by
// the plan while the server still runs: a step that cannot succeed is found before the offline
// window, not inside it (issue 14). `run` and `run --dry-run` refuse with these problems, each
// naming its fix; `--force-step STEP` skips the checks of that step (and passes --force to its
// subcommand when it has one: db vacuum).
#pragma once

#include "run_plan.hpp"
#include "settings.hpp"

#include <string>
#include <vector>

namespace ou::run {

// The step ids whose preconditions the plan checks (the values --force-step accepts).
const std::vector<std::string> &checked_steps();

// Problems of the steps of the plan still to run (pending: their ids) on database db as the
// settings connect (the user every step connects as). sdir: the server directory as given.
std::vector<std::string> step_preconditions(const RunOptions &o, const Settings &s, Db &db, const OmeroDbState &st,
                                            const std::string &sdir, const std::vector<std::string> &pending);

} // namespace ou::run
