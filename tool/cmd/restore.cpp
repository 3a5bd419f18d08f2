// omero-upgrade restore FILE --into NEW_DB [--switch]: the command over tool/restore.hpp.
#include "commands.hpp"
#include "extension_sql.hpp"
#include "restore.hpp"
#include "history.hpp"
#include "checksum.hpp"
#include "progress.hpp"

namespace ou {

namespace {

struct RestoreCommandOptions {
    std::string file;
    RestoreOptions o;  // --into, --jobs, --owner, --skip-extension
    bool do_switch = false;
};

void add_restore_options(CLI::App &sub, RestoreCommandOptions &o)
{
    sub.add_option("FILE", o.file, "the backup (NAME.pgdump or NAME.pgdir)")->required();
    sub.add_option("--into", o.o.into, "the new database (refused when it exists and is not empty)")->required();
    sub.add_flag("--switch", o.do_switch, "then point the server at it: bin/omero config set omero.db.name NEW_DB");
    sub.add_option("-j,--jobs", o.o.jobs, "restore with N parallel jobs")->check(CLI::Range(1, 64));
    sub.add_option("--owner", o.o.owner, "owner of the new database (default: omero.db.user of config.xml, else omero)");
    sub.add_flag("--skip-extension", o.o.skip_extension,
                 "leave out the omero_upgrade extension and its state (automatic when the server lacks it)");
    sub.add_flag("--reassign-owners", o.o.reassign_owners,
                 "a dump with objects of several roles: they all become the new database's owner's (refused otherwise)");
}

int run_restore(const RestoreCommandOptions &o, Context &ctx)
{
    Settings &s = ctx.settings(o.do_switch);
    if (o.do_switch)
        ctx.require_omero_bin();
    RestoreOptions ro = o.o;
    check_db_name(ro.into);
    VerifyResult v = verify_backup(o.file);
    if (!v.ok()) {
        for (const auto &p : v.problems)
            out().error(p);
        out().say("refusing to restore " + v.path + ": it failed verification; nothing was created");
        out().result() = {{"file", v.path}, {"problems", v.problems}, {"created", false}};
        return EXIT_PROBLEM;
    }
    if (v.manifest)
        ro.expected_version = v.manifest->value("dbpatch_version", "");
    else {
        ro.expected_version = v.dbpatch_version;
        out().warn(v.name + " is not in the manifest of " + v.dir + ": expecting the version its dbpatch data holds, " +
                   v.dbpatch_version);
    }
    out().say("verified " + v.path + " (checksum, " + std::to_string(v.toc.size()) + " entries, dbpatch " +
              v.dbpatch_version + ")");
    RestoreResult r = restore_into(s, v, ro);
    out().result() = r.info;
    if (!r.version_ok)
        return EXIT_PROBLEM;
    if (o.do_switch) {
        std::string old = s.property("omero.db.name", "omero");
        omero_config_set(s, "omero.db.name", ro.into);
        out().result()["switched"] = true;
        out().result()["previous_db_name"] = old;
        out().say("switched: omero.db.name is now '" + ro.into + "' (was '" + old + "'; to go back: bin/omero config set omero.db.name " +
                  shell_quote(old) + ")");
        if (omero_server_running(s).value_or(false))
            out().warn("the OMERO server is running: restart it (bin/omero admin restart) to use '" + ro.into + "'");
    }
    // In the restored database's history (its own, from the backup, goes on), else the file.
    nlohmann::json sums = nlohmann::json::object();
    if (v.manifest && v.manifest->contains("sha256"))
        sums[v.path] = (*v.manifest)["sha256"];
    // Also in the history of the database the backup was taken of, when it is still there.
    HistoryEntry e{"restore", v.path + " into " + ro.into, v.dbpatch_version, std::nullopt, sums,
                   {{"into", ro.into}, {"switched", o.do_switch}, {"from_database", v.dumped_dbname}}};
    record_history(s, e, ro.into);
    if (!v.dumped_dbname.empty() && v.dumped_dbname != ro.into) {
        try {
            auto src = ctx.connect(v.dumped_dbname);
            if (ext::has_history(*src))
                record_history(s, src.get(), e);
        } catch (const CommandError &) {
        }
    }
    return EXIT_OK;
}

} // namespace

CommandRun setup_restore(CLI::App &sub)
{
    return command_setup<RestoreCommandOptions, add_restore_options, run_restore>(sub);
}

} // namespace ou
