// See installation.hpp.
#include "installation.hpp"

#include "fsutil.hpp"
#include "run_state.hpp"
#include "omero_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

namespace ou {

std::string lexical_absolute(const std::string &p)
{
    if (p.empty() || p[0] == '/')
        return p;
    char buf[PATH_MAX];
    if (!getcwd(buf, sizeof buf))
        return p;
    std::string d = buf, r = p;
    while (r.rfind("./", 0) == 0)
        r.erase(0, 2);
    return d + "/" + r;
}

std::string given_server_dir(const GlobalOptions &g)
{
    std::string d = g.server_dir;
    if (d.empty()) {
        const char *e = std::getenv("OMERODIR");
        d = e && *e ? e : "OMERO.server";
    }
    while (d.size() > 1 && d.back() == '/')
        d.pop_back();
    return lexical_absolute(d);
}

std::string default_backup_dir(const GlobalOptions &g)
{
    return dir_name(given_server_dir(g)) + "/omero-upgrade-backups";
}

std::string resolved_path(const std::string &p)
{
    char buf[PATH_MAX];
    return realpath(p.c_str(), buf) ? std::string(buf) : "";
}

std::string tree_newest_version(const std::string &tree)
{
    std::string best;
    for (const auto &n : dir_entries(tree + "/sql/psql").value_or(std::vector<std::string>{})) {
        int v[3];
        if (std::sscanf(n.c_str(), "OMERO%d.%d__%d", &v[0], &v[1], &v[2]) == 3 && is_directory(tree + "/sql/psql/" + n) &&
            (best.empty() || compare_versions(n, best) > 0))
            best = n;
    }
    return best;
}

const char *server_run_name(ServerRun r)
{
    switch (r) {
    case ServerRun::Running: return "running";
    case ServerRun::Down: return "down";
    case ServerRun::Unconfirmed: return "unconfirmed";
    default: return "unknown";
    }
}

std::string Installation::mismatch() const
{
    if (!db_read)
        return "the database " + db_name + " could not be read" + (db_error.empty() ? "" : ": " + db_error);
    if (!db.is_omero)
        return "the database " + db_name + " is not an OMERO database (no dbpatch rows)";
    if (!db.finished)
        return "the database " + db_name + " is half-upgraded (unfinished): its newest dbpatch row (" + db.version +
               ") has no finished time";
    if (tree_newest.empty())
        return "the server tree " + (tree.empty() ? server_dir : tree) + " has no sql/psql version folders";
    int c = compare_versions(db.version, tree_newest);
    if (c < 0)
        return "the database " + db_name + " (" + db.version + ") is behind the server tree's scripts (" +
               tree_newest + "): it needs db upgrade";
    if (c > 0)
        return "the database " + db_name + " (" + db.version + ") is newer than the server tree's scripts (" +
               tree_newest + "): this server was not made for it";
    return "";
}

nlohmann::json Installation::to_json() const
{
    nlohmann::json j = {
        {"server_dir", server_dir},
        {"kind", kind},
        {"link_target", link_target.empty() ? nlohmann::json() : nlohmann::json(link_target)},
        {"tree", tree},
        {"tree_newest", tree_newest},
        {"bin_omero", has_bin},
        {"config", {{"path", config_path}, {"found", config_found}}},
        {"database",
         {{"name", db_name},
          {"host", db_host},
          {"port", db_port},
          {"user", db_user},
          {"read", db_read},
          {"error", db_error.empty() ? nlohmann::json() : nlohmann::json(db_error)},
          {"omero", db.is_omero},
          {"version", db.version},
          {"finished", db.finished},
          {"extension", db.extension_version.empty() ? nlohmann::json() : nlohmann::json(db.extension_version)}}},
        {"server", {{"state", server_run_name(server)}, {"how", server_how}, {"omero_sessions", omero_sessions}}},
        {"agree", mismatch().empty()},
        {"mismatch", mismatch().empty() ? nlohmann::json() : nlohmann::json(mismatch())},
        {"run_state", run_state_path},
        {"earlier_runs", earlier_runs},
        {"binaries_state", binaries_state_path},
        {"binaries", binaries},
    };
    return j;
}

namespace {

void read_tree(Installation &m)
{
    struct stat st;
    if (lstat(m.server_dir.c_str(), &st) != 0) {
        m.kind = "missing";
        return;
    }
    if (S_ISLNK(st.st_mode)) {
        char buf[PATH_MAX];
        ssize_t n = readlink(m.server_dir.c_str(), buf, sizeof buf - 1);
        m.link_target = n > 0 ? std::string(buf, n) : "";
        m.tree = resolved_path(m.server_dir);
        m.kind = m.tree.empty() ? "dangling" : "symlink";
    } else {
        m.kind = S_ISDIR(st.st_mode) ? "directory" : "missing";
        m.tree = m.kind == "directory" ? resolved_path(m.server_dir) : "";
    }
    if (!m.tree.empty()) {
        m.tree_newest = tree_newest_version(m.tree);
        m.has_bin = access((m.tree + "/bin/omero").c_str(), X_OK) == 0;
    }
}

void read_records(Installation &m, const std::string &state_path)
{
    m.run_state_path = state_path.empty() ? run::default_state_path(m.server_dir) : lexical_absolute(state_path);
    if (run::state_exists(m.run_state_path)) {
        try {
            m.run = run::load_state(m.run_state_path);
        } catch (const CommandError &) {
            m.run = nullptr;
        }
    }
    std::string base = base_name(m.run_state_path) + ".";
    for (const auto &n : dir_entries(dir_name(m.run_state_path)).value_or(std::vector<std::string>{}))
        if (n.rfind(base, 0) == 0 && n.size() > base.size() && n.find(".lock") == std::string::npos)
            m.earlier_runs.push_back(dir_name(m.run_state_path) + "/" + n);
    std::sort(m.earlier_runs.begin(), m.earlier_runs.end());
    m.binaries_state_path = dir_name(m.server_dir) + "/.omero-upgrade-binaries.json";
    std::string text;
    if (read_file(m.binaries_state_path, text)) {
        nlohmann::json j = parse_stored_json(text);
        if (!j.is_discarded())
            m.binaries = j;
    }
}

// "Down" only when confirmed, as server stop confirms it.
void read_server(Installation &m, const Settings &s, Db *db)
{
    std::optional<bool> running;
    m.server_how = "no executable bin/omero in " + (m.tree.empty() ? m.server_dir : m.tree);
    if (m.has_bin) {
        try {
            running = omero_admin_running(s, 120);
            m.server_how = std::string("bin/omero admin status: ") + (*running ? "running" : "not running");
        } catch (const CommandError &e) {
            m.server_how = e.what();
        }
    }
    if (db) {
        try {
            int n = 0;
            for (const auto &x : other_sessions(*db, s.omero_db_user))
                n += x.omero;
            m.omero_sessions = n;
        } catch (const CommandError &) {
        }
    }
    if (running && *running)
        m.server = ServerRun::Running;
    else if (running && m.omero_sessions == 0)
        m.server = ServerRun::Down;
    else if (running && m.omero_sessions > 0)
        m.server = ServerRun::Unconfirmed;
    else
        m.server = ServerRun::Unknown;
}

} // namespace

Installation read_installation(const GlobalOptions &g, const ReadInstallation &o)
{
    Installation m;
    m.options = g;
    m.server_dir = given_server_dir(g);
    read_tree(m);
    read_records(m, o.state_path);
    Settings s = load_settings(g, false);
    m.config_path = s.config_path;
    m.config_found = s.config_found;
    m.db_name = s.conn.dbname;
    m.db_host = s.conn.host;
    m.db_port = s.conn.port;
    m.db_user = s.conn.user;
    std::unique_ptr<Db> db;
    try {
        db = connect_db(s);
        m.db = read_omero_state(*db);
        m.db_read = true;
    } catch (const CommandError &e) {
        m.db_error = e.what();
    }
    if (o.ask_server)
        read_server(m, s, db.get());
    return m;
}

std::optional<OmeroDbState> read_database(const Settings &s, const std::string &dbname)
{
    try {
        auto db = connect_db(s, dbname);
        return read_omero_state(*db);
    } catch (const CommandError &) {
        return std::nullopt;
    }
}

} // namespace ou

#include "run_plan.hpp"

namespace ou {

UpgradeTarget::~UpgradeTarget()
{
    if (temp && !scripts_dir.empty())
        remove_tree(scripts_dir);
}

std::unique_ptr<UpgradeTarget> resolve_upgrade_target(const Settings &s, const OmeroDbState &st,
                                                      const std::string &target, const std::string &new_server)
{
    auto t = std::make_unique<UpgradeTarget>();
    if (!new_server.empty()) {
        run::NewServer ns = run::inspect_new_server(lexical_absolute(new_server));
        t->version = target.empty() ? ns.newest : target;
        t->source = target.empty() ? "--new-server" : "--target";
        if (!ns.is_archive) {
            t->scripts_dir = ns.path;
        } else {
            t->scripts_dir = make_private_temp_dir("omero-upgrade-prechecks");
            t->temp = true;
            run::extract_prechecks(ns, t->scripts_dir);
        }
        return t;
    }
    t->scripts_dir = s.server_dir;
    if (!target.empty()) {
        t->version = target;
        t->source = "--target";
        return t;
    }
    t->version = server_newest_version(s);
    t->source = t->version.empty() ? "" : "server directory";
    if (!t->version.empty() && st.is_omero && st.version == t->version)
        t->no_newer = "no newer target is known: the database is at " + st.version +
                      ", the newest version of this server directory's own sql/psql (" + s.server_dir +
                      "), which is the release it runs, not one to upgrade to";
    return t;
}

} // namespace ou
