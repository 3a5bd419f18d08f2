// SPI helpers: see spi.hpp.
#include "spi.hpp"
#include "pg_compat.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"
}

namespace ou::spi {

Param text(const std::string &s)
{
    const char *c = s.c_str();
    return Param{TEXTOID, pg_guard([c] { return PointerGetDatum(cstring_to_text(c)); }), false};
}
Param int8(int64_t v) { return Param{INT8OID, Int64GetDatum(v), false}; }
Param int4(int32_t v) { return Param{INT4OID, Int32GetDatum(v), false}; }
Param boolean(bool v) { return Param{BOOLOID, BoolGetDatum(v), false}; }
Param null(Oid type) { return Param{type, (Datum)0, true}; }
Param int8_array(const Ids &ids) { return Param{INT8ARRAYOID, int8_array_datum(ids), false}; }
Param text_array(const std::vector<std::string> &items) { return Param{TEXTARRAYOID, text_array_datum(items), false}; }
Param int8_array(const std::optional<Ids> &ids) { return ids ? int8_array(*ids) : null(INT8ARRAYOID); }
Param text_array(const std::optional<std::vector<std::string>> &items)
{
    return items ? text_array(*items) : null(TEXTARRAYOID);
}

std::string quote_ident(const std::string &name)
{
    const char *n = name.c_str();
    return pg_guard([n] { return quote_identifier(n); });
}

Datum Row::datum(int col, bool *isnull) const
{
    // Columns of a query we wrote: SPI_getbinval cannot fail for them.
    return SPI_getbinval(tuple_, desc_, col, isnull);
}

int64_t Row::int8(int col) const
{
    bool isnull;
    Datum d = datum(col, &isnull);
    if (isnull)
        throw Error(ERRCODE_INTERNAL_ERROR, "omero_upgrade: unexpected NULL in column " + std::to_string(col));
    return DatumGetInt64(d);
}

std::string_view Row::string(int col) const
{
    bool isnull;
    Datum d = datum(col, &isnull);
    if (isnull)
        throw Error(ERRCODE_INTERNAL_ERROR, "omero_upgrade: unexpected NULL in column " + std::to_string(col));
    // varchar and text share the varlena layout ("text" here is our spi::text: name the struct)
    struct varlena *t = pg_guard([d] { return pg_detoast_datum_packed((struct varlena *)DatumGetPointer(d)); });
    return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

size_t Result::col(const char *name) const
{
    for (size_t i = 0; i < columns.size(); i++)
        if (columns[i] == name)
            return i;
    throw Error(ERRCODE_INTERNAL_ERROR, std::string("omero_upgrade: no result column ") + name);
}

std::string Result::str(size_t row, const char *name) const
{
    const Value &v = get(row, name);
    return v ? *v : std::string();
}

int64_t Result::int64(size_t row, const char *name) const
{
    const Value &v = get(row, name);
    if (!v)
        throw Error(ERRCODE_INTERNAL_ERROR, std::string("omero_upgrade: unexpected NULL in ") + name);
    return std::stoll(*v);
}

Session::Session(bool nonatomic)
{
    int rc = pg_guard([nonatomic] { return SPI_connect_ext(nonatomic ? SPI_OPT_NONATOMIC : 0); });
    if (rc != SPI_OK_CONNECT)
        throw Error(ERRCODE_INTERNAL_ERROR, "omero_upgrade: SPI_connect failed");
    connected_ = true;
}

Session::~Session()
{
    // SPI_finish only reports through its return code; an aborting transaction cleans up anyway.
    if (connected_)
        SPI_finish();
}

namespace {

// Parameters in the three arrays SPI takes.
struct Args {
    explicit Args(const std::vector<Param> &params)
        : n((int)params.size()), types(n), values(n), nulls(n + 1, ' ')
    {
        for (int i = 0; i < n; i++) {
            types[i] = params[i].type;
            values[i] = params[i].value;
            nulls[i] = params[i].isnull ? 'n' : ' ';
        }
    }
    // Plain pointers into the arrays, for a pg_guard lambda to capture by value.
    struct Raw {
        int n;
        Oid *types;
        Datum *values;
        const char *nulls;
    };
    Raw raw() { return Raw{n, types.data(), values.data(), nulls.data()}; }

    int n;
    std::vector<Oid> types;
    std::vector<Datum> values;
    std::vector<char> nulls;
};

int run(const std::string &sql, const std::vector<Param> &params, bool read_only)
{
    Args a(params);
    const char *q = sql.c_str();
    Args::Raw r = a.raw();
    int rc = pg_guard([=] { return SPI_execute_with_args(q, r.n, r.types, r.values, r.nulls, read_only, 0); });
    if (rc < 0)
        throw Error(ERRCODE_INTERNAL_ERROR, std::string("omero_upgrade: SPI error ") + SPI_result_code_string(rc) +
                                                " in: " + sql);
    return rc;
}

} // namespace

Portal open_cursor(const std::string &sql, const std::vector<Param> &params)
{
    Args a(params);
    const char *q = sql.c_str();
    Args::Raw r = a.raw();
    return pg_guard([=] { return SPI_cursor_open_with_args(nullptr, q, r.n, r.types, r.values, r.nulls, true, 0); });
}

bool fetch(Portal portal, long count)
{
    check_interrupts();
    pg_guard([portal, count] { SPI_cursor_fetch(portal, true, count); });
    if (SPI_processed == 0) {
        free_fetched();
        return false;
    }
    return true;
}

void free_fetched()
{
    SPITupleTable *tt = SPI_tuptable;
    if (tt)
        pg_guard([tt] { SPI_freetuptable(tt); });
}

void close_cursor(Portal portal)
{
    pg_guard([portal] { SPI_cursor_close(portal); });
}

Result Session::query(const std::string &sql, const std::vector<Param> &params, bool read_only)
{
    run(sql, params, read_only);
    Result r;
    r.processed = SPI_processed;
    SPITupleTable *tt = SPI_tuptable;
    if (!tt)
        return r;
    TupleDesc desc = tt->tupdesc;
    for (int c = 0; c < desc->natts; c++)
        r.columns.emplace_back(NameStr(TupleDescAttr(desc, c)->attname));
    r.rows.reserve(SPI_processed);
    for (uint64_t i = 0; i < SPI_processed; i++) {
        HeapTuple tup = tt->vals[i];
        std::vector<Value> row;
        row.reserve(desc->natts);
        for (int c = 1; c <= desc->natts; c++) {
            char *s = pg_guard([=] { return SPI_getvalue(tup, desc, c); });
            if (s)
                row.emplace_back(std::string(s));
            else
                row.emplace_back(std::nullopt);
        }
        r.rows.push_back(std::move(row));
    }
    return r;
}

uint64_t Session::exec(const std::string &sql, const std::vector<Param> &params, bool read_only)
{
    run(sql, params, read_only);
    return SPI_processed;
}

Value Session::scalar(const std::string &sql, const std::vector<Param> &params, bool read_only)
{
    Result r = query(sql, params, read_only);
    if (r.rows.empty() || r.rows[0].empty())
        return std::nullopt;
    return r.rows[0][0];
}

void Session::commit()
{
    pg_guard([] {
        compat::spi_commit_and_continue();
    });
    renew_search_path();
    // The new transaction holds no lock: what the call checked of OMERO's tables is checked again.
    if (Call *call = current_call_or_null(); call && call->after_commit)
        call->after_commit(*this);
}

char lock_relation(const std::string &qualified)
{
    const char *q = qualified.c_str();
    return pg_guard([q] {
        RangeVar *rv = makeRangeVarFromNameList(textToQualifiedNameList(cstring_to_text(q)));
        Oid rel = RangeVarGetRelidExtended(rv, AccessShareLock, RVR_MISSING_OK, nullptr, nullptr);
        return OidIsValid(rel) ? get_rel_relkind(rel) : '\0';
    });
}

bool try_subtransaction(const std::function<void()> &f, int sqlstate)
{
    MemoryContext ctx = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    pg_guard([ctx] {
        BeginInternalSubTransaction(nullptr);
        MemoryContextSwitchTo(ctx);  // what f allocates outlives the subtransaction, as before it
    });
    auto rollback = [ctx, owner] {
        pg_guard([ctx, owner] {
            RollbackAndReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(ctx);
            CurrentResourceOwner = owner;
        });
    };
    try {
        f();
    } catch (const PgError &e) {
        rollback();
        if (e.edata && e.edata->sqlerrcode == sqlstate)
            return false;
        throw;
    } catch (...) {
        rollback();
        throw;
    }
    pg_guard([ctx, owner] {
        ReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(ctx);
        CurrentResourceOwner = owner;
    });
    return true;
}

} // namespace ou::spi
