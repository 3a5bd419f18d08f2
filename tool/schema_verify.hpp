// Schema verification (`omero-upgrade db verify`): the fresh schema of the database's OMERO
// version, built in a scratch database from the server's own creation files
// (sql/psql/<version>/psql-header.sql, schema.sql, views.sql, psql-footer.sql, assembled as
// `omero db script` does), compared catalog by catalog with the database.
//
// The pieces, in the order verify_schema() uses them:
//   find_creation_files()       the four files of a version in a server directory
//   assemble_creation_script()  the script `omero db script` would write from them
//   ScratchDatabase             a database of our own, dropped whatever happens (Ctrl-C too)
//   read_catalog()              every object of the non-system schemas, as PostgreSQL deparses it
//   compare_catalogs()          the differences, by object
// Facts about `omero db script` that this relies on are in schema_verify.cpp and in README
// ("omero-upgrade db verify").
#pragma once

#include "db.hpp"
#include "settings.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ou {

// ---- the creation files ---------------------------------------------------------------------

struct CreationFiles {
    std::string version;                        // OMERO5.4__0
    std::string dir;                            // <server>/sql/psql/OMERO5.4__0
    std::string header, schema, views, footer;  // the four paths, in the order they are joined
};
// The creation files of `version` in the server directory; a CommandError (exit 2) naming the
// directory and what is missing when they are not all there.
CreationFiles find_creation_files(const std::string &server_dir, const std::string &version);

// What `omero db script`'s placeholders become.
struct ScriptValues {
    std::string time;         // %(TIME)s: the time the script is made, as Python's time.ctime()
    std::string script_name;  // %(SCRIPT)s: the script's file name (<version>.sql)
    // @ROOTPASS@: OMERO puts the root password's hash here. Ours is not the hash of any
    // password, so the scratch database's root can never log in.
    std::string root_password_hash = "*";
};
// The whole creation script (header, schema.sql, views.sql, footer with its substitutions).
// A line of the header or the footer that Python's % formatting would refuse (a lone %, an
// unknown %(KEY)s) is a CommandError, as it makes `omero db script` fail.
std::string assemble_creation_script(const CreationFiles &f, const ScriptValues &v);

// Python's `line % mapping` for one line: %% → %, %(KEY)s (with optional '-' flag, width and
// precision) → the value. nullopt (and *why) when Python would raise.
std::optional<std::string> percent_format(const std::string &line, const std::map<std::string, std::string> &values,
                                          std::string *why);

// ---- the scratch database -------------------------------------------------------------------

// A new, empty UTF8 database on the same server, created by the connecting role (which needs
// CREATEDB or to be a superuser) for the OMERO database user, its owner (the connecting role
// must be that user, a member of it or a superuser), named omero_upgrade_verify_<pid>_<random>. It is dropped by
// drop() or, whatever happens (an exception, Ctrl-C), by the destructor: WITH (FORCE), so a
// client still connected to it (psql stopped half-way) does not keep it alive, and with Ctrl-C
// and SIGTERM held back while the DROP runs.
class ScratchDatabase {
public:
    // admin: a connection to any database of the server, as the role that will own the scratch
    // database; reconnect: a new such connection, should admin be lost meanwhile.
    ScratchDatabase(Db &admin, std::function<std::unique_ptr<Db>()> reconnect);
    ~ScratchDatabase();
    ScratchDatabase(const ScratchDatabase &) = delete;
    ScratchDatabase &operator=(const ScratchDatabase &) = delete;

    // CREATE DATABASE … OWNER owner (the OMERO database user: the creation script runs as it);
    // a CommandError naming the fix when the connecting role may not.
    void create(const std::string &owner);
    // ALTER DATABASE … SET: every new session's search_path (where the creation script's
    // objects go) and its client_min_messages.
    void set_defaults(const std::string &search_path_schema);
    // Drops it now (true), or says why not in *error (and how to drop it by hand).
    bool drop(std::string *error);
    const std::string &name() const { return name_; }
    bool exists() const { return created_ && !dropped_; }

private:
    Db &admin_;
    std::function<std::unique_ptr<Db>()> reconnect_;
    std::unique_ptr<Db> own_;  // the reconnection, when admin was lost
    std::string name_;
    bool created_ = false, dropped_ = false, gave_up_ = false;
};

// The role of the connection may create databases (CREATEDB or superuser); a CommandError
// naming the fix (ALTER ROLE … CREATEDB, or --db-user of a role that has it) otherwise.
void require_createdb(Db &db);

// ---- the catalogs ---------------------------------------------------------------------------

// One object of a catalog, keyed by (kind, name).
struct SchemaObject {
    std::string kind;    // schema, type, sequence, table, column, constraint, index, trigger, function, view
    std::string name;    // qualified and quoted as needed: public.annotation, public.annotation.ns,
                         // public.ome_nextval(seq character varying)
    std::string table;   // column, constraint, index, trigger: the table it belongs to
    std::string schema;  // the schema it lives in (unquoted)
    std::string def;     // its definition, from PostgreSQL's own deparsers
    std::string body;    // functions: the body as written (prosrc), which def holds verbatim
};
using Catalog = std::map<std::pair<std::string, std::string>, SchemaObject>;

// Sets search_path = pg_catalog, pg_temp on the connection (for good: nothing may resolve a name
// through the caller's search_path afterwards), then reads every object of every schema but
// the system ones, leaving out extensions' objects and schemas (omero_upgrade's state among them).
Catalog read_catalog(Db &db);

// The schema holding OMERO's dbpatch table (find_omero_schema, db.hpp): where the creation
// script's objects must go in the scratch database.
std::string omero_schema(Db &db);

struct SchemaDifference {
    std::string kind, name, table;
    std::string change;                     // "missing" | "extra" | "changed"
    std::optional<std::string> database;    // its definition in the database (extra, changed)
    std::optional<std::string> fresh;       // its definition in the fresh schema (missing, changed)
    std::map<std::string, size_t> contains;  // a missing or extra table or schema: what it holds
    std::string detail;                     // for people: what differs, in one line
};
// Every difference, by object, ordered by kind (schemas first) then name. Column order, owners,
// privileges, comments, statistics and data are not part of a catalog here: they never differ.
// Function and view definitions are compared with runs of white space taken as one space (and a
// function body's leading and trailing white space as none).
std::vector<SchemaDifference> compare_catalogs(const Catalog &database, const Catalog &fresh);

// One line per difference: "missing  index     public.annotation_ns: CREATE INDEX …".
std::string difference_line(const SchemaDifference &d);
nlohmann::json difference_json(const SchemaDifference &d);
// How many objects of each kind a catalog holds.
std::map<std::string, size_t> catalog_counts(const Catalog &c);

// ---- the whole verification -----------------------------------------------------------------

struct SchemaVerifyOptions {
    std::string new_server;  // whose creation files; empty: the settings' server directory
};

struct SchemaVerifyResult {
    std::string database, version, creation_dir, scratch_database, omero_schema;
    bool scratch_dropped = false;
    std::map<std::string, size_t> database_counts, fresh_counts;
    std::vector<SchemaDifference> differences;
    double build_seconds = 0;
};

// Verifies the schema of the database of `db` (at `version`, finished) against the creation files
// of that version: builds them in a scratch database (psql, as the connecting role), reads both
// catalogs, compares them, drops the scratch database. Throws CommandError when it cannot (no
// files, no psql, no CREATEDB, the creation script fails, Ctrl-C); the scratch database is gone
// by then.
SchemaVerifyResult verify_schema(const Settings &s, Db &db, const std::string &version, const SchemaVerifyOptions &o);

} // namespace ou
