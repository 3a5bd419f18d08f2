// The colour conversion's journal and run log (omero_upgrade.color_journal, color_runs):
// see extension/sql/40_colors.sql for the layout and the meaning of a shape's state. This file is
// the only writer of their rows: the conversion statements journal their batch in the same
// statement, through the INSERT journal_insert_cte() writes.
#pragma once

#include "args.hpp"
#include "spi.hpp"

#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace ou::colors {

// Each shape's newest journal chunk: columns id, kind, direction, purged, done_at, run_id.
const char *colors_state_sql();

// The CTE "ins AS (INSERT INTO omero_upgrade.color_journal … RETURNING returning)" that journals
// rows as chunks: `rows` is a FROM clause (with its WHERE, GROUP BY or HAVING) over an alias w with
// columns id, f, st (the colours before), version, update_id (after); run, kind and direction are
// SQL expressions (parameters, or columns of w).
std::string journal_insert_cte(const std::string &run, const std::string &kind, const std::string &direction,
                               const std::string &rows, const std::string &returning);

class Journal {
public:
    explicit Journal(spi::Session &spi) : spi_(spi) {}
    // 55000 unless this is an OMERO database with the shape colour columns.
    void require_omero();
    // Serialises conversions and purges, per transaction (so per batch in the procedure).
    void lock();
    // The same lock in shared mode: the workers of a parallel run (their batches are disjoint),
    // while their caller holds lock_parallel_run(), so no other parallel run shares it with them.
    void lock_shared();
    // One parallel run at a time, per transaction (the caller's while its workers run).
    void lock_parallel_run();
    // Nothing journaled at all / a chunk whose id range overlaps [lo, hi].
    bool empty();
    bool overlaps(int64_t lo, int64_t hi);
    // A new run (its scope: the id lists, all NULL for every shape); interrupted ones it takes over.
    int64_t start_run(const std::string &direction, const char *method, const std::optional<Ids> &roi_ids,
                      const std::optional<Ids> &image_ids, const std::optional<Ids> &shape_ids, int64_t selected);
    void count_batch(int64_t run_id, int64_t converted, int64_t restored, int64_t already, int64_t changed,
                     int64_t purged, int64_t raced);
    // The run's number of shapes in scope, once known (a ROI subset counts them as it goes).
    void set_selected(int64_t run_id, int64_t selected);
    // covered_to: for an all-shapes run, the highest shape id it covered (see color_runs).
    void finish_run(int64_t run_id, std::optional<int64_t> covered_to = std::nullopt);
    // The covered_to of the newest finished all-shapes run, if it was in this direction: shapes above
    // it with no journal entry are newer than that conversion, so already in its result state.
    std::optional<int64_t> covered_to(const std::string &direction);
    // Shapes the fast path must not touch: newest journal chunk a conversion (either direction),
    // or anything (conversion or restore) by `direction` itself, i.e. already in its result state.
    // Returns {already by direction (either kind), converted by the opposite direction}.
    std::pair<int64_t, int64_t> not_original_for(const std::string &direction);
    // Journals every shape as converted by this run (the rewrite fast path), one chunk per id range.
    // Returns the number of shapes journaled.
    int64_t journal_whole_table(const std::string &shape, int64_t run_id, const std::string &direction,
                                const std::function<void(int64_t)> &on_chunk = {});

private:
    spi::Session &spi_;
};

} // namespace ou::colors
