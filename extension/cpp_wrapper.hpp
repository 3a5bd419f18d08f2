// The one boundary between C++ and PostgreSQL.
//
// Two rules keep the process sound (see pg_duckdb's cpp_wrapper.hpp for the same idea):
//  1. No C++ exception may unwind into PostgreSQL's C frames: every SQL-callable function runs
//     its body inside ou::boundary(), which catches everything and raises a PostgreSQL ERROR
//     only after all C++ objects of the body are destroyed.
//  2. No ereport(ERROR) may longjmp over a C++ frame with destructors: PostgreSQL calls that can
//     raise go through ou::pg_guard(), which catches the error with PG_TRY and rethrows it as
//     ou::PgError, a C++ exception, so destructors run; the boundary then re-raises the original
//     error unchanged (same SQLSTATE, message, detail), so cancels and conflicts keep their codes.
//  3. Nothing we run resolves a name through the caller's search_path: boundary() runs the body
//     with search_path = pg_catalog, pg_temp (boundary.cpp), put back on return and on error.
// Lambdas given to pg_guard must hold only trivially destructible locals: they are what a
// longjmp may skip. pg_guard is called only by the facade files (boundary, args, spi, srf):
// domain files use those.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ou {
namespace spi {
class Session;
}

// A PostgreSQL error caught by pg_guard, carried across C++ frames. edata lives in the
// transaction's memory (pg_guard), never in memory an unwinding frame may free.
class PgError : public std::exception {
public:
    explicit PgError(ErrorData *e) : edata(e) {}
    const char *what() const noexcept override
    {
        return edata && edata->message ? edata->message : "PostgreSQL error";
    }
    ErrorData *edata;
};

// An error of ours: becomes ereport(ERROR) with this SQLSTATE at the boundary.
class Error : public std::exception {
public:
    Error(int sqlstate, std::string message, std::string detail = {}, std::string hint = {})
        : sqlstate(sqlstate), message(std::move(message)), detail(std::move(detail)), hint(std::move(hint))
    {
    }
    const char *what() const noexcept override { return message.c_str(); }
    int sqlstate;
    std::string message, detail, hint;
};

// Runs PostgreSQL code that may ereport(ERROR); such an error becomes a PgError exception.
template <typename F>
auto pg_guard(F &&f) -> decltype(f())
{
    using R = decltype(f());
    if constexpr (std::is_void_v<R>) {
        MemoryContext ctx = CurrentMemoryContext;
        ErrorData *volatile edata = nullptr;  // set after the longjmp: must not live in a register
        PG_TRY();
        {
            f();
        }
        PG_CATCH();
        {
            // The copy must outlive every C++ frame the exception unwinds, spi::Session's
            // SPI_finish() included, which deletes the SPI connection's memory (usually ctx):
            // boundary() re-raises it after that. The transaction's context lasts until the
            // abort that follows the re-raise (or the commit, when the error is handled).
            MemoryContextSwitchTo(TopTransactionContext ? TopTransactionContext : TopMemoryContext);
            edata = CopyErrorData();
            FlushErrorState();
            MemoryContextSwitchTo(ctx);
        }
        PG_END_TRY();
        if (edata)
            throw PgError(edata);
    } else {
        static_assert(std::is_trivially_destructible_v<R>, "pg_guard returns plain values only");
        R result{};
        R *out = &result;  // written through memory, so the longjmp cannot clobber it
        pg_guard([&f, out] { *out = f(); });
        return result;
    }
}

// A NOTICE or WARNING to the client (the texts are ours; "%s" keeps any '%' in them literal).
inline void report(int elevel, const std::string &msg, const std::string &detail = {})
{
    const char *m = msg.c_str();
    const char *d = detail.c_str();
    pg_guard([=] { ereport(elevel, (errmsg("%s", m), *d ? errdetail("%s", d) : 0)); });
}
inline void notice(const std::string &msg, const std::string &detail = {}) { report(NOTICE, msg, detail); }

// CHECK_FOR_INTERRUPTS from C++: a cancel or terminate arrives as PgError and unwinds cleanly.
inline void check_interrupts()
{
    pg_guard([] { CHECK_FOR_INTERRUPTS(); });
}

// The SQL-callable function running now (calls nest: one of ours may run inside another's SQL).
// Every call runs its SQL with search_path = pg_catalog, pg_temp (boundary.cpp): a GUC nest level
// of its own, as a function's SET clause has, popped on return and by the abort on error.
struct Call {
    Call *prev = nullptr;
    int guc_level = 0;  // our GUC nest level; 0 when the search_path was already pg_catalog, pg_temp
    bool omero_schema_known = false;
    std::optional<std::string> omero_schema;  // resolved once per call (omero_db.cpp), quoted
    Oid omero_role = InvalidOid;              // owner of OMERO's dbpatch, found once per call
    // OMERO's relations checked to be plain tables and locked in this transaction (qualified);
    // after each commit of a procedure, after_commit checks and locks them again.
    std::vector<std::string> checked_relations;
    void (*after_commit)(spi::Session &) = nullptr;
};
Call &current_call();
Call *current_call_or_null();
// After SPI_commit (a procedure called by CALL): the commit popped every GUC nest level and put
// the caller's search_path back; this pushes ours again for the new transaction.
void renew_search_path();
// A search_path of our own for a part of a call (e.g. OMERO's schema for OMERO's own code): the
// GUC nest level to give back to pop_search_path. On error the (sub)transaction abort pops it.
int push_search_path(const char *path);
void pop_search_path(int level);
// As pop_search_path, and every other setting changed since push_search_path is put back too
// (AtEOXact_GUC(false)), as after a maintenance command: what code run inside set stays inside.
void discard_search_path(int level);

// Running a part of a call as another role, the way PostgreSQL's maintenance commands run an
// index's or a table's code as the table's owner (SetUserIdAndSecContext with
// SECURITY_RESTRICTED_OPERATION: no SET ROLE, no temporary tables, no cursor WITH HOLD inside).
// On an error the (sub)transaction abort puts the role back; restore_role does it for a C++
// exception that is caught before that.
struct RoleSwitch {
    bool switched = false;
    Oid saved_user = InvalidOid;
    int saved_context = 0;
};
struct RoleCheck {
    Oid current = InvalidOid;   // GetUserId()
    bool is_role = false;       // current == role
    bool has_privs = false;     // superuser, or has the privileges of role (a member that inherits)
    std::string current_name, role_name;
};
RoleCheck check_role(Oid role);
RoleSwitch switch_to_role(Oid role);
void restore_role(const RoleSwitch &s) noexcept;

namespace detail {
// malloc'd copy: used inside catch blocks, where a palloc failure would longjmp out of the handler.
inline char *dup(const std::string &s)
{
    return s.empty() ? nullptr : strdup(s.c_str());
}
[[noreturn]] void raise(ErrorData *pg, int code, char *msg, char *detail, char *hint);
Call *enter_call();              // pushes the safe search_path (may throw)
void leave_call(Call *call);     // a normal return: pops it (may throw)
void drop_call(Call *call) noexcept;  // an error: forgets the call; the abort restores the GUCs
} // namespace detail

// Runs the body of an SQL-callable function; see rule 1 above.
template <typename F>
Datum boundary(F &&body)
{
    ErrorData *pg = nullptr;
    int code = ERRCODE_INTERNAL_ERROR;
    char *msg = nullptr, *detail = nullptr, *hint = nullptr;
    Call *call = nullptr;
    try {
        call = detail::enter_call();
        Datum result = body();
        Call *done = call;
        call = nullptr;
        detail::leave_call(done);
        return result;
    } catch (PgError &e) {
        pg = e.edata;
    } catch (Error &e) {
        code = e.sqlstate;
        msg = detail::dup(e.message);
        detail = detail::dup(e.detail);
        hint = detail::dup(e.hint);
    } catch (std::bad_alloc &) {
        code = ERRCODE_OUT_OF_MEMORY;
        msg = strdup("out of memory in omero_upgrade");
    } catch (std::exception &e) {
        msg = detail::dup(std::string("omero_upgrade internal error: ") + e.what());
    } catch (...) {
        msg = strdup("omero_upgrade internal error: unknown exception");
    }
    detail::drop_call(call);
    detail::raise(pg, code, msg, detail, hint);
}

} // namespace ou

// Declares an SQL-callable V1 function with C linkage.
#define OU_FUNCTION(name)                                                                          \
    extern "C" {                                                                                   \
    PG_FUNCTION_INFO_V1(name);                                                                     \
    }                                                                                              \
    extern "C" Datum name(PG_FUNCTION_ARGS)
