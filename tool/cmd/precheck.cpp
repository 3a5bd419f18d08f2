// omero-upgrade precheck [--target V]: is the database ready for the upgrade?
//
// With the extension installed: omero_precheck_report(target), every check of every hop.
// Without it: the server distribution's own sql/psql/<target>/<current>-precheck.sql (a hop
// OMERO ships none for is checked by the tool: PostgreSQL's version, the encoding) through
// psql. Those scripts signal failure only by raising an exception (plain psql would go on and
// exit 0), so psql runs with ON_ERROR_STOP (exit 3 on the exception) and AUTOCOMMIT off (nothing
// outside the script's own BEGIN … ROLLBACK can be committed; the connection's end rolls back),
// and a script that contains COMMIT is refused before it runs.
#include "commands.hpp"
#include "extension_sql.hpp"
#include "extcall.hpp"
#include "fsutil.hpp"
#include "installation.hpp"
#include "process.hpp"
#include "run_plan.hpp"
#include "settings.hpp"

#include <cctype>
#include <regex>
#include <sstream>

namespace ou {

namespace {

struct PrecheckOptions {
    std::string target, new_server;
};

// The script's statements with every string, quoted identifier, comment and dollar-quoted body
// replaced by a space: a plpgsql function's `END;` (or a COMMIT in a comment or string) is not a
// statement of the script, while a top-level END is a COMMIT and must still be found.
std::string sql_statements_only(const std::string &t)
{
    std::string r;
    size_t i = 0, n = t.size();
    auto ident_char = [](char c) { return std::isalnum((unsigned char)c) || c == '_'; };
    while (i < n) {
        char c = t[i];
        if (c == '-' && i + 1 < n && t[i + 1] == '-') {
            size_t e = t.find('\n', i);
            i = e == std::string::npos ? n : e;
            r += ' ';
        } else if (c == '/' && i + 1 < n && t[i + 1] == '*') {
            int depth = 0;  // PostgreSQL block comments nest
            while (i < n) {
                if (t.compare(i, 2, "/*") == 0) {
                    depth++;
                    i += 2;
                } else if (t.compare(i, 2, "*/") == 0) {
                    i += 2;
                    if (--depth == 0)
                        break;
                } else {
                    i++;
                }
            }
            r += ' ';
        } else if (c == '\'' || c == '"') {
            // '' (or "") inside is an escaped quote: the scan simply closes and reopens. E'…' strings
            // also escape with a backslash.
            bool e_string = c == '\'' && i > 0 && (t[i - 1] == 'E' || t[i - 1] == 'e') &&
                            (i == 1 || !ident_char(t[i - 2]));
            size_t j = i + 1;
            while (j < n && t[j] != c)
                j += e_string && t[j] == '\\' ? 2 : 1;
            i = j >= n ? n : j + 1;
            r += ' ';
        } else if (c == '$' && (i == 0 || !ident_char(t[i - 1]))) {
            // $tag$ … $tag$ (tag empty or an identifier not starting with a digit; $1 is a parameter)
            size_t j = i + 1;
            while (j < n && ident_char(t[j]) && !(j == i + 1 && std::isdigit((unsigned char)t[j])))
                j++;
            if (j < n && t[j] == '$') {
                std::string tag = t.substr(i, j - i + 1);
                size_t e = t.find(tag, j + 1);
                i = e == std::string::npos ? n : e + tag.size();
                r += ' ';
            } else {
                r += c;
                i++;
            }
        } else {
            r += c;
            i++;
        }
    }
    return r;
}

int verdict(const std::string &target, const std::vector<std::string> &problems, bool at_target)
{
    out().result()["ready"] = problems.empty();
    out().result()["problems"] = problems;
    if (!problems.empty()) {
        out().say("YOUR DATABASE IS NOT READY FOR UPGRADE TO VERSION " + target + ": " +
                  std::to_string(problems.size()) + " problem(s)");
        return EXIT_PROBLEM;
    }
    out().say(at_target ? "YOUR DATABASE IS ALREADY AT VERSION " + target
                        : "YOUR DATABASE IS READY FOR UPGRADE TO VERSION " + target);
    return EXIT_OK;
}

int with_extension(Db &db, const std::string &target)
{
    out().result()["method"] = "extension";
    const std::string x = ext::require_schema(db);
    Rows r = ext::precheck_report(db, x, target.empty() ? Value() : Value(target));
    std::string resolved = target;
    if (resolved.empty())
        resolved = ext::newest_reachable(db, x).value_or("");
    std::vector<std::string> problems;
    nlohmann::json checks = nlohmann::json::array();
    bool at_target = false;
    for (size_t i = 0; i < r.rows.size(); i++) {
        std::string name = r.str(i, "check_name"), status = r.str(i, "status"), detail = r.str(i, "detail");
        checks.push_back({{"name", name}, {"status", status}, {"detail", detail}});
        if (status == "failed") {
            problems.push_back(name + ": " + detail);
            out().error(name + ": " + detail);
        } else if (status == "warning") {
            out().warn(name + ": " + detail);
        } else {
            out().say("ok       " + name + ": " + detail);
        }
        if (name == "version" && status == "ok" && detail.rfind("already at", 0) == 0)
            at_target = true;
    }
    if (resolved.empty()) {
        // Already at the newest version: omero_upgrade_path() is empty.
        resolved = ext::db_version(db, x).value_or("");
    }
    out().result()["target"] = resolved;
    out().result()["checks"] = checks;
    return verdict(resolved, problems, at_target);
}

int with_script(const Settings &s, Db &db, const OmeroDbState &st, const std::string &target,
                const std::string &scripts_dir)
{
    out().result()["method"] = "script";
    out().result()["target"] = target;
    if (!st.finished) {
        // Never "already at" (nor a script run) on a row an upgrade left unfinished.
        std::string p = "half-upgraded (unfinished): the newest dbpatch row (" + st.version +
                        ") has no finished time: an upgrade script stopped half-way; restore the backup taken "
                        "before it";
        out().error(p);
        return verdict(target, {p}, false);
    }
    if (st.version == target)
        return verdict(target, {}, true);
    // The chain of upgrade scripts the release ships from here to the target. What is really
    // missing, the upgrade script itself, is refused. A path of several hops cannot be prechecked
    // by the release's scripts (each checks that the database is at its hop's source: only the
    // first could run now, and "ready" for the target would claim the later ones): the extension
    // prechecks every hop. A single hop for which the release ships no -precheck.sql (OMERO has
    // none for OMERO5.3__0 → OMERO5.3__1) is checked by the tool for what the prechecks check:
    // the version (above), PostgreSQL's version, the encoding.
    std::string rel = "sql/psql/" + target + "/" + st.version + "-precheck.sql";
    std::string script = scripts_dir + "/" + rel;
    size_t hops = 0;
    try {
        run::NewServer ns = run::inspect_new_server(scripts_dir);
        hops = run::hop_path(ns, st.version, target).size();
    } catch (const CommandError &e) {
        std::string p = "no upgrade script leads from " + st.version + " to " + target + " in " + scripts_dir +
                        " (sql/psql/" + target + "/" + st.version + ".sql, or a chain of them): " + e.what();
        out().error(p);
        return verdict(target, {p}, false);
    }
    out().result()["hops"] = hops;
    std::string text;
    if (hops > 1)
        throw CommandError("no precheck script " + rel + " in " + scripts_dir + " (the extension is not installed; "
                           "the path has " + std::to_string(hops) + " hops, and a release's prechecks can check only "
                           "the first before the upgrade)",
                           "use the server distribution of the target release (--server-dir), or install the "
                           "extension (CREATE EXTENSION omero_upgrade), which prechecks every hop of a longer path");
    if (!read_file(script, text)) {
        out().result()["script"] = nullptr;
        out().say("no -precheck.sql for " + st.version + " → " + target + " in this release (" + rel +
                  ": OMERO ships none for this hop); the tool checks what a precheck would");
        std::vector<std::string> problems;
        int need = pg_prerequisite_of(target);
        if (st.server_version_num < need)
            problems.push_back("PostgreSQL " + st.server_version + " is older than the prerequisite of " +
                               target + " (server_version_num " + std::to_string(need) + ")");
        if (st.encoding != "UTF8")
            problems.push_back("the database's encoding is " + st.encoding + ", OMERO needs UTF8 (omero-upgrade db to-utf8)");
        for (const auto &p : problems)
            out().error(p);
        if (problems.empty())
            out().say("ok       version " + st.version + " (finished), PostgreSQL " + st.server_version + ", encoding UTF8");
        return verdict(target, problems, false);
    }
    out().result()["script"] = script;
    static const std::regex commit(R"((^|;)\s*(COMMIT|END)\s*(TRANSACTION|WORK)?\s*;)",
                                   std::regex::icase | std::regex::multiline);
    if (std::regex_search(sql_statements_only(text), commit))
        throw CommandError(script + " contains a COMMIT: a precheck must change nothing, refusing to run it",
                           "use the precheck script of the official server distribution, unmodified");
    out().step("running " + script + " (changes nothing: it ends in ROLLBACK)");
    PgClient pc = pg_client(conn_for(s, db.params().dbname));  // db.params() holds no password
    ProcOptions po;
    po.env = pc.env;
    // OMERO's script, run with the rights of the connecting role (--db-user postgres): its names
    // resolve in OMERO's schema and pg_catalog only, once OMERO's schema holds no plant.
    po.env.emplace_back("PGOPTIONS", pgoptions_with(omero_code_pgoptions(db, st.schema)));
    po.log_stdout = true;
    po.timeout_s = 0;
    ProcResult r = run_process({"psql", "--no-psqlrc", "--no-password", "--quiet", "--no-align", "--tuples-only",
                                "--set=ON_ERROR_STOP=1", "--set=AUTOCOMMIT=off", "--dbname=" + pc.conninfo,
                                "--file=" + script},
                               po);
    std::vector<std::string> problems;
    std::istringstream err(r.err);
    std::string line;
    while (std::getline(err, line)) {
        size_t p = line.find("ERROR:  ");
        if (p != std::string::npos)
            problems.push_back(line.substr(p + 8));
        else if (line.find("NOTICE:  ") != std::string::npos)
            out().detail(line.substr(line.find("NOTICE:  ")));
    }
    if (r.exit_code == 3 || (r.ok() && !problems.empty())) {
        for (const auto &p : problems)
            out().error(p);
        if (problems.empty())
            problems.push_back("the precheck script stopped with an error: " + r.err_tail(2));
        return verdict(target, problems, false);
    }
    if (!r.ok())
        throw CommandError("psql could not run the precheck (" + r.describe() + "): " + r.err_tail(3));
    std::string ready = "YOUR DATABASE IS READY FOR UPGRADE TO VERSION";
    if (r.out.find(ready) == std::string::npos)
        return verdict(target, {"the precheck script ended without saying the database is ready"}, false);
    return verdict(target, {}, false);
}

void add_precheck_options(CLI::App &sub, PrecheckOptions &o)
{
    sub.add_option("--target", o.target,
                   "target database version, e.g. OMERO5.4__0 (default: the newest in the server's "
                   "sql/psql, else the newest known)");
    sub.add_option("--new-server", o.new_server,
                   "the release to upgrade to (its zip or directory): its newest version is the target "
                   "and, without the extension, its -precheck.sql scripts are run");
}

int run_precheck(const PrecheckOptions &o, Context &ctx)
{
    Settings &s = ctx.settings();
    Db *db = &ctx.db();
    OmeroDbState st = read_omero_state(*db);
    if (!st.is_omero) {
        out().error("database " + st.dbname + " has no dbpatch rows: not an OMERO database");
        out().result() = {{"ready", false}, {"problems", {"not an OMERO database"}}};
        return EXIT_PROBLEM;
    }
    out().result()["current"] = st.version;
    out().result()["current_finished"] = st.finished;
    auto t = resolve_upgrade_target(s, st, o.target, o.new_server);
    out().result()["target_source"] = t->source;
    if (!t->no_newer.empty()) {
        out().error(t->no_newer);
        out().hint("give --new-server DIR|ZIP, the release to upgrade to (or --target VERSION)");
        out().result()["ready"] = false;
        out().result()["target"] = nullptr;
        out().result()["problems"] = {t->no_newer};
        return EXIT_PROBLEM;
    }
    if (!st.extension_version.empty())
        return with_extension(*db, t->version);
    if (t->version.empty())
        throw CommandError("no target version: no sql/psql/OMERO* folder in " + s.server_dir +
                               " and the extension is not installed",
                           "give --new-server DIR|ZIP of the release to upgrade to (or --target OMEROx.y__z)");
    return with_script(s, *db, st, t->version, t->scripts_dir);
}

} // namespace

CommandRun setup_precheck(CLI::App &sub)
{
    return command_setup<PrecheckOptions, add_precheck_options, run_precheck>(sub);
}

} // namespace ou
