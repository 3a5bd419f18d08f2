// A verified backup into a new database (the library of `restore`, `db to-utf8` and `rollback`).
//
// Order: checksum and contents first (a damaged dump stops everything before a database is
// created), then the new database (UTF8, template0, owned by the OMERO user; names are quoted by
// the server with format('%I')), then pg_restore with --exit-on-error, then the restored dbpatch
// version is compared with the manifest's, and only then, with --switch, config.xml is pointed at
// the new database. The source database and the dump are never changed.
#include "restore.hpp"
#include "dump_sql.hpp"
#include "fsutil.hpp"
#include "process.hpp"
#include "progress.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <set>
#include <sstream>
#include <thread>

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

// The database `name` as a restore target: whether it is a system or template one, its owner and
// how many other sessions use it; no row when it does not exist. Autovacuum's workers do not
// count (a database just loaded is soon analysed). A backend whose client has gone stays listed
// until its process has exited, so the tool's own earlier run (or a pg_restore just finished) may
// still show: sessions are read again for up to 5 seconds before they count.
Rows read_database(Db &maint, const std::string &name)
{
    const char *const sql =
        "SELECT d.datistemplate OR NOT d.datallowconn"
        "       OR d.datname OPERATOR(pg_catalog.=) ANY (ARRAY['postgres', 'template0', 'template1']::pg_catalog.name[]) AS system,"
        "       pg_catalog.pg_get_userbyid(d.datdba)::pg_catalog.text AS owner,"
        "       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a"
        "         WHERE a.datid OPERATOR(pg_catalog.=) d.oid"
        "           AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()"
        "           AND (a.backend_type IS NULL"
        "                OR a.backend_type OPERATOR(pg_catalog.<>) 'autovacuum worker'::pg_catalog.text)) AS sessions"
        "  FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) $1::pg_catalog.name";
    Rows d = maint.query(sql, {name});
    for (int i = 0; i < 25 && !d.empty() && d.str(0, "sessions") != "0"; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        d = maint.query(sql, {name});
    }
    return d;
}

// A TOC entry's "<desc> <schema> <name> <owner>" without the trailing space of an empty owner.
std::string toc_rest(const TocEntry &e)
{
    std::string r = e.rest;
    while (!r.empty() && r.back() == ' ')
        r.pop_back();
    return r;
}

// Writes the filtered table of contents for pg_restore -L: the omero_upgrade entries (when
// leave_out_ext) and the entries in `leave_out` (toc_rest) commented out.
std::string write_filtered_list(const VerifyResult &v, const std::string &dir, bool leave_out_ext,
                                const std::set<std::string> &leave_out, int &left_out)
{
    std::string text;
    left_out = 0;
    for (const auto &e : v.toc) {
        bool ext = is_extension_toc_line(e.rest);
        if ((leave_out_ext && ext) || leave_out.count(toc_rest(e))) {
            text += ";" + e.line + "\n";
            left_out += ext ? 1 : 0;
        } else {
            text += e.line + "\n";
        }
    }
    std::string path = dir + "/toc.list";
    write_private_file(path, text);
    return path;
}

} // namespace

void check_db_name(const std::string &name)
{
    if (name.empty())
        throw CommandError("the new database name is empty");
    if (name.size() > 63)
        throw CommandError("the database name '" + name + "' is longer than 63 bytes: PostgreSQL would shorten it",
                           "choose a shorter name");
}

namespace {

// How many settings the current database has (ALTER DATABASE … SET, for all roles or one): a
// search_path or a session_preload_libraries there runs in every session of the restore.
const char *const database_settings =
    "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_db_role_setting WHERE setdatabase OPERATOR(pg_catalog.=)"
    "   (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))";
// The grantees of CREATE on the current database other than its owner (a SELECT of one column).
const char *const database_create_grants =
    "   SELECT a.grantee FROM pg_catalog.pg_database x, pg_catalog.aclexplode(x.datacl) a"
    "    WHERE x.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()"
    "      AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE' AND a.grantee OPERATOR(pg_catalog.<>) x.datdba";

} // namespace

bool check_restore_target(const Settings &s, const std::string &name, const std::string &owner)
{
    check_db_name(name);
    auto maint = connect_maintenance(s);
    Rows d = read_database(*maint, name);
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
               // a large object's OID is its maker's choice (lo_create(777)): every one counts
               (std::strcmp(catalogs[i][1], "pg_largeobject_metadata") == 0 ? ""
                                                                            : " WHERE oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid");
    sql += " UNION ALL SELECT 'schemas', pg_catalog.count(*) FROM pg_catalog.pg_namespace"
           " WHERE oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid"
           "   AND pg_catalog.left(nspname::pg_catalog.text, 8) OPERATOR(pg_catalog.<>) 'pg_temp_'"
           "   AND pg_catalog.left(nspname::pg_catalog.text, 14) OPERATOR(pg_catalog.<>) 'pg_toast_temp_'"
           " UNION ALL SELECT 'settings of the database (ALTER DATABASE … SET)', " + std::string(database_settings) +
           " UNION ALL SELECT 'grants of CREATE to other roles', pg_catalog.count(*) FROM (" + database_create_grants +
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

bool is_superuser(Db &db, const std::string &role)
{
    return db.scalar("SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
                     {role})
               .value_or("") == "t";
}

// Why code running as `role` could act as a superuser, or "" when it cannot: a superuser; a
// member of a superuser role (SET ROLE); a member of the roles that run programs or read and
// write files as the server's system user; CREATEROLE before PostgreSQL 16 (it may grant itself
// any of those).
std::string superuser_equivalent(Db &db, const std::string &role)
{
    Rows r = db.query(
        "SELECT r.rolsuper AS super,"
        "       CASE WHEN pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.<) 160000"
        "            THEN CASE WHEN r.rolcreaterole THEN r.rolname::pg_catalog.text"
        "                      ELSE (SELECT pg_catalog.string_agg(c.rolname::pg_catalog.text, ', ' ORDER BY c.rolname)"
        "                              FROM pg_catalog.pg_roles c WHERE c.rolcreaterole AND c.oid OPERATOR(pg_catalog.<>) r.oid"
        "                               AND pg_catalog.pg_has_role(r.oid, c.oid, 'MEMBER')) END END AS createrole,"
        "       (SELECT pg_catalog.string_agg(g.rolname::pg_catalog.text, ', ' ORDER BY g.rolname)"
        "          FROM pg_catalog.pg_roles g"
        "         WHERE g.oid OPERATOR(pg_catalog.<>) r.oid"
        "           AND (g.rolsuper OR g.rolname OPERATOR(pg_catalog.=) ANY (ARRAY['pg_execute_server_program',"
        "                'pg_write_server_files', 'pg_read_server_files']::pg_catalog.name[]))"
        "           AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')) AS via"
        "  FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
        {role});
    if (r.empty())
        return "";
    if (r.str(0, "super") == "t")
        return role + " is a superuser";
    if (r.get(0, "via"))
        return role + " is a member of " + r.str(0, "via") +
               " (a superuser, or a role that runs programs or reads and writes files as the server's system user)";
    if (r.get(0, "createrole")) {
        if (r.str(0, "createrole") == role)
            return role + " has CREATEROLE, which before PostgreSQL 16 lets it grant itself any role";
        return role + " is a member of " + r.str(0, "createrole") +
               ", which has CREATEROLE: before PostgreSQL 16 that lets it grant itself any role";
    }
    return "";
}

bool role_exists(Db &db, const std::string &role)
{
    return !db.query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name", {role})
                .empty();
}

// What loading the dump as its owner needs, decided before anything is created.
struct LoadPlan {
    bool loader_super = false, maint_super = false;
    std::string loader_privileged;         // why the loader acts as a superuser ("" when it does not)
    std::vector<DumpExtension> precreate;  // made first by the connecting superuser, from the server's files
    bool public_to_owner = false;          // ALTER SCHEMA public OWNER TO the owner (PostgreSQL < 15)
    std::set<std::string> leave_out;       // toc_rest of entries pg_restore must not run
    std::vector<std::string> taken_over;   // other roles whose objects become the owner's
    bool needs_setup() const { return !precreate.empty() || public_to_owner; }
};

std::string some_objects(const std::vector<std::string> &objects)
{
    std::string r;
    for (size_t i = 0; i < objects.size() && i < 3; i++)
        r += (i ? ", " : "") + objects[i];
    return r + (objects.size() > 3 ? ", … (" + std::to_string(objects.size()) + " in all)" : "");
}

// The dump's objects and their owners. Loaded with --no-owner by `loader`, every object becomes
// the loader's and its code (CHECKs, domains, defaults, index expressions) runs as the loader
// during the load: objects of other roles would change hands and run with the loader's rights.
void plan_owners(LoadPlan &p, Db &maint, const DumpObjects &d, const std::string &loader, bool reassign)
{
    std::vector<std::string> others;
    for (const auto &[role, objects] : d.owned)
        if (role != loader)
            others.push_back(role + " (" + some_objects(objects) + ")");
    if (others.empty())
        return;
    std::string list;
    for (size_t i = 0; i < others.size(); i++)
        list += (i ? "; " : "") + others[i];
    if (!p.loader_privileged.empty())
        throw Refused("the dump holds objects of other roles than " + loader + ": " + list + ". Loaded by " + loader +
                          " (" + p.loader_privileged + "), their code (CHECKs, domains, index expressions) would run "
                          "with a superuser's rights: refusing; nothing was created",
                      "restore with --owner a role that is not a superuser and cannot become one (the OMERO "
                      "database user)");
    for (const auto &[role, objects] : d.owned)
        if (role != loader)
            p.taken_over.push_back(role);
    // All of them one role's, which gains nothing by its code running as the loader: one that is
    // not on this server (a dump from a site whose OMERO user had another name), or a superuser
    // here (it may act as the loader anyway; a fixture or a DBA's restore made everything
    // postgres's). Any other role's code would run with the loader's rights: --reassign-owners.
    if (p.taken_over.size() == 1 && !d.owned.count(loader)) {
        const std::string &a = p.taken_over[0];
        bool here = role_exists(maint, a);
        if (!here || !superuser_equivalent(maint, a).empty()) {
            out().step("the dump's objects belong to " + a + (here ? " (a superuser here)" : " (no such role on this server)") +
                       ": loaded as " + loader + ", they become " + loader + "'s");
            return;
        }
    }
    if (!reassign)
        throw Refused("the dump holds objects of other roles than its owner " + loader + ": " + list +
                          ". Loaded as " + loader + " they would become " + loader + "'s, and their code would run "
                          "as " + loader + " during the load: refusing; nothing was created",
                      "give them to " + loader + " in the source database (ALTER … OWNER TO) or move them out of "
                      "it, then back up again; or, when " + loader + " may own them all, --reassign-owners");
    out().warn("--reassign-owners: the objects of " + list + " become " + loader + "'s");
}

// What the table of contents (pg_restore --list) says and the SQL must agree with, before the SQL's
// owners are trusted: no name with a line break (the list shows it as a space), every entry's
// owner one the SQL gives objects to (or the loader, or pg_database_owner), as many extensions
// as the SQL creates. Schema public (every database has one) and omero_upgrade's entries are
// apart, as are the data of tables the dump does not create (an extension's configuration).
// spaced_roles: this server's roles whose names hold a space. A table of contents line ends with
// its owner's name, unquoted: "BLOB - 779 x omero" may be a large object of "x omero" as well as one
// of omero. The longest name a line ends with is taken as its owner (refusing, never allowing,
// when a name is ambiguous).
void check_toc_agrees(const VerifyResult &v, const DumpObjects &d, const std::string &loader,
                      const std::set<std::string> &spaced_roles)
{
    if (!d.crlf_names.empty()) {
        std::string names;
        std::vector<std::string> unique;
        for (const auto &n : d.crlf_names)
            if (std::find(unique.begin(), unique.end(), n) == unique.end())
                unique.push_back(n);
        for (size_t i = 0; i < unique.size() && i < 3; i++) {
            names += i ? ", " : "";
            for (char c : unique[i])
                names += c == '\n' ? std::string("\\n") : c == '\r' ? std::string("\\r") : std::string(1, c);
        }
        throw Refused("the dump holds names with a line break (" + names + "): its table of contents and its SQL "
                      "cannot be matched, so whose objects they are cannot be told: refusing; nothing was created",
                      "rename them in the source database (ALTER … RENAME TO), then back up again");
    }
    std::set<std::string> candidates{loader, "pg_database_owner"};
    for (const auto &[role, objects] : d.owned)
        candidates.insert(role);
    if (!d.public_owner.empty())
        candidates.insert(d.public_owner);
    std::set<std::string> rests;
    size_t toc_extensions = 0;
    for (const auto &e : v.toc) {
        rests.insert(toc_rest(e));
        if (e.rest.rfind("EXTENSION - ", 0) == 0)
            toc_extensions++;
    }
    auto ends_with = [](const std::string &s, const std::string &tail) {
        return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
    };
    std::vector<std::string> unmatched;
    for (const auto &e : v.toc) {
        std::string r = toc_rest(e);
        if (r.size() < e.rest.size() || is_extension_toc_line(e.rest))  // no owner; ours
            continue;
        if (r.rfind("SCHEMA - public ", 0) == 0 || r.rfind("COMMENT - SCHEMA public ", 0) == 0 ||
            r.rfind("ACL - SCHEMA public ", 0) == 0)
            continue;
        if ((r.rfind("TABLE DATA ", 0) == 0 && !rests.count("TABLE " + r.substr(11))) ||
            (r.rfind("SEQUENCE SET ", 0) == 0 && !rests.count("SEQUENCE " + r.substr(13))))
            continue;
        std::string owner;
        for (const std::set<std::string> *names : std::initializer_list<const std::set<std::string> *>{&candidates, &spaced_roles})
            for (const auto &c : *names)
                if (c.size() > owner.size() && ends_with(r, " " + c))
                    owner = c;
        if (owner.empty() || !candidates.count(owner))
            unmatched.push_back(r);
    }
    if (!unmatched.empty())
        throw Refused("the dump's table of contents lists entries whose owner its SQL gives nothing to: " +
                          some_objects(unmatched) + ": whose objects they are cannot be told; refusing; nothing was created",
                      "give them to the OMERO database user in the source database (ALTER … OWNER TO), then back up again");
    if (toc_extensions != d.extensions.size())
        throw Refused("the dump's table of contents lists " + std::to_string(toc_extensions) + " extension(s), its SQL "
                          "creates " + std::to_string(d.extensions.size()) + ": refusing; nothing was created");
}

// The dump's extensions: each must exist on this server; one only a superuser may create is
// created first by the connecting role (a superuser), in the new database, from this server's
// files, and the dump's CREATE EXTENSION and COMMENT for it are left out.
void plan_extensions(LoadPlan &p, Db &maint, const DumpObjects &d, const std::string &loader, bool existed)
{
    for (const auto &e : d.extensions) {
        if (e.name == "omero_upgrade")  // restore_into leaves it out when the server lacks it
            continue;
        Rows r = maint.query("SELECT v.superuser, v.trusted FROM pg_catalog.pg_available_extensions a"
                             "  JOIN pg_catalog.pg_available_extension_versions v ON v.name OPERATOR(pg_catalog.=) a.name"
                             "   AND v.version OPERATOR(pg_catalog.=) a.default_version"
                             " WHERE a.name OPERATOR(pg_catalog.=) $1::pg_catalog.name",
                             {e.name});
        if (r.empty())
            throw Refused("the dump creates the extension " + e.name + ", which this PostgreSQL server does not have: "
                          "refusing; nothing was created",
                          "install it on the server (its package), then restore again");
        if (r.str(0, "superuser") != "t" || r.str(0, "trusted") == "t" || p.loader_super)
            continue;
        std::string why = "the dump creates the extension " + e.name + ", which only a superuser may create, and " +
                          loader + " (who loads the dump) is none";
        if (existed)
            throw Refused(why + ": the tool creates it first only in a database it creates; refusing",
                          "choose a new name with --into");
        if (!p.maint_super)
            throw Refused(why + ": refusing; nothing was created",
                          "run with --db-user a superuser (e.g. postgres): the tool then creates " + e.name +
                              " first, from this server's files, before anyone else may connect");
        if (!e.schema.empty() && e.schema != "public" && e.schema != "pg_catalog")
            throw Refused(why + ", in the schema " + e.schema + " (made by the dump itself): refusing; nothing was created",
                          "move it to schema public in the source (ALTER EXTENSION " + e.name + " SET SCHEMA public)");
        p.precreate.push_back(e);
        p.leave_out.insert("EXTENSION - " + e.name);
        p.leave_out.insert("COMMENT - EXTENSION " + e.name);
    }
}

LoadPlan plan_load(Db &maint, const VerifyResult &v, const RestoreOptions &o, const std::string &loader, bool existed)
{
    if (maint.query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
                    {loader})
            .empty())
        throw CommandError("the database owner role '" + loader + "' does not exist on this server",
                           "create it first, or give the owner with --owner ROLE");
    LoadPlan p;
    p.loader_super = is_superuser(maint, loader);
    p.loader_privileged = superuser_equivalent(maint, loader);
    p.maint_super = maint.scalar("SELECT r.rolsuper FROM pg_catalog.pg_roles r"
                                 " WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER")
                        .value_or("") == "t";
    DumpObjects d = read_dump_objects(v.io.empty() ? v.path : v.io);
    std::set<std::string> spaced_roles;
    Rows sr = maint.query("SELECT r.rolname::pg_catalog.text AS n FROM pg_catalog.pg_roles r"
                          " WHERE pg_catalog.strpos(r.rolname::pg_catalog.text, ' ') OPERATOR(pg_catalog.>) 0");
    for (size_t i = 0; i < sr.rows.size(); i++)
        spaced_roles.insert(sr.str(i, "n"));
    check_toc_agrees(v, d, loader, spaced_roles);
    plan_owners(p, maint, d, loader, o.reassign_owners);
    plan_extensions(p, maint, d, loader, existed);
    // Before PostgreSQL 15, public belongs to the bootstrap superuser: the dump's GRANT/REVOKE on
    // it, run by the owner, would only warn and the copy would keep the defaults (PUBLIC may create).
    if (d.public_privileges && maint.server_version() < 150000 && !existed && !p.loader_super) {
        if (!p.maint_super)
            throw Refused("the dump changes the privileges of schema public, which on this PostgreSQL (before 15) "
                          "belongs to the bootstrap superuser: loaded as " + loader + ", those changes would be lost; "
                          "refusing; nothing was created",
                          "run with --db-user a superuser: the tool then gives public to " + loader + " first");
        p.public_to_owner = true;
    }
    return p;
}

std::string server_format(Db &db, const std::string &fmt, const std::vector<Value> &args)
{
    // The server quotes the names (%I): no SQL text is built from user input here.
    std::vector<Value> params{fmt};
    std::string call = "SELECT pg_catalog.format($1::pg_catalog.text";
    for (size_t i = 0; i < args.size(); i++) {
        call += ", $" + std::to_string(i + 2) + "::pg_catalog.text";
        params.push_back(args[i]);
    }
    return db.scalar(call + ")", params).value_or("");
}

// Creates the database (UTF8, template0, owned by `owner`) as the connecting role; true when made.
// When the plan has set-up to do, no one but a superuser may connect until it is done.
bool create_target(Db &maint, const RestoreOptions &o, const std::string &owner, bool existed, const LoadPlan &p)
{
    if (existed) {
        out().step("the database '" + o.into + "' exists: restoring into it, as it is empty (no object made after initdb), "
                   "UTF8, owned by " + owner + " and used by no one");
        return false;
    }
    // With set-up to do, the database stays the connecting superuser's until it is done: its
    // owner could otherwise lift the CONNECTION LIMIT (ALTER DATABASE) and plant objects that the
    // superuser's CREATE EXTENSION would run.
    std::string sql = p.needs_setup()
                          ? server_format(maint, "CREATE DATABASE %I WITH ENCODING 'UTF8' TEMPLATE template0 CONNECTION LIMIT 0",
                                          {o.into})
                          : server_format(maint, "CREATE DATABASE %I WITH ENCODING 'UTF8' TEMPLATE template0 OWNER %I",
                                          {o.into, owner});
    try {
        maint.query(sql);
    } catch (const DbError &e) {
        throw CommandError(std::string("could not create database '") + o.into + "': " + e.what(),
                           "connect as a role that may create databases and is a member of '" + owner +
                               "' (e.g. --db-user postgres), or create it yourself: createdb -E UTF8 -T template0 -O " +
                               shell_quote(owner) + " " + shell_quote(o.into));
    }
    out().step("created database '" + o.into + "' (UTF8, owner " +
               (p.needs_setup() ? maint.params().user + " until it is set up, then " : "") + owner + ")");
    return true;
}

// The superuser's part, in the new database while it is the superuser's and only superusers may
// connect (CONNECTION LIMIT 0): the extensions only a superuser may create, from this server's
// files; public given to the owner (PostgreSQL < 15). Then the database is given to its owner
// and opened.
void set_up_target(const Settings &s, Db &maint, const std::string &into, const std::string &owner, const LoadPlan &p)
{
    if (!p.needs_setup())
        return;
    auto db = connect_db(s, into);
    for (const auto &e : p.precreate) {
        db->query(server_format(*db, "CREATE EXTENSION %I WITH SCHEMA %I",
                                {e.name, e.schema.empty() ? std::string("public") : e.schema}));
        out().step("created the extension " + e.name + " in '" + into + "' as " + db->params().user +
                   " (only a superuser may; the dump's CREATE EXTENSION is left out)");
    }
    if (p.public_to_owner) {
        db->query(server_format(*db, "ALTER SCHEMA public OWNER TO %I", {owner}));
        out().step("schema public of '" + into + "' given to " + owner + ", so that the dump's privileges on it apply");
    }
    db.reset();
    maint.query(server_format(maint, "ALTER DATABASE %I OWNER TO %I", {into, owner}));
    maint.query(server_format(maint, "ALTER DATABASE %I CONNECTION LIMIT -1", {into}));
}

// Drops the database this run created (a failed restore); one that existed is left as it is.
void drop_created(Db &maint, const std::string &into, bool created)
{
    if (!created) {
        out().warn("the database '" + into + "' existed before this run and is left as the failed restore left it");
        return;
    }
    try {
        maint.query(server_format(maint, "DROP DATABASE %I", {into}));
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
// the OMERO user, the connection's own when it is the connecting user, else libpq's usual places
// but PGPASSWORD (the connecting role's password is never offered to another role).
ConnParams loader_conn(const Settings &s, const std::string &into, const std::string &owner)
{
    ConnParams cp = owner == s.omero_db_user ? omero_user_conn(s, into) : conn_for(s, into);
    if (cp.user != owner) {
        cp.user = owner;
        cp.password.reset();
    }
    if (!cp.password && owner != s.conn.user)
        cp.no_env_password = true;
    return cp.no_env_password ? without_service_password(cp) : cp;
}

// Refuses before pg_restore when the owner cannot log in (a clear message instead of pg_restore's).
void require_loader_login(const ConnParams &cp)
{
    std::string is;
    try {
        auto db = Db::connect(cp);
        is = db->scalar("SELECT CURRENT_USER::pg_catalog.text").value_or("");
    } catch (const std::exception &e) {
        throw CommandError("the restore loads the dump as the database's owner '" + cp.user +
                               "' (so that code in the dump runs with the owner's rights, never with those of the role "
                               "that creates the database), and could not connect as it: " + e.what(),
                           "give " + cp.user + "'s password in config.xml (omero.db.pass) when it is the OMERO user, "
                           "or in ~/.pgpass or PGPASSFILE, or let it log in through pg_hba.conf");
    }
    // ALTER ROLE owner SET role = other: its sessions act as that other role, whose rights the
    // dump's code would then run with and whose objects pg_restore would make.
    if (is != cp.user)
        throw CommandError("the database's owner '" + cp.user + "' logs in as '" + is +
                               "' (a role setting: ALTER ROLE … SET role): the dump would be loaded with that role's "
                               "rights; refusing",
                           "ALTER ROLE " + quote_ident(cp.user) + " RESET role; then restore again");
}

// pg_restore as the owner, with progress; CommandError with pg_restore's error lines on failure,
// and on a privilege warning (a GRANT or REVOKE of the dump that did not apply: the copy's rights
// would differ from the source's).
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
    argv.push_back(v.io.empty() ? v.path : v.io);

    size_t total = 0, done = 0;
    for (const auto &e : v.toc)
        if (e.rest.rfind("TABLE DATA ", 0) == 0)
            total++;
    // Tables' data done: with --jobs the "finished item … TABLE DATA" lines; alone, pg_restore
    // names a table as it begins it, so the ones before the last are done. An estimate: tables
    // differ in size.
    Meter meter("pg_restore", "tables", total, true);
    size_t begun = 0;
    std::string warnings;
    ProcOptions po;
    po.env = pc.env;
    po.unset_env = pc.unset_env;
    po.on_stderr_line = [&](const std::string &l) {
        if (l.find("WARNING:") != std::string::npos && l.find("privileges") != std::string::npos)
            warnings += "\n  " + l;
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
    if (r.ok() && warnings.empty()) {
        meter.finish();
        return;
    }
    if (r.ok())
        throw CommandError("pg_restore could not apply all of the dump's privileges as " + loader.user +
                               " (the copy's rights would differ from the source's):" + warnings,
                           "run with --db-user a superuser, so that the tool prepares the database for " +
                               loader.user + " first");
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

std::string objects_not_owned_by(Db &db, const std::string &owner)
{
    // Made after initdb, not owned by `owner`, held by no extension, and not part of another
    // object; every catalog whose objects have an owner that pg_dump writes (ALTER … OWNER TO, a
    // large object's or default privileges' role), so the check before a backup (run's preflight)
    // sees what the restore of that backup would refuse (pg_depend 'i' or 'a': a table's indexes, TOAST table and row type, an array type,
    // an owned sequence: they go with it, and with it into an extension).
    Rows foreign = db.query(
        "SELECT k, pg_catalog.pg_get_userbyid(o)::pg_catalog.text AS who, pg_catalog.count(*) AS n FROM ("
        " SELECT 'relations'::pg_catalog.text AS k, c.oid, c.relowner AS o, 'pg_class'::pg_catalog.regclass AS cat FROM pg_catalog.pg_class c"
        "  WHERE c.relpersistence OPERATOR(pg_catalog.<>) 't'::pg_catalog.\"char\""  // another session's temporary tables
        " UNION ALL SELECT 'functions', p.oid, p.proowner, 'pg_proc'::pg_catalog.regclass FROM pg_catalog.pg_proc p"
        " UNION ALL SELECT 'types', t.oid, t.typowner, 'pg_type'::pg_catalog.regclass FROM pg_catalog.pg_type t"
        " UNION ALL SELECT 'operators', x.oid, x.oprowner, 'pg_operator'::pg_catalog.regclass FROM pg_catalog.pg_operator x"
        " UNION ALL SELECT 'schemas', n.oid, n.nspowner, 'pg_namespace'::pg_catalog.regclass FROM pg_catalog.pg_namespace n"
        "  WHERE pg_catalog.left(n.nspname::pg_catalog.text, 8) OPERATOR(pg_catalog.<>) 'pg_temp_'"
        "    AND pg_catalog.left(n.nspname::pg_catalog.text, 14) OPERATOR(pg_catalog.<>) 'pg_toast_temp_'"
        " UNION ALL SELECT 'event triggers', e.oid, e.evtowner, 'pg_event_trigger'::pg_catalog.regclass FROM pg_catalog.pg_event_trigger e"
        " UNION ALL SELECT 'collations', c.oid, c.collowner, 'pg_collation'::pg_catalog.regclass FROM pg_catalog.pg_collation c"
        " UNION ALL SELECT 'conversions', c.oid, c.conowner, 'pg_conversion'::pg_catalog.regclass FROM pg_catalog.pg_conversion c"
        " UNION ALL SELECT 'operator classes', c.oid, c.opcowner, 'pg_opclass'::pg_catalog.regclass FROM pg_catalog.pg_opclass c"
        " UNION ALL SELECT 'operator families', f.oid, f.opfowner, 'pg_opfamily'::pg_catalog.regclass FROM pg_catalog.pg_opfamily f"
        " UNION ALL SELECT 'languages', l.oid, l.lanowner, 'pg_language'::pg_catalog.regclass FROM pg_catalog.pg_language l"
        " UNION ALL SELECT 'text search configurations', c.oid, c.cfgowner, 'pg_ts_config'::pg_catalog.regclass FROM pg_catalog.pg_ts_config c"
        " UNION ALL SELECT 'text search dictionaries', t.oid, t.dictowner, 'pg_ts_dict'::pg_catalog.regclass FROM pg_catalog.pg_ts_dict t"
        " UNION ALL SELECT 'foreign-data wrappers', w.oid, w.fdwowner, 'pg_foreign_data_wrapper'::pg_catalog.regclass FROM pg_catalog.pg_foreign_data_wrapper w"
        " UNION ALL SELECT 'foreign servers', v.oid, v.srvowner, 'pg_foreign_server'::pg_catalog.regclass FROM pg_catalog.pg_foreign_server v"
        " UNION ALL SELECT 'publications', b.oid, b.pubowner, 'pg_publication'::pg_catalog.regclass FROM pg_catalog.pg_publication b"
        " UNION ALL SELECT 'statistics objects', t.oid, t.stxowner, 'pg_statistic_ext'::pg_catalog.regclass FROM pg_catalog.pg_statistic_ext t"
        " UNION ALL SELECT 'large objects', m.oid, m.lomowner, 'pg_largeobject'::pg_catalog.regclass FROM pg_catalog.pg_largeobject_metadata m"
        " UNION ALL SELECT 'default privileges', a.oid, a.defaclrole, 'pg_default_acl'::pg_catalog.regclass FROM pg_catalog.pg_default_acl a"
        // pg_subscription's oid column is not readable by everyone before PostgreSQL 14: its
        // objects count without it (always made by a user, never an extension member).
        " UNION ALL SELECT 'subscriptions', 0::pg_catalog.oid, u.subowner, 'pg_subscription'::pg_catalog.regclass FROM pg_catalog.pg_subscription u"
        "  WHERE u.subdbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d"
        "                                          WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())"
        // A large object's OID is whatever its maker chose (lo_create(777)): every one counts.
        ") x WHERE (x.oid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid"
        "           OR x.cat OPERATOR(pg_catalog.=) ANY (ARRAY['pg_largeobject', 'pg_subscription']::pg_catalog.regclass[]))"
        "  AND x.o OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name)"
        "  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dp WHERE dp.classid OPERATOR(pg_catalog.=) x.cat"
        "                    AND dp.objid OPERATOR(pg_catalog.=) x.oid"
        "                    AND dp.deptype OPERATOR(pg_catalog.=) ANY (ARRAY['e', 'i', 'a']::pg_catalog.\"char\"[]))"
        " GROUP BY k, o ORDER BY k, who",
        {owner});
    std::string what;
    for (size_t i = 0; i < foreign.rows.size(); i++)
        what += (i ? ", " : "") + foreign.str(i, "n") + " " + foreign.str(i, "k") + " of " + foreign.str(i, "who");
    return what;
}

std::vector<std::string> superuser_only_extensions(Db &db)
{
    Rows r = db.query("SELECT e.extname::pg_catalog.text AS n FROM pg_catalog.pg_extension e"
                      "  JOIN pg_catalog.pg_available_extension_versions v ON v.name OPERATOR(pg_catalog.=) e.extname"
                      "   AND v.version OPERATOR(pg_catalog.=) e.extversion"
                      " WHERE v.superuser AND NOT v.trusted ORDER BY 1");
    std::vector<std::string> names;
    for (size_t i = 0; i < r.rows.size(); i++)
        names.push_back(r.str(i, "n"));
    return names;
}

void check_reuse_target(const Settings &s, const std::string &name, const std::string &owner)
{
    auto maint = connect_maintenance(s);
    Rows d = read_database(*maint, name);
    if (d.empty())
        throw CommandError("the database '" + name + "' does not exist");
    if (d.str(0, "system") == "t")
        throw Refused("'" + name + "' is a system or template database: refusing to switch to it");
    if (d.str(0, "owner") != owner)
        throw Refused("the database '" + name + "' belongs to " + d.str(0, "owner") + ", not to " + owner +
                          " (the owner a copy made by the tool has): refusing to take it as the copy",
                      "choose a new name with --into: the tool then makes the copy itself");
    auto target = connect_db(s, name);
    std::string foreign = objects_not_owned_by(*target, owner);
    if (!foreign.empty())
        throw Refused("the database '" + name + "' holds objects that " + owner + " does not own (" + foreign +
                          "): not a copy made by the tool; refusing to take it",
                      "choose a new name with --into: the tool then makes the copy itself");
    // What a restore never makes: settings of the database, CREATE on it for other roles.
    Rows extra = target->query(std::string("SELECT ") + database_settings + " AS settings, (SELECT pg_catalog.count(*) FROM (" +
                               database_create_grants + ") g) AS grants");
    if (extra.str(0, "settings") != "0" || extra.str(0, "grants") != "0")
        throw Refused("the database '" + name + "' has " + extra.str(0, "settings") + " setting(s) (ALTER DATABASE … SET) "
                          "and grants CREATE to " + extra.str(0, "grants") + " other role(s): not a copy made by the "
                          "tool; refusing to take it",
                      "choose a new name with --into: the tool then makes the copy itself");
    if (d.str(0, "sessions") != "0")
        throw Refused("the database '" + name + "' is used by " + d.str(0, "sessions") +
                      " other session(s): refusing to take it as the copy");
}

RestoreResult restore_into(const Settings &s, const VerifyResult &v, const RestoreOptions &o)
{
    refuse_dump_others_may_write(v);
    std::string owner = restore_owner(s, o);
    bool existed = check_restore_target(s, o.into, owner);
    ConnParams loader = loader_conn(s, o.into, owner);
    auto maint = connect_maintenance(s);
    LoadPlan plan = plan_load(*maint, v, o, owner, existed);
    bool created = create_target(*maint, o, owner, existed, plan);
    try {
        set_up_target(s, *maint, o.into, owner, plan);
        require_loader_login(loader);
        PrivateTempDir tmp("omero-upgrade");
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
        bool filtered = leave_out_ext || !plan.leave_out.empty();
        run_pg_restore(loader, v, o,
                       filtered ? write_filtered_list(v, tmp.path(), leave_out_ext, plan.leave_out, left_out) : std::string());

        auto db = connect_db(s, o.into);
        // Whatever another role made in the database while it was being loaded (before
        // PostgreSQL 15 every role may create in public; a database that existed may have been
        // reached): not the dump's, and its code would run as whoever uses the copy.
        std::string foreign = objects_not_owned_by(*db, owner);
        if (!foreign.empty())
            throw CommandError("while the dump was loaded, other roles made objects in '" + o.into + "': " + foreign +
                                   (created ? ": the database is dropped" : ": it is left as it is, for you to look at"),
                               "find who (pg_stat_activity, the server log); REVOKE CONNECT ON DATABASE … FROM PUBLIC "
                               "while restoring, then restore again");
        OmeroDbState st = read_omero_state(*db);
        RestoreResult res;
        res.version_ok = st.is_omero && st.version == o.expected_version;
        res.info = {{"file", v.path},
                    {"database", o.into},
                    {"created", created},
                    {"owner", owner},
                    {"loaded_as", loader.user},
                    {"owners_taken_over", plan.taken_over},
                    {"extensions_created_first", nlohmann::json::array()},
                    {"dbpatch_version", st.version},
                    {"expected_dbpatch_version", o.expected_version},
                    {"encoding", st.encoding},
                    {"extension_left_out", leave_out_ext},
                    {"extension_entries_left_out", left_out},
                    {"size_bytes", st.size_bytes}};
        for (const auto &e : plan.precreate)
            res.info["extensions_created_first"].push_back(e.name);
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
