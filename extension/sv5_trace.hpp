// Traces of security vulnerability 2017-SV5-filename-2 in originalfile.
#pragma once

#include "spi.hpp"

#include <string>
#include <vector>

namespace ou {

struct Sv5Group {
    std::string repo;
    std::string path;          // normalized: '/' + the non-empty parts of path || name joined by '/'
    std::vector<int64_t> ids;  // ascending
};

// Groups of originalfile ids that share a repo and a normalized path (the official rule: '/' ||
// path || name || '/' split on runs of '/'), found in one pass and one sort by key hash.
std::vector<Sv5Group> find_sv5_traces(spi::Session &spi);

// Appends the normalized path: runs of '/' collapsed, empty parts dropped: "a//b/" + "c" → "/a/b/c".
void append_sv5_path(std::string &out, const char *path, size_t path_len, const char *name, size_t name_len);

} // namespace ou
