// omero_filename_trace_2017_sv5(): one sequential pass over originalfile, grouped in a hash table
// (the official precheck runs one indexed lookup per row).
#include "sv5_trace.hpp"
#include "omero.hpp"
#include "srf.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
}

#include <algorithm>
#include <unordered_map>

namespace ou {

std::string normalize_sv5_path(const char *path, size_t path_len, const char *name, size_t name_len)
{
    std::string out;
    out.reserve(path_len + name_len + 1);
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
    if (out.empty())
        out = "/";
    return out;
}

std::vector<Sv5Group> find_sv5_traces(spi::Session &spi)
{
    // Key: repo '\0' normalized path. Rows with a NULL repo, path or name never match (as in SQL).
    std::unordered_map<std::string, std::vector<int64_t>> seen;
    const char *sql = "SELECT id, repo, path, name FROM originalfile"
                      " WHERE repo IS NOT NULL AND path IS NOT NULL AND name IS NOT NULL";
    Portal portal = pg_guard([sql] {
        return SPI_cursor_open_with_args("omero_upgrade_sv5", sql, 0, nullptr, nullptr, nullptr, true, 0);
    });
    for (;;) {
        check_interrupts();
        pg_guard([portal] { SPI_cursor_fetch(portal, true, 10000); });
        uint64 n = SPI_processed;
        if (n == 0)
            break;
        SPITupleTable *tt = SPI_tuptable;
        for (uint64 i = 0; i < n; i++) {
            HeapTuple tup = tt->vals[i];
            bool isnull;
            int64_t id = DatumGetInt64(SPI_getbinval(tup, tt->tupdesc, 1, &isnull));
            // varchar and text share the varlena layout; the values are detoasted by pg_guard.
            text *repo = pg_guard([&] { return DatumGetTextPP(SPI_getbinval(tup, tt->tupdesc, 2, &isnull)); });
            text *path = pg_guard([&] { return DatumGetTextPP(SPI_getbinval(tup, tt->tupdesc, 3, &isnull)); });
            text *name = pg_guard([&] { return DatumGetTextPP(SPI_getbinval(tup, tt->tupdesc, 4, &isnull)); });
            std::string key(VARDATA_ANY(repo), VARSIZE_ANY_EXHDR(repo));
            key.push_back('\0');
            key += normalize_sv5_path(VARDATA_ANY(path), VARSIZE_ANY_EXHDR(path), VARDATA_ANY(name),
                                      VARSIZE_ANY_EXHDR(name));
            seen[std::move(key)].push_back(id);
        }
        pg_guard([tt] { SPI_freetuptable(tt); });
    }
    pg_guard([portal] { SPI_cursor_close(portal); });

    std::vector<Sv5Group> groups;
    for (auto &[key, ids] : seen) {
        if (ids.size() < 2)
            continue;
        std::sort(ids.begin(), ids.end());
        size_t zero = key.find('\0');
        groups.push_back(Sv5Group{key.substr(0, zero), key.substr(zero + 1), ids});
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
            std::vector<Datum> elems(g.ids.begin(), g.ids.end());
            for (size_t i = 0; i < g.ids.size(); i++)
                elems[i] = Int64GetDatum(g.ids[i]);
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
