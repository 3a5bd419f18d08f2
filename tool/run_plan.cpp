// See run_plan.hpp.
#include "run_plan.hpp"
#include "run_steps.hpp"

#include "archive.hpp"
#include "common.hpp"
#include "fsutil.hpp"
#include "installation.hpp"
#include "settings.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>

namespace ou::run {

nlohmann::json RunOptions::to_json() const
{
    return {{"new_server", new_server}, {"backup_dir", backup_dir},   {"target", target},
            {"jobs", jobs},             {"orphans", orphans},         {"colors", colors},
            {"wells", wells},           {"vacuum_full", vacuum_full}, {"carry_scripts", carry_scripts},
            {"stop_timeout", stop_timeout}, {"force_steps", force_steps}, {"no_space_check", no_space_check},
            {"site_sql", site_sql}, {"online", online}};
}

RunOptions RunOptions::from_json(const nlohmann::json &j)
{
    RunOptions o;
    o.new_server = j.value("new_server", "");
    o.backup_dir = j.value("backup_dir", "");
    o.target = j.value("target", "");
    o.jobs = j.value("jobs", 0);
    o.orphans = j.value("orphans", false);
    o.colors = j.value("colors", "");
    o.wells = j.value("wells", "");
    o.vacuum_full = j.value("vacuum_full", false);
    o.carry_scripts = j.value("carry_scripts", false);
    o.stop_timeout = j.value("stop_timeout", 0);
    o.force_steps = j.value("force_steps", std::vector<std::string>{});
    o.no_space_check = j.value("no_space_check", false);
    o.site_sql = j.value("site_sql", "");
    o.online = j.value("online", false);
    return o;
}

namespace {

const std::regex script_re(R"(^sql/psql/(OMERO[0-9]+\.[0-9]+__[0-9]+)/(OMERO[0-9]+\.[0-9]+__[0-9]+)(-precheck)?\.sql$)");
const std::regex folder_re(R"(^sql/psql/(OMERO[0-9]+\.[0-9]+__[0-9]+)/?$)");

void note_path(NewServer &ns, const std::string &rel)
{
    std::smatch m;
    if (std::regex_match(rel, m, script_re)) {
        if (m[3].matched)
            ns.prechecks.push_back(m[1].str() + "/" + m[2].str());
        else
            ns.hops.emplace_back(m[2].str(), m[1].str());
        if (ns.newest.empty() || compare_versions(m[1].str(), ns.newest) > 0)
            ns.newest = m[1].str();
    }
}

std::string entry_name(archive_entry *e)
{
    const char *n = archive_entry_pathname(e);
    return n ? n : "";
}

// "OMERO.server-5.6.3/sql/psql/x" → "sql/psql/x" (and the top directory).
std::string strip_top(const std::string &name, std::string &top)
{
    std::string n = name;
    while (n.rfind("./", 0) == 0)
        n.erase(0, 2);
    size_t slash = n.find('/');
    top = n.substr(0, slash);
    return slash == std::string::npos ? "" : n.substr(slash + 1);
}

void walk(const std::string &root, const std::string &rel, const std::function<void(const std::string &)> &f)
{
    auto names = dir_entries(root + (rel.empty() ? "" : "/" + rel));
    if (!names)
        return;
    for (const auto &n : *names) {
        std::string r = rel.empty() ? n : rel + "/" + n;
        f(r);
        if (is_directory(root + "/" + r))
            walk(root, r, f);
    }
}

} // namespace

NewServer inspect_new_server(const std::string &path)
{
    NewServer ns;
    ns.path = path;
    if (!path_exists(path))
        throw CommandError("the new server " + path + " does not exist",
                           "give --new-server the OMERO.server zip or its unpacked directory");
    if (is_directory(path)) {
        if (!is_directory(path + "/sql/psql"))
            throw CommandError(path + " is not an OMERO.server directory: it has no sql/psql");
        walk(path + "/sql/psql", "", [&](const std::string &r) { note_path(ns, "sql/psql/" + r); });
        ns.bytes = path_size(path);
    } else {
        // Read the way binaries install reads it (the same code): opened once as a regular file,
        // a zip through its central directory, every entry checked. What would not install is
        // refused here, before anything is stopped.
        ns.is_archive = true;
        ns.archive = std::make_shared<ArchiveFile>(path);
        ns.archive_bytes = ns.archive->size();
        ArchiveCheck c = check_archive(*ns.archive);
        if (!c.ok()) {
            std::string list;
            for (size_t i = 0; i < c.problems.size() && i < 5; i++)
                list += (i ? "; " : "") + c.problems[i];
            if (c.problems.size() > 5)
                list += "; and " + std::to_string(c.problems.size() - 5) + " more";
            throw CommandError(path + " holds unsafe entries (binaries install would refuse it): " + list,
                               "use an archive from the official download site");
        }
        if (c.entries == 0)
            throw CommandError(path + " is an empty archive");
        std::string prefix = c.top_dir.empty() ? "" : c.top_dir + "/";
        if (!c.has_bin_omero || !c.has_sql_psql)
            throw CommandError(path + " is not an OMERO.server: it holds no " +
                                   (!c.has_bin_omero ? prefix + "bin/omero" : "") +
                                   (!c.has_bin_omero && !c.has_sql_psql ? " and no " : "") +
                                   (!c.has_sql_psql ? prefix + "sql/psql" : ""),
                               "give the OMERO.server-<version>.zip of a release (or its unpacked directory)");
        ns.top_dir = c.top_dir;
        ns.bytes = c.bytes;
        for (const CheckedEntry &ce : c.seen)
            if (ce.name.size() > prefix.size())
                note_path(ns, ce.name.substr(prefix.size()));
    }
    std::sort(ns.hops.begin(), ns.hops.end());
    std::sort(ns.prechecks.begin(), ns.prechecks.end());
    if (ns.hops.empty())
        throw CommandError(path + " holds no upgrade scripts (sql/psql/<to>/<from>.sql)",
                           "is it an OMERO.server distribution?");
    return ns;
}

void extract_prechecks(const NewServer &ns, const std::string &dir)
{
    const std::string want = "sql/psql/";
    auto dest_of = [&](const std::string &rel) {
        std::smatch m;
        if (!std::regex_match(rel, m, script_re))
            return std::string();
        ensure_dir(dir + "/sql");
        ensure_dir(dir + "/sql/psql");
        ensure_dir(dir + "/" + want + m[1].str());
        return dir + "/" + rel;
    };
    if (!ns.is_archive) {
        walk(ns.path + "/" + want, "", [&](const std::string &r) {
            std::string dest = dest_of(want + r), text;
            if (!dest.empty() && read_file(ns.path + "/" + want + r, text))
                write_file_atomic(dest, text);
        });
        return;
    }
    // The descriptor inspect_new_server() checked, not the path again.
    if (!ns.archive)
        throw CommandError("internal error: " + ns.path + " was not inspected");
    std::unique_ptr<archive, int (*)(archive *)> reader(ns.archive->open_reader(), archive_read_free);
    archive *a = reader.get();
    archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        std::string top, dest = dest_of(strip_top(entry_name(e), top));
        if (dest.empty() || archive_entry_filetype(e) != AE_IFREG)
            continue;
        std::string text;
        char buf[65536];
        la_ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
            text.append(buf, n);
        if (n < 0)
            throw CommandError("cannot read " + dest + " from " + ns.path + ": " + archive_error(a));
        write_file_atomic(dest, text);
    }
}

std::vector<std::pair<std::string, std::string>> hop_path(const NewServer &ns, const std::string &from,
                                                           const std::string &to)
{
    std::vector<Edge> edges;
    for (const auto &h : ns.hops)
        edges.push_back({h.first, h.second});
    auto chain = shortest_chain(edges, from, to);
    if (!chain) {
        std::string have;
        for (const auto &h : ns.hops)
            have += (have.empty() ? "" : ", ") + h.first + "→" + h.second;
        throw CommandError("the new server has no chain of upgrade scripts from " + from + " to " + to,
                           "its sql/psql holds: " + have);
    }
    std::vector<std::pair<std::string, std::string>> path;
    for (std::size_t i : *chain)
        path.push_back(ns.hops[i]);
    return path;
}

std::string release_name(const NewServer &ns)
{
    return ns.is_archive ? ns.top_dir : base_name(resolved_path(ns.path));
}

std::string same_release(const NewServer &ns, const std::string &tree)
{
    if (tree.empty())
        return "";
    if (!ns.is_archive && resolved_path(ns.path) == tree)
        return ns.path + " is the tree OMERO.server runs now (" + tree + ")";
    std::string name = release_name(ns);
    if (!name.empty() && name == base_name(tree) && tree_newest_version(tree) == ns.newest)
        return ns.path + " is the release OMERO.server runs now: " + name + " (" + tree + "), same newest scripts " +
               ns.newest;
    return "";
}

namespace {
bool release_numbers(const std::string &name, std::vector<int> &v)
{
    static const std::regex re(R"(^OMERO\.server-([0-9]+)\.([0-9]+)\.([0-9]+)(-.*)?$)");
    std::smatch m;
    if (!std::regex_match(name, m, re))
        return false;
    v = {std::stoi(m[1].str()), std::stoi(m[2].str()), std::stoi(m[3].str())};
    return true;
}
} // namespace

std::string older_release(const NewServer &ns, const std::string &tree)
{
    std::vector<int> a, b;
    std::string n = release_name(ns), c = base_name(tree);
    if (tree.empty() || !release_numbers(n, a) || !release_numbers(c, b) || !(a < b))
        return "";
    return "the new server " + n + " is an older release than the one OMERO.server runs now (" + c +
           "): run does not downgrade";
}

std::vector<StepDef> build_steps(const RunOptions &o, const std::string &target, bool db_hops)
{
    std::vector<StepDef> s;
    auto add = [&](StepDef d) { s.push_back(std::move(d)); };
    std::vector<std::string> check = {"check", "--target", target, "--backup-dir", o.backup_dir};
    if (o.no_space_check)
        check.push_back("--no-space-check");
    add({step_id::check, "check the prerequisites", check, "reads the settings, the database, free space; changes nothing"});
    add({step_id::precheck, "precheck the database for every hop (includes the SV5 scan)", {"precheck", "--target", target},
         "reads the database (the extension, else the new server's -precheck.sql scripts); changes nothing",
         false, false, StepDir::Preview});
    add({step_id::tree_listing, "record a listing of the current server tree", {"(internal)"},
         "writes a listing (type, size, path, link target) of the server tree beside the state file",
         false, false, StepDir::Server, true});
    std::vector<std::string> backup = {"backup", "--backup-dir", o.backup_dir};
    if (o.jobs > 0)
        backup.insert(backup.end(), {"--jobs", std::to_string(o.jobs)});
    if (o.no_space_check)
        backup.push_back("--no-space-check");
    add({step_id::backup, "verified backup of the database", backup,
         "writes a pg_dump, its .sha256 and the manifest into " + o.backup_dir});
    std::vector<std::string> stop = {"server", "stop"};
    if (o.stop_timeout > 0)
        stop.insert(stop.end(), {"--timeout", std::to_string(o.stop_timeout)});
    add({step_id::server_stop, "stop the server (confirmed: no OMERO session left)", stop,
         "runs bin/omero web stop, admin stop; the server is down from here", true, true});
    std::vector<std::string> install = {"binaries", "install", o.new_server};
    if (o.carry_scripts)
        install.push_back("--carry-scripts");
    add({step_id::binaries_install, "install the new server and repoint the OMERO.server symlink", install,
         "unpacks beside the current tree, copies etc/grid/config.xml, swaps the symlink; the old tree is kept",
         true, true});
    std::vector<std::string> upgrade = {"db", "upgrade", "--target", target};
    if (!o.site_sql.empty())
        upgrade.insert(upgrade.end(), {"--site-sql", o.site_sql});
    if (db_hops || !o.site_sql.empty()) {
        add({step_id::db_upgrade, o.site_sql.empty() ? "upgrade the database, hop by hop" : "upgrade the database, hop by hop, then the site SQL",
             upgrade,
             std::string("runs the new server's sql/psql scripts (listed above) as the OMERO database user") +
                 (o.site_sql.empty() ? "" : ", then the site SQL files not applied yet (listed above), each in its own transaction"),
             true, true});
    }
    // Its verdict goes into the report; a schema that differs, or one it could not verify, does
    // not stop the run (README, "omero-upgrade run").
    // --online: the steps that are safe with OMERO up (verify reads the catalogs; the orphan delete
    // re-checks every link as it deletes; the colour conversion goes by journaled batches, each
    // skipping a shape OMERO changed meanwhile) run after server-start, outside the offline window.
    std::vector<StepDef> online;
    auto add_online = [&](StepDef d) {
        d.offline = !o.online;
        (o.online ? online : s).push_back(std::move(d));
    };
    add_online({step_id::db_verify, "verify the upgraded schema against a fresh one of its version", {"db", "verify"},
                "builds the fresh schema from the new server's creation files in a scratch database (dropped after) "
                "and compares the catalogs; changes nothing",
                true, true});
    if (o.orphans)
        add_online({step_id::orphans, "delete orphaned annotations (archived, restorable)", {"db", "orphans", "delete", "--apply"},
             "deletes the orphaned annotations the official script would, keeping them in the extension's archive",
             true, true});
    if (!o.colors.empty()) {
        // No selection: every shape (the extension rewrites the table in one pass when nothing else
        // uses the database, as with the server stopped, and nothing is journaled).
        std::vector<std::string> c = {"colors", "convert"};
        if (o.colors != "all" && o.colors[0] == '@')
            c.insert(c.end(), {"--roi-file", o.colors.substr(1)});
        else if (o.colors != "all")
            c.insert(c.end(), {"--roi", o.colors});
        else if (o.online)
            c.push_back("--batches");  // never the rewrite's table lock while OMERO starts and runs
        add_online({step_id::colors, "convert shape colours ARGB → RGBA", c,
                    o.colors != "all"
                        ? "converts shape.fillcolor/strokecolor of the chosen ROIs' shapes, journaled (colors revert undoes it)"
                    : o.online ? "converts shape.fillcolor/strokecolor of every shape by journaled batches while OMERO runs "
                                 "(colors revert undoes it)"
                               : "converts shape.fillcolor/strokecolor of every shape (one pass over the table when "
                                 "nothing else uses the database), journaled (colors revert undoes it)",
                    true, true});
    }
    if (!o.wells.empty()) {
        // "screen:1,2" → annotations move-to-wells --screen 1,2 --apply (validated by the option).
        size_t colon = o.wells.find(':');
        std::vector<std::string> w = {"annotations", "move-to-wells", "--" + o.wells.substr(0, colon),
                                      o.wells.substr(colon + 1), "--apply"};
        add({step_id::wells, "move annotations from Images to Wells", w,
             "links annotations of the wells' images to the wells", true, true});
    }
    if (o.vacuum_full) {
        // --force-step vacuum-full: the user made sure of the space the plan could not check.
        std::vector<std::string> v = {"db", "vacuum", "--full"};
        if (std::find(o.force_steps.begin(), o.force_steps.end(), step_id::vacuum_full) != o.force_steps.end())
            v.push_back("--force");
        add({step_id::vacuum_full, "VACUUM FULL ANALYZE, largest table first", v,
             "rewrites every table (needs free space about the size of the largest)", true, true});
    }
    add({step_id::cache_clear, "clear the Bio-Formats memo cache", {"cache", "clear"},
         "deletes everything below <omero.data.dir>/BioFormatsCache", true, true});
    add({step_id::upgrade_check_off, "turn the upgrade check off", {"config", "upgrade-check", "off"},
         "bin/omero config set omero.upgrades.url ''", true, true});
    add({step_id::environment, "report the JVM memory settings", {"server", "jvmcfg"},
         "runs bin/omero admin jvmcfg; checks PATH, PYTHONPATH and OMERODIR", true, true});
    add({step_id::server_start, "start the new server", {"server", "start"}, "runs bin/omero admin start; the server is up",
         true, true});
    for (StepDef &d : online)
        s.push_back(std::move(d));
    add({step_id::diagnostics, "server diagnostics", {"server", "diagnostics"}, "runs bin/omero admin diagnostics", false,
         true});
    return s;
}

} // namespace ou::run
