// SPI from C++: parameterised queries only (no SQL text is ever built from user input), results
// copied out into C++ values before SPI memory goes away, every call behind pg_guard.
#pragma once

#include "cpp_wrapper.hpp"

extern "C" {
#include "executor/spi.h"
}

#include <cstdint>
#include <string>
#include <vector>

namespace ou::spi {

struct Param {
    Oid type;
    Datum value;
    bool isnull;
};

Param text(const std::string &s);
Param int8(int64_t v);
Param int4(int32_t v);
Param boolean(bool v);
Param null(Oid type);
// A Datum built by the caller (e.g. an int8[] passed through from SQL).
inline Param datum(Oid type, Datum value, bool isnull = false)
{
    return Param{type, value, isnull};
}

using Value = std::optional<std::string>;

struct Result {
    std::vector<std::string> columns;
    std::vector<std::vector<Value>> rows;
    uint64_t processed = 0;

    size_t col(const char *name) const;
    const Value &get(size_t row, const char *name) const { return rows.at(row).at(col(name)); }
    std::string str(size_t row, const char *name) const;  // NULL → ""
    int64_t int64(size_t row, const char *name) const;     // NULL → error
    bool empty() const { return rows.empty(); }
};

// Opens a read-only cursor on a parameterised query (rows are fetched by for_each_row).
Portal open_cursor(const std::string &sql, const std::vector<Param> &params);

// Streams a read-only query through a cursor, calling row(tuple, desc) for each row, so that a
// large result never sits whole in SPI memory. row must not raise PostgreSQL errors itself
// (wrap such calls in pg_guard).
template <typename F>
void for_each_row(const std::string &sql, const std::vector<Param> &params, F &&row, long fetch = 10000)
{
    Portal portal = open_cursor(sql, params);
    for (;;) {
        check_interrupts();
        pg_guard([portal, fetch] { SPI_cursor_fetch(portal, true, fetch); });
        uint64 got = SPI_processed;
        SPITupleTable *tt = SPI_tuptable;
        for (uint64 i = 0; i < got; i++)
            row(tt->vals[i], tt->tupdesc);
        pg_guard([tt] { SPI_freetuptable(tt); });
        if (got == 0)
            break;
    }
    pg_guard([portal] { SPI_cursor_close(portal); });
}

// One SPI connection for the lifetime of the object.
class Session {
public:
    // nonatomic: only for procedures called by CALL outside a transaction block (may commit).
    explicit Session(bool nonatomic = false);
    ~Session();
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;

    Result query(const std::string &sql, const std::vector<Param> &params = {}, bool read_only = false);
    uint64_t exec(const std::string &sql, const std::vector<Param> &params = {}, bool read_only = false);
    // First column of the first row, or nullopt for no row / NULL.
    Value scalar(const std::string &sql, const std::vector<Param> &params = {}, bool read_only = false);
    // Commits and starts a new transaction (nonatomic sessions only).
    void commit();

private:
    bool connected_ = false;
};

} // namespace ou::spi
