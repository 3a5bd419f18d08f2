// See colors_plan.hpp. Each lookup uses an index: shape_pkey, shape(roi), roi(image).
#include "colors_plan.hpp"

namespace ou::colors {

void check_ids_exist(spi::Session &spi, const Names &n, const Request &r)
{
    struct List {
        const std::optional<Ids> &ids;
        const std::string &table;
        const char *arg, *what;
    };
    const List lists[3] = {{r.roi_ids, n.roi, "roi_ids", "ROI"},
                           {r.image_ids, n.image, "image_ids", "image"},
                           {r.shape_ids, n.shape, "shape_ids", "shape"}};
    for (const List &l : lists) {
        if (!l.ids)
            continue;
        auto res = spi.query("SELECT pg_catalog.count(*), (pg_catalog.array_agg(x ORDER BY x))[1:10]::pg_catalog.text"
                             "  FROM (SELECT DISTINCT x FROM pg_catalog.unnest($1::pg_catalog.int8[]) x) u"
                             " WHERE NOT EXISTS (SELECT 1 FROM " + l.table + " t WHERE t.id = u.x)",
                             {spi::int8_array(*l.ids)}, true);
        int64_t missing = std::stoll(res.rows[0][0].value_or("0"));
        if (missing > 0)
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                        std::to_string(missing) + " of the " + l.arg + " do not exist",
                        std::string("missing ") + l.what + " ids (first 10): " + res.rows[0][1].value_or(""),
                        "Check the ids; nothing was changed.");
    }
}

Ids select_subset(spi::Session &spi, const Names &n, const Request &r)
{
    std::vector<std::string> parts;
    if (r.roi_ids)
        parts.push_back("SELECT id FROM " + n.shape + " WHERE roi = ANY ($1::pg_catalog.int8[])");
    if (r.image_ids)
        parts.push_back("SELECT s.id FROM " + n.roi + " r JOIN " + n.shape +
                        " s ON s.roi = r.id WHERE r.image = ANY ($2::pg_catalog.int8[])");
    if (r.shape_ids)
        parts.push_back("SELECT id FROM " + n.shape + " WHERE id = ANY ($3::pg_catalog.int8[])");
    std::string sql = "SELECT id FROM (";
    for (size_t i = 0; i < parts.size(); i++)
        sql += (i ? " UNION " : "") + parts[i];
    sql += ") u ORDER BY id";
    auto res = spi.query(sql, {spi::int8_array(r.roi_ids), spi::int8_array(r.image_ids), spi::int8_array(r.shape_ids)},
                         true);
    Ids ids;
    ids.reserve(res.rows.size());
    for (auto &row : res.rows)
        ids.push_back(std::stoll(*row[0]));
    return ids;
}

Ids roi_scope(spi::Session &spi, const Names &n, const Request &r)
{
    auto res = spi.query("WITH r AS (SELECT x AS id FROM pg_catalog.unnest($1::pg_catalog.int8[]) x"
                         "           UNION SELECT id FROM " + n.roi + " WHERE image = ANY ($2::pg_catalog.int8[]))"
                         " SELECT coalesce(pg_catalog.array_agg(id), '{}')::pg_catalog.text AS rois FROM r",
                         {spi::int8_array(r.roi_ids), spi::int8_array(r.image_ids)}, true);
    return parse_id_array(res.str(0, "rois"));
}

int64_t count_scope(spi::Session &spi, const Names &n, const Ids &rois)
{
    return std::stoll(spi.scalar("SELECT pg_catalog.count(*) FROM " + n.shape + " WHERE roi = ANY ($1)",
                                 {spi::int8_array(rois)}, true)
                          .value_or("0"));
}

} // namespace ou::colors
