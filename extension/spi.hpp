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
