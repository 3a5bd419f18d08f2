// A verified backup into a new database (the library of `restore`, `db to-utf8` and `rollback`).
//
// Order: checksum and contents first (a damaged dump stops everything before a database is
// created), then the new database (UTF8, template0, owned by the OMERO user; names are quoted by
// the server with format('%I')), then pg_restore with --exit-on-error, then the restored dbpatch
// version is compared with the manifest's, and only then, with --switch, config.xml is pointed at
// the new database. The source database and the dump are never changed.
#include "restore.hpp"
#include "fsutil.hpp"
#include "process.hpp"
#include "progress.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace ou {

namespace {

std::unique_ptr<Db> connect_maintenance(const Settings &s)
{
    try {
        return connect_db(s, "postgres");
    } catch (const CommandError &first) {
        try {
            return connect_db(s, "template1");
        } catch (const CommandError &) {
            throw first;
        }
    }
}

// Writes the filtered table of contents for pg_restore -L: the omero_upgrade entries commented out.
std::string write_filtered_list(const VerifyResult &v, const std::string &dir, int &left_out)
{
    std::string text;
    left_out = 0;
    for (const auto &e : v.toc) {
        if (is_extension_toc_line(e.rest)) {
            text += ";" + e.line + "\n";
            left_out++;
        } else {
            text += e.line + "\n";
        }
    }
    std::string path = dir + "/toc.list";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text.data(), text.size()) != (ssize_t)text.size()) {
        if (fd >= 0)
            close(fd);
        throw CommandError("cannot write " + path + ": " + std::strerror(errno));
    }
    close(fd);
    return path;
}

// A private temporary directory, removed with what it holds.
struct TempDir {
    std::string path;
    TempDir()
    {
        const char *tmp = std::getenv("TMPDIR");
        std::string t = std::string(tmp && *tmp ? tmp : "/tmp") + "/omero-upgrade.XXXXXX";
        std::vector<char> b(t.begin(), t.end());
        b.push_back('\0');
        if (!mkdtemp(b.data()))
            throw CommandError(std::string("cannot create a temporary directory: ") + std::strerror(errno));
        path = b.data();
    }
    ~TempDir() { remove_tree(path); }
};

} // namespace

void check_db_name(const std::string &name)
{
    if (name.empty())
        throw CommandError("the new database name is empty");
    if (name.size() > 63)
        throw CommandError("the database name '" + name + "' is longer than 63 bytes: PostgreSQL would shorten it",
                           "choose a shorter name");
}

bool check_restore_target(const Settings &s, const std::string &name, const std::string &owner)
{
    check_db_name(name);
    auto maint = connect_maintenance(s);
    Rows d = maint->query("SELECT d.datistemplate OR NOT d.datallowconn"
                          "       OR d.datname OPERATOR(pg_catalog.=) ANY (ARRAY['postgres', 'template0', 'template1']::pg_catalog.name[]) AS system,"
                          "       pg_catalog.pg_get_userbyid(d.datdba)::pg_catalog.text AS owner,"
                          "       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a"
                          "         WHERE a.datid OPERATOR(pg_catalog.=) d.oid"
                          "           AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()) AS sessions"
                          "  FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
                          {name});
    if (d.empty()) {
        out().detail("the database '" + name + "' does not exist: it will be created");
        return false;
    }
    const std::string hint = "choose a new name with --into: the tool then creates the database itself (UTF8, "
                             "from template0, owned by the OMERO user)";
    if (d.str(0, "system") == "t")
        throw CommandError("'" + name + "' is a system or template database: refusing to restore into it", hint);
    auto target = connect_db(s, name);
    // Anything made after initdb (an OID from FirstNormalObjectId, 16384, on) is not the system's:
    // a function, operator or type planted there would run inside the restored database's code.
    // Temporary schemas (made on first use) do not count.
    static const char *catalogs[][2] = {
        {"relations", "pg_class"}, {"functions", "pg_proc"}, {"types", "pg_type"}, {"operators", "pg_operator"},
        {"extensions", "pg_extension"}, {"casts", "pg_cast"}, {"collations", "pg_collation"},
        {"conversions", "pg_conversion"}, {"operator classes", "pg_opclass"}, {"operator families", "pg_opfamily"},
        {"access methods", "pg_am"}, {"languages", "pg_language"}, {"event triggers", "pg_event_trigger"},
        {"text search configurations", "pg_ts_config"}, {"text search dictionaries", "pg_ts_dict"},
        {"text search parsers", "pg_ts_parser"}, {"text search templates", "pg_ts_template"},
        {"foreign-data wrappers", "pg_foreign_data_wrapper"}, {"foreign servers", "pg_foreign_server"},
        {"publications", "pg_publication"}, {"default privileges", "pg_default_acl"},
        {"large objects", "pg_largeobject_metadata"}, {"transforms", "pg_transform"},
        {"statistics objects", "pg_statistic_ext"}, {"triggers", "pg_trigger"}, {"policies", "pg_policy"}};
    std::string sql = "SELECT k, n FROM (";
    for (size_t i = 0; i < sizeof catalogs / sizeof catalogs[0]; i++)
        sql += std::string(i ? " UNION ALL " : "") + "SELECT '" + catalogs[i][0] +
               "'::pg_catalog.text AS k, pg_catalog.count(*) AS n FROM pg_catalog." + catalogs[i][1] +
               " WHERE oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid";
    sql += " UNION ALL SELECT 'schemas', pg_catalog.count(*) FROM pg_catalog.pg_namespace"
           " WHERE oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid"
           "   AND pg_catalog.left(nspname::pg_catalog.text, 8) OPERATOR(pg_catalog.<>) 'pg_temp_'"
           "   AND pg_catalog.left(nspname::pg_catalog.text, 14) OPERATOR(pg_catalog.<>) 'pg_toast_temp_'"
           " UNION ALL SELECT 'settings of the database (ALTER DATABASE … SET)', pg_catalog.count(*)"
           "   FROM pg_catalog.pg_db_role_setting WHERE setdatabase OPERATOR(pg_catalog.=)"
           "        (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())"
           " UNION ALL SELECT 'grants of CREATE to other roles', pg_catalog.count(*) FROM ("
           "   SELECT a.grantee FROM pg_catalog.pg_database x, pg_catalog.aclexplode(x.datacl) a"
           "    WHERE x.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()"
           "      AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE' AND a.grantee OPERATOR(pg_catalog.<>) x.datdba"
           "   UNION ALL SELECT a.grantee FROM pg_catalog.pg_namespace x, pg_catalog.aclexplode(x.nspacl) a"
           "    WHERE x.nspname OPERATOR(pg_catalog.=) 'public' AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'"
           "      AND a.grantee OPERATOR(pg_catalog.<>) x.nspowner"
           // Before PostgreSQL 15, PUBLIC's CREATE on a public owned by the bootstrap superuser is
           // what every new database has (one the tool creates too): the version's default, not
           // a grant someone made. check warns about it (schema_privileges).
           "      AND NOT (pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.<) 150000"
           "               AND a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid"
           "               AND x.nspowner OPERATOR(pg_catalog.=) 10::pg_catalog.oid)) g"
           ") c WHERE n OPERATOR(pg_catalog.>) 0 ORDER BY k";
    Rows found = target->query(sql);
    if (!found.empty()) {
        std::string what;
        for (size_t i = 0; i < found.rows.size(); i++)
            what += (i ? ", " : "") + found.str(i, "n") + " " + found.str(i, "k");
        throw CommandError("database '" + name + "' already exists and is not empty (it holds " + what +
                               "): refusing to restore into it",
                           "choose a new name with --into, or drop that database yourself if it is really unused");
    }
    Value enc = target->scalar("SELECT pg_catalog.pg_encoding_to_char(d.encoding) FROM pg_catalog.pg_database d"
                               " WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()");
    if (enc.value_or("") != "UTF8")
        throw CommandError("database '" + name + "' already exists with encoding " + enc.value_or("?") +
                               ", not UTF8: OMERO needs UTF8",
                           "drop it, or choose a new name with --into (the tool then creates it UTF8)");
    if (d.str(0, "owner") != owner)
        throw CommandError("database '" + name + "' already exists and belongs to " + d.str(0, "owner") + ", not to " +
                               owner + " (the owner the restored database must have): refusing to restore into it",
                           hint);
    // Last: sessions come and go (a backup's or a restore's connection may still be closing),
    // what the database holds does not.
    if (d.str(0, "sessions") != "0")
        throw CommandError("database '" + name + "' already exists and " + d.str(0, "sessions") +
                               " other session(s) are connected to it: refusing to restore into it",
                           hint);
    return true;
}

std::string restore_owner(const Settings &s, const RestoreOptions &o)
{
    return o.owner.empty() ? s.omero_db_user : o.owner;
}

namespace {

// Creates the database (UTF8, template0, owned by `owner`) as the connecting role; true when made.
bool create_target(Db &maint, const RestoreOptions &o, const std::string &owner, bool existed)
{
    if (existed) {
        out().step("the database '" + o.into + "' exists: restoring into it, as it is empty (no object made after initdb), "
                   "UTF8, owned by " + owner + " and used by no one");
        return false;
    }
    if (maint.query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1", {owner}).empty())
        throw CommandError("the database owner role '" + owner + "' does not exist on this server",
                           "create it first, or give the owner with --owner ROLE");
    // The server quotes the names: no SQL text is built from user input here.
    std::string sql = maint.scalar("SELECT pg_catalog.format('CREATE DATABASE %I WITH ENCODING ''UTF8'' TEMPLATE template0 "
                                   "OWNER %I', $1::text, $2::text)",
                                   {o.into, owner})
                          .value_or("");
    try {
        maint.query(sql);
    } catch (const DbError &e) {
        throw CommandError(std::string("could not create database '") + o.into + "': " + e.what(),
                           "connect as a role that may create databases and is a member of '" + owner +
                               "' (e.g. --db-user postgres), or create it yourself: createdb -E UTF8 -T template0 -O " +
                               shell_quote(owner) + " " + shell_quote(o.into));
    }
    out().step("created database '" + o.into + "' (UTF8, owner " + owner + ")");
    return true;
}

// Drops the database this run created (a failed restore); one that existed is left as it is.
void drop_created(Db &maint, const std::string &into, bool created)
{
    if (!created) {
        out().warn("the database '" + into + "' existed before this run and is left as the failed restore left it");
        return;
    }
    try {
        std::string drop = maint.scalar("SELECT pg_catalog.format('DROP DATABASE %I', $1::text)", {into}).value_or("");
        maint.query(drop);
        out().say("dropped the database '" + into + "' created by this run (the restore failed)");
    } catch (const std::exception &e) {
        out().warn("could not drop the half-restored database '" + into + "': " + e.what());
    }
}

// Who loads the dump: the new database's owner, never the --db-user that created the database.
// A dump is code: the CHECK constraints, domains and defaults of its tables call functions its
// owner wrote, and COPY runs them as the role that restores. Loaded by a superuser, a function an
// OMERO owner planted in the dump would run as superuser; loaded by the owner, it runs with the
// rights the owner has anyway. The owner's password: config.xml's omero.db.pass when the owner is
// the OMERO user, the connection's own when it is the connecting user, else libpq's usual places.
ConnParams loader_conn(const Settings &s, const std::string &into, const std::string &owner)
{
    ConnParams cp = owner == s.omero_db_user ? omero_user_conn(s, into) : conn_for(s, into);
    if (cp.user != owner) {
        cp.user = owner;
        cp.password.reset();
    }
    return cp;
}

// Refuses before pg_restore when the owner cannot log in (a clear message instead of pg_restore's).
void require_loader_login(const ConnParams &cp)
{
    try {
        auto db = Db::connect(cp);
    } catch (const std::exception &e) {
        throw CommandError("the restore loads the dump as the database's owner '" + cp.user +
                               "' (so that code in the dump runs with the owner's rights, never with those of the role "
                               "that creates the database), and could not connect as it: " + e.what(),
                           "give " + cp.user + "'s password in config.xml (omero.db.pass) when it is the OMERO user, "
                           "or in ~/.pgpass or PGPASSFILE, or let it log in through pg_hba.conf");
    }
}

// pg_restore as the owner, with progress; CommandError with pg_restore's error lines on failure.
void run_pg_restore(const ConnParams &loader, const VerifyResult &v, const RestoreOptions &o, const std::string &list)
{
    PgClient pc = pg_client(loader);
    // --no-owner: every object belongs to the restoring owner (a non-superuser cannot give
    // objects to other roles, and the restored database is the OMERO user's).
    std::vector<std::string> argv = {"pg_restore", "--exit-on-error", "--no-password", "--no-owner", "--verbose",
                                     "--dbname=" + pc.conninfo};
    if (o.jobs > 0)
        argv.push_back("--jobs=" + std::to_string(o.jobs));
    if (!list.empty())
        argv.push_back("--use-list=" + list);
    argv.push_back(v.path);

    size_t total = 0, done = 0;
    for (const auto &e : v.toc)
        if (e.rest.rfind("TABLE DATA ", 0) == 0)
            total++;
    // Tables' data done: with --jobs the "finished item … TABLE DATA" lines; alone, pg_restore
    // names a table as it begins it, so the ones before the last are done. An estimate: tables
    // differ in size.
    Meter meter("pg_restore", "tables", total, true);
    size_t begun = 0;
    ProcOptions po;
    po.env = pc.env;
    po.on_stderr_line = [&](const std::string &l) {
        if (o.jobs > 0 && l.find("finished item") != std::string::npos && l.find("TABLE DATA") != std::string::npos)
            done++;
        else if (o.jobs == 0 && l.find("processing data for table") != std::string::npos)
            done = begun++;
        else
            return;
        meter.update(done, "");
    };
    po.on_tick = [&] { meter.update(done); };
    out().step("restoring " + v.path + " into '" + o.into + "' as " + loader.user +
               (o.jobs > 0 ? " with " + std::to_string(o.jobs) + " jobs" : ""));
    ProcResult r = run_process(argv, po);
    if (r.ok()) {
        meter.finish();
        return;
    }
    // Only the error lines: -v output is in the log.
    std::string errors;
    std::istringstream in(r.err);
    std::string l;
    while (std::getline(in, l))
        if (l.find("error:") != std::string::npos || l.find("ERROR") != std::string::npos ||
            l.find("DETAIL") != std::string::npos)
            errors += "\n  " + l;
    throw CommandError("pg_restore failed (" + r.describe() + ")" + (errors.empty() ? ": " + r.err_tail(2) : ":" + errors));
}

} // namespace

RestoreResult restore_into(const Settings &s, const VerifyResult &v, const RestoreOptions &o)
{
    std::string owner = restore_owner(s, o);
    bool existed = check_restore_target(s, o.into, owner);
    ConnParams loader = loader_conn(s, o.into, owner);
    auto maint = connect_maintenance(s);
    bool created = create_target(*maint, o, owner, existed);
    try {
        require_loader_login(loader);
        TempDir tmp;
        bool leave_out_ext = false;
        int left_out = 0;
        if (v.has_extension_entries) {
            bool available = !maint->query("SELECT 1 FROM pg_catalog.pg_available_extensions"
                                           " WHERE name OPERATOR(pg_catalog.=) 'omero_upgrade'").empty();
            leave_out_ext = o.skip_extension || !available;
            if (leave_out_ext)
                out().warn(std::string(available ? "--skip-extension" : "this server has no omero_upgrade extension") +
                           ": the extension and its state (journals, archives) are left out of the restore");
        }
        run_pg_restore(loader, v, o, leave_out_ext ? write_filtered_list(v, tmp.path, left_out) : std::string());

        auto db = connect_db(s, o.into);
        OmeroDbState st = read_omero_state(*db);
        RestoreResult res;
        res.version_ok = st.is_omero && st.version == o.expected_version;
        res.info = {{"file", v.path},
                    {"database", o.into},
                    {"created", created},
                    {"owner", owner},
                    {"loaded_as", loader.user},
                    {"dbpatch_version", st.version},
                    {"expected_dbpatch_version", o.expected_version},
                    {"encoding", st.encoding},
                    {"extension_left_out", leave_out_ext},
                    {"extension_entries_left_out", left_out},
                    {"size_bytes", st.size_bytes}};
        if (!res.version_ok)
            out().error("the restored database's dbpatch version is " + (st.version.empty() ? "missing" : st.version) +
                        ", expected " + o.expected_version + ": do not use '" + o.into + "'");
        else
            out().say("restored '" + o.into + "': dbpatch " + st.version + ", " + human_bytes(st.size_bytes));
        return res;
    } catch (...) {
        drop_created(*maint, o.into, created);
        throw;
    }
}

} // namespace ou
