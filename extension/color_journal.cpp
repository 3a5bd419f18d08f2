// The colour journal: run log, state queries, omero_colors_status(), omero_colors_purge_journal().
#include "color_journal.hpp"
#include "history.hpp"
#include "omero_db.hpp"
#include "srf.hpp"

#include <algorithm>
#include <vector>

extern "C" {
#include "catalog/pg_type.h"
}

namespace ou::colors {

// Each shape's newest chunk; the journal only grows by batch, so this stays a small scan.
const char *colors_state_sql()
{
    return
    "SELECT DISTINCT ON (e.id) e.id, c.kind, c.direction, c.purged, c.done_at, c.run_id"
    "  FROM omero_upgrade.color_journal c CROSS JOIN LATERAL pg_catalog.unnest(c.shape_ids) AS e(id)"
    " ORDER BY e.id, c.chunk_id DESC";
}

std::string journal_insert_cte(const std::string &run, const std::string &kind, const std::string &direction,
                               const std::string &rows, const std::string &returning)
{
    return "ins AS (\n"
           "    INSERT INTO omero_upgrade.color_journal\n"
           "           (run_id, kind, direction, lo_id, hi_id, shape_ids, fill_before, stroke_before, version_after,"
           " update_after)\n"
           "    SELECT " + run + ", " + kind + ", " + direction +
           ", pg_catalog.min(w.id), pg_catalog.max(w.id), pg_catalog.array_agg(w.id),"
           " pg_catalog.array_agg(w.f), pg_catalog.array_agg(w.st),\n"
           "           pg_catalog.array_agg(w.version), pg_catalog.array_agg(w.update_id)\n"
           "      " + rows + "\n"
           "    RETURNING " + returning + ")";
}

void Journal::require_omero()
{
    require_db_version(spi_);
    auto n = spi_.scalar(
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute"
        " WHERE NOT attisdropped AND ((attrelid = pg_catalog.to_regclass($1)"
        "   AND ((attname IN ('fillcolor', 'strokecolor', 'version') AND atttypid = 'pg_catalog.int4'::pg_catalog.regtype)"
        "     OR (attname IN ('id', 'update_id', 'roi') AND atttypid = 'pg_catalog.int8'::pg_catalog.regtype)))"
        "   OR (attrelid = pg_catalog.to_regclass($2) AND attname = 'image')"
        "   OR (attrelid = pg_catalog.to_regclass($3) AND attname = 'id'))",
        {spi::text(omero_name(spi_, "shape")), spi::text(omero_name(spi_, "roi")),
         spi::text(omero_name(spi_, "image"))},
        true);
    if (n.value_or("0") != "8")
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "not an OMERO database with shape colours: the shape, roi or image table lacks a column",
                    "Needed: shape(id, fillcolor int4, strokecolor int4, version int4, update_id, roi), roi(image), "
                    "image(id).",
                    "Connect to the OMERO database (omero.db.name in the server's config.xml).");
}

void Journal::lock()
{
    // The key spells "omerocol".
    spi_.exec("SELECT pg_catalog.pg_advisory_xact_lock(8029185022424608620)");
}

void Journal::lock_shared()
{
    spi_.exec("SELECT pg_catalog.pg_advisory_xact_lock_shared(8029185022424608620)");
}

void Journal::lock_parallel_run()
{
    // The key spells "omeropar".
    spi_.exec("SELECT pg_catalog.pg_advisory_xact_lock(8029185252841775474)");
}

bool Journal::empty()
{
    return spi_.scalar("SELECT NOT EXISTS (SELECT 1 FROM omero_upgrade.color_journal)", {}, true) ==
           std::optional<std::string>("t");
}

bool Journal::overlaps(int64_t lo, int64_t hi)
{
    return spi_.scalar("SELECT EXISTS (SELECT 1 FROM omero_upgrade.color_journal WHERE lo_id <= $2 AND hi_id >= $1)",
                       {spi::int8(lo), spi::int8(hi)}, true) == std::optional<std::string>("t");
}

int64_t Journal::start_run(const std::string &direction, const char *method, const std::optional<Ids> &roi_ids,
                           const std::optional<Ids> &image_ids, const std::optional<Ids> &shape_ids, int64_t selected)
{
    // Earlier runs whose backend is gone were interrupted; so were unfinished runs of this very
    // backend (a cancelled CALL: statement_timeout, pg_cancel_backend). This run takes over from them.
    auto v = spi_.scalar(
        "WITH r AS (INSERT INTO omero_upgrade.color_runs (direction, method, scope, selected, backend_start)"
        "  SELECT $1, $2, CASE WHEN $3::pg_catalog.int8[] IS NULL AND $4::pg_catalog.int8[] IS NULL"
        "                          AND $5::pg_catalog.int8[] IS NULL"
        "                      THEN '{\"all\": true}'::pg_catalog.jsonb"
        "                      ELSE pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('roi_ids',"
        "                               $3::pg_catalog.int8[], 'image_ids', $4::pg_catalog.int8[],"
        "                               'shape_ids', $5::pg_catalog.int8[])) END,"
        "         $6, (SELECT backend_start FROM pg_catalog.pg_stat_activity WHERE pid = pg_catalog.pg_backend_pid())"
        "  RETURNING run_id),"
        " u AS (UPDATE omero_upgrade.color_runs o SET resumed_by = (SELECT run_id FROM r)"
        "  WHERE o.finished_at IS NULL AND o.resumed_by IS NULL AND o.direction = $1 AND NOT EXISTS ("
        "    SELECT 1 FROM pg_catalog.pg_stat_activity a"
        "     WHERE a.pid = o.backend_pid AND a.backend_start IS NOT DISTINCT FROM o.backend_start"
        "       AND a.pid <> pg_catalog.pg_backend_pid()))"
        " SELECT run_id FROM r",
        {spi::text(direction), spi::text(method), spi::int8_array(roi_ids), spi::int8_array(image_ids),
         spi::int8_array(shape_ids), spi::int8(selected)});
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
    spi_.exec("UPDATE omero_upgrade.color_runs SET finished_at = pg_catalog.clock_timestamp(), covered_to = $2"
              " WHERE run_id = $1",
              {spi::int8(run_id), covered_to ? spi::int8(*covered_to) : spi::null(INT8OID)});
    // The run's row as the history entry's details, in the run's (last) transaction.
    std::string details = spi_.scalar("SELECT pg_catalog.to_jsonb(r)::pg_catalog.text FROM omero_upgrade.color_runs r"
                                      " WHERE r.run_id OPERATOR(pg_catalog.=) $1",
                                      {spi::int8(run_id)})
                              .value_or("{}");
    record_history(spi_, "colors", "shape colours converted (run " + std::to_string(run_id) + ")", details);
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
    auto r = spi_.query(std::string("SELECT pg_catalog.count(*) FILTER (WHERE direction = $1) AS already,"
                                    " pg_catalog.count(*) FILTER (WHERE direction <> $1 AND kind = 'convert') AS opposite"
                                    " FROM (") +
                            colors_state_sql() + ") s",
                        {spi::text(direction)}, true);
    return {r.int64(0, "already"), r.int64(0, "opposite")};
}

int64_t Journal::journal_whole_table(const std::string &shape, int64_t run_id, const std::string &direction,
                                     const std::function<void(int64_t)> &on_chunk)
{
    // One chunk per 65536 ids from the lowest id present, each read by an index range scan in id
    // order: a plain aggregate per chunk, where GROUP BY over the whole table would hash (and spill)
    // or sort every row. Gaps in the ids cost one index probe each. The five aggregates of a chunk
    // see its rows in the same order, so the arrays stay parallel.
    int64_t total = 0;
    std::optional<std::string> next = spi_.scalar("SELECT pg_catalog.min(id) FROM " + shape, {}, true);
    while (next) {
        int64_t lo = std::stoll(*next);
        int64_t hi = lo > INT64_MAX - 65536 ? INT64_MAX : lo + 65535;
        auto r = spi_.query(
            "WITH " +
                journal_insert_cte("$1", "'convert'", "$2",
                                   "FROM (SELECT id, fillcolor AS f, strokecolor AS st, version, update_id FROM " +
                                       shape + " WHERE id BETWEEN $3 AND $4) w HAVING pg_catalog.count(*) > 0",
                                   "pg_catalog.cardinality(shape_ids) AS n") +
                " SELECT coalesce(pg_catalog.sum(n), 0) AS n, (SELECT pg_catalog.min(id) FROM " + shape +
                " WHERE id > $4) AS next FROM ins",
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

namespace {

// Per direction: converted (shapes still in the table whose newest chunk is a conversion in that
// direction), purged, when, the runs (running: their backend is still there), and what a run of
// every shape in that direction would do with each shape: the same decision as the batch
// statement's (colors_sql.cpp, batch_actions), so pending = to_convert + to_restore is what that
// run would touch, and left_alone what it would leave (already in its result, changed by OMERO
// since the opposite conversion, the opposite's originals purged, created after a completed
// conversion in this direction). A shape never journaled is to_convert in both directions: the
// extension cannot tell ARGB colours from RGBA ones (to_restore says which are exact reverses).
// ext: the extension's schema, for the two formulas.
std::string status_sql(const std::string &shape, const std::string &ext)
{
    const std::string runs = "(SELECT pg_catalog.count(*) FROM omero_upgrade.color_runs r WHERE r.direction = d.direction";
    const std::string alive = "EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = r.backend_pid"
                              " AND a.backend_start IS NOT DISTINCT FROM r.backend_start)";
    // The state of each shape: its newest chunk's element (originals and version/update_id after).
    return std::string(
               "WITH st AS (\n"
               "    SELECT DISTINCT ON (e.id) e.id, c.kind, c.direction, c.purged, c.done_at, e.f, e.st, e.v, e.u\n"
               "      FROM omero_upgrade.color_journal c\n"
               "     CROSS JOIN LATERAL omero_upgrade.color_journal_pick(c.shape_ids, c.fill_before, c.stroke_before,\n"
               "                        c.version_after, c.update_after, c.lo_id, c.hi_id, NULL) AS e\n"
               "     ORDER BY e.id, c.chunk_id DESC),\n"
               // The newest completed all-shapes run: shapes above its covered_to, never journaled,
               // are left alone by the next all-shapes run in its direction (Journal::covered_to).
               " cov AS (SELECT direction, covered_to FROM omero_upgrade.color_runs"
               "  WHERE finished_at IS NOT NULL AND covered_to IS NOT NULL ORDER BY finished_at DESC, run_id DESC LIMIT 1),\n"
               // x: every shape now in the table with its state; same_as_left: the colours, version
               // and update_id are as the conversion of its newest chunk left them.
               " x AS (SELECT s.id, st.id IS NOT NULL AS journaled, st.kind, st.direction AS jd, st.purged, st.done_at,\n"
               "        (st.v IS NOT DISTINCT FROM s.version AND st.u IS NOT DISTINCT FROM s.update_id\n"
               "         AND s.fillcolor IS NOT DISTINCT FROM (CASE WHEN st.direction = 'argb_to_rgba' THEN " + ext +
               ".omero_argb_to_rgba(st.f) ELSE " + ext + ".omero_rgba_to_argb(st.f) END)\n"
               "         AND s.strokecolor IS NOT DISTINCT FROM (CASE WHEN st.direction = 'argb_to_rgba' THEN " + ext +
               ".omero_argb_to_rgba(st.st) ELSE " + ext + ".omero_rgba_to_argb(st.st) END)) AS same_as_left\n"
               "   FROM " + shape + " s LEFT JOIN st ON st.id = s.id),\n"
               " a AS (SELECT d.direction, x.*,\n"
               "        CASE WHEN x.id IS NULL THEN NULL\n"
               "             WHEN NOT x.journaled AND x.id > (SELECT cov.covered_to FROM cov WHERE cov.direction = d.direction)"
               " THEN 'newer'\n"
               "             WHEN NOT x.journaled THEN 'convert'\n"
               "             WHEN x.jd = d.direction THEN 'already'\n"
               "             WHEN x.kind = 'restore' THEN 'convert'\n"
               "             WHEN x.purged THEN 'purged'\n"
               "             WHEN x.same_as_left THEN 'restore'\n"
               "             ELSE 'changed' END AS action\n"
               "   FROM (VALUES ('argb_to_rgba'), ('rgba_to_argb')) AS d(direction) LEFT JOIN x ON true)\n"
               " SELECT d.direction,\n"
               "        pg_catalog.count(d.id) FILTER (WHERE d.kind = 'convert' AND d.jd = d.direction) AS converted,\n"
               "        pg_catalog.count(d.id) FILTER (WHERE d.action = 'convert' OR d.action = 'restore') AS pending,\n"
               "        pg_catalog.count(d.id) FILTER (WHERE d.kind = 'convert' AND d.jd = d.direction AND d.purged) AS purged,\n"
               "        pg_catalog.min(d.done_at) FILTER (WHERE d.kind = 'convert' AND d.jd = d.direction)::pg_catalog.text"
               " AS first_at,\n"
               "        pg_catalog.max(d.done_at) FILTER (WHERE d.kind = 'convert' AND d.jd = d.direction)::pg_catalog.text"
               " AS last_at,\n"
               "        ") + runs + ") AS runs,\n"
           "        " + runs + " AND r.finished_at IS NULL AND r.resumed_by IS NULL AND " + alive + ") AS running_runs,\n"
           "        " + runs + " AND r.finished_at IS NULL AND r.resumed_by IS NULL AND NOT " + alive +
           ") AS interrupted_runs,\n"
           "        pg_catalog.count(d.id) FILTER (WHERE d.action = 'convert') AS to_convert,\n"
           "        pg_catalog.count(d.id) FILTER (WHERE d.action = 'restore') AS to_restore,\n"
           "        pg_catalog.count(d.id) FILTER (WHERE d.action <> 'convert' AND d.action <> 'restore') AS left_alone\n"
           "   FROM a AS d GROUP BY d.direction ORDER BY d.direction";
}

struct PurgeCounts {
    int64_t chunks = 0, originals = 0, marked = 0;
};

// Drops the journaled originals; converted shapes stay marked (unless forget), so converting
// again still changes nothing.
PurgeCounts purge(spi::Session &spi, colors::Journal &jr, bool forget, bool dry_run)
{
    if (!dry_run)
        jr.lock();
    auto r = spi.query(std::string("WITH st AS (") + colors::colors_state_sql() +
                           ") SELECT (SELECT pg_catalog.count(*) FROM omero_upgrade.color_journal) AS chunks,"
                           " (SELECT coalesce(pg_catalog.max(chunk_id), 0) FROM omero_upgrade.color_journal) AS top,"
                           " pg_catalog.count(*) FILTER (WHERE kind = 'convert' AND NOT purged) AS originals,"
                           " pg_catalog.count(*) FILTER (WHERE kind = 'convert') AS marked FROM st",
                       {}, true);
    PurgeCounts c{r.int64(0, "chunks"), r.int64(0, "originals"), forget ? 0 : r.int64(0, "marked")};
    // forget => true drops the marks too: nothing then tells a converted shape from one that never
    // was, and a later conversion in the same direction converts it again (its colours wrong).
    if (forget && r.int64(0, "marked") > 0)
        report(WARNING,
               std::string("omero_colors_purge_journal(forget => true) ") + (dry_run ? "would forget " : "forgets ") +
                   std::to_string(r.int64(0, "marked")) +
                   " converted shape(s): a later conversion in the same direction converts them again",
               "Without their marks, converted shapes look unconverted; forget => false (the default) drops the "
               "originals and keeps the marks.");
    if (dry_run)
        return c;
    if (!forget)
        // Marks: the ids of converted shapes, so that converting again still changes nothing.
        spi.exec(std::string("WITH st AS (") + colors::colors_state_sql() +
                 ") INSERT INTO omero_upgrade.color_journal (run_id, kind, direction, lo_id, hi_id, done_at,"
                 "  purged, shape_ids)"
                 " SELECT run_id, 'convert', direction, pg_catalog.min(id), pg_catalog.max(id),"
                 "        pg_catalog.max(done_at), true, pg_catalog.array_agg(id)"
                 "   FROM st WHERE kind = 'convert' GROUP BY run_id, direction, id >> 16");
    spi.exec("DELETE FROM omero_upgrade.color_journal WHERE chunk_id <= $1", {spi::int8(r.int64(0, "top"))});
    if (forget)  // what was converted is forgotten: so is which shapes the full runs covered
        spi.exec("UPDATE omero_upgrade.color_runs SET covered_to = NULL WHERE covered_to IS NOT NULL");
    return c;
}

} // namespace

OU_FUNCTION(omero_colors_status)
{
    return boundary([&] {
        spi::Result r;
        {
            spi::Session spi;
            colors::Journal jr(spi);
            jr.require_omero();
            r = spi.query(status_sql(omero_name(spi, "shape"), extension_schema(spi)), {}, true);
        }
        srf::Writer out(fcinfo);
        using srf::Cell;
        for (size_t i = 0; i < r.rows.size(); i++) {
            std::vector<Cell> row{Cell::of(r.str(i, "direction")), Cell::int8(r.int64(i, "converted")),
                                  Cell::int8(r.int64(i, "pending")), Cell::int8(r.int64(i, "purged")),
                                  Cell::timestamptz(r.get(i, "first_at")), Cell::timestamptz(r.get(i, "last_at")),
                                  Cell::int8(r.int64(i, "runs")), Cell::int8(r.int64(i, "running_runs")),
                                  Cell::int8(r.int64(i, "interrupted_runs")), Cell::int8(r.int64(i, "to_convert")),
                                  Cell::int8(r.int64(i, "to_restore")), Cell::int8(r.int64(i, "left_alone"))};
            // 1.0's declaration (not yet ALTER EXTENSION … UPDATE-d) has the first nine columns.
            if (out.columns() == 9)
                row.resize(9);
            out.put(row);
        }
        return out.done();
    });
}

OU_FUNCTION(omero_colors_purge_journal)
{
    return boundary([&] {
        Args args(fcinfo);
        bool forget = args.flag(0, "forget", "Pass false (the default) to keep the marks of converted shapes, "
                                             "true to forget every conversion.");
        bool dry_run = args.flag(1, "dry_run", "Pass true to count only, false to purge.");
        PurgeCounts c;
        {
            spi::Session spi;
            colors::Journal jr(spi);
            jr.require_omero();
            c = purge(spi, jr, forget, dry_run);
        }
        srf::Writer out(fcinfo);
        out.put({srf::Cell::int8(c.chunks), srf::Cell::int8(c.originals), srf::Cell::int8(c.marked)});
        return out.done();
    });
}

// The elements of one journal chunk for the shapes asked about: ids in [lo, hi] and, unless `want`
// is NULL, in `want`. It replaces unnest() over the whole chunk: a subset after a full conversion
// overlaps every chunk, and unnesting (then sorting) all of them made the subset cost grow with
// the journal. Here the chunk's ids are read (one detoast), and then, when they are sorted (every
// chunk of a full conversion is) and fewer are wanted than the chunk holds, each wanted id in
// [lo, hi] is looked up by binary search: the work follows the subset, not the chunk. The other
// four arrays are only read when some element matches. Only matching elements become rows.
OU_FUNCTION(omero_color_journal_pick)
{
    return boundary([&] {
        Args args(fcinfo);
        if (args.is_null(0) || args.is_null(5) || args.is_null(6))
            throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "omero_color_journal_pick: shape_ids, lo and hi are required");
        int64_t lo = args.int8(5, "lo", ""), hi = args.int8(6, "hi", "");
        ou::IntArray cols[5];  // purged originals: NULL arrays, no elements
        cols[0] = args.int_array(0);
        const size_t n = cols[0].size();
        std::vector<int64_t> want;
        const bool filter = !args.is_null(7);
        if (filter) {
            ou::IntArray w = args.int_array(7);
            want.reserve(w.size());
            for (size_t i = 0; i < w.size(); i++)
                if (!w.is_null(i))
                    want.push_back(w[i]);
            if (!std::is_sorted(want.begin(), want.end()))  // ours always are
                std::sort(want.begin(), want.end());
        }
        // The positions of the matching elements, in chunk order.
        std::vector<size_t> hits;
        bool sorted = true;
        for (size_t i = 0; sorted && i < n; i++)
            sorted = !cols[0].is_null(i) && (i == 0 || cols[0][i - 1] < cols[0][i]);
        if (filter && sorted) {
            auto first = std::lower_bound(want.begin(), want.end(), lo);
            auto last = std::upper_bound(first, want.end(), hi);
            for (auto it = first; it != last; ++it) {
                size_t l = 0, h = n;  // the first element >= *it
                while (l < h) {
                    size_t m = l + (h - l) / 2;
                    if (cols[0][m] < *it)
                        l = m + 1;
                    else
                        h = m;
                }
                if (l < n && cols[0][l] == *it)
                    hits.push_back(l);
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                if (cols[0].is_null(i))
                    continue;
                int64_t id = cols[0][i];
                if (id >= lo && id <= hi && (!filter || std::binary_search(want.begin(), want.end(), id)))
                    hits.push_back(i);
            }
        }
        srf::Writer out(fcinfo);
        if (hits.empty())
            return out.done();
        for (int i = 1; i < 5; i++) {
            cols[i] = args.int_array(i);
            if (!args.is_null(i) && cols[i].size() != n)
                throw Error(ERRCODE_DATA_CORRUPTED, "omero_upgrade: a colour journal chunk has arrays of different lengths");
        }
        using srf::Cell;
        static const bool is_int4[5] = {false, true, true, true, false};
        auto cell = [&](int col, size_t i) {
            if (!cols[col].values || cols[col].is_null(i))
                return Cell::null();
            return is_int4[col] ? Cell::int4((int32_t)cols[col][i]) : Cell::int8(cols[col][i]);
        };
        for (size_t i : hits)
            out.put({Cell::int8(cols[0][i]), cell(1, i), cell(2, i), cell(3, i), cell(4, i)});
        return out.done();
    });
}
