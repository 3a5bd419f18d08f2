// SPI from C++: parameterised queries only (no SQL text is ever built from user input), results
// copied out into C++ values before SPI memory goes away, every call behind pg_guard.
#pragma once

#include "args.hpp"
#include "cpp_wrapper.hpp"

extern "C" {
#include "executor/spi.h"
}

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
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
Param int8_array(const Ids &ids);
Param text_array(const std::vector<std::string> &items);
// An array argument that may be absent: NULL then.
Param int8_array(const std::optional<Ids> &ids);
Param text_array(const std::optional<std::vector<std::string>> &items);

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

// An identifier quoted for SQL text when it needs it (PostgreSQL's quote_identifier).
std::string quote_ident(const std::string &name);

// One row of a streamed result, read in place (no text conversion): columns count from 1.
class Row {
public:
    Row(HeapTuple tuple, TupleDesc desc) : tuple_(tuple), desc_(desc) {}
    // The value as PostgreSQL holds it (valid until the next fetch), e.g. to hand on to srf::Cell.
    Datum datum(int col, bool *isnull) const;
    int64_t int8(int col) const;  // NULL → error
    // A text or varchar value, detoasted; valid until the next fetch. NULL → error.
    std::string_view string(int col) const;

private:
    HeapTuple tuple_;
    TupleDesc desc_;
};

// Opens a read-only cursor on a parameterised query (rows are fetched by for_each_row).
Portal open_cursor(const std::string &sql, const std::vector<Param> &params);
// The next `fetch` rows into SPI_tuptable; false at the end. close_cursor ends it.
bool fetch(Portal portal, long count);
void free_fetched();
void close_cursor(Portal portal);

// Streams a read-only query through a cursor, calling row(const Row &) for each row, so that a
// large result never sits whole in SPI memory.
template <typename F>
void for_each_row(const std::string &sql, const std::vector<Param> &params, F &&row, long count = 10000)
{
    Portal portal = open_cursor(sql, params);
    while (fetch(portal, count)) {
        SPITupleTable *tt = SPI_tuptable;
        for (uint64 i = 0; i < SPI_processed; i++)
            row(Row(tt->vals[i], tt->tupdesc));
        free_fetched();
    }
    close_cursor(portal);
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
    // Commits and starts a new transaction (nonatomic sessions only), with our search_path again.
    void commit();

private:
    bool connected_ = false;
};

// Runs f in a subtransaction of the current transaction (as a plpgsql BEGIN … EXCEPTION block).
// f returns normally: the subtransaction is released, true. f raises a PostgreSQL error with
// SQLSTATE `sqlstate`: everything f did is rolled back, false. Any other error or exception:
// rolled back too, then rethrown. f must not commit.
bool try_subtransaction(const std::function<void()> &f, int sqlstate);

// The relation a quoted, qualified name resolves to, locked in ACCESS SHARE mode until the
// transaction ends, and its relkind ('\0' when the name is no relation). PostgreSQL's own lookup
// (RangeVarGetRelidExtended) takes the lock and then resolves the name again, so what is locked is
// what the name means once the lock is held: a rename or swap that commits while the lock waits is
// seen, none can commit after. The kind comes from the catalog as it is then, not from a snapshot
// taken earlier. No right is needed, as for pg_relation_size(): ACCESS SHARE only keeps others
// from altering or dropping it.
char lock_relation(const std::string &qualified);

} // namespace ou::spi
