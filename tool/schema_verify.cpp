// See schema_verify.hpp.
//
// Facts about `omero db script` (OMERO's CLI, omero-py src/omero/plugins/db.py, and the creation
// files a server ships in sql/psql/<version>/), restated in our words; nothing of OMERO's is
// copied here:
//   - The files come from <server>/sql/<profile>/<version>__<patch>/, the profile being the
//     property omero.db.profile ("psql"); version and patch default to the properties
//     omero.db.version / omero.db.patch of the server (the release's own version).
//   - The script is the concatenation, in this order and with nothing added between them, of
//     <profile>-header.sql, schema.sql, views.sql and <profile>-footer.sql. (Without a header file,
//     OMERO 4.2 and older, another layout was used: not supported here.)
//   - schema.sql and views.sql are copied verbatim (read in Python's text mode: \r\n and \r become
//     \n, in all four files).
//   - Every line of the header and of the footer goes through Python's `line % mapping` with
//     TIME (time.ctime()), DIR (the sql directory) and SCRIPT (the output file's name, or
//     "<filename here>" with -f): %(TIME)s, %(DIR)s, %(SCRIPT)s are replaced, %% becomes %, and
//     any other % makes the command fail ("Failed to map line"). That is why literal percent
//     signs are doubled in those two files (RAISE '…%%…', LIKE 'AdminPrivilege:%%').
//   - Before that, each footer line gets plain text replacements: @ROOTPASS@ → the root
//     password's hash (from the server's Java PasswordUtil, salted with user id 0), @DBVERSION@
//     → the version without its patch ("OMERO5.4"), @DBPATCH@ → the patch ("0"). Newer footers
//     have the version written out and use only @ROOTPASS@ (the root row of the password table).
//   - The header opens one transaction (BEGIN), checks the PostgreSQL version and that the
//     database is UTF8; the footer inserts the creation row of dbpatch ('Initializing'), the
//     initial rows (root, guest, system groups, enumerations, configuration's omero.db.uuid),
//     ends with `update dbpatch set message = 'Database ready.', finished = …` and COMMIT. The
//     script is meant for `psql DB < script`.
#include "schema_verify.hpp"

#include "fsutil.hpp"
#include "process.hpp"
#include "progress.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>

namespace ou {

// ---- the creation files ---------------------------------------------------------------------

CreationFiles find_creation_files(const std::string &server_dir, const std::string &version)
{
    CreationFiles f;
    f.version = version;
    f.dir = server_dir + "/sql/psql/" + version;
    f.header = f.dir + "/psql-header.sql";
    f.schema = f.dir + "/schema.sql";
    f.views = f.dir + "/views.sql";
    f.footer = f.dir + "/psql-footer.sql";
    std::string hint = "give --new-server DIR: a server directory of the release whose database version is " + version +
                       " (its sql/psql/" + version + "/ holds the creation files)";
    if (!is_directory(server_dir + "/sql/psql"))
        throw CommandError("no sql/psql directory in " + server_dir + ": it is not an OMERO.server directory", hint);
    if (!is_directory(f.dir))
        throw CommandError("no creation files for " + version + " in " + server_dir + ": there is no sql/psql/" +
                               version + "/ (a server ships the creation files of its own database version only)",
                           hint);
    std::string missing;
    for (const std::string *p : {&f.header, &f.schema, &f.views, &f.footer})
        if (!path_exists(*p))
            missing += (missing.empty() ? "" : ", ") + base_name(*p);
    if (!missing.empty())
        throw CommandError("the creation files of " + version + " in " + f.dir + " are incomplete: no " + missing +
                               " (omero db script needs psql-header.sql, schema.sql, views.sql and psql-footer.sql)",
                           hint);
    return f;
}

std::optional<std::string> percent_format(const std::string &line, const std::map<std::string, std::string> &values,
                                          std::string *why)
{
    std::string out;
    for (size_t i = 0; i < line.size(); i++) {
        if (line[i] != '%') {
            out += line[i];
            continue;
        }
        if (i + 1 < line.size() && line[i + 1] == '%') {
            out += '%';
            i++;
            continue;
        }
        auto fail = [&](const std::string &w) -> std::optional<std::string> {
            if (why)
                *why = w;
            return std::nullopt;
        };
        if (i + 1 >= line.size() || line[i + 1] != '(')
            return fail("a % that is neither %% nor %(KEY)s");
        size_t close = line.find(')', i + 2);
        if (close == std::string::npos)
            return fail("an unclosed %(");
        std::string key = line.substr(i + 2, close - i - 2);
        auto it = values.find(key);
        if (it == values.end())
            return fail("an unknown key %(" + key + ")");
        size_t j = close + 1;
        bool left = false;
        while (j < line.size() && std::strchr("-+ #0", line[j])) {
            left |= line[j] == '-';
            j++;
        }
        size_t width = 0, precision = std::string::npos;
        while (j < line.size() && std::isdigit((unsigned char)line[j]))
            width = width * 10 + (line[j++] - '0');
        if (j < line.size() && line[j] == '.') {
            precision = 0;
            for (j++; j < line.size() && std::isdigit((unsigned char)line[j]); j++)
                precision = precision * 10 + (line[j] - '0');
        }
        while (j < line.size() && std::strchr("hlL", line[j]))
            j++;  // length modifiers: accepted and ignored, as Python does
        if (j >= line.size() || line[j] != 's')
            return fail("%(" + key + ") with a conversion other than s");
        std::string v = it->second.substr(0, precision);
        if (v.size() < width)
            v = left ? v + std::string(width - v.size(), ' ') : std::string(width - v.size(), ' ') + v;
        out += v;
        i = j;
    }
    return out;
}

namespace {

std::string replace_all(std::string s, const std::string &from, const std::string &to)
{
    for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
        s.replace(pos, from.size(), to);
    return s;
}

// A creation file as `omero db script` reads it: Python's text mode, whose universal newlines turn
// \r\n and a lone \r into \n.
std::string read_whole(const std::string &path)
{
    std::string text;
    if (!read_file(path, text))
        throw CommandError("cannot read " + path + ": " + std::strerror(errno));
    if (text.find('\r') == std::string::npos)
        return text;
    return replace_all(replace_all(text, "\r\n", "\n"), "\r", "\n");
}

// A header or footer: each line (with its newline, as Python reads it) through `fix` then `%`.
std::string format_lines(const std::string &path, const std::map<std::string, std::string> &values,
                         const std::function<std::string(const std::string &)> &fix)
{
    std::string text = read_whole(path), out;
    size_t start = 0, lineno = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        size_t end = nl == std::string::npos ? text.size() : nl + 1;
        std::string line = fix(text.substr(start, end - start));
        lineno++;
        std::string why;
        auto done = percent_format(line, values, &why);
        if (!done)
            throw CommandError(path + ":" + std::to_string(lineno) + ": " + why +
                                   ": `omero db script` cannot format this line either (a literal % is written %% "
                                   "in psql-header.sql and psql-footer.sql)",
                               "the server's creation files are damaged; use those of an intact server release");
        out += *done;
        start = end;
    }
    return out;
}

} // namespace

std::string assemble_creation_script(const CreationFiles &f, const ScriptValues &v)
{
    std::map<std::string, std::string> values = {{"TIME", v.time}, {"DIR", f.dir}, {"SCRIPT", v.script_name}};
    size_t sep = f.version.rfind("__");
    std::string dbversion = f.version.substr(0, sep), dbpatch = sep == std::string::npos ? "0" : f.version.substr(sep + 2);
    auto same = [](const std::string &l) { return l; };
    auto footer_fix = [&](const std::string &l) {
        std::string s = replace_all(l, "@ROOTPASS@", v.root_password_hash);
        s = replace_all(s, "@DBVERSION@", dbversion);
        return replace_all(s, "@DBPATCH@", dbpatch);
    };
    return format_lines(f.header, values, same) + read_whole(f.schema) + read_whole(f.views) +
           format_lines(f.footer, values, footer_fix);
}

// ---- the scratch database -------------------------------------------------------------------

namespace {

// Ctrl-C and SIGTERM held back while a scope runs (they are delivered when it ends).
class SignalsHeld {
public:
    SignalsHeld()
    {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, &old_);
    }
    ~SignalsHeld() { sigprocmask(SIG_SETMASK, &old_, nullptr); }

private:
    sigset_t old_;
};

std::string scratch_name()
{
    std::random_device rd;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", (unsigned)rd());
    return "omero_upgrade_verify_" + std::to_string(getpid()) + "_" + buf;
}

// One utility statement whose identifiers the server quotes: format() then the statement.
void exec_formatted(Db &db, const std::string &format, const std::vector<Value> &args)
{
    std::string call = "SELECT pg_catalog.format($1";
    std::vector<Value> params = {format};
    for (size_t i = 0; i < args.size(); i++) {
        call += ", $" + std::to_string(i + 2) + "::pg_catalog.text";
        params.push_back(args[i]);
    }
    Value sql = db.scalar(call + ")", params);
    db.query(sql.value_or(""));
}

std::string createdb_hint(const std::string &quoted_role)
{
    return "let the role create databases (as a superuser: ALTER ROLE " + quoted_role +
           " CREATEDB), or run db verify with --db-user ROLE of a role that may (CREATEDB or a superuser, e.g. "
           "--db-user postgres)";
}

} // namespace

void require_createdb(Db &db)
{
    Rows r = db.query("SELECT r.rolname, pg_catalog.quote_ident(r.rolname) AS q, r.rolcreatedb OR r.rolsuper AS may "
                      "FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER");
    std::string role = r.empty() ? std::string("(this role)") : r.str(0, "rolname");
    if (r.empty() || r.str(0, "may") != "t")
        throw CommandError("the role " + role +
                               " may not create databases: db verify builds the fresh schema in a scratch database of "
                               "its own (dropped at the end), which needs CREATEDB or a superuser",
                           createdb_hint(r.empty() ? role : r.str(0, "q")));
}

ScratchDatabase::ScratchDatabase(Db &admin, std::function<std::unique_ptr<Db>()> reconnect)
    : admin_(admin), reconnect_(std::move(reconnect)), name_(scratch_name())
{
}

void ScratchDatabase::create(const std::string &owner)
{
    // From here on the destructor drops it, even if CREATE DATABASE itself is interrupted.
    created_ = true;
    try {
        exec_formatted(admin_,
                       "CREATE DATABASE %I OWNER %I TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
                       {name_, owner});
    } catch (const DbError &e) {
        Rows r = admin_.query("SELECT CURRENT_USER::pg_catalog.text AS role, pg_catalog.quote_ident(CURRENT_USER) AS q, "
                              "pg_catalog.quote_ident($1::pg_catalog.text) AS o",
                              {owner});
        std::string role = r.str(0, "role"), q = r.str(0, "q"), o = r.str(0, "o");
        if (e.sqlstate == "42704")
            throw CommandError("the OMERO database user " + owner + " (omero.db.user) does not exist on this server: " +
                                   e.what(),
                               "check omero.db.user in etc/grid/config.xml");
        if (e.sqlstate == "42501")
            throw CommandError("the role " + role + " may not create the scratch database owned by the OMERO database user " +
                                   owner + ": " + e.what(),
                               "run db verify as a superuser (--db-user postgres), or let " + role + " act as " + owner +
                                   " (as a superuser: GRANT " + o + " TO " + q + ")");
        throw;
    }
}

void ScratchDatabase::set_defaults(const std::string &search_path_schema)
{
    exec_formatted(admin_, "ALTER DATABASE %I SET search_path TO %I", {name_, search_path_schema});
    exec_formatted(admin_, "ALTER DATABASE %I SET client_min_messages TO warning", {name_});
}

bool ScratchDatabase::drop(std::string *error)
{
    if (!created_ || dropped_)
        return true;
    SignalsHeld held;
    auto attempt = [&](Db &db) {
        if (db.server_version() >= 130000) {
            try {
                exec_formatted(db, "DROP DATABASE IF EXISTS %I WITH (FORCE)", {name_});
            } catch (const DbError &e) {
                // A role that is not a superuser may not terminate an autovacuum worker busy in the
                // fresh database (42501 "must be a member of the role whose process is being
                // terminated"); a plain DROP DATABASE stops such workers itself (and waits for them).
                if (e.sqlstate != "42501")
                    throw;
                exec_formatted(db, "DROP DATABASE IF EXISTS %I", {name_});
            }
        } else {
            db.query("SELECT pg_catalog.pg_terminate_backend(a.pid) FROM pg_catalog.pg_stat_activity a "
                     "WHERE a.datname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
                     {name_});
            exec_formatted(db, "DROP DATABASE IF EXISTS %I", {name_});
        }
    };
    std::string first;
    try {
        attempt(admin_);
        dropped_ = true;
        return true;
    } catch (const std::exception &e) {
        first = e.what();
    }
    try {  // the connection may be gone (server restarted, connection killed): a new one
        own_ = reconnect_();
        attempt(*own_);
        dropped_ = true;
        return true;
    } catch (const std::exception &e) {
        gave_up_ = true;
        if (error)
            *error = "could not drop the scratch database " + name_ + ": " + first +
                     (first == e.what() ? "" : std::string("; again: ") + e.what()) + "; drop it by hand: DROP DATABASE \"" +
                     name_ + "\"";
        return false;
    }
}

ScratchDatabase::~ScratchDatabase()
{
    if (!exists() || gave_up_)
        return;
    std::string error;
    if (drop(&error))
        out().detail("dropped the scratch database " + name_);
    else
        out().warn(error);
}

// ---- the catalogs ---------------------------------------------------------------------------

namespace {

// The schemas compared: all but the system ones and those an extension created (the
// omero_upgrade extension's state schema among them). The other queries join it as "sch".
const char *k_schemas =
    "sch AS (SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n"
    "  WHERE n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pg_toast']::pg_catalog.name[])"
    "    AND n.nspname::pg_catalog.text !~ '^pg_(toast_)?temp_'"
    "    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass"
    "                     AND d.objid = n.oid AND d.deptype = 'e'))";

// Relations of those schemas that no extension owns.
const char *k_relations =
    "rel AS (SELECT c.oid, c.relkind, c.relpersistence, c.reloptions, sch.nspname,"
    "        pg_catalog.quote_ident(sch.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS qname"
    "   FROM pg_catalog.pg_class c JOIN sch ON sch.oid = c.relnamespace"
    "  WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "                     AND d.objid = c.oid AND d.deptype = 'e'))";

// Each query returns kind, name, tbl, schema, def (and body: functions only).
const std::vector<const char *> k_catalog_queries = {
    // schemas (public, which every new database has, only through its objects)
    "SELECT 'schema' AS kind, pg_catalog.quote_ident(nspname) AS name, '' AS tbl, nspname AS schema, 'schema' AS def"
    "  FROM sch WHERE nspname <> 'public'",

    // tables
    "SELECT 'table', qname, '', nspname,"
    "       CASE relpersistence WHEN 'u' THEN 'unlogged ' ELSE '' END"
    "       || CASE relkind WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' ELSE 'table' END"
    "       || coalesce(' WITH (' || pg_catalog.array_to_string(reloptions, ', ') || ')', '')"
    "  FROM rel WHERE relkind IN ('r', 'p', 'f')",

    // columns: type, collation when not the type's, NOT NULL, identity, default or generation
    "SELECT 'column', rel.qname || '.' || pg_catalog.quote_ident(a.attname), rel.qname, rel.nspname,"
    "       pg_catalog.format_type(a.atttypid, a.atttypmod)"
    "       || CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0"
    "               THEN ' COLLATE ' || (SELECT pg_catalog.quote_ident(co.collname) FROM pg_catalog.pg_collation co"
    "                                     WHERE co.oid = a.attcollation) ELSE '' END"
    "       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END"
    "       || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'"
    "                             WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END"
    "       || coalesce(CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'"
    "                        ELSE ' DEFAULT ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) END, '')"
    "  FROM rel JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid"
    "  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
    "  LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum"
    " WHERE rel.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped",

    // constraints of tables (primary keys, unique, foreign keys, checks, exclusions)
    "SELECT 'constraint', rel.qname || '.' || pg_catalog.quote_ident(con.conname), rel.qname, rel.nspname,"
    "       pg_catalog.pg_get_constraintdef(con.oid)"
    "  FROM rel JOIN pg_catalog.pg_constraint con ON con.conrelid = rel.oid"
    " WHERE con.contype IN ('c', 'f', 'p', 'u', 'x')",

    // indexes, but those of constraints (their constraint stands for them)
    "SELECT 'index', pg_catalog.quote_ident(rel.nspname) || '.' || pg_catalog.quote_ident(ic.relname), rel.qname, rel.nspname,"
    "       pg_catalog.pg_get_indexdef(i.indexrelid) || CASE WHEN NOT i.indisvalid THEN ' -- INVALID' ELSE '' END"
    "  FROM rel JOIN pg_catalog.pg_index i ON i.indrelid = rel.oid"
    "  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
    " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con WHERE con.conindid = i.indexrelid"
    "                     AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))",

    // triggers of users (not those PostgreSQL makes for foreign keys), and when disabled
    "SELECT 'trigger', rel.qname || '.' || pg_catalog.quote_ident(tg.tgname), rel.qname, rel.nspname,"
    "       pg_catalog.pg_get_triggerdef(tg.oid)"
    "       || CASE tg.tgenabled WHEN 'D' THEN ' -- DISABLED' WHEN 'R' THEN ' -- ENABLED REPLICA'"
    "                            WHEN 'A' THEN ' -- ENABLED ALWAYS' ELSE '' END"
    "  FROM rel JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = rel.oid WHERE NOT tg.tgisinternal",

    // sequences: their parameters and owning column (not their values: data)
    "SELECT 'sequence', rel.qname, '', rel.nspname,"
    "       'AS ' || pg_catalog.format_type(sq.seqtypid, NULL) || ' START ' || sq.seqstart || ' INCREMENT ' || sq.seqincrement"
    "       || ' MINVALUE ' || sq.seqmin || ' MAXVALUE ' || sq.seqmax || ' CACHE ' || sq.seqcache"
    "       || CASE WHEN sq.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END"
    "       || coalesce((SELECT ' OWNED BY ' || d.refobjid::pg_catalog.regclass::pg_catalog.text || '.' || pg_catalog.quote_ident(a.attname)"
    "                      FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_attribute a"
    "                        ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
    "                     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = rel.oid"
    "                       AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "                       AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 LIMIT 1), '')"
    "  FROM rel JOIN pg_catalog.pg_sequence sq ON sq.seqrelid = rel.oid WHERE rel.relkind = 'S'",

    // views and materialized views: their query as PostgreSQL deparses it
    "SELECT CASE relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END, qname, '', nspname,"
    "       pg_catalog.pg_get_viewdef(oid, true)"
    "       || coalesce(' WITH (' || pg_catalog.array_to_string(reloptions, ', ') || ')', '')"
    "  FROM rel WHERE relkind IN ('v', 'm')",

    // enums (labels in order), domains (base type, NOT NULL, default, constraints), composite types
    "SELECT 'type', pg_catalog.quote_ident(sch.nspname) || '.' || pg_catalog.quote_ident(t.typname), '', sch.nspname,"
    "       CASE t.typtype"
    "         WHEN 'e' THEN 'ENUM (' || coalesce((SELECT pg_catalog.string_agg(pg_catalog.quote_literal(e.enumlabel), ', '"
    "                                                     ORDER BY e.enumsortorder)"
    "                                              FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), '') || ')'"
    "         WHEN 'd' THEN 'DOMAIN ' || pg_catalog.format_type(t.typbasetype, t.typtypmod)"
    "                       || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END"
    "                       || coalesce(' DEFAULT ' || t.typdefault, '')"
    "                       || coalesce((SELECT pg_catalog.string_agg(' CONSTRAINT ' || pg_catalog.quote_ident(c.conname) || ' '"
    "                                                  || pg_catalog.pg_get_constraintdef(c.oid), '' ORDER BY c.conname)"
    "                                      FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid), '')"
    "         ELSE 'TYPE (' || coalesce((SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname) || ' '"
    "                                                  || pg_catalog.format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)"
    "                                      FROM pg_catalog.pg_attribute a"
    "                                     WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '') || ')'"
    "       END"
    "  FROM pg_catalog.pg_type t JOIN sch ON sch.oid = t.typnamespace"
    " WHERE (t.typtype IN ('e', 'd')"
    "        OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))"
    "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass"
    "                     AND d.objid = t.oid AND d.deptype = 'e')",

    // functions and procedures (their whole definition, body included), aggregates (signature)
    "SELECT 'function', pg_catalog.quote_ident(sch.nspname) || '.' || pg_catalog.quote_ident(p.proname)"
    "       || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', '', sch.nspname,"
    "       CASE WHEN p.prokind = 'a' THEN 'AGGREGATE RETURNS ' || pg_catalog.pg_get_function_result(p.oid)"
    "            ELSE pg_catalog.pg_get_functiondef(p.oid) END,"
    "       CASE WHEN p.prokind = 'a' THEN '' ELSE p.prosrc END"
    "  FROM pg_catalog.pg_proc p JOIN sch ON sch.oid = p.pronamespace"
    " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass"
    "                     AND d.objid = p.oid AND d.deptype = 'e')",
};

// Kinds in the order differences are listed.
const std::vector<std::string> k_kinds = {"schema", "type",    "sequence", "table", "column",           "constraint",
                                          "index",  "trigger", "function", "view",  "materialized view"};

size_t kind_rank(const std::string &k)
{
    auto it = std::find(k_kinds.begin(), k_kinds.end(), k);
    return (size_t)(it - k_kinds.begin());
}

bool compared_loosely(const std::string &kind)
{
    return kind == "function" || kind == "view" || kind == "materialized view";
}

// Runs of white space as one space, none at either end.
std::string squeeze(const std::string &s)
{
    std::string out;
    bool space = false;
    for (char c : s) {
        if (std::isspace((unsigned char)c)) {
            space = !out.empty();
            continue;
        }
        if (space)
            out += ' ';
        space = false;
        out += c;
    }
    return out;
}

// A function or view definition as compared: white space squeezed, and a function's body (which
// pg_get_functiondef writes verbatim, last) squeezed apart, so that the blanks around it do not count.
std::string loose_form(const SchemaObject &o)
{
    size_t at = o.body.empty() ? std::string::npos : o.def.rfind(o.body);
    if (at == std::string::npos)
        return squeeze(o.def);
    return squeeze(o.def.substr(0, at)) + "\n" + squeeze(o.body) + "\n" + squeeze(o.def.substr(at + o.body.size()));
}

std::string clip(const std::string &s, size_t n = 160)
{
    return s.size() <= n ? s : s.substr(0, n) + "…";
}

// Non-empty lines, trimmed.
std::vector<std::string> lines_of(const std::string &s)
{
    std::vector<std::string> v;
    std::istringstream in(s);
    std::string l;
    while (std::getline(in, l)) {
        l = squeeze(l);
        if (!l.empty())
            v.push_back(l);
    }
    return v;
}

// Where two long definitions first differ, for people: the first line that is not the same.
std::string first_difference(const std::string &db, const std::string &fresh)
{
    std::vector<std::string> a = lines_of(db), b = lines_of(fresh);
    size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i])
        i++;
    std::string da = i < a.size() ? "\"" + clip(a[i], 120) + "\"" : "(nothing more)";
    std::string df = i < b.size() ? "\"" + clip(b[i], 120) + "\"" : "(nothing more)";
    return "definitions differ from line " + std::to_string(i + 1) + ": database " + da + ", fresh " + df;
}

std::string plural(size_t n, const std::string &word)
{
    std::string w = word;
    if (n != 1)
        w += w.back() == 'x' ? "es" : "s";  // index → indexes
    return std::to_string(n) + " " + w;
}

std::string contents_text(const std::map<std::string, size_t> &contains)
{
    std::string t;
    for (const auto &k : k_kinds) {
        auto it = contains.find(k);
        if (it != contains.end())
            t += (t.empty() ? "" : ", ") + plural(it->second, k);
    }
    return t;
}

} // namespace

std::string omero_schema(Db &db)
{
    if (auto s = find_omero_schema(db))
        return *s;
    throw CommandError("no schema of the database holds a dbpatch table: not an OMERO database");
}

Catalog read_catalog(Db &db)
{
    db.query("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)");
    Catalog c;
    for (const char *q : k_catalog_queries) {
        if (interrupted())
            throw CommandError("interrupted (Ctrl-C)");
        Rows r = db.query(std::string("WITH ") + k_schemas + ", " + k_relations + " " + q);
        for (const auto &row : r.rows) {
            SchemaObject o{row[0].value_or(""), row[1].value_or(""), row[2].value_or(""), row[3].value_or(""),
                           row[4].value_or(""), row.size() > 5 ? row[5].value_or("") : ""};
            c[{o.kind, o.name}] = o;
        }
    }
    return c;
}

std::map<std::string, size_t> catalog_counts(const Catalog &c)
{
    std::map<std::string, size_t> n;
    for (const auto &[key, o] : c)
        n[o.kind]++;
    return n;
}

namespace {

// Every object on one side only, and every object whose definition differs.
std::vector<SchemaDifference> pair_up(const Catalog &database, const Catalog &fresh)
{
    std::vector<SchemaDifference> diffs;
    auto one_sided = [&](const SchemaObject &o, bool in_database) {
        SchemaDifference d;
        d.kind = o.kind;
        d.name = o.name;
        d.table = o.table;
        d.change = in_database ? "extra" : "missing";
        (in_database ? d.database : d.fresh) = o.def;
        diffs.push_back(d);
    };
    for (const auto &[key, o] : fresh) {
        auto it = database.find(key);
        if (it == database.end()) {
            one_sided(o, false);
            continue;
        }
        const SchemaObject &db = it->second;
        bool loose = compared_loosely(o.kind);
        if (loose ? loose_form(o) == loose_form(db) : o.def == db.def)
            continue;
        SchemaDifference d;
        d.kind = o.kind;
        d.name = o.name;
        d.table = o.table;
        d.change = "changed";
        d.database = db.def;
        d.fresh = o.def;
        d.detail = loose ? first_difference(db.def, o.def) : "database " + db.def + "; fresh " + o.def;
        diffs.push_back(d);
    }
    for (const auto &[key, o] : database)
        if (!fresh.count(key))
            one_sided(o, true);
    return diffs;
}

// A schema or table missing (or extra) as a whole stands for what it holds: those objects are
// counted in its `contains` and left out of the list.
std::vector<SchemaDifference> fold_wholes(std::vector<SchemaDifference> diffs, const Catalog &database,
                                          const Catalog &fresh)
{
    auto object_of = [&](const SchemaDifference &d) -> const SchemaObject & {
        return (d.change == "extra" ? database : fresh).at({d.kind, d.name});
    };
    std::map<std::pair<std::string, std::string>, size_t> whole_schema, whole_table;  // (change, name) → diffs[i]
    for (size_t i = 0; i < diffs.size(); i++) {
        if (diffs[i].change == "changed")
            continue;
        if (diffs[i].kind == "schema")
            whole_schema[{diffs[i].change, object_of(diffs[i]).schema}] = i;
        else if (diffs[i].kind == "table")
            whole_table[{diffs[i].change, diffs[i].name}] = i;
    }
    std::vector<bool> folded(diffs.size(), false);
    for (size_t i = 0; i < diffs.size(); i++) {
        const SchemaDifference &d = diffs[i];
        if (d.change == "changed" || d.kind == "schema")
            continue;
        const SchemaObject &o = object_of(d);
        auto s = whole_schema.find({d.change, o.schema});
        auto t = o.table.empty() ? whole_table.end() : whole_table.find({d.change, o.table});
        size_t holder = s != whole_schema.end() ? s->second : t != whole_table.end() ? t->second : i;
        if (holder != i) {
            diffs[holder].contains[d.kind]++;
            folded[i] = true;
        }
    }
    std::vector<SchemaDifference> kept;
    for (size_t i = 0; i < diffs.size(); i++)
        if (!folded[i])
            kept.push_back(diffs[i]);
    return kept;
}

// The one-line detail of an object on one side only.
void describe_one_sided(SchemaDifference &d)
{
    if (compared_loosely(d.kind)) {
        d.detail = std::string(d.change == "extra" ? "only in the database" : "only in the fresh schema") +
                   " (--json shows its definition)";
        return;
    }
    d.detail = (d.change == "extra" ? "database: " : "fresh: ") + (d.database ? *d.database : *d.fresh) +
               (d.contains.empty() ? "" : " (" + contents_text(d.contains) + ")");
}

} // namespace

std::vector<SchemaDifference> compare_catalogs(const Catalog &database, const Catalog &fresh)
{
    std::vector<SchemaDifference> diffs = fold_wholes(pair_up(database, fresh), database, fresh);
    for (auto &d : diffs)
        if (d.change != "changed")
            describe_one_sided(d);
    std::sort(diffs.begin(), diffs.end(), [](const SchemaDifference &a, const SchemaDifference &b) {
        return std::make_tuple(kind_rank(a.kind), a.name) < std::make_tuple(kind_rank(b.kind), b.name);
    });
    return diffs;
}

std::string difference_line(const SchemaDifference &d)
{
    std::string change = d.change, kind = d.kind;
    change.resize(std::max<size_t>(change.size(), 8), ' ');
    kind.resize(std::max<size_t>(kind.size(), 10), ' ');
    return change + " " + kind + " " + d.name + (d.detail.empty() ? "" : ": " + d.detail);
}

nlohmann::json difference_json(const SchemaDifference &d)
{
    nlohmann::json j = {{"object", d.kind},
                        {"name", d.name},
                        {"difference", d.change},
                        {"database", d.database ? nlohmann::json(*d.database) : nlohmann::json(nullptr)},
                        {"fresh", d.fresh ? nlohmann::json(*d.fresh) : nlohmann::json(nullptr)},
                        {"detail", d.detail}};
    if (!d.table.empty())
        j["table"] = d.table;
    if (!d.contains.empty())
        j["contains"] = d.contains;
    return j;
}

// ---- the whole verification -----------------------------------------------------------------

namespace {

// The assembled script in a private temporary directory (0700, the file 0600), removed at the end.
class TempScript {
public:
    explicit TempScript(const std::string &text) : dir_("omero-upgrade-verify"), path_(dir_.write("creation.sql", text)) {}
    const std::string &path() const { return path_; }

private:
    PrivateTempDir dir_;
    std::string path_;
};

std::string ctime_now()
{
    char buf[64];
    std::time_t t = std::time(nullptr);
    std::tm tm;
    localtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
    return buf;
}

// Leftovers of a db verify that was killed (SIGKILL, a crash) cannot drop themselves: say so.
void warn_leftovers(Db &db)
{
    Rows r = db.query("SELECT d.datname::text AS name FROM pg_catalog.pg_database d "
                      "WHERE d.datname::pg_catalog.text ~ '^omero_upgrade_verify_[0-9]+_[0-9a-f]+$' ORDER BY 1");
    for (size_t i = 0; i < r.rows.size(); i++)
        out().warn("the scratch database " + r.str(i, "name") +
                   " exists: left by a db verify that was killed, or in use by one running now; once none runs, "
                   "drop it: DROP DATABASE \"" + r.str(i, "name") + "\"");
}

// psql on the scratch database as the OMERO database user (as db upgrade runs the upgrade
// scripts, and as the creation script is meant to be run): the server directory's SQL never runs
// with the rights of a superuser given with --db-user. Its output goes to the log.
void run_creation(const Settings &s, const ScratchDatabase &scratch, const TempScript &script, const CreationFiles &f,
                  Meter &meter)
{
    PgClient c = pg_client(omero_user_conn(s, scratch.name()));
    ProcOptions po;
    po.env = c.env;
    po.log_stdout = true;
    std::string note = "building the fresh " + f.version + " schema in the scratch database " + scratch.name();
    po.on_tick = [&] { meter.update(1, note); };
    meter.show(1, note);
    ProcResult r = run_process({"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", c.conninfo, "-f", script.path()}, po);
    if (!r.ok())
        throw CommandError("the creation script of " + f.version + " (assembled from " + f.dir +
                               ") failed in the scratch database " + scratch.name() + " (psql " + r.describe() + ")" +
                               (r.err_tail(4).empty() ? "" : ":\n" + r.err_tail(4)),
                           "the creation files do not build as they are (psql ran as the OMERO database user " +
                               s.omero_db_user + ", with omero.db.pass of config.xml if any); the whole psql output is "
                               "in the log (--log-file)");
}

// The fresh schema: the scratch database created for the OMERO user, the script run in the schema
// where the database keeps OMERO's tables, its catalog read. The scratch database is dropped
// before this returns or throws; a CommandError says it was.
Catalog build_fresh(const Settings &s, ScratchDatabase &scratch, const CreationFiles &files, const TempScript &script,
                    const std::string &schema, Meter &meter, double *build_seconds)
{
    try {
        scratch.create(s.omero_db_user);
        out().detail("created the scratch database " + scratch.name() + " for " + s.omero_db_user);
        scratch.set_defaults(schema);
        if (schema != "public") {
            auto sdb = connect_db(s, scratch.name());
            exec_formatted(*sdb, "CREATE SCHEMA %I AUTHORIZATION %I", {schema, s.omero_db_user});
        }
        auto t0 = std::chrono::steady_clock::now();
        run_creation(s, scratch, script, files, meter);
        *build_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (interrupted())
            throw CommandError("interrupted (Ctrl-C)");
        meter.show(2, "reading the catalog of the fresh schema");
        Catalog fresh = read_catalog(*connect_db(s, scratch.name()));
        std::string error;
        if (!scratch.drop(&error))
            out().warn(error);
        return fresh;
    } catch (const CommandError &e) {
        std::string error;
        bool dropped = scratch.drop(&error);
        out().result()["scratch_dropped"] = dropped;
        throw CommandError(std::string(e.what()) +
                               (dropped ? " (the scratch database " + scratch.name() + " was dropped)" : "; " + error),
                           e.hint);
    }
}

// Everything checked before anything is created: the files (and that they assemble), psql, the
// right to create databases, where OMERO's tables are.
std::string prepare(const Settings &s, Db &db, const std::string &version, const SchemaVerifyOptions &o,
                    SchemaVerifyResult &res, CreationFiles &files)
{
    std::string server_dir = o.new_server.empty() ? s.server_dir : o.new_server;
    if (!is_directory(server_dir))
        throw CommandError("no server directory " + server_dir,
                           o.new_server.empty() ? "give --server-dir DIR (or OMERODIR), or --new-server DIR"
                                                : "give --new-server an OMERO.server directory");
    files = find_creation_files(server_dir, version);
    res.creation_dir = files.dir;
    std::string script = assemble_creation_script(files, {ctime_now(), version + ".sql"});
    if (find_program("psql").empty())
        throw CommandError("psql is not on PATH", "install the PostgreSQL client (e.g. apt install postgresql-client)");
    require_createdb(db);
    res.omero_schema = omero_schema(db);
    warn_leftovers(db);
    return script;
}

} // namespace

SchemaVerifyResult verify_schema(const Settings &s, Db &db, const std::string &version, const SchemaVerifyOptions &o)
{
    SchemaVerifyResult res;
    res.database = db.scalar("SELECT pg_catalog.current_database()").value_or("");
    res.version = version;
    CreationFiles files;
    TempScript script(prepare(s, db, version, o, res, files));

    Meter meter("db verify", "steps", 4);
    meter.show(0, "reading the catalog of " + res.database);
    Catalog database = read_catalog(db);
    ScratchDatabase scratch(db, [&s] { return connect_db(s); });
    res.scratch_database = scratch.name();
    out().result()["scratch_database"] = scratch.name();  // known even when a later step fails
    Catalog fresh = build_fresh(s, scratch, files, script, res.omero_schema, meter, &res.build_seconds);
    res.scratch_dropped = !scratch.exists();

    meter.show(3, "comparing");
    res.differences = compare_catalogs(database, fresh);
    res.database_counts = catalog_counts(database);
    res.fresh_counts = catalog_counts(fresh);
    meter.finish();
    return res;
}

} // namespace ou
