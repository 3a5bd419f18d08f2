// omero-upgrade db to-utf8 --into NEW_DB [--switch]: the upgrade guide's way out of a database
// that is not UTF8, in one command. A verified dump in UTF8 client encoding (kept as a backup,
// recorded in the manifest), a new UTF8 database, the restore, then proof: every table's row
// count and the dbpatch version are equal in both. The original database is never changed;
// --switch points omero.db.name at the new one only when everything matched.
#include "commands.hpp"
#include "backup.hpp"
#include "restore.hpp"

#include <map>

namespace ou {

namespace {

// Row counts of every table outside the system schemas, "schema.table" → count. The server
// quotes the names (format %I), so odd table names cannot break the query.
std::map<std::string, std::string> table_counts(Db &db)
{
    Value sql = db.scalar(
        "SELECT pg_catalog.string_agg(pg_catalog.format('SELECT %L AS t, pg_catalog.count(*) AS n FROM %I.%I',"
        "                                               pg_catalog.concat(n.nspname, '.', c.relname), n.nspname, c.relname),"
        "                             ' UNION ALL ' ORDER BY n.nspname, c.relname) "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
        "WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::pg_catalog.\"char\"[])"
        "  AND n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema']::pg_catalog.name[])"
        "  AND pg_catalog.left(n.nspname::pg_catalog.text, 8) OPERATOR(pg_catalog.<>) 'pg_toast'"
        "  AND pg_catalog.left(n.nspname::pg_catalog.text, 7) OPERATOR(pg_catalog.<>) 'pg_temp'");
    std::map<std::string, std::string> counts;
    if (!sql)
        return counts;
    Rows r = db.query(*sql);
    for (size_t i = 0; i < r.rows.size(); i++)
        counts[r.str(i, "t")] = r.str(i, "n");
    return counts;
}

struct ToUtf8Options {
    std::string into;
    BackupOptions b;
    int jobs = 0;
    bool do_switch = false;
    bool reassign_owners = false;
};

void add_db_to_utf8_options(CLI::App &sub, ToUtf8Options &o)
{
    sub.add_option("--into", o.into, "the new UTF8 database")->required();
    sub.add_flag("--switch", o.do_switch,
                 "then point the server at it: bin/omero config set omero.db.name NEW_DB");
    sub.add_option("--backup-dir", o.b.dir, "where the UTF8 dump is kept (default: omero-upgrade-backups beside the server directory)");
    sub.add_option("-j,--jobs", o.jobs, "dump and restore with N parallel jobs (directory format)")
        ->check(CLI::Range(1, 64));
    sub.add_flag("--no-space-check", o.b.skip_space_check,
                 "try even when free space is below the database size");
    sub.add_flag("--reassign-owners", o.reassign_owners,
                 "objects of other roles in the database become the new database's owner's (refused otherwise)");
}

// "run again with --switch" (the hint of a run without it): the new database is there already.
// When it is a UTF8 OMERO database at the same version, and can be the tool's own copy (the
// owner's, nothing of anyone else in it), it is compared again and switched to, without a second
// dump and restore; anything else there is refused as before.
bool reuse_existing(const ToUtf8Options &o, Context &ctx, Db &db, const OmeroDbState &st)
{
    if (!o.do_switch || !db.scalar("SELECT 1 FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
                                   {o.into}))
        return false;
    Settings &s = ctx.settings(o.do_switch);
    check_reuse_target(s, o.into, restore_owner(s, RestoreOptions{}));
    auto existing = ctx.connect(o.into);
    OmeroDbState est = read_omero_state(*existing);
    if (est.encoding != "UTF8" || !est.is_omero || !est.finished || est.version != st.version)
        return false;
    out().step("'" + o.into + "' exists (UTF8, " + est.version + "): comparing it with '" + st.dbname +
               "' again instead of a new copy");
    return true;
}

// The copy: a verified UTF8 dump (kept as a backup), restored into the new database. EXIT_OK, or
// EXIT_PROBLEM (the dump failed verification, or the restored version differs).
int make_utf8_copy(const ToUtf8Options &o, Settings &s, Db &db, const OmeroDbState &st, bool &extension_left_out)
{
    out().step("converting '" + st.dbname + "' (" + st.encoding + ") into a new UTF8 database '" + o.into + "'");
    BackupOptions bo = o.b;
    bo.encoding = "UTF8";
    bo.purpose = "to-utf8";
    bo.jobs = o.jobs;
    BackupResult b = make_backup(s, db, bo);
    VerifyResult v = verify_backup(b.path);
    if (!v.ok()) {
        for (const auto &p : v.problems)
            out().error(p);
        return EXIT_PROBLEM;
    }
    RestoreOptions ro;
    ro.into = o.into;
    ro.jobs = o.jobs;
    ro.expected_version = st.version;
    ro.reassign_owners = o.reassign_owners;
    RestoreResult r = restore_into(s, v, ro);
    out().result()["backup"] = b.path;
    out().result()["restore"] = r.info;
    extension_left_out = r.info.value("extension_left_out", false);
    return r.version_ok ? EXIT_OK : EXIT_PROBLEM;
}

// Proof: the same tables with the same row counts; the differences, "" when none.
std::vector<std::string> compare_tables(const ToUtf8Options &o, Context &ctx, Db &db, const OmeroDbState &st, bool reuse,
                                        bool extension_left_out)
{
    auto before = table_counts(db);
    auto newdb = ctx.connect(o.into);
    auto after = table_counts(*newdb);
    std::vector<std::string> diffs;
    for (const auto &[t, n] : before) {
        // Left out of the restore (restore --into does so when the new database cannot have the
        // extension); on a reused database, compared only when it has it.
        if ((extension_left_out || (reuse && !after.count(t))) && t.rfind("omero_upgrade.", 0) == 0)
            continue;
        auto it = after.find(t);
        if (it == after.end())
            diffs.push_back(t + ": missing in '" + o.into + "'");
        else if (it->second != n)
            diffs.push_back(t + ": " + n + " rows in '" + st.dbname + "', " + it->second + " in '" + o.into + "'");
    }
    for (const auto &[t, n] : after)
        if (!before.count(t))
            diffs.push_back(t + ": only in '" + o.into + "'");
    out().result()["tables_compared"] = before.size();
    out().result()["differences"] = diffs;
    if (diffs.empty())
        out().say("verified: " + std::to_string(before.size()) + " tables with equal row counts, dbpatch " + st.version);
    return diffs;
}

// --switch: omero.db.name to the new database; else how to.
void switch_or_say(const ToUtf8Options &o, Settings &s, const OmeroDbState &st)
{
    if (o.do_switch) {
        std::string old = s.property("omero.db.name", "omero");
        omero_config_set(s, "omero.db.name", o.into);
        out().result()["switched"] = true;
        out().result()["previous_db_name"] = old;
        out().say("switched: omero.db.name is now '" + o.into + "' (was '" + old + "', left untouched)");
    } else {
        out().say("to use it: bin/omero config set omero.db.name " + shell_quote(o.into) +
                  " (or run again with --switch); '" + st.dbname + "' is untouched");
    }
}

int run_db_to_utf8(const ToUtf8Options &o, Context &ctx)
{
    Settings &s = ctx.settings(o.do_switch);
    if (o.do_switch)
        ctx.require_omero_bin();
    Db &db = ctx.db();
    OmeroDbState st = read_omero_state(db);
    if (!st.is_omero)
        throw CommandError("database " + db.params().describe() + " is not an OMERO database (no dbpatch rows)");
    out().result() = {{"database", st.dbname}, {"encoding", st.encoding}};
    if (st.encoding == "UTF8") {
        out().say("database '" + st.dbname + "' is already UTF8: nothing to do");
        out().result()["converted"] = false;
        return EXIT_OK;
    }
    bool reuse = reuse_existing(o, ctx, db, st);
    if (!reuse)
        check_restore_target(s, o.into, restore_owner(s, RestoreOptions{}));  // refuse early, before the dump
    if (omero_server_running(s).value_or(false))
        out().warn("the OMERO server is running: changes made during the conversion would not be in the new "
                   "database; stop it first (bin/omero admin stop)");
    bool extension_left_out = false;
    if (!reuse && make_utf8_copy(o, s, db, st, extension_left_out) != EXIT_OK)
        return EXIT_PROBLEM;
    out().result()["reused"] = reuse;
    std::vector<std::string> diffs = compare_tables(o, ctx, db, st, reuse, extension_left_out);
    if (!diffs.empty()) {
        for (const auto &d : diffs)
            out().error(d);
        out().say("the new database '" + o.into + "' does not match the original: it was kept for inspection and "
                  "the server was not switched");
        return EXIT_PROBLEM;
    }
    out().result()["converted"] = true;
    switch_or_say(o, s, st);
    return EXIT_OK;
}

} // namespace

CommandRun setup_db_to_utf8(CLI::App &sub)
{
    return command_setup<ToUtf8Options, add_db_to_utf8_options, run_db_to_utf8>(sub);
}

} // namespace ou
