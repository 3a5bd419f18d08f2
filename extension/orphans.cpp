// Orphan annotations: the official delete-ns-orphans rule as a scan, a summary, an archived
// batched delete and a restore (README, "Orphan annotations").
//
// The rule: discriminator one of six basic kinds, ns NULL, '' or openmicroscopy.org/…, and no
// row anywhere refers to the annotation. Referring rows are found from the catalog (every
// foreign key into annotation), not from a fixed list: on OMERO 5.4 that is the child column of
// the 28 <object>annotationlink tables, annotationannotationlink.parent and
// annotation_mapvalue.annotation_id (which only ever points at map annotations, outside the
// rule). Each reference becomes an anti-join; unlike the official chain of NOT IN sub-selects,
// an anti-join needs no work_mem-sized hash of a whole link table and never degrades into a
// quadratic rescan.
//
// Concurrency of the delete: per batch, the rows are first locked FOR UPDATE (waiting for any
// transaction that holds a FOR KEY SHARE lock on them, which is what a foreign-key check of a
// new link takes), then, in a new statement and so a new snapshot, deleted only where the rule
// still holds. A link committed before the lock is seen by that re-check; a link whose check
// comes after the lock waits for us and then fails on the deleted row. No dangling link either
// way; PostgreSQL's own foreign keys stay in force as the last guard.
#include "omero.hpp"
#include "progress.hpp"
#include "srf.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
}

#include <algorithm>

namespace ou {
namespace {

const int64_t max_batch_size = 1000000;

struct Reference {
    std::string table;       // regclass text: quoted, schema-qualified when needed
    std::string constraint;
    std::string columns;     // referencing columns, for display
    std::string cond;        // r.<col> = a.<col> [AND …]
    std::string kind;        // link | link parent | other
};

struct Rule {
    std::string annotation;  // regclass text of OMERO's annotation table
    std::string event;       // regclass text of event, or "" (creation_time then NULL)
    std::vector<Reference> refs;
};

Rule discover(spi::Session &spi)
{
    Rule rule;
    auto r = spi.query("SELECT pg_catalog.to_regclass('annotation')::text AS a,"
                       "       pg_catalog.to_regclass('event')::text AS e",
                       {}, true);
    if (!r.get(0, "a"))
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "not an OMERO database: there is no annotation table",
                    "No table named annotation on the search_path (" +
                        spi.scalar("SELECT current_setting('search_path')", {}, true).value_or("") + ").",
                    "Connect to the OMERO database, or set search_path to the schema of its tables.");
    rule.annotation = r.str(0, "a");
    rule.event = r.str(0, "e");
    // One row per foreign key into annotation (constraints cloned onto partitions skipped);
    // identifiers quoted by format('%I') / regclass output, so the SQL built from them is safe.
    auto f = spi.query(
        "SELECT c.conrelid::regclass::text AS tbl, c.conname::text AS con,"
        "       string_agg(format('r.%I = a.%I', fa.attname, pa.attname), ' AND ' ORDER BY k.ord) AS cond,"
        "       string_agg(fa.attname::text, ', ' ORDER BY k.ord) AS cols,"
        "       CASE WHEN count(*) = 1 AND min(pa.attname::text) = 'id' AND min(fa.attname::text) = 'child'"
        "                 AND rel.relname LIKE '%annotationlink' THEN 'link'"
        "            WHEN count(*) = 1 AND min(pa.attname::text) = 'id' AND min(fa.attname::text) = 'parent'"
        "                 AND rel.relname = 'annotationannotationlink' THEN 'link parent'"
        "            ELSE 'other' END AS kind"
        "  FROM pg_catalog.pg_constraint c"
        "  JOIN pg_catalog.pg_class rel ON rel.oid = c.conrelid"
        " CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(fk, pk, ord)"
        "  JOIN pg_catalog.pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = k.fk"
        "  JOIN pg_catalog.pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk"
        " WHERE c.contype = 'f' AND c.confrelid = pg_catalog.to_regclass('annotation') AND c.conparentid = 0"
        " GROUP BY c.oid, c.conrelid, c.conname, rel.relname"
        " ORDER BY 5, rel.relname, c.conname",
        {}, true);
    for (size_t i = 0; i < f.rows.size(); i++)
        rule.refs.push_back(Reference{f.str(i, "tbl"), f.str(i, "con"), f.str(i, "cols"), f.str(i, "cond"),
                                      f.str(i, "kind")});
    return rule;
}

// The kinds and namespaces of the rule, on alias a; $1 is include_ns (text[], may be NULL).
const char *const kind_and_ns =
    "a.discriminator IN ('/basic/bool/', '/basic/num/double/', '/basic/num/long/', '/basic/term/',"
    "                    '/basic/time/', '/basic/text/comment/')"
    " AND (a.ns IS NULL OR a.ns = '' OR a.ns LIKE 'openmicroscopy.org/%' OR a.ns = ANY($1::text[]))";

// For a scan, the planner turns each NOT EXISTS into an anti-join and picks hash, merge or
// index nested loop per table. For the re-check of a batch of known ids, OFFSET 0 keeps each one a
// per-row sub-plan (an index probe, stopping at the first reference found): as an anti-join the
// planner may hash a whole link table for every batch.
std::string orphan_predicate(const Rule &rule, bool per_row = false)
{
    std::string s = kind_and_ns;
    for (const Reference &ref : rule.refs)
        s += " AND NOT EXISTS (SELECT 1 FROM " + ref.table + " r WHERE " + ref.cond + (per_row ? " OFFSET 0)" : ")");
    return s;
}

const char *const ns_kind_sql = "CASE WHEN a.ns IS NULL THEN 'null' WHEN a.ns = '' THEN 'empty'"
                                " WHEN a.ns LIKE 'openmicroscopy.org/%' THEN 'openmicroscopy.org/'"
                                " ELSE 'custom' END";

// include_ns argument: NULL or a one-dimensional array without NULLs.
spi::Param include_ns_param(FunctionCallInfo fcinfo, int argno, spi::Session &spi)
{
    if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
        return spi::null(TEXTARRAYOID);
    spi::Param p = spi::datum(TEXTARRAYOID, PG_GETARG_DATUM(argno));
    auto bad = spi.scalar("SELECT array_ndims($1) > 1 OR array_position($1, NULL) IS NOT NULL", {p}, true);
    if (bad && *bad == "t")
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "include_ns must be a one-dimensional array of namespaces",
                    "It holds a NULL or has more than one dimension.",
                    "Give exact namespace values, e.g. ARRAY['example.org/lab'].");
    return p;
}

int32_t batch_size_arg(FunctionCallInfo fcinfo, int argno)
{
    if (PG_ARGISNULL(argno))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "batch_size must not be NULL", "",
                    "Give a batch size from 1 to " + std::to_string(max_batch_size) + ".");
    int32_t b = PG_GETARG_INT32(argno);
    if (b < 1 || b > max_batch_size)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "batch_size out of range: " + std::to_string(b),
                    "A batch holds 1 to " + std::to_string(max_batch_size) + " annotations.",
                    "The default, 10000, suits most databases.");
    return b;
}

// A column of a fetched row; callers only read columns the query defines, so no error is possible.
Datum col(HeapTuple tup, TupleDesc desc, int n, bool *isnull) { return SPI_getbinval(tup, desc, n, isnull); }

Datum int8_array(const int64_t *ids, int n)
{
    return pg_guard([ids, n] {
        Datum *d = (Datum *)palloc(sizeof(Datum) * (n > 0 ? n : 1));
        for (int i = 0; i < n; i++)
            d[i] = Int64GetDatum(ids[i]);
        ArrayType *a = construct_array(d, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
        pfree(d);
        return PointerGetDatum(a);
    });
}

// fast => true: the DELETE runs with session_replication_role = replica, so PostgreSQL's
// per-row foreign-key triggers on annotation (two index probes per foreign key per row, 60 on
// OMERO 5.4: most of the time of a delete) do not fire. Sound only because the same statement
// re-checks every foreign key into annotation after the rows are locked FOR UPDATE, in READ
// COMMITTED (a fresh snapshot), while a concurrent link insert's own foreign-key check still
// runs in its session and waits for our lock. Allowed only when nothing else would be skipped:
// no user trigger and no rule on annotation. Needs a superuser (the setting is superuser-only).
void check_fast_allowed(spi::Session &spi, const Rule &rule)
{
    if (spi.scalar("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user").value_or("f") != "t")
        throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "fast => true needs a superuser",
                    "It sets session_replication_role, which only a superuser may change.",
                    "Connect as a superuser, or use fast => false (the default).");
    auto other = spi.scalar(
        "SELECT string_agg(x, ', ') FROM ("
        " SELECT 'trigger ' || quote_ident(tgname) AS x FROM pg_catalog.pg_trigger"
        "  WHERE tgrelid = pg_catalog.to_regclass('annotation') AND NOT tgisinternal"
        " UNION ALL SELECT 'rule ' || quote_ident(rulename) FROM pg_catalog.pg_rewrite"
        "  WHERE ev_class = pg_catalog.to_regclass('annotation') AND rulename <> '_RETURN') AS t");
    if (other)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "fast => true would also skip triggers or rules of " + rule.annotation, "On " + rule.annotation +
                        ": " + *other + ".",
                    "Use fast => false (the default), which keeps every trigger.");
}

struct DeleteResult {
    std::optional<int64_t> run_id;
    bool dry_run = true;
    int64_t scanned = 0, deleted = 0, skipped = 0, bytes = 0;
    int batches = 0;
};

// The delete, shared by the function (one transaction) and the procedure (commit per batch).
DeleteResult run_delete(FunctionCallInfo fcinfo, bool nonatomic)
{
    DeleteResult res;
    if (PG_ARGISNULL(0))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "dry_run must not be NULL", "",
                    "Pass true to count only, false to delete.");
    res.dry_run = PG_GETARG_BOOL(0);
    int32_t batch = batch_size_arg(fcinfo, 1);
    if (PG_ARGISNULL(3))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "fast must not be NULL", "",
                    "Pass false (the default) to keep PostgreSQL's foreign-key triggers.");
    const bool fast = PG_GETARG_BOOL(3);
    spi::Session spi(nonatomic);
    spi::Param ns = include_ns_param(fcinfo, 2, spi);
    // The re-check of every batch needs include_ns after commits: a copy in SPI's procedure
    // memory, which lives until the session ends.
    if (!ns.isnull) {
        Datum v = ns.value;
        ns.value = pg_guard([v] { return datumCopy(v, false, -1); });
    }
    Rule rule = discover(spi);
    const std::string pred = orphan_predicate(rule);

    if (fast && !res.dry_run)
        check_fast_allowed(spi, rule);

    // The scan: ids and row sizes, in id order.
    std::vector<int64_t> ids;
    spi::for_each_row("SELECT a.id, pg_catalog.pg_column_size(a.*)::int8 FROM " + rule.annotation + " a WHERE " + pred +
                     " ORDER BY a.id",
                 {ns}, [&](HeapTuple tup, TupleDesc desc) {
                     bool null1, null2;
                     ids.push_back(DatumGetInt64(col(tup, desc, 1, &null1)));
                     res.bytes += DatumGetInt64(col(tup, desc, 2, &null2));
                 });
    res.scanned = (int64_t)ids.size();
    if (res.dry_run) {
        res.deleted = res.scanned;
        res.batches = (int)((ids.size() + batch - 1) / batch);
        notice("omero_orphans_delete: dry run: " + std::to_string(res.scanned) + " orphan annotation(s), " +
               std::to_string(res.bytes) + " bytes, would be deleted in " + std::to_string(res.batches) +
               " batch(es); nothing changed");
        return res;
    }
    res.bytes = 0;

    // The run row; delete runs are serialised by the lock (two at once would fight over rows).
    spi.exec("LOCK TABLE omero_upgrade.orphan_run IN EXCLUSIVE MODE");
    res.run_id = std::stoll(*spi.scalar(
        "INSERT INTO omero_upgrade.orphan_run (id, status, include_ns, batch_size, scanned)"
        " SELECT coalesce(max(id), 0) + 1, 'running', $1, $2, $3 FROM omero_upgrade.orphan_run RETURNING id",
        {ns, spi::int4(batch), spi::int8(res.scanned)}));
    notice("omero_orphans_delete: run " + std::to_string(*res.run_id) + ": " + std::to_string(res.scanned) +
           " orphan annotation(s) to delete in batches of " + std::to_string(batch));
    spi::Param run = spi::int8(*res.run_id);
    if (nonatomic)
        spi.commit();

    const std::string lock_sql = "SELECT count(*) FROM (SELECT 1 FROM " + rule.annotation +
                                 " a WHERE a.id = ANY($2) ORDER BY a.id FOR UPDATE) AS l";
    const std::string delete_sql =
        "WITH d AS (DELETE FROM " + rule.annotation + " a WHERE a.id = ANY($2) AND " + orphan_predicate(rule, true) +
        "           RETURNING a AS r, pg_catalog.pg_column_size(a.*) AS bytes),"
        "     i AS (INSERT INTO omero_upgrade.orphan_archive (run_id, annotation_id, row_image)"
        "           SELECT $3, (d.r).id, pg_catalog.to_jsonb(d.r) FROM d)"
        " SELECT count(*) AS n, coalesce(sum(d.bytes), 0)::int8 AS bytes FROM d";
    const std::string update_sql = "UPDATE omero_upgrade.orphan_run SET deleted = deleted + $2, skipped = skipped + $3,"
                                   " bytes = bytes + $4 WHERE id = $1";
    const std::string srr = spi.scalar("SELECT current_setting('session_replication_role')").value_or("origin");
    Progress progress("orphans delete", "annotations", res.scanned);
    for (size_t lo = 0; lo < ids.size(); lo += batch) {
        check_interrupts();
        int n = (int)std::min<size_t>(batch, ids.size() - lo);
        spi::Param arr = spi::datum(INT8ARRAYOID, int8_array(ids.data() + lo, n));
        spi.exec(lock_sql, {ns, arr});
        if (fast) {
            // Checked per batch: the procedure's new transactions take the session's default.
            if (spi.scalar("SELECT current_setting('transaction_isolation')").value_or("") != "read committed")
                throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "fast => true needs READ COMMITTED",
                            "Under a transaction snapshot the re-check could miss a link committed meanwhile.",
                            "Run it in a READ COMMITTED transaction, or with fast => false.");
            spi.exec("SELECT pg_catalog.set_config('session_replication_role', 'replica', true)");
        }
        auto d = spi.query(delete_sql, {ns, arr, run});
        if (fast)
            spi.exec("SELECT pg_catalog.set_config('session_replication_role', $1, true)", {spi::text(srr)});
        int64_t deleted = d.int64(0, "n"), bytes = d.int64(0, "bytes");
        spi.exec(update_sql, {run, spi::int8(deleted), spi::int8(n - deleted), spi::int8(bytes)});
        res.deleted += deleted;
        res.skipped += n - deleted;
        res.bytes += bytes;
        res.batches++;
        if (nonatomic)
            spi.commit();
        progress.update((int64_t)(lo + n));
    }
    progress.finish(res.scanned);
    spi.exec("UPDATE omero_upgrade.orphan_run SET status = 'deleted', finished_at = pg_catalog.clock_timestamp()"
             " WHERE id = $1",
             {run});
    if (nonatomic)
        spi.commit();
    notice("omero_orphans_delete: run " + std::to_string(*res.run_id) + ": deleted " + std::to_string(res.deleted) +
           " annotation(s) (" + std::to_string(res.bytes) + " bytes) into omero_upgrade.orphan_archive" +
           (res.skipped ? ", skipped " + std::to_string(res.skipped) + " linked since the scan" : "") +
           "; undo with SELECT omero_orphans_restore(" + std::to_string(*res.run_id) + ")");
    return res;
}

} // namespace
} // namespace ou

using namespace ou;

OU_FUNCTION(omero_orphans_references)
{
    return boundary([&] {
        Rule rule;
        {
            spi::Session spi;
            rule = discover(spi);
        }
        srf::Writer out(fcinfo);
        for (const Reference &r : rule.refs)
            out.put({srf::Cell::of(r.table), srf::Cell::of(r.columns), srf::Cell::of(r.kind),
                     srf::Cell::of(r.constraint)});
        return out.done();
    });
}

OU_FUNCTION(omero_orphans_scan)
{
    return boundary([&] {
        srf::Writer out(fcinfo);
        spi::Session spi;
        spi::Param ns = include_ns_param(fcinfo, 0, spi);
        Rule rule = discover(spi);
        std::string time = rule.event.empty() ? "NULL::timestamp" : "(SELECT e.\"time\"::timestamp FROM " + rule.event +
                                                                        " e WHERE e.id = a.creation_id)";
        spi::for_each_row("SELECT a.id, a.discriminator::text, a.ns::text, a.owner_id, a.group_id, " + time + " FROM " +
                         rule.annotation + " a WHERE " + orphan_predicate(rule) + " ORDER BY a.id",
                     {ns}, [&](HeapTuple tup, TupleDesc desc) {
                         std::vector<srf::Cell> cells;
                         for (int c = 1; c <= 6; c++) {
                             bool isnull;
                             Datum d = col(tup, desc, c, &isnull);
                             cells.push_back(isnull ? srf::Cell::null() : srf::Cell::datum(d));
                         }
                         out.put(cells);
                     });
        return out.done();
    });
}

OU_FUNCTION(omero_orphans_summary)
{
    return boundary([&] {
        std::vector<std::vector<srf::Cell>> rows;
        {
            spi::Session spi;
            spi::Param ns = include_ns_param(fcinfo, 0, spi);
            Rule rule = discover(spi);
            auto g = spi.query("SELECT a.discriminator::text AS disc, " + std::string(ns_kind_sql) +
                                   " AS ns_kind, count(*) AS n,"
                                   " sum(pg_catalog.pg_column_size(a.*))::int8 AS bytes FROM " +
                                   rule.annotation + " a WHERE " + orphan_predicate(rule) + " GROUP BY 1, 2 ORDER BY 1, 2",
                               {ns}, true);
            int64_t total = 0, bytes = 0;
            for (size_t i = 0; i < g.rows.size(); i++) {
                rows.push_back({srf::Cell::of("orphans"), srf::Cell::of(g.str(i, "disc")),
                                srf::Cell::of(g.str(i, "ns_kind")), srf::Cell::int8(g.int64(i, "n")),
                                srf::Cell::int8(g.int64(i, "bytes")), srf::Cell::null()});
                total += g.int64(i, "n");
                bytes += g.int64(i, "bytes");
            }
            int links = 0, parents = 0, others = 0;
            for (const Reference &r : rule.refs)
                (r.kind == "link" ? links : r.kind == "link parent" ? parents : others)++;
            rows.push_back({srf::Cell::of("total"), srf::Cell::null(), srf::Cell::null(), srf::Cell::int8(total),
                            srf::Cell::int8(bytes),
                            srf::Cell::of("a delete would remove " + std::to_string(total) + " row(s) (" +
                                          std::to_string(bytes) + " bytes) of " + rule.annotation + " and nothing else;" +
                                          " checked against " + std::to_string(links) + " link table(s), " +
                                          std::to_string(parents) + " link parent column(s) and " +
                                          std::to_string(others) + " other reference(s)")});
            // Other references: how many annotations of the rule's kinds and namespaces, in no
            // link, each of them keeps.
            for (const Reference &r : rule.refs) {
                if (r.kind != "other")
                    continue;
                std::string links_only;
                for (const Reference &l : rule.refs)
                    if (l.kind != "other")
                        links_only += " AND NOT EXISTS (SELECT 1 FROM " + l.table + " r WHERE " + l.cond + ")";
                int64_t kept = std::stoll(*spi.scalar("SELECT count(*) FROM " + rule.annotation + " a WHERE " +
                                                          kind_and_ns + links_only + " AND EXISTS (SELECT 1 FROM " +
                                                          r.table + " r WHERE " + r.cond + ")",
                                                      {ns}, true));
                rows.push_back({srf::Cell::of("reference"), srf::Cell::null(), srf::Cell::null(),
                                srf::Cell::int8(kept), srf::Cell::null(),
                                srf::Cell::of(r.table + " (" + r.columns + ") references " + rule.annotation +
                                              " (constraint " + r.constraint + "): " + std::to_string(kept) +
                                              " annotation(s) otherwise orphans are kept because of it")});
            }
        }
        srf::Writer out(fcinfo);
        for (const auto &r : rows)
            out.put(r);
        return out.done();
    });
}

OU_FUNCTION(omero_orphans_delete)
{
    return boundary([&] {
        DeleteResult r = run_delete(fcinfo, false);
        srf::Writer out(fcinfo);
        out.put({r.run_id ? srf::Cell::int8(*r.run_id) : srf::Cell::null(), srf::Cell::boolean(r.dry_run),
                 srf::Cell::int8(r.scanned), srf::Cell::int8(r.deleted), srf::Cell::int8(r.skipped),
                 srf::Cell::int8(r.bytes), srf::Cell::int4(r.batches)});
        return out.done();
    });
}

OU_FUNCTION(omero_orphans_delete_batches)
{
    return boundary([&] {
        // CALL inside a transaction block (or from a function) is atomic: commits are impossible,
        // so the batches then simply share the caller's transaction.
        bool nonatomic = fcinfo->context && IsA(fcinfo->context, CallContext) &&
                         !castNode(CallContext, fcinfo->context)->atomic;
        if (!nonatomic)
            notice("omero_orphans_delete_batches: called inside a transaction block: no commit per batch");
        run_delete(fcinfo, nonatomic);
        return (Datum)0;
    });
}

OU_FUNCTION(omero_orphans_restore)
{
    return boundary([&] {
        if (PG_ARGISNULL(0))
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "run_id must not be NULL", "",
                        "SELECT id, status, deleted FROM omero_upgrade.orphan_run lists the runs.");
        int64_t run_id = PG_GETARG_INT64(0);
        int64_t restored = 0;
        {
            spi::Session spi;
            Rule rule = discover(spi);
            spi::Param run = spi::int8(run_id);
            auto r = spi.query("SELECT status FROM omero_upgrade.orphan_run WHERE id = $1 FOR UPDATE", {run});
            if (r.empty())
                throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "no orphan delete run " + std::to_string(run_id),
                            "omero_upgrade.orphan_run has no row with this id.",
                            "SELECT id, status, deleted FROM omero_upgrade.orphan_run lists the runs.");
            if (r.str(0, "status") == "restored") {
                notice("omero_orphans_restore: run " + std::to_string(run_id) + " was already restored: nothing to do");
                return Int64GetDatum(0);
            }
            // Conflicts: an archived id that is in use again. Refuse before inserting anything.
            auto c = spi.query("SELECT count(*) AS n, string_agg(x.annotation_id::text, ', ' ORDER BY x.annotation_id)"
                               "       FILTER (WHERE x.rn <= 20) AS ids"
                               "  FROM (SELECT v.annotation_id, row_number() OVER (ORDER BY v.annotation_id) AS rn"
                               "          FROM omero_upgrade.orphan_archive v JOIN " +
                                   rule.annotation +
                                   " a ON a.id = v.annotation_id WHERE v.run_id = $1) AS x",
                               {run});
            int64_t conflicts = c.int64(0, "n");
            if (conflicts > 0)
                throw Error(ERRCODE_UNIQUE_VIOLATION,
                            "cannot restore orphan delete run " + std::to_string(run_id) + ": " +
                                std::to_string(conflicts) + " annotation id(s) are in use again",
                            "Annotation ids in use: " + c.str(0, "ids") + (conflicts > 20 ? ", …" : "") + ".",
                            "Nothing was restored. Delete or renumber those annotations first, or leave the run archived.");
            // Missing references: a row the archived ones point to (owner, group, events, file, any
            // foreign key of annotation in the catalog) that is gone since. Refuse with the list
            // rather than PostgreSQL's first foreign-key error; nothing is inserted.
            std::string missing;
            int64_t n_missing = 0;
            auto fks = spi.query(
                "SELECT c.conname::text AS con, c.confrelid::regclass::text AS ref, c.confrelid = c.conrelid AS self,"
                "       string_agg(fa.attname::text, ', ' ORDER BY k.ord) AS cols,"
                "       string_agg(format('t.%I = r.%I', pa.attname, fa.attname), ' AND ' ORDER BY k.ord) AS cond,"
                "       string_agg(format('r.%I IS NOT NULL', fa.attname), ' AND ' ORDER BY k.ord) AS notnull,"
                "       CASE WHEN count(*) = 1 THEN format('r.%I::text', min(fa.attname::text))"
                "            ELSE 'ROW(' || string_agg(format('r.%I', fa.attname), ', ' ORDER BY k.ord) || ')::text'"
                "       END AS val"
                "  FROM pg_catalog.pg_constraint c"
                " CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(fk, pk, ord)"
                "  JOIN pg_catalog.pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = k.fk"
                "  JOIN pg_catalog.pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk"
                " WHERE c.contype = 'f' AND c.conrelid = $1::regclass AND c.conparentid = 0"
                " GROUP BY c.oid, c.conname, c.confrelid, c.conrelid"
                " ORDER BY 4, 2",
                {spi::text(rule.annotation)}, true);
            for (size_t i = 0; i < fks.rows.size(); i++) {
                // Identifiers come quoted from format('%I') / regclass output.
                std::string rows = "SELECT r.* FROM omero_upgrade.orphan_archive v,"
                                   " LATERAL pg_catalog.jsonb_populate_record(NULL::" + rule.annotation +
                                   ", v.row_image) AS r WHERE v.run_id = $1";
                std::string gone = "NOT EXISTS (SELECT 1 FROM " + fks.str(i, "ref") + " t WHERE " + fks.str(i, "cond") + ")";
                if (fks.str(i, "self") == "t")  // may point to another row of the same run
                    gone += " AND NOT EXISTS (SELECT 1 FROM (" + rows + ") t WHERE " + fks.str(i, "cond") + ")";
                auto m = spi.query("SELECT count(*) AS n, count(DISTINCT x.v) AS nv,"
                                   "       array_to_string((array_agg(DISTINCT x.v ORDER BY x.v))[1:10], ', ') AS vals"
                                   "  FROM (SELECT " + fks.str(i, "val") + " AS v FROM (" + rows + ") r"
                                   "         WHERE " + fks.str(i, "notnull") + " AND " + gone + ") x",
                                   {run}, true);
                int64_t n = m.int64(0, "n");
                if (n == 0)
                    continue;
                n_missing += n;
                missing += (missing.empty() ? "" : "; ") + fks.str(i, "cols") + " → " + fks.str(i, "ref") + ": " +
                           std::to_string(n) + " annotation(s) refer to missing " + m.str(0, "vals") +
                           (m.int64(0, "nv") > 10 ? ", …" : "");
            }
            if (n_missing > 0)
                throw Error(ERRCODE_FOREIGN_KEY_VIOLATION,
                            "cannot restore orphan delete run " + std::to_string(run_id) + ": " +
                                std::to_string(n_missing) + " reference(s) of its annotations point to rows that are gone",
                            "Missing references: " + missing + ".",
                            "Nothing was restored. Put the missing rows back (or restore the pre-upgrade backup), then "
                            "restore the run again.");
            // Whole rows back, column by column from the row image (columns added to annotation
            // since the delete get NULL). The sequence is untouched: the ids were issued by it before.
            restored = spi.exec("INSERT INTO " + rule.annotation + " SELECT r.* FROM omero_upgrade.orphan_archive v,"
                                    " LATERAL pg_catalog.jsonb_populate_record(NULL::" + rule.annotation +
                                    ", v.row_image) AS r WHERE v.run_id = $1 ORDER BY v.annotation_id",
                                {run});
            spi.exec("UPDATE omero_upgrade.orphan_run SET status = 'restored', restored_at = pg_catalog.clock_timestamp()"
                     " WHERE id = $1",
                     {run});
            notice("omero_orphans_restore: run " + std::to_string(run_id) + ": restored " + std::to_string(restored) +
                   " annotation(s)");
        }
        return Int64GetDatum(restored);
    });
}
