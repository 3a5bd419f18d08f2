// omero-upgrade annotations move-to-wells: thin wrapper over the extension's
// omero_annotations_move_to_wells (README, "Moving annotations from Images to Wells"). A dry run
// unless --apply; --apply CALLs omero_annotations_move_to_wells_in_batches, which commits per
// batch of wells, so Ctrl-C (a libpq cancel) keeps the batches done and the same command again
// finishes the rest (a second run creates nothing).
#include "extcall.hpp"
#include "settings.hpp"

#include <cstdio>
#include <cstring>
#include <regex>

namespace ou {

namespace {

struct MoveOpts {
    std::vector<std::string> screens, screen_files, plates, plate_files, wells, well_files;
    std::string kind, ns;
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

CommandRun setup_move(CLI::App &sub)
{
    auto o = std::make_shared<MoveOpts>();
    sub.add_option("--screen", o->screens, "screen ids: the wells of their plates (comma- or space-separated; repeatable)");
    sub.add_option("--plate", o->plates, "plate ids: their wells");
    sub.add_option("--well", o->wells, "well ids");
    sub.add_option("--screen-file", o->screen_files, "file of screen ids (whitespace or commas, '#' comments)");
    sub.add_option("--plate-file", o->plate_files, "file of plate ids");
    sub.add_option("--well-file", o->well_files, "file of well ids");
    sub.add_option("--kind", o->kind, "only this annotation kind: tag, comment, xml, file, map, rating, long, double, "
                                      "boolean, term, timestamp, list (default: all)");
    sub.add_option("--ns", o->ns, "only annotations of this exact namespace");
    sub.add_flag("--remove-image-links", o->remove, "remove an image link once its annotation is on every Well of its Image");
    sub.add_flag("--apply", o->apply, "make the changes (without it: a dry run that changes nothing)");
    sub.add_option("--batch-size", o->batch_size, "wells per batch (one commit each with --apply)")->capture_default_str();
    return [o]() -> int {
        // Ids are checked before connecting; the extension checks that they exist.
        Value screens = id_array(o->screens, o->screen_files, "screen");
        Value plates = id_array(o->plates, o->plate_files, "plate");
        Value wells = id_array(o->wells, o->well_files, "well");
        if (!screens && !plates && !wells)
            throw CommandError("choose the wells: --screen, --plate or --well (or their -file forms)",
                               "every plate: psql -At -c 'SELECT id FROM plate' > plates.txt, then --plate-file plates.txt");
        if (o->batch_size <= 0)
            throw CommandError("--batch-size must be positive");
        Settings s = load_settings(false);
        auto db = connect_db(s);
        std::string schema = require_extension(*db);

        nlohmann::json plates_json = nlohmann::json::array();
        db->on_notice([&plates_json](const Notice &n) {
            if (auto p = n.severity == "NOTICE" ? parse_plate_notice(n.message) : std::nullopt)
                plates_json.push_back(*p);
            else
                show_extension_notice(n);
        });

        std::vector<Value> params{screens, plates, wells, o->kind.empty() ? Value() : Value(o->kind),
                                  o->ns.empty() ? Value() : Value(o->ns), o->remove ? "true" : "false",
                                  std::to_string(o->batch_size)};
        const std::string args = "$1::int8[], $2::int8[], $3::int8[], $4::text, $5::text, $6::boolean, ";
        Rows totals_row;
        try {
            if (!o->apply) {
                // A read-only transaction: the dry run cannot change anything, whatever happens.
                db->query("BEGIN READ ONLY");
                Rows r = db->query("SELECT plate_id, wells, wells_without_samples, image_links, links_created,"
                                   "       links_already_on_well, links_removed"
                                   "  FROM " + schema + ".omero_annotations_move_to_wells(" + args + "true, $7::int)"
                                   " ORDER BY plate_id",
                                   params);
                db->query("COMMIT");
                for (size_t i = 0; i < r.rows.size(); i++) {
                    nlohmann::json p = {{"plate_id", std::stoll(r.str(i, "plate_id"))}};
                    for (const char *c : count_cols)
                        p[c] = std::stoll(r.str(i, c));
                    plates_json.push_back(p);
                }
            } else {
                totals_row = db->query("CALL " + schema + ".omero_annotations_move_to_wells_in_batches(" + args +
                                           "false, $7::int)",
                                       params);
            }
        } catch (const DbError &e) {
            // The extension's message says what is wrong, its DETAIL which ids or values.
            std::string msg = e.what() + (e.detail.empty() ? std::string() : ": " + e.detail);
            if (e.sqlstate == "57014")
                throw CommandError(msg, o->apply ? "the batches done so far are committed; run the same command again to "
                                                   "finish (it creates nothing twice)"
                                                 : "nothing was changed");
            throw CommandError(msg, e.hint.empty() ? "nothing was changed" : e.hint);
        }

        nlohmann::json totals = {{"plates", (long long)plates_json.size()}};
        for (const char *c : count_cols) {
            long long sum = 0;
            for (const auto &p : plates_json)
                sum += p[c].get<long long>();
            totals[c] = sum;
        }
        int code = EXIT_OK;
        if (o->apply) {
            // The per-plate NOTICEs must add up to the procedure's own totals.
            bool agree = !totals_row.empty();
            for (const char *c : {"wells", "links_created", "links_removed"})
                agree = agree && totals_row.str(0, c) == std::to_string(totals[c].get<long long>());
            if (!agree) {
                out().warn("the per-plate report does not add up to the procedure's totals (wells " +
                           (totals_row.empty() ? "?" : totals_row.str(0, "wells")) + ", links created " +
                           (totals_row.empty() ? "?" : totals_row.str(0, "links_created")) + ", links removed " +
                           (totals_row.empty() ? "?" : totals_row.str(0, "links_removed")) +
                           "): the totals below are the procedure's");
                for (const char *c : {"wells", "links_created", "links_removed"})
                    if (!totals_row.empty())
                        totals[c] = std::stoll(totals_row.str(0, c));
                code = EXIT_PROBLEM;
            }
        }

        nlohmann::json &res = out().result();
        res["database"] = s.conn.dbname;
        res["dry_run"] = !o->apply;
        res["kind"] = o->kind.empty() ? nlohmann::json(nullptr) : nlohmann::json(o->kind);
        res["ns"] = o->ns.empty() ? nlohmann::json(nullptr) : nlohmann::json(o->ns);
        res["remove_image_links"] = o->remove;
        res["plates"] = plates_json;
        res["totals"] = totals;

        if (!o->apply)
            out().say("DRY RUN: nothing was changed; give --apply to make these changes");
        const char *heads[] = {"plate", "wells", "without samples", "image links",
                               o->apply ? "links created" : "links to create", "already on well",
                               o->apply ? "image links removed" : "image links to remove"};
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
        for (const auto &p : plates_json)
            row(std::to_string(p["plate_id"].get<long long>()), p);
        row("total", totals);
        long long created = totals["links_created"].get<long long>(), removed = totals["links_removed"].get<long long>();
        if (o->apply)
            out().say("done: " + std::to_string(created) + " well link(s) created, " + std::to_string(removed) +
                      " image link(s) removed" + (created + removed == 0 ? " (nothing left to move)" : ""));
        else
            out().say("would create " + std::to_string(created) + " well link(s) and remove " + std::to_string(removed) +
                      " image link(s); nothing was changed (dry run)");
        if (totals["wells_without_samples"].get<long long>() > 0)
            out().say(std::to_string(totals["wells_without_samples"].get<long long>()) +
                      " well(s) without samples: they have no images, so nothing to move (not a problem)");
        return code;
    };
}

Register reg_move({"annotations move-to-wells",
                   "link the annotations of Wells' Images to the Wells (dry run unless --apply)", setup_move});

} // namespace

} // namespace ou
