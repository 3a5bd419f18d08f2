// See args.hpp.
#include "args.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

namespace ou {
namespace {

Error null_error(const char *name, const std::string &hint)
{
    return Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(name) + " must not be NULL", "", hint);
}

// The array argument n, checked: one dimension, no NULL element.
ArrayType *checked_array(FunctionCallInfo fcinfo, int n, const char *name, const char *what)
{
    Datum d = fcinfo->args[n].value;
    ArrayType *arr = pg_guard([d] { return DatumGetArrayTypeP(d); });
    if (ARR_NDIM(arr) > 1 || array_contains_nulls(arr))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                    std::string(name) + " must be a one-dimensional array of " + what,
                    "It holds a NULL or has more than one dimension.");
    return arr;
}

struct Elements {
    Datum *values = nullptr;
    bool *nulls = nullptr;
    int n = 0;
};

Elements deconstruct(ArrayType *arr)
{
    Elements e;
    pg_guard([arr, &e] {
        int16 len;
        bool byval;
        char align;
        get_typlenbyvalalign(ARR_ELEMTYPE(arr), &len, &byval, &align);
        deconstruct_array(arr, ARR_ELEMTYPE(arr), len, byval, align, &e.values, &e.nulls, &e.n);
    });
    return e;
}

} // namespace

bool Args::is_null(int n) const
{
    return n >= fcinfo_->nargs || fcinfo_->args[n].isnull;
}

bool Args::declared(int n) const
{
    return n < fcinfo_->nargs;
}

int32_t Args::int4(int n, const char *name, const std::string &hint) const
{
    if (is_null(n))
        throw null_error(name, hint);
    return DatumGetInt32(fcinfo_->args[n].value);
}

std::optional<std::string> Args::opt_text(int n) const
{
    if (is_null(n))
        return std::nullopt;
    Datum d = fcinfo_->args[n].value;
    char *s = pg_guard([d] { return text_to_cstring((const ::text *)DatumGetPointer(d)); });
    return std::string(s);
}

std::string Args::text(int n, const char *name, const std::string &hint) const
{
    auto s = opt_text(n);
    if (!s)
        throw null_error(name, hint);
    return *s;
}

bool Args::flag(int n, const char *name, const std::string &hint) const
{
    if (is_null(n))
        throw null_error(name, hint);
    return DatumGetBool(fcinfo_->args[n].value);
}

int64_t Args::int8(int n, const char *name, const std::string &hint) const
{
    if (is_null(n))
        throw null_error(name, hint);
    return DatumGetInt64(fcinfo_->args[n].value);
}

int32_t Args::batch_size(int n, const char *unit, int32_t default_size) const
{
    const std::string bounds = "A batch holds 1 to " + std::to_string(kMaxBatchSize) + " " + unit + ".";
    const std::string hint = "The default, " + std::to_string(default_size) + ", suits most databases.";
    if (is_null(n))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "batch_size must not be NULL", bounds, hint);
    int32_t b = DatumGetInt32(fcinfo_->args[n].value);
    if (b < 1 || b > kMaxBatchSize)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "batch_size out of range: " + std::to_string(b), bounds, hint);
    return b;
}

std::optional<Ids> Args::int8_array(int n, const char *name, const char *what) const
{
    if (is_null(n))
        return std::nullopt;
    Elements e = deconstruct(checked_array(fcinfo_, n, name, what));
    Ids ids;
    ids.reserve(e.n);
    for (int i = 0; i < e.n; i++)
        ids.push_back(DatumGetInt64(e.values[i]));
    return ids;
}

std::optional<std::vector<std::string>> Args::text_array(int n, const char *name, const char *what) const
{
    if (is_null(n))
        return std::nullopt;
    Elements e = deconstruct(checked_array(fcinfo_, n, name, what));
    std::vector<std::string> items;
    items.reserve(e.n);
    for (int i = 0; i < e.n; i++) {
        Datum d = e.values[i];
        char *s = pg_guard([d] { return text_to_cstring((const ::text *)DatumGetPointer(d)); });
        items.emplace_back(s);
    }
    return items;
}

IntArray Args::int_array(int n) const
{
    return is_null(n) ? IntArray{} : ou::int_array(fcinfo_->args[n].value);
}

bool Args::nonatomic_call() const
{
    return fcinfo_->context && IsA(fcinfo_->context, CallContext) && !castNode(CallContext, fcinfo_->context)->atomic;
}

Datum int8_array_datum(const Ids &ids)
{
    const int64_t *v = ids.data();
    int n = (int)ids.size();
    return pg_guard([v, n] {
        Datum *d = (Datum *)palloc(sizeof(Datum) * (n > 0 ? n : 1));
        for (int i = 0; i < n; i++)
            d[i] = Int64GetDatum(v[i]);
        ArrayType *arr = construct_array(d, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
        pfree(d);
        return PointerGetDatum(arr);
    });
}

Datum text_array_datum(const std::vector<std::string> &items)
{
    std::vector<const char *> c;
    for (const auto &s : items)
        c.push_back(s.c_str());
    const char *const *v = c.data();
    int n = (int)c.size();
    return pg_guard([v, n] {
        Datum *d = (Datum *)palloc(sizeof(Datum) * (n > 0 ? n : 1));
        for (int i = 0; i < n; i++)
            d[i] = PointerGetDatum(cstring_to_text(v[i]));
        return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
    });
}

IntArray int_array(Datum array)
{
    ArrayType *arr = pg_guard([array] { return DatumGetArrayTypeP(array); });
    const Oid type = ARR_ELEMTYPE(arr);
    if (type != INT8OID && type != INT4OID && type != INT2OID)
        throw Error(ERRCODE_DATATYPE_MISMATCH, "omero_upgrade: an integer array was expected");
    Elements e = deconstruct(arr);
    return IntArray{e.values, e.nulls, e.n, type == INT8OID ? 8 : type == INT4OID ? 4 : 2};
}

} // namespace ou
