// The OMERO database our SQL works on: the schema of OMERO's tables (found once per call), the
// dbpatch state, the other sessions on the database, and how OMERO's own code is run.
//
// OMERO's schema is the schema holding a table named dbpatch: omero_upgrade.omero_schema when it
// is set, else the only such schema (temporary schemas never count). Several candidates and no
// setting is an error naming them (55000), never a silent pick: a role that can create a schema
// cannot make a superuser read its fake dbpatch.
#pragma once

#include "spi.hpp"

#include <optional>
#include <string>

namespace ou {

// omero_upgrade.omero_schema, or nullptr when empty (boundary.cpp defines the setting).
const char *omero_schema_setting();

// OMERO's schema, quoted for SQL; nullopt when no schema holds a dbpatch table.
const std::optional<std::string> &find_omero_schema(spi::Session &spi);
// … or 55000 "not an OMERO database: there is no dbpatch table".
const std::string &omero_schema(spi::Session &spi);
// OMERO's table (or function, sequence) `name`, schema-qualified and quoted, for SQL text.
std::string omero_name(spi::Session &spi, const char *name);
// The extension's own schema (its SQL functions), quoted.
std::string extension_schema(spi::Session &spi);

// The newest dbpatch row.
struct DbState {
    bool has_dbpatch = false;
    bool has_rows = false;
    int64_t id = 0;
    std::string version;           // e.g. OMERO5.3__1
    std::string previous_version;  // e.g. OMERO5.3__0
    bool finished = false;
    std::string message;
    std::string missing_columns;  // a dbpatch table without OMERO's columns
    std::string why_not_omero() const
    {
        if (!missing_columns.empty())
            return "the dbpatch table lacks OMERO's columns " + missing_columns;
        return has_dbpatch ? "the dbpatch table is empty" : "there is no dbpatch table";
    }
};
DbState read_db_state(spi::Session &spi);
// The current version, or a clear "not an OMERO database" error.
std::string require_db_version(spi::Session &spi);

// Client sessions connected to this database besides ours.
struct OtherSessions {
    int64_t count = 0;
    std::string by_pid;  // "pid 42 (omero@OMERO.blitz, local); …"
    std::string who;     // distinct "user@application", comma-separated
};
OtherSessions other_sessions(spi::Session &spi);

// OMERO's own code (ome_nextval, and the triggers, rules, defaults and constraints of its tables)
// resolves names through the search_path and runs with the rights of whoever runs it. Statements
// that call it or write OMERO's tables run inside with_omero_code():
//  - search_path = pg_catalog, <OMERO's schema>, pg_temp, once that schema has been checked to
//    hold no function or operator shadowing PostgreSQL's (55000 naming them: OMERO defines none;
//    members of an installed extension do not count). Our own text in those statements is fully
//    qualified, so nothing of it resolves through that path;
//  - as OMERO's role (the owner of dbpatch) under SECURITY_RESTRICTED_OPERATION, as PostgreSQL
//    runs a table's index functions as its owner in VACUUM, ANALYZE or REINDEX: a trigger that
//    role put on shape then runs with that role's rights, never with a superuser's. The caller
//    must be that role, a role with its privileges (a member) or a superuser, who can do all it
//    can anyway; anyone else gets 42501 before anything runs, since OMERO's code would run with
//    the caller's rights. OMERO's role holds the rights on the state tables (_grant_state).
//    Deferrable triggers (they would fire at commit, as the caller) are refused first, and every
//    setting OMERO's code changed is discarded on the way out.
struct OmeroCodeScope {
    int guc_level = 0;
    RoleSwitch role;
};
// OMERO's role: the owner of OMERO's dbpatch table (found once per call).
Oid omero_role(spi::Session &spi);
// 42501 unless the caller may act as OMERO's role (is it, has its privileges, or is a superuser); else who it is.
RoleCheck require_omero_role(spi::Session &spi, const char *what);
OmeroCodeScope enter_omero_code(spi::Session &spi);
void leave_omero_code(const OmeroCodeScope &scope);
void refuse_deferred_triggers(spi::Session &spi);
template <class F>
auto with_omero_code(spi::Session &spi, F &&f) -> decltype(f())
{
    OmeroCodeScope scope = enter_omero_code(spi);
    try {
        if constexpr (std::is_void_v<decltype(f())>) {
            f();
            leave_omero_code(scope);
        } else {
            auto r = f();
            leave_omero_code(scope);
            return r;
        }
    } catch (...) {
        restore_role(scope.role);  // the search_path is left to the abort, as on any error
        throw;
    }
}

} // namespace ou
