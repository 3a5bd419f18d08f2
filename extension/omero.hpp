// What the extension knows about OMERO versions and upgrade hops (the database itself: omero_db.hpp).
#pragma once

#include "omero_db.hpp"
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

// "90300" → "9.3.0", the way the official scripts print versions.
std::string pretty_pg_version(int num);

} // namespace ou
