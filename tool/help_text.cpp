// See help_text.hpp.
#include "help_text.hpp"

#include <map>
#include <regex>
#include <vector>

namespace ou {

namespace {

const char *const E2 = "2 could not run (bad arguments, no connection, missing files, interrupted)";

const std::map<std::string, CommandDoc> &docs()
{
    static const std::map<std::string, CommandDoc> d = {
        {"annotations move-to-wells",
         {"0 done (or nothing to move; a dry run without --apply); 1 a problem was found", "omero-upgrade annotations move-to-wells --plate 1,2"}},
        {"backup", {"0 the backup was made and verified; 1 a precondition refused (e.g. not enough free space)",
                    "omero-upgrade backup --backup-dir /var/backups/omero"}},
        {"backup import", {"0 imported (verified, checksummed, recorded)", "omero-upgrade backup import /tmp/omero.pgdump"}},
        {"backup list", {"0 listed; 1 a recorded backup file is missing", "omero-upgrade backup list --backup-dir /var/backups/omero"}},
        {"backup verify", {"0 the backup is sound; 1 it is not (checksum, table of contents, key tables)",
                           "omero-upgrade backup verify omero-20261125T134500Z.pgdump"}},
        {"binaries install", {"0 installed (or already so); 1 refused: the server is running, or the archive is unsafe",
                              "omero-upgrade binaries install OMERO.server-5.6.3-ice36.zip"}},
        {"binaries rollback", {"0 rolled back; 1 refused: the server is running, or the symlink was changed by hand",
                               "omero-upgrade binaries rollback --dry-run"}},
        {"cache clear", {"0 cleared (or nothing to clear); 1 refused: the server is running, or the cache is not a plain directory",
                         "omero-upgrade cache clear --dry-run"}},
        {"check", {"0 every prerequisite holds (warnings allowed); 1 one failed", "omero-upgrade check --new-server OMERO.server-5.6.3-ice36.zip"}},
        {"colors convert", {"0 converted (or nothing to do); 1 a problem was found (shapes changed by OMERO, or while "
                            "working), or --rewrite refused (other sessions, shapes journaled)",
                            "omero-upgrade colors convert --dry-run"}},
        {"colors revert", {"0 reverted (or nothing to do); 1 a problem was found (shapes changed by OMERO, or while "
                           "working), or --rewrite refused (other sessions, shapes journaled)",
                           "omero-upgrade colors revert --dry-run"}},
        {"colors status", {"0 shown", "omero-upgrade colors status"}},
        {"config upgrade-check", {"0 set (or already so); 1 bin/omero config set did not take", "omero-upgrade config upgrade-check off"}},
        {"db orphans scan", {"0 counted (and listed)", "omero-upgrade db orphans scan --list"}},
        {"db orphans delete", {"0 deleted and archived (or, without --apply, counted)", "omero-upgrade db orphans delete --apply"}},
        {"db orphans restore", {"0 put back (or already restored)", "omero-upgrade db orphans restore --run 1"}},
        {"db to-utf8", {"0 copied into a new UTF8 database (and switched with --switch); 1 a problem was found",
                        "omero-upgrade db to-utf8 --into omero_utf8"}},
        {"db plan", {"0 the database is at the target (nothing to do); 3 hops are pending (listed); 1 the database is half-upgraded or newer",
                     "omero-upgrade db plan --new-server OMERO.server-5.6.3-ice36"}},
        {"db upgrade", {"0 upgraded (or at the target); 3 with --dry-run: hops (or --site-sql files) are pending; 1 refused (the "
                        "server is running, other sessions, a site SQL file changed since applied or refused) or a script or site "
                        "file failed",
                        "omero-upgrade db upgrade --site-sql /etc/omero/site-sql --dry-run"}},
        {"history", {"0 listed (also when nothing is recorded; a database that cannot be read is a warning); 2 the history file is "
                     "not ours", "omero-upgrade history --json"}},
        {"db vacuum", {"0 done; 1 refused (other sessions, not enough free space) or tables were skipped", "omero-upgrade db vacuum --full"}},
        {"db verify", {"0 the schema conforms; 1 it does not (the differences are listed)", "omero-upgrade db verify --new-server OMERO.server-5.6.3-ice36"}},
        {"precheck", {"0 ready for the upgrade; 1 not ready", "omero-upgrade precheck --new-server OMERO.server-5.6.3-ice36.zip"}},
        {"restore", {"0 restored; 1 refused (the target database exists and is not empty)", "omero-upgrade restore --into omero_restored omero-20261125T134500Z.pgdump"}},
        {"rollback", {"0 rolled back (or nothing to undo); 1 a step failed or was refused", "omero-upgrade rollback --dry-run"}},
        {"run", {"0 completed (or nothing to do); 1 a step failed or was refused (resume with --resume)",
                 "omero-upgrade run --new-server OMERO.server-5.6.3-ice36.zip --dry-run"}},
        {"server diagnostics", {"0 shown; 1 bin/omero admin diagnostics failed", "omero-upgrade server diagnostics"}},
        {"server jvmcfg", {"0 shown; 1 bin/omero admin jvmcfg failed", "omero-upgrade server jvmcfg"}},
        {"server start", {"0 started (or already running); 1 it did not start, or refused (the database does not match the server)",
                          "omero-upgrade server start"}},
        {"server status", {"0 running; 3 stopped (as LSB status and pg_ctl status)", "omero-upgrade server status"}},
        {"server stop", {"0 stopped (or already so); 1 it did not stop (OMERO sessions remain)", "omero-upgrade server stop"}},
        {"status", {"0 consistent; 1 a mismatch, an unfinished run or a failed check was found", "omero-upgrade status --new-server OMERO.server-5.6.3-ice36"}},
    };
    return d;
}

} // namespace

const CommandDoc *command_doc(const std::string &name)
{
    auto it = docs().find(name);
    return it == docs().end() ? nullptr : &it->second;
}

std::string group_description(const std::string &name)
{
    static const std::map<std::string, std::string> g = {
        {"annotations", "annotation moves: move-to-wells (Image annotations to their Wells)"},
        {"binaries", "the OMERO.server tree: install a release beside the old one and swap the symlink, or roll back"},
        {"cache", "the server's caches: clear (the Bio-Formats memo files)"},
        {"colors", "shape colours: convert, revert (journaled, resumable) and status"},
        {"config", "OMERO settings the upgrade needs: upgrade-check"},
        {"db", "the database: plan, upgrade, verify, vacuum, orphans, to-utf8"},
        {"db orphans", "orphan annotations (linked to nothing): scan, delete (archived, per batch), restore a delete run"},
        {"server", "the OMERO server process: status, stop, start, diagnostics, jvmcfg"},
    };
    auto it = g.find(name);
    return it == g.end() ? std::string() : it->second;
}

std::string help_footer(const std::string &name)
{
    std::string f = "Exit codes: ";
    if (const CommandDoc *d = command_doc(name))
        f += std::string(d->exit_codes) + "; " + E2 + ".\nExample: " + d->example;
    else
        f += std::string("0 ok; 1 a problem was found; ") + E2 + ".";
    return f + "\nGlobal options (--json, -v, -q, --log-file, --server-dir, -h/-p/-d/-U): see omero-upgrade --help.";
}

std::string cli_terms(const std::string &text)
{
    static const std::vector<std::pair<std::regex, std::string>> subs = {
        {std::regex("CALL omero_colors_convert\\('argb_to_rgba'\\)"), "omero-upgrade colors convert --batches"},
        {std::regex("CALL omero_colors_convert\\('rgba_to_argb'\\)"), "omero-upgrade colors revert --batches"},
        {std::regex("use CALL omero_colors_convert\\(\\.\\.\\.\\)"), "use colors convert|revert --batches"},
        {std::regex("omero_colors_rewrite\\b"), "--rewrite"},
        {std::regex("method 'rewrite'"), "--rewrite"},
        {std::regex("Leave roi_ids, image_ids and shape_ids out, or use method 'batch' or 'auto'\\."),
         "Leave --roi/--image/--shape out, or --rewrite."},
        {std::regex("([Uu])se fast => false \\(the default\\)"), "$1se no --fast (the default)"},
        {std::regex("with fast => false"), "without --fast"},
        {std::regex("fast => true"), "--fast"},
    };
    std::string s = text;
    for (const auto &[re, to] : subs)
        s = std::regex_replace(s, re, to);
    return s;
}

std::string option_type_name(const std::string &name, const std::string &t)
{
    static const std::map<std::string, std::string> text = {
        {"backup-dir", "DIR"},      {"server-dir", "DIR"},       {"new-server", "ZIP|DIR"},  {"@source", "ZIP|DIR"},
        {"@FILE", "FILE"},          {"log-file", "FILE"},        {"state", "FILE"},          {"screen-file", "FILE"},
        {"plate-file", "FILE"},     {"well-file", "FILE"},       {"roi-file", "FILE"},       {"image-file", "FILE"},
        {"shape-file", "FILE"},     {"into", "DB"},              {"rollback-into", "DB"},    {"target", "VERSION"},
        {"owner", "ROLE"},          {"name", "NAME"},            {"screen", "IDS"},          {"plate", "IDS"},
        {"well", "IDS"},            {"roi", "IDS"},              {"image", "IDS"},           {"shape", "IDS"},
        {"kind", "KIND"},           {"ns", "NAMESPACE"},         {"include-ns", "NAMESPACE"}, {"colors", "all|IDS|@FILE"},
        {"move-annotations-to-wells", "KIND:IDS"},          {"force-step", "STEP"},     {"@state", "on|off"},
    };
    static const std::map<std::string, std::string> num = {
        {"batch-size", "N"}, {"jobs", "N"}, {"timeout", "SECONDS"}, {"stop-timeout", "SECONDS"}, {"run", "ID"},
    };
    if (t != "TEXT" && t != "INT")
        return "";
    const auto &m = t == "TEXT" ? text : num;
    auto it = m.find(name);
    if (it != m.end())
        return it->second;
    return t == "TEXT" ? "VALUE" : "";
}

} // namespace ou
