// One batch of the colour conversion, as the batch engine (colors_batch.cpp) and its parallel
// workers (colors_parallel.cpp) both run it: one statement that reads the batch's shapes and
// their journal state, updates the colours and journals the batch.
#pragma once

#include "colors.hpp"
#include "colors_sql.hpp"

#include <optional>

namespace ou::colors {

class Journal;

// The shapes of one batch: ids in [lo, hi] (and, for a subset, in ids).
struct Batch {
    int64_t lo = 0, hi = 0, n = 0;
    std::optional<Ids> ids;
};

// The statements of a run's batches, built once.
class BatchStatements {
public:
    // all: every shape (batches by primary-key range), else a listed subset.
    BatchStatements(const Names &n, bool all, bool dry_run);
    // Converts (or, in a dry run, counts) one batch; the caller holds the journal lock. run_id:
    // the run journaling it; covered: the covered_to of a completed run in this direction (all
    // shapes); want: how many sample shapes to return.
    Summary convert(spi::Session &spi, Journal &jr, const std::string &direction, int64_t run_id,
                    std::optional<int64_t> covered, const Batch &b, int32_t want) const;

private:
    const bool all_, dry_run_;
    const std::string batch_sql_, lean_sql_;
};

} // namespace ou::colors
