// What the extension knows about OMERO databases: versions, upgrade hops, the dbpatch state.
#pragma once

#include "spi.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ou {

// One official upgrade script: sql/psql/<to>/<from>.sql in a server distribution.
struct Hop {
    std::string from, to;
    int pg_prerequisite;    // server_version_num the target release requires
    bool has_precheck;      // sql/psql/<to>/<from>-precheck.sql exists
    std::string script() const { return "sql/psql/" + to + "/" + from + ".sql"; }
    std::string precheck() const { return has_precheck ? "sql/psql/" + to + "/" + from + "-precheck.sql" : ""; }
};

extern const char *const newest_known_version;  // default target

// Known versions, oldest first.
const std::vector<std::string> &known_versions();
bool is_known_version(const std::string &v);
// The shortest chain of official scripts from → to; nullopt when there is none. Empty when from == to.
std::optional<std::vector<Hop>> upgrade_path(const std::string &from, const std::string &to);
// Throws a clear error for an unknown target; returns the default for NULL.
std::string resolve_target(FunctionCallInfo fcinfo, int argno);

// The newest dbpatch row.
struct DbState {
    bool has_dbpatch = false;
    bool has_rows = false;
    int64_t id = 0;
    std::string version;           // e.g. OMERO5.3__1
    std::string previous_version;  // e.g. OMERO5.3__0
    bool finished = false;
    std::string message;
    std::string missing_columns;  // a dbpatch table without OMERO's columns
    std::string why_not_omero() const
    {
        if (!missing_columns.empty())
            return "the dbpatch table lacks OMERO's columns " + missing_columns;
        return has_dbpatch ? "the dbpatch table is empty" : "there is no dbpatch table";
    }
};
DbState read_db_state(spi::Session &spi);
// The current version, or a clear "not an OMERO database" error.
std::string require_db_version(spi::Session &spi);

// "90300" → "9.3.0", the way the official scripts print versions.
std::string pretty_pg_version(int num);

} // namespace ou
