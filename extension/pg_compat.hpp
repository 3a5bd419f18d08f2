// PostgreSQL version differences, in one place (supported: 13 to 18).
//
// Every #if PG_VERSION_NUM of the extension lives here, behind a named function, so the domain
// and facade files read the same on every major. What differs, and where it shows:
//  - Procedures' transaction control: before 15, SPI_commit() left the procedure without a
//    transaction and it had to start the next one itself (SPI_start_transaction, a no-op since 15).
//  - Cumulative statistics (pg_stat_user_tables): asynchronous before 15 (the stats collector);
//    nothing in the extension reads them, the tests wait for them (test/lib/tap.sh q_stats).
//  - public's CREATE privilege for everyone before 15: the extension never resolves a name
//    through search_path (boundary.cpp), so it does not depend on it; tests 60 and 61 plant
//    objects in a world-writable public on every version.
//  - Trusted extensions exist since 13, the oldest supported major.
// A feature that cannot work on some version says so at run time through unsupported_before().
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
}

#include <string>

namespace ou::compat {

// The running server's major version (13, 15, 18...), from the one the extension was built for.
constexpr int built_major = PG_VERSION_NUM / 10000;

// After SPI_commit() in a procedure, a transaction is open again on every version.
inline void spi_commit_and_continue()
{
    SPI_commit();
#if PG_VERSION_NUM < 150000
    SPI_start_transaction();
#endif
}

// The message of a feature that needs PostgreSQL `major` or later, on an older server.
inline std::string unsupported_before(const char *feature, int major)
{
    return std::string(feature) + " needs PostgreSQL " + std::to_string(major) + " or later; this server is PostgreSQL " +
           std::to_string(built_major);
}

}  // namespace ou::compat
