// See omero_db.hpp.
#include "omero_db.hpp"
#include "foreign_types.hpp"

extern "C" {
#include "catalog/pg_type.h"
}

namespace ou {
namespace {

Error not_omero(const std::string &why, const std::string &detail = {})
{
    return Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "not an OMERO database: " + why, detail,
                 "Connect to the OMERO database (omero.db.name in the server's config.xml).");
}

// Schemas holding a table named dbpatch (temporary schemas left out), or only the one named.
spi::Result dbpatch_schemas(spi::Session &spi, const char *only)
{
    return spi.query("SELECT pg_catalog.quote_ident(n.nspname) AS q FROM pg_catalog.pg_class c"
                     "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                     " WHERE c.relname = 'dbpatch'::pg_catalog.name AND c.relkind IN ('r'::\"char\", 'p'::\"char\")"
                     "   AND n.oid <> pg_catalog.pg_my_temp_schema() AND NOT pg_catalog.pg_is_other_temp_schema(n.oid)"
                     "   AND ($1::pg_catalog.text IS NULL OR n.nspname = $1::pg_catalog.name)"
                     " ORDER BY n.nspname",
                     {only ? spi::text(only) : spi::null(TEXTOID)}, true);
}

std::optional<std::string> resolve_omero_schema(spi::Session &spi)
{
    const char *chosen = omero_schema_setting();
    spi::Result r = dbpatch_schemas(spi, chosen);
    if (chosen) {
        if (r.empty())
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        std::string("omero_upgrade.omero_schema is \"") + chosen +
                            "\", but no schema of that name holds a table named dbpatch",
                        "", "Set omero_upgrade.omero_schema to the schema of OMERO's tables, or RESET it.");
        return r.str(0, "q");
    }
    if (r.rows.size() > 1) {
        std::string names;
        for (size_t i = 0; i < r.rows.size(); i++)
            names += (i ? ", " : "") + r.str(i, "q");
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "more than one schema holds a table named dbpatch: " + names,
                    "omero_upgrade never picks OMERO's tables among several candidates.",
                    "Name the schema of OMERO's tables: SET omero_upgrade.omero_schema = '<schema>' (ALTER ROLE … "
                    "SET or ALTER DATABASE … SET to keep it), or drop the other dbpatch tables.");
    }
    if (r.empty())
        return std::nullopt;
    return r.str(0, "q");
}

// Row-level security on OMERO's tables: its policies are code of the tables' owner that runs with
// the rights of whoever reads them, unless the reader bypasses it (a superuser, a BYPASSRLS role,
// the owner). OMERO uses none; a call that would be subject to one is refused before it reads.
void refuse_row_security(spi::Session &spi, const std::string &schema)
{
    auto tables = spi.scalar("SELECT pg_catalog.string_agg(c.oid::pg_catalog.regclass::pg_catalog.text, ', ' ORDER BY c.relname)"
                             "  FROM pg_catalog.pg_class c"
                             " WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace($1) AND c.relrowsecurity"
                             "   AND pg_catalog.row_security_active(c.oid)",
                             {spi::text(schema)}, true);
    if (tables)
        throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                    "row-level security is active for you on OMERO's tables: " + *tables,
                    "Their policies are code of the tables' owner: they would run with your rights. OMERO "
                    "defines none.",
                    "Connect as OMERO's database user (omero.db.user in the server's config.xml) or a superuser, "
                    "or drop the policies (ALTER TABLE … DISABLE ROW LEVEL SECURITY).");
}

} // namespace

const std::optional<std::string> &find_omero_schema(spi::Session &spi)
{
    Call &call = current_call();
    if (!call.omero_schema_known) {
        call.omero_schema = resolve_omero_schema(spi);
        call.omero_schema_known = true;
        if (call.omero_schema)
            refuse_row_security(spi, *call.omero_schema);
    }
    return call.omero_schema;
}

const std::string &omero_schema(spi::Session &spi)
{
    const auto &s = find_omero_schema(spi);
    if (!s)
        throw not_omero("there is no dbpatch table");
    return *s;
}

// OMERO's relations are tables (or sequences): a view or foreign table under one of their names
// runs its owner's functions with the rights of whoever reads it, as a trigger would. Each name is
// checked when the call first uses it, after an ACCESS SHARE lock that keeps it what it is for
// the transaction (no rename or swap can commit meanwhile); a procedure that commits per batch
// locks and checks them all again at the start of each new transaction (Session::commit). The
// kind is read after the lock, from the catalog as it is then: a snapshot taken before a swap
// committed would not see the view that the name now means.
void check_relation(spi::Session &spi, const std::string &qualified)
{
    const char kind = spi::lock_relation(qualified);
    if (kind == '\0' || kind == 'S')
        return;  // a function (ome_nextval), a sequence, or nothing: the statement itself says so
    if (kind != 'r' && kind != 'p')
        throw Error(ERRCODE_WRONG_OBJECT_TYPE,
                    "OMERO's table " + qualified + " is not a table (relkind " + std::string(1, kind) + ")",
                    "OMERO's tables are plain tables; a view or foreign table in its place would run its owner's code "
                    "with your rights.",
                    "Put OMERO's own table back (restore the database from a backup).");
    if (auto foreign = spi.scalar(ou::foreign_column_types_sql, {spi::text(qualified)}, false))
        throw Error(ERRCODE_WRONG_OBJECT_TYPE,
                    "OMERO's table " + qualified + " has columns whose types carry casts of their owner's: " + *foreign,
                    "OMERO's column types have no casts made with a function; the function of such a cast would "
                    "run with your rights when the column is read or compared.",
                    "Put OMERO's own column types back (ALTER TABLE … ALTER COLUMN … TYPE), or restore the database "
                    "from a backup.");
}

void recheck_relations(spi::Session &spi)
{
    Call &call = current_call();
    if (call.omero_schema)
        refuse_row_security(spi, *call.omero_schema);
    for (const std::string &r : call.checked_relations)
        check_relation(spi, r);
}

std::string omero_name(spi::Session &spi, const char *name)
{
    std::string qualified = omero_schema(spi) + "." + spi::quote_ident(name);
    Call &call = current_call();
    for (const std::string &r : call.checked_relations)
        if (r == qualified)
            return qualified;
    check_relation(spi, qualified);
    call.checked_relations.push_back(qualified);
    call.after_commit = recheck_relations;
    return qualified;
}

std::string extension_schema(spi::Session &spi)
{
    return spi.scalar("SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e"
                      " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
                      " WHERE e.extname = 'omero_upgrade'::pg_catalog.name",
                      {}, true)
        .value_or("public");
}

DbState read_db_state(spi::Session &spi)
{
    DbState s;
    s.has_dbpatch = find_omero_schema(spi).has_value();
    if (!s.has_dbpatch)
        return s;
    const std::string dbpatch = omero_name(spi, "dbpatch");
    // A table called dbpatch without OMERO's columns is not OMERO's. They are named in OMERO's
    // order whatever plan the server picks (PostgreSQL 18's anti-join returns them in another).
    auto missing = spi.scalar(
        "SELECT pg_catalog.string_agg(c, ', ' ORDER BY i) FROM pg_catalog.unnest(ARRAY['id', 'currentversion', 'currentpatch',"
        "       'previousversion', 'previouspatch', 'finished', 'message']::pg_catalog.name[]) WITH ORDINALITY AS u(c, i)"
        " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass($1)"
        "                     AND a.attname = c AND NOT a.attisdropped)",
        {spi::text(dbpatch)}, true);
    if (missing) {
        s.has_dbpatch = false;
        s.missing_columns = *missing;
        return s;
    }
    spi::Result r = spi.query(
        "SELECT id, currentversion::pg_catalog.text || '__' || currentpatch::pg_catalog.text AS version,"
        "       previousversion::pg_catalog.text || '__' || previouspatch::pg_catalog.text AS previous,"
        "       finished IS NOT NULL AS finished, coalesce(message::pg_catalog.text, '') AS message"
        "  FROM " + dbpatch + " ORDER BY id DESC LIMIT 1",
        {}, true);
    if (r.empty())
        return s;
    s.has_rows = true;
    s.id = r.int64(0, "id");
    s.version = r.str(0, "version");
    s.previous_version = r.str(0, "previous");
    s.finished = r.str(0, "finished") == "t";
    s.message = r.str(0, "message");
    return s;
}

std::string require_db_version(spi::Session &spi)
{
    DbState s = read_db_state(spi);
    if (!s.has_dbpatch)
        throw not_omero(s.why_not_omero());
    if (!s.has_rows)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "not an OMERO database: the dbpatch table is empty");
    return s.version;
}

OtherSessions other_sessions(spi::Session &spi)
{
    auto r = spi.query(
        "SELECT pg_catalog.count(*) AS n,"
        "       pg_catalog.string_agg(pg_catalog.format('pid %s (%s@%s, %s)', pid, usename,"
        "                             coalesce(NULLIF(application_name, ''), '?'),"
        "                             coalesce(client_addr::pg_catalog.text, 'local')), '; ' ORDER BY pid) AS by_pid,"
        "       coalesce(pg_catalog.string_agg(DISTINCT coalesce(usename::pg_catalog.text, '?') || '@' ||"
        "                coalesce(NULLIF(application_name, ''), '?'), ', '), '') AS who"
        "  FROM pg_catalog.pg_stat_activity"
        " WHERE datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid()"
        // Another role's session shows backend_type NULL to a non-superuser: count it too (but
        // not background processes, which have no user).
        "   AND coalesce(backend_type, 'client backend') = 'client backend' AND usesysid IS NOT NULL",
        {}, true);
    return OtherSessions{r.int64(0, "n"), r.str(0, "by_pid"), r.str(0, "who")};
}

// Members of an installed extension (pgcrypto's gen_random_uuid, say) do not count: only the
// owner of an extension can add objects to it.
OmeroCodeScope enter_omero_code(spi::Session &spi)
{
    const std::string &schema = omero_schema(spi);
    auto shadows = spi.scalar(
        "SELECT pg_catalog.string_agg(x, ', ' ORDER BY x) FROM ("
        " SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text AS x FROM pg_catalog.pg_proc p"
        "  WHERE p.pronamespace = pg_catalog.to_regnamespace($1) AND EXISTS (SELECT 1 FROM pg_catalog.pg_proc c"
        "        WHERE c.pronamespace = 'pg_catalog'::pg_catalog.regnamespace AND c.proname = p.proname)"
        "    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass"
        "                      AND d.objid = p.oid AND d.deptype = 'e')"
        " UNION ALL"
        " SELECT 'operator ' || o.oid::pg_catalog.regoperator::pg_catalog.text FROM pg_catalog.pg_operator o"
        "  WHERE o.oprnamespace = pg_catalog.to_regnamespace($1)"
        "    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
        "                     WHERE d.classid = 'pg_catalog.pg_operator'::pg_catalog.regclass"
        "                      AND d.objid = o.oid AND d.deptype = 'e')) AS s",
        {spi::text(schema)}, true);
    if (shadows)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "the schema of OMERO's tables holds functions or operators named like PostgreSQL's own",
                    "In " + schema + ": " + *shadows +
                        ". OMERO defines none; OMERO's own functions and triggers, which this step runs, would "
                        "call them with your rights.",
                    "Drop them (and REVOKE CREATE ON SCHEMA " + schema +
                        " FROM PUBLIC if every role may create objects there), then run it again.");
    const RoleCheck caller = require_omero_role(spi, "This step");
    OmeroCodeScope scope;
    if (!caller.is_role)
        refuse_deferred_triggers(spi);
    scope.guc_level = push_search_path(("pg_catalog, " + schema + ", pg_temp").c_str());
    scope.role = switch_to_role(omero_role(spi));
    return scope;
}

// Any setting OMERO's code changed is discarded with the GUC level, as PostgreSQL's maintenance
// commands do (AtEOXact_GUC(false)): nothing it set outlives the statement. (No deferred trigger
// event can be queued inside: PostgreSQL refuses it in a security-restricted operation.)
void leave_omero_code(const OmeroCodeScope &scope)
{
    restore_role(scope.role);
    discard_search_path(scope.guc_level);
}

// A trigger deferred to commit (INITIALLY DEFERRED) fires after the statement and its role
// switch are over: a user trigger then runs with the caller's rights. PostgreSQL refuses to queue
// any deferred trigger event inside a security-restricted operation (a deferred foreign key's
// too), with a message that names neither: this names them, before anything runs. Anywhere in
// the database, since OMERO's code may write any table its role can.
void refuse_deferred_triggers(spi::Session &spi)
{
    auto r = spi.query(
        "SELECT pg_catalog.count(*) AS n, pg_catalog.string_agg(x, ', ' ORDER BY x) FILTER (WHERE i OPERATOR(pg_catalog.<=) 5) AS first"
        "  FROM (SELECT pg_catalog.concat(pg_catalog.quote_ident(t.tgname), ' on ', t.tgrelid::pg_catalog.regclass) AS x,"
        "               pg_catalog.row_number() OVER (ORDER BY t.tgname, t.tgrelid) AS i"
        "          FROM pg_catalog.pg_trigger t WHERE t.tginitdeferred) AS d",
        {}, true);
    int64_t n = r.int64(0, "n");
    if (n == 0)
        return;
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                "triggers that fire at commit (INITIALLY DEFERRED) are in the database: " + r.str(0, "first") +
                    (n > 5 ? " and " + std::to_string(n - 5) + " more" : ""),
                "This step runs OMERO's code as OMERO's role, which ends before the commit: a trigger deferred to "
                "the commit would run with your rights, and PostgreSQL refuses to queue any deferred trigger (a "
                "deferred foreign key's too) inside such a step. OMERO defines none.",
                "Connect as OMERO's database user (omero.db.user in the server's config.xml), or make them NOT "
                "DEFERRABLE (ALTER TABLE … ALTER CONSTRAINT … NOT DEFERRABLE) or drop them.");
}

Oid omero_role(spi::Session &spi)
{
    Call &call = current_call();
    if (call.omero_role == InvalidOid) {
        auto owner = spi.scalar("SELECT c.relowner::pg_catalog.int8 FROM pg_catalog.pg_class c"
                                " WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)",
                                {spi::text(omero_name(spi, "dbpatch"))}, true);
        if (!owner)
            throw not_omero("there is no dbpatch table");
        call.omero_role = (Oid)std::stoll(*owner);
    }
    return call.omero_role;
}

RoleCheck require_omero_role(spi::Session &spi, const char *what)
{
    RoleCheck c = check_role(omero_role(spi));
    if (c.is_role || c.has_privs)
        return c;
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                std::string(what) + " runs OMERO's own code (the triggers and functions of OMERO's tables), which "
                "runs as OMERO's database role \"" + c.role_name + "\": role \"" + c.current_name +
                    "\" is not that role, not a member of it and not a superuser",
                "OMERO's code would otherwise run with the rights of \"" + c.current_name +
                    "\", and whoever owns OMERO's tables could use them.",
                "Connect as \"" + c.role_name + "\" (omero.db.user in the server's config.xml) or as a superuser.");
}

} // namespace ou
