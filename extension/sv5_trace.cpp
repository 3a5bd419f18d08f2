// omero_filename_trace_2017_sv5(): one sequential pass over originalfile, then one sort by key hash
// (the official precheck builds an index and runs one indexed lookup per row).
#include "sv5_trace.hpp"
#include "progress.hpp"
#include "omero.hpp"
#include "srf.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
}

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

std::vector<Sv5Group> find_sv5_traces(spi::Session &spi)
{
    // Rows with a NULL repo, path or name never match (as in SQL).
    std::string arena;
    std::vector<Entry> entries;
    // The scan is the long part of a precheck on a big database: progress against the planner's
    // row estimate (a NOTICE every 2 s, none for a scan shorter than that).
    int64_t estimate = std::stoll(spi.scalar("SELECT greatest(reltuples, 0)::int8 FROM pg_catalog.pg_class"
                                             " WHERE oid = 'originalfile'::pg_catalog.regclass", {}, true)
                                      .value_or("0"));
    Progress progress("SV5 filename trace scan", "files", estimate);
    int64_t rows = 0;
    spi::for_each_row(
        "SELECT id, repo, path, name FROM originalfile"
        " WHERE repo IS NOT NULL AND path IS NOT NULL AND name IS NOT NULL",
        {}, [&](HeapTuple tup, TupleDesc desc) {
            text *cols[3];
            int64_t id = 0;
            // varchar and text share the varlena layout; long values are detoasted here.
            pg_guard([&] {
                bool isnull;
                id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
                for (int c = 0; c < 3; c++)
                    cols[c] = DatumGetTextPP(SPI_getbinval(tup, desc, c + 2, &isnull));
            });
            size_t offset = arena.size();
            arena.append(VARDATA_ANY(cols[0]), VARSIZE_ANY_EXHDR(cols[0]));
            arena.push_back('\0');
            append_sv5_path(arena, VARDATA_ANY(cols[1]), VARSIZE_ANY_EXHDR(cols[1]), VARDATA_ANY(cols[2]),
                            VARSIZE_ANY_EXHDR(cols[2]));
            uint32_t length = (uint32_t)(arena.size() - offset);
            entries.push_back(Entry{fnv1a(arena.data() + offset, length), offset, length, id});
            if ((++rows & 1023) == 0)
                progress.update(rows);
        });

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
        for (const Sv5Group &g : groups) {
            std::vector<Datum> elems;
            for (int64_t id : g.ids)
                elems.push_back(Int64GetDatum(id));
            Datum *e = elems.data();
            int n = (int)elems.size();
            Datum arr = pg_guard([e, n] {
                return PointerGetDatum(construct_array(e, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
            });
            out.put({srf::Cell::of(g.repo), srf::Cell::of(g.path), srf::Cell::datum(arr),
                     srf::Cell::int4((int32_t)g.ids.size())});
        }
        return out.done();
    });
}
