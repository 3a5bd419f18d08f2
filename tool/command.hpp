// One shape for every subcommand, and what the driver gives it (git's builtin table, README
// "Design"): a command is an options struct, an add_<x>_options(CLI::App&, XOptions&) and a
// run_<x>(const XOptions&, Context&); the one table of commands (tool/cmd/commands.cpp) says
// what each needs (NeedConfig, NeedDb, NeedExtension, NeedOmeroBin), and the driver (main.cpp)
// builds the Context that provides it. No command reads a process-wide global.
#pragma once

#include "common.hpp"
#include "settings.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ou {

// What a command needs from the driver. Each flag implies the ones it is built on.
enum Need : unsigned {
    NeedNothing = 0,
    NeedSettings = 1u << 0,                    // the OMERO settings (config.xml when there is one)
    NeedConfig = (1u << 1) | NeedSettings,     // the same, config.xml required (an error without)
    NeedDb = (1u << 2) | NeedSettings,         // a connection to the settings' database
    NeedExtension = (1u << 3) | NeedDb,        // the omero_upgrade extension in that database
    NeedOmeroBin = (1u << 4) | NeedSettings,   // an executable bin/omero in the server directory
};

// What a command runs with. Built by the driver from the command line's global options and the
// command's needs; each piece is made on first use and once (so a command's own checks of its
// arguments still come before "no config.xml" or "no connection", as before), and asking for a
// piece the table does not declare is an internal error (the table stays true).
class Context {
public:
    Context(const GlobalOptions &global, unsigned needs, std::string command);

    const GlobalOptions &global() const { return global_; }
    Output &output() const { return out(); }
    const std::string &command() const { return command_; }
    // Whether the command's table entry declares need (for optional pieces: NeedConfig only
    // for --switch, say, is declared NeedSettings and asked for with settings(true)).
    bool needs(unsigned need) const { return (needs_ & need) == need; }

    // The settings, loaded once (config.xml required when the command needs NeedConfig, or when
    // need_config is given true on the first call).
    Settings &settings(bool need_config = false);
    // The settings read afresh, now (after a step changed config.xml or the server tree); the
    // context's own stay as they were.
    Settings fresh_settings(bool need_config = false) const;
    // The connection to the settings' database, made once.
    Db &db();
    // A new connection to the settings' server (dbname: another database).
    std::unique_ptr<Db> connect(const std::string &dbname = "");
    // The extension's schema, quoted (for qualified calls), looked up once; a clear error when
    // the extension is not installed.
    const std::string &extension_schema();
    // bin/omero checked once to be executable (an error naming the fix when not).
    void require_omero_bin();

private:
    void require(unsigned need, const char *what) const;
    const GlobalOptions &global_;
    unsigned needs_;
    std::string command_;
    std::optional<Settings> settings_;
    std::unique_ptr<Db> db_;
    std::optional<std::string> schema_;
    bool bin_checked_ = false;
};

// A command of the table, as the driver sees it: set-up adds the options to the CLI11
// subcommand and returns the run.
using CommandRun = std::function<int(Context &)>;
using CommandSetup = CommandRun (*)(CLI::App &sub);

struct CommandSpec {
    const char *name;  // "db orphans scan": the words, a space between
    const char *help;
    unsigned needs;    // Need flags
    CommandSetup setup;
};
// The table, in the order of --list-commands and the help (tool/cmd/commands.cpp).
const std::vector<CommandSpec> &commands();

// The one shape: options O filled by Add, run by Run once parsed. setup_x = command_setup<...>.
template <class O, void (*Add)(CLI::App &, O &), int (*Run)(const O &, Context &)>
CommandRun command_setup(CLI::App &sub)
{
    auto o = std::make_shared<O>();
    Add(sub, *o);
    return [o](Context &c) { return Run(*o, c); };
}

} // namespace ou
