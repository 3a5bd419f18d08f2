// omero_annotations_move_to_wells() and the procedure omero_annotations_move_to_wells_in_batches():
// what the official Move_Annotations script does through a live server, done in the database
// while no server runs. For each chosen Well, the annotations linked to the Images of its
// WellSamples (optionally of one kind and/or one namespace) are linked to the Well, once per
// (well, annotation, owner), never duplicating an existing wellannotationlink; a new link keeps
// the owner, group and permissions of the image link it comes from. Optionally the image links
// whose annotation is now on every Well of their Image (for that owner) are removed.
//
// Every change is made the way the server would make it: ids from ome_nextval(), one new OMERO
// event per group (in a new closed session of root, type Internal) as creation/update event of
// the new links, and an eventlog row per inserted or deleted link (INSERT/DELETE), so that
// OMERO's indexer and its other event readers see normal objects.
//
// The work goes by batches of wells (set-based SQL per batch, ids and events allocated once per
// batch). The procedure commits after each batch; a re-run finds the done work and skips it.
#include "args.hpp"
#include "history.hpp"
#include "omero.hpp"
#include "progress.hpp"
#include "srf.hpp"

extern "C" {
#include "catalog/pg_type.h"
}

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ou {
namespace {

const char *const rating_ns = "openmicroscopy.org/omero/insight/rating";

// Annotation kinds a caller may choose, and the annotation discriminators they stand for.
// The official script offers Tag, File, Comment, Rating (long annotations in the rating
// namespace) and Key-Value (map annotations); the other kinds OMERO has are here too.
struct Kind {
    const char *name;
    const char *discriminator;  // nullptr: every kind
    const char *ns;             // namespace the kind implies, or nullptr
};
const Kind kinds[] = {
    {"all", nullptr, nullptr},
    {"tag", "/basic/text/tag/", nullptr},
    {"comment", "/basic/text/comment/", nullptr},
    {"xml", "/basic/text/xml/", nullptr},
    {"file", "/type/OriginalFile/", nullptr},
    {"map", "/map/", nullptr},
    {"key-value", "/map/", nullptr},
    {"rating", "/basic/num/long/", rating_ns},
    {"long", "/basic/num/long/", nullptr},
    {"double", "/basic/num/double/", nullptr},
    {"boolean", "/basic/bool/", nullptr},
    {"bool", "/basic/bool/", nullptr},
    {"term", "/basic/term/", nullptr},
    {"timestamp", "/basic/time/", nullptr},
    {"time", "/basic/time/", nullptr},
    {"list", "/list/", nullptr},
};

using Ids = std::vector<int64_t>;

struct Options {
    std::optional<Ids> screens, plates, wells;
    std::optional<std::string> discriminator, ns;
    bool remove = false;
    bool dry_run = true;
    int batch_size = 10000;
};

struct PlateStats {
    int64_t wells = 0, wells_without_samples = 0, image_links = 0, created = 0, present = 0, removed = 0;
};
using Report = std::map<int64_t, PlateStats>;

std::string lower(std::string s)
{
    for (char &c : s)
        c = (char)std::tolower((unsigned char)c);
    return s;
}

// An id list argument: NULL, or its ids sorted without repeats.
std::optional<Ids> id_list(const Args &args, int n, const char *name)
{
    auto ids = args.int8_array(n, name, "ids");
    if (ids) {
        std::sort(ids->begin(), ids->end());
        ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
    }
    return ids;
}

std::string id_text(const Ids &ids, size_t max)
{
    std::string s = "{";
    for (size_t i = 0; i < ids.size() && i < max; i++)
        s += (i ? "," : "") + std::to_string(ids[i]);
    return s + (ids.size() > max ? ",…}" : "}");
}

// The kind a caller chose (NULL: every kind), else 22023 naming the known kinds.
const Kind &kind_arg(const Args &args, int n)
{
    auto kind = args.opt_text(n);
    if (!kind)
        return kinds[0];
    std::string want = lower(*kind);
    for (const Kind &c : kinds)
        if (want == c.name)
            return c;
    std::string names;
    for (const Kind &c : kinds)
        names += (names.empty() ? "" : ", ") + std::string(c.name);
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown annotation kind \"" + *kind + "\"",
                "Known kinds: " + names + ".", "Pass one of the known kinds, or NULL for every kind.");
}

// Arguments in the order both SQL entry points share: screen_ids, plate_ids, well_ids,
// annotation_kind, ns, remove_image_links, dry_run, batch_size.
Options read_options(const Args &args)
{
    Options o;
    o.screens = id_list(args, 0, "screen_ids");
    o.plates = id_list(args, 1, "plate_ids");
    o.wells = id_list(args, 2, "well_ids");
    if ((!o.screens || o.screens->empty()) && (!o.plates || o.plates->empty()) && (!o.wells || o.wells->empty()))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "no screens, plates or wells chosen",
                    "screen_ids, plate_ids and well_ids are all NULL or empty.",
                    "Pass the ids to work on, e.g. plate_ids => '{2,3}', or every plate: "
                    "plate_ids => (SELECT array_agg(id) FROM plate).");
    const Kind &k = kind_arg(args, 3);
    if (k.discriminator)
        o.discriminator = k.discriminator;
    o.ns = args.opt_text(4);
    if (k.ns) {
        if (o.ns && *o.ns != k.ns)
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                        "annotation kind \"" + std::string(k.name) + "\" implies namespace " + k.ns,
                        "ns was given as \"" + *o.ns + "\".",
                        "Leave ns NULL, or choose kind \"long\" to filter long annotations by another namespace.");
        o.ns = k.ns;
    }
    o.remove = args.flag(5, "remove_image_links", "Pass true to remove the image links moved, false to keep them.");
    o.dry_run = args.flag(6, "dry_run", "Pass true to report only, false to move the annotations.");
    o.batch_size = args.batch_size(7, "wells", 10000);
    return o;
}

Ids ids_of(const spi::Result &r, const char *col)
{
    Ids ids;
    ids.reserve(r.rows.size());
    for (size_t i = 0; i < r.rows.size(); i++)
        ids.push_back(r.int64(i, col));
    return ids;
}

// OMERO's objects, schema-qualified (the schema resolved once for the call).
// Through omero_name(): each relation checked to be a table (and locked) once per transaction.
struct Omero {
    explicit Omero(spi::Session &spi) : spi_(&spi), schema(ou::omero_schema(spi)) {}
    std::string operator()(const char *name) const { return ou::omero_name(*spi_, name); }
    spi::Session *spi_;
    std::string schema;
};

void require_table(spi::Session &spi, const Omero &t, const char *table)
{
    auto v = spi.scalar("SELECT pg_catalog.to_regclass($1) IS NOT NULL", {spi::text(t(table))}, true);
    if (!v || *v != "t")
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    std::string("this OMERO database has no table ") + table,
                    "Moving annotations to Wells needs OMERO's screen/plate/well and annotation link tables.");
}

// Ids among `ids` that have no row in `table` (a fixed name of ours, never user text).
void require_ids(spi::Session &spi, const Omero &t, const std::optional<Ids> &ids, const char *table,
                 const char *what)
{
    if (!ids || ids->empty())
        return;
    auto r = spi.query("SELECT x FROM pg_catalog.unnest($1::pg_catalog.int8[]) AS x WHERE NOT EXISTS (SELECT 1 FROM " +
                           t(table) + " AS t WHERE t.id = x) ORDER BY x",
                       {spi::int8_array(*ids)}, true);
    if (r.empty())
        return;
    Ids missing = ids_of(r, "x");
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                std::to_string(missing.size()) + " of the " + std::to_string(ids->size()) + " " + what +
                    " id(s) given do not exist",
                "Missing " + std::string(what) + " ids: " + id_text(missing, 20) + ".",
                "Check the ids; nothing was changed.");
}

// Everything needed to record changes as OMERO does, looked up before anything changes.
struct Recorder {
    int64_t root = 0, node = 0, event_type = 0;
    int64_t session = -1;              // created on first use
    std::map<int64_t, int64_t> events;  // group id → event id of this operation
};

Recorder prepare_recorder(spi::Session &spi, const Omero &t)
{
    auto fn = spi.scalar("SELECT pg_catalog.to_regprocedure($1) IS NOT NULL",
                         {spi::text(t("ome_nextval") + "(pg_catalog.varchar, pg_catalog.int4)")}, true);
    if (!fn || *fn != "t")
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "this OMERO database has no function ome_nextval(varchar, int4)",
                    "New rows take their ids from OMERO's own id function, as the server does.");
    for (const char *table : {"event", "eventtype", "eventlog", "session", "node", "experimenter"})
        require_table(spi, t, table);
    Recorder rec;
    auto root = spi.scalar("SELECT id FROM " + t("experimenter") + " WHERE omename::pg_catalog.text = 'root'", {}, true);
    auto type = spi.scalar("SELECT id FROM " + t("eventtype") + " WHERE value::pg_catalog.text = 'Internal'", {}, true);
    auto node = spi.scalar("SELECT pg_catalog.min(id) FROM " + t("node"), {}, true);
    if (!root || !type || !node)
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "this OMERO database lacks the root experimenter, the event type Internal or a node",
                    "They are needed to record the change as an OMERO event.");
    rec.root = std::stoll(*root);
    rec.event_type = std::stoll(*type);
    rec.node = std::stoll(*node);
    return rec;
}

// One new event per group, in one new (closed) session of root: the record of this operation.
// Ids come from OMERO's ome_nextval: OMERO's code.
void ensure_events(spi::Session &spi, const Omero &t, Recorder &rec, const std::set<int64_t> &groups)
{
    with_omero_code(spi, [&] {
        for (int64_t g : groups) {
            if (rec.events.count(g))
                continue;
            if (rec.session < 0) {
                auto id = spi.scalar(
                    "INSERT INTO " + t("session") +
                        " (id, permissions, timetoidle, timetolive, started, closed, defaulteventtype,"
                        "  uuid, owner, node, useragent, message, version)"
                        " VALUES (" + t("ome_nextval") + "('seq_session'::pg_catalog.varchar), -52, 0, 0,"
                        "         LOCALTIMESTAMP, LOCALTIMESTAMP, 'Internal', pg_catalog.gen_random_uuid()::pg_catalog.text,"
                        "         $1, $2, 'omero_upgrade', 'omero_upgrade: annotations moved from Images to Wells', 0)"
                        " RETURNING id",
                    {spi::int8(rec.root), spi::int8(rec.node)});
                rec.session = std::stoll(id.value());
            }
            auto ev = spi.scalar("INSERT INTO " + t("event") +
                                     " (id, permissions, \"time\", status, containingevent, experimenter,"
                                     "  experimentergroup, \"session\", type)"
                                     " VALUES (" + t("ome_nextval") + "('seq_event'::pg_catalog.varchar), -52,"
                                     "         LOCALTIMESTAMP, NULL, NULL, $1, $2, $3, $4)"
                                     " RETURNING id",
                                 {spi::int8(rec.root), spi::int8(g), spi::int8(rec.session), spi::int8(rec.event_type)});
            rec.events[g] = std::stoll(ev.value());
        }
    });
}

// The first of n new ids of an OMERO sequence (ome_nextval returns the last one).
int64_t allocate(spi::Session &spi, const Omero &t, const char *seq, int64_t n)
{
    auto last = with_omero_code(spi, [&] {
        return spi.scalar("SELECT " + t("ome_nextval") + "($1::pg_catalog.varchar, $2::pg_catalog.int4)",
                          {spi::text(seq), spi::int4((int32_t)n)});
    });
    return std::stoll(last.value()) - n + 1;
}

// $1 wells of the batch (int8[]), $2 discriminator or NULL, $3 namespace or NULL.
// l: the matching image links of the Images of the batch's Wells, one row per (well, link);
// c: one candidate per (well, annotation, owner), from its lowest image link, and whether the
//    Well already has a link to that annotation for that owner.
std::string cte_links(const Omero &t, const std::string &extra_where = "")
{
    return "WITH l AS ("
           "  SELECT w.id AS well, w.plate, il.id AS link_id, il.parent AS image, il.child, il.owner_id,"
           "         il.group_id, il.permissions"
           "    FROM pg_catalog.unnest($1::pg_catalog.int8[]) AS b(id)"
           "    JOIN " + t("well") + " AS w ON w.id = b.id"
           "    JOIN " + t("wellsample") + " AS ws ON ws.well = w.id"
           "    JOIN " + t("imageannotationlink") + " AS il ON il.parent = ws.image"
           "    JOIN " + t("annotation") + " AS a ON a.id = il.child"
           "   WHERE ($2::pg_catalog.text IS NULL"
           "          OR a.discriminator::pg_catalog.text OPERATOR(pg_catalog.=) $2::pg_catalog.text)"
           "     AND ($3::pg_catalog.text IS NULL OR a.ns::pg_catalog.text OPERATOR(pg_catalog.=) $3::pg_catalog.text)" +
           extra_where + "),"
           " c AS ("
           "  SELECT DISTINCT ON (l.well, l.child, l.owner_id) l.well, l.plate, l.child, l.owner_id, l.group_id,"
           "         l.permissions,"
           "         EXISTS (SELECT 1 FROM " + t("wellannotationlink") + " AS x"
           "                  WHERE x.parent = l.well AND x.child = l.child AND x.owner_id = l.owner_id) AS present"
           "    FROM l ORDER BY l.well, l.child, l.owner_id, l.link_id)";
}

// A dry run changes nothing, so what earlier batches would have done is simulated. $5 chosen
// plates (int8[], screens' included), $6 chosen wells (int8[]), $7 the lowest well of the batch:
// a chosen well below it was in an earlier batch, so it has its well links by now.
std::string earlier(const Omero &t, const char *w)
{
    return std::string("(") + w + " < $7::pg_catalog.int8 AND EXISTS (SELECT 1 FROM " + t("well") +
           " AS we WHERE we.id = " + w +
           " AND (we.plate = ANY ($5::pg_catalog.int8[]) OR we.id = ANY ($6::pg_catalog.int8[]))))";
}

// Dry run, l: without the image links an earlier batch would have removed (their Image had a
// chosen Well there, and each of its other Wells has the link or was in an earlier batch).
std::string dry_gone(const Omero &t)
{
    return "     AND NOT ($4::pg_catalog.bool"
           "          AND EXISTS (SELECT 1 FROM " + t("wellsample") + " AS wa WHERE wa.image = il.parent AND " +
           earlier(t, "wa.well") + ")"
           "          AND NOT EXISTS (SELECT 1 FROM " + t("wellsample") + " AS wb"
           "                           WHERE wb.image = il.parent AND NOT " + earlier(t, "wb.well") +
           "                             AND NOT EXISTS (SELECT 1 FROM " + t("wellannotationlink") + " AS x"
           "                                              WHERE x.parent = wb.well AND x.child = il.child"
           "                                                AND x.owner_id = il.owner_id)))";
}

// What a batch would do. An image link goes only when every Well of its Image has (or, being
// in this batch, gets) the annotation for the link's owner: nothing is lost, even for an Image
// in several Wells. $4: whether links are removed. A dry run also counts as having the link a
// Well of an earlier batch (earlier()).
std::string sql_plan(const Omero &t, bool dry_run)
{
    return " , r AS ("
           "  SELECT DISTINCT ON (l.link_id) l.link_id, l.plate, l.group_id FROM l"
           "   WHERE $4::pg_catalog.bool AND NOT EXISTS ("
           "         SELECT 1 FROM " + t("wellsample") + " AS ws2"
           "          WHERE ws2.image = l.image"
           "            AND ws2.well NOT IN (SELECT b.id FROM pg_catalog.unnest($1::pg_catalog.int8[]) AS b(id))"
           "            AND NOT EXISTS (SELECT 1 FROM " + t("wellannotationlink") + " AS x"
           "                             WHERE x.parent = ws2.well AND x.child = l.child AND x.owner_id = l.owner_id)" +
           (dry_run ? " AND NOT " + earlier(t, "ws2.well") : "") +
           ")"
           "   ORDER BY l.link_id, l.well)"
           " SELECT 'links' AS what, s.plate, NULL::pg_catalog.int8 AS grp, pg_catalog.count(*) AS n"
           "   FROM (SELECT DISTINCT plate, link_id FROM l) AS s GROUP BY s.plate"
           " UNION ALL"
           " SELECT CASE WHEN present THEN 'present' ELSE 'new' END, plate, group_id, pg_catalog.count(*)"
           "   FROM c GROUP BY 1, 2, 3"
           " UNION ALL"
           " SELECT 'remove', plate, group_id, pg_catalog.count(*) FROM r GROUP BY 2, 3";
}

// $4 first new link id, $5 first new eventlog id, $6 groups (int8[]), $7 their events (int8[]).
std::string sql_insert(const Omero &t)
{
    return " , n AS (SELECT c.*, pg_catalog.row_number() OVER (ORDER BY c.well, c.child, c.owner_id) AS rn"
           "           FROM c WHERE NOT c.present),"
           " ins AS ("
           "  INSERT INTO " + t("wellannotationlink") +
           " (id, permissions, version, parent, child, creation_id, group_id, owner_id, update_id)"
           "  SELECT $4::pg_catalog.int8 + n.rn - 1, n.permissions, 0, n.well, n.child, e.event, n.group_id, n.owner_id,"
           "         e.event"
           "    FROM n JOIN ROWS FROM (pg_catalog.unnest($6::pg_catalog.int8[]), pg_catalog.unnest($7::pg_catalog.int8[])) AS e(grp, event)"
           "      ON e.grp = n.group_id"
           "  RETURNING id, parent, creation_id),"
           " log AS ("
           "  INSERT INTO " + t("eventlog") + " (id, action, permissions, entityid, entitytype, event)"
           "  SELECT $5::pg_catalog.int8 + pg_catalog.row_number() OVER (ORDER BY ins.id) - 1, 'INSERT', -52, ins.id,"
           "         'ome.model.annotations.WellAnnotationLink', ins.creation_id"
           "    FROM ins"
           "  RETURNING 1)"
           " SELECT w.plate, pg_catalog.count(*) AS n, (SELECT pg_catalog.count(*) FROM log) AS logged"
           "   FROM ins JOIN " + t("well") + " AS w ON w.id = ins.parent GROUP BY w.plate";
}

// Deletes what sql_plan's r predicted (now that the new well links exist, "gets" is "has").
// $4 first new eventlog id, $5 groups (int8[]), $6 their events (int8[]).
std::string sql_delete(const Omero &t)
{
    return " , d AS ("
           "  DELETE FROM " + t("imageannotationlink") + " AS il"
           "   WHERE il.id IN (SELECT link_id FROM l)"
           "     AND NOT EXISTS ("
           "         SELECT 1 FROM " + t("wellsample") + " AS ws2"
           "          WHERE ws2.image = il.parent"
           "            AND NOT EXISTS (SELECT 1 FROM " + t("wellannotationlink") + " AS x"
           "                             WHERE x.parent = ws2.well AND x.child = il.child AND x.owner_id = il.owner_id))"
           "  RETURNING il.id, il.group_id),"
           " log AS ("
           "  INSERT INTO " + t("eventlog") + " (id, action, permissions, entityid, entitytype, event)"
           "  SELECT $4::pg_catalog.int8 + pg_catalog.row_number() OVER (ORDER BY d.id) - 1, 'DELETE', -52, d.id,"
           "         'ome.model.annotations.ImageAnnotationLink', e.event"
           "    FROM d JOIN ROWS FROM (pg_catalog.unnest($5::pg_catalog.int8[]), pg_catalog.unnest($6::pg_catalog.int8[])) AS e(grp, event)"
           "      ON e.grp = d.group_id"
           "  RETURNING 1)"
           " SELECT p.plate, pg_catalog.count(*) AS n, (SELECT pg_catalog.count(*) FROM log) AS logged"
           "   FROM d JOIN (SELECT DISTINCT ON (link_id) link_id, plate FROM l ORDER BY link_id, well) AS p"
           "     ON p.link_id = d.id"
           "  GROUP BY p.plate";
}

void events_params(const Recorder &rec, const std::set<int64_t> &groups, std::vector<spi::Param> &params)
{
    Ids g(groups.begin(), groups.end()), e;
    for (int64_t x : g)
        e.push_back(rec.events.at(x));
    params.push_back(spi::int8_array(g));
    params.push_back(spi::int8_array(e));
}

// Every plate to report on (those with no wells too) into report; returns the chosen wells that
// have samples (a well without samples has nothing to move).
Ids chosen_wells(spi::Session &spi, const Omero &t, const Options &o, Report &report)
{
    const std::vector<spi::Param> ids{spi::int8_array(o.screens), spi::int8_array(o.plates), spi::int8_array(o.wells)};
    const std::string plates = "SELECT pg_catalog.unnest($2::pg_catalog.int8[]) AS id"
                               " UNION SELECT child FROM " + t("screenplatelink") +
                               " WHERE parent = ANY ($1::pg_catalog.int8[])";
    auto p = spi.query(plates + " UNION SELECT plate FROM " + t("well") + " WHERE id = ANY ($3::pg_catalog.int8[])",
                       ids, true);
    for (int64_t plate : ids_of(p, "id"))
        report[plate];
    auto wells = spi.query("SELECT w.id, w.plate, EXISTS (SELECT 1 FROM " + t("wellsample") +
                               " AS ws WHERE ws.well = w.id) AS samples"
                               "  FROM " + t("well") + " AS w"
                               " WHERE w.plate = ANY (ARRAY(" + plates + ")) OR w.id = ANY ($3::pg_catalog.int8[])"
                               " ORDER BY w.id",
                           ids, true);
    Ids well_ids;
    well_ids.reserve(wells.rows.size());
    for (size_t i = 0; i < wells.rows.size(); i++) {
        PlateStats &ps = report[wells.int64(i, "plate")];
        ps.wells++;
        if (wells.str(i, "samples") != "t")
            ps.wells_without_samples++;
        else
            well_ids.push_back(wells.int64(i, "id"));
    }
    return well_ids;
}

// The plates the user chose (screens' included), for a dry run's simulation of earlier batches.
Ids chosen_plates(spi::Session &spi, const Omero &t, const Options &o)
{
    auto cp = spi.query("SELECT pg_catalog.unnest($2::pg_catalog.int8[]) AS id UNION SELECT child FROM " +
                            t("screenplatelink") + " WHERE parent = ANY ($1::pg_catalog.int8[])",
                        {spi::int8_array(o.screens), spi::int8_array(o.plates)}, true);
    return ids_of(cp, "id");
}

// What a batch holds and would do, per plate into report; the links to create and remove.
struct BatchPlan {
    int64_t n_new = 0, n_remove = 0;
    std::set<int64_t> new_groups, remove_groups;
};

BatchPlan plan_batch(const spi::Result &plan, bool dry_run, Report &report)
{
    BatchPlan b;
    for (size_t i = 0; i < plan.rows.size(); i++) {
        std::string kind = plan.str(i, "what");
        PlateStats &ps = report[plan.int64(i, "plate")];
        int64_t n = plan.int64(i, "n");
        if (kind == "links")
            ps.image_links += n;
        else if (kind == "present")
            ps.present += n;
        else if (kind == "new") {
            b.n_new += n;
            b.new_groups.insert(plan.int64(i, "grp"));
            if (dry_run)
                ps.created += n;
        } else if (kind == "remove") {
            b.n_remove += n;
            b.remove_groups.insert(plan.int64(i, "grp"));
            if (dry_run)
                ps.removed += n;
        }
    }
    return b;
}

// Each plate's count into report (created or removed); every row logged, the total as planned.
void tally(const spi::Result &r, int64_t planned, int64_t PlateStats::*count, const char *what, Report &report)
{
    int64_t done = 0;
    for (size_t i = 0; i < r.rows.size(); i++) {
        report[r.int64(i, "plate")].*count += r.int64(i, "n");
        done += r.int64(i, "n");
        if (r.int64(i, "logged") != planned)
            done = -1;
    }
    if (done != planned)
        throw Error(ERRCODE_INTERNAL_ERROR, std::string("omero_upgrade: ") + what + " differ from the plan",
                    "planned " + std::to_string(planned) + ", done " + std::to_string(done));
}

// The writes of one batch: new well links, then the image links that may go, each with its
// eventlog rows. OMERO's triggers fire on these tables, and ids come from ome_nextval: OMERO's code.
void apply_batch(spi::Session &spi, const Omero &t, Recorder &rec, const BatchPlan &b,
                 const std::vector<spi::Param> &filter, Report &report)
{
    if (b.n_new > 0) {
        ensure_events(spi, t, rec, b.new_groups);
        int64_t first = allocate(spi, t, "seq_wellannotationlink", b.n_new);
        int64_t first_log = allocate(spi, t, "seq_eventlog", b.n_new);
        std::vector<spi::Param> params = filter;
        params.insert(params.end(), {spi::int8(first), spi::int8(first_log)});
        events_params(rec, b.new_groups, params);
        auto r = with_omero_code(spi, [&] { return spi.query(cte_links(t) + sql_insert(t), params); });
        tally(r, b.n_new, &PlateStats::created, "well links inserted", report);
    }
    if (b.n_remove > 0) {
        ensure_events(spi, t, rec, b.remove_groups);
        int64_t first_log = allocate(spi, t, "seq_eventlog", b.n_remove);
        std::vector<spi::Param> params = filter;
        params.push_back(spi::int8(first_log));
        events_params(rec, b.remove_groups, params);
        auto r = with_omero_code(spi, [&] { return spi.query(cte_links(t) + sql_delete(t), params); });
        tally(r, b.n_remove, &PlateStats::removed, "image links removed", report);
    }
}

Report run_move(spi::Session &spi, const Options &o, bool commit_batches)
{
    require_db_version(spi);
    const Omero t(spi);
    for (const char *table : {"screen", "plate", "well", "wellsample", "screenplatelink", "annotation",
                              "imageannotationlink", "wellannotationlink"})
        require_table(spi, t, table);
    require_ids(spi, t, o.screens, "screen", "screen");
    require_ids(spi, t, o.plates, "plate", "plate");
    require_ids(spi, t, o.wells, "well", "well");
    Recorder rec;
    if (!o.dry_run)
        rec = prepare_recorder(spi, t);

    Report report;
    const Ids well_ids = chosen_wells(spi, t, o, report);
    // For a dry run's simulation of earlier batches (sql_plan): what the user chose.
    const spi::Param plates = spi::int8_array(o.dry_run ? chosen_plates(spi, t, o) : Ids{});
    const spi::Param wells = spi::int8_array(o.wells ? *o.wells : Ids{});
    const spi::Param disc = o.discriminator ? spi::text(*o.discriminator) : spi::null(TEXTOID);
    const spi::Param ns = o.ns ? spi::text(*o.ns) : spi::null(TEXTOID);

    Progress progress(o.dry_run ? "move annotations to wells (dry run)" : "move annotations to wells", "wells",
                      (int64_t)well_ids.size());
    for (size_t from = 0; from < well_ids.size(); from += (size_t)o.batch_size) {
        check_interrupts();
        size_t to = std::min(well_ids.size(), from + (size_t)o.batch_size);
        const std::vector<spi::Param> filter{spi::int8_array(Ids(well_ids.begin() + from, well_ids.begin() + to)),
                                             disc, ns};
        if (!o.dry_run)
            // Keeps other writers out while counts, ids and rows of this batch must agree.
            spi.exec("LOCK TABLE " + t("wellannotationlink") + ", " + t("imageannotationlink") +
                     " IN SHARE ROW EXCLUSIVE MODE");
        std::vector<spi::Param> plan_params = filter;
        plan_params.push_back(spi::boolean(o.remove));
        if (o.dry_run)
            plan_params.insert(plan_params.end(), {plates, wells, spi::int8(well_ids[from])});
        auto plan = spi.query(cte_links(t, o.dry_run ? dry_gone(t) : "") + sql_plan(t, o.dry_run), plan_params,
                              o.dry_run);
        const BatchPlan b = plan_batch(plan, o.dry_run, report);
        if (!o.dry_run)
            apply_batch(spi, t, rec, b, filter, report);
        if (commit_batches && !o.dry_run)
            spi.commit();
        if (to < well_ids.size())
            progress.update((int64_t)to);
    }
    // The closing NOTICE only for runs long enough to have shown progress: short runs stay quiet.
    if (!well_ids.empty() && progress.elapsed() >= 2.0)
        progress.finish((int64_t)well_ids.size());
    if (!o.dry_run) {
        int64_t created = 0, removed = 0;
        for (const auto &[plate, st] : report) {
            created += st.created;
            removed += st.removed;
        }
        record_history(spi, "wells", "annotations moved from images to wells",
                       "{\"wells\": " + std::to_string(well_ids.size()) + ", \"plates\": " + std::to_string(report.size()) +
                           ", \"links_created\": " + std::to_string(created) + ", \"links_removed\": " +
                           std::to_string(removed) + ", \"remove_image_links\": " + (o.remove ? "true" : "false") +
                           ", \"batch_size\": " + std::to_string(o.batch_size) + "}");
        if (commit_batches)
            spi.commit();
    }
    return report;
}

} // namespace
} // namespace ou

using namespace ou;

OU_FUNCTION(omero_annotations_move_to_wells)
{
    return boundary([&] {
        Options o = read_options(Args(fcinfo));
        Report report;
        {
            spi::Session spi;
            report = run_move(spi, o, false);
        }
        srf::Writer out(fcinfo);
        for (const auto &[plate, s] : report)
            out.put({srf::Cell::int8(plate), srf::Cell::int8(s.wells), srf::Cell::int8(s.wells_without_samples),
                     srf::Cell::int8(s.image_links), srf::Cell::int8(s.created), srf::Cell::int8(s.present),
                     srf::Cell::int8(s.removed)});
        return out.done();
    });
}

// CALL outside a transaction block commits after each batch; inside one (atomic) it cannot, and
// runs as one transaction like the function. Returns the totals through its INOUT arguments and
// a NOTICE per plate.
OU_FUNCTION(omero_annotations_move_to_wells_in_batches)
{
    return boundary([&] {
        Args args(fcinfo);
        bool nonatomic = args.nonatomic_call();
        Options o = read_options(args);
        Report report;
        {
            spi::Session spi(nonatomic);
            report = run_move(spi, o, nonatomic);
        }
        PlateStats total;
        for (const auto &[plate, s] : report) {
            total.wells += s.wells;
            total.created += s.created;
            total.removed += s.removed;
            std::string line = std::string(o.dry_run ? "dry run: " : "") + "plate " + std::to_string(plate) + ": " +
                               std::to_string(s.wells) + " well(s) (" + std::to_string(s.wells_without_samples) +
                               " without samples), " + std::to_string(s.image_links) + " image link(s), " +
                               std::to_string(s.created) + (o.dry_run ? " link(s) to create, " : " link(s) created, ") +
                               std::to_string(s.present) + " already on the well, " + std::to_string(s.removed) +
                               (o.dry_run ? " image link(s) to remove" : " image link(s) removed");
            notice(line);
        }
        return srf::composite_result(fcinfo, {srf::Cell::int8(total.wells), srf::Cell::int8(total.created),
                                              srf::Cell::int8(total.removed)});
    });
}
