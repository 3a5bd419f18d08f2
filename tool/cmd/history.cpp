// omero-upgrade history [--json]: every change recorded by the tool and the extension (tool/history.hpp),
// from the database's omero_upgrade.history and the private history file, oldest first.
#include "commands.hpp"
#include "extension_sql.hpp"
#include "history.hpp"
#include "records.hpp"

#include <algorithm>

namespace ou {

namespace {

std::string line(const nlohmann::json &e)
{
    auto str = [&](const char *k) { return e.contains(k) && e[k].is_string() ? e[k].get<std::string>() : std::string(); };
    std::string from = str("from_version"), to = str("to_version");
    std::string versions = from.empty() && to.empty() ? ""
                           : to.empty()               ? " (at " + from + ")"
                           : from.empty()             ? " (→ " + to + ")"
                                                      : " (" + from + " → " + to + ")";
    std::string sums;
    if (e.contains("checksums") && e["checksums"].is_object())
        for (auto it = e["checksums"].begin(); it != e["checksums"].end(); ++it)
            sums += "; sha256 " + (it.value().is_string() ? it.value().get<std::string>() : it.value().dump()) + " " +
                    it.key();
    return str("recorded_at") + "  " + str("kind") + "  " + str("what") + versions + "  by " +
           (str("db_role").empty() ? "" : str("db_role") + ", ") + str("os_user") + "@" + str("host") + " [" +
           (str("source") == "database" ? "database " + str("database") : "file") + "]" + sums;
}

struct HistoryOptions {
};

void add_history_options(CLI::App &, HistoryOptions &)
{
}

int run_history(const HistoryOptions &, Context &ctx)
{
    Settings &s = ctx.settings();
    nlohmann::json all = nlohmann::json::array();
    nlohmann::json &res = out().result();
    res["file"] = history_file(s);
    res["database"] = nullptr;
    try {
        Db &db = ctx.db();
        std::string name = db.scalar("SELECT pg_catalog.current_database()::pg_catalog.text").value_or("");
        if (ext::has_history(db)) {
            res["database"] = name;
            Rows r = ext::history(db, ext::require_schema(db));
            for (size_t i = 0; i < r.rows.size(); i++) {
                nlohmann::json e = {{"source", "database"}, {"database", name}, {"id", std::stoll(r.str(i, "id"))}};
                for (const char *c : {"recorded_at", "db_role", "os_user", "host", "kind", "what", "from_version", "to_version"})
                    e[c] = r.get(i, c) ? nlohmann::json(*r.get(i, c)) : nlohmann::json();
                e["checksums"] = parse_stored_json(r.str(i, "checksums"));
                e["details"] = parse_stored_json(r.str(i, "details"));
                all.push_back(e);
            }
        } else {
            res["database_problem"] = "the omero_upgrade extension (1.2 or later) is not installed in " + name +
                                      ": its history is in the file only";
            out().detail(res["database_problem"].get<std::string>());
        }
    } catch (const CommandError &e) {
        res["database_problem"] = e.what();
        out().warn(std::string("the database's history could not be read: ") + e.what());
    }
    nlohmann::json f = read_private_json(history_file(s), "omero-upgrade-history");
    if (f.is_object())
        for (auto e : f.value("entries", nlohmann::json::array())) {
            e["source"] = "file";
            all.push_back(e);
        }
    std::stable_sort(all.begin(), all.end(), [](const nlohmann::json &a, const nlohmann::json &b) {
        return a.value("recorded_at", "") < b.value("recorded_at", "");
    });
    res["entries"] = all;
    for (const auto &e : all)
        out().say(line(e));
    if (all.empty())
        out().say("no history recorded yet (database " + s.conn.dbname + ", file " + history_file(s) + ")");
    return EXIT_OK;
}

} // namespace

CommandRun setup_history(CLI::App &sub)
{
    return command_setup<HistoryOptions, add_history_options, run_history>(sub);
}

} // namespace ou
