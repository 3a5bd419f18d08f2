// omero-upgrade backup | backup list | backup verify FILE: the commands over tool/backup.hpp
// (verified pg_dump backups, their manifest).
#include "commands.hpp"
#include "backup.hpp"
#include "fsutil.hpp"
#include "installation.hpp"
#include "manifest.hpp"
#include "process.hpp"
#include "progress.hpp"

#include <cstdio>
#include <map>
#include <set>
#include <sstream>

namespace ou {

namespace {

void add_backup_options(CLI::App &sub, BackupOptions &o)
{
    sub.add_option("--backup-dir", o.dir, "where backups and their manifest go (default: omero-upgrade-backups beside the server directory)");
    sub.add_option("-j,--jobs", o.jobs, "dump with N parallel jobs in directory format (NAME.pgdir)")->check(CLI::Range(1, 64));
    sub.add_flag("--no-space-check", o.skip_space_check, "try even when free space is below the database size");
}

int run_backup(const BackupOptions &opts, Context &ctx)
{
    Settings &s = ctx.settings();
    BackupResult b = make_backup(s, ctx.db(), opts);
    out().result() = b.entry;
    out().result()["path"] = b.path;
    return EXIT_OK;
}

struct BackupListOptions {
    std::string dir;
};

void add_backup_list_options(CLI::App &sub, BackupListOptions &o)
{
    sub.add_option("--backup-dir", o.dir, "the backup directory (default: omero-upgrade-backups beside the server directory)");
}

int run_backup_list(const BackupListOptions &o, Context &ctx)
{
    std::string dir = o.dir.empty() ? default_backup_dir(ctx.global()) : o.dir;
    nlohmann::json m = read_manifest(dir);
    nlohmann::json list = nlohmann::json::array();
    std::set<std::string> known;
    int missing = 0;
    if (m["backups"].empty())
        out().say("no backups recorded in " + dir + "/" + manifest_name);
    for (auto e : m["backups"]) {
        std::string f = e.value("file", "");
        known.insert(f);
        bool present = path_exists(dir + "/" + f);
        e["present"] = present;
        if (!present)
            missing++;
        list.push_back(e);
        char line[512];
        std::snprintf(line, sizeof line, "%-58s %-12s %10s  %s%s", f.c_str(), e.value("dbpatch_version", "").c_str(),
                      human_bytes(e.value("size_bytes", 0ULL)).c_str(), e.value("created_utc", "").c_str(),
                      present ? "" : "  MISSING");
        out().say(line);
    }
    nlohmann::json unlisted = nlohmann::json::array(), partials = nlohmann::json::array();
    for (const auto &n : dir_entries(dir).value_or(std::vector<std::string>{})) {
        auto ends = [&](const std::string &x) { return n.size() > x.size() && n.compare(n.size() - x.size(), x.size(), x) == 0; };
        if (n[0] == '.' && ends(".partial"))
            partials.push_back(n);
        else if (n[0] != '.' && (ends(".pgdump") || ends(".pgdir")) && !known.count(n))
            unlisted.push_back(n);
    }
    for (const auto &n : unlisted)
    {
        out().warn(n.get<std::string>() + " is in " + dir + " but not in the manifest (not made by this tool here)");
        out().hint("adopt it: omero-upgrade backup import " + shell_quote(dir + "/" + n.get<std::string>()));
    }
    for (const auto &n : partials)
        out().warn(n.get<std::string>() + " is the leftover of an interrupted backup: it is incomplete and can be deleted");
    if (missing)
        out().warn(std::to_string(missing) + " recorded backup(s) missing from " + dir);
    out().result() = {{"dir", dir}, {"backups", list}, {"unlisted", unlisted}, {"partial", partials}};
    return missing ? EXIT_PROBLEM : EXIT_OK;
}

struct BackupImportOptions {
    std::string file, dir;
};

void add_backup_import_options(CLI::App &sub, BackupImportOptions &o)
{
    sub.add_option("FILE", o.file, "the dump (pg_dump -Fc; a -Fd directory already in the backup directory)")->required();
    sub.add_option("--backup-dir", o.dir,
                   "the backup directory to adopt it into (default: omero-upgrade-backups beside the server directory)");
}

int run_backup_import(const BackupImportOptions &o, Context &ctx)
{
    BackupResult b = import_backup(o.file, o.dir.empty() ? default_backup_dir(ctx.global()) : o.dir);
    out().result() = b.entry;
    out().result()["path"] = b.path;
    return EXIT_OK;
}

struct BackupVerifyOptions {
    std::string file;
    bool full = false;
};

void add_backup_verify_options(CLI::App &sub, BackupVerifyOptions &o)
{
    sub.add_option("FILE", o.file, "the backup (NAME.pgdump or NAME.pgdir)")->required();
    sub.add_flag("--full", o.full, "also read and decompress every data block");
}

int run_backup_verify(const BackupVerifyOptions &o, Context &)
{
    const bool full = o.full;
    VerifyResult v = verify_backup(o.file);
    if (full && v.ok()) {
        // Reads and decompresses every data block.
        size_t total = 0, done = 0;
        for (const auto &e : v.toc)
            total += e.rest.rfind("TABLE DATA ", 0) == 0;
        Meter m("full read", "tables", total);
        ProcOptions o;
        o.on_stderr_line = [&](const std::string &l) {
            if (l.find("processing data for table") != std::string::npos)
                m.update(++done);
        };
        o.on_tick = [&] { m.update(done); };
        ProcResult r = run_process({"pg_restore", "--verbose", "--file=/dev/null", v.path}, o);
        m.finish();
        if (!r.ok())
            v.problems.push_back("pg_restore cannot read the whole dump (" + r.describe() + "): " + r.err_tail(2));
    }
    nlohmann::json res = {{"path", v.path},
                          {"format", v.format},
                          {"toc_entries", v.toc.size()},
                          {"dbpatch_version", v.dbpatch_version},
                          {"database", v.dumped_dbname},
                          {"in_manifest", v.manifest.has_value()},
                          {"extension_entries", v.has_extension_entries},
                          {"problems", v.problems},
                          {"ok", v.ok()}};
    out().result() = res;
    if (!v.manifest)
        out().warn(v.name + " is not in the manifest of " + v.dir);
    if (!v.ok()) {
        for (const auto &p : v.problems)
            out().error(p);
        out().say("NOT OK: " + v.path + " failed verification (" + std::to_string(v.problems.size()) + " problem(s))");
        return EXIT_PROBLEM;
    }
    out().say("OK: " + v.path + " (" + v.format + " format, " + std::to_string(v.toc.size()) + " entries, dbpatch " +
              v.dbpatch_version + ", checksum matches" + (full ? ", every data block read" : "") + ")");
    return EXIT_OK;
}

} // namespace

CommandRun setup_backup(CLI::App &sub)
{
    return command_setup<BackupOptions, add_backup_options, run_backup>(sub);
}

CommandRun setup_backup_list(CLI::App &sub)
{
    return command_setup<BackupListOptions, add_backup_list_options, run_backup_list>(sub);
}

CommandRun setup_backup_import(CLI::App &sub)
{
    return command_setup<BackupImportOptions, add_backup_import_options, run_backup_import>(sub);
}

CommandRun setup_backup_verify(CLI::App &sub)
{
    return command_setup<BackupVerifyOptions, add_backup_verify_options, run_backup_verify>(sub);
}

} // namespace ou
