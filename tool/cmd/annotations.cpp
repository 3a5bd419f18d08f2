// omero-upgrade annotations move-to-wells: thin wrapper over the extension's
// omero_annotations_move_to_wells (README, "Moving annotations from Images to Wells"). A dry run
// unless --apply; --apply CALLs omero_annotations_move_to_wells_in_batches, which commits per
// batch of wells, so Ctrl-C (a libpq cancel) keeps the batches done and the same command again
// finishes the rest (a second run creates nothing).
#include "commands.hpp"
#include "extension_sql.hpp"
#include "extcall.hpp"
#include "fsutil.hpp"
#include "installation.hpp"
#include "settings.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <regex>
#include <set>

namespace ou {

namespace {

struct MoveOpts {
    std::vector<std::string> screens, screen_files, plates, plate_files, wells, well_files;
    std::string kind, ns, journal, undo;
    bool remove = false, apply = false;
    int batch_size = 10000;
};

// Per-plate counts, in the order of the extension's result columns.
const char *const count_cols[] = {"wells", "wells_without_samples", "image_links", "links_created",
                                  "links_already_on_well", "links_removed"};

// The procedure reports each plate in a NOTICE ("plate 2: 24 well(s) (1 without samples), 301
// image link(s), 255 link(s) created, 51 already on the well, 0 image link(s) removed"); its
// result holds only totals, which these NOTICEs are checked against.
std::optional<nlohmann::json> parse_plate_notice(const std::string &msg)
{
    static const std::regex re("^(?:dry run: )?plate ([0-9]+): ([0-9]+) well\\(s\\) \\(([0-9]+) without samples\\), ([0-9]+) "
                               "image link\\(s\\), ([0-9]+) link\\(s\\) (?:created|to create), ([0-9]+) already on the "
                               "well, ([0-9]+) image link\\(s\\) (?:removed|to remove)$");
    std::smatch m;
    if (!std::regex_match(msg, m, re))
        return std::nullopt;
    nlohmann::json p = {{"plate_id", std::stoll(m[1])}};
    for (size_t i = 0; i < 6; i++)
        p[count_cols[i]] = std::stoll(m[i + 2]);
    return p;
}

std::string pad(const std::string &s, size_t w)
{
    return s.size() >= w ? s : std::string(w - s.size(), ' ') + s;
}

// ---- The journal of a move (--apply), and its undo (--undo JOURNAL) -----------------------------
// The extension records a move as OMERO does (a closed session of root with the message below, an
// event per group, the new well links created in those events, an eventlog DELETE row per image
// link removed) but keeps no copy of the image links it removes. The journal (a 0600 JSON file)
// holds what an exact undo needs: the move's sessions and events, the ids of the well links they
// created, and the full rows of the image links removed (snapshot before the move, kept for those
// the move's eventlog says it deleted). An interrupted or killed attempt is completed from the
// database at the next use of the same journal (sessions after the attempt's floor).
const char *const move_message = "omero_upgrade: annotations moved from Images to Wells";
const char *const undo_message = "omero_upgrade: annotations moved to Wells given back to the Images";

std::string int_array(const nlohmann::json &ids)
{
    std::string a = "{";
    for (const auto &x : ids)
        a += (a.size() > 1 ? "," : "") + std::to_string(x.get<long long>());
    return a + "}";
}

nlohmann::json int_column(const Rows &r, const char *col)
{
    nlohmann::json a = nlohmann::json::array();
    for (size_t i = 0; i < r.rows.size(); i++)
        a.push_back(std::stoll(r.str(i, col)));
    return a;
}

void save_journal(const std::string &path, const nlohmann::json &j)
{
    ensure_dir(dir_name(path));
    write_file_atomic(path, stored_json_text(j, 1) + "\n", true, 0600);
}

nlohmann::json load_journal(const std::string &path)
{
    std::string text;
    if (!read_file(path, text))
        throw CommandError("cannot read the journal " + path);
    nlohmann::json j = parse_stored_json(text);
    if (j.is_discarded() || j.value("kind", "") != "omero-upgrade-wells-move")
        throw CommandError(path + " is not a journal of annotations move-to-wells");
    return j;
}

// The open attempt of the journal (its sessions after the floor) into the journal's lists.
void complete_attempt(Db &db, const std::string &S, nlohmann::json &j)
{
    if (!j["attempts"].is_array() || j["attempts"].empty() || j["attempts"].back().contains("ended"))
        return;
    nlohmann::json &at = j["attempts"].back();
    Rows ses = db.query("SELECT id FROM " + S + ".session WHERE id > $1::int8 AND useragent::text = 'omero_upgrade'"
                        "   AND message::text = $2 AND NOT (id = ANY ($3::int8[])) ORDER BY id",
                        {std::to_string(at.value("session_floor", 0LL)), std::string(move_message), int_array(j["sessions"])});
    nlohmann::json sessions = int_column(ses, "id");
    Rows ev = db.query("SELECT id FROM " + S + ".event WHERE session = ANY ($1::int8[]) ORDER BY id", {int_array(sessions)});
    nlohmann::json events = int_column(ev, "id");
    Rows cr = db.query("SELECT id FROM " + S + ".wellannotationlink WHERE creation_id = ANY ($1::int8[]) ORDER BY id",
                       {int_array(events)});
    Rows del = db.query("SELECT entityid FROM " + S + ".eventlog WHERE event = ANY ($1::int8[]) AND action::text = 'DELETE'"
                        "   AND entitytype::text = 'ome.model.annotations.ImageAnnotationLink' ORDER BY entityid",
                        {int_array(events)});
    std::set<long long> gone;
    for (size_t i = 0; i < del.rows.size(); i++)
        gone.insert(std::stoll(del.str(i, "entityid")));
    for (const auto &x : sessions)
        j["sessions"].push_back(x);
    for (const auto &x : events)
        j["events"].push_back(x);
    for (const auto &x : int_column(cr, "id"))
        j["created_links"].push_back(x);
    for (const auto &row : at.value("snapshot", nlohmann::json::array()))
        if (gone.count(row.value("id", 0LL)))
            j["removed_image_links"].push_back(row);
    at.erase("snapshot");
    at["ended"] = utc_timestamp("%Y-%m-%dT%H:%M:%SZ");
    at["sessions"] = sessions;
    at["links_created"] = cr.rows.size();
    at["image_links_removed"] = gone.size();
    j["status"] = "applied";
}

// Before --apply: the journal, new or continued (an earlier attempt of the same move), with a new
// attempt: the session floor and, with --remove-image-links, the image links it may remove.
nlohmann::json begin_journal(Db &db, const std::string &S, const std::string &path, const Settings &s,
                             const std::vector<Value> &params, bool remove)
{
    nlohmann::json j;
    if (path_exists(path)) {
        j = load_journal(path);
        if (j.value("database", "") != s.conn.dbname)
            throw CommandError("the journal " + path + " is of the database " + j.value("database", "") + ", not " +
                               s.conn.dbname, "give another --journal");
        if (j.contains("undone"))
            throw CommandError("the move of the journal " + path + " was undone (" + j["undone"].value("at", "") + ")",
                               "give another --journal");
        complete_attempt(db, S, j);
    } else {
        j = {{"kind", "omero-upgrade-wells-move"}, {"format", 1}, {"database", s.conn.dbname},
             {"host", s.conn.host}, {"port", s.conn.port}, {"created", utc_timestamp("%Y-%m-%dT%H:%M:%SZ")},
             {"attempts", nlohmann::json::array()}, {"sessions", nlohmann::json::array()},
             {"events", nlohmann::json::array()}, {"created_links", nlohmann::json::array()},
             {"removed_image_links", nlohmann::json::array()}};
    }
    nlohmann::json at = {{"started", utc_timestamp("%Y-%m-%dT%H:%M:%SZ")},
                         {"session_floor", std::stoll(db.scalar("SELECT coalesce(max(id), 0) FROM " + S + ".session").value_or("0"))},
                         {"screens", params[0] ? *params[0] : ""}, {"plates", params[1] ? *params[1] : ""},
                         {"wells", params[2] ? *params[2] : ""}, {"kind", params[3] ? *params[3] : "all"},
                         {"ns", params[4] ? nlohmann::json(*params[4]) : nlohmann::json()}, {"remove_image_links", remove}};
    if (remove) {
        Rows r = db.query("SELECT pg_catalog.row_to_json(il)::text AS r FROM " + S + ".imageannotationlink AS il"
                          " WHERE il.parent IN (SELECT ws.image FROM " + S + ".wellsample AS ws JOIN " + S +
                          ".well AS w ON w.id = ws.well WHERE w.id = ANY ($3::int8[]) OR w.plate = ANY ($2::int8[])"
                          "    OR w.plate IN (SELECT child FROM " + S + ".screenplatelink WHERE parent = ANY ($1::int8[])))"
                          " ORDER BY il.id",
                          {params[0], params[1], params[2]});
        nlohmann::json snap = nlohmann::json::array();
        for (size_t i = 0; i < r.rows.size(); i++)
            snap.push_back(nlohmann::json::parse(r.str(i, "r")));
        at["snapshot"] = snap;
    }
    j["attempts"].push_back(at);
    j["status"] = "applying";
    save_journal(path, j);
    return j;
}

// --undo JOURNAL: deletes exactly the well links the move created (by id, and only while still
// created in the move's events: a link made by anyone else stays), gives back the image links it
// removed (same rows, same ids; not when the image or annotation is gone or the link exists
// again), recorded as OMERO records changes (a closed session of root, an event per group, an
// eventlog row per link). A dry run unless --apply.
// The connection to write and read OMERO's tables with: the command's own when it is OMERO's
// (the owner of dbpatch), else one as omero.db.user (config.xml's password): their triggers
// fire and a view in a table's place would run, and must do so with OMERO's rights, never with
// a --db-user superuser's.
Db &omero_owner_db(Context &ctx, std::unique_ptr<Db> &holder)
{
    Db &db = ctx.db();
    auto schema = find_omero_schema(db);
    if (!schema)
        throw CommandError("no OMERO schema (no dbpatch table) in the database " + ctx.settings().conn.dbname);
    const std::string S = quote_ident(*schema);
    if (connected_as_omero_owner(db, S))
        return db;
    holder = connect_db_as_omero_user(ctx.settings());
    if (!connected_as_omero_owner(*holder, S))
        throw CommandError("OMERO's database user " + ctx.settings().omero_db_user +
                               " (omero.db.user) does not own OMERO's tables",
                           "this command runs OMERO's code as the owner of OMERO's dbpatch table; set omero.db.user to it");
    return *holder;
}

// What an undo finds to do: the well links the move created that are still there, the image
// links it removed that can be given back (the SELECT bodies the apply deletes and inserts from).
struct UndoPlan {
    std::string created, events, rows;  // the journal's ids and removed rows, as parameters
    std::string wl_sel, il_sel;
    Rows wl, il;                        // their group ids
    long long n_wl = 0, n_il = 0, n_created = 0, n_removed = 0;
};

UndoPlan plan_undo(Db &db, const std::string &S, const nlohmann::json &j)
{
    UndoPlan u;
    u.created = int_array(j["created_links"]);
    u.events = int_array(j["events"]);
    u.rows = j["removed_image_links"].dump();
    u.wl_sel = " FROM " + S + ".wellannotationlink WHERE id = ANY ($1::int8[]) AND creation_id = ANY ($2::int8[])";
    u.il_sel =
        " FROM pg_catalog.json_populate_recordset(NULL::" + S + ".imageannotationlink, $1::json) AS r"
        " WHERE NOT EXISTS (SELECT 1 FROM " + S + ".imageannotationlink AS x WHERE x.id = r.id"
        "                    OR (x.parent = r.parent AND x.child = r.child AND x.owner_id = r.owner_id))"
        "   AND EXISTS (SELECT 1 FROM " + S + ".image AS i WHERE i.id = r.parent)"
        "   AND EXISTS (SELECT 1 FROM " + S + ".annotation AS a WHERE a.id = r.child)";
    u.wl = db.query("SELECT group_id" + u.wl_sel, {u.created, u.events});
    u.il = db.query("SELECT r.group_id" + u.il_sel, {u.rows});
    u.n_wl = (long long)u.wl.rows.size();
    u.n_il = (long long)u.il.rows.size();
    u.n_created = (long long)j["created_links"].size();
    u.n_removed = (long long)j["removed_image_links"].size();
    return u;
}

// The undo's closed session of root and an event per group of the links it touches, as OMERO
// records changes. Returns the session; the groups and their events into gs and es.
Value record_undo_session(Db &db, const std::string &S, const UndoPlan &u, nlohmann::json &gs, nlohmann::json &es)
{
    std::set<std::string> groups;
    for (const Rows *r : {&u.wl, &u.il})
        for (size_t i = 0; i < r->rows.size(); i++)
            groups.insert(r->str(i, "group_id"));
    Value ses = db.scalar(
        "INSERT INTO " + S + ".session (id, permissions, timetoidle, timetolive, started, closed, defaulteventtype,"
        "  uuid, owner, node, useragent, message, version)"
        " SELECT " + S + ".ome_nextval('seq_session'::varchar), -52, 0, 0, LOCALTIMESTAMP, LOCALTIMESTAMP, 'Internal',"
        "        pg_catalog.gen_random_uuid()::text, (SELECT id FROM " + S + ".experimenter WHERE omename::text = 'root'),"
        "        (SELECT pg_catalog.min(id) FROM " + S + ".node), 'omero_upgrade', $1, 0 RETURNING id",
        {std::string(undo_message)});
    gs = nlohmann::json::array();
    es = nlohmann::json::array();
    for (const auto &g : groups) {
        Value e = db.scalar("INSERT INTO " + S + ".event (id, permissions, \"time\", status, containingevent, experimenter,"
                            "  experimentergroup, \"session\", type)"
                            " SELECT " + S + ".ome_nextval('seq_event'::varchar), -52, LOCALTIMESTAMP, NULL, NULL,"
                            "        (SELECT id FROM " + S + ".experimenter WHERE omename::text = 'root'), $1::int8, $2::int8,"
                            "        (SELECT id FROM " + S + ".eventtype WHERE value::text = 'Internal') RETURNING id",
                            {g, ses});
        gs.push_back(std::stoll(g));
        es.push_back(std::stoll(e.value_or("0")));
    }
    return ses;
}

// --apply, inside the undo's transaction: deletes the well links, gives back the image links, an
// eventlog row each; throws when the counts do not match the plan. Returns the session.
long long apply_undo(Db &db, const std::string &S, const UndoPlan &u)
{
    // OMERO's functions (ome_nextval) resolve their own names through the search_path.
    db.query("SELECT pg_catalog.set_config('search_path', $1, true)", {S + ", pg_catalog, pg_temp"});
    nlohmann::json gs, es;
    Value ses = record_undo_session(db, S, u, gs, es);
    auto ev = [](int g, int e) {
        return " JOIN ROWS FROM (pg_catalog.unnest($" + std::to_string(g) + "::int8[]), pg_catalog.unnest($" +
               std::to_string(e) + "::int8[])) AS e(grp, event) ON e.grp = ch.group_id";
    };
    Rows d = db.query("WITH ch AS (DELETE" + u.wl_sel + " RETURNING id, group_id),"
                      " lg AS (INSERT INTO " + S + ".eventlog (id, action, permissions, entityid, entitytype, event)"
                      "        SELECT " + S + ".ome_nextval('seq_eventlog'::varchar), 'DELETE', -52, ch.id,"
                      "               'ome.model.annotations.WellAnnotationLink', e.event FROM ch" + ev(3, 4) + " RETURNING 1)"
                      " SELECT (SELECT pg_catalog.count(*) FROM ch) AS n, (SELECT pg_catalog.count(*) FROM lg) AS logged",
                      {u.created, u.events, int_array(gs), int_array(es)});
    Rows r = db.query("WITH ch AS (INSERT INTO " + S + ".imageannotationlink SELECT r.*" + u.il_sel +
                      " RETURNING id, group_id),"
                      " lg AS (INSERT INTO " + S + ".eventlog (id, action, permissions, entityid, entitytype, event)"
                      "        SELECT " + S + ".ome_nextval('seq_eventlog'::varchar), 'INSERT', -52, ch.id,"
                      "               'ome.model.annotations.ImageAnnotationLink', e.event FROM ch" + ev(2, 3) + " RETURNING 1)"
                      " SELECT (SELECT pg_catalog.count(*) FROM ch) AS n, (SELECT pg_catalog.count(*) FROM lg) AS logged",
                      {u.rows, int_array(gs), int_array(es)});
    if (d.str(0, "n") != std::to_string(u.n_wl) || r.str(0, "n") != std::to_string(u.n_il) ||
        d.str(0, "logged") != d.str(0, "n") || r.str(0, "logged") != r.str(0, "n"))
        throw CommandError("the undo did not match its plan (well links " + d.str(0, "n") + " of " +
                           std::to_string(u.n_wl) + ", image links " + r.str(0, "n") + " of " + std::to_string(u.n_il) +
                           "); nothing was changed");
    return std::stoll(ses.value_or("0"));
}

// After the undo's commit: the journal says it was undone, and how.
void mark_journal_undone(const std::string &path, nlohmann::json &j, const UndoPlan &u, const nlohmann::json &res)
{
    j["undone"] = {{"at", utc_timestamp("%Y-%m-%dT%H:%M:%SZ")}, {"well_links_deleted", u.n_wl},
                   {"image_links_restored", u.n_il}, {"well_links_gone_already", u.n_created - u.n_wl},
                   {"image_links_not_restorable", u.n_removed - u.n_il}};
    if (res.contains("session"))
        j["undone"]["session"] = res["session"];
    j["status"] = "undone";
    save_journal(path, j);
}

void say_undo_result(const UndoPlan &u, bool apply)
{
    if (apply)
        out().say("undone: deleted " + std::to_string(u.n_wl) + " well link(s) the move created" +
                  (u.n_created > u.n_wl ? " (" + std::to_string(u.n_created - u.n_wl) + " gone already)" : "") +
                  ", restored " + std::to_string(u.n_il) + " image link(s)" +
                  (u.n_removed > u.n_il ? " (" + std::to_string(u.n_removed - u.n_il) + " not restorable)" : "") +
                  "; links made by others are untouched");
    else
        out().say("DRY RUN: would delete and give back: " + std::to_string(u.n_wl) + " well link(s) the move created" +
                  (u.n_created > u.n_wl ? " (" + std::to_string(u.n_created - u.n_wl) + " gone already)" : "") + ", " +
                  std::to_string(u.n_il) + " image link(s) it removed" +
                  (u.n_removed > u.n_il ? " (" + std::to_string(u.n_removed - u.n_il) +
                                              " not restorable: linked again, or the image or annotation is gone)"
                                        : "") +
                  "; nothing was changed; give --apply");
}

// The undo in one transaction (read-only for a dry run): plan, apply, commit, journal.
void undo_in_transaction(Db &db, const std::string &S, const std::string &path, nlohmann::json &j, bool apply)
{
    nlohmann::json &res = out().result();
    db.query(apply ? "BEGIN" : "BEGIN READ ONLY");
    try {
        if (apply)
            db.query("LOCK TABLE " + S + ".wellannotationlink, " + S + ".imageannotationlink IN SHARE ROW EXCLUSIVE MODE");
        UndoPlan u = plan_undo(db, S, j);
        res["well_links_to_delete"] = u.n_wl;
        res["well_links_gone_already"] = u.n_created - u.n_wl;
        res["image_links_to_restore"] = u.n_il;
        res["image_links_not_restorable"] = u.n_removed - u.n_il;
        if (apply && u.n_wl + u.n_il > 0)
            res["session"] = apply_undo(db, S, u);
        db.query(apply ? "COMMIT" : "ROLLBACK");
        if (apply)
            mark_journal_undone(path, j, u, res);
        say_undo_result(u, apply);
    } catch (...) {
        try {
            db.query("ROLLBACK");
        } catch (...) {
        }
        throw;
    }
}

int undo_move(const MoveOpts &o, Context &ctx)
{
    std::string path = lexical_absolute(o.undo);
    nlohmann::json j = load_journal(path);
    Settings &s = ctx.settings();
    // The undo writes OMERO's tables (their triggers fire) and reads them: as OMERO's user.
    std::unique_ptr<Db> own;
    Db *db = &omero_owner_db(ctx, own);
    std::string S = quote_ident(*find_omero_schema(*db));
    if (j.value("database", "") != s.conn.dbname)
        throw CommandError("the journal " + path + " is of the database " + j.value("database", "") + ", not " +
                               s.conn.dbname,
                           "connect to that one (-d " + j.value("database", "") + ")");
    nlohmann::json &res = out().result();
    res["journal"] = path;
    res["database"] = s.conn.dbname;
    res["dry_run"] = !o.apply;
    if (j.contains("undone")) {
        out().say("the move of " + path + " was undone already (" + j["undone"].value("at", "") + "): nothing to do");
        res["undone"] = j["undone"];
        res["already"] = true;
        return EXIT_OK;
    }
    complete_attempt(*db, S, j);  // an attempt that was killed: completed from the database
    if (o.apply)
        save_journal(path, j);
    undo_in_transaction(*db, S, path, j, o.apply);
    return EXIT_OK;
}

void add_annotations_move_to_wells_options(CLI::App &sub, MoveOpts &o)
{
    sub.add_option("--screen", o.screens, "screen ids: the wells of their plates (comma- or space-separated; repeatable)");
    sub.add_option("--plate", o.plates, "plate ids: their wells");
    sub.add_option("--well", o.wells, "well ids");
    sub.add_option("--screen-file", o.screen_files, "file of screen ids (whitespace or commas, '#' comments)");
    sub.add_option("--plate-file", o.plate_files, "file of plate ids");
    sub.add_option("--well-file", o.well_files, "file of well ids");
    sub.add_option("--kind", o.kind, "only this annotation kind: tag, comment, xml, file, map, rating, long, double, "
                                      "boolean, term, timestamp, list (default: all)");
    sub.add_option("--ns", o.ns, "only annotations of this exact namespace");
    sub.add_flag("--remove-image-links", o.remove, "remove an image link once its annotation is on every Well of its Image");
    sub.add_flag("--apply", o.apply, "make the changes (without it: a dry run that changes nothing)");
    sub.add_option("--batch-size", o.batch_size, "wells per batch (one commit each with --apply)")->capture_default_str();
    sub.add_option("--journal", o.journal,
                   "with --apply: the journal that --undo needs (default: wells-move-<time>-<pid>.json in the backup "
                   "directory; an existing journal of the same move is continued)");
    sub.add_option("--undo", o.undo,
                   "undo the move of this journal: delete the well links it created, give back the image links it "
                   "removed (a dry run unless --apply)");
}

// A move as it runs: its connection (as OMERO's user), the extension's schema, the journal
// (--apply), and what the extension reported.
struct MoveRun {
    Db *db = nullptr;
    std::string schema;              // the extension's
    std::string S;                   // OMERO's, quoted (--apply)
    std::string journal_path;        // --apply
    nlohmann::json journal;          // --apply, once begun
    nlohmann::json plates = nlohmann::json::array();  // per plate, from the NOTICEs or the dry run's rows
    Rows totals_row;                 // --apply: the procedure's totals
};

// The per-plate NOTICEs into run.plates; other notices shown.
void collect_plate_notices(MoveRun &run)
{
    run.db->on_notice([&plates = run.plates](const Notice &n) {
        if (auto p = n.severity == "NOTICE" ? parse_plate_notice(n.message) : std::nullopt)
            plates.push_back(*p);
        else
            show_extension_notice(n);
    });
}

// --apply: OMERO's schema and the journal's path (--journal, or a new one in the backup directory).
void prepare_journal(const MoveOpts &o, Context &ctx, MoveRun &run)
{
    auto sch = find_omero_schema(*run.db);
    if (!sch)
        throw CommandError("no OMERO schema (no dbpatch table) in the database " + ctx.settings().conn.dbname);
    run.S = quote_ident(*sch);
    run.journal_path = o.journal.empty() ? default_backup_dir(ctx.global()) + "/wells-move-" + utc_timestamp() + "-" +
                                               std::to_string(getpid()) + ".json"
                                         : lexical_absolute(o.journal);
}

// A failed or interrupted --apply: the batches done into the journal (after an interrupt too: the
// connection is usable), or no journal when nothing was changed.
void keep_journal_after_error(MoveRun &run)
{
    if (!run.journal.is_object())
        return;
    try {
        complete_attempt(*run.db, run.S, run.journal);
        if (run.journal["sessions"].empty() && run.journal["attempts"].size() == 1)
            unlink(run.journal_path.c_str());  // nothing was changed: no journal
        else
            save_journal(run.journal_path, run.journal);
    } catch (const std::exception &) {
        // the next use of the journal completes it
    }
}

// The dry run (in a read-only transaction: it cannot change anything, whatever happens) or the
// journaled move; an error of the extension becomes a CommandError saying what was kept.
void call_move(const MoveOpts &o, Context &ctx, MoveRun &run, const ext::WellsRequest &req,
               const std::vector<Value> &params)
{
    try {
        if (!o.apply) {
            run.db->query("BEGIN READ ONLY");
            Rows r = ext::wells_move_dry_run(*run.db, run.schema, req);
            run.db->query("COMMIT");
            for (size_t i = 0; i < r.rows.size(); i++) {
                nlohmann::json p = {{"plate_id", std::stoll(r.str(i, "plate_id"))}};
                for (const char *c : count_cols)
                    p[c] = std::stoll(r.str(i, c));
                run.plates.push_back(p);
            }
        } else {
            run.journal = begin_journal(*run.db, run.S, run.journal_path, ctx.settings(), params, o.remove);
            run.totals_row = ext::wells_move(*run.db, run.schema, req);
            complete_attempt(*run.db, run.S, run.journal);
            save_journal(run.journal_path, run.journal);
        }
    } catch (const DbError &e) {
        keep_journal_after_error(run);
        // The extension's message says what is wrong, its DETAIL which ids or values.
        std::string msg = e.what() + (e.detail.empty() ? std::string() : ": " + e.detail);
        if (e.sqlstate == "57014")
            throw CommandError(msg, o.apply ? "the batches done so far are committed; run the same command again to "
                                               "finish (it creates nothing twice)"
                                             : "nothing was changed");
        throw CommandError(msg, e.hint.empty() ? "nothing was changed" : e.hint);
    }
}

nlohmann::json sum_plates(const nlohmann::json &plates)
{
    nlohmann::json totals = {{"plates", (long long)plates.size()}};
    for (const char *c : count_cols) {
        long long sum = 0;
        for (const auto &p : plates)
            sum += p[c].get<long long>();
        totals[c] = sum;
    }
    return totals;
}

// --apply: the per-plate NOTICEs must add up to the procedure's own totals; when they do not,
// a warning, the procedure's totals in totals, and EXIT_PROBLEM.
int check_totals_agree(const Rows &totals_row, nlohmann::json &totals)
{
    bool agree = !totals_row.empty();
    for (const char *c : {"wells", "links_created", "links_removed"})
        agree = agree && totals_row.str(0, c) == std::to_string(totals[c].get<long long>());
    if (agree)
        return EXIT_OK;
    out().warn("the per-plate report does not add up to the procedure's totals (wells " +
               (totals_row.empty() ? "?" : totals_row.str(0, "wells")) + ", links created " +
               (totals_row.empty() ? "?" : totals_row.str(0, "links_created")) + ", links removed " +
               (totals_row.empty() ? "?" : totals_row.str(0, "links_removed")) +
               "): the totals below are the procedure's");
    for (const char *c : {"wells", "links_created", "links_removed"})
        if (!totals_row.empty())
            totals[c] = std::stoll(totals_row.str(0, c));
    return EXIT_PROBLEM;
}

void move_result_json(const MoveOpts &o, Context &ctx, const MoveRun &run, const nlohmann::json &totals)
{
    nlohmann::json &res = out().result();
    res["database"] = ctx.settings().conn.dbname;
    res["dry_run"] = !o.apply;
    res["kind"] = o.kind.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.kind);
    res["ns"] = o.ns.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.ns);
    res["remove_image_links"] = o.remove;
    res["plates"] = run.plates;
    res["totals"] = totals;
    if (run.journal.is_object()) {
        res["journal"] = run.journal_path;
        res["sessions"] = run.journal["sessions"];
        res["journal_links_created"] = run.journal["created_links"].size();
        res["journal_image_links_removed"] = run.journal["removed_image_links"].size();
    }
}

// The table: a row per plate, then the totals.
void show_plate_table(const nlohmann::json &plates, const nlohmann::json &totals, bool apply)
{
    const char *heads[] = {"plate", "wells", "without samples", "image links",
                           apply ? "links created" : "links to create", "already on well",
                           apply ? "image links removed" : "image links to remove"};
    std::string line;
    for (const char *h : heads)
        line += (line.empty() ? "" : "  ") + std::string(h);
    out().say(line);
    auto row = [&](const std::string &first, const nlohmann::json &p) {
        std::string l = pad(first, std::strlen(heads[0]));
        for (size_t i = 0; i < 6; i++)
            l += "  " + pad(std::to_string(p[count_cols[i]].get<long long>()), std::strlen(heads[i + 1]));
        out().say(l);
    };
    for (const auto &p : plates)
        row(std::to_string(p["plate_id"].get<long long>()), p);
    row("total", totals);
}

void say_move_summary(bool apply, const nlohmann::json &totals, const std::string &journal_path)
{
    long long created = totals["links_created"].get<long long>(), removed = totals["links_removed"].get<long long>();
    if (apply) {
        out().say("done: " + std::to_string(created) + " well link(s) created, " + std::to_string(removed) +
                  " image link(s) removed" + (created + removed == 0 ? " (nothing left to move)" : ""));
        out().say("journal " + journal_path + "; undo: omero-upgrade annotations move-to-wells --undo " +
                  shell_quote(journal_path) + " --apply");
    }
    else
        out().say("would create " + std::to_string(created) + " well link(s) and remove " + std::to_string(removed) +
                  " image link(s); nothing was changed (dry run)");
    if (totals["wells_without_samples"].get<long long>() > 0)
        out().say(std::to_string(totals["wells_without_samples"].get<long long>()) +
                  " well(s) without samples: they have no images, so nothing to move (not a problem)");
}

int run_annotations_move_to_wells(const MoveOpts &o, Context &ctx)
{
    if (!o.undo.empty())
        return undo_move(o, ctx);
    // Ids are checked before connecting; the extension checks that they exist.
    Value screens = id_array(o.screens, o.screen_files, "screen");
    Value plates = id_array(o.plates, o.plate_files, "plate");
    Value wells = id_array(o.wells, o.well_files, "well");
    if (!screens && !plates && !wells)
        throw CommandError("choose the wells: --screen, --plate or --well (or their -file forms)",
                           "every plate: psql -At -c 'SELECT id FROM plate' > plates.txt, then --plate-file plates.txt");
    if (o.batch_size <= 0)
        throw CommandError("--batch-size must be positive");
    ctx.settings();
    // The move reads OMERO's tables itself (its journal) besides calling the extension: all of it
    // as OMERO's user.
    std::unique_ptr<Db> own;
    MoveRun run;
    run.db = &omero_owner_db(ctx, own);
    run.schema = ctx.extension_schema();
    collect_plate_notices(run);

    std::vector<Value> params{screens, plates, wells, o.kind.empty() ? Value() : Value(o.kind),
                              o.ns.empty() ? Value() : Value(o.ns), o.remove ? "true" : "false",
                              std::to_string(o.batch_size)};
    const ext::WellsRequest req{screens, plates, wells, params[3], params[4], o.remove, o.batch_size};
    if (o.apply)
        prepare_journal(o, ctx, run);
    call_move(o, ctx, run, req, params);

    nlohmann::json totals = sum_plates(run.plates);
    int code = o.apply ? check_totals_agree(run.totals_row, totals) : EXIT_OK;
    move_result_json(o, ctx, run, totals);
    if (!o.apply)
        out().say("DRY RUN: nothing was changed; give --apply to make these changes");
    show_plate_table(run.plates, totals, o.apply);
    say_move_summary(o.apply, totals, run.journal_path);
    return code;
}

} // namespace

CommandRun setup_annotations_move_to_wells(CLI::App &sub)
{
    return command_setup<MoveOpts, add_annotations_move_to_wells_options, run_annotations_move_to_wells>(sub);
}

} // namespace ou
