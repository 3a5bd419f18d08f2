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

} // namespace ou::run
