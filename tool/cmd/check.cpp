// omero-upgrade check [--target V] [--backup-dir DIR]: every prerequisite of the upgrade, each
// ok / warning / failed with its fix in one line. Changes nothing. Exit 1 when any failed.
#include "commands.hpp"
#include "extension_sql.hpp"
#include "installation.hpp"
#include "backup.hpp"
#include "extcall.hpp"
#include "fsutil.hpp"
#include "process.hpp"
#include "settings.hpp"

#include <sys/resource.h>
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace ou {

namespace {

// OMERO's open-file recommendation is "tens of thousands"; below this we warn.
constexpr long long recommended_nofile = 16384;

struct Check {
    std::string name, status, detail, fix;
};

// Soft "Max open files" of a process, -1 when unreadable.
long long nofile_of(pid_t pid)
{
    std::ifstream f("/proc/" + std::to_string(pid) + "/limits");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("Max open files", 0) == 0) {
            std::istringstream in(line.substr(14));
            std::string soft;
            in >> soft;
            return soft == "unlimited" ? (long long)1 << 40 : std::atoll(soft.c_str());
        }
    }
    return -1;
}

// Whether a process runs this very program (another omero-upgrade naming the server dir is not
// the server).
bool same_exe(pid_t pid)
{
    char a[4096], b[4096];
    ssize_t na = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), a, sizeof a);
    ssize_t nb = readlink("/proc/self/exe", b, sizeof b);
    return na > 0 && na == nb && std::string(a, na) == std::string(b, nb);
}

// A running process of this OMERO server: its command line names the server directory
// (icegridnode, the Java servers, Python processes all run from it).
pid_t find_omero_process(const Settings &s, std::string &cmd)
{
    if (!s.server_dir_found)
        return 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    pid_t found = 0;
    pid_t self = getpid();
    while (dirent *e = readdir(d)) {
        pid_t pid = std::atoi(e->d_name);
        if (pid <= 0 || pid == self)
            continue;
        std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
        std::string c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        for (char &ch : c)
            if (ch == '\0')
                ch = ' ';
        if (c.find(s.server_dir + "/") != std::string::npos && !same_exe(pid)) {
            found = pid;
            cmd = c.substr(0, 120);
            break;
        }
    }
    closedir(d);
    return found;
}

bool local_host(const std::string &h)
{
    return h.empty() || h[0] == '/' || h == "localhost" || h == "127.0.0.1" || h == "::1";
}

struct CheckOptions {
    std::string target, new_server;
    std::string backup_dir;  // "": default_backup_dir()
    bool no_space_check = false;
};

void add_check_options(CLI::App &sub, CheckOptions &o)
{
    sub.add_option("--target", o.target,
                   "target database version (default: the newest in the server's sql/psql, else OMERO5.4__0)");
    sub.add_option("--new-server", o.new_server,
                   "the release to upgrade to (its zip or directory): its newest version is the target");
    sub.add_option("--backup-dir", o.backup_dir,
                   "where backups will go (default: omero-upgrade-backups beside the server directory)");
    sub.add_flag("--no-space-check", o.no_space_check, "too little space for the backup is a warning, not a failure");
}

// The checks made so far, in order; c.add() is what each check ends with.
struct Checks {
    std::vector<Check> list;
    void add(std::string name, std::string status, std::string detail, std::string fix = "")
    {
        list.push_back({std::move(name), std::move(status), std::move(detail), std::move(fix)});
    }
};

void check_config(Checks &c, const Settings &s)
{
    if (s.config_found)
        c.add("config", "ok", s.config_path + ", profile " + s.profile);
    else
        c.add("config", "warning", "no " + s.config_path + ": using the libpq environment and OMERO's defaults",
              "give the OMERO.server directory with --server-dir DIR or OMERODIR");
}

// The version the checks are for.
std::string check_target(Checks &c, const CheckOptions &o, const Settings &s, const OmeroDbState &st)
{
    // The target: --target, else the newest of --new-server, else the server directory's newest
    // scripts, else the newest known. Taken from the server directory and equal to the database's
    // version, it is the release that runs now, not a target: no all-clear then.
    auto ut = resolve_upgrade_target(s, st, o.target, o.new_server);
    std::string target = ut->version;
    if (target.empty())
        target = newest_known_version;
    if (!ut->no_newer.empty())
        c.add("target", "failed", ut->no_newer, "give --new-server DIR|ZIP, the release to upgrade to (or --target)");
    else
        c.add("target", "ok", target + " (" + (ut->source.empty() ? "the newest known" : "from " + ut->source) + ")");
    return target;
}

void check_dbpatch(Checks &c, const OmeroDbState &st)
{
    // dbpatch state
    if (!st.is_omero)
        c.add("dbpatch", "failed", "database " + st.dbname + " has no dbpatch rows: not an OMERO database",
              "check omero.db.name in config.xml, or --db-name");
    else if (!st.finished)
        c.add("dbpatch", "failed",
              "version " + st.version + ": the newest dbpatch row has no finished time (an upgrade script died half-way)",
              "restore the backup made before that upgrade: omero-upgrade restore FILE --into NEW_DB --switch");
    else
        c.add("dbpatch", "ok", "version " + st.version + " (" + st.message + ")");
}

void check_pg_version(Checks &c, Db &db, const OmeroDbState &st, const std::string &target)
{
    // PostgreSQL version
    int need = pg_prerequisite_of(target);
    if (!st.extension_version.empty() && st.is_omero) {
        try {
            Value v = ext::pg_prerequisite(db, ext::require_schema(db), target);
            if (v)
                need = std::atoi(v->c_str());
        } catch (const DbError &) {
            // no path to that target: the table above still says what the release needs
        }
    }
    if (st.server_version_num >= need)
        c.add("postgresql_version", "ok", "PostgreSQL " + st.server_version + " (" + target + " needs " + pretty_pg_version(need) + " or newer)");
    else
        c.add("postgresql_version", "failed",
              "PostgreSQL " + st.server_version + " is older than " + pretty_pg_version(need) + ", the prerequisite of " + target,
              "upgrade PostgreSQL first (pg_upgrade, or dump and restore into a newer server)");
}

void check_encoding(Checks &c, const OmeroDbState &st)
{
    // encoding
    if (st.encoding == "UTF8")
        c.add("encoding", "ok", "UTF8");
    else
        c.add("encoding", "failed", "database encoding is " + st.encoding + "; OMERO needs UTF8",
              "omero-upgrade db to-utf8 --into " + st.dbname + "_utf8 --switch");
}

void check_schema_privileges(Checks &c, Db &db, const OmeroDbState &st)
{
    // Who may create objects beside OMERO's tables. Before PostgreSQL 15 every role may create in
    // public (the default of a database created from template1); a role that can plant a function
    // or operator there can have it run by whoever resolves names through search_path (CVE-2018-1058).
    // The extension and the tool never do, but OMERO and a DBA's psql session do.
    int server_major = st.server_version_num / 10000;
    Rows w = db.query(
        "SELECT pg_catalog.quote_ident(n.nspname) AS nsp FROM pg_catalog.pg_namespace n"
        " WHERE (n.nspname OPERATOR(pg_catalog.=) 'public'::pg_catalog.name"
        "        OR n.oid OPERATOR(pg_catalog.=) (SELECT c.relnamespace FROM pg_catalog.pg_class c"
        "                                         WHERE c.relname OPERATOR(pg_catalog.=) 'dbpatch'::pg_catalog.name"
        "                                           AND c.relkind OPERATOR(pg_catalog.=) 'r' LIMIT 1))"
        "   AND pg_catalog.has_schema_privilege('public'::pg_catalog.name, n.oid, 'CREATE'::pg_catalog.text)"
        " ORDER BY 1");
    std::string open;
    for (size_t i = 0; i < w.rows.size(); ++i)
        open += (open.empty() ? "" : ", ") + w.str(i, "nsp");
    if (open.empty())
        c.add("schema_privileges", "ok", "no CREATE for PUBLIC on OMERO's schema");
    else
        c.add("schema_privileges", "warning",
              "every role may create objects in schema " + open +
                (server_major < 15 ? " (the default before PostgreSQL 15; this server is " + st.server_version + ")"
                                   : " (granted to PUBLIC on this database)") +
                ": a planted function or operator runs with the rights of whoever resolves it",
              "REVOKE CREATE ON SCHEMA " + open + " FROM PUBLIC  (as the database owner; OMERO needs no more)");
}

void check_clients(Checks &c, const OmeroDbState &st)
{
    int server_major = st.server_version_num / 10000;
    // client programs
    for (const char *prog : {"pg_dump", "pg_restore"}) {
        std::string full;
        int major = client_major_version(prog, &full);
        if (major == 0)
            c.add(prog, "failed", std::string(prog) + " not found on PATH",
                  "install the PostgreSQL client: apt install postgresql-client-" + std::to_string(server_major));
        else if (major < server_major)
            c.add(prog, "failed", full + " cannot handle a PostgreSQL " + st.server_version + " server",
                  "install postgresql-client-" + std::to_string(server_major) + " and put its bin directory first on PATH");
        else
            c.add(prog, "ok", full);
    }
}

void check_open_files(Checks &c, const Settings &s)
{
    // open-file limit
    std::string cmd;
    pid_t pid = find_omero_process(s, cmd);
    long long nofile = -1;
    std::string whose;
    if (pid > 0 && (nofile = nofile_of(pid)) >= 0) {
        whose = "of the running OMERO process " + std::to_string(pid) + " (" + cmd + ")";
    } else {
        rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        nofile = rl.rlim_cur == RLIM_INFINITY ? (long long)1 << 40 : (long long)rl.rlim_cur;
        whose = "of the current user (ulimit -n; no running OMERO process found: run the check as the server user)";
    }
    if (nofile >= recommended_nofile)
        c.add("open_files", "ok", std::to_string(nofile) + " " + whose);
    else
        c.add("open_files", "warning",
              std::to_string(nofile) + " " + whose + " is below " + std::to_string(recommended_nofile),
              "raise it for the server user: LimitNOFILE=65536 in its systemd unit, or nofile in /etc/security/limits.conf");
}

void check_backup_space(Checks &c, const CheckOptions &o, Context &ctx, const OmeroDbState &st)
{
    // space for the backup
    try {
        std::string bdir = o.backup_dir.empty() ? default_backup_dir(ctx.global()) : o.backup_dir;
        // The default directory is made by the first backup: until then, its parent's space.
        std::string where = o.backup_dir.empty() && !path_exists(bdir) ? dir_name(bdir) : bdir;
        unsigned long long avail = free_bytes(where);
        DumpEstimate need = dump_space_needed(bdir, st);
        if (avail >= need.needed)
            c.add("backup_space", "ok", human_bytes(avail) + " free in " + where + ", database " + human_bytes(st.size_bytes) +
                  ", the dump needs about " + human_bytes(need.needed) + " (" + need.how + ")");
        else
            c.add("backup_space", o.no_space_check ? "warning" : "failed",
                  human_bytes(avail) + " free in " + where + " < about " + human_bytes(need.needed) + " for the dump (database " +
                    human_bytes(st.size_bytes) + "; " + need.how + ")",
                  "free space there or choose another --backup-dir" +
                    std::string(o.no_space_check ? "" : " (--no-space-check: a warning, and the backup tries anyway)"));
    } catch (const CommandError &e) {
        c.add("backup_space", "failed", e.what(), "create the backup directory, or choose another --backup-dir");
    }
}

void check_vacuum_space(Checks &c, Db &db)
{
    // space for VACUUM FULL: it rewrites one table at a time, so the largest table (with its
    // indexes) must fit once more in PostgreSQL's data directory.
    std::string datadir;
    try {
        datadir = db.scalar("SELECT current_setting('data_directory')").value_or("");
    } catch (const DbError &) {
    }
    long long largest = std::atoll(
        db.scalar("SELECT coalesce(max(pg_catalog.pg_total_relation_size(c.oid)), 0) FROM pg_catalog.pg_class c "
                   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE c.relkind = 'r' AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema'])")
            .value_or("0")
            .c_str());
    if (!local_host(db.params().host))
        c.add("vacuum_space", "warning", "the database server " + db.params().host + " is remote: cannot check its disk",
              "make sure its data directory has " + human_bytes(largest) + " free (the largest table) for VACUUM FULL");
    else if (datadir.empty())
        c.add("vacuum_space", "warning", "cannot read data_directory (needs superuser or pg_read_all_settings)",
              "check by hand: " + human_bytes(largest) + " free in PostgreSQL's data directory for VACUUM FULL");
    else {
        try {
            unsigned long long avail = free_bytes(datadir);
            if (avail >= (unsigned long long)largest)
                c.add("vacuum_space", "ok", human_bytes(avail) + " free in " + datadir + ", largest table " + human_bytes(largest));
            else
                c.add("vacuum_space", "failed",
                      human_bytes(avail) + " free in " + datadir + " < largest table " + human_bytes(largest) +
                        ": VACUUM FULL would fail",
                      "free space on that file system before the optional VACUUM FULL");
        } catch (const CommandError &e) {
            c.add("vacuum_space", "warning", e.what(),
                  "check by hand: " + human_bytes(largest) + " free in " + datadir + " for VACUUM FULL");
        }
    }
}

void check_server(Checks &c, const Settings &s)
{
    // the OMERO server
    std::string how;
    auto running = omero_server_running(s, &how);
    if (!running)
        c.add("omero_server", "warning", "cannot tell whether the server runs (" + how + ")",
              "give the OMERO.server directory with --server-dir DIR or OMERODIR");
    else if (*running)
        c.add("omero_server", "warning", "the OMERO server is running (" + how + ")",
              "stop it before the upgrade: bin/omero web stop; bin/omero admin stop");
    else
        c.add("omero_server", "ok", "not running (" + how + ")");
}

void check_extension(Checks &c, Db &db, const OmeroDbState &st)
{
    // the extension
    if (!st.extension_version.empty())
        c.add("extension", "ok", "omero_upgrade " + st.extension_version + " installed");
    else if (db.query("SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'omero_upgrade'").empty())
        c.add("extension", "warning", "omero_upgrade is not available on this PostgreSQL server",
              "install it (make install on the database host), then CREATE EXTENSION omero_upgrade");
    else
        c.add("extension", "warning", "omero_upgrade is available but not installed in " + st.dbname,
              "psql -d " + shell_quote(st.dbname) + " -c 'CREATE EXTENSION omero_upgrade' (as the database owner)");
}

// Prints each check (the fix below a problem) and the tally; the number failed.
int show_checks(const Checks &c, Db &db, const Settings &s, const std::string &target)
{
    int n_ok = 0, n_warn = 0, n_fail = 0;
    nlohmann::json arr = nlohmann::json::array();
    for (const auto &x : c.list) {
        (x.status == "ok" ? n_ok : x.status == "warning" ? n_warn : n_fail)++;
        char head[64];
        std::snprintf(head, sizeof head, "%-8s %-19s ", x.status == "ok" ? "ok" : x.status == "warning" ? "WARNING" : "FAILED",
                      x.name.c_str());
        out().say(head + x.detail);
        if (!x.fix.empty() && x.status != "ok")
            out().say(std::string(28, ' ') + "fix: " + x.fix);
        arr.push_back({{"name", x.name}, {"status", x.status}, {"detail", x.detail}, {"fix", x.fix}});
    }
    out().say(std::to_string(n_ok) + " ok, " + std::to_string(n_warn) + " warning(s), " + std::to_string(n_fail) +
              " failed (target " + target + ", database " + db.params().describe() + ")");
    out().result() = {{"target", target}, {"checks", arr}, {"settings", s.to_json()}};
    return n_fail;
}

int run_check(const CheckOptions &o, Context &ctx)
{
    Settings &s = ctx.settings();
    Checks c;
    check_config(c, s);
    Db &db = ctx.db();
    OmeroDbState st = read_omero_state(db);
    std::string target = check_target(c, o, s, st);
    check_dbpatch(c, st);
    check_pg_version(c, db, st, target);
    check_encoding(c, st);
    check_schema_privileges(c, db, st);
    check_clients(c, st);
    check_open_files(c, s);
    check_backup_space(c, o, ctx, st);
    check_vacuum_space(c, db);
    check_server(c, s);
    check_extension(c, db, st);
    return show_checks(c, db, s, target) ? EXIT_PROBLEM : EXIT_OK;
}

} // namespace

CommandRun setup_check(CLI::App &sub)
{
    return command_setup<CheckOptions, add_check_options, run_check>(sub);
}

} // namespace ou
