// See run_preflight.hpp.
#include "run_preflight.hpp"

#include "common.hpp"
#include "fsutil.hpp"

#include "installation.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace ou::run {

namespace {

bool has(const std::vector<std::string> &v, const std::string &x)
{
    return std::find(v.begin(), v.end(), x) != v.end();
}

bool local_host(const std::string &h)
{
    return h.empty() || h[0] == '/' || h == "localhost" || h == "127.0.0.1" || h == "::1";
}

struct Who {
    std::string user, quoted;
    bool superuser = false, db_owner = false, createdb = false;
};

Who who(Db &db)
{
    Rows r = db.query("SELECT current_user AS u, pg_catalog.quote_ident(current_user) AS q, r.rolsuper AS s, "
                      "       r.rolcreatedb AS c, pg_catalog.pg_has_role(current_user, d.datdba, 'USAGE') AS o"
                      "  FROM pg_catalog.pg_roles r, pg_catalog.pg_database d"
                      " WHERE r.rolname = current_user AND d.datname = pg_catalog.current_database()");
    Who w;
    if (r.empty())
        return w;
    w.user = r.str(0, "u");
    w.quoted = r.str(0, "q");
    w.superuser = r.str(0, "s") == "t";
    w.createdb = r.str(0, "c") == "t";
    w.db_owner = r.str(0, "o") == "t";
    return w;
}

// Tables (of `where`) whose owner the user does not act as: "N: a (owned by b), …" or "".
std::string not_owned(Db &db, const std::string &where)
{
    Rows r = db.query("SELECT format('%I.%I', n.nspname, c.relname) AS t, pg_catalog.pg_get_userbyid(c.relowner) AS o,"
                      "       count(*) OVER () AS n"
                      "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                      " WHERE c.relkind IN ('r', 'p', 'm') AND " + where +
                      "   AND NOT pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')"
                      " ORDER BY 1 LIMIT 3");
    if (r.empty())
        return "";
    std::string s = r.str(0, "n") + " table(s), e.g. ";
    for (size_t i = 0; i < r.rows.size(); i++)
        s += (i ? ", " : "") + r.str(i, "t") + " (owned by " + r.str(i, "o") + ")";
    return s;
}

} // namespace

const std::vector<std::string> &checked_steps()
{
    static const std::vector<std::string> ids = {"binaries-install", "db-upgrade", "db-verify", "vacuum-full",
                                                   "cache-clear"};
    return ids;
}

std::vector<std::string> step_preconditions(const RunOptions &o, const Settings &s, Db &db, const OmeroDbState &st,
                                            const std::string &sdir, const std::vector<std::string> &pending)
{
    std::vector<std::string> p;
    auto check = [&](const std::string &id) { return has(pending, id) && !has(o.force_steps, id); };
    auto skip = [](const std::string &id) { return "; or skip this check with --force-step " + id; };
    Who w = who(db);

    // binaries-install writes the new tree beside the server directory.
    if (check("binaries-install")) {
        std::string parent = dir_name(sdir);
        if (access(parent.c_str(), W_OK | X_OK) != 0)
            p.push_back("step binaries-install: cannot write in " + parent +
                        " (the new server is unpacked beside " + sdir + " and the symlink swapped there): "
                        "run as the user owning it" + skip("binaries-install"));
    }
    // db-upgrade runs OMERO's scripts, which alter OMERO's tables: only their owner (or a
    // superuser) may.
    if (check("db-upgrade") && !w.superuser) {
        std::string n = not_owned(db, "n.nspname = 'public'");
        if (!n.empty())
            p.push_back("step db-upgrade: the upgrade scripts alter OMERO's tables, but " + w.user + " does not own " +
                        n + ": connect as their owner (config.xml's omero.db.user, or run --db-user OWNER) or a "
                        "superuser" + skip("db-upgrade"));
    }
    // db-verify builds a fresh schema in a scratch database that the connecting role creates (CREATEDB
    // or a superuser), owned by the OMERO database user (a role that is not a superuser must be
    // able to act as it). Without that it could only say "not verified" after the upgrade.
    if (check("db-verify") && !w.superuser) {
        if (!w.createdb)
            p.push_back("step db-verify: " + w.user + " may not create databases, and db verify builds the fresh schema "
                        "in a scratch database of its own (dropped after), so the upgraded schema could not be "
                        "verified: as a superuser ALTER ROLE " + w.quoted + " CREATEDB, or run --db-user with a role "
                        "that may (CREATEDB or a superuser, e.g. --db-user postgres); or go on without the verify: "
                        "--force-step db-verify (the report then says \"not verified\")");
        else if (!s.omero_db_user.empty() && s.omero_db_user != w.user) {
            Rows m = db.query("SELECT pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') AS m, "
                              "       pg_catalog.quote_ident(r.rolname) AS q"
                              "  FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
                              {s.omero_db_user});
            if (m.empty() || m.str(0, "m") != "t")
                p.push_back("step db-verify: " + w.user + " may create databases but not act as the OMERO database user " +
                            s.omero_db_user + ", who owns db verify's scratch database: as a superuser GRANT " +
                            (m.empty() ? s.omero_db_user : m.str(0, "q")) + " TO " + w.quoted +
                            ", or run --db-user with a superuser; or go on without the verify: --force-step db-verify");
        }
    }
    // vacuum-full: db vacuum --full refuses when it cannot check the free space of PostgreSQL's
    // data directory, or when there is not enough, and skips tables the user may not vacuum.
    if (check("vacuum-full")) {
        unsigned long long largest = std::strtoull(
            db.scalar("SELECT coalesce(max(pg_catalog.pg_total_relation_size(c.oid)), 0) FROM pg_catalog.pg_class c "
                      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                      "WHERE c.relkind IN ('r', 'm') AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema']) "
                      "AND n.nspname !~ '^pg_(toast|temp)'")
                .value_or("0")
                .c_str(),
            nullptr, 10);
        unsigned long long needed = largest + largest / 10;
        std::string datadir;
        if (local_host(s.conn.host)) {
            try {
                datadir = db.scalar("SELECT pg_catalog.current_setting('data_directory')").value_or("");
            } catch (const DbError &) {
            }
        }
        if (!local_host(s.conn.host))
            p.push_back("step vacuum-full: the database server " + s.conn.host + " is not on this machine, so the "
                        "free space VACUUM FULL needs (about " + human_bytes(needed) + " in its data directory) "
                        "cannot be checked: make sure of it, then give --force-step vacuum-full");
        else if (datadir.empty())
            p.push_back("step vacuum-full: " + w.user + " cannot read data_directory, so db vacuum --full cannot check "
                        "the free space it needs (about " + human_bytes(needed) + "): run --db-user with a superuser, "
                        "or GRANT pg_read_all_settings TO " + w.user + " (as a superuser); or make sure of the space "
                        "and give --force-step vacuum-full");
        else {
            try {
                unsigned long long avail = free_bytes(datadir);
                if (avail < needed)
                    p.push_back("step vacuum-full: VACUUM FULL needs about " + human_bytes(needed) + " free in " + datadir +
                                ", " + human_bytes(avail) + " are free: free some space, or leave out --vacuum-full" +
                                skip("vacuum-full"));
            } catch (const CommandError &e) {
                p.push_back("step vacuum-full: " + std::string(e.what()) + skip("vacuum-full"));
            }
        }
        if (!w.superuser && !w.db_owner) {
            std::string n = not_owned(db, "n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema']) AND "
                                          "n.nspname !~ '^pg_(toast|temp)'");
            if (!n.empty())
                p.push_back("step vacuum-full: " + w.user + " may not vacuum " + n +
                            " (VACUUM skips them): run --db-user with the database owner or a superuser" +
                            skip("vacuum-full"));
        }
    }
    // cache-clear deletes below <omero.data.dir>/BioFormatsCache.
    // cache-clear deletes below <omero.data.dir>/BioFormatsCache, a plain directory of it.
    if (check("cache-clear")) {
        std::string data = resolved_path(s.data_dir);
        std::string cache = s.data_dir + "/BioFormatsCache";
        struct stat lst;
        if (data.empty())
            p.push_back("step cache-clear: the OMERO data directory " + s.data_dir + " (omero.data.dir of " +
                        s.config_path + ") does not exist: set omero.data.dir to the server's data directory" +
                        skip("cache-clear"));
        else if (lstat(cache.c_str(), &lst) == 0 && (!S_ISDIR(lst.st_mode) || resolved_path(cache) != data + "/BioFormatsCache"))
            p.push_back("step cache-clear: " + cache + " is not a plain directory of the data directory (a link, "
                        "or not a directory): cache clear refuses to delete there; make it one, or clear it by hand" +
                        skip("cache-clear"));
        else if (lstat(cache.c_str(), &lst) == 0 && access(cache.c_str(), W_OK | X_OK) != 0)
            p.push_back("step cache-clear: cannot delete in " + cache + ": run as the OMERO user" + skip("cache-clear"));
    }
    (void)st;
    return p;
}

} // namespace ou::run
