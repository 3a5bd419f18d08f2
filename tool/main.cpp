// omero-upgrade: the file-system and process steps of the OMERO.server upgrade.
// The driver: global options, the CLI11 tree built from the one table of subcommands
// (tool/cmd/commands.cpp), and the Context each command runs with (tool/command.hpp).
#include "command.hpp"
#include "completion.hpp"
#include "db.hpp"
#include "help_text.hpp"
#include "commit.inc"  // OMERO_UPGRADE_COMMIT, written by make

#include <libpq-fe.h>

#include <iostream>
#include <map>
#include <tuple>

#ifndef OMERO_UPGRADE_VERSION
#define OMERO_UPGRADE_VERSION "dev"
#endif
#ifndef OMERO_UPGRADE_COMMIT
#define OMERO_UPGRADE_COMMIT "unknown"
#endif
#ifndef OMERO_UPGRADE_EXTENSION_VERSION
#define OMERO_UPGRADE_EXTENSION_VERSION OMERO_UPGRADE_VERSION
#endif

namespace ou {

namespace {

// --version: the tool, the commit it was built from, the libpq it runs with, the extension it expects.
std::string version_text()
{
    int v = PQlibVersion();  // 160004 → 16.4; before 10: 90624 → 9.6.24
    std::string lib = v >= 100000 ? std::to_string(v / 10000) + "." + std::to_string(v % 10000)
                                  : std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
                                        std::to_string(v % 100);
    return std::string("omero-upgrade ") + OMERO_UPGRADE_VERSION + "\n" + "commit " + OMERO_UPGRADE_COMMIT + "\n" +
           "libpq " + lib + "\n" + "extension omero_upgrade " + OMERO_UPGRADE_EXTENSION_VERSION + " (the version this tool expects)";
}

// --json anywhere before a "--": a parse error is then answered in JSON too.
bool json_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--")
            break;
        if (a == "--json")
            return true;
    }
    return false;
}

// The subcommand words of a command line (for an error's "command"): the longest chain of
// arguments naming subcommands, other arguments skipped.
std::string command_words(const CLI::App &app, int argc, char **argv)
{
    const CLI::App *cur = &app;
    std::string words;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--")
            break;
        if (a.empty() || a[0] == '-')
            continue;
        for (const CLI::App *sub : cur->get_subcommands([](const CLI::App *) { return true; }))
            if (sub->get_name() == a) {
                cur = sub;
                words += (words.empty() ? "" : " ") + a;
                break;
            }
    }
    return words;
}

void add_global_options(CLI::App &app, GlobalOptions &g)
{
    app.add_flag("--json", g.json, "print one JSON object on stdout instead of human output");
    app.add_flag("-v,--verbose", g.verbose, "show details");
    app.add_flag("-q,--quiet", g.quiet, "no progress or chatter: results, warnings, errors and hints only");
    app.add_option("--log-file", g.log_file, "append a log of everything done to this file")->type_name("FILE");
    app.add_option("--server-dir", g.server_dir, "OMERO.server directory (default: $OMERODIR, else ./OMERO.server)")->type_name("DIR");
    // psql's habits: -h host, -p port, -U user, -d name|conninfo|URI; so --help is long only
    // (a psql user's "-h db.example.org" reaches a host, never prints the help).
    app.add_option("-h,--db-host", g.db_host, "database host or socket directory (overrides omero.db.host)")->type_name("HOST");
    app.add_option("-p,--db-port", g.db_port, "database port (overrides omero.db.port)")->type_name("PORT");
    app.add_option("-d,--dbname,--db-name", g.db_name,
                   "database name, or a conninfo string (\"host=… port=… dbname=… user=…\", service=…) or a "
                   "postgresql:// URI, expanded as psql does: its fields win over -h/-p/-U (overrides omero.db.*)")
        ->type_name("NAME|CONNINFO|URI");
    app.add_option("-U,--db-user", g.db_user, "database user (overrides omero.db.user); the password comes from "
                                              "config.xml, PGPASSWORD or ~/.pgpass (PGPASSFILE), never from the command line")
        ->type_name("USER");
}

// The parsed subcommand's words, CLI11 node, run and needs, nested ones first.
using Runs = std::vector<std::tuple<std::string, CLI::App *, CommandRun, unsigned>>;

Runs add_commands(CLI::App &app)
{
    // Subcommands: "backup" is a command of its own; "backup list" (a space in the name) is nested
    // below "backup", which is created on demand when no file registers it ("db to-utf8" → "db").
    std::map<std::string, CLI::App *> parents;
    Runs runs;
    for (auto &spec : commands()) {
        std::string name = spec.name;
        if (name.find(' ') != std::string::npos)
            continue;
        CLI::App *sub = app.add_subcommand(name, spec.help);
        sub->fallthrough();
        sub->footer(help_footer(name));
        parents[name] = sub;
        runs.emplace_back(name, sub, spec.setup(*sub), spec.needs);
    }
    // A group ("db", "db orphans"): created on demand, below its own parent, with its description.
    std::function<CLI::App *(const std::string &)> group = [&](const std::string &path) -> CLI::App * {
        auto it = parents.find(path);
        if (it != parents.end())
            return it->second;
        size_t sp = path.rfind(' ');
        CLI::App *up = sp == std::string::npos ? &app : group(path.substr(0, sp));
        std::string what = group_description(path);
        CLI::App *gr = up->add_subcommand(sp == std::string::npos ? path : path.substr(sp + 1),
                                          what.empty() ? path + " subcommands" : what);
        gr->fallthrough();
        gr->footer("Exit codes: 2 without a subcommand; each subcommand's --help shows its own.\n"
                   "Global options (--json, -v, -q, --log-file, --server-dir, -h/-p/-d/-U): see omero-upgrade --help.");
        gr->require_subcommand(1);
        parents[path] = gr;
        return gr;
    };
    for (auto &spec : commands()) {
        std::string name = spec.name;
        size_t sp = name.rfind(' ');
        if (sp == std::string::npos)
            continue;
        CLI::App *sub = group(name.substr(0, sp))->add_subcommand(name.substr(sp + 1), spec.help);
        sub->fallthrough();
        sub->footer(help_footer(name));
        // Nested subcommands are tried first, so that "backup list" does not run "backup".
        runs.emplace(runs.begin(), name, sub, spec.setup(*sub), spec.needs);
    }
    return runs;
}

// Value types in the help: what is expected (FILE, DIR, DB, VERSION, IDS…), never CLI11's TEXT.
void name_types(CLI::App &a)
{
    for (CLI::Option *o : a.get_options()) {
        if (o->get_items_expected_max() == 0)
            continue;
        std::string t = o->get_type_name();
        std::string base = t.substr(0, t.find(':'));
        std::string n = o->get_lnames().empty() ? "@" + o->get_name() : o->get_lnames().front();
        std::string want = option_type_name(n, base);
        if (!want.empty() && want != base)
            o->type_name(want);
    }
    for (CLI::App *sub : a.get_subcommands([](CLI::App *) { return true; }))
        name_types(*sub);
}

// --help-all (the man page): this help, then every subcommand's.
void print_help_all(const CLI::App &app)
{
    std::cout << app.help();
    std::function<void(const CLI::App &, const std::string &)> walk = [&](const CLI::App &a,
                                                                           const std::string &path) {
        for (const CLI::App *sub : a.get_subcommands([](const CLI::App *s) { return !s->get_group().empty(); })) {
            std::string p = path + " " + sub->get_name();
            std::cout << "\n" << p << "\n" << sub->help();
            walk(*sub, p);
        }
    };
    walk(app, "omero-upgrade");
}

// Runs the parsed subcommand with the Context its needs say; nullopt when none was parsed.
std::optional<int> run_parsed(Runs &runs, const GlobalOptions &g)
{
    for (auto &[name, sub, run, needs] : runs) {
        if (!sub->parsed())
            continue;
        out().begin(g, name);
        install_interrupt_handler();
        try {
            // What the table says the command needs, made on first use (tool/command.hpp).
            Context ctx(g, needs, name);
            return out().finish(run(ctx));
        } catch (const CommandError &e) {
            // The extension speaks SQL (CALL …, fast => true); the tool's user types flags.
            bool from_server = dynamic_cast<const DbError *>(&e) != nullptr;
            out().error(from_server ? cli_terms(e.what()) : e.what());
            if (!e.hint.empty())
                out().hint(from_server ? cli_terms(e.hint) : e.hint);
            return out().finish(e.code);
        } catch (const std::exception &e) {
            out().error(std::string("internal error: ") + e.what());
            return out().finish(EXIT_ERROR);
        }
    }
    return std::nullopt;
}

} // namespace

} // namespace ou

int main(int argc, char **argv)
{
    using namespace ou;
    CLI::App app{"omero-upgrade: upgrade an OMERO.server and its PostgreSQL database safely, step by step.\n"
                 "Exit codes (every subcommand): 0 ok; 1 a problem was found or a precondition refused (the server is\n"
                 "running, …); 2 could not run (bad arguments, no connection, missing files, interrupted); 3 not there\n"
                 "yet (db plan, db upgrade --dry-run: hops pending; server status: stopped). With --json, one JSON object\n"
                 "on stdout whatever the outcome. Each subcommand's --help shows its exit codes and an example."};
    app.set_help_flag("--help", "print this help and exit (long only: -h is --db-host, as in psql)");
    app.set_version_flag("--version", version_text(), "print the version, git commit, libpq version and the "
                                                      "extension version it expects, and exit");
    bool want_completion = false;
    app.add_flag("--bash-completion", want_completion, "print a bash completion script and exit")->group("");
    // The man page (help2man --help-option=--help-all): this help, then every subcommand's.
    bool want_help_all = false;
    app.add_flag("--help-all", want_help_all, "print the help of every subcommand and exit")->group("");
    // The registry, one command a line (test 81 walks it: a new command is covered automatically).
    bool want_list = false;
    app.add_flag("--list-commands", want_list, "print every subcommand, one a line, and exit")->group("");
    app.require_subcommand(0, 1);
    app.fallthrough();

    GlobalOptions g;
    add_global_options(app, g);

    Runs runs = add_commands(app);
    name_types(app);

    // A command line that cannot be parsed is still answered in the chosen form: with --json the
    // usual envelope (status "error", exit code 2), named after the subcommand words given.
    auto usage_error = [&](const std::string &msg, bool show_usage) {
        GlobalOptions opts = g;
        opts.json = json_wanted(argc, argv);
        opts.quiet = opts.verbose = false;
        std::string words = command_words(app, argc, argv);
        out().begin(opts, words);
        out().error(msg);
        if (msg.find("--db-host") != std::string::npos && msg.find("missing") != std::string::npos)
            out().hint("-h is the database host, as in psql (-h HOST); the help is --help");
        out().hint("see omero-upgrade " + (words.empty() ? std::string() : words + " ") + "--help");
        if (show_usage && !opts.json)
            std::cerr << "\n" << app.help();
        return out().finish(EXIT_ERROR);
    };
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        return usage_error(e.what(), false);
    }
    if (want_help_all) {
        print_help_all(app);
        return EXIT_OK;
    }
    if (want_list) {
        for (auto &spec : commands())
            std::cout << spec.name << "\n";
        return EXIT_OK;
    }
    if (want_completion) {
        std::cout << ou::bash_completion(app);
        return EXIT_OK;
    }
    if (g.verbose && g.quiet)
        return usage_error("-v and -q exclude each other", false);

    if (auto rc = run_parsed(runs, g))
        return *rc;
    // No subcommand: the usage, exit 2 (as git does).
    return usage_error("a subcommand is required", true);
}
