// The loadable module and the PostgreSQL half of the C++ boundary: PG_MODULE_MAGIC, _PG_init (our
// settings), raising errors once the C++ frames are gone, and the search_path every call runs with.
//
// search_path: each SQL-callable function runs its SQL with search_path = pg_catalog, pg_temp,
// the way a function's SET clause would (fmgr_security_definer): NewGUCNestLevel(), then
// set_config_option(GUC_ACTION_SAVE); a normal return pops that level (AtEOXact_GUC(true, level)),
// an error leaves it to the abort of the (sub)transaction, which pops every level above its own
// (PostgreSQL restores GUCs the same way after an error in a function with SET clauses). A SET
// clause itself cannot be used: it makes CALL atomic (ExecuteCallStmt), and our procedures commit
// per batch. A commit pops every nest level and puts the caller's value back (AtEOXact_GUC at
// commit restores GUC_SAVE entries), so spi::Session::commit() calls renew_search_path() to push
// ours again in the new transaction: the caller's search_path is never changed, whether the call
// returns, fails, or is cancelled between two batches.
#include "cpp_wrapper.hpp"

extern "C" {
#include "utils/acl.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;
void _PG_init(void);
}

namespace ou {
namespace {

const char *const kSafePath = "pg_catalog, pg_temp";
Call *g_current = nullptr;
char *g_omero_schema = nullptr;  // omero_upgrade.omero_schema
bool g_progress_detail = false;  // omero_upgrade.progress_detail

int push_safe_path()
{
    const char *now = GetConfigOption("search_path", false, false);
    if (now && strcmp(now, kSafePath) == 0)
        return 0;  // already so (a nested call, or a caller who set it): nothing to push or pop
    return push_search_path(kSafePath);
}

} // namespace

int push_search_path(const char *path)
{
    return pg_guard([path] {
        int level = NewGUCNestLevel();
        (void)set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
        return level;
    });
}

void pop_search_path(int level)
{
    if (level > 0)
        pg_guard([level] { AtEOXact_GUC(true, level); });
}

RoleCheck check_role(Oid role)
{
    RoleCheck c;
    c.current = GetUserId();
    c.is_role = c.current == role;
    c.has_privs = pg_guard([&c, role] { return has_privs_of_role(c.current, role); });
    c.current_name = pg_guard([&c] { return GetUserNameFromId(c.current, false); });
    c.role_name = pg_guard([role] { return GetUserNameFromId(role, false); });
    return c;
}

RoleSwitch switch_to_role(Oid role)
{
    RoleSwitch s;
    GetUserIdAndSecContext(&s.saved_user, &s.saved_context);
    if (s.saved_user == role)
        return s;  // already that role: nothing to switch
    SetUserIdAndSecContext(role, s.saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    s.switched = true;
    return s;
}

void restore_role(const RoleSwitch &s) noexcept
{
    if (s.switched)
        SetUserIdAndSecContext(s.saved_user, s.saved_context);
}

void discard_search_path(int level)
{
    if (level > 0)
        pg_guard([level] { AtEOXact_GUC(false, level); });
}

Call *current_call_or_null()
{
    return g_current;
}

Call &current_call()
{
    if (!g_current)
        throw Error(ERRCODE_INTERNAL_ERROR, "omero_upgrade: no function call in progress");
    return *g_current;
}

void renew_search_path()
{
    if (g_current && g_current->guc_level > 0)
        g_current->guc_level = push_search_path(kSafePath);
}

namespace detail {

Call *enter_call()
{
    int level = push_safe_path();
    Call *call = new Call;
    call->prev = g_current;
    call->guc_level = level;
    g_current = call;
    return call;
}

void leave_call(Call *call)
{
    g_current = call->prev;
    int level = call->guc_level;
    delete call;
    pop_search_path(level);
}

void drop_call(Call *call) noexcept
{
    if (!call)
        return;
    g_current = call->prev;
    delete call;
}

// Called by boundary() once every C++ object of the function body is gone.
void raise(ErrorData *pg, int code, char *msg, char *detail, char *hint)
{
    if (pg)
        ReThrowError(pg);
    // Move the malloc'd texts into palloc'd memory first, so nothing leaks when ereport jumps.
    char *m = pstrdup(msg ? msg : "omero_upgrade error");
    char *d = detail ? pstrdup(detail) : nullptr;
    char *h = hint ? pstrdup(hint) : nullptr;
    free(msg);
    free(detail);
    free(hint);
    ereport(ERROR, (errcode(code), errmsg("%s", m), d ? errdetail("%s", d) : 0, h ? errhint("%s", h) : 0));
    pg_unreachable();
}

} // namespace detail

const char *omero_schema_setting()
{
    return g_omero_schema && *g_omero_schema ? g_omero_schema : nullptr;
}

bool progress_detail_setting()
{
    return g_progress_detail;
}

} // namespace ou

void _PG_init(void)
{
    DefineCustomStringVariable(
        "omero_upgrade.omero_schema",
        "Schema of OMERO's tables, for a database where more than one schema holds a table named dbpatch.",
        "Empty (the default): the one schema that holds a table named dbpatch.", &ou::g_omero_schema, "",
        PGC_USERSET, 0, nullptr, nullptr, nullptr);
    // The tool sets it on each of its connections (tool/db.cpp): psql users see the progress
    // message alone, the tool gets the JSON DETAIL it parses (extension/progress.hpp).
    DefineCustomBoolVariable(
        "omero_upgrade.progress_detail",
        "Progress NOTICEs carry a machine-readable JSON DETAIL (for omero-upgrade).",
        "Off (the default): the progress message alone, as a psql user reads it.", &ou::g_progress_detail, false,
        PGC_USERSET, 0, nullptr, nullptr, nullptr);
}
