// The part of every subcommand's --help that follows one scheme (README, "Design"): its exit
// codes, one example, a pointer to the global options; and the group entries' descriptions.
// Kept in one table so that test 81 can check that every registered command has them.
#pragma once

#include <string>

namespace ou {

struct CommandDoc {
    const char *exit_codes;  // "0 …; 1 …; 2 could not run" (and 3 where it applies)
    const char *example;     // one command line
};

// nullptr for a command not in the table (test 81 fails on it).
const CommandDoc *command_doc(const std::string &name);
// The description of a group entry ("db", "server", …); empty when there is none.
std::string group_description(const std::string &name);
// The footer of a command's --help: exit codes, example, the global options.
std::string help_footer(const std::string &name);
// The value type an option's help shows, by its long name (a positional: "@" and its name) and CLI11's
// type (TEXT, INT): FILE, DIR, ZIP|DIR, DB, VERSION, IDS, N, SECONDS…; "" to keep CLI11's.
// Test 81 fails on a --help that still shows TEXT.
std::string option_type_name(const std::string &name, const std::string &cli11_type);
// An extension's error message or hint in the words of the command line: its SQL calls and
// parameters (CALL omero_colors_convert('argb_to_rgba'), fast => true, omero_colors_rewrite) become
// the subcommands and flags that do the same (colors convert --batches, --fast, --rewrite).
std::string cli_terms(const std::string &text);

} // namespace ou
