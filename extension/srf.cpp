// See srf.hpp.
#include "srf.hpp"

#include <memory>

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
}

namespace ou::srf {

Writer::Writer(FunctionCallInfo fcinfo)
{
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
    if (!rsinfo || !IsA(rsinfo, ReturnSetInfo) || !(rsinfo->allowedModes & SFRM_Materialize))
        throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, "set-valued function called in context that cannot accept a set");
    pg_guard([&] {
        MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
        TupleDesc desc;
        if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "return type must be a row type");
        desc_ = CreateTupleDescCopy(desc);
        store_ = tuplestore_begin_heap(true, false, work_mem);
        rsinfo->returnMode = SFRM_Materialize;
        rsinfo->setResult = (Tuplestorestate *)store_;
        rsinfo->setDesc = desc_;
        ctx_ = CurrentMemoryContext;
        MemoryContextSwitchTo(old);
    });
}

namespace {

Datum to_datum(const Cell &c)
{
    const char *s = c.text.c_str();
    switch (c.kind) {
    case Cell::Null: return 0;
    case Cell::Text: return pg_guard([s] { return PointerGetDatum(cstring_to_text(s)); });
    case Cell::Int8: return Int64GetDatum(c.i);
    case Cell::Int4: return Int32GetDatum((int32)c.i);
    case Cell::Bool: return BoolGetDatum(c.i != 0);
    case Cell::Int8Array: return int8_array_datum(c.ids);
    case Cell::Jsonb: return pg_guard([s] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(s)); });
    case Cell::Timestamptz:
        return pg_guard([s] {
            return DirectFunctionCall3(timestamptz_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
                                       Int32GetDatum(-1));
        });
    case Cell::Raw: return c.raw;
    }
    return 0;
}

// The row's values and nulls, as heap_form_tuple and tuplestore_putvalues take them.
struct Values {
    explicit Values(const std::vector<Cell> &row) : values(row.size()), nulls(new bool[row.size() + 1]())
    {
        for (size_t i = 0; i < row.size(); i++) {
            nulls[i] = row[i].kind == Cell::Null;
            values[i] = to_datum(row[i]);
        }
    }
    std::vector<Datum> values;
    std::unique_ptr<bool[]> nulls;  // std::vector<bool> has no data()
};

} // namespace

int Writer::columns() const
{
    return desc_->natts;
}

void Writer::put(const std::vector<Cell> &row)
{
    if ((int)row.size() != desc_->natts)
        throw Error(ERRCODE_INTERNAL_ERROR, "omero_upgrade: result row has the wrong number of columns");
    Values vals(row);
    Datum *v = vals.values.data();
    bool *nulls = vals.nulls.get();
    pg_guard([&] { tuplestore_putvalues((Tuplestorestate *)store_, desc_, v, nulls); });
}

Datum text_result(const std::string &s)
{
    const char *c = s.c_str();
    return pg_guard([c] { return PointerGetDatum(cstring_to_text(c)); });
}

Datum composite_result(FunctionCallInfo fcinfo, const std::vector<Cell> &row)
{
    Values vals(row);
    Datum *v = vals.values.data();
    bool *nulls = vals.nulls.get();
    int n = (int)row.size();
    return pg_guard([fcinfo, v, nulls, n] {
        TupleDesc desc;
        if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
            elog(ERROR, "return type must be a row type");
        desc = BlessTupleDesc(desc);
        if (desc->natts != n)
            elog(ERROR, "omero_upgrade: result row has the wrong number of columns");
        return HeapTupleGetDatum(heap_form_tuple(desc, v, nulls));
    });
}

} // namespace ou::srf
