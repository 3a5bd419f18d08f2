// OMERO's version facts and the chain search (see omero_versions.hpp).
#include "omero_versions.hpp"

#ifdef PG_VERSION_NUM
#error "common/ is PostgreSQL-free: it must not include a PostgreSQL header"
#endif

#include <cstdio>
#include <map>
#include <queue>

namespace ou {

const char *const newest_known_version = "OMERO5.4__0";

const std::vector<KnownVersion> &known_version_facts()
{
    // Facts from the server distributions and their release notes; see omero-facts.md.
    static const std::vector<KnownVersion> v = {
        {"OMERO4.4__0", 80400}, {"OMERO5.0__0", 80400}, {"OMERO5.1__0", 90200}, {"OMERO5.1__1", 90200},
        {"OMERO5.2__0", 90200}, {"OMERO5.3__0", 90300}, {"OMERO5.3__1", 90300}, {"OMERO5.4__0", 90300},
    };
    return v;
}

const std::vector<std::string> &known_versions()
{
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n;
        for (const auto &k : known_version_facts())
            n.emplace_back(k.name);
        return n;
    }();
    return names;
}

bool is_known_version(const std::string &v)
{
    for (const auto &k : known_version_facts())
        if (v == k.name)
            return true;
    return false;
}

const std::vector<Hop> &official_hops()
{
    // target folder ← source file, and whether the folder ships <from>-precheck.sql.
    struct Script {
        const char *from, *to;
        bool has_precheck;
    };
    static const Script scripts[] = {
        {"OMERO4.4__0", "OMERO5.0__0", false}, {"OMERO5.0__0", "OMERO5.1__1", false},
        {"OMERO5.1__0", "OMERO5.1__1", false}, {"OMERO5.1__1", "OMERO5.2__0", false},
        {"OMERO5.2__0", "OMERO5.3__0", true},  {"OMERO5.2__0", "OMERO5.3__1", true},
        {"OMERO5.3__0", "OMERO5.3__1", false}, {"OMERO5.3__0", "OMERO5.4__0", true},
        {"OMERO5.3__1", "OMERO5.4__0", true},
    };
    static const std::vector<Hop> hops = [] {
        std::vector<Hop> h;
        for (const auto &s : scripts)
            h.push_back({s.from, s.to, pg_prerequisite_of(s.to), s.has_precheck});
        return h;
    }();
    return hops;
}

namespace {

bool parse(const std::string &v, int n[3])
{
    char tail;
    return std::sscanf(v.c_str(), "OMERO%d.%d__%d%c", &n[0], &n[1], &n[2], &tail) == 3;
}

} // namespace

bool is_version_syntax(const std::string &v)
{
    int n[3];
    return parse(v, n);
}

int compare_versions(const std::string &a, const std::string &b)
{
    int x[3], y[3];
    bool px = parse(a, x), py = parse(b, y);
    if (px != py)
        return px ? 1 : -1;
    if (!px)
        return a < b ? -1 : a > b;
    for (int i = 0; i < 3; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

int pg_prerequisite_of(const std::string &target)
{
    const auto &k = known_version_facts();
    int best = k.front().pg_prerequisite;
    for (const auto &v : k)
        if (compare_versions(v.name, target) <= 0)
            best = v.pg_prerequisite;
    return best;
}

std::optional<std::vector<std::size_t>> shortest_chain(const std::vector<Edge> &edges, const std::string &from,
                                                       const std::string &to)
{
    using Path = std::vector<std::size_t>;
    if (from == to)
        return Path{};
    // Breadth-first over versions. Every chain of length k is found while the versions at k-1 are
    // expanded, before any version at k is, so an equal-length improvement is never too late.
    auto newer = [&](const Path &a, const Path &b) {
        for (std::size_t i = 0; i < a.size() && i < b.size(); i++)
            if (int c = compare_versions(edges[a[i]].to, edges[b[i]].to))
                return c > 0;
        return false;
    };
    std::map<std::string, Path> best = {{from, {}}};
    std::queue<std::string> todo;
    todo.push(from);
    while (!todo.empty()) {
        std::string v = todo.front();
        todo.pop();
        for (std::size_t e = 0; e < edges.size(); e++) {
            if (edges[e].from != v)
                continue;
            Path cand = best[v];
            cand.push_back(e);
            auto it = best.find(edges[e].to);
            if (it == best.end()) {
                best.emplace(edges[e].to, cand);
                todo.push(edges[e].to);
            } else if (it->second.size() == cand.size() && newer(cand, it->second)) {
                it->second = cand;
            }
        }
    }
    auto it = best.find(to);
    if (it == best.end())
        return std::nullopt;
    return it->second;
}

std::optional<std::vector<Hop>> upgrade_path(const std::string &from, const std::string &to)
{
    return shortest_chain_of(official_hops(), from, to);
}

std::string pretty_pg_version(int num)
{
    if (num >= 100000)  // 10 and later: major.minor
        return std::to_string(num / 10000) + "." + std::to_string(num % 10000);
    return std::to_string(num / 10000) + "." + std::to_string((num / 100) % 100) + "." + std::to_string(num % 100);
}

} // namespace ou
