// See srf.hpp.
#include "srf.hpp"

#include <memory>

extern "C" {
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

void Writer::put(const std::vector<Cell> &row)
{
    const int n = desc_->natts;
    if ((int)row.size() != n)
        throw Error(ERRCODE_INTERNAL_ERROR, "omero_upgrade: result row has the wrong number of columns");
    std::vector<Datum> values(n);
    std::unique_ptr<bool[]> nullbuf(new bool[n]());  // std::vector<bool> has no data()
    bool *nulls = nullbuf.get();
    for (int i = 0; i < n; i++) {
        const Cell &c = row[i];
        nulls[i] = c.kind == Cell::Null;
        switch (c.kind) {
        case Cell::Null: values[i] = 0; break;
        case Cell::Text: {
            const char *s = c.text.c_str();
            values[i] = pg_guard([s] { return PointerGetDatum(cstring_to_text(s)); });
            break;
        }
        case Cell::Int8: values[i] = Int64GetDatum(c.i); break;
        case Cell::Int4: values[i] = Int32GetDatum((int32)c.i); break;
        case Cell::Bool: values[i] = BoolGetDatum(c.i != 0); break;
        case Cell::Raw: values[i] = c.raw; break;
        }
    }
    Datum *v = values.data();
    pg_guard([&] { tuplestore_putvalues((Tuplestorestate *)store_, desc_, v, nulls); });
}

} // namespace ou::srf
