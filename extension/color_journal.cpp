// The colour journal: run log, state queries, omero_colors_status(), omero_colors_purge_journal().
#include "color_journal.hpp"
#include "omero.hpp"
#include "srf.hpp"

#include <algorithm>
#include <vector>

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
}

namespace ou::colors {

// Each shape's newest chunk; the journal only grows by batch, so this stays a small scan.
const char *colors_state_sql()
{
    return
    "SELECT DISTINCT ON (e.id) e.id, c.kind, c.direction, c.purged, c.done_at, c.run_id"
    "  FROM omero_upgrade.color_journal c CROSS JOIN LATERAL unnest(c.shape_ids) AS e(id)"
    " ORDER BY e.id, c.chunk_id DESC";
}

void check_direction(const std::string &direction)
{
    if (direction != "argb_to_rgba" && direction != "rgba_to_argb")
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown direction \"" + direction + "\"",
                    "The directions are argb_to_rgba (what the OMERO 5.3 upgrade needs) and rgba_to_argb (its "
                    "reverse).",
                    "Use 'argb_to_rgba' or 'rgba_to_argb'.");
}

std::string opposite(const std::string &direction)
{
    return direction == "argb_to_rgba" ? "rgba_to_argb" : "argb_to_rgba";
}

void Journal::require_omero()
{
    require_db_version(spi_);
    auto n = spi_.scalar(
        "SELECT count(*) FROM pg_catalog.pg_attribute"
        " WHERE NOT attisdropped AND ((attrelid = pg_catalog.to_regclass('shape')"
        "   AND ((attname IN ('fillcolor', 'strokecolor', 'version') AND atttypid = 'int4'::regtype)"
        "     OR (attname IN ('id', 'update_id', 'roi') AND atttypid = 'int8'::regtype)))"
        "   OR (attrelid = pg_catalog.to_regclass('roi') AND attname = 'image')"
        "   OR (attrelid = pg_catalog.to_regclass('image') AND attname = 'id'))",
        {}, true);
    if (n.value_or("0") != "8")
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "not an OMERO database with shape colours: the shape, roi or image table lacks a column",
                    "Needed: shape(id, fillcolor int4, strokecolor int4, version int4, update_id, roi), roi(image), "
                    "image(id).",
                    "Connect to the OMERO database (omero.db.name in the server's config.xml).");
}

std::string Journal::function_for(const std::string &direction)
{
    if (schema_.empty())
        schema_ = spi_.scalar("SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e"
                              " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
                              " WHERE e.extname = 'omero_upgrade'",
                              {}, true)
                      .value_or("public");
    return schema_ + (direction == "argb_to_rgba" ? ".omero_argb_to_rgba" : ".omero_rgba_to_argb");
}

void Journal::lock()
{
    // The key spells "omerocol".
    spi_.exec("SELECT pg_catalog.pg_advisory_xact_lock(8029185022424608620)");
}

int64_t Journal::start_run(const std::string &direction, const char *method, const Datum ids[3], const bool has[3],
                           int64_t selected)
{
    // Earlier runs whose backend is gone were interrupted; so were unfinished runs of this very
    // backend (a cancelled CALL: statement_timeout, pg_cancel_backend). This run takes over from them.
    auto v = spi_.scalar(
        "WITH r AS (INSERT INTO omero_upgrade.color_runs (direction, method, scope, selected, backend_start)"
        "  SELECT $1, $2, CASE WHEN $3::int8[] IS NULL AND $4::int8[] IS NULL AND $5::int8[] IS NULL"
        "                      THEN '{\"all\": true}'::jsonb"
        "                      ELSE jsonb_strip_nulls(jsonb_build_object('roi_ids', $3::int8[], 'image_ids', $4::int8[],"
        "                                                                'shape_ids', $5::int8[])) END,"
        "         $6, (SELECT backend_start FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid())"
        "  RETURNING run_id),"
        " u AS (UPDATE omero_upgrade.color_runs o SET resumed_by = (SELECT run_id FROM r)"
        "  WHERE o.finished_at IS NULL AND o.resumed_by IS NULL AND o.direction = $1 AND NOT EXISTS ("
        "    SELECT 1 FROM pg_catalog.pg_stat_activity a"
        "     WHERE a.pid = o.backend_pid AND a.backend_start IS NOT DISTINCT FROM o.backend_start"
        "       AND a.pid <> pg_catalog.pg_backend_pid()))"
        " SELECT run_id FROM r",
        {spi::text(direction), spi::text(method), has[0] ? spi::datum(INT8ARRAYOID, ids[0]) : spi::null(INT8ARRAYOID),
         has[1] ? spi::datum(INT8ARRAYOID, ids[1]) : spi::null(INT8ARRAYOID),
         has[2] ? spi::datum(INT8ARRAYOID, ids[2]) : spi::null(INT8ARRAYOID), spi::int8(selected)});
    return std::stoll(*v);
}

void Journal::count_batch(int64_t run_id, int64_t converted, int64_t restored, int64_t already, int64_t changed,
                          int64_t purged, int64_t raced)
{
    spi_.exec("UPDATE omero_upgrade.color_runs SET converted = converted + $2, restored = restored + $3,"
              " already = already + $4, changed = changed + $5, purged = purged + $6, raced = raced + $7"
              " WHERE run_id = $1",
              {spi::int8(run_id), spi::int8(converted), spi::int8(restored), spi::int8(already), spi::int8(changed),
               spi::int8(purged), spi::int8(raced)});
}

void Journal::set_selected(int64_t run_id, int64_t selected)
{
    spi_.exec("UPDATE omero_upgrade.color_runs SET selected = $2 WHERE run_id = $1",
              {spi::int8(run_id), spi::int8(selected)});
}

void Journal::finish_run(int64_t run_id, std::optional<int64_t> covered_to)
{
    spi_.exec("UPDATE omero_upgrade.color_runs SET finished_at = clock_timestamp(), covered_to = $2 WHERE run_id = $1",
              {spi::int8(run_id), covered_to ? spi::int8(*covered_to) : spi::null(INT8OID)});
}

std::optional<int64_t> Journal::covered_to(const std::string &direction)
{
    auto r = spi_.query("SELECT direction, covered_to FROM omero_upgrade.color_runs"
                        " WHERE finished_at IS NOT NULL AND covered_to IS NOT NULL"
                        " ORDER BY finished_at DESC, run_id DESC LIMIT 1",
                        {}, true);
    if (r.rows.empty() || r.str(0, "direction") != direction)
        return std::nullopt;
    return r.int64(0, "covered_to");
}

std::pair<int64_t, int64_t> Journal::not_original_for(const std::string &direction)
{
    // The batch path's "already" (newest chunk by this direction, whatever its kind), and
    // conversions by the opposite direction (the batch path restores those, the rewrite cannot).
    auto r = spi_.query(std::string("SELECT count(*) FILTER (WHERE direction = $1) AS already,"
                                    " count(*) FILTER (WHERE direction <> $1 AND kind = 'convert') AS opposite FROM (") +
                            colors_state_sql() + ") s",
                        {spi::text(direction)}, true);
    return {r.int64(0, "already"), r.int64(0, "opposite")};
}

int64_t Journal::journal_whole_table(int64_t run_id, const std::string &direction,
                                     const std::function<void(int64_t)> &on_chunk)
{
    // One chunk per 65536 ids from the lowest id present, each read by an index range scan in id
    // order: a plain aggregate per chunk, where GROUP BY over the whole table would hash (and spill)
    // or sort every row. Gaps in the ids cost one index probe each. The five aggregates of a chunk
    // see its rows in the same order, so the arrays stay parallel.
    int64_t total = 0;
    std::optional<std::string> next = spi_.scalar("SELECT min(id) FROM shape", {}, true);
    while (next) {
        int64_t lo = std::stoll(*next);
        int64_t hi = lo > INT64_MAX - 65536 ? INT64_MAX : lo + 65535;
        auto r = spi_.query(
            "WITH ins AS (INSERT INTO omero_upgrade.color_journal"
            " (run_id, kind, direction, lo_id, hi_id, shape_ids, fill_before, stroke_before, version_after,"
            "  update_after)"
            " SELECT $1, 'convert', $2, min(id), max(id), array_agg(id), array_agg(fillcolor), array_agg(strokecolor),"
            "        array_agg(version), array_agg(update_id)"
            "   FROM shape WHERE id BETWEEN $3 AND $4 HAVING count(*) > 0"
            " RETURNING cardinality(shape_ids) AS n)"
            " SELECT coalesce(sum(n), 0) AS n, (SELECT min(id) FROM shape WHERE id > $4) AS next FROM ins",
            {spi::int8(run_id), spi::text(direction), spi::int8(lo), spi::int8(hi)});
        total += r.int64(0, "n");
        if (on_chunk)
            on_chunk(total);
        next = hi == INT64_MAX ? std::nullopt : r.get(0, "next");
    }
    return total;
}

} // namespace ou::colors

using namespace ou;

OU_FUNCTION(omero_colors_status)
{
    return boundary([&] {
        spi::Session spi;
        colors::Journal jr(spi);
        jr.require_omero();
        // Converted: shapes still in the table whose newest chunk is a conversion in that direction.
        auto r = spi.query(
            std::string("WITH st AS (") + colors::colors_state_sql() +
                "), cur AS (SELECT st.* FROM st JOIN shape s ON s.id = st.id WHERE st.kind = 'convert'),"
                " total AS (SELECT count(*) AS n FROM shape)"
                " SELECT d.direction, count(cur.id) AS converted, (SELECT n FROM total) - count(cur.id) AS pending,"
                "        count(cur.id) FILTER (WHERE cur.purged) AS purged, min(cur.done_at)::text AS first_at,"
                "        max(cur.done_at)::text AS last_at,"
                "        (SELECT count(*) FROM omero_upgrade.color_runs r WHERE r.direction = d.direction) AS runs,"
                "        (SELECT count(*) FROM omero_upgrade.color_runs r WHERE r.direction = d.direction"
                "            AND r.finished_at IS NULL AND r.resumed_by IS NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a"
                "              WHERE a.pid = r.backend_pid AND a.backend_start IS NOT DISTINCT FROM r.backend_start))"
                "          AS running_runs,"
                "        (SELECT count(*) FROM omero_upgrade.color_runs r WHERE r.direction = d.direction"
                "            AND r.finished_at IS NULL AND r.resumed_by IS NULL AND NOT EXISTS ("
                "              SELECT 1 FROM pg_catalog.pg_stat_activity a"
                "              WHERE a.pid = r.backend_pid AND a.backend_start IS NOT DISTINCT FROM r.backend_start))"
                "          AS interrupted_runs"
                "   FROM (VALUES ('argb_to_rgba'), ('rgba_to_argb')) AS d(direction)"
                "   LEFT JOIN cur ON cur.direction = d.direction"
                "  GROUP BY d.direction ORDER BY d.direction",
            {}, true);
        srf::Writer out(fcinfo);
        using srf::Cell;
        for (size_t i = 0; i < r.rows.size(); i++) {
            auto ts = [&](const char *c) -> Cell {
                auto v = r.get(i, c);
                if (!v)
                    return Cell::null();
                const char *s = v->c_str();
                return Cell::datum(pg_guard([s] {
                    return DirectFunctionCall3(timestamptz_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
                                               Int32GetDatum(-1));
                }));
            };
            out.put({Cell::of(r.str(i, "direction")), Cell::int8(r.int64(i, "converted")),
                     Cell::int8(r.int64(i, "pending")), Cell::int8(r.int64(i, "purged")), ts("first_at"),
                     ts("last_at"), Cell::int8(r.int64(i, "runs")), Cell::int8(r.int64(i, "running_runs")),
                     Cell::int8(r.int64(i, "interrupted_runs"))});
        }
        return out.done();
    });
}

OU_FUNCTION(omero_colors_purge_journal)
{
    return boundary([&] {
        bool forget = !PG_ARGISNULL(0) && PG_GETARG_BOOL(0);
        bool dry_run = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
        spi::Session spi;
        colors::Journal jr(spi);
        jr.require_omero();
        if (!dry_run)
            jr.lock();
        auto r = spi.query(std::string("WITH st AS (") + colors::colors_state_sql() +
                               ") SELECT (SELECT count(*) FROM omero_upgrade.color_journal) AS chunks,"
                               " (SELECT coalesce(max(chunk_id), 0) FROM omero_upgrade.color_journal) AS top,"
                               " count(*) FILTER (WHERE kind = 'convert' AND NOT purged) AS originals,"
                               " count(*) FILTER (WHERE kind = 'convert') AS marked FROM st",
                           {}, true);
        int64_t chunks = r.int64(0, "chunks"), top = r.int64(0, "top"), originals = r.int64(0, "originals"),
                marked = forget ? 0 : r.int64(0, "marked");
        if (!dry_run) {
            if (!forget)
                // Marks: the ids of converted shapes, so that converting again still changes nothing.
                spi.exec(std::string("WITH st AS (") + colors::colors_state_sql() +
                         ") INSERT INTO omero_upgrade.color_journal (run_id, kind, direction, lo_id, hi_id, done_at,"
                         "  purged, shape_ids)"
                         " SELECT run_id, 'convert', direction, min(id), max(id), max(done_at), true, array_agg(id)"
                         "   FROM st WHERE kind = 'convert' GROUP BY run_id, direction, id >> 16");
            spi.exec("DELETE FROM omero_upgrade.color_journal WHERE chunk_id <= $1", {spi::int8(top)});
            if (forget)  // what was converted is forgotten: so is which shapes the full runs covered
                spi.exec("UPDATE omero_upgrade.color_runs SET covered_to = NULL WHERE covered_to IS NOT NULL");
        }
        srf::Writer out(fcinfo);
        out.put({srf::Cell::int8(chunks), srf::Cell::int8(originals), srf::Cell::int8(marked)});
        return out.done();
    });
}

// The elements of one journal chunk for the shapes asked about: ids in [lo, hi] and, unless `want`
// is NULL, in `want`. It replaces unnest() over the whole chunk: a subset after a full conversion
// overlaps every chunk, and unnesting (then sorting) all of them made the subset cost grow with
// the journal; here a chunk costs one detoast and a binary search per element, and only matching
// elements become rows.
OU_FUNCTION(omero_color_journal_pick)
{
    return boundary([&] {
        if (PG_ARGISNULL(0) || PG_ARGISNULL(5) || PG_ARGISNULL(6))
            throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "omero_color_journal_pick: shape_ids, lo and hi are required");
        int64_t lo = PG_GETARG_INT64(5), hi = PG_GETARG_INT64(6);
        struct Col {
            Datum *v = nullptr;
            bool *null = nullptr;
            int n = 0;
        } cols[5];
        static const Oid types[5] = {INT8OID, INT4OID, INT4OID, INT4OID, INT8OID};
        for (int i = 0; i < 5; i++) {
            if (PG_ARGISNULL(i))  // purged originals: NULL arrays
                continue;
            Col &c = cols[i];
            pg_guard([&] {
                ArrayType *a = PG_GETARG_ARRAYTYPE_P(i);
                bool byval = types[i] == INT4OID ? true : FLOAT8PASSBYVAL;
                deconstruct_array(a, types[i], types[i] == INT4OID ? 4 : 8, byval,
                                  types[i] == INT4OID ? TYPALIGN_INT : TYPALIGN_DOUBLE, &c.v, &c.null, &c.n);
            });
        }
        const int n = cols[0].n;
        for (int i = 1; i < 5; i++)
            if (cols[i].v && cols[i].n != n)
                throw Error(ERRCODE_DATA_CORRUPTED, "omero_upgrade: a colour journal chunk has arrays of different lengths");
        std::vector<int64_t> want;
        bool filter = !PG_ARGISNULL(7);
        if (filter) {
            Datum *v;
            bool *nulls;
            int m;
            pg_guard([&] {
                deconstruct_array(PG_GETARG_ARRAYTYPE_P(7), INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &v, &nulls, &m);
            });
            want.reserve(m);
            for (int i = 0; i < m; i++)
                if (!nulls[i])
                    want.push_back(DatumGetInt64(v[i]));
            if (!std::is_sorted(want.begin(), want.end()))  // ours always are
                std::sort(want.begin(), want.end());
        }
        srf::Writer out(fcinfo);
        using srf::Cell;
        auto cell = [&](int col, int i) {
            const Col &c = cols[col];
            if (!c.v || c.null[i])
                return Cell::null();
            return types[col] == INT4OID ? Cell::int4(DatumGetInt32(c.v[i])) : Cell::int8(DatumGetInt64(c.v[i]));
        };
        for (int i = 0; i < n; i++) {
            if (cols[0].null[i])
                continue;
            int64_t id = DatumGetInt64(cols[0].v[i]);
            if (id < lo || id > hi || (filter && !std::binary_search(want.begin(), want.end(), id)))
                continue;
            out.put({Cell::int8(id), cell(1, i), cell(2, i), cell(3, i), cell(4, i)});
        }
        return out.done();
    });
}
