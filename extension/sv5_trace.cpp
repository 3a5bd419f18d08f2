// omero_filename_trace_2017_sv5(): one sequential pass over originalfile, then one sort by key hash
// (the official precheck builds an index and runs one indexed lookup per row).
#include "sv5_trace.hpp"
#include "progress.hpp"
#include "omero.hpp"
#include "srf.hpp"

#include <algorithm>
#include <string_view>

namespace ou {

void append_sv5_path(std::string &out, const char *path, size_t path_len, const char *name, size_t name_len)
{
    const size_t start = out.size();
    bool slash_pending = true;  // the leading '/'
    auto feed = [&](const char *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '/') {
                slash_pending = true;
            } else {
                if (slash_pending) {
                    out.push_back('/');
                    slash_pending = false;
                }
                out.push_back(s[i]);
            }
        }
    };
    feed(path, path_len);
    feed(name, name_len);
    if (out.size() == start)
        out.push_back('/');
}

namespace {
// One originalfile row: its key (repo '\0' normalized path) lives in a shared arena, so the scan
// makes no allocation per row; rows are grouped by sorting on the key's hash.
struct Entry {
    uint64_t hash;
    size_t offset;
    uint32_t length;
    int64_t id;
};

uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}
} // namespace

namespace {

// Every originalfile row with a repo, a path and a name: its key (repo '\0' normalized path) into
// the arena, one entry per row.
void scan_originalfiles(spi::Session &spi, std::string &arena, std::vector<Entry> &entries)
{
    // Rows with a NULL repo, path or name never match (as in SQL).
    const std::string table = omero_name(spi, "originalfile");
    // The scan is the long part of a precheck on a big database: progress against the planner's
    // row estimate (a NOTICE every 2 s, none for a scan shorter than that).
    int64_t estimate = std::stoll(spi.scalar("SELECT GREATEST(reltuples, 0)::pg_catalog.int8"
                                             "  FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass($1)",
                                             {spi::text(table)}, true)
                                      .value_or("0"));
    Progress progress("SV5 filename trace scan", "files", estimate);
    int64_t rows = 0;
    spi::for_each_row(
        "SELECT id, repo, path, name FROM " + table + " WHERE repo IS NOT NULL AND path IS NOT NULL AND name IS NOT NULL",
        {}, [&](const spi::Row &row) {
            std::string_view repo = row.string(2), path = row.string(3), name = row.string(4);
            size_t offset = arena.size();
            arena.append(repo.data(), repo.size());
            arena.push_back('\0');
            append_sv5_path(arena, path.data(), path.size(), name.data(), name.size());
            uint32_t length = (uint32_t)(arena.size() - offset);
            entries.push_back(Entry{fnv1a(arena.data() + offset, length), offset, length, row.int8(1)});
            if ((++rows & 1023) == 0)
                progress.update(rows);
        });
}

// Groups of entries with equal keys, ordered by their first id.
std::vector<Sv5Group> group_duplicates(const std::string &arena, std::vector<Entry> &entries)
{
    auto key = [&arena](const Entry &e) { return std::string_view(arena.data() + e.offset, e.length); };
    // Equal keys end up adjacent: hash first, then the key itself (hash collisions), then id.
    std::sort(entries.begin(), entries.end(), [&](const Entry &a, const Entry &b) {
        if (a.hash != b.hash)
            return a.hash < b.hash;
        int c = key(a).compare(key(b));
        return c != 0 ? c < 0 : a.id < b.id;
    });
    std::vector<Sv5Group> groups;
    for (size_t i = 0; i < entries.size();) {
        size_t j = i + 1;
        while (j < entries.size() && entries[j].hash == entries[i].hash && key(entries[j]) == key(entries[i]))
            j++;
        if (j - i > 1) {
            std::string_view k = key(entries[i]);
            size_t zero = k.find('\0');
            Sv5Group g{std::string(k.substr(0, zero)), std::string(k.substr(zero + 1)), {}};
            for (size_t x = i; x < j; x++)
                g.ids.push_back(entries[x].id);
            groups.push_back(std::move(g));
        }
        i = j;
    }
    std::sort(groups.begin(), groups.end(), [](const Sv5Group &a, const Sv5Group &b) { return a.ids[0] < b.ids[0]; });
    return groups;
}

} // namespace

std::vector<Sv5Group> find_sv5_traces(spi::Session &spi)
{
    std::string arena;
    std::vector<Entry> entries;
    scan_originalfiles(spi, arena, entries);
    return group_duplicates(arena, entries);
}

} // namespace ou

using namespace ou;

OU_FUNCTION(omero_filename_trace_2017_sv5)
{
    return boundary([&] {
        std::vector<Sv5Group> groups;
        {
            spi::Session spi;
            require_db_version(spi);
            groups = find_sv5_traces(spi);
        }
        srf::Writer out(fcinfo);
        for (const Sv5Group &g : groups)
            out.put({srf::Cell::of(g.repo), srf::Cell::of(g.path), srf::Cell::int8_array(g.ids),
                     srf::Cell::int4((int32_t)g.ids.size())});
        return out.done();
    });
}
