// OMERO database versions and the chain of official upgrade scripts between them.
#include "omero.hpp"
#include "srf.hpp"

extern "C" {
#include "utils/builtins.h"
}

#include <map>
#include <queue>
#include <set>

namespace ou {

const char *const newest_known_version = "OMERO5.4__0";

namespace {

// The official scripts (target folder ← source file) and the PostgreSQL each target requires.
// Facts from the server distributions; see omero-facts.md.
const std::vector<Hop> &all_hops()
{
    static const std::vector<Hop> hops = {
        {"OMERO4.4__0", "OMERO5.0__0", 80400, false},
        {"OMERO5.0__0", "OMERO5.1__1", 90200, false},
        {"OMERO5.1__0", "OMERO5.1__1", 90200, false},
        {"OMERO5.1__1", "OMERO5.2__0", 90200, false},
        {"OMERO5.2__0", "OMERO5.3__0", 90300, true},
        {"OMERO5.2__0", "OMERO5.3__1", 90300, true},
        {"OMERO5.3__0", "OMERO5.3__1", 90300, false},
        {"OMERO5.3__0", "OMERO5.4__0", 90300, true},
        {"OMERO5.3__1", "OMERO5.4__0", 90300, true},
    };
    return hops;
}

} // namespace

const std::vector<std::string> &known_versions()
{
    static const std::vector<std::string> versions = {
        "OMERO4.4__0", "OMERO5.0__0", "OMERO5.1__0", "OMERO5.1__1", "OMERO5.2__0",
        "OMERO5.3__0", "OMERO5.3__1", "OMERO5.4__0",
    };
    return versions;
}

bool is_known_version(const std::string &v)
{
    for (const auto &k : known_versions())
        if (k == v)
            return true;
    return false;
}

static int rank(const std::string &v)
{
    const auto &k = known_versions();
    for (size_t i = 0; i < k.size(); i++)
        if (k[i] == v)
            return (int)i;
    return -1;
}

std::optional<std::vector<Hop>> upgrade_path(const std::string &from, const std::string &to)
{
    if (from == to)
        return std::vector<Hop>{};
    // Breadth-first search gives the fewest hops. Among equally short paths the one through the
    // newest intermediate versions wins (5.2__0 → 5.3__1 → 5.4__0 rather than via 5.3__0): it is
    // the path the upgrade guide describes, and each hop's scripts are the most recent ones.
    std::map<std::string, std::vector<Hop>> best;
    best[from] = {};
    std::queue<std::string> todo;
    todo.push(from);
    while (!todo.empty()) {
        std::string v = todo.front();
        todo.pop();
        for (const Hop &h : all_hops()) {
            if (h.from != v)
                continue;
            std::vector<Hop> candidate = best[v];
            candidate.push_back(h);
            auto it = best.find(h.to);
            if (it == best.end()) {
                best[h.to] = candidate;
                todo.push(h.to);
            } else if (it->second.size() == candidate.size()) {
                // Same length: compare intermediate versions, newest wins.
                bool newer = false;
                for (size_t i = 0; i < candidate.size(); i++) {
                    if (rank(candidate[i].to) != rank(it->second[i].to)) {
                        newer = rank(candidate[i].to) > rank(it->second[i].to);
                        break;
                    }
                }
                if (newer)
                    it->second = candidate;
            }
        }
    }
    auto it = best.find(to);
    if (it == best.end())
        return std::nullopt;
    return it->second;
}

std::string resolve_target(FunctionCallInfo fcinfo, int argno)
{
    if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
        return newest_known_version;
    text *t = PG_GETARG_TEXT_PP(argno);
    std::string target(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
    if (!is_known_version(target)) {
        std::string known;
        for (const auto &k : known_versions())
            known += (known.empty() ? "" : ", ") + k;
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown OMERO database version \"" + target + "\"",
                    "Known versions: " + known + ".", "Versions are written like OMERO5.4__0.");
    }
    return target;
}

std::string pretty_pg_version(int num)
{
    return std::to_string(num / 10000) + "." + std::to_string((num / 100) % 100) + "." + std::to_string(num % 100);
}

} // namespace ou

using namespace ou;

OU_FUNCTION(omero_db_version)
{
    return boundary([&] {
        std::string v;
        {
            spi::Session spi;
            v = require_db_version(spi);
        }
        const char *c = v.c_str();
        return pg_guard([c] { return PointerGetDatum(cstring_to_text(c)); });
    });
}

OU_FUNCTION(omero_upgrade_path)
{
    return boundary([&] {
        std::string target = resolve_target(fcinfo, 0);
        std::string current;
        {
            spi::Session spi;
            current = require_db_version(spi);
        }
        auto path = upgrade_path(current, target);
        if (!path)
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "no upgrade path from " + current + " to " + target,
                        is_known_version(current) ? "No chain of official upgrade scripts leads there."
                                                  : "The database version " + current + " is not one this extension knows.",
                        "Pick a newer target, or restore the database to a version that can be upgraded.");
        srf::Writer out(fcinfo);
        int step = 1;
        for (const Hop &h : *path)
            out.put({srf::Cell::int4(step++), srf::Cell::of(h.from), srf::Cell::of(h.to), srf::Cell::of(h.script()),
                     h.has_precheck ? srf::Cell::of(h.precheck()) : srf::Cell::null(),
                     srf::Cell::int4(h.pg_prerequisite)});
        return out.done();
    });
}
