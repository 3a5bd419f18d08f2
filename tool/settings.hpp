// Where the OMERO.server is and how to reach its database: the server directory, its
// etc/grid/config.xml (active profile), OMERO's defaults, the --db-* options and libpq's
// environment, merged in one documented order (README, "Settings"). Every subcommand that talks
// to the database gets its settings and connection here.
#pragma once

#include "db.hpp"
#include "omero_versions.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>

namespace ou {

struct Settings {
    GlobalOptions options;          // the command line's global options these were read with
    std::string server_dir;         // absolute when it exists
    std::string server_dir_source;  // "--server-dir" | "OMERODIR" | "default"
    bool server_dir_found = false;
    std::string config_path;        // <server_dir>/etc/grid/config.xml
    bool config_found = false;
    std::string profile;            // active profile
    std::string profile_source;     // "OMERO_CONFIG" | "config.xml" | "default"
    std::map<std::string, std::string> properties;  // of the active profile (may hold omero.db.pass)

    // The connection; conn.password is set only from config.xml (libpq reads PGPASSWORD/.pgpass
    // itself). sources: "host"/"port"/"dbname"/"user" → where the value came from.
    ConnParams conn;
    std::map<std::string, std::string> sources;
    bool password_from_config = false;
    std::string omero_db_user;  // omero.db.user of config.xml, else OMERO's default "omero"
    std::string data_dir;       // omero.data.dir, else /OMERO

    std::string property(const std::string &key, const std::string &dflt = "") const;
    // For --json and -v: every setting and its source, never the password.
    nlohmann::json to_json() const;
    // Path below the server directory.
    std::string server_path(const std::string &rel) const { return server_dir + "/" + rel; }
};

// need_config: the subcommand cannot work without the server directory's config.xml (it is an
// error when missing). A malformed config.xml is always an error: guessing could mean working on
// the wrong database.
Settings load_settings(const GlobalOptions &g, bool need_config);

// A connection as the settings say (dbname overrides the database, e.g. "postgres" to create one).
std::unique_ptr<Db> connect_db(const Settings &s, const std::string &dbname = "");
// The same; what the settings left to libpq (a service: -d service=…, PGSERVICE) is filled in from
// the connection (host, port, database, user as libpq resolved them), so that results and
// messages name the database ("the database omero is already at …", never "the database  is").
std::unique_ptr<Db> connect_db(Settings &s, const std::string &dbname = "");

// The connection parameters for a subprocess or another database, same server and user.
ConnParams conn_for(const Settings &s, const std::string &dbname = "");

// The OMERO server of the settings' server directory (bin/omero):
// whether it runs (`bin/omero admin status`: exit 0 = running); nullopt when there is no
// bin/omero or it does not answer.
std::optional<bool> omero_server_running(const Settings &s, std::string *how = nullptr);
// `bin/omero config set KEY VALUE` in the server directory (OMERO edits config.xml under its lock).
void omero_config_set(const Settings &s, const std::string &key, const std::string &value);
// `bin/omero config set KEY` (no value): removes the key, so OMERO's default applies.
void omero_config_unset(const Settings &s, const std::string &key);
// The newest OMERO database version the server directory ships upgrade scripts for (the folder
// names of sql/psql, e.g. OMERO5.4__0), "" when there are none.
std::string server_newest_version(const Settings &s);

// Throws a clear CommandError when there is no executable bin/omero (checked before acting).
void require_omero_bin(const Settings &s);

} // namespace ou
