// OMERO's database versions and its official upgrade scripts: the facts and the chain search,
// written once. PostgreSQL-free (no PostgreSQL header, no libpq): compiled into the extension
// and into the tool, so a new OMERO release is one edit here (facts: ../shared/omero-facts.md).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace ou {

// One release of the database schema, with the PostgreSQL it requires (server_version_num).
struct KnownVersion {
    const char *name;
    int pg_prerequisite;
};

// One official upgrade script: sql/psql/<to>/<from>.sql in a server distribution.
struct Hop {
    std::string from, to;
    int pg_prerequisite;    // server_version_num the target release requires
    bool has_precheck;      // sql/psql/<to>/<from>-precheck.sql exists
    std::string script() const { return "sql/psql/" + to + "/" + from + ".sql"; }
    std::string precheck() const { return has_precheck ? "sql/psql/" + to + "/" + from + "-precheck.sql" : ""; }
};

extern const char *const newest_known_version;  // the default target

// Known versions, oldest first.
const std::vector<KnownVersion> &known_version_facts();
const std::vector<std::string> &known_versions();
bool is_known_version(const std::string &v);
// The official scripts the known releases ship.
const std::vector<Hop> &official_hops();

// "OMERO<major>.<minor>__<patch>" and nothing more.
bool is_version_syntax(const std::string &v);
// <0, 0, >0 by major, minor, patch; a name that is not a version sorts before every version
// (and by text among its kind).
int compare_versions(const std::string &a, const std::string &b);
// The PostgreSQL a target release requires: its own fact when known, else that of the newest
// known release before it (a newer release is assumed to need at least as much).
int pg_prerequisite_of(const std::string &target);

// The shortest chain of edges (from → to pairs) leading from `from` to `to`, as indices into
// `edges`; empty when from == to, nullopt when there is none. Among chains of equal length the one
// through the newest intermediate versions wins (5.2__0 → 5.3__1 → 5.4__0 rather than via
// 5.3__0): the path the upgrade guide describes, each hop with the most recent scripts.
struct Edge {
    std::string from, to;
};
std::optional<std::vector<std::size_t>> shortest_chain(const std::vector<Edge> &edges, const std::string &from,
                                                       const std::string &to);

// The same over any list of hop-like values with .from and .to, returning the chosen values.
template <class H>
std::optional<std::vector<H>> shortest_chain_of(const std::vector<H> &hops, const std::string &from,
                                                const std::string &to)
{
    std::vector<Edge> edges;
    edges.reserve(hops.size());
    for (const H &h : hops)
        edges.push_back({h.from, h.to});
    auto idx = shortest_chain(edges, from, to);
    if (!idx)
        return std::nullopt;
    std::vector<H> out;
    for (std::size_t i : *idx)
        out.push_back(hops[i]);
    return out;
}

// The upgrade chain of official scripts (the table above) from → to.
std::optional<std::vector<Hop>> upgrade_path(const std::string &from, const std::string &to);

// "90300" → "9.3.0", the way the official scripts print versions; "150004" → "15.4".
std::string pretty_pg_version(int num);

} // namespace ou
