// Bash completion written from the CLI's own command tree (the registry), never kept by hand.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace ou {

// A bash completion script for `omero-upgrade`: for every command path (as words joined by
// spaces), its subcommands and its long and short options; global options everywhere.
std::string bash_completion(const CLI::App &app);

} // namespace ou
