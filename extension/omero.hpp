// What the extension knows about OMERO versions and upgrade hops (the database itself: omero_db.hpp).
#pragma once

#include "omero_db.hpp"
#include "omero_versions.hpp"
#include "spi.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ou {

// Throws a clear error for an unknown target; returns the default for NULL.
std::string resolve_target(FunctionCallInfo fcinfo, int argno);

} // namespace ou
