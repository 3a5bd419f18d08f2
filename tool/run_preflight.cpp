// See run_preflight.hpp.
#include "run_preflight.hpp"
#include "restore.hpp"
#include "run_steps.hpp"

#include "common.hpp"
#include "fsutil.hpp"

#include "installation.hpp"
#include "site_sql.hpp"

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

// One right a step needs: on a table or sequence (kind "table" | "sequence", name qualified) one of
// privs (comma-separated: any of them does, as for LOCK TABLE), on the extension's functions
// (kind "function", name the function's name in the extension's schema: EXECUTE on every
// overload), or USAGE on a schema (kind "schema").
struct Right {
    std::string kind, name, privs;
};

// The rights of `need` the connecting role lacks, as "PRIV on OBJECT"; objects that do not exist
// are left out (the step's own command says what is missing then).
std::vector<std::string> missing_rights(Db &db, const std::vector<Right> &need)
{
    std::string kinds = "{", names = "{", privs = "{";
    auto arr = [](std::string &a, const std::string &v) {
        std::string e;
        for (char c : v)
            e += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
        a += (a.size() > 1 ? "," : "") + std::string("\"") + e + "\"";
    };
    for (const auto &r : need) {
        arr(kinds, r.kind);
        arr(names, r.name);
        arr(privs, r.privs);
    }
    kinds += "}";
    names += "}";
    privs += "}";
    Rows r = db.query(
        "WITH x AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[]))"
        " WITH ORDINALITY AS x(kind, name, privs, i)),"
        " ext AS (SELECT e.extnamespace AS nsp FROM pg_catalog.pg_extension e WHERE e.extname = 'omero_upgrade')"
        // (Looked up in the catalog: to_regclass fails on a schema the role may not use.)
        " SELECT CASE x.kind WHEN 'schema' THEN 'USAGE on schema ' ELSE x.privs || ' on ' END || x.name AS m, x.i FROM x"
        "  LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = pg_catalog.split_part(x.name, '.', 1)"
        "  LEFT JOIN pg_catalog.pg_class c ON x.kind <> 'schema' AND c.relnamespace = n.oid"
        "        AND c.relname = pg_catalog.split_part(x.name, '.', 2)"
        "  WHERE (x.kind = 'table' AND c.oid IS NOT NULL AND NOT pg_catalog.has_table_privilege(c.oid, x.privs))"
        "     OR (x.kind = 'sequence' AND c.oid IS NOT NULL AND NOT pg_catalog.has_sequence_privilege(c.oid, x.privs))"
        "     OR (x.kind = 'schema' AND n.oid IS NOT NULL AND NOT pg_catalog.has_schema_privilege(n.oid, 'USAGE'))"
        " UNION ALL"
        " SELECT 'EXECUTE on function ' || p.oid::pg_catalog.regprocedure::pg_catalog.text, x.i FROM x, ext, pg_catalog.pg_proc p"
        "  WHERE x.kind = 'function' AND p.pronamespace = ext.nsp AND p.proname = x.name"
        "    AND NOT pg_catalog.has_function_privilege(p.oid, 'EXECUTE')"
        " UNION ALL"
        " SELECT 'USAGE on schema ' || pg_catalog.quote_ident(n.nspname), 0 FROM ext JOIN pg_catalog.pg_namespace n ON n.oid = ext.nsp"
        "  WHERE EXISTS (SELECT 1 FROM x WHERE x.kind = 'function') AND NOT pg_catalog.has_schema_privilege(n.oid, 'USAGE')"
        " ORDER BY 2, 1",
        {kinds, names, privs});
    std::vector<std::string> m;
    for (size_t i = 0; i < r.rows.size(); i++)
        m.push_back(r.str(i, "m"));
    return m;
}

// The rights of the optional steps that change OMERO's data (orphans, colors, wells): what their
// statements (the extension's, run with the caller's rights) read, write, lock and call.
std::vector<Right> rights_of(const std::string &id, Db &db)
{
    std::vector<Right> r = {{"schema", "omero_upgrade", "USAGE"}, {"table", "omero_upgrade.history", "INSERT"}};
    if (id == step_id::orphans) {
        // The delete locks each batch FOR UPDATE, re-checks the rule and deletes, archiving the rows.
        r.insert(r.end(), {{"table", "public.annotation", "SELECT"},         {"table", "public.annotation", "UPDATE"},
             {"table", "public.annotation", "DELETE"},         {"table", "omero_upgrade.orphan_run", "SELECT"},
             {"table", "omero_upgrade.orphan_run", "INSERT"},  {"table", "omero_upgrade.orphan_run", "UPDATE"},
             {"table", "omero_upgrade.orphan_archive", "INSERT"}, {"function", "omero_orphans_summary", ""},
             {"function", "omero_orphans_delete", ""},          {"function", "omero_orphans_delete_batches", ""}});
        // Every table referring to annotation is read by the rule's anti-joins.
        Rows t = db.query("SELECT DISTINCT pg_catalog.format('%I.%I', n.nspname, c.relname) AS t"
                          "  FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid"
                          "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                          " WHERE k.contype = 'f' AND k.confrelid = pg_catalog.to_regclass('public.annotation')"
                          " ORDER BY 1");
        for (size_t i = 0; i < t.rows.size(); i++)
            r.push_back({"table", t.str(i, "t"), "SELECT"});
    } else if (id == step_id::colors) {
        r.insert(r.end(), {{"table", "public.shape", "SELECT"},           {"table", "public.shape", "UPDATE"},
             {"table", "public.roi", "SELECT"},             {"table", "omero_upgrade.color_runs", "SELECT"},
             {"table", "omero_upgrade.color_runs", "INSERT"}, {"table", "omero_upgrade.color_runs", "UPDATE"},
             {"table", "omero_upgrade.color_journal", "SELECT"}, {"table", "omero_upgrade.color_journal", "INSERT"},
             {"function", "omero_colors_convert", ""},      {"function", "omero_colors_convert_tx", ""},
             {"function", "omero_argb_to_rgba", ""}});
    } else if (id == step_id::wells) {
        // The links move (insert on the well, delete from the image) under one lock of both link
        // tables, recorded as OMERO records a change: a session, an event per group, eventlog rows,
        // ids from OMERO's ome_nextval.
        r.insert(r.end(), {{"table", "public.well", "SELECT"},
             {"table", "public.wellsample", "SELECT"},
             {"table", "public.screenplatelink", "SELECT"},
             {"table", "public.annotation", "SELECT"},
             {"table", "public.experimenter", "SELECT"},
             {"table", "public.eventtype", "SELECT"},
             {"table", "public.node", "SELECT"},
             {"table", "public.imageannotationlink", "SELECT"},
             {"table", "public.imageannotationlink", "DELETE"},
             {"table", "public.imageannotationlink", "UPDATE, DELETE, TRUNCATE"},
             {"table", "public.wellannotationlink", "SELECT"},
             {"table", "public.wellannotationlink", "INSERT"},
             {"table", "public.wellannotationlink", "UPDATE, DELETE, TRUNCATE"},
             {"table", "public.eventlog", "INSERT"},
             {"table", "public.event", "INSERT"},
             {"table", "public.session", "INSERT"},
             {"table", "public._lock_ids", "SELECT"},
             {"table", "public._lock_ids", "INSERT"},
             {"sequence", "public._lock_seq", "USAGE, UPDATE"},
             {"sequence", "public.seq_session", "USAGE, UPDATE"},
             {"sequence", "public.seq_event", "USAGE, UPDATE"},
             {"sequence", "public.seq_eventlog", "USAGE, UPDATE"},
             {"sequence", "public.seq_wellannotationlink", "USAGE, UPDATE"},
             {"function", "omero_annotations_move_to_wells", ""},
             {"function", "omero_annotations_move_to_wells_in_batches", ""}});
    }
    return r;
}

// "a, b and 3 more" of a list.
std::string listed(const std::vector<std::string> &v, size_t at_most = 8)
{
    std::string s;
    for (size_t i = 0; i < v.size() && i < at_most; i++)
        s += (i ? ", " : "") + v[i];
    if (v.size() > at_most)
        s += " and " + std::to_string(v.size() - at_most) + " more";
    return s;
}

// The site SQL step's needs (run --site-sql DIR), as problems; none when no file is pending.
std::vector<std::string> site_sql_preconditions(const RunOptions &o, const Settings &s, Db &db, const OmeroDbState &st)
{
    std::vector<std::string> p;
    SitePlan sp;
    try {
        sp = plan_site_sql(s, db, o.site_sql);
    } catch (const std::exception &e) {
        p.push_back(std::string("step db-upgrade (site SQL): ") + e.what());
        return p;
    }
    if (sp.pending() == 0)
        return p;
    std::string role = s.omero_db_user.empty() ? s.conn.user : s.omero_db_user;
    if (sp.store == "extension") {
        Rows r = db.query("SELECT pg_catalog.quote_ident(r.rolname) AS q FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
                          {role});
        if (r.empty()) {
            p.push_back("step db-upgrade (site SQL): the site SQL files run as the OMERO database user " + role +
                        " (omero.db.user of " + s.config_path + "), which is not a role of this server: set "
                        "omero.db.user to the user OMERO connects as");
            return p;
        }
        std::string q = r.str(0, "q");
        // The record is inserted by that role, in the file's transaction; the tool then reads it back.
        Rows m = db.query(
            "SELECT x.m FROM (VALUES"
            " (1, 'USAGE on schema omero_upgrade', pg_catalog.has_schema_privilege($1, 'omero_upgrade', 'USAGE')),"
            " (2, 'INSERT on omero_upgrade.site_sql', pg_catalog.has_table_privilege($1, 'omero_upgrade.site_sql', 'INSERT')),"
            " (3, 'INSERT on omero_upgrade.history', pg_catalog.has_table_privilege($1, 'omero_upgrade.history', 'INSERT'))"
            ") AS x(i, m, ok) WHERE NOT x.ok ORDER BY x.i",
            {role});
        std::vector<std::string> miss;
        for (size_t i = 0; i < m.rows.size(); i++)
            miss.push_back(m.str(i, "m"));
        if (!miss.empty()) {
            std::string grants;
            for (const auto &x : miss) {
                std::string priv = x.substr(0, x.find(' ')), obj = x.substr(x.find(" on ") + 4);
                grants += (grants.empty() ? "" : "; ") + std::string("GRANT ") + priv + " ON " + obj + " TO " + q;
            }
            p.push_back("step db-upgrade (site SQL): the " + std::to_string(sp.pending()) + " site SQL file(s) to apply run as " +
                        "the OMERO database user " + role + ", who records each in omero_upgrade.site_sql in the file's "
                        "transaction, but " + role + " lacks " + listed(miss) + ": the file would fail after the upgrade "
                        "scripts, with the server down; grant it (as the extension's owner or a superuser: " + grants +
                        ")");
        }
        Rows own = db.query("SELECT pg_catalog.has_table_privilege('omero_upgrade.site_sql', 'SELECT') AS ok");
        if (!own.empty() && own.str(0, "ok") != "t")
            p.push_back("step db-upgrade (site SQL): " + who(db).user + " cannot read omero_upgrade.site_sql, where the "
                        "tool checks each file's record after it ran: run --db-user with the extension's owner or a "
                        "superuser, or GRANT SELECT ON omero_upgrade.site_sql TO " + who(db).quoted);
    } else {
        // No extension: the records go to a private file beside the server directory.
        std::string dir = dir_name(sp.store_file);
        if (access(dir.c_str(), W_OK | X_OK) != 0 || (path_exists(sp.store_file) && access(sp.store_file.c_str(), W_OK) != 0))
            p.push_back("step db-upgrade (site SQL): the records of the site SQL files go to " + sp.store_file +
                        " (no extension in " + st.dbname + "), which cannot be written: run as the user owning " + dir);
    }
    return p;
}

// What every step's check reads, and where its problems go.
struct Pre {
    const RunOptions &o;
    const Settings &s;
    Db &db;
    const OmeroDbState &st;
    const std::string &sdir;
    const std::vector<std::string> &pending;
    Who w;
    std::vector<std::string> p;
    // The step is still to run and its checks are not skipped (--force-step).
    bool check(const std::string &id) const { return has(pending, id) && !has(o.force_steps, id); }
};

std::string skip(const std::string &id)
{
    return "; or skip this check with --force-step " + id;
}

// backup: its dump is what a rollback restores, and the tool's restore loads a dump as the OMERO
// database user (restore.hpp): a database holding objects of other roles, or extensions only a
// superuser may create when the run's role is none, would make that restore refuse, with the
// server down. Said now, before the downtime.
void pre_backup(Pre &x)
{
    if (!x.check(step_id::backup) || x.s.omero_db_user.empty())
        return;
    const std::string &owner = x.s.omero_db_user;
    std::string foreign = objects_not_owned_by(x.db, owner);
    if (!foreign.empty())
        x.p.push_back("step backup: the database holds objects that " + owner + " (omero.db.user) does not own (" +
                      foreign + "): the tool's restore loads a backup as " + owner + " and refuses such a dump, so a "
                      "rollback would have to be done by hand; give them to " + owner + " (ALTER … OWNER TO) or move "
                      "them out of the database" + skip(step_id::backup));
    if (!x.w.superuser) {
        std::vector<std::string> ext = superuser_only_extensions(x.db);
        if (!ext.empty())
            x.p.push_back("step backup: the database has extensions only a superuser may create (" + listed(ext) +
                          "): a rollback's restore as " + x.w.user + " would refuse its backup; run with --db-user "
                          "a superuser (e.g. postgres)" + skip(step_id::backup));
    }
}

// binaries-install writes the new tree beside the server directory.
void pre_binaries_install(Pre &x)
{
    const std::string &sdir = x.sdir;
    std::vector<std::string> &p = x.p;
    auto check = [&x](const std::string &id) { return x.check(id); };
    if (check(step_id::binaries_install)) {
        std::string parent = dir_name(sdir);
        if (access(parent.c_str(), W_OK | X_OK) != 0)
            p.push_back("step binaries-install: cannot write in " + parent +
                        " (the new server is unpacked beside " + sdir + " and the symlink swapped there): "
                        "run as the user owning it" + skip(step_id::binaries_install));
    }
}

// db-upgrade runs OMERO's scripts, which alter OMERO's tables: only their owner (or a
// superuser) may.
void pre_db_upgrade(Pre &x)
{
    const RunOptions &o = x.o;
    const Settings &s = x.s;
    Db &db = x.db;
    const OmeroDbState &st = x.st;
    const Who &w = x.w;
    std::vector<std::string> &p = x.p;
    auto check = [&x](const std::string &id) { return x.check(id); };
    if (check(step_id::db_upgrade) && !w.superuser) {
        std::string n = not_owned(db, "n.nspname = 'public'");
        if (!n.empty())
            p.push_back("step db-upgrade: the upgrade scripts alter OMERO's tables, but " + w.user + " does not own " +
                        n + ": connect as their owner (config.xml's omero.db.user, or run --db-user OWNER) or a "
                        "superuser" + skip(step_id::db_upgrade));
    }
    // db-upgrade --site-sql: each pending site file runs through psql as the OMERO database user
    // (omero.db.user), and its record is inserted in the same transaction (site_sql.hpp): without
    // the right to insert it, the file would fail after the hops, with the server down.
    if (check(step_id::db_upgrade) && !o.site_sql.empty()) {
        for (const auto &x : site_sql_preconditions(o, s, db, st))
            p.push_back(x + skip(step_id::db_upgrade));
    }
}

// db-verify builds a fresh schema in a scratch database that the connecting role creates (CREATEDB
// or a superuser), owned by the OMERO database user (a role that is not a superuser must be
// able to act as it). Without that it could only say "not verified" after the upgrade.
void pre_db_verify(Pre &x)
{
    const Settings &s = x.s;
    Db &db = x.db;
    const Who &w = x.w;
    std::vector<std::string> &p = x.p;
    auto check = [&x](const std::string &id) { return x.check(id); };
    if (check(step_id::db_verify) && !w.superuser) {
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
}

// orphans, colors, wells: the extension's functions run with the caller's rights, on OMERO's
// tables and the extension's state (README, "omero-upgrade run": preconditions).
void pre_data_rights(Pre &x)
{
    Db &db = x.db;
    const OmeroDbState &st = x.st;
    const Who &w = x.w;
    std::vector<std::string> &p = x.p;
    auto check = [&x](const std::string &id) { return x.check(id); };
    for (const char *id : {step_id::orphans, step_id::colors, step_id::wells}) {
        if (!check(id) || st.extension_version.empty())
            continue;  // (without the extension the plan refuses them already)
        std::vector<std::string> miss = missing_rights(db, rights_of(id, db));
        if (!miss.empty())
            p.push_back(std::string("step ") + id + ": " + w.user + " lacks " + listed(miss) +
                        ", which the step needs: run --db-user with the OMERO database user (config.xml's "
                        "omero.db.user, who owns OMERO's tables) or a superuser, or grant them (as their owner or a "
                        "superuser: GRANT <right> ON <object> TO " + w.quoted + ")" + skip(id));
    }
}

// colors all with the server down: the extension converts every shape by its one-pass rewrite
// (one ALTER TABLE of shape), which only the table's owner (or a superuser) may do.
void pre_colors_rewrite(Pre &x)
{
    const RunOptions &o = x.o;
    Db &db = x.db;
    const OmeroDbState &st = x.st;
    const Who &w = x.w;
    std::vector<std::string> &p = x.p;
    auto check = [&x](const std::string &id) { return x.check(id); };
    if (check(step_id::colors) && o.colors == "all" && !o.online && !w.superuser && !st.extension_version.empty()) {
        std::string n = not_owned(db, "n.nspname = 'public' AND c.relname = 'shape'");
        if (!n.empty())
            p.push_back("step colors: --colors all with the server down converts every shape by one rewrite of the "
                        "table (ALTER TABLE), but " + w.user + " does not own " + n + ": run --db-user with its owner "
                        "or a superuser, or convert by journaled batches while OMERO runs (--online)" + skip(step_id::colors));
    }
}

// vacuum-full: db vacuum --full refuses when it cannot check the free space of PostgreSQL's
// data directory, or when there is not enough, and skips tables the user may not vacuum.
void pre_vacuum_full(Pre &x)
{
    const Settings &s = x.s;
    Db &db = x.db;
    const Who &w = x.w;
    std::vector<std::string> &p = x.p;
    auto check = [&x](const std::string &id) { return x.check(id); };
    if (check(step_id::vacuum_full)) {
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
                                skip(step_id::vacuum_full));
            } catch (const CommandError &e) {
                p.push_back("step vacuum-full: " + std::string(e.what()) + skip(step_id::vacuum_full));
            }
        }
        if (!w.superuser && !w.db_owner) {
            std::string n = not_owned(db, "n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema']) AND "
                                          "n.nspname !~ '^pg_(toast|temp)'");
            if (!n.empty())
                p.push_back("step vacuum-full: " + w.user + " may not vacuum " + n +
                            " (VACUUM skips them): run --db-user with the database owner or a superuser" +
                            skip(step_id::vacuum_full));
        }
    }
}

// cache-clear deletes below <omero.data.dir>/BioFormatsCache.
// cache-clear deletes below <omero.data.dir>/BioFormatsCache, a plain directory of it.
void pre_cache_clear(Pre &x)
{
    const Settings &s = x.s;
    std::vector<std::string> &p = x.p;
    auto check = [&x](const std::string &id) { return x.check(id); };
    if (check(step_id::cache_clear)) {
        std::string data = resolved_path(s.data_dir);
        std::string cache = s.data_dir + "/BioFormatsCache";
        struct stat lst;
        if (data.empty())
            p.push_back("step cache-clear: the OMERO data directory " + s.data_dir + " (omero.data.dir of " +
                        s.config_path + ") does not exist: set omero.data.dir to the server's data directory" +
                        skip(step_id::cache_clear));
        else if (lstat(cache.c_str(), &lst) == 0 && (!S_ISDIR(lst.st_mode) || resolved_path(cache) != data + "/BioFormatsCache"))
            p.push_back("step cache-clear: " + cache + " is not a plain directory of the data directory (a link, "
                        "or not a directory): cache clear refuses to delete there; make it one, or clear it by hand" +
                        skip(step_id::cache_clear));
        else if (lstat(cache.c_str(), &lst) == 0 && access(cache.c_str(), W_OK | X_OK) != 0)
            p.push_back("step cache-clear: cannot delete in " + cache + ": run as the OMERO user" + skip(step_id::cache_clear));
    }
}

} // namespace

const std::vector<std::string> &checked_steps()
{
    static const std::vector<std::string> ids = {step_id::backup, step_id::binaries_install, step_id::db_upgrade, step_id::db_verify, step_id::orphans,
                                                   step_id::colors,           step_id::wells,      step_id::vacuum_full, step_id::cache_clear};
    return ids;
}

std::vector<std::string> step_preconditions(const RunOptions &o, const Settings &s, Db &db, const OmeroDbState &st,
                                            const std::string &sdir, const std::vector<std::string> &pending)
{
    Pre x{o, s, db, st, sdir, pending, who(db), {}};
    for (void (*check)(Pre &) : {pre_backup, pre_binaries_install, pre_db_upgrade, pre_db_verify, pre_data_rights, pre_colors_rewrite,
                                 pre_vacuum_full, pre_cache_clear})
        check(x);
    return x.p;
}

} // namespace ou::run
