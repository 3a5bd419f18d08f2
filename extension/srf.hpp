// Set-returning functions from C++: materialise rows into a tuplestore (works on PostgreSQL 13–17).
#pragma once

#include "args.hpp"
#include "cpp_wrapper.hpp"

extern "C" {
#include "access/tupdesc.h"
}

#include <optional>
#include <string>
#include <vector>

namespace ou::srf {

// A result column value: text, int8, int4, bool, int8[], jsonb or timestamptz (both from their
// text form), or a Datum handed on as it is (a column of a query we streamed).
struct Cell {
    enum Kind { Null, Text, Int8, Int4, Bool, Int8Array, Jsonb, Timestamptz, Raw } kind = Null;
    std::string text;
    int64_t i = 0;
    Ids ids;
    Datum raw = 0;

    static Cell null() { return Cell{}; }
    static Cell of(std::string s) { Cell c; c.kind = Text; c.text = std::move(s); return c; }
    static Cell of(const char *s) { return of(std::string(s)); }
    static Cell of(const std::optional<std::string> &s) { return s ? of(*s) : null(); }
    static Cell int8(int64_t v) { Cell c; c.kind = Int8; c.i = v; return c; }
    static Cell int4(int32_t v) { Cell c; c.kind = Int4; c.i = v; return c; }
    static Cell boolean(bool v) { Cell c; c.kind = Bool; c.i = v; return c; }
    static Cell int8_array(Ids v) { Cell c; c.kind = Int8Array; c.ids = std::move(v); return c; }
    static Cell jsonb(std::string s) { Cell c; c.kind = Jsonb; c.text = std::move(s); return c; }
    static Cell timestamptz(const std::optional<std::string> &s)
    {
        if (!s)
            return null();
        Cell c;
        c.kind = Timestamptz;
        c.text = *s;
        return c;
    }
    static Cell datum(Datum d) { Cell c; c.kind = Raw; c.raw = d; return c; }
};

class Writer {
public:
    explicit Writer(FunctionCallInfo fcinfo);
    void put(const std::vector<Cell> &row);
    // The columns the caller's declaration of the function has (a result that gained columns in a
    // later version fills only those an older install script declares).
    int columns() const;
    Datum done() { return (Datum)0; }

private:
    void *store_ = nullptr;  // Tuplestorestate*
    TupleDesc desc_ = nullptr;
    MemoryContext ctx_ = nullptr;
};

// The result of a function returning one text value.
Datum text_result(const std::string &s);
// The result of a procedure with INOUT arguments (one composite row).
Datum composite_result(FunctionCallInfo fcinfo, const std::vector<Cell> &row);

} // namespace ou::srf
