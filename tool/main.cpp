// omero-upgrade: the file-system and process steps of the OMERO.server upgrade.
// Global options and dispatch live here; each subcommand is its own file (tool/<name>.cpp).
#include "common.hpp"
#include "db.hpp"

#include <iostream>
#include <map>
#include <tuple>

#ifndef OMERO_UPGRADE_VERSION
#define OMERO_UPGRADE_VERSION "dev"
#endif

int main(int argc, char **argv)
{
    using namespace ou;
    CLI::App app{"omero-upgrade: upgrade an OMERO.server and its PostgreSQL database safely, step by step.\n"
                 "Exit codes: 0 ok, 1 a problem was found, 2 could not run."};
    app.set_version_flag("--version", std::string("omero-upgrade ") + OMERO_UPGRADE_VERSION);
    app.require_subcommand(0, 1);
    app.fallthrough();

    GlobalOptions &g = global_options();
    app.add_flag("--json", g.json, "print one JSON object on stdout instead of human output");
    app.add_flag("-v,--verbose", g.verbose, "show details");
    app.add_flag("-q,--quiet", g.quiet, "show only warnings and errors");
    app.add_option("--log-file", g.log_file, "append a log of everything done to this file");
    app.add_option("--server-dir", g.server_dir, "OMERO.server directory (default: $OMERODIR, else ./OMERO.server)");
    app.add_option("--db-host", g.db_host, "database host (overrides omero.db.host)");
    app.add_option("--db-port", g.db_port, "database port (overrides omero.db.port)");
    app.add_option("--db-name", g.db_name, "database name (overrides omero.db.name)");
    app.add_option("--db-user", g.db_user, "database user (overrides omero.db.user); the password comes from "
                                           "config.xml, PGPASSWORD or ~/.pgpass, never from the command line");

    // Subcommands: "backup" is a command of its own; "backup list" (a space in the name) is nested
    // below "backup", which is created on demand when no file registers it ("db to-utf8" → "db").
    std::map<std::string, CLI::App *> parents;
    std::vector<std::tuple<std::string, CLI::App *, CommandRun>> runs;
    for (auto &spec : commands()) {
        std::string name = spec.name;
        if (name.find(' ') != std::string::npos)
            continue;
        CLI::App *sub = app.add_subcommand(name, spec.help);
        sub->fallthrough();
        parents[name] = sub;
        runs.emplace_back(name, sub, spec.setup(*sub));
    }
    for (auto &spec : commands()) {
        std::string name = spec.name;
        size_t sp = name.find(' ');
        if (sp == std::string::npos)
            continue;
        std::string parent = name.substr(0, sp);
        if (!parents.count(parent)) {
            parents[parent] = app.add_subcommand(parent, parent + " subcommands");
            parents[parent]->fallthrough();
            parents[parent]->require_subcommand(1);
        }
        CLI::App *sub = parents[parent]->add_subcommand(name.substr(sp + 1), spec.help);
        sub->fallthrough();
        // Nested subcommands are tried first, so that "backup list" does not run "backup".
        runs.emplace(runs.begin(), name, sub, spec.setup(*sub));
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        return app.exit(e) == 0 ? EXIT_OK : EXIT_ERROR;
    }
    if (g.verbose && g.quiet) {
        std::cerr << "error: -v and -q exclude each other\n";
        return EXIT_ERROR;
    }

    for (auto &[name, sub, run] : runs) {
        if (!sub->parsed())
            continue;
        out().begin(g, name);
        install_interrupt_handler();
        try {
            return out().finish(run());
        } catch (const CommandError &e) {
            out().error(e.what());
            if (!e.hint.empty())
                out().say("hint: " + e.hint);
            return out().finish(EXIT_ERROR);
        } catch (const std::exception &e) {
            out().error(std::string("internal error: ") + e.what());
            return out().finish(EXIT_ERROR);
        }
    }
    std::cout << app.help();
    return EXIT_OK;
}
