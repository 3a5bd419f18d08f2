// Which shapes a colour conversion means: the ids given checked, a subset listed (sorted shape
// ids) or, for ROIs and images only, the ROIs to convert by one statement when they fit in a batch.
#pragma once

#include "colors.hpp"

namespace ou::colors {

// Every given id must exist (else 22023, nothing changed).
void check_ids_exist(spi::Session &spi, const Names &n, const Request &r);
// The shape ids of a subset, sorted.
Ids select_subset(spi::Session &spi, const Names &n, const Request &r);
// The ROIs of a subset given by roi_ids and/or image_ids (no shape_ids).
Ids roi_scope(spi::Session &spi, const Names &n, const Request &r);
// How many shapes those ROIs hold, counted on the shape(roi) index (index-only where the
// visibility map allows: a vacuumed table).
int64_t count_scope(spi::Session &spi, const Names &n, const Ids &rois);

} // namespace ou::colors
