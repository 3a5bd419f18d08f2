// Shape colours, ARGB <-> RGBA: the two formulas as C functions, and the journaled bulk conversion
// (CALL omero_colors_convert, omero_colors_convert_tx, the omero_colors_rewrite fast path).
//
// Every batch is one SQL statement that reads the batch's shapes and their journal state,
// updates the colours and inserts the journal chunk; in the procedure each batch then commits.
// So a kill or a crash leaves each batch either converted and journaled, or neither: a new CALL
// finds the journaled shapes and skips them (never converting a shape twice).
#include "color_journal.hpp"
#include "omero.hpp"
#include "progress.hpp"
#include "srf.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

#include <algorithm>
#include <cstdint>
#include <utility>

namespace ou::colors {

int32_t argb_to_rgba(int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint32_t alpha = u >> 24;
    if (alpha == 0)  // OMERO's rule: a transparent ARGB colour becomes opaque
        alpha = 255;
    return (int32_t)((u << 8) | alpha);
}

int32_t rgba_to_argb(int32_t v)
{
    uint32_t u = (uint32_t)v;
    return (int32_t)((u << 24) | (u >> 8));
}

namespace {

// What one batch did (or, in a dry run, would do).
struct Summary {
    int64_t run_id = 0;
    int64_t selected = 0, converted = 0, restored = 0, already = 0, changed = 0, purged = 0, raced = 0;
    int64_t newer = 0;  // all-shapes runs: left alone, created after the completed conversion (not selected)
    std::vector<std::string> sample;  // JSON objects
    std::vector<int64_t> changed_ids; // the first few
    void add(const Summary &b)
    {
        selected += b.selected;
        converted += b.converted;
        restored += b.restored;
        already += b.already;
        changed += b.changed;
        purged += b.purged;
        raced += b.raced;
        newer += b.newer;
        for (const auto &s : b.sample)
            if (sample.size() < kSample)
                sample.push_back(s);
        for (int64_t id : b.changed_ids)
            if (changed_ids.size() < kSample)
                changed_ids.push_back(id);
    }
    static constexpr size_t kSample = 10;
};

// The batch: the shapes in scope between $1 and $2 (inclusive), and in list mode also in $5.
// $3 direction, $4 run id, $6 sample size, $7 (all shapes only) the covered_to of a completed
// all-shapes conversion in this direction, above which shapes with no journal entry are 'newer'. {F}: the requested formula, {R}: the opposite one
// (both schema-qualified function names chosen by us, never user text). Rows whose colours
// changed between our read and our update (OMERO writing concurrently) are left alone by the
// last two conditions of the UPDATE and counted as raced: still pending, done by the next run.
const char *const kModifySql = R"SQL(w AS (
    UPDATE shape s
       SET fillcolor   = CASE WHEN a.action = 'convert' THEN {F}(a.f)  ELSE a.of  END,
           strokecolor = CASE WHEN a.action = 'convert' THEN {F}(a.st) ELSE a.ost END
      FROM a
     WHERE s.id = a.id AND {SSEL} AND a.action IN ('convert', 'restore')
       AND s.fillcolor IS NOT DISTINCT FROM a.f AND s.strokecolor IS NOT DISTINCT FROM a.st
    RETURNING s.id, a.f, a.st, s.version, s.update_id, a.action),
ins AS (
    INSERT INTO omero_upgrade.color_journal
           (run_id, kind, direction, lo_id, hi_id, shape_ids, fill_before, stroke_before, version_after, update_after)
    SELECT $4, w.action, $3, min(w.id), max(w.id), array_agg(w.id), array_agg(w.f), array_agg(w.st),
           array_agg(w.version), array_agg(w.update_id)
      FROM w GROUP BY w.action
    RETURNING kind, cardinality(shape_ids) AS n)
)SQL";

// In a dry run: the same counts, nothing written (so it works in a READ ONLY transaction too).
const char *const kDryModifySql = "ins AS (SELECT NULL::text AS kind, 0::int8 AS n WHERE false)\n";

const char *const kBatchSql = R"SQL(
WITH b AS MATERIALIZED (
    SELECT s.id, s.fillcolor AS f, s.strokecolor AS st, s.version AS v, s.update_id AS u{BT}
      FROM shape s WHERE {SEL}{LIMIT}),
{J}a AS MATERIALIZED (
    SELECT b.id, b.f, b.st, j.f AS of, j.st AS ost{AT},
           CASE WHEN j.id IS NULL AND b.id > $7 THEN 'newer'
                WHEN j.id IS NULL THEN 'convert'
                WHEN j.direction = $3 THEN 'already'  -- converted, or restored, by this direction
                WHEN j.kind = 'restore' THEN 'convert'
                WHEN j.purged THEN 'purged'
                WHEN b.v IS NOT DISTINCT FROM j.v AND b.u IS NOT DISTINCT FROM j.u
                 AND b.f IS NOT DISTINCT FROM {R}(j.f) AND b.st IS NOT DISTINCT FROM {R}(j.st) THEN 'restore'
                ELSE 'changed' END AS action
      FROM b LEFT JOIN j ON j.id = b.id),
{MODIFY}SELECT count(*) FILTER (WHERE action <> 'newer') AS selected,
       count(*) FILTER (WHERE action = 'newer') AS newer,
       count(*) FILTER (WHERE action = 'convert') AS to_convert,
       count(*) FILTER (WHERE action = 'restore') AS to_restore,
       count(*) FILTER (WHERE action = 'already') AS already,
       count(*) FILTER (WHERE action = 'changed') AS changed,
       count(*) FILTER (WHERE action = 'purged') AS purged,
       (SELECT coalesce(sum(n), 0) FROM ins WHERE kind = 'convert') AS converted,
       (SELECT coalesce(sum(n), 0) FROM ins WHERE kind = 'restore') AS restored,
       (SELECT jsonb_agg(jsonb_build_object('shape_id', id, 'action', action,
                     'fillcolor', jsonb_build_array(f, CASE WHEN action = 'convert' THEN {F}(f) ELSE of END),
                     'strokecolor', jsonb_build_array(st, CASE WHEN action = 'convert' THEN {F}(st) ELSE ost END))
                     ORDER BY id)::text
          FROM (SELECT * FROM a WHERE action IN ('convert', 'restore') ORDER BY id LIMIT $6) s) AS sample,
       (SELECT array_agg(id ORDER BY id)::text FROM (
            SELECT id FROM a WHERE action = 'changed' ORDER BY id LIMIT 10) c) AS changed_ids
  FROM a
)SQL";

// The journal entries of the batch's shapes (newest chunk first per shape), from the chunks whose
// id range overlaps it; color_journal_pick returns only the elements asked about.
const char *const kBatchJournalSql = R"SQL(j AS (
    SELECT DISTINCT ON (e.id) e.id, c.kind, c.direction, c.purged, e.f, e.st, e.v, e.u
      FROM omero_upgrade.color_journal c
     CROSS JOIN LATERAL omero_upgrade.color_journal_pick(c.shape_ids, c.fill_before, c.stroke_before,
                                                         c.version_after, c.update_after, $1, $2, $5) AS e
     WHERE c.lo_id <= $2 AND c.hi_id >= $1
     ORDER BY e.id, c.chunk_id DESC),
)SQL";

// The same for a ROI scope (b holds its shapes, $5 is the ROI ids): the ids come from b itself, so
// the shapes are read once here and once more by the UPDATE, not a third time to list their ids.
// b is read with LIMIT $2 (one more than a batch): when it is full, the subset is too big for one
// statement, k.want is NULL, nothing is updated or journaled, and the caller goes by batches.
const char *const kScopeJournalSql = R"SQL(k AS (SELECT min(id) AS lo, max(id) AS hi,
              CASE WHEN count(*) < $2 THEN array_agg(id ORDER BY id) END AS want FROM b),
j AS (
    SELECT DISTINCT ON (e.id) e.id, c.kind, c.direction, c.purged, e.f, e.st, e.v, e.u
      FROM k JOIN omero_upgrade.color_journal c ON c.lo_id <= k.hi AND c.hi_id >= k.lo
     CROSS JOIN LATERAL omero_upgrade.color_journal_pick(c.shape_ids, c.fill_before, c.stroke_before,
                                                         c.version_after, c.update_after, k.lo, k.hi, k.want) AS e
     ORDER BY e.id, c.chunk_id DESC),
)SQL";

// The end of kLeanSql and kScopeSql, after w (the rows converted, with their old colours): journal
// them as one 'convert' chunk, then the count converted and a sample. {RUN}, {DIR} and {N}: the
// parameters holding the run id, the direction and the sample size.
const char *const kConvertTailSql = R"SQL(ins AS (
    INSERT INTO omero_upgrade.color_journal
           (run_id, kind, direction, lo_id, hi_id, shape_ids, fill_before, stroke_before, version_after, update_after)
    SELECT {RUN}, 'convert', {DIR}, min(w.id), max(w.id), array_agg(w.id), array_agg(w.f), array_agg(w.st),
           array_agg(w.version), array_agg(w.update_id)
      FROM w HAVING count(*) > 0
    RETURNING cardinality(shape_ids) AS n)
SELECT (SELECT coalesce(sum(n), 0) FROM ins) AS converted,
       (SELECT jsonb_agg(jsonb_build_object('shape_id', id, 'action', 'convert', 'fillcolor', jsonb_build_array(f, {F}(f)),
                                            'strokecolor', jsonb_build_array(st, {F}(st))) ORDER BY id)::text
          FROM (SELECT * FROM w ORDER BY id LIMIT {N}) s) AS sample)SQL";

// The common case, a batch no journal chunk overlaps (every shape in it has its original colours):
// no state to look up, so just update and journal. The self-join gives the old values.
const char *const kLeanSql = R"SQL(
WITH w AS (
    UPDATE shape s SET fillcolor = {F}(o.fillcolor), strokecolor = {F}(o.strokecolor)
      FROM shape o
     WHERE o.id = s.id AND {SSEL} AND {OSEL}
       AND s.fillcolor IS NOT DISTINCT FROM o.fillcolor AND s.strokecolor IS NOT DISTINCT FROM o.strokecolor
    RETURNING s.id, o.fillcolor AS f, o.strokecolor AS st, s.version, s.update_id),
{TAIL})SQL";

// The fast subset: ROIs (given, or those of the given images) whose shapes fit in one batch, none
// of them journaled. One statement reads each shape once and updates it right away: the self-join
// by primary key (a nested loop, see run_scope) finds the same heap page still in the buffer cache,
// where selecting the ids first and updating them by id later reads every page twice (a 1% subset
// is scattered over ~40% of the table's pages: more than shared_buffers). o is read first by the
// UPDATE (streaming); its count, for "selected", comes after, from the stored rows.
const char *const kScopeSql = R"SQL(
WITH o AS MATERIALIZED (
    SELECT id, fillcolor, strokecolor FROM shape WHERE roi = ANY($3)),
w AS (
    UPDATE shape s SET fillcolor = {F}(o.fillcolor), strokecolor = {F}(o.strokecolor)
      FROM o
     WHERE s.id = o.id
       AND s.fillcolor IS NOT DISTINCT FROM o.fillcolor AND s.strokecolor IS NOT DISTINCT FROM o.strokecolor
    RETURNING s.id, o.fillcolor AS f, o.strokecolor AS st, s.version, s.update_id),
{TAIL},
       (SELECT count(*) FROM o) AS selected
)SQL";

std::string replace_all(std::string s, const std::string &from, const std::string &to)
{
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
        s.replace(p, from.size(), to);
    return s;
}

// sql with its {TAIL} (kConvertTailSql) filled in, for these parameter numbers.
std::string with_tail(const char *sql, const char *run, const char *dir, const char *n)
{
    return replace_all(
        replace_all(replace_all(replace_all(sql, "{TAIL}", kConvertTailSql), "{RUN}", run), "{DIR}", dir), "{N}", n);
}

std::vector<std::string> split_json_array(const std::string &json)
{
    // jsonb_agg text of flat objects: split at the top level "}, {".
    std::vector<std::string> out;
    int depth = 0;
    size_t start = std::string::npos;
    for (size_t i = 0; i < json.size(); i++) {
        char c = json[i];
        if (c == '{') {
            if (depth++ == 0)
                start = i;
        } else if (c == '}') {
            if (--depth == 0 && start != std::string::npos)
                out.push_back(json.substr(start, i - start + 1));
        }
    }
    return out;
}

std::vector<int64_t> parse_id_array(const std::string &s)
{
    std::vector<int64_t> ids;
    std::string cur;
    for (char c : s) {
        if ((c >= '0' && c <= '9') || c == '-')
            cur.push_back(c);
        else if (!cur.empty()) {
            ids.push_back(std::stoll(cur));
            cur.clear();
        }
    }
    if (!cur.empty())
        ids.push_back(std::stoll(cur));
    return ids;
}

struct Args {
    std::string direction;
    Datum ids[3] = {0, 0, 0};  // roi_ids, image_ids, shape_ids
    bool has[3] = {false, false, false};
    int batch_size = 50000;
    bool dry_run = false;
    bool all() const { return !has[0] && !has[1] && !has[2]; }
};

const char *const kIdArgNames[3] = {"roi_ids", "image_ids", "shape_ids"};

Args read_args(FunctionCallInfo fcinfo, bool with_scope)
{
    Args a;
    if (PG_ARGISNULL(0))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "direction must not be NULL",
                    "", "Use 'argb_to_rgba' (OMERO 5.3 upgrade) or 'rgba_to_argb' (its reverse).");
    a.direction = pg_guard([&] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
    check_direction(a.direction);
    if (!with_scope) {
        a.dry_run = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
        return a;
    }
    for (int i = 0; i < 3; i++) {
        if (PG_ARGISNULL(1 + i))
            continue;
        a.has[i] = true;
        a.ids[i] = PG_GETARG_DATUM(1 + i);
        ArrayType *arr = pg_guard([&] { return PG_GETARG_ARRAYTYPE_P(1 + i); });
        a.ids[i] = PointerGetDatum(arr);
        int n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
        if (n == 0)
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(kIdArgNames[i]) + " is an empty array",
                        "An empty list would select no shape at all.",
                        "Pass NULL (or leave it out) to mean no restriction by " + std::string(kIdArgNames[i]) +
                            "; pass every id list as NULL to convert all shapes.");
        if (array_contains_nulls(arr))
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(kIdArgNames[i]) + " contains NULL");
    }
    if (PG_ARGISNULL(4) || PG_GETARG_INT32(4) <= 0)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "batch_size must be a positive number of shapes",
                    PG_ARGISNULL(4) ? "batch_size is NULL" : "batch_size is " + std::to_string(PG_GETARG_INT32(4)),
                    "The default, 50000, suits most databases.");
    a.batch_size = PG_GETARG_INT32(4);
    a.dry_run = !PG_ARGISNULL(5) && PG_GETARG_BOOL(5);
    return a;
}

// Every given id must exist (else 22023, nothing changed).
void check_ids_exist(spi::Session &spi, const Args &a)
{
    static const char *const exists_sql[3] = {
        "SELECT count(*), (array_agg(x ORDER BY x))[1:10]::text FROM (SELECT DISTINCT x FROM unnest($1::int8[]) x) u"
        " WHERE NOT EXISTS (SELECT 1 FROM roi WHERE roi.id = u.x)",
        "SELECT count(*), (array_agg(x ORDER BY x))[1:10]::text FROM (SELECT DISTINCT x FROM unnest($1::int8[]) x) u"
        " WHERE NOT EXISTS (SELECT 1 FROM image WHERE image.id = u.x)",
        "SELECT count(*), (array_agg(x ORDER BY x))[1:10]::text FROM (SELECT DISTINCT x FROM unnest($1::int8[]) x) u"
        " WHERE NOT EXISTS (SELECT 1 FROM shape WHERE shape.id = u.x)",
    };
    static const char *const what[3] = {"ROI", "image", "shape"};
    for (int i = 0; i < 3; i++) {
        if (!a.has[i])
            continue;
        auto r = spi.query(exists_sql[i], {spi::datum(INT8ARRAYOID, a.ids[i])}, true);
        int64_t missing = std::stoll(r.rows[0][0].value_or("0"));
        if (missing > 0)
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                        std::to_string(missing) + " of the " + kIdArgNames[i] + " do not exist",
                        std::string("missing ") + what[i] + " ids (first 10): " + r.rows[0][1].value_or(""),
                        "Check the ids; nothing was changed.");
    }
}

// The shape ids of a subset, sorted.
std::vector<int64_t> select_subset(spi::Session &spi, const Args &a)
{
    // Each part uses an index: shape_pkey, shape(roi), roi(image) then shape(roi).
    std::string sql = "SELECT id FROM (";
    bool first = true;
    auto part = [&](const char *s) {
        sql += first ? "" : " UNION ";
        sql += s;
        first = false;
    };
    if (a.has[0])
        part("SELECT id FROM shape WHERE roi = ANY($1::int8[])");
    if (a.has[1])
        part("SELECT s.id FROM roi r JOIN shape s ON s.roi = r.id WHERE r.image = ANY($2::int8[])");
    if (a.has[2])
        part("SELECT id FROM shape WHERE id = ANY($3::int8[])");
    sql += ") u ORDER BY id";
    std::vector<spi::Param> params;
    for (int i = 0; i < 3; i++)
        params.push_back(a.has[i] ? spi::datum(INT8ARRAYOID, a.ids[i]) : spi::null(INT8ARRAYOID));
    auto r = spi.query(sql, params, true);
    std::vector<int64_t> ids;
    ids.reserve(r.rows.size());
    for (auto &row : r.rows)
        ids.push_back(std::stoll(*row[0]));
    return ids;
}

Datum make_int8_array(const int64_t *ids, int n)
{
    return pg_guard([=] {
        Datum *d = (Datum *)palloc(sizeof(Datum) * (n > 0 ? n : 1));
        for (int i = 0; i < n; i++)
            d[i] = Int64GetDatum(ids[i]);
        ArrayType *arr = construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
        pfree(d);
        return PointerGetDatum(arr);
    });
}

Summary run_batch(spi::Session &spi, const std::string &sql, int64_t lo, int64_t hi, const std::string &direction,
                  int64_t run_id, Datum ids, bool dry_run, size_t want_sample, std::optional<int64_t> covered)
{
    auto r = spi.query(sql, {spi::int8(lo), spi::int8(hi), spi::text(direction), spi::int8(run_id),
                             ids ? spi::datum(INT8ARRAYOID, ids) : spi::null(INT8ARRAYOID),
                             spi::int4((int32_t)want_sample), covered ? spi::int8(*covered) : spi::null(INT8OID)});
    Summary s;
    s.selected = r.int64(0, "selected");
    s.newer = r.int64(0, "newer");
    s.already = r.int64(0, "already");
    s.changed = r.int64(0, "changed");
    s.purged = r.int64(0, "purged");
    int64_t to_convert = r.int64(0, "to_convert"), to_restore = r.int64(0, "to_restore");
    if (dry_run) {
        s.converted = to_convert;
        s.restored = to_restore;
    } else {
        s.converted = r.int64(0, "converted");
        s.restored = r.int64(0, "restored");
        s.raced = to_convert + to_restore - s.converted - s.restored;
    }
    if (auto v = r.get(0, "sample"))
        s.sample = split_json_array(*v);
    if (auto v = r.get(0, "changed_ids"))
        s.changed_ids = parse_id_array(*v);
    return s;
}

Summary run_lean(spi::Session &spi, const std::string &sql, int64_t lo, int64_t hi, const std::string &direction,
                 int64_t run_id, Datum ids, int64_t selected, size_t want_sample)
{
    auto r = spi.query(sql, {spi::int8(lo), spi::int8(hi), spi::text(direction), spi::int8(run_id),
                             ids ? spi::datum(INT8ARRAYOID, ids) : spi::null(INT8ARRAYOID),
                             spi::int4((int32_t)want_sample)});
    Summary s;
    s.selected = selected;
    s.converted = r.int64(0, "converted");
    s.raced = selected - s.converted;
    if (auto v = r.get(0, "sample"))
        s.sample = split_json_array(*v);
    return s;
}

bool journal_overlaps(spi::Session &spi, int64_t lo, int64_t hi)
{
    return spi.scalar("SELECT EXISTS (SELECT 1 FROM omero_upgrade.color_journal WHERE lo_id <= $2 AND hi_id >= $1)",
                      {spi::int8(lo), spi::int8(hi)}, true) == std::optional<std::string>("t");
}

bool journal_empty(spi::Session &spi)
{
    return spi.scalar("SELECT NOT EXISTS (SELECT 1 FROM omero_upgrade.color_journal)", {}, true) ==
           std::optional<std::string>("t");
}

// The ROIs of a subset given by roi_ids and/or image_ids (no shape_ids), and how many shapes they
// hold: counted on the shape(roi) index alone (an index-only scan where the visibility map allows).
Datum roi_scope(spi::Session &spi, const Args &a)
{
    auto r = spi.query("WITH r AS (SELECT x AS id FROM unnest($1::int8[]) x UNION SELECT id FROM roi WHERE image = ANY($2::int8[]))"
                       " SELECT coalesce(array_agg(id), '{}')::text AS rois FROM r",
                       {a.has[0] ? spi::datum(INT8ARRAYOID, a.ids[0]) : spi::null(INT8ARRAYOID),
                        a.has[1] ? spi::datum(INT8ARRAYOID, a.ids[1]) : spi::null(INT8ARRAYOID)},
                       true);
    std::vector<int64_t> rois = parse_id_array(r.str(0, "rois"));
    return make_int8_array(rois.data(), (int)rois.size());
}

// The shapes of those ROIs, counted on the shape(roi) index (index-only where the visibility map
// allows: a vacuumed table).
int64_t count_scope(spi::Session &spi, Datum rois)
{
    return std::stoll(spi.scalar("SELECT count(*) FROM shape WHERE roi = ANY($1)", {spi::datum(INT8ARRAYOID, rois)}, true)
                          .value_or("0"));
}

// Planner settings for one of our statements, transaction-local, put back after it (an error
// aborts the transaction, which puts them back too). The names are ours, never user text.
using Settings = std::vector<std::pair<std::string, std::string>>;
template <class F> auto with_settings(spi::Session &spi, const Settings &set, F &&f)
{
    std::vector<std::string> old;
    for (const auto &[name, value] : set) {
        old.push_back(spi.scalar("SELECT pg_catalog.current_setting($1)", {spi::text(name)}, true).value_or(""));
        spi.exec("SELECT pg_catalog.set_config($1, $2, true)", {spi::text(name), spi::text(value)});
    }
    auto r = f();
    for (size_t i = 0; i < set.size(); i++)
        spi.exec("SELECT pg_catalog.set_config($1, $2, true)", {spi::text(set[i].first), spi::text(old[i])});
    return r;
}
// Every batch statement: no JIT (compiling a plan per batch costs more than it saves).
const Settings kBatchSettings = {{"jit", "off"}};
// A subset's statements: never a scan of the whole table (the planner, seeing ~1% of a big table
// scattered over many pages, would rather read it all, in parallel), so that their cost follows
// the subset's size.
const Settings kSubsetSettings = {{"jit", "off"}, {"enable_seqscan", "off"}};
// One statement for the whole subset (kScopeSql): the planner would rather hash-join the ~1% of
// shapes against a scan of the whole table; the nested loop over the primary key is what keeps it
// proportional to the subset and reads each page once.
const Settings kScopeSettings = {{"jit", "off"}, {"enable_seqscan", "off"}, {"enable_hashjoin", "off"},
                                 {"enable_mergejoin", "off"}};

Summary run_scope(spi::Session &spi, const std::string &sql, const std::string &direction, int64_t run_id, Datum rois,
                  size_t want_sample)
{
    auto r = with_settings(spi, kScopeSettings, [&] {
        return spi.query(sql, {spi::text(direction), spi::int8(run_id), spi::datum(INT8ARRAYOID, rois),
                               spi::int4((int32_t)want_sample)});
    });
    Summary s;
    s.selected = r.int64(0, "selected");
    s.converted = r.int64(0, "converted");
    s.raced = s.selected - s.converted;
    if (auto v = r.get(0, "sample"))
        s.sample = split_json_array(*v);
    return s;
}

std::string join(const std::vector<int64_t> &ids)
{
    std::string s;
    for (size_t i = 0; i < ids.size(); i++)
        s += (i ? "," : "") + std::to_string(ids[i]);
    return s;
}

void report(const char *what, const std::string &direction, const Summary &s, bool dry_run)
{
    std::string msg;
    if (!dry_run && s.converted == 0 && s.restored == 0 && s.already == s.selected && s.selected > 0)
        msg = std::string(what) + ": nothing to do: all " + std::to_string(s.selected) +
              " selected shapes are already converted " + direction;
    else if (s.selected == 0 && s.newer > 0)
        msg = std::string(what) + ": nothing to do: no shape selected but newer ones";
    else if (s.selected == 0)
        msg = std::string(what) + ": nothing to do: no shape selected";
    else
        msg = std::string(what) + ": " + direction + (dry_run ? " (dry run, nothing changed)" : "") + ": " +
              std::to_string(s.selected) + " shapes selected, " + std::to_string(s.converted) +
              (dry_run ? " to convert, " : " converted, ") + std::to_string(s.restored) +
              (dry_run ? " to restore from the journal, " : " restored from the journal, ") +
              std::to_string(s.already) + " already converted";
    std::string detail;
    if (s.changed)
        detail += std::to_string(s.changed) + " shape(s) were changed by OMERO after their conversion and are left "
                  "as they are (ids " + join(s.changed_ids) + (s.changed > (int64_t)s.changed_ids.size() ? ",…" : "") +
                  "). ";
    if (s.purged)
        detail += std::to_string(s.purged) + " shape(s) cannot be restored: their originals were purged from the "
                  "journal. ";
    if (s.raced)
        detail += std::to_string(s.raced) + " shape(s) changed while being converted and are still pending: run "
                  "the same conversion again. ";
    if (s.newer)
        detail += std::to_string(s.newer) + " shape(s) newer than the completed conversion were left alone: they "
                  "were created after it; convert them explicitly by shape ids if they really are " +
                  std::string(direction == "argb_to_rgba" ? "ARGB" : "RGBA") + ". ";
    if (dry_run && !s.sample.empty()) {
        // What the DBA checks before running it for real: shape ids with [before, after] colours.
        detail += "Sample (up to " + std::to_string(Summary::kSample) + " shapes, [before, after]): ";
        for (size_t i = 0; i < s.sample.size(); i++)
            detail += (i ? "; " : "") + s.sample[i];
        detail += ". ";
    }
    const char *m = msg.c_str();
    const char *d = detail.c_str();
    bool warn = s.changed || s.purged || s.raced;
    pg_guard([=] {
        ereport(warn ? WARNING : NOTICE, (errmsg("%s", m), *d ? errdetail("%s", d) : 0));
    });
}

// The conversion of CALL omero_colors_convert (commit per batch) and omero_colors_convert_tx.
std::pair<int64_t, std::string> other_sessions(spi::Session &spi);
void check_rewrite(spi::Session &spi, Journal &jr, const std::string &direction, bool dry_run, bool wait_for_lock);
Summary rewrite_all(spi::Session &spi, Journal &jr, const Args &a, const std::string &F);

Summary convert(FunctionCallInfo fcinfo, bool procedure)
{
    Args a = read_args(fcinfo, true);
    // The procedure's method: 'auto' (the default) rewrites the table in one pass when every shape
    // is asked for, no other session is connected and nothing is journaled, else goes by batches;
    // 'batch' always by batches; 'rewrite' as omero_colors_rewrite (refused unless it applies).
    std::string method = "batch";
    if (procedure && PG_NARGS() > 6) {
        if (PG_ARGISNULL(6))
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "method must not be NULL", "",
                        "Use 'auto' (the default), 'batch' or 'rewrite'.");
        method = pg_guard([&] { return text_to_cstring(PG_GETARG_TEXT_PP(6)); });
        if (method != "auto" && method != "batch" && method != "rewrite")
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown method \"" + method + "\"",
                        "", "Use 'auto' (the default), 'batch' or 'rewrite'.");
        if (method == "rewrite" && !a.all())
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "method 'rewrite' converts every shape",
                        "", "Leave roi_ids, image_ids and shape_ids out, or use method 'batch' or 'auto'.");
    }
    bool nonatomic = false;
    if (procedure) {
        CallContext *cc = (CallContext *)fcinfo->context;
        nonatomic = cc && IsA(cc, CallContext) && !cc->atomic;
        if (!nonatomic && !a.dry_run)
            throw Error(ERRCODE_ACTIVE_SQL_TRANSACTION,
                        "CALL omero_colors_convert commits per batch and cannot run inside a transaction block",
                        "", "CALL it on its own (autocommit), or use SELECT * FROM omero_colors_convert_tx(...) to "
                            "convert inside your transaction.");
    }
    spi::Session spi(nonatomic);
    Journal jr(spi);
    jr.require_omero();
    const std::string F = jr.function_for(a.direction), R = jr.function_for(opposite(a.direction));

    std::string by_batches;  // under 'auto': why not the rewrite
    if (a.all() && !a.dry_run && method == "auto") {
        int64_t others = other_sessions(spi).first;
        if (others > 0)
            by_batches = std::to_string(others) + " other session(s) are connected";
        else if (!journal_empty(spi))
            by_batches = "the journal holds earlier conversions";
        if (!by_batches.empty()) {
            notice("omero_colors_convert: converting by batches, not by the one-pass rewrite: " + by_batches);
        }
    }
    if (a.all() && !a.dry_run && (method == "rewrite" || (method == "auto" && by_batches.empty()))) {
        if (method == "auto") {
            notice("omero_colors_convert: no other session is connected and nothing is journaled: converting every "
                   "shape by the one-pass rewrite (an exclusive lock on shape until it is done; method => 'batch' "
                   "converts by batches instead)");
        }
        check_rewrite(spi, jr, a.direction, false, method == "auto");
        Summary sum = rewrite_all(spi, jr, a, F);
        if (nonatomic)
            spi.commit();
        report("omero_colors_convert", a.direction, sum, false);
        return sum;
    }

    // Our statements run with kBatchSettings (all shapes) or kSubsetSettings.
    auto guarded = [&](auto &&f) { return with_settings(spi, a.all() ? kBatchSettings : kSubsetSettings, f); };
    std::vector<int64_t> ids;
    int64_t total = 0;
    Datum rois = 0;  // a subset of ROIs that fits in one batch: one statement by ROI (kScopeSql, kScopeJournalSql)
    if (a.all())
        total = std::stoll(spi.scalar("SELECT count(*) FROM shape", {}, true).value_or("0"));
    else {
        check_ids_exist(spi, a);
        if (!a.has[2])
            rois = roi_scope(spi, a);  // shapes counted (or bounded) below
        else {
            ids = guarded([&] { return select_subset(spi, a); });
            total = (int64_t)ids.size();
        }
    }

    std::string sql = replace_all(replace_all(kBatchSql, "{MODIFY}", a.dry_run ? kDryModifySql : kModifySql), "{J}",
                                  kBatchJournalSql);
    sql = replace_all(replace_all(sql, "{BT}", ""), "{AT}", "");
    // A ROI scope: b reads the shapes by ROI ($5), the UPDATE finds them again by their ids (k.want).
    std::string scope_sql = replace_all(
        replace_all(replace_all(replace_all(kBatchSql, "{MODIFY}", a.dry_run ? kDryModifySql : kModifySql), "{J}",
                                kScopeJournalSql),
                    "{SEL}", "s.roi = ANY($5)"),
        // The UPDATE finds the rows where b read them (a TID scan, same snapshot, same statement):
        // no second descent of the primary key. A row OMERO updated meanwhile has moved: skipped,
        // counted as raced.
        // (k.want is NULL when the subset is bigger than a batch: then nothing is updated.)
        "{SSEL}", "s.ctid = ANY((SELECT array_agg(t) FROM a WHERE action IN ('convert', 'restore')"
                  " AND (SELECT k.want IS NOT NULL FROM k))::tid[])");
    scope_sql = replace_all(replace_all(scope_sql, "{BT}", ", s.ctid AS t"), "{AT}", ", b.t");
    scope_sql = replace_all(replace_all(replace_all(scope_sql, "{F}", F), "{R}", R), "{LIMIT}", " LIMIT $2");
    sql = replace_all(sql, "{LIMIT}", "");
    std::string lean = with_tail(kLeanSql, "$4", "$3", "$6");
    for (std::string *q : {&sql, &lean}) {
        *q = replace_all(replace_all(*q, "{F}", F), "{R}", R);
        // $5 is NULL in range mode (all shapes); the range alone then picks the batch.
        const char *sel = a.all() ? "s.id BETWEEN $1 AND $2" : "s.id = ANY($5) AND s.id BETWEEN $1 AND $2";
        const char *osel = a.all() ? "o.id BETWEEN $1 AND $2" : "o.id = ANY($5) AND o.id BETWEEN $1 AND $2";
        *q = replace_all(replace_all(replace_all(*q, "{SEL}", sel), "{SSEL}", sel), "{OSEL}", osel);
    }

    // An all-shapes run after a completed one in this direction: shapes created since are left alone.
    const std::optional<int64_t> covered = a.all() ? jr.covered_to(a.direction) : std::nullopt;

    Summary sum;
    if (!a.dry_run) {
        sum.run_id = jr.start_run(a.direction, procedure ? "batch" : "tx", a.ids, a.has, total);
        if (nonatomic)
            spi.commit();
    }

    int64_t last = INT64_MIN;  // range mode: the highest id done
    size_t pos = 0;             // list mode: the next index into ids
    if (rois) {
        // A subset of ROIs that fits in one batch is done by one statement, under the journal lock:
        // with nothing journaled, the lean one-pass statement (its size counted first, on the
        // shape(roi) index); else the one that looks its shapes up in the journal (its size bounded
        // by the statement itself). A bigger subset goes by batches of shape ids.
        if (!a.dry_run)
            jr.lock();
        std::optional<Summary> b;
        if (!a.dry_run && journal_empty(spi)) {
            int64_t n = guarded([&] { return count_scope(spi, rois); });
            if (n <= a.batch_size)
                b = run_scope(spi, replace_all(with_tail(kScopeSql, "$2", "$1", "$4"), "{F}", F), a.direction, sum.run_id, rois, Summary::kSample);
        } else {
            b = guarded([&] {
                return run_batch(spi, scope_sql, INT64_MIN, (int64_t)a.batch_size + 1, a.direction, sum.run_id, rois,
                                 a.dry_run, Summary::kSample, std::nullopt);
            });
            if (b->selected > a.batch_size)
                b.reset();  // nothing was changed: the statement saw more shapes than a batch
        }
        if (b) {
            if (!a.dry_run) {
                jr.count_batch(sum.run_id, b->converted, b->restored, b->already, b->changed, b->purged, b->raced);
                jr.set_selected(sum.run_id, b->selected);
                if (nonatomic)
                    spi.commit();
            }
            total = b->selected;
            sum.add(*b);
            pos = SIZE_MAX;  // done: the loop below has no ids
        } else {
            ids = guarded([&] { return select_subset(spi, a); });
            total = (int64_t)ids.size();
            if (!a.dry_run)
                jr.set_selected(sum.run_id, total);
        }
    }
    Progress progress("colors " + a.direction, "shapes", total);
    for (;;) {
        check_interrupts();
        int64_t lo, hi, n;
        Datum arr = 0;
        if (a.all()) {
            auto r = spi.query("SELECT max(id) AS hi, count(*) AS n"
                               "  FROM (SELECT id FROM shape WHERE id > $1 ORDER BY id LIMIT $2) s",
                               {spi::int8(last), spi::int4(a.batch_size)}, true);
            if (!r.get(0, "hi"))
                break;
            lo = last == INT64_MIN ? INT64_MIN : last + 1;
            hi = r.int64(0, "hi");
            n = r.int64(0, "n");
        } else {
            if (pos >= ids.size())
                break;
            n = (int64_t)std::min(ids.size() - pos, (size_t)a.batch_size);
            lo = ids[pos];
            hi = ids[pos + n - 1];
            arr = make_int8_array(ids.data() + pos, (int)n);
            pos += n;
        }
        if (!a.dry_run)
            jr.lock();
        size_t want = Summary::kSample - std::min(Summary::kSample, sum.sample.size());
        // The lean way converts every shape of the batch: not for one that may hold newer shapes.
        Summary b = guarded([&] {
            return !a.dry_run && (!covered || hi <= *covered) && !journal_overlaps(spi, lo, hi)
                       ? run_lean(spi, lean, lo, hi, a.direction, sum.run_id, arr, n, want)
                       : run_batch(spi, sql, lo, hi, a.direction, sum.run_id, arr, a.dry_run, want, covered);
        });
        if (arr)
            pg_guard([arr] { pfree(DatumGetPointer(arr)); });
        if (!a.dry_run) {
            jr.count_batch(sum.run_id, b.converted, b.restored, b.already, b.changed, b.purged, b.raced);
            if (nonatomic)
                spi.commit();
        }
        sum.add(b);
        last = hi;
        progress.update(sum.selected);
    }
    progress.update(sum.selected);  // not forced: a short run prints no progress line (the summary follows)
    if (!a.dry_run) {
        std::optional<int64_t> covered_to;
        if (a.all())
            covered_to = covered ? covered : last == INT64_MIN ? std::nullopt : std::optional<int64_t>(last);
        jr.finish_run(sum.run_id, covered_to);
        if (nonatomic)
            spi.commit();
    }
    sum.selected = std::max(sum.selected, (int64_t)0);
    report(procedure ? "omero_colors_convert" : "omero_colors_convert_tx", a.direction, sum, a.dry_run);
    return sum;
}

// Client sessions connected to this database besides ours: how many, and who.
std::pair<int64_t, std::string> other_sessions(spi::Session &spi)
{
    auto r = spi.query(
        "SELECT count(*) AS n, string_agg(format('pid %s (%s@%s, %s)', pid, usename, coalesce(nullif(application_name, ''), "
        "'?'), coalesce(client_addr::text, 'local')), '; ' ORDER BY pid) AS list"
        "  FROM pg_catalog.pg_stat_activity"
        " WHERE datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid()"
        // Another role's session shows backend_type NULL to a non-superuser: count it too (but
        // not background processes, which have no user).
        "   AND coalesce(backend_type, 'client backend') = 'client backend' AND usesysid IS NOT NULL",
        {}, true);
    return {r.int64(0, "n"), r.str(0, "list")};
}

// The rewrite's conditions (omero_colors_rewrite, CALL … method => 'rewrite' or 'auto'): the
// database to itself, every shape with its original colours. Throws 55000 otherwise; takes the
// journal lock and (for real) the exclusive lock on shape, NOWAIT unless wait_for_lock.
void check_rewrite(spi::Session &spi, Journal &jr, const std::string &direction, bool dry_run, bool wait_for_lock)
{
    auto others = other_sessions(spi);
    if (others.first > 0)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "omero_colors_rewrite needs the database to itself: " + std::to_string(others.first) +
                        " other session(s) are connected",
                    others.second,
                    "Stop OMERO (bin/omero admin stop) and other clients first, or use CALL omero_colors_convert(...), "
                    "which works while OMERO runs.");
    jr.lock();
    if (!dry_run) {
        if (wait_for_lock)  // (an autovacuum of shape gives way; anything else gets 30 s)
            spi.exec("SELECT pg_catalog.set_config('lock_timeout', '30s', true)");
        spi.exec(wait_for_lock ? "LOCK TABLE shape IN ACCESS EXCLUSIVE MODE"
                               : "LOCK TABLE shape IN ACCESS EXCLUSIVE MODE NOWAIT");
    }
    // Only shapes a conversion in this direction applies to as such: none already in its result
    // state (converted, or restored, by it), none converted by the opposite direction.
    auto [already, opposite_converted] = jr.not_original_for(direction);
    if (already > 0)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "omero_colors_rewrite would convert shapes already converted " + direction,
                    std::to_string(already) + " shape(s) are journaled as already converted " + direction +
                        " (converted by it, or their originals restored by it).",
                    "CALL omero_colors_convert('" + direction + "') converts only what is left.");
    if (opposite_converted > 0)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "omero_colors_rewrite converts only a table whose shapes all have their original colours",
                    std::to_string(opposite_converted) + " shape(s) are journaled as converted " +
                        opposite(direction) + ".",
                    "CALL omero_colors_convert('" + direction + "') restores their originals from the journal.");
    if (auto covered = jr.covered_to(direction)) {
        int64_t newer = std::stoll(spi.scalar("SELECT count(*) FROM shape WHERE id > $1", {spi::int8(*covered)}, true)
                                       .value_or("0"));
        if (newer > 0)
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "omero_colors_rewrite would convert shapes created after a completed " + direction +
                            " conversion",
                        std::to_string(newer) + " shape(s) have ids above " + std::to_string(*covered) +
                            ", the highest the completed conversion covered.",
                        "CALL omero_colors_convert('" + direction + "') leaves them alone and converts what is left.");
    }
}

// The rewrite itself (after check_rewrite), in the current transaction: journal, table, ANALYZE.
Summary rewrite_all(spi::Session &spi, Journal &jr, const Args &a, const std::string &F)
{
    Summary sum;
    if (a.dry_run) {  // (for real, the journal counts them)
        sum.selected = std::stoll(spi.scalar("SELECT count(*) FROM shape", {}, true).value_or("0"));
        sum.converted = sum.selected;
    }
    auto sample = spi.scalar(replace_all(
        "SELECT jsonb_agg(jsonb_build_object('shape_id', id, 'action', 'convert',"
        " 'fillcolor', jsonb_build_array(fillcolor, {F}(fillcolor)),"
        " 'strokecolor', jsonb_build_array(strokecolor, {F}(strokecolor))) ORDER BY id)::text"
        " FROM (SELECT * FROM shape ORDER BY id LIMIT 10) s", "{F}", F), {}, true);
    if (sample)
        sum.sample = split_json_array(*sample);
    if (!a.dry_run) {
        sum.run_id = jr.start_run(a.direction, "rewrite", a.ids, a.has, 0);
        // Progress: the journal, chunk by chunk, against the planner's row estimate; the rewrite
        // itself is one statement (PostgreSQL reports nothing of it), announced by a NOTICE.
        int64_t estimate = std::stoll(spi.scalar("SELECT greatest(reltuples, 0)::int8 FROM pg_catalog.pg_class"
                                                 " WHERE oid = 'shape'::pg_catalog.regclass", {}, true)
                                          .value_or("0"));
        Progress progress("colors rewrite " + a.direction + " (journal)", "shapes", estimate);
        // The index builds of the rewrite sort every row of each index: give them at least 512 MB
        // (only ever raised, for this transaction).
        std::string mwm = *spi.scalar("SELECT (greatest(pg_catalog.pg_size_bytes(pg_catalog.current_setting("
                                      "'maintenance_work_mem')), 512 * 1024 * 1024) / 1024)::text || 'kB'",
                                      {}, true);
        with_settings(spi, {{"jit", "off"}, {"maintenance_work_mem", mwm}}, [&] {
            sum.selected = jr.journal_whole_table(sum.run_id, a.direction, [&](int64_t n) { progress.update(n); });
            progress.update(sum.selected);
            jr.set_selected(sum.run_id, sum.selected);
            std::string table = *spi.scalar("SELECT 'shape'::regclass::text", {}, true);
            notice("omero_colors_rewrite: " + std::to_string(sum.selected) +
                   " shapes journaled; rewriting the table and rebuilding its indexes");
            // A USING expression that is not a plain column makes PostgreSQL rewrite the table (and
            // rebuild its indexes) in one pass, instead of writing a new version of every row.
            spi.exec("ALTER TABLE " + table + " ALTER COLUMN fillcolor TYPE int4 USING " + F +
                     "(fillcolor), ALTER COLUMN strokecolor TYPE int4 USING " + F + "(strokecolor)");
            spi.exec("ANALYZE " + table);  // the rewrite dropped the two columns' statistics
            return 0;
        });
        sum.converted = sum.selected;
        jr.count_batch(sum.run_id, sum.converted, 0, 0, 0, 0, 0);
        auto top = spi.scalar("SELECT max(id) FROM shape", {}, true);
        jr.finish_run(sum.run_id, top ? std::optional<int64_t>(std::stoll(*top)) : std::nullopt);
    }
    return sum;
}

// The fast path: one journal insert and one table rewrite, in one transaction.
Summary rewrite(FunctionCallInfo fcinfo)
{
    Args a = read_args(fcinfo, false);
    spi::Session spi;
    Journal jr(spi);
    jr.require_omero();
    check_rewrite(spi, jr, a.direction, a.dry_run, false);
    Summary sum = rewrite_all(spi, jr, a, jr.function_for(a.direction));
    report("omero_colors_rewrite", a.direction, sum, a.dry_run);
    return sum;
}

Datum summary_row(FunctionCallInfo fcinfo, const std::string &direction, bool dry_run, const Summary &s)
{
    std::string sample = "[";
    for (size_t i = 0; i < s.sample.size(); i++)
        sample += (i ? ", " : "") + s.sample[i];
    sample += "]";
    const char *sj = sample.c_str();
    Datum js = pg_guard([sj] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(sj)); });
    srf::Writer out(fcinfo);
    using srf::Cell;
    out.put({s.run_id ? Cell::int8(s.run_id) : Cell::null(), Cell::of(direction), Cell::boolean(dry_run),
             Cell::int8(s.selected), Cell::int8(s.converted), Cell::int8(s.restored), Cell::int8(s.already),
             Cell::int8(s.changed), Cell::int8(s.purged), Cell::int8(s.raced), Cell::datum(js)});
    return out.done();
}

} // namespace
} // namespace ou::colors

using namespace ou;

OU_FUNCTION(omero_argb_to_rgba)
{
    return Int32GetDatum(colors::argb_to_rgba(PG_GETARG_INT32(0)));
}

OU_FUNCTION(omero_rgba_to_argb)
{
    return Int32GetDatum(colors::rgba_to_argb(PG_GETARG_INT32(0)));
}

OU_FUNCTION(omero_colors_convert)
{
    return boundary([&] {
        colors::convert(fcinfo, true);
        PG_RETURN_VOID();
    });
}

OU_FUNCTION(omero_colors_convert_tx)
{
    return boundary([&] {
        bool dry = !PG_ARGISNULL(5) && PG_GETARG_BOOL(5);
        colors::Summary s = colors::convert(fcinfo, false);
        std::string dir = pg_guard([&] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
        return colors::summary_row(fcinfo, dir, dry, s);
    });
}

OU_FUNCTION(omero_colors_rewrite)
{
    return boundary([&] {
        bool dry = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
        colors::Summary s = colors::rewrite(fcinfo);
        std::string dir = pg_guard([&] { return text_to_cstring(PG_GETARG_TEXT_PP(0)); });
        return colors::summary_row(fcinfo, dir, dry, s);
    });
}
