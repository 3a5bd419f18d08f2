// Parallel batches of CALL omero_colors_convert(…, jobs => N): N dynamic background workers,
// started by the procedure, each claiming the next batch of a list shared in dynamic shared
// memory and committing it (converted and journaled, under the journal lock in shared mode) on
// its own. The caller waits, sums their progress and stops them all when it is cancelled or one
// of them fails (whose error it raises). README, "Design": parallel conversion.
//
// Workers connect to the caller's database as the caller's role (the authenticated role, then the
// current one, as pg_background does), with search_path pg_catalog, pg_temp and the caller's
// omero_upgrade.omero_schema, and run the same checks (require_omero, names) as the caller.
// While they run the caller holds the "parallel run" advisory lock (one parallel run at a time:
// its workers share the journal lock, which every other conversion and purge takes exclusively).
#pragma once

#include "colors_batch.hpp"

#include <memory>
#include <vector>

namespace ou::colors {

// The most jobs a call may ask for (more is 22023).
constexpr int32_t kMaxJobs = 64;

class WorkerPool {
public:
    // Registers and starts `jobs` workers, which wait for work. Refuses (53400) when fewer slots
    // are free (max_worker_processes): nothing is changed then, no worker is left.
    explicit WorkerPool(int jobs);
    // Stops every worker still running and waits until they are gone (also on error or cancel).
    ~WorkerPool();
    WorkerPool(const WorkerPool &) = delete;
    WorkerPool &operator=(const WorkerPool &) = delete;

    // Hands the batches to the workers and waits until all are done; progress is called with the
    // summed counts after each batch. A worker's error is raised here (its SQLSTATE and message);
    // a cancel of the caller stops them all. The caller holds the parallel-run lock.
    Summary run(spi::Session &spi, const std::string &direction, bool all, int64_t run_id,
                std::optional<int64_t> covered, const std::vector<Batch> &batches,
                const std::function<void(const Summary &)> &progress);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace ou::colors
