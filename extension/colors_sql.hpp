// The text of the colour conversion statements (see colors_sql.cpp). Each builder owns its
// parameter numbers, listed at it; names come from colors::Names (never user text).
#pragma once

#include "colors.hpp"

#include <string>

namespace ou::colors {

// How a batch statement finds its shapes.
enum class Selection {
    Range,  // all shapes: id between $1 and $2
    List,   // a listed subset: id in $5 and between $1 and $2
    Rois,   // the shapes of the ROIs in $5, at most $2 of them (a subset that may fit in one statement)
};

// The general batch: each shape's journal state decides (convert, restore, already, changed,
// purged, newer); updates and journals the batch (nothing in a dry run); counts and a sample.
std::string batch_sql(const Names &n, Selection sel, bool dry_run);
// A batch no journal chunk overlaps: every shape has its original colours, so just convert.
std::string lean_sql(const Names &n, Selection sel);
// A ROI subset that fits in one batch, with nothing journaled: one pass over its shapes.
std::string scope_sql(const Names &n);
// The sample of the rewrite (the first 10 shapes, before and after).
std::string rewrite_sample_sql(const Names &n);

} // namespace ou::colors
