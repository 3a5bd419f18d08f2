// The colour conversion statements, built from named parts (no placeholders in the text). Every
// function is pg_catalog-qualified and our formulas carry the extension's schema: these statements
// write OMERO's shape table and run as OMERO's code (with OMERO's schema on the search_path, see
// omero_db.hpp), so nothing in them may resolve through it. Their operators all have operands of
// built-in types with an exact pg_catalog operator (int4, int8, text, tid), which a same-named
// operator elsewhere cannot outrank.
#include "colors_sql.hpp"

#include "color_journal.hpp"

namespace ou::colors {
namespace {

// The shapes a batch selects, on alias `s` (Range: $1..$2; List: also in $5; Rois: of the ROIs in $5).
std::string where_shapes(Selection sel, const char *s)
{
    const std::string a = s;
    switch (sel) {
    case Selection::Range: return a + ".id BETWEEN $1 AND $2";
    case Selection::List: return a + ".id = ANY ($5) AND " + a + ".id BETWEEN $1 AND $2";
    case Selection::Rois: return a + ".roi = ANY ($5)";
    }
    return "false";
}

// b: the batch's shapes as they are now. A ROI scope first lists its shape ids alone (ids, at most
// one more than a batch, for k and the journal lookup); b, read after the journal lookup and not
// stored, streams each shape (with its ctid) to the UPDATE, which writes it while its page is still
// in shared buffers: the subset's heap pages are read twice in all, never three times.
std::string batch_shapes(const Names &n, Selection sel)
{
    if (sel == Selection::Rois)
        return "WITH ids AS MATERIALIZED (SELECT s.id FROM " + n.shape + " s WHERE " + where_shapes(sel, "s") +
               " LIMIT $2),\n";
    return "WITH b AS MATERIALIZED (\n"
           "    SELECT s.id, s.fillcolor AS f, s.strokecolor AS st, s.version AS v, s.update_id AS u\n      FROM " +
           n.shape + " s WHERE " + where_shapes(sel, "s") + "),\n";
}

// j: the journal entries of the batch's shapes (newest chunk first per shape), from the chunks
// whose id range overlaps it; color_journal_pick returns only the elements asked about.
std::string batch_journal(const Names &n, Selection sel)
{
    if (sel != Selection::Rois)
        return "j AS (\n"
               "    SELECT DISTINCT ON (e.id) e.id, c.kind, c.direction, c.purged, e.f, e.st, e.v, e.u\n"
               "      FROM omero_upgrade.color_journal c\n"
               "     CROSS JOIN LATERAL omero_upgrade.color_journal_pick(c.shape_ids, c.fill_before, c.stroke_before,\n"
               "                        c.version_after, c.update_after, $1, $2, $5) AS e\n"
               "     WHERE c.lo_id <= $2 AND c.hi_id >= $1\n"
               "     ORDER BY e.id, c.chunk_id DESC),\n";
    // A ROI scope: the ids come from ids, read with LIMIT $2 (one more than a batch): when it is
    // full, the subset is too big for one statement, k.want is NULL, b is empty, nothing is
    // updated or journaled, and the caller goes by batches.
    return "k AS (SELECT pg_catalog.min(id) AS lo, pg_catalog.max(id) AS hi, pg_catalog.count(*) AS n,\n"
           "             CASE WHEN pg_catalog.count(*) < $2 THEN pg_catalog.array_agg(id ORDER BY id) END AS want FROM ids),\n"
           "j AS (\n"
           "    SELECT DISTINCT ON (e.id) e.id, c.kind, c.direction, c.purged, e.f, e.st, e.v, e.u\n"
           "      FROM k JOIN omero_upgrade.color_journal c ON c.lo_id <= k.hi AND c.hi_id >= k.lo\n"
           "     CROSS JOIN LATERAL omero_upgrade.color_journal_pick(c.shape_ids, c.fill_before, c.stroke_before,\n"
           "                        c.version_after, c.update_after, k.lo, k.hi, k.want) AS e\n"
           "     ORDER BY e.id, c.chunk_id DESC),\n"
           "b AS (\n"
           "    SELECT s.id, s.fillcolor AS f, s.strokecolor AS st, s.version AS v, s.update_id AS u, s.ctid AS t\n"
           "      FROM " + n.shape + " s WHERE " + where_shapes(sel, "s") + " AND (SELECT k.want IS NOT NULL FROM k)),\n";
}

// a: what to do with each shape. $3 direction; $7 (all shapes only) the covered_to of a completed
// all-shapes conversion in this direction, above which shapes with no journal entry are 'newer'.
std::string batch_actions(const Names &n, Selection sel)
{
    return "a AS MATERIALIZED (\n"
           "    SELECT b.id, b.f, b.st, j.f AS of, j.st AS ost" + std::string(sel == Selection::Rois ? ", b.t" : "") + ",\n"
           "           CASE WHEN j.id IS NULL AND b.id > $7 THEN 'newer'\n"
           "                WHEN j.id IS NULL THEN 'convert'\n"
           "                WHEN j.direction = $3 THEN 'already'  -- converted, or restored, by this direction\n"
           "                WHEN j.kind = 'restore' THEN 'convert'\n"
           "                WHEN j.purged THEN 'purged'\n"
           "                WHEN b.v IS NOT DISTINCT FROM j.v AND b.u IS NOT DISTINCT FROM j.u\n"
           "                 AND b.f IS NOT DISTINCT FROM " + n.R + "(j.f) AND b.st IS NOT DISTINCT FROM " + n.R +
           "(j.st) THEN 'restore'\n"
           "                ELSE 'changed' END AS action\n"
           "      FROM b LEFT JOIN j ON j.id = b.id),\n";
}

// w, ins: the update and its journal chunks ($4 run id). Rows whose colours changed between our
// read and our update (OMERO writing concurrently) are left alone by the last two conditions and
// counted as raced: still pending, done by the next run. A ROI scope updates each row where b
// read it, as b streams it (a TID scan per row, same snapshot, same statement): no descent of the
// primary key, and the page is still in shared buffers; a row OMERO updated meanwhile has moved:
// skipped, counted as raced.
std::string batch_modify(const Names &n, Selection sel)
{
    const std::string target = sel == Selection::Rois ? "s.ctid = a.t" : where_shapes(sel, "s");
    return "w AS (\n"
           "    UPDATE " + n.shape + " s\n"
           "       SET fillcolor   = CASE WHEN a.action = 'convert' THEN " + n.F + "(a.f)  ELSE a.of  END,\n"
           "           strokecolor = CASE WHEN a.action = 'convert' THEN " + n.F + "(a.st) ELSE a.ost END\n"
           "      FROM a\n"
           "     WHERE s.id = a.id AND " + target + " AND a.action IN ('convert', 'restore')\n"
           "       AND s.fillcolor IS NOT DISTINCT FROM a.f AND s.strokecolor IS NOT DISTINCT FROM a.st\n"
           "    RETURNING s.id, a.f, a.st, s.version, s.update_id, a.action),\n" +
           journal_insert_cte("$4", "w.action", "$3", "FROM w GROUP BY w.action",
                              "kind, pg_catalog.cardinality(shape_ids) AS n") +
           "\n";
}

// The sample's JSON object for alias-less columns id, f, st and the colours after (`after_f`, `after_st`).
std::string sample_object(const std::string &action, const std::string &after_f, const std::string &after_st)
{
    return "pg_catalog.jsonb_build_object('shape_id', id, 'action', " + action +
           ", 'fillcolor', pg_catalog.jsonb_build_array(f, " + after_f +
           "), 'strokecolor', pg_catalog.jsonb_build_array(st, " + after_st + "))";
}

// The counts of a batch, the chunks journaled, a sample of $6 shapes and the first changed ids.
// ins is read first (the lateral reference makes it the outer side): so the UPDATE is what pulls
// the shapes through a, and the counts then read a as stored. A ROI scope too big for one
// statement (k.want NULL) reports the shapes it saw in ids, more than a batch.
std::string batch_counts(const Names &n, Selection sel)
{
    const std::string selected = "pg_catalog.count(*) FILTER (WHERE action <> 'newer')";
    return "SELECT i.converted, i.restored, c.*\n"
           "  FROM (SELECT coalesce(pg_catalog.sum(n) FILTER (WHERE kind = 'convert'), 0) AS converted,\n"
           "               coalesce(pg_catalog.sum(n) FILTER (WHERE kind = 'restore'), 0) AS restored FROM ins) i\n"
           " CROSS JOIN LATERAL (\n"
           "SELECT " + (sel == Selection::Rois ? "CASE WHEN (SELECT k.want IS NULL FROM k) THEN (SELECT k.n FROM k) ELSE " +
                                                     selected + " END"
                                               : selected) + " AS selected,\n"
           "       pg_catalog.count(*) FILTER (WHERE action = 'newer') AS newer,\n"
           "       pg_catalog.count(*) FILTER (WHERE action = 'convert') AS to_convert,\n"
           "       pg_catalog.count(*) FILTER (WHERE action = 'restore') AS to_restore,\n"
           "       pg_catalog.count(*) FILTER (WHERE action = 'already') AS already,\n"
           "       pg_catalog.count(*) FILTER (WHERE action = 'changed') AS changed,\n"
           "       pg_catalog.count(*) FILTER (WHERE action = 'purged') AS purged,\n"
           "       (SELECT pg_catalog.jsonb_agg(" +
           sample_object("action", "CASE WHEN action = 'convert' THEN " + n.F + "(f) ELSE of END",
                         "CASE WHEN action = 'convert' THEN " + n.F + "(st) ELSE ost END") +
           " ORDER BY id)::pg_catalog.text\n"
           "          FROM (SELECT * FROM a WHERE action IN ('convert', 'restore') ORDER BY id LIMIT $6) s) AS sample,\n"
           "       (SELECT pg_catalog.array_agg(id ORDER BY id)::pg_catalog.text FROM (\n"
           "            SELECT id FROM a WHERE action = 'changed' ORDER BY id LIMIT 10) c) AS changed_ids\n"
           "  FROM a WHERE i.converted IS NOT NULL) c\n";
}

// After w (the rows converted, with their old colours): journal them as one 'convert' chunk,
// then the count converted and a sample. run, dir and sample: the parameters holding them.
std::string convert_tail(const Names &n, const char *run, const char *dir, const char *sample)
{
    return journal_insert_cte(run, "'convert'", dir, "FROM w HAVING pg_catalog.count(*) > 0",
                              "pg_catalog.cardinality(shape_ids) AS n") +
           "\nSELECT (SELECT coalesce(pg_catalog.sum(n), 0) FROM ins) AS converted,\n"
           "       (SELECT pg_catalog.jsonb_agg(" +
           sample_object("'convert'", n.F + "(f)", n.F + "(st)") + " ORDER BY id)::pg_catalog.text\n"
           "          FROM (SELECT * FROM w ORDER BY id LIMIT " + sample + ") s) AS sample";
}

} // namespace

// $1 lo, $2 hi (Rois: one more than a batch), $3 direction, $4 run id, $5 ids or ROIs (NULL for
// Range), $6 sample size, $7 covered_to (or NULL).
std::string batch_sql(const Names &n, Selection sel, bool dry_run)
{
    // In a dry run: the same counts, nothing written (so it works in a READ ONLY transaction too).
    const std::string modify =
        dry_run ? "ins AS (SELECT NULL::pg_catalog.text AS kind, 0::pg_catalog.int8 AS n WHERE false)\n"
                : batch_modify(n, sel);
    return batch_shapes(n, sel) + batch_journal(n, sel) + batch_actions(n, sel) + modify + batch_counts(n, sel);
}

// The common case, a batch no journal chunk overlaps: no state to look up, so just update and
// journal. The self-join gives the old values. $1 lo, $2 hi, $3 direction, $4 run id, $5 ids
// (List), $6 sample size.
std::string lean_sql(const Names &n, Selection sel)
{
    return "WITH w AS (\n"
           "    UPDATE " + n.shape + " s SET fillcolor = " + n.F + "(o.fillcolor), strokecolor = " + n.F +
           "(o.strokecolor)\n"
           "      FROM " + n.shape + " o\n"
           "     WHERE o.id = s.id AND " + where_shapes(sel, "s") + " AND " + where_shapes(sel, "o") + "\n"
           "       AND s.fillcolor IS NOT DISTINCT FROM o.fillcolor AND s.strokecolor IS NOT DISTINCT FROM o.strokecolor\n"
           "    RETURNING s.id, o.fillcolor AS f, o.strokecolor AS st, s.version, s.update_id),\n" +
           convert_tail(n, "$4", "$3", "$6");
}

// The fast subset: ROIs (given, or those of the given images) whose shapes fit in one batch, none
// of them journaled. One statement reads each shape once and updates it right away: the self-join
// by primary key (a nested loop, see run_scope) finds the same heap page still in the buffer cache,
// where selecting the ids first and updating them by id later reads every page twice (a 1% subset
// is scattered over ~40% of the table's pages: more than shared_buffers). o is read first by the
// UPDATE (streaming); its count, for "selected", comes after, from the stored rows.
// $1 direction, $2 run id, $3 ROI ids, $4 sample size.
std::string scope_sql(const Names &n)
{
    return "WITH o AS MATERIALIZED (\n"
           "    SELECT id, fillcolor, strokecolor FROM " + n.shape + " WHERE roi = ANY ($3)),\n"
           "w AS (\n"
           "    UPDATE " + n.shape + " s SET fillcolor = " + n.F + "(o.fillcolor), strokecolor = " + n.F +
           "(o.strokecolor)\n"
           "      FROM o\n"
           "     WHERE s.id = o.id\n"
           "       AND s.fillcolor IS NOT DISTINCT FROM o.fillcolor AND s.strokecolor IS NOT DISTINCT FROM o.strokecolor\n"
           "    RETURNING s.id, o.fillcolor AS f, o.strokecolor AS st, s.version, s.update_id),\n" +
           convert_tail(n, "$2", "$1", "$4") + ",\n       (SELECT pg_catalog.count(*) FROM o) AS selected\n";
}

std::string rewrite_sample_sql(const Names &n)
{
    return "SELECT pg_catalog.jsonb_agg(" + sample_object("'convert'", n.F + "(f)", n.F + "(st)") +
           " ORDER BY id)::pg_catalog.text"
           " FROM (SELECT id, fillcolor AS f, strokecolor AS st FROM " + n.shape + " ORDER BY id LIMIT 10) s";
}

} // namespace ou::colors
