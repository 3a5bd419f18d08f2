// See settings.hpp. Precedence, for each of host, port, database and user (README, "Settings"):
//   1. the command line: the fields of a conninfo/URI given with -d (they win over -h/-p/-U, as
//      in psql), then -h/--db-host, -p/--db-port, -U/--db-user, -d NAME
//   2. omero.db.* of the active profile in <server>/etc/grid/config.xml (what the server uses)
//   3. libpq's environment: with PGSERVICE left to libpq (service file, then PG*), else PGHOST,
//      PGPORT, PGDATABASE, PGUSER
//   4. OMERO's defaults: localhost, 5432, omero, omero
// The environment never overrides config.xml: config.xml is what the OMERO server itself reads,
// and the tool must work on the server's own database; the command line is the explicit way elsewhere.
#include "history.hpp"
#include "settings.hpp"
#include "fsutil.hpp"

#include "process.hpp"

#include <pugixml.hpp>

#include <dirent.h>
#include <unistd.h>

#include <cstdio>

#include <sys/stat.h>
#include <climits>
#include <cstdlib>

namespace ou {

namespace {

bool is_dir(const std::string &p)
{
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string &p)
{
    struct stat st;
    return stat(p.c_str(), &st) == 0;
}

std::string env(const char *name)
{
    const char *v = std::getenv(name);
    return v ? v : "";
}

std::string absolute(const std::string &p)
{
    char buf[PATH_MAX];
    if (realpath(p.c_str(), buf))
        return buf;
    return p;
}

// The properties of one <properties id="..."> block.
std::map<std::string, std::string> read_block(const pugi::xml_node &root, const std::string &id, bool &found)
{
    std::map<std::string, std::string> props;
    found = false;
    for (pugi::xml_node block : root.children("properties")) {
        if (id != block.attribute("id").value())
            continue;
        found = true;
        for (pugi::xml_node p : block.children("property")) {
            pugi::xml_attribute name = p.attribute("name");
            if (name)
                props[name.value()] = p.attribute("value").value();
        }
    }
    return props;
}

} // namespace

std::string Settings::property(const std::string &key, const std::string &dflt) const
{
    auto it = properties.find(key);
    return it == properties.end() ? dflt : it->second;
}

nlohmann::json Settings::to_json() const
{
    nlohmann::json j = {
        {"server_dir", server_dir},
        {"server_dir_source", server_dir_source},
        {"config", config_found ? config_path : ""},
        {"profile", profile},
        {"profile_source", profile_source},
        {"db_host", conn.host},
        {"db_port", conn.port},
        {"db_name", conn.dbname},
        {"db_user", conn.user},
        {"sources", sources},
        {"password_from", password_source(conn)},
        {"omero_db_user", omero_db_user},
        {"data_dir", data_dir},
    };
    return j;
}

// The settings' steps, in order (load_settings).
namespace {

// 1. Where the server directory is: --server-dir, OMERODIR, ./OMERO.server.
void find_server_dir(const GlobalOptions &g, Settings &s)
{
    // 1. The server directory.
    if (!g.server_dir.empty()) {
        s.server_dir = g.server_dir;
        s.server_dir_source = "--server-dir";
    } else if (!env("OMERODIR").empty()) {
        s.server_dir = env("OMERODIR");
        s.server_dir_source = "OMERODIR";
    } else {
        s.server_dir = "OMERO.server";
        s.server_dir_source = "default";
    }
    s.server_dir_found = is_dir(s.server_dir);
    if (s.server_dir_found)
        s.server_dir = absolute(s.server_dir);
    s.config_path = s.server_dir + "/etc/grid/config.xml";
}

// 2. config.xml and its active profile (need_config: an error without it).
void read_config(Settings &s, bool need_config)
{
    // 2. config.xml and its active profile.
    if (exists(s.config_path)) {
        pugi::xml_document doc;
        pugi::xml_parse_result r = doc.load_file(s.config_path.c_str());
        if (!r)
            throw CommandError(s.config_path + " is not valid XML (" + r.description() + " at byte " +
                                   std::to_string(r.offset) + "): refusing to guess the database settings",
                               "repair it (bin/omero config edit), or restore it from a backup");
        pugi::xml_node root = doc.child("icegrid");
        if (!root)
            throw CommandError(s.config_path + " has no <icegrid> root element: not an OMERO config.xml",
                               "check --server-dir / OMERODIR");
        s.config_found = true;
        bool found_active = false;
        auto active = read_block(root, "__ACTIVE__", found_active);
        if (!env("OMERO_CONFIG").empty()) {
            s.profile = env("OMERO_CONFIG");
            s.profile_source = "OMERO_CONFIG";
        } else if (active.count("omero.config.profile") && !active["omero.config.profile"].empty()) {
            s.profile = active["omero.config.profile"];
            s.profile_source = "config.xml";
        } else {
            s.profile = "default";
            s.profile_source = "default";
        }
        bool found_profile = false;
        s.properties = read_block(root, s.profile, found_profile);
        // A profile named (OMERO_CONFIG, omero.config.profile) but absent is a typo: falling to
        // OMERO's defaults and the libpq environment would reach another database. Only an absent
        // "default" profile means OMERO's defaults (a config.xml that was never edited).
        if (!found_profile && s.profile != "default")
            throw CommandError("profile '" + s.profile + "' (from " + s.profile_source + ") is not in " + s.config_path,
                               s.profile_source == "OMERO_CONFIG"
                                   ? "check the name (the <properties id=\"…\"> blocks of config.xml are the profiles), or unset OMERO_CONFIG"
                                   : "check omero.config.profile in config.xml (bin/omero config def)");
        if (!found_profile)
            out().warn("profile '" + s.profile + "' (from " + s.profile_source + ") is not in " + s.config_path +
                       ": using OMERO's defaults, as the server would");
    } else if (need_config) {
        throw CommandError(
            "no OMERO.server configuration at " + s.config_path +
                (s.server_dir_found ? "" : " (the server directory " + s.server_dir + " does not exist)"),
            "give the server directory with --server-dir DIR or OMERODIR (default ./OMERO.server)");
    } else if (s.server_dir_source != "default") {
        out().warn("no " + s.config_path + ": using --db-*, the libpq environment and OMERO's defaults");
    } else {
        out().detail("no " + s.config_path + ": using --db-*, the libpq environment and OMERO's defaults");
    }
}

// What the command line gives for the connection: key → value and → where from ("--db-host",
// "--db-name conninfo", …), and whether -d names a service.
struct CommandLineConn {
    std::map<std::string, std::string> cli, cli_src;
    bool cli_service = false;
};

CommandLineConn command_line_conn(const GlobalOptions &g, Settings &s)
{
    CommandLineConn c;
    std::map<std::string, std::string> &cli = c.cli;
    std::map<std::string, std::string> &cli_src = c.cli_src;
    bool &cli_service = c.cli_service;
    // 3. The connection, key by key. -d/--dbname may be a conninfo string or a postgresql:// URI:
    // expanded as psql expands it (PQconninfoParse), its fields win over -h/-p/-U as in psql
    // (libpq: fields of an expanded dbname override the keywords before it), and a password in it
    // is refused (argv is visible to every user of the machine: ps).
    auto set_cli = [&](const char *key, const std::string &v, const std::string &src) {
        if (!v.empty() && !cli.count(key)) {
            cli[key] = v;
            cli_src[key] = src;
        }
    };
    const std::string &d = g.db_name;
    bool expanded = d.find('=') != std::string::npos || d.rfind("postgresql://", 0) == 0 || d.rfind("postgres://", 0) == 0;
    if (expanded) {
        char *err = nullptr;
        PQconninfoOption *opts = PQconninfoParse(d.c_str(), &err);
        if (!opts) {
            std::string m = err ? err : "out of memory";
            if (err)
                PQfreemem(err);
            while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
                m.pop_back();
            throw CommandError("-d/--dbname is neither a database name nor a valid conninfo string or URI: " + m,
                               "give a name (omero), \"host=… port=… dbname=… user=…\" or postgresql://user@host:port/dbname");
        }
        bool has_password = false;
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (!o->val || !*o->val)
                continue;
            std::string k = o->keyword, v = o->val;
            if (k == "password")
                has_password = true;
            else if (k == "host" || k == "port" || k == "dbname" || k == "user")
                set_cli(k.c_str(), v, "--db-name conninfo");
            else {
                s.conn.extra.emplace_back(k, v);
                cli_service |= k == "service";
            }
        }
        PQconninfoFree(opts);
        if (has_password)
            throw CommandError("-d/--dbname holds a password: the command line is visible to every user of this machine (ps)",
                               "remove it from the conninfo or URI; give it in PGPASSWORD, a password file (~/.pgpass or "
                               "PGPASSFILE), or omero.db.pass in config.xml");
    } else {
        set_cli("dbname", d, "--db-name");
    }
    set_cli("host", g.db_host, "--db-host");
    set_cli("port", g.db_port, "--db-port");
    set_cli("user", g.db_user, "--db-user");
    return c;
}

// Each key of the connection from the first that gives it: the command line, a service, config.xml,
// PGSERVICE, the libpq environment, OMERO's default; sources says which.
void resolve_conn(Settings &s, CommandLineConn &c)
{
    std::map<std::string, std::string> &cli = c.cli;
    std::map<std::string, std::string> &cli_src = c.cli_src;
    const bool cli_service = c.cli_service;
    // A service, on the command line (-d "service=…") or in PGSERVICE, is left to libpq for every key
    // the command line does not give: libpq reads the service file first, then PGHOST and friends.
    // PGSERVICE does not override config.xml (the environment never does); -d service=… does.
    bool env_service = !env("PGSERVICE").empty();
    auto pick = [&](const char *key, const char *prop, const char *envvar, const char *dflt) {
        std::string v;
        if (cli.count(key)) {
            v = cli[key];
            s.sources[key] = cli_src[key];
        } else if (cli_service) {
            s.sources[key] = "service (-d)";  // left to the service file
        } else if (s.properties.count(prop) && !s.properties[prop].empty()) {
            v = s.properties[prop];
            s.sources[key] = "config.xml";
        } else if (env_service) {
            s.sources[key] = "PGSERVICE";  // left to libpq: the service file, then PG* variables
        } else if (!env(envvar).empty()) {
            v = env(envvar);
            s.sources[key] = envvar;
        } else {
            v = dflt;
            s.sources[key] = "OMERO default";
        }
        return v;
    };
    s.conn.host = pick("host", "omero.db.host", "PGHOST", "localhost");
    s.conn.port = pick("port", "omero.db.port", "PGPORT", "5432");
    s.conn.dbname = pick("dbname", "omero.db.name", "PGDATABASE", "omero");
    s.conn.user = pick("user", "omero.db.user", "PGUSER", "omero");
    if (!s.conn.port.empty()) {
        char *end = nullptr;
        long p = std::strtol(s.conn.port.c_str(), &end, 10);
        if (*end || p < 1 || p > 65535)
            throw CommandError("database port '" + s.conn.port + "' (from " + s.sources["port"] +
                               ") is not a port number");
    }
}

// The OMERO database user, config.xml's password (for that user only) and the data directory.
void omero_db_settings(Settings &s)
{
    s.omero_db_user = s.property("omero.db.user", "omero");
    if (s.omero_db_user.empty())
        s.omero_db_user = "omero";
    // config.xml's password is sent only as the user it belongs to; any other user authenticates
    // through libpq's own PGPASSWORD/.pgpass.
    std::string pass = s.property("omero.db.pass");
    if (!pass.empty() && s.conn.user == s.omero_db_user && pass.find_first_of("\n\r") != std::string::npos)
        throw CommandError("omero.db.pass in " + s.config_path +
                               " contains a line break: it cannot be handed to pg_dump, pg_restore or psql "
                               "(a libpq password file holds one password per line)",
                           "give the database role a password without line breaks (ALTER ROLE … PASSWORD), then "
                           "bin/omero config set omero.db.pass");
    if (!pass.empty() && s.conn.user == s.omero_db_user) {
        s.conn.password = pass;
        s.password_from_config = true;
    }
    s.data_dir = s.property("omero.data.dir", "/OMERO");
    if (s.data_dir.empty())
        s.data_dir = "/OMERO";
}

} // namespace

Settings load_settings(const GlobalOptions &g, bool need_config)
{
    Settings s;
    s.options = g;

    find_server_dir(g, s);
    read_config(s, need_config);
    CommandLineConn c = command_line_conn(g, s);
    resolve_conn(s, c);
    omero_db_settings(s);

    out().detail("settings: server dir " + s.server_dir + " (" + s.server_dir_source + ")" +
                 (s.config_found ? ", profile " + s.profile + " (" + s.profile_source + ")" : ", no config.xml"));
    out().detail("settings: database " + s.conn.describe() + " (host: " + s.sources["host"] +
                 ", port: " + s.sources["port"] + ", name: " + s.sources["dbname"] + ", user: " +
                 s.sources["user"] + ", password: " + password_source(s.conn) + ")");
    return s;
}

ConnParams conn_for(const Settings &s, const std::string &dbname)
{
    ConnParams p = s.conn;
    if (!dbname.empty())
        p.dbname = dbname;
    return p;
}

std::unique_ptr<Db> connect_db(const Settings &s, const std::string &dbname)
{
    auto db = Db::connect(conn_for(s, dbname));
    // Who runs the tool, for the extension's own history records (orphans, colours, wells).
    identify_session(*db);
    return db;
}

std::unique_ptr<Db> connect_db(Settings &s, const std::string &dbname)
{
    auto db = Db::connect(conn_for(s, dbname));
    if (dbname.empty()) {
        const ConnParams &p = db->params();
        for (auto [mine, resolved] : {std::pair{&s.conn.host, &p.host}, std::pair{&s.conn.port, &p.port},
                                      std::pair{&s.conn.dbname, &p.dbname}, std::pair{&s.conn.user, &p.user}})
            if (mine->empty())
                *mine = *resolved;
    }
    identify_session(*db);  // as the const overload: the extension's own history records name who runs the tool
    return db;
}

void require_omero_bin(const Settings &s)
{
    std::string bin = s.server_path("bin/omero");
    if (access(bin.c_str(), X_OK) != 0)
        throw CommandError("cannot run " + bin + ": " + (s.server_dir_found ? "no executable bin/omero" : "no server directory"),
                           "give the OMERO.server directory with --server-dir DIR or OMERODIR");
}

std::optional<bool> omero_server_running(const Settings &s, std::string *how)
{
    std::string bin = s.server_path("bin/omero");
    if (access(bin.c_str(), X_OK) != 0) {
        if (how)
            *how = "no bin/omero in " + s.server_dir;
        return std::nullopt;
    }
    ProcOptions o;
    o.cwd = s.server_dir;
    o.timeout_s = 120;
    o.log_stdout = true;
    ProcResult r = run_process({bin, "admin", "status"}, o);
    if (r.timed_out) {
        if (how)
            *how = "bin/omero admin status did not answer within 120 s";
        return std::nullopt;
    }
    if (how)
        *how = "bin/omero admin status: " + r.describe();
    return r.exit_code == 0;
}

void omero_config_set(const Settings &s, const std::string &key, const std::string &value)
{
    require_omero_bin(s);
    ProcOptions o;
    o.cwd = s.server_dir;
    o.timeout_s = 120;
    o.log_stdout = true;
    ProcResult r = run_process({s.server_path("bin/omero"), "config", "set", key, value}, o);
    if (!r.ok())
        throw CommandError("bin/omero config set " + key + " failed (" + r.describe() + "): " + r.err_tail(3),
                           "set it by hand: bin/omero config set " + key + " " + shell_quote(value));
}

void omero_config_unset(const Settings &s, const std::string &key)
{
    require_omero_bin(s);
    ProcOptions o;
    o.cwd = s.server_dir;
    o.timeout_s = 120;
    o.log_stdout = true;
    ProcResult r = run_process({s.server_path("bin/omero"), "config", "set", key}, o);
    if (!r.ok())
        throw CommandError("bin/omero config set " + key + " (remove) failed (" + r.describe() + "): " + r.err_tail(3),
                           "remove it by hand: bin/omero config set " + key);
}

std::string server_newest_version(const Settings &s)
{
    std::string best;
    for (const auto &n : dir_entries(s.server_path("sql/psql")).value_or(std::vector<std::string>{})) {
        int v[3];
        if (std::sscanf(n.c_str(), "OMERO%d.%d__%d", &v[0], &v[1], &v[2]) == 3 && is_dir(s.server_path("sql/psql/" + n)) &&
            (best.empty() || compare_versions(n, best) > 0))
            best = n;
    }
    return best;
}

} // namespace ou
