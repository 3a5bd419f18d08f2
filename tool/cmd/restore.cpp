// omero-upgrade restore FILE --into NEW_DB [--switch]: the command over tool/restore.hpp.
#include "restore.hpp"
#include "history.hpp"
#include "checksum.hpp"
#include "progress.hpp"

namespace ou {

namespace {

struct Args {
    std::string file;
    RestoreOptions o;
    bool do_switch = false;
} g;

int run_restore()
{
    Settings s = load_settings(g.do_switch);
    if (g.do_switch)
        require_omero_bin(s);
    check_db_name(g.o.into);
    VerifyResult v = verify_backup(g.file);
    if (!v.ok()) {
        for (const auto &p : v.problems)
            out().error(p);
        out().say("refusing to restore " + v.path + ": it failed verification; nothing was created");
        out().result() = {{"file", v.path}, {"problems", v.problems}, {"created", false}};
        return EXIT_PROBLEM;
    }
    if (v.manifest)
        g.o.expected_version = v.manifest->value("dbpatch_version", "");
    else {
        g.o.expected_version = v.dbpatch_version;
        out().warn(v.name + " is not in the manifest of " + v.dir + ": expecting the version its dbpatch data holds, " +
                   v.dbpatch_version);
    }
    out().say("verified " + v.path + " (checksum, " + std::to_string(v.toc.size()) + " entries, dbpatch " +
              v.dbpatch_version + ")");
    RestoreResult r = restore_into(s, v, g.o);
    out().result() = r.info;
    if (!r.version_ok)
        return EXIT_PROBLEM;
    if (g.do_switch) {
        std::string old = s.property("omero.db.name", "omero");
        omero_config_set(s, "omero.db.name", g.o.into);
        out().result()["switched"] = true;
        out().result()["previous_db_name"] = old;
        out().say("switched: omero.db.name is now '" + g.o.into + "' (was '" + old + "'; to go back: bin/omero config set omero.db.name " +
                  shell_quote(old) + ")");
        if (omero_server_running(s).value_or(false))
            out().warn("the OMERO server is running: restart it (bin/omero admin restart) to use '" + g.o.into + "'");
    }
    // In the restored database's history (its own, from the backup, goes on), else the file.
    nlohmann::json sums = nlohmann::json::object();
    if (v.manifest && v.manifest->contains("sha256"))
        sums[v.path] = (*v.manifest)["sha256"];
    // Also in the history of the database the backup was taken of, when it is still there.
    HistoryEntry e{"restore", v.path + " into " + g.o.into, v.dbpatch_version, std::nullopt, sums,
                   {{"into", g.o.into}, {"switched", g.do_switch}, {"from_database", v.dumped_dbname}}};
    record_history(s, e, g.o.into);
    if (!v.dumped_dbname.empty() && v.dumped_dbname != g.o.into) {
        try {
            auto src = connect_db(s, v.dumped_dbname);
            if (has_history_table(*src))
                record_history(src.get(), e);
        } catch (const CommandError &) {
        }
    }
    return EXIT_OK;
}

Register reg({"restore", "restore a verified backup into a new UTF8 database", [](CLI::App &sub) {
                  sub.add_option("FILE", g.file, "the backup (NAME.pgdump or NAME.pgdir)")->required();
                  sub.add_option("--into", g.o.into, "the new database (refused when it exists and is not empty)")->required();
                  sub.add_flag("--switch", g.do_switch, "then point the server at it: bin/omero config set omero.db.name NEW_DB");
                  sub.add_option("-j,--jobs", g.o.jobs, "restore with N parallel jobs")->check(CLI::Range(1, 64));
                  sub.add_option("--owner", g.o.owner, "owner of the new database (default: omero.db.user of config.xml, else omero)");
                  sub.add_flag("--skip-extension", g.o.skip_extension,
                               "leave out the omero_upgrade extension and its state (automatic when the server lacks it)");
                  return [] { return run_restore(); };
              }});

} // namespace

} // namespace ou
