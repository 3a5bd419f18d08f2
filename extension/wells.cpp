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
#include "omero.hpp"
#include "progress.hpp"
#include "srf.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
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

// int8[] literal from numbers (never from user text).
std::string array_literal(const Ids &ids, size_t from = 0, size_t to = SIZE_MAX)
{
    std::string s = "{";
    to = std::min(to, ids.size());
    for (size_t i = from; i < to; i++) {
        if (i > from)
            s += ',';
        s += std::to_string(ids[i]);
    }
    return s + "}";
}

spi::Param ids_param(const std::optional<Ids> &ids)
{
    return ids ? spi::text(array_literal(*ids)) : spi::null(TEXTOID);
}

std::optional<Ids> int8_array_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
    if (PG_ARGISNULL(argno))
        return std::nullopt;
    Datum *elems = nullptr;
    bool *nulls = nullptr;
    int n = 0;
    Datum d = PG_GETARG_DATUM(argno);
    pg_guard([&] {
        ArrayType *a = DatumGetArrayTypeP(d);
        deconstruct_array(a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
    });
    Ids ids;
    ids.reserve(n);
    for (int i = 0; i < n; i++) {
        if (nulls[i])
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(name) + " must not contain NULL");
        ids.push_back(DatumGetInt64(elems[i]));
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

std::optional<std::string> text_arg(FunctionCallInfo fcinfo, int argno)
{
    if (PG_ARGISNULL(argno))
        return std::nullopt;
    Datum d = PG_GETARG_DATUM(argno);
    char *s = pg_guard([d] { return text_to_cstring(DatumGetTextPP(d)); });
    return std::string(s);
}

// Arguments in the order both SQL entry points share: screen_ids, plate_ids, well_ids,
// annotation_kind, ns, remove_image_links, dry_run, batch_size.
Options read_options(FunctionCallInfo fcinfo)
{
    Options o;
    o.screens = int8_array_arg(fcinfo, 0, "screen_ids");
    o.plates = int8_array_arg(fcinfo, 1, "plate_ids");
    o.wells = int8_array_arg(fcinfo, 2, "well_ids");
    if ((!o.screens || o.screens->empty()) && (!o.plates || o.plates->empty()) && (!o.wells || o.wells->empty()))
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "no screens, plates or wells chosen",
                    "screen_ids, plate_ids and well_ids are all NULL or empty.",
                    "Pass the ids to work on, e.g. plate_ids => '{2,3}', or every plate: "
                    "plate_ids => (SELECT array_agg(id) FROM plate).");

    auto kind = text_arg(fcinfo, 3);
    const Kind *k = &kinds[0];
    if (kind) {
        k = nullptr;
        std::string want = lower(*kind);
        for (const Kind &c : kinds)
            if (want == c.name)
                k = &c;
        if (!k) {
            std::string names;
            for (const Kind &c : kinds)
                names += (names.empty() ? "" : ", ") + std::string(c.name);
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown annotation kind \"" + *kind + "\"",
                        "Known kinds: " + names + ".", "Pass one of the known kinds, or NULL for every kind.");
        }
    }
    if (k->discriminator)
        o.discriminator = k->discriminator;
    o.ns = text_arg(fcinfo, 4);
    if (k->ns) {
        if (o.ns && *o.ns != k->ns)
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                        "annotation kind \"" + std::string(k->name) + "\" implies namespace " + k->ns,
                        "ns was given as \"" + *o.ns + "\".",
                        "Leave ns NULL, or choose kind \"long\" to filter long annotations by another namespace.");
        o.ns = k->ns;
    }
    if (!PG_ARGISNULL(5))
        o.remove = PG_GETARG_BOOL(5);
    if (!PG_ARGISNULL(6))
        o.dry_run = PG_GETARG_BOOL(6);
    if (!PG_ARGISNULL(7))
        o.batch_size = PG_GETARG_INT32(7);
    if (o.batch_size < 1)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "batch_size must be at least 1",
                    "batch_size was " + std::to_string(o.batch_size) + ".");
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

void require_table(spi::Session &spi, const char *table)
{
    auto v = spi.scalar("SELECT pg_catalog.to_regclass($1) IS NOT NULL", {spi::text(table)}, true);
    if (!v || *v != "t")
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    std::string("this OMERO database has no table ") + table,
                    "Moving annotations to Wells needs OMERO's screen/plate/well and annotation link tables.");
}

// Ids among `ids` that have no row in `table` (a fixed name of ours, never user text).
void require_ids(spi::Session &spi, const std::optional<Ids> &ids, const char *table, const char *what)
{
    if (!ids || ids->empty())
        return;
    std::string sql = std::string("SELECT x FROM unnest($1::int8[]) AS x WHERE NOT EXISTS (SELECT 1 FROM ") + table +
                      " AS t WHERE t.id = x) ORDER BY x";
    auto r = spi.query(sql, {ids_param(ids)}, true);
    if (r.empty())
        return;
    Ids missing = ids_of(r, "x");
    std::string list = array_literal(Ids(missing.begin(), missing.begin() + std::min<size_t>(missing.size(), 20)));
    if (missing.size() > 20)
        list.insert(list.size() - 1, ",…");
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                std::to_string(missing.size()) + " of the " + std::to_string(ids->size()) + " " + what +
                    " id(s) given do not exist",
                "Missing " + std::string(what) + " ids: " + list + ".", "Check the ids; nothing was changed.");
}

// Everything needed to record changes as OMERO does, looked up before anything changes.
struct Recorder {
    int64_t root = 0, node = 0, event_type = 0;
    int64_t session = -1;              // created on first use
    std::map<int64_t, int64_t> events;  // group id → event id of this operation
};

Recorder prepare_recorder(spi::Session &spi)
{
    auto fn = spi.scalar("SELECT pg_catalog.to_regprocedure('ome_nextval(varchar, int4)') IS NOT NULL", {}, true);
    if (!fn || *fn != "t")
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "this OMERO database has no function ome_nextval(varchar, int4)",
                    "New rows take their ids from OMERO's own id function, as the server does.");
    for (const char *t : {"event", "eventtype", "eventlog", "session", "node", "experimenter"})
        require_table(spi, t);
    Recorder rec;
    auto root = spi.scalar("SELECT id FROM experimenter WHERE omename = 'root'", {}, true);
    auto type = spi.scalar("SELECT id FROM eventtype WHERE value = 'Internal'", {}, true);
    auto node = spi.scalar("SELECT min(id) FROM node", {}, true);
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
void ensure_events(spi::Session &spi, Recorder &rec, const std::set<int64_t> &groups)
{
    for (int64_t g : groups) {
        if (rec.events.count(g))
            continue;
        if (rec.session < 0) {
            auto id = spi.scalar(
                "INSERT INTO session (id, permissions, timetoidle, timetolive, started, closed, defaulteventtype,"
                "                     uuid, owner, node, useragent, message, version)"
                " VALUES (ome_nextval('seq_session'), -52, 0, 0, localtimestamp, localtimestamp, 'Internal',"
                "         pg_catalog.gen_random_uuid()::text, $1, $2, 'omero_upgrade',"
                "         'omero_upgrade: annotations moved from Images to Wells', 0)"
                " RETURNING id",
                {spi::int8(rec.root), spi::int8(rec.node)});
            rec.session = std::stoll(id.value());
        }
        auto ev = spi.scalar("INSERT INTO event (id, permissions, \"time\", status, containingevent, experimenter,"
                             "                   experimentergroup, \"session\", type)"
                             " VALUES (ome_nextval('seq_event'), -52, localtimestamp, NULL, NULL, $1, $2, $3, $4)"
                             " RETURNING id",
                             {spi::int8(rec.root), spi::int8(g), spi::int8(rec.session), spi::int8(rec.event_type)});
        rec.events[g] = std::stoll(ev.value());
    }
}

// The first of n new ids of an OMERO sequence (ome_nextval returns the last one).
int64_t allocate(spi::Session &spi, const char *seq, int64_t n)
{
    auto last = spi.scalar("SELECT ome_nextval($1::varchar, $2::int4)", {spi::text(seq), spi::int4((int32_t)n)});
    return std::stoll(last.value()) - n + 1;
}

// $1 wells of the batch (int8[]), $2 discriminator or NULL, $3 namespace or NULL.
// l: the matching image links of the Images of the batch's Wells, one row per (well, link);
// c: one candidate per (well, annotation, owner), from its lowest image link, and whether the
//    Well already has a link to that annotation for that owner.
std::string cte_links(const char *extra_where = "")
{
    return std::string(
    "WITH l AS ("
    "  SELECT w.id AS well, w.plate, il.id AS link_id, il.parent AS image, il.child, il.owner_id,"
    "         il.group_id, il.permissions"
    "    FROM unnest($1::int8[]) AS b(id)"
    "    JOIN well AS w ON w.id = b.id"
    "    JOIN wellsample AS ws ON ws.well = w.id"
    "    JOIN imageannotationlink AS il ON il.parent = ws.image"
    "    JOIN annotation AS a ON a.id = il.child"
    "   WHERE ($2::text IS NULL OR a.discriminator = $2::text)"
    "     AND ($3::text IS NULL OR a.ns = $3::text)") + extra_where + "),"
    " c AS ("
    "  SELECT DISTINCT ON (l.well, l.child, l.owner_id) l.well, l.plate, l.child, l.owner_id, l.group_id,"
    "         l.permissions,"
    "         EXISTS (SELECT 1 FROM wellannotationlink AS x"
    "                  WHERE x.parent = l.well AND x.child = l.child AND x.owner_id = l.owner_id) AS present"
    "    FROM l ORDER BY l.well, l.child, l.owner_id, l.link_id)";
}

// A dry run changes nothing, so what earlier batches would have done is simulated. $5 chosen
// plates (int8[], screens' included), $6 chosen wells (int8[]), $7 the lowest well of the batch:
// a chosen well below it was in an earlier batch, so it has its well links by now.
#define OU_EARLIER(w)                                                                                      \
    "(" w " < $7::int8 AND EXISTS (SELECT 1 FROM well AS we WHERE we.id = " w                              \
    " AND (we.plate = ANY ($5::int8[]) OR we.id = ANY ($6::int8[]))))"

// Dry run, l: without the image links an earlier batch would have removed (their Image had a
// chosen Well there, and each of its other Wells has the link or was in an earlier batch).
const char *const dry_gone =
    "     AND NOT ($4::boolean"
    "          AND EXISTS (SELECT 1 FROM wellsample AS wa WHERE wa.image = il.parent AND " OU_EARLIER("wa.well") ")"
    "          AND NOT EXISTS (SELECT 1 FROM wellsample AS wb"
    "                           WHERE wb.image = il.parent AND NOT " OU_EARLIER("wb.well")
    "                             AND NOT EXISTS (SELECT 1 FROM wellannotationlink AS x"
    "                                              WHERE x.parent = wb.well AND x.child = il.child"
    "                                                AND x.owner_id = il.owner_id)))";

// What a batch would do. An image link goes only when every Well of its Image has (or, being
// in this batch, gets) the annotation for the link's owner: nothing is lost, even for an Image
// in several Wells. $4: whether links are removed.
// A dry run also counts as having the link a Well of an earlier batch (dry_plan_extra).
std::string sql_plan(bool dry_run)
{
    return std::string(
    " , r AS ("
    "  SELECT DISTINCT ON (l.link_id) l.link_id, l.plate, l.group_id FROM l"
    "   WHERE $4::boolean AND NOT EXISTS ("
    "         SELECT 1 FROM wellsample AS ws2"
    "          WHERE ws2.image = l.image AND ws2.well NOT IN (SELECT b.id FROM unnest($1::int8[]) AS b(id))"
    "            AND NOT EXISTS (SELECT 1 FROM wellannotationlink AS x"
    "                             WHERE x.parent = ws2.well AND x.child = l.child AND x.owner_id = l.owner_id)") +
    (dry_run ? " AND NOT " OU_EARLIER("ws2.well") : "") +
    ")"
    "   ORDER BY l.link_id, l.well)"
    " SELECT 'links' AS what, s.plate, NULL::int8 AS grp, count(*) AS n"
    "   FROM (SELECT DISTINCT plate, link_id FROM l) AS s GROUP BY s.plate"
    " UNION ALL"
    " SELECT CASE WHEN present THEN 'present' ELSE 'new' END, plate, group_id, count(*)"
    "   FROM c GROUP BY 1, 2, 3"
    " UNION ALL"
    " SELECT 'remove', plate, group_id, count(*) FROM r GROUP BY 2, 3";
}

// $4 first new link id, $5 first new eventlog id, $6 groups (int8[]), $7 their events (int8[]).
const char *const sql_insert =
    " , n AS (SELECT c.*, row_number() OVER (ORDER BY c.well, c.child, c.owner_id) AS rn FROM c WHERE NOT c.present),"
    " ins AS ("
    "  INSERT INTO wellannotationlink (id, permissions, version, parent, child, creation_id, group_id, owner_id,"
    "                                  update_id)"
    "  SELECT $4::int8 + n.rn - 1, n.permissions, 0, n.well, n.child, e.event, n.group_id, n.owner_id, e.event"
    "    FROM n JOIN unnest($6::int8[], $7::int8[]) AS e(grp, event) ON e.grp = n.group_id"
    "  RETURNING id, parent, creation_id),"
    " log AS ("
    "  INSERT INTO eventlog (id, action, permissions, entityid, entitytype, event)"
    "  SELECT $5::int8 + row_number() OVER (ORDER BY ins.id) - 1, 'INSERT', -52, ins.id,"
    "         'ome.model.annotations.WellAnnotationLink', ins.creation_id"
    "    FROM ins"
    "  RETURNING 1)"
    " SELECT w.plate, count(*) AS n, (SELECT count(*) FROM log) AS logged"
    "   FROM ins JOIN well AS w ON w.id = ins.parent GROUP BY w.plate";

// Deletes what sql_plan's r predicted (now that the new well links exist, "gets" is "has").
// $4 first new eventlog id, $5 groups (int8[]), $6 their events (int8[]).
const char *const sql_delete =
    " , d AS ("
    "  DELETE FROM imageannotationlink AS il"
    "   WHERE il.id IN (SELECT link_id FROM l)"
    "     AND NOT EXISTS ("
    "         SELECT 1 FROM wellsample AS ws2"
    "          WHERE ws2.image = il.parent"
    "            AND NOT EXISTS (SELECT 1 FROM wellannotationlink AS x"
    "                             WHERE x.parent = ws2.well AND x.child = il.child AND x.owner_id = il.owner_id))"
    "  RETURNING il.id, il.group_id),"
    " log AS ("
    "  INSERT INTO eventlog (id, action, permissions, entityid, entitytype, event)"
    "  SELECT $4::int8 + row_number() OVER (ORDER BY d.id) - 1, 'DELETE', -52, d.id,"
    "         'ome.model.annotations.ImageAnnotationLink', e.event"
    "    FROM d JOIN unnest($5::int8[], $6::int8[]) AS e(grp, event) ON e.grp = d.group_id"
    "  RETURNING 1)"
    " SELECT p.plate, count(*) AS n, (SELECT count(*) FROM log) AS logged"
    "   FROM d JOIN (SELECT DISTINCT ON (link_id) link_id, plate FROM l ORDER BY link_id, well) AS p"
    "     ON p.link_id = d.id"
    "  GROUP BY p.plate";

void events_params(const Recorder &rec, const std::set<int64_t> &groups, std::vector<spi::Param> &params)
{
    Ids g(groups.begin(), groups.end()), e;
    for (int64_t x : g)
        e.push_back(rec.events.at(x));
    params.push_back(spi::text(array_literal(g)));
    params.push_back(spi::text(array_literal(e)));
}

Report run_move(spi::Session &spi, const Options &o, bool commit_batches)
{
    require_db_version(spi);
    for (const char *t : {"screen", "plate", "well", "wellsample", "screenplatelink", "annotation",
                          "imageannotationlink", "wellannotationlink"})
        require_table(spi, t);
    require_ids(spi, o.screens, "screen", "screen");
    require_ids(spi, o.plates, "plate", "plate");
    require_ids(spi, o.wells, "well", "well");
    Recorder rec;
    if (!o.dry_run)
        rec = prepare_recorder(spi);

    // The plates to report on (those with no wells too) and the chosen wells.
    Report report;
    auto plates = spi.query("SELECT unnest($2::int8[]) AS id"
                            " UNION SELECT child FROM screenplatelink WHERE parent = ANY ($1::int8[])"
                            " UNION SELECT plate FROM well WHERE id = ANY ($3::int8[])",
                            {ids_param(o.screens), ids_param(o.plates), ids_param(o.wells)}, true);
    for (int64_t p : ids_of(plates, "id"))
        report[p];
    auto wells = spi.query("SELECT w.id, w.plate, EXISTS (SELECT 1 FROM wellsample AS ws WHERE ws.well = w.id) AS samples"
                           "  FROM well AS w"
                           " WHERE w.plate = ANY (ARRAY(SELECT unnest($2::int8[])"
                           "                             UNION SELECT child FROM screenplatelink"
                           "                                    WHERE parent = ANY ($1::int8[])))"
                           "    OR w.id = ANY ($3::int8[])"
                           " ORDER BY w.id",
                           {ids_param(o.screens), ids_param(o.plates), ids_param(o.wells)}, true);
    Ids well_ids;
    well_ids.reserve(wells.rows.size());
    for (size_t i = 0; i < wells.rows.size(); i++) {
        int64_t id = wells.int64(i, "id");
        PlateStats &ps = report[wells.int64(i, "plate")];
        ps.wells++;
        if (wells.str(i, "samples") != "t")
            ps.wells_without_samples++;
        else
            well_ids.push_back(id);  // a well without samples has nothing to move
    }
    wells = spi::Result{};
    // For a dry run's simulation of earlier batches (sql_plan): what the user chose.
    spi::Param chosen_plates = spi::text("{}"), chosen_wells = spi::text(o.wells ? array_literal(*o.wells) : "{}");
    if (o.dry_run) {
        auto cp = spi.query("SELECT unnest($2::int8[]) AS id UNION SELECT child FROM screenplatelink"
                            " WHERE parent = ANY ($1::int8[])",
                            {ids_param(o.screens), ids_param(o.plates)}, true);
        chosen_plates = spi::text(array_literal(ids_of(cp, "id")));
    }

    Progress progress(o.dry_run ? "move annotations to wells (dry run)" : "move annotations to wells", "wells",
                      (int64_t)well_ids.size());
    for (size_t from = 0; from < well_ids.size(); from += (size_t)o.batch_size) {
        check_interrupts();
        size_t to = std::min(well_ids.size(), from + (size_t)o.batch_size);
        spi::Param batch = spi::text(array_literal(well_ids, from, to));
        spi::Param disc = o.discriminator ? spi::text(*o.discriminator) : spi::null(TEXTOID);
        spi::Param ns = o.ns ? spi::text(*o.ns) : spi::null(TEXTOID);
        if (!o.dry_run)
            // Keeps other writers out while counts, ids and rows of this batch must agree.
            spi.exec("LOCK TABLE wellannotationlink, imageannotationlink IN SHARE ROW EXCLUSIVE MODE");

        std::vector<spi::Param> plan_params{batch, disc, ns, spi::boolean(o.remove)};
        if (o.dry_run)
            plan_params.insert(plan_params.end(), {chosen_plates, chosen_wells, spi::int8(well_ids[from])});
        auto plan = spi.query(cte_links(o.dry_run ? dry_gone : "") + sql_plan(o.dry_run), plan_params, o.dry_run);
        int64_t n_new = 0, n_remove = 0;
        std::set<int64_t> new_groups, remove_groups;
        for (size_t i = 0; i < plan.rows.size(); i++) {
            std::string kind = plan.str(i, "what");
            PlateStats &ps = report[plan.int64(i, "plate")];
            int64_t n = plan.int64(i, "n");
            if (kind == "links")
                ps.image_links += n;
            else if (kind == "present")
                ps.present += n;
            else if (kind == "new") {
                n_new += n;
                new_groups.insert(plan.int64(i, "grp"));
                if (o.dry_run)
                    ps.created += n;
            } else if (kind == "remove") {
                n_remove += n;
                remove_groups.insert(plan.int64(i, "grp"));
                if (o.dry_run)
                    ps.removed += n;
            }
        }

        // Each plate's count into report (created or removed); every row logged, the total as planned.
        auto tally = [&](const auto &r, int64_t planned, int64_t PlateStats::*count, const char *what) {
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
        };
        if (!o.dry_run && n_new > 0) {
            ensure_events(spi, rec, new_groups);
            int64_t first = allocate(spi, "seq_wellannotationlink", n_new);
            int64_t first_log = allocate(spi, "seq_eventlog", n_new);
            std::vector<spi::Param> params{batch, disc, ns, spi::int8(first), spi::int8(first_log)};
            events_params(rec, new_groups, params);
            tally(spi.query(cte_links() + sql_insert, params), n_new, &PlateStats::created, "well links inserted");
        }
        if (!o.dry_run && n_remove > 0) {
            ensure_events(spi, rec, remove_groups);
            int64_t first_log = allocate(spi, "seq_eventlog", n_remove);
            std::vector<spi::Param> params{batch, disc, ns, spi::int8(first_log)};
            events_params(rec, remove_groups, params);
            tally(spi.query(cte_links() + sql_delete, params), n_remove, &PlateStats::removed, "image links removed");
        }
        if (commit_batches && !o.dry_run)
            spi.commit();
        if (to < well_ids.size())
            progress.update((int64_t)to);
    }
    // The closing NOTICE only for runs long enough to have shown progress: short runs stay quiet.
    if (!well_ids.empty() && progress.elapsed() >= 2.0)
        progress.finish((int64_t)well_ids.size());
    return report;
}

} // namespace
} // namespace ou

using namespace ou;

OU_FUNCTION(omero_annotations_move_to_wells)
{
    return boundary([&] {
        Options o = read_options(fcinfo);
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
        bool nonatomic = fcinfo->context && IsA(fcinfo->context, CallContext) &&
                         !castNode(CallContext, fcinfo->context)->atomic;
        Options o = read_options(fcinfo);
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
        int64_t w = total.wells, c = total.created, r = total.removed;
        return pg_guard([fcinfo, w, c, r] {
            TupleDesc desc;
            if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
                elog(ERROR, "return type must be a row type");
            desc = BlessTupleDesc(desc);
            Datum values[3] = {Int64GetDatum(w), Int64GetDatum(c), Int64GetDatum(r)};
            bool nulls[3] = {false, false, false};
            return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
        });
    });
}
