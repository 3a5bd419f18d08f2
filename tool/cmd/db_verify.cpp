// omero-upgrade db verify: does the database's schema conform to the fresh schema of its OMERO
// version? The engine (creation script, scratch database, catalogs, comparison) is
// tool/schema_verify.*; this file is the command: its options, its checks, its output.
#include "commands.hpp"
#include "schema_verify.hpp"

namespace ou {

namespace {

struct DbVerifyOptions {
    SchemaVerifyOptions verify;
};

void add_db_verify_options(CLI::App &sub, DbVerifyOptions &o)
{
    sub.add_option("--new-server", o.verify.new_server,
                   "server directory whose sql/psql/<version>/ creation files to use (default: the server directory)");
}

std::string counts_text(const std::map<std::string, size_t> &n)
{
    std::string t;
    for (const char *k : {"table", "column", "constraint", "index", "sequence", "trigger", "function", "view", "type"}) {
        auto it = n.find(k);
        size_t c = it == n.end() ? 0 : it->second;
        std::string w = k;
        if (c != 1)
            w += w.back() == 'x' ? "es" : "s";
        t += (t.empty() ? "" : ", ") + std::to_string(c) + " " + w;
    }
    return t;
}

int run_db_verify(const DbVerifyOptions &o, Context &ctx)
{
    Settings &s = ctx.settings();
    Db &db = ctx.db();
    OmeroDbState st = read_omero_state(db);
    nlohmann::json &res = out().result();
    res["database"] = st.dbname;
    if (!st.is_omero)
        throw CommandError("the database " + st.dbname + " is not an OMERO database (no dbpatch rows)",
                           "check omero.db.name in " + s.config_path + " or --db-name");
    res["version"] = st.version;
    if (!st.finished) {
        out().error("the newest dbpatch row of " + st.dbname + " (" + st.version + ", message '" + st.message +
                    "') has no finished time: an upgrade stopped half-way (or runs now), so the schema is of no version");
        out().hint("restore the backup taken before the upgrade (omero-upgrade restore), then upgrade again");
        return EXIT_PROBLEM;
    }

    SchemaVerifyResult r = verify_schema(s, db, st.version, o.verify);
    res["creation_dir"] = r.creation_dir;
    res["omero_schema"] = r.omero_schema;
    res["scratch_database"] = r.scratch_database;
    res["scratch_dropped"] = r.scratch_dropped;
    res["build_seconds"] = r.build_seconds;
    res["compared"] = {{"database", r.database_counts}, {"fresh", r.fresh_counts}};
    // What is not compared (README, "omero-upgrade db verify").
    res["ignored"] = {"column order",
                      "owners and privileges",
                      "the names of the two databases",
                      "comments",
                      "data rows (dbpatch, the creation script's initial rows, sequence values)",
                      "statistics",
                      "objects of extensions and the schemas they created (omero_upgrade's state schema among them)",
                      "white space in function and view definitions",
                      "the schema public itself (its objects are compared)"};
    nlohmann::json diffs = nlohmann::json::array();
    std::map<std::string, size_t> by_change;
    for (const auto &d : r.differences) {
        diffs.push_back(difference_json(d));
        by_change[d.change]++;
    }
    res["differences"] = diffs;
    res["conforms"] = r.differences.empty();

    out().say("database " + r.database + " (" + r.version + ") against a fresh " + r.version + " built from " +
              r.creation_dir);
    for (const auto &d : r.differences)
        out().say(difference_line(d));
    std::string compared = "compared " + counts_text(r.fresh_counts);
    if (r.differences.empty()) {
        out().say("the database " + r.database + " conforms to " + r.version + ": no difference; " + compared);
        return EXIT_OK;
    }
    std::string tally;
    for (const char *c : {"missing", "changed", "extra"})
        if (by_change.count(c))
            tally += (tally.empty() ? "" : ", ") + std::to_string(by_change[c]) + " " + c;
    out().say("the database " + r.database + " does not conform to " + r.version + ": " +
              std::to_string(r.differences.size()) + " difference(s) (" + tally + "); " + compared);
    return EXIT_PROBLEM;
}

} // namespace

CommandRun setup_db_verify(CLI::App &sub)
{
    return command_setup<DbVerifyOptions, add_db_verify_options, run_db_verify>(sub);
}

} // namespace ou
