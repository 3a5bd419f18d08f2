// The arguments of an SQL-callable function, read the same way everywhere: the one reader of
// fcinfo for domain code. Rules: a NULL flag is an error, not false (22023); an array argument is
// NULL (not given) or one-dimensional without NULL elements (22023); a batch size is 1 to
// kMaxBatchSize, never NULL (22023, one message for every function).
#pragma once

#include "cpp_wrapper.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ou {

// Declared here, not by an elaborated `struct IntArray` below: PostgreSQL 13's c.h has a global
// typedef of that name, which the elaborated form would find instead.
struct IntArray;

using Ids = std::vector<int64_t>;

constexpr int32_t kMaxBatchSize = 1000000;

class Args {
public:
    explicit Args(FunctionCallInfo fcinfo) : fcinfo_(fcinfo) {}

    // NULL, or not passed at all (an argument beyond the function's count).
    bool is_null(int n) const;
    // Declared by the function's SQL (an older version's declaration may have fewer arguments).
    bool declared(int n) const;
    // An int4 argument: required (NULL is 22023 "<name> must not be NULL", with this hint).
    int32_t int4(int n, const char *name, const std::string &hint) const;
    // text: nullopt for NULL / a required text ("<name> must not be NULL", with this hint).
    std::optional<std::string> opt_text(int n) const;
    std::string text(int n, const char *name, const std::string &hint) const;
    // A boolean flag: NULL is an error, never taken for false.
    bool flag(int n, const char *name, const std::string &hint) const;
    int64_t int8(int n, const char *name, const std::string &hint) const;
    // A batch size: required, 1 to kMaxBatchSize; `unit` and `default_size` go into the hint.
    int32_t batch_size(int n, const char *unit, int32_t default_size) const;
    // int8[] / text[]: nullopt for NULL; else its elements (one dimension, no NULL).
    std::optional<Ids> int8_array(int n, const char *name, const char *what) const;
    std::optional<std::vector<std::string>> text_array(int n, const char *name, const char *what) const;
    // An integer array read in place (int2[], int4[] or int8[]; NULL: no elements).
    IntArray int_array(int n) const;
    // CALL outside a transaction block: the procedure may commit. False for a function, and for
    // a CALL inside a transaction block (atomic).
    bool nonatomic_call() const;

private:
    FunctionCallInfo fcinfo_;
};

// Arrays as PostgreSQL values, for arguments of our queries and for results.
Datum int8_array_datum(const Ids &ids);
Datum text_array_datum(const std::vector<std::string> &items);
// The elements of an integer array (int2, int4 or int8), read in place (valid while the array is).
struct IntArray {
    const Datum *values = nullptr;
    const bool *nulls = nullptr;
    int n = 0;
    int width = 8;  // bytes of the element type
    size_t size() const { return (size_t)n; }
    bool is_null(size_t i) const { return nulls && nulls[i]; }
    int64_t operator[](size_t i) const
    {
        return width == 8 ? DatumGetInt64(values[i]) : width == 4 ? DatumGetInt32(values[i]) : DatumGetInt16(values[i]);
    }
};
IntArray int_array(Datum array);

} // namespace ou
