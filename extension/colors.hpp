// Shape colours, ARGB <-> RGBA, by phase (as pgvector splits hnsw):
//   colors.cpp         the two formulas, the request, the report, the SQL entry points
//   colors_plan.cpp    which shapes a request means (ids checked, subsets listed or bounded)
//   colors_sql.cpp     the text of every conversion statement (no templating: one builder each)
//   colors_batch.cpp   the batch engine: one statement per batch, commit per batch in the procedure
//   colors_rewrite.cpp the one-pass table rewrite (server stopped, nothing journaled)
//   color_journal.cpp  the journal and run log: the only writer of their rows
//
// Every batch is one SQL statement that reads the batch's shapes and their journal state,
// updates the colours and inserts the journal chunk; in the procedure each batch then commits.
// So a kill or a crash leaves each batch either converted and journaled, or neither: a new CALL
// finds the journaled shapes and skips them (never converting a shape twice).
#pragma once

#include "args.hpp"
#include "spi.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ou::colors {

int32_t argb_to_rgba(int32_t v);
int32_t rgba_to_argb(int32_t v);

// 'argb_to_rgba' or 'rgba_to_argb', else a clear 22023 error.
void check_direction(const std::string &direction);
std::string opposite(const std::string &direction);

// A conversion as the SQL entry points ask for it.
struct Request {
    std::string direction;
    std::optional<Ids> roi_ids, image_ids, shape_ids;
    int32_t batch_size = 50000;
    bool dry_run = false;
    std::string method = "batch";  // the procedure's: auto | batch | rewrite
    int32_t jobs = 1;              // the procedure's: sessions converting batches at once
    bool all() const { return !roi_ids && !image_ids && !shape_ids; }
};

// What a run (or one batch of it) did, or in a dry run would do.
struct Summary {
    static constexpr size_t kSample = 10;
    int64_t run_id = 0;
    int64_t selected = 0, converted = 0, restored = 0, already = 0, changed = 0, purged = 0, raced = 0;
    int64_t newer = 0;  // all-shapes runs: left alone, created after the completed conversion (not selected)
    std::vector<std::string> sample;   // JSON objects
    std::vector<int64_t> changed_ids;  // the first few
    void add(const Summary &b);
};

// The names our statements use, resolved once per call: OMERO's tables (schema-qualified) and
// the two formula functions (in the extension's schema): F the requested one, R its reverse.
struct Names {
    std::string shape, roi, image;
    std::string F, R;
};
Names names_for(spi::Session &spi, const std::string &direction);

// jsonb_agg text of flat objects, split into the objects.
std::vector<std::string> split_json_array(const std::string &json);
// An int8[]'s text ({1,2,3}) as numbers.
Ids parse_id_array(const std::string &s);

// The NOTICE (or WARNING, when shapes were left alone) that ends every conversion.
void report(const char *what, const std::string &direction, const Summary &s, bool dry_run);

// The phases.
class Journal;
Summary convert_by_batches(spi::Session &spi, Journal &jr, const Names &n, const Request &r, bool procedure,
                           bool nonatomic);
void check_rewrite(spi::Session &spi, Journal &jr, const Names &n, const std::string &direction, bool dry_run,
                   bool wait_for_lock);
Summary rewrite_all(spi::Session &spi, Journal &jr, const Names &n, const Request &r);

} // namespace ou::colors
