// The one-pass rewrite of the colour conversion (omero_colors_rewrite, CALL … method => 'rewrite'
// or 'auto'): every shape journaled chunk by chunk, then the table rewritten by one ALTER TABLE.
#include "color_journal.hpp"
#include "colors.hpp"
#include "colors_sql.hpp"
#include "omero_db.hpp"
#include "progress.hpp"

namespace ou::colors {
namespace {

Error not_rewritable(const std::string &message, const std::string &detail, const std::string &hint)
{
    return Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, message, detail, hint);
}

int64_t count(spi::Session &spi, const std::string &sql, const std::vector<spi::Param> &params = {})
{
    return std::stoll(spi.scalar(sql, params, true).value_or("0"));
}

// The journal and the table, in the current transaction; returns how many shapes were converted.
int64_t journal_and_rewrite(spi::Session &spi, Journal &jr, const Names &n, const Request &r, int64_t run_id)
{
    // Progress: the journal, chunk by chunk, against the planner's row estimate; the rewrite
    // itself is one statement (PostgreSQL reports nothing of it), announced by a NOTICE.
    int64_t estimate = count(spi, "SELECT GREATEST(reltuples, 0)::pg_catalog.int8 FROM pg_catalog.pg_class"
                                  " WHERE oid = pg_catalog.to_regclass($1)",
                             {spi::text(n.shape)});
    Progress progress("colors rewrite " + r.direction + " (journal)", "shapes", estimate);
    int64_t selected = jr.journal_whole_table(n.shape, run_id, r.direction, [&](int64_t done) { progress.update(done); });
    progress.update(selected);
    jr.set_selected(run_id, selected);
    notice("omero_colors_rewrite: " + std::to_string(selected) +
           " shapes journaled; rewriting the table and rebuilding its indexes");
    // A USING expression that is not a plain column makes PostgreSQL rewrite the table (and
    // rebuild its indexes) in one pass, instead of writing a new version of every row.
    // As OMERO's role (with_omero_code): the rewrite checks shape's CHECK constraints again and
    // rebuilds its indexes, code of shape's owner that must not run with a superuser's rights.
    with_omero_code(spi, [&] {
        spi.exec("ALTER TABLE " + n.shape + " ALTER COLUMN fillcolor TYPE pg_catalog.int4 USING " + n.F +
                 "(fillcolor), ALTER COLUMN strokecolor TYPE pg_catalog.int4 USING " + n.F + "(strokecolor)");
        spi.exec("ANALYZE " + n.shape);  // the rewrite dropped the two columns' statistics
    });
    return selected;
}

} // namespace

// The rewrite's conditions: the database to itself, every shape with its original colours.
// Throws 55000 otherwise; takes the journal lock and (for real) the exclusive lock on shape,
// NOWAIT unless wait_for_lock.
void check_rewrite(spi::Session &spi, Journal &jr, const Names &n, const std::string &direction, bool dry_run,
                   bool wait_for_lock)
{
    OtherSessions others = other_sessions(spi);
    if (others.count > 0)
        throw not_rewritable("omero_colors_rewrite needs the database to itself: " + std::to_string(others.count) +
                                 " other session(s) are connected",
                             others.by_pid,
                             "Stop OMERO (bin/omero admin stop) and other clients first, or use CALL "
                             "omero_colors_convert(...), which works while OMERO runs.");
    jr.lock();
    if (!dry_run) {
        if (wait_for_lock)  // (an autovacuum of shape gives way; anything else gets 30 s)
            spi.exec("SELECT pg_catalog.set_config('lock_timeout', '30s', true)");
        spi.exec("LOCK TABLE " + n.shape + " IN ACCESS EXCLUSIVE MODE" + (wait_for_lock ? "" : " NOWAIT"));
    }
    // Only shapes a conversion in this direction applies to as such: none already in its result
    // state (converted, or restored, by it), none converted by the opposite direction.
    auto [already, opposite_converted] = jr.not_original_for(direction);
    if (already > 0)
        throw not_rewritable("omero_colors_rewrite would convert shapes already converted " + direction,
                             std::to_string(already) + " shape(s) are journaled as already converted " + direction +
                                 " (converted by it, or their originals restored by it).",
                             "CALL omero_colors_convert('" + direction + "') converts only what is left.");
    if (opposite_converted > 0)
        throw not_rewritable("omero_colors_rewrite converts only a table whose shapes all have their original colours",
                             std::to_string(opposite_converted) + " shape(s) are journaled as converted " +
                                 opposite(direction) + ".",
                             "CALL omero_colors_convert('" + direction + "') restores their originals from the journal.");
    if (auto covered = jr.covered_to(direction)) {
        int64_t newer = count(spi, "SELECT pg_catalog.count(*) FROM " + n.shape + " WHERE id > $1", {spi::int8(*covered)});
        if (newer > 0)
            throw not_rewritable(
                "omero_colors_rewrite would convert shapes created after a completed " + direction + " conversion",
                std::to_string(newer) + " shape(s) have ids above " + std::to_string(*covered) +
                    ", the highest the completed conversion covered.",
                "CALL omero_colors_convert('" + direction + "') leaves them alone and converts what is left.");
    }
}

// The rewrite itself (after check_rewrite), in the current transaction: journal, table, ANALYZE.
Summary rewrite_all(spi::Session &spi, Journal &jr, const Names &n, const Request &r)
{
    Summary sum;
    if (r.dry_run) {  // (for real, the journal counts them)
        sum.selected = count(spi, "SELECT pg_catalog.count(*) FROM " + n.shape);
        sum.converted = sum.selected;
    }
    if (auto sample = spi.scalar(rewrite_sample_sql(n), {}, true))
        sum.sample = split_json_array(*sample);
    if (r.dry_run)
        return sum;
    sum.run_id = jr.start_run(r.direction, "rewrite", r.roi_ids, r.image_ids, r.shape_ids, 0);
    // The index builds of the rewrite sort every row of each index: give them at least 512 MB
    // (only ever raised, for this transaction), and PostgreSQL's parallel index builds: at least
    // as many maintenance workers as max_parallel_workers allows, up to 4 (the server is stopped,
    // the cores are ours; each participant needs 32 MB of maintenance_work_mem, which 512 MB
    // covers). No JIT for the rewrite's expressions either.
    std::string mwm = *spi.scalar("SELECT (GREATEST(pg_catalog.pg_size_bytes(pg_catalog.current_setting("
                                  "'maintenance_work_mem')), 512 * 1024 * 1024) / 1024)::pg_catalog.text || 'kB'",
                                  {}, true);
    std::string workers = *spi.scalar(
        "SELECT GREATEST(pg_catalog.current_setting('max_parallel_maintenance_workers')::pg_catalog.int4,"
        " LEAST(pg_catalog.current_setting('max_parallel_workers')::pg_catalog.int4, 4))::pg_catalog.text",
        {}, true);
    std::vector<std::string> old;
    const char *const settings[] = {"jit", "maintenance_work_mem", "max_parallel_maintenance_workers"};
    for (const char *name : settings)
        old.push_back(spi.scalar("SELECT pg_catalog.current_setting($1)", {spi::text(name)}, true).value_or(""));
    spi.exec("SELECT pg_catalog.set_config('jit', 'off', true), pg_catalog.set_config('maintenance_work_mem', $1, true),"
             " pg_catalog.set_config('max_parallel_maintenance_workers', $2, true)",
             {spi::text(mwm), spi::text(workers)});
    sum.selected = journal_and_rewrite(spi, jr, n, r, sum.run_id);
    spi.exec("SELECT pg_catalog.set_config('jit', $1, true), pg_catalog.set_config('maintenance_work_mem', $2, true),"
             " pg_catalog.set_config('max_parallel_maintenance_workers', $3, true)",
             {spi::text(old[0]), spi::text(old[1]), spi::text(old[2])});
    sum.converted = sum.selected;
    jr.count_batch(sum.run_id, sum.converted, 0, 0, 0, 0, 0);
    auto top = spi.scalar("SELECT pg_catalog.max(id) FROM " + n.shape, {}, true);
    jr.finish_run(sum.run_id, top ? std::optional<int64_t>(std::stoll(*top)) : std::nullopt);
    return sum;
}

} // namespace ou::colors
