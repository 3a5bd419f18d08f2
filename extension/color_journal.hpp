// The colour conversion's journal and run log (omero_upgrade.color_journal, color_runs):
// see extension/sql/40_colors.sql for the layout and the meaning of a shape's state.
#pragma once

#include "spi.hpp"

#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace ou::colors {

// Each shape's newest journal chunk: columns id, kind, direction, purged, done_at, run_id.
const char *colors_state_sql();

int32_t argb_to_rgba(int32_t v);
int32_t rgba_to_argb(int32_t v);

// 'argb_to_rgba' or 'rgba_to_argb', else a clear 22023 error.
void check_direction(const std::string &direction);
std::string opposite(const std::string &direction);

class Journal {
public:
    explicit Journal(spi::Session &spi) : spi_(spi) {}
    // 55000 unless this is an OMERO database with the shape colour columns.
    void require_omero();
    // The schema-qualified SQL function of a direction's formula (for SQL text we build).
    std::string function_for(const std::string &direction);
    // Serialises conversions and purges, per transaction (so per batch in the procedure).
    void lock();
    int64_t start_run(const std::string &direction, const char *method, const Datum ids[3], const bool has[3],
                      int64_t selected);
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
    int64_t journal_whole_table(int64_t run_id, const std::string &direction,
                                const std::function<void(int64_t)> &on_chunk = {});

private:
    spi::Session &spi_;
    std::string schema_;
};

} // namespace ou::colors
