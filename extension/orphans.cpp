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
#include "args.hpp"
#include "history.hpp"
#include "omero.hpp"
#include "progress.hpp"
#include "srf.hpp"

#include <algorithm>

namespace ou {
namespace {

struct Reference {
    std::string table;       // for SQL: regclass text, schema-qualified
    std::string name;        // for people: relative to OMERO's schema (unqualified there)
    std::string constraint;
    std::string columns;     // referencing columns, for display
    std::string cond;        // r.<col> = a.<col> [AND …]
    std::string kind;        // link | link parent | other
    // NO ACTION or RESTRICT on delete and not deferrable: PostgreSQL's own foreign-key check at
    // the end of our DELETE statement refuses to delete a row this reference points to, so the
    // delete needs no re-check of it unless a link raced the scan (see delete_batch).
    bool guards = false;
};

struct Rule {
    std::string annotation;       // OMERO's annotation table, for SQL
    std::string annotation_name;  // … for people
    std::string event;            // OMERO's event table, or "" (creation_time then NULL)
    std::vector<Reference> refs;
};

// One row per foreign key into $1 (constraints cloned onto partitions skipped); identifiers
// quoted by format('%I') / regclass output, so the SQL built from them is safe. $2: OMERO's
// schema (quoted), whose tables are named without it for people.
const char *const kReferencesSql =
    "SELECT c.conrelid::pg_catalog.regclass::pg_catalog.text AS tbl, c.conname::pg_catalog.text AS con,"
    "       pg_catalog.string_agg(pg_catalog.format('r.%I OPERATOR(pg_catalog.=) a.%I', fa.attname, pa.attname),"
    "                             ' AND ' ORDER BY k.ord) AS cond,"
    "       pg_catalog.string_agg(fa.attname::pg_catalog.text, ', ' ORDER BY k.ord) AS cols,"
    "       CASE WHEN pg_catalog.count(*) = 1 AND pg_catalog.min(pa.attname::pg_catalog.text) = 'id'"
    "                 AND pg_catalog.min(fa.attname::pg_catalog.text) = 'child'"
    "                 AND rel.relname::pg_catalog.text LIKE '%annotationlink' THEN 'link'"
    "            WHEN pg_catalog.count(*) = 1 AND pg_catalog.min(pa.attname::pg_catalog.text) = 'id'"
    "                 AND pg_catalog.min(fa.attname::pg_catalog.text) = 'parent'"
    "                 AND rel.relname::pg_catalog.text = 'annotationannotationlink' THEN 'link parent'"
    "            ELSE 'other' END AS kind,"
    "       CASE WHEN pg_catalog.quote_ident(ns.nspname) = $2 THEN pg_catalog.quote_ident(rel.relname)"
    "            ELSE pg_catalog.quote_ident(ns.nspname) || '.' || pg_catalog.quote_ident(rel.relname) END AS name,"
    "       (c.confdeltype OPERATOR(pg_catalog.=) ANY ('{a,r}'::pg_catalog.\"char\"[]) AND NOT c.condeferrable) AS guards"
    "  FROM pg_catalog.pg_constraint c"
    "  JOIN pg_catalog.pg_class rel ON rel.oid = c.conrelid"
    "  JOIN pg_catalog.pg_namespace ns ON ns.oid = rel.relnamespace"
    " CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(c.conkey), pg_catalog.unnest(c.confkey)) WITH ORDINALITY AS k(fk, pk, ord)"
    "  JOIN pg_catalog.pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = k.fk"
    "  JOIN pg_catalog.pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk"
    " WHERE c.contype = 'f' AND c.confrelid = pg_catalog.to_regclass($1) AND c.conparentid = 0"
    " GROUP BY c.oid, c.conrelid, c.conname, c.confdeltype, c.condeferrable, rel.relname, ns.nspname"
    " ORDER BY 5, rel.relname, c.conname";

Rule discover(spi::Session &spi)
{
    Rule rule;
    const std::string &schema = omero_schema(spi);
    rule.annotation = omero_name(spi, "annotation");
    rule.annotation_name = "annotation";
    auto r = spi.query("SELECT pg_catalog.to_regclass($1) IS NOT NULL AS a, pg_catalog.to_regclass($2) IS NOT NULL AS e",
                       {spi::text(rule.annotation), spi::text(omero_name(spi, "event"))}, true);
    if (r.str(0, "a") != "t")
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "not an OMERO database: there is no annotation table",
                    "No table named annotation in " + schema + ", the schema of OMERO's dbpatch.",
                    "Connect to the OMERO database.");
    if (r.str(0, "e") == "t")
        rule.event = omero_name(spi, "event");
    auto f = spi.query(kReferencesSql, {spi::text(rule.annotation), spi::text(schema)}, true);
    for (size_t i = 0; i < f.rows.size(); i++)
        rule.refs.push_back(Reference{f.str(i, "tbl"), f.str(i, "name"), f.str(i, "con"), f.str(i, "cols"),
                                      f.str(i, "cond"), f.str(i, "kind"), f.str(i, "guards") == "t"});
    return rule;
}

// The kinds and namespaces of the rule, on alias a; $1 is include_ns (text[], may be NULL). The
// columns are varchar: compared as text, so that only pg_catalog's text operators apply.
const char *const kind_and_ns =
    "a.discriminator::pg_catalog.text OPERATOR(pg_catalog.=) ANY ('{/basic/bool/, /basic/num/double/,"
    " /basic/num/long/, /basic/term/, /basic/time/, /basic/text/comment/}'::pg_catalog.text[])"
    " AND (a.ns IS NULL OR a.ns::pg_catalog.text OPERATOR(pg_catalog.=) ''::pg_catalog.text"
    "      OR a.ns::pg_catalog.text OPERATOR(pg_catalog.~~) 'openmicroscopy.org/%'::pg_catalog.text"
    "      OR a.ns::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]))";

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

const char *const ns_kind_sql = "CASE WHEN a.ns IS NULL THEN 'null' WHEN a.ns::pg_catalog.text = '' THEN 'empty'"
                                " WHEN a.ns::pg_catalog.text LIKE 'openmicroscopy.org/%' THEN 'openmicroscopy.org/'"
                                " ELSE 'custom' END";

// include_ns: NULL, or exact namespaces (one dimension, no NULL).
std::optional<std::vector<std::string>> include_ns_arg(const Args &args, int n)
{
    try {
        return args.text_array(n, "include_ns", "namespaces");
    } catch (Error &e) {
        e.hint = "Give exact namespace values, e.g. ARRAY['example.org/lab'].";
        throw;
    }
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
    if (spi.scalar("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER").value_or("f") != "t")
        throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "fast => true needs a superuser",
                    "It sets session_replication_role, which only a superuser may change.",
                    "Connect as a superuser, or use fast => false (the default).");
    auto other = spi.scalar(
        "SELECT pg_catalog.string_agg(x, ', ' ORDER BY x) FROM ("
        " SELECT 'trigger ' || pg_catalog.quote_ident(tgname) AS x FROM pg_catalog.pg_trigger"
        "  WHERE tgrelid = pg_catalog.to_regclass($1) AND NOT tgisinternal"
        " UNION ALL SELECT 'rule ' || pg_catalog.quote_ident(rulename) FROM pg_catalog.pg_rewrite"
        "  WHERE ev_class = pg_catalog.to_regclass($1) AND rulename <> '_RETURN') AS t",
        {spi::text(rule.annotation)});
    if (other)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "fast => true would also skip triggers or rules of " + rule.annotation_name,
                    "On " + rule.annotation_name + ": " + *other + ".",
                    "Use fast => false (the default), which keeps every trigger.");
}

struct DeleteOptions {
    bool dry_run = true;
    int32_t batch = 10000;
    bool fast = false;
    std::optional<std::vector<std::string>> include_ns;
};

DeleteOptions read_delete_options(const Args &args)
{
    DeleteOptions o;
    o.dry_run = args.flag(0, "dry_run", "Pass true to count only, false to delete.");
    o.batch = args.batch_size(1, "annotations", 10000);
    o.include_ns = include_ns_arg(args, 2);
    o.fast = args.flag(3, "fast", "Pass false (the default) to keep PostgreSQL's foreign-key triggers.");
    return o;
}

struct DeleteResult {
    std::optional<int64_t> run_id;
    bool dry_run = true;
    int64_t scanned = 0, deleted = 0, skipped = 0, bytes = 0;
    int batches = 0;
};

// The orphans' ids and their total size, in id order.
Ids scan_orphans(spi::Session &spi, const Rule &rule, const spi::Param &ns, int64_t &bytes)
{
    Ids ids;
    spi::for_each_row("SELECT a.id, pg_catalog.pg_column_size(a.*)::pg_catalog.int8 FROM " + rule.annotation +
                          " a WHERE " + orphan_predicate(rule) + " ORDER BY a.id",
                      {ns}, [&](const spi::Row &row) {
                          ids.push_back(row.int8(1));
                          bytes += row.int8(2);
                      });
    return ids;
}

// The run row; delete runs are serialised by the lock (two at once would fight over rows).
int64_t start_delete_run(spi::Session &spi, const DeleteOptions &o, const spi::Param &ns, int64_t scanned)
{
    spi.exec("LOCK TABLE omero_upgrade.orphan_run IN EXCLUSIVE MODE");
    return std::stoll(*spi.scalar(
        "INSERT INTO omero_upgrade.orphan_run (id, status, include_ns, batch_size, scanned)"
        " SELECT coalesce(pg_catalog.max(id), 0) + 1, 'running', $1, $2, $3 FROM omero_upgrade.orphan_run RETURNING id",
        {ns, spi::int4(o.batch), spi::int8(scanned)}));
}

// The DELETE of a batch with its archive, in one statement: rows of the batch still matching
// `predicate` are deleted, each one's whole row going into the archive. {deleted, bytes}.
std::pair<int64_t, int64_t> delete_archive(spi::Session &spi, const Rule &rule, const spi::Param &ns,
                                           const spi::Param &run, const spi::Param &batch,
                                           const std::string &predicate)
{
    // The DELETE fires OMERO's own triggers on annotation: it runs as OMERO's code.
    auto d = with_omero_code(spi, [&] {
        return spi.query(
            "WITH d AS (DELETE FROM " + rule.annotation + " a WHERE a.id OPERATOR(pg_catalog.=) ANY ($2) AND " +
                predicate +
                "           RETURNING a AS r, pg_catalog.pg_column_size(a.*) AS bytes),"
                "     i AS (INSERT INTO omero_upgrade.orphan_archive (run_id, annotation_id, row_image)"
                "           SELECT $3, (d.r).id, pg_catalog.to_jsonb(d.r) FROM d)"
                " SELECT pg_catalog.count(*) AS n, coalesce(pg_catalog.sum(d.bytes), 0)::pg_catalog.int8 AS bytes FROM d",
            {ns, batch, run});
    });
    return {d.int64(0, "n"), d.int64(0, "bytes")};
}

// One batch. Without fast, and when every reference is guarded by a foreign key (OMERO's are),
// first optimistically: one DELETE that re-checks only the kinds and namespaces, in a
// subtransaction.
// The DELETE locks each row (waiting for any transaction whose new link holds a KEY SHARE lock on
// it); the foreign keys' own checks at the end of the statement then see every link committed
// before, and a link that raced the scan makes them fail (23503): the subtransaction is rolled
// back and the batch done the careful way below. On the common path the re-check of every
// reference (as many index probes per row as the foreign-key checks PostgreSQL runs anyway)
// is not paid twice.
// The careful way (and fast): lock the batch's rows, then delete and archive those still orphans
// under every reference (in a new statement, so a new snapshot). Returns {deleted, bytes}.
std::pair<int64_t, int64_t> delete_batch(spi::Session &spi, const Rule &rule, const DeleteOptions &o,
                                         const spi::Param &ns, const spi::Param &run, const spi::Param &batch,
                                         const std::string &srr)
{
    // Only when every reference is guarded: a DELETE that re-checked an unguarded one (ON DELETE
    // CASCADE, a deferrable key) in the same statement would not see a reference committed while it
    // waited for the row's lock.
    const bool all_guarded = std::all_of(rule.refs.begin(), rule.refs.end(), [](const Reference &r) { return r.guards; });
    if (!o.fast && all_guarded) {
        std::pair<int64_t, int64_t> r;
        if (spi::try_subtransaction(
                [&] { r = delete_archive(spi, rule, ns, run, batch, kind_and_ns); },
                ERRCODE_FOREIGN_KEY_VIOLATION))
            return r;
    }
    spi.exec("SELECT pg_catalog.count(*) FROM (SELECT 1 FROM " + rule.annotation +
                 " a WHERE a.id OPERATOR(pg_catalog.=) ANY ($2) ORDER BY a.id FOR UPDATE) AS l",
             {ns, batch});
    if (o.fast) {
        // Checked per batch: the procedure's new transactions take the session's default.
        if (spi.scalar("SELECT pg_catalog.current_setting('transaction_isolation')").value_or("") != "read committed")
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "fast => true needs READ COMMITTED",
                        "Under a transaction snapshot the re-check could miss a link committed meanwhile.",
                        "Run it in a READ COMMITTED transaction, or with fast => false.");
        spi.exec("SELECT pg_catalog.set_config('session_replication_role', 'replica', true)");
    }
    auto d = delete_archive(spi, rule, ns, run, batch, orphan_predicate(rule, true));
    if (o.fast)
        spi.exec("SELECT pg_catalog.set_config('session_replication_role', $1, true)", {spi::text(srr)});
    return d;
}

// The delete, shared by the function (one transaction) and the procedure (commit per batch).
// The run's row (omero_upgrade.orphan_run) as the history entry's details.
void record_run_history(spi::Session &spi, const char *kind, const std::string &what, const spi::Param &run)
{
    std::string details = spi.scalar("SELECT pg_catalog.to_jsonb(r)::pg_catalog.text FROM omero_upgrade.orphan_run r"
                                     " WHERE r.id OPERATOR(pg_catalog.=) $1",
                                     {run})
                              .value_or("{}");
    record_history(spi, kind, what, details);
}

DeleteResult run_delete(const Args &args, bool nonatomic)
{
    DeleteResult res;
    const DeleteOptions o = read_delete_options(args);
    res.dry_run = o.dry_run;
    spi::Session spi(nonatomic);
    // Built after SPI_connect, in SPI's procedure memory: it outlives the procedure's commits.
    const spi::Param ns = spi::text_array(o.include_ns);
    Rule rule = discover(spi);
    if (o.fast && !o.dry_run)
        check_fast_allowed(spi, rule);

    const Ids ids = scan_orphans(spi, rule, ns, res.bytes);
    res.scanned = (int64_t)ids.size();
    if (o.dry_run) {
        res.deleted = res.scanned;
        res.batches = (int)((ids.size() + o.batch - 1) / o.batch);
        notice("omero_orphans_delete: dry run: " + std::to_string(res.scanned) + " orphan annotation(s), " +
               std::to_string(res.bytes) + " bytes, would be deleted in " + std::to_string(res.batches) +
               " batch(es); nothing changed");
        return res;
    }
    res.bytes = 0;
    res.run_id = start_delete_run(spi, o, ns, res.scanned);
    notice("omero_orphans_delete: run " + std::to_string(*res.run_id) + ": " + std::to_string(res.scanned) +
           " orphan annotation(s) to delete in batches of " + std::to_string(o.batch));
    const spi::Param run = spi::int8(*res.run_id);
    if (nonatomic)
        spi.commit();

    const std::string srr =
        spi.scalar("SELECT pg_catalog.current_setting('session_replication_role')").value_or("origin");
    Progress progress("orphans delete", "annotations", res.scanned);
    for (size_t lo = 0; lo < ids.size(); lo += o.batch) {
        check_interrupts();
        size_t hi = std::min(ids.size(), lo + (size_t)o.batch);
        const int64_t n = (int64_t)(hi - lo);
        auto [deleted, bytes] = delete_batch(spi, rule, o, ns, run, spi::int8_array(Ids(ids.begin() + lo, ids.begin() + hi)), srr);
        spi.exec("UPDATE omero_upgrade.orphan_run SET deleted = deleted + $2, skipped = skipped + $3,"
                 " bytes = bytes + $4 WHERE id = $1",
                 {run, spi::int8(deleted), spi::int8(n - deleted), spi::int8(bytes)});
        res.deleted += deleted;
        res.skipped += n - deleted;
        res.bytes += bytes;
        res.batches++;
        if (nonatomic)
            spi.commit();
        progress.update((int64_t)hi);
    }
    progress.finish(res.scanned);
    spi.exec("UPDATE omero_upgrade.orphan_run SET status = 'deleted', finished_at = pg_catalog.clock_timestamp()"
             " WHERE id = $1",
             {run});
    record_run_history(spi, "orphans", "orphan annotations deleted (run " + std::to_string(*res.run_id) + ")", run);
    if (nonatomic)
        spi.commit();
    notice("omero_orphans_delete: run " + std::to_string(*res.run_id) + ": deleted " + std::to_string(res.deleted) +
           " annotation(s) (" + std::to_string(res.bytes) + " bytes) into omero_upgrade.orphan_archive" +
           (res.skipped ? ", skipped " + std::to_string(res.skipped) + " linked since the scan" : "") +
           "; undo with SELECT omero_orphans_restore(" + std::to_string(*res.run_id) + ")");
    return res;
}

std::vector<std::vector<srf::Cell>> summary_rows(spi::Session &spi, const spi::Param &ns)
{
    using srf::Cell;
    std::vector<std::vector<Cell>> rows;
    Rule rule = discover(spi);
    auto g = spi.query("SELECT a.discriminator::pg_catalog.text AS disc, " + std::string(ns_kind_sql) +
                           " AS ns_kind, pg_catalog.count(*) AS n,"
                           " pg_catalog.sum(pg_catalog.pg_column_size(a.*))::pg_catalog.int8 AS bytes FROM " +
                           rule.annotation + " a WHERE " + orphan_predicate(rule) + " GROUP BY 1, 2 ORDER BY 1, 2",
                       {ns}, true);
    int64_t total = 0, bytes = 0;
    for (size_t i = 0; i < g.rows.size(); i++) {
        rows.push_back({Cell::of("orphans"), Cell::of(g.str(i, "disc")), Cell::of(g.str(i, "ns_kind")),
                        Cell::int8(g.int64(i, "n")), Cell::int8(g.int64(i, "bytes")), Cell::null()});
        total += g.int64(i, "n");
        bytes += g.int64(i, "bytes");
    }
    int links = 0, parents = 0, others = 0;
    for (const Reference &r : rule.refs)
        (r.kind == "link" ? links : r.kind == "link parent" ? parents : others)++;
    rows.push_back({Cell::of("total"), Cell::null(), Cell::null(), Cell::int8(total), Cell::int8(bytes),
                    Cell::of("a delete would remove " + std::to_string(total) + " row(s) (" + std::to_string(bytes) +
                             " bytes) of " + rule.annotation_name + " and nothing else;" + " checked against " +
                             std::to_string(links) + " link table(s), " + std::to_string(parents) +
                             " link parent column(s) and " + std::to_string(others) + " other reference(s)")});
    // Other references: how many annotations of the rule's kinds and namespaces, in no link, each
    // of them keeps.
    std::string links_only;
    for (const Reference &l : rule.refs)
        if (l.kind != "other")
            links_only += " AND NOT EXISTS (SELECT 1 FROM " + l.table + " r WHERE " + l.cond + ")";
    for (const Reference &r : rule.refs) {
        if (r.kind != "other")
            continue;
        int64_t kept = std::stoll(*spi.scalar("SELECT pg_catalog.count(*) FROM " + rule.annotation + " a WHERE " +
                                                  kind_and_ns + links_only + " AND EXISTS (SELECT 1 FROM " + r.table +
                                                  " r WHERE " + r.cond + ")",
                                              {ns}, true));
        rows.push_back({Cell::of("reference"), Cell::null(), Cell::null(), Cell::int8(kept), Cell::null(),
                        Cell::of(r.name + " (" + r.columns + ") references " + rule.annotation_name + " (constraint " +
                                 r.constraint + "): " + std::to_string(kept) +
                                 " annotation(s) otherwise orphans are kept because of it")});
    }
    return rows;
}

// ---- restore ------------------------------------------------------------------------------

// The archived rows of run $1 as rows of OMERO's annotation table (columns added since: NULL).
std::string archived_rows(const Rule &rule)
{
    return "SELECT r.* FROM omero_upgrade.orphan_archive v, LATERAL pg_catalog.jsonb_populate_record(NULL::" +
           rule.annotation + ", v.row_image) AS r WHERE v.run_id OPERATOR(pg_catalog.=) $1";
}

// An archived id that is in use again: refuse before inserting anything.
void refuse_conflicts(spi::Session &spi, const Rule &rule, int64_t run_id, const spi::Param &run)
{
    auto c = spi.query("SELECT pg_catalog.count(*) AS n, pg_catalog.string_agg(x.annotation_id::pg_catalog.text, ', '"
                       "       ORDER BY x.annotation_id) FILTER (WHERE x.rn <= 20) AS ids"
                       "  FROM (SELECT v.annotation_id, pg_catalog.row_number() OVER (ORDER BY v.annotation_id) AS rn"
                       "          FROM omero_upgrade.orphan_archive v JOIN " +
                           rule.annotation + " a ON a.id = v.annotation_id WHERE v.run_id = $1) AS x",
                       {run});
    int64_t conflicts = c.int64(0, "n");
    if (conflicts > 0)
        throw Error(ERRCODE_UNIQUE_VIOLATION,
                    "cannot restore orphan delete run " + std::to_string(run_id) + ": " + std::to_string(conflicts) +
                        " annotation id(s) are in use again",
                    "Annotation ids in use: " + c.str(0, "ids") + (conflicts > 20 ? ", …" : "") + ".",
                    "Nothing was restored. Delete or renumber those annotations first, or leave the run archived.");
}

// Every foreign key of annotation: its columns, the table it references (for SQL and for people),
// and the conditions to find archived rows whose reference is gone.
const char *const kAnnotationForeignKeysSql =
    "SELECT c.conname::pg_catalog.text AS con, c.confrelid::pg_catalog.regclass::pg_catalog.text AS ref,"
    "       CASE WHEN pg_catalog.quote_ident(ns.nspname) = $2 THEN pg_catalog.quote_ident(t.relname)"
    "            ELSE pg_catalog.quote_ident(ns.nspname) || '.' || pg_catalog.quote_ident(t.relname) END AS ref_name,"
    "       c.confrelid = c.conrelid AS self,"
    "       pg_catalog.string_agg(fa.attname::pg_catalog.text, ', ' ORDER BY k.ord) AS cols,"
    "       pg_catalog.string_agg(pg_catalog.format('t.%I OPERATOR(pg_catalog.=) r.%I', pa.attname, fa.attname),"
    "                             ' AND ' ORDER BY k.ord) AS cond,"
    "       pg_catalog.string_agg(pg_catalog.format('r.%I IS NOT NULL', fa.attname), ' AND ' ORDER BY k.ord) AS notnull,"
    "       CASE WHEN pg_catalog.count(*) = 1"
    "            THEN pg_catalog.format('r.%I::pg_catalog.text', pg_catalog.min(fa.attname::pg_catalog.text))"
    "            ELSE 'ROW(' || pg_catalog.string_agg(pg_catalog.format('r.%I', fa.attname), ', ' ORDER BY k.ord)"
    "                 || ')::pg_catalog.text'"
    "       END AS val"
    "  FROM pg_catalog.pg_constraint c"
    "  JOIN pg_catalog.pg_class t ON t.oid = c.confrelid"
    "  JOIN pg_catalog.pg_namespace ns ON ns.oid = t.relnamespace"
    " CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(c.conkey), pg_catalog.unnest(c.confkey)) WITH ORDINALITY AS k(fk, pk, ord)"
    "  JOIN pg_catalog.pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = k.fk"
    "  JOIN pg_catalog.pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk"
    " WHERE c.contype = 'f' AND c.conrelid = pg_catalog.to_regclass($1) AND c.conparentid = 0"
    " GROUP BY c.oid, c.conname, c.confrelid, c.conrelid, t.relname, ns.nspname"
    " ORDER BY 5, 3";

// A row the archived ones point to (owner, group, events, file: any foreign key of annotation in
// the catalog) that is gone since: refuse with the list rather than PostgreSQL's first
// foreign-key error; nothing is inserted.
void refuse_missing_references(spi::Session &spi, const Rule &rule, int64_t run_id, const spi::Param &run)
{
    std::string missing;
    int64_t n_missing = 0;
    auto fks = spi.query(kAnnotationForeignKeysSql, {spi::text(rule.annotation), spi::text(omero_schema(spi))}, true);
    const std::string rows = archived_rows(rule);
    for (size_t i = 0; i < fks.rows.size(); i++) {
        // Identifiers come quoted from format('%I') / regclass output.
        std::string gone = "NOT EXISTS (SELECT 1 FROM " + fks.str(i, "ref") + " t WHERE " + fks.str(i, "cond") + ")";
        if (fks.str(i, "self") == "t")  // may point to another row of the same run
            gone += " AND NOT EXISTS (SELECT 1 FROM (" + rows + ") t WHERE " + fks.str(i, "cond") + ")";
        auto m = spi.query("SELECT pg_catalog.count(*) AS n, pg_catalog.count(DISTINCT x.v) AS nv,"
                           "       pg_catalog.array_to_string((pg_catalog.array_agg(DISTINCT x.v ORDER BY x.v))[1:10],"
                           "                                  ', ') AS vals"
                           "  FROM (SELECT " + fks.str(i, "val") + " AS v FROM (" + rows + ") r"
                           "         WHERE " + fks.str(i, "notnull") + " AND " + gone + ") x",
                           {run}, true);
        int64_t n = m.int64(0, "n");
        if (n == 0)
            continue;
        n_missing += n;
        missing += (missing.empty() ? "" : "; ") + fks.str(i, "cols") + " → " + fks.str(i, "ref_name") + ": " +
                   std::to_string(n) + " annotation(s) refer to missing " + m.str(0, "vals") +
                   (m.int64(0, "nv") > 10 ? ", …" : "");
    }
    if (n_missing > 0)
        throw Error(ERRCODE_FOREIGN_KEY_VIOLATION,
                    "cannot restore orphan delete run " + std::to_string(run_id) + ": " + std::to_string(n_missing) +
                        " reference(s) of its annotations point to rows that are gone",
                    "Missing references: " + missing + ".",
                    "Nothing was restored. Put the missing rows back (or restore the pre-upgrade backup), then "
                    "restore the run again.");
}

int64_t restore_run(spi::Session &spi, int64_t run_id)
{
    Rule rule = discover(spi);
    const spi::Param run = spi::int8(run_id);
    auto r = spi.query("SELECT status FROM omero_upgrade.orphan_run WHERE id = $1 FOR UPDATE", {run});
    if (r.empty())
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "no orphan delete run " + std::to_string(run_id),
                    "omero_upgrade.orphan_run has no row with this id.",
                    "SELECT id, status, deleted FROM omero_upgrade.orphan_run lists the runs.");
    if (r.str(0, "status") == "restored") {
        notice("omero_orphans_restore: run " + std::to_string(run_id) + " was already restored: nothing to do");
        return 0;
    }
    // The checks make rows of annotation's type from the archive: a domain on one of its columns
    // runs its CHECK, code of the table's owner, so they run as OMERO's code too.
    with_omero_code(spi, [&] {
        refuse_conflicts(spi, rule, run_id, run);
        refuse_missing_references(spi, rule, run_id, run);
    });
    // Whole rows back, column by column from the row image. The sequence is untouched: the ids were
    // issued by it before. The INSERT fires OMERO's own triggers on annotation: OMERO's code.
    int64_t restored = with_omero_code(spi, [&] {
        return (int64_t)spi.exec("INSERT INTO " + rule.annotation + " " + archived_rows(rule) +
                                     " ORDER BY v.annotation_id",
                                 {run});
    });
    spi.exec("UPDATE omero_upgrade.orphan_run SET status = 'restored', restored_at = pg_catalog.clock_timestamp()"
             " WHERE id = $1",
             {run});
    record_run_history(spi, "orphans-restore", "orphan annotations of run " + std::to_string(run_id) + " restored", run);
    notice("omero_orphans_restore: run " + std::to_string(run_id) + ": restored " + std::to_string(restored) +
           " annotation(s)");
    return restored;
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
            out.put({srf::Cell::of(r.name), srf::Cell::of(r.columns), srf::Cell::of(r.kind),
                     srf::Cell::of(r.constraint)});
        return out.done();
    });
}

OU_FUNCTION(omero_orphans_scan)
{
    return boundary([&] {
        const auto include_ns = include_ns_arg(Args(fcinfo), 0);
        srf::Writer out(fcinfo);
        spi::Session spi;
        const spi::Param ns = spi::text_array(include_ns);
        Rule rule = discover(spi);
        std::string time = rule.event.empty() ? "NULL::pg_catalog.timestamp"
                                              : "(SELECT e.\"time\"::pg_catalog.timestamp FROM " + rule.event +
                                                    " e WHERE e.id = a.creation_id)";
        spi::for_each_row("SELECT a.id, a.discriminator::pg_catalog.text, a.ns::pg_catalog.text, a.owner_id,"
                          " a.group_id, " + time + " FROM " + rule.annotation + " a WHERE " + orphan_predicate(rule) +
                              " ORDER BY a.id",
                          {ns}, [&](const spi::Row &row) {
                              std::vector<srf::Cell> cells;
                              for (int c = 1; c <= 6; c++) {
                                  bool isnull;
                                  Datum d = row.datum(c, &isnull);
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
        const auto include_ns = include_ns_arg(Args(fcinfo), 0);
        std::vector<std::vector<srf::Cell>> rows;
        {
            spi::Session spi;
            rows = summary_rows(spi, spi::text_array(include_ns));
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
        DeleteResult r = run_delete(Args(fcinfo), false);
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
        Args args(fcinfo);
        bool nonatomic = args.nonatomic_call();
        if (!nonatomic)
            notice("omero_orphans_delete_batches: called inside a transaction block: no commit per batch");
        run_delete(args, nonatomic);
        return (Datum)0;
    });
}

OU_FUNCTION(omero_orphans_restore)
{
    return boundary([&] {
        int64_t run_id = Args(fcinfo).int8(0, "run_id", "SELECT id, status, deleted FROM omero_upgrade.orphan_run lists the runs.");
        int64_t restored;
        {
            spi::Session spi;
            restored = restore_run(spi, run_id);
        }
        return Int64GetDatum(restored);
    });
}
