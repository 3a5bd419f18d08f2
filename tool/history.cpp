// See history.hpp.
#include "history.hpp"

#include "extension_sql.hpp"
#include "fsutil.hpp"
#include "installation.hpp"
#include "records.hpp"

namespace ou {

namespace {

const char *const k_kind = "omero-upgrade-history";

nlohmann::json opt(const std::optional<std::string> &v)
{
    return v ? nlohmann::json(*v) : nlohmann::json();
}

} // namespace

std::string history_file(const Settings &s)
{
    return dir_name(given_server_dir(s.options)) + "/.omero-upgrade-history.json";
}

void identify_session(Db &db)
{
    try {
        db.query("SELECT pg_catalog.set_config('omero_upgrade.os_user', $1, false), "
                 "pg_catalog.set_config('omero_upgrade.host', $2, false)",
                 {os_user_name(), host_name()});
    } catch (const CommandError &) {
        // Only the names in the extension's own records are lost.
    }
}

void record_history(const Settings &s, Db *db, const HistoryEntry &e, const std::string &dbname)
{
    std::string why;
    std::string db_name = dbname;
    std::string role;
    try {
        if (db) {
            if (db_name.empty())
                db_name = db->scalar("SELECT pg_catalog.current_database()::pg_catalog.text").value_or("");
            role = db->scalar("SELECT SESSION_USER::pg_catalog.text").value_or("");
            if (ext::has_history(*db)) {
                ext::history_record(*db, ext::require_schema(*db), e.kind, valid_text(e.what), e.from_version,
                                    e.to_version, stored_json_text(e.checksums), stored_json_text(e.details),
                                    valid_text(os_user_name()), valid_text(host_name()));
                return;
            }
        }
    } catch (const std::exception &ex) {
        why = ex.what();
    }
    try {
        nlohmann::json j = {{"recorded_at", utc_timestamp("%Y-%m-%dT%H:%M:%SZ")},
                            {"database", db_name},
                            {"db_role", role.empty() ? nlohmann::json() : nlohmann::json(role)},
                            {"os_user", os_user_name()},
                            {"host", host_name()},
                            {"kind", e.kind},
                            {"what", e.what},
                            {"from_version", opt(e.from_version)},
                            {"to_version", opt(e.to_version)},
                            {"checksums", e.checksums},
                            {"details", e.details}};
        update_private_json(history_file(s), k_kind, [&](nlohmann::json &all) {
            if (!all.contains("entries"))
                all["entries"] = nlohmann::json::array();
            j["id"] = all["entries"].size() + 1;
            all["entries"].push_back(j);
            return true;
        });
        if (!why.empty())
            out().warn("the history entry (" + e.kind + ": " + e.what + ") went to " + history_file(s) +
                       ": the database's history could not be written: " + why);
    } catch (const std::exception &ex) {
        out().warn("could not record in the history (" + e.kind + ": " + e.what + "): " + ex.what() +
                   (why.empty() ? "" : "; database: " + why));
    }
}

void record_history(const Settings &s, const HistoryEntry &e, const std::string &dbname)
{
    std::unique_ptr<Db> db;
    try {
        db = connect_db(s, dbname);
    } catch (const std::exception &) {
    }
    record_history(s, db.get(), e, dbname.empty() ? s.conn.dbname : dbname);
}

} // namespace ou
