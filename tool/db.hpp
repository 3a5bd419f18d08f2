// Database access for omero-upgrade: libpq with parameters only, notices (progress) delivered to
// a handler, and Ctrl-C turned into a libpq cancel of the running statement.
#pragma once

#include "common.hpp"

#include <libpq-fe.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ou {

// Where to connect. Empty fields fall back to libpq's environment (PGHOST…, service files);
// the password is only ever one read from config.xml, or libpq's own PGPASSWORD/.pgpass.
struct ConnParams {
    std::string host, port, dbname, user;
    std::optional<std::string> password;  // config.xml's omero.db.pass, only
    // Not PGPASSWORD either (a connection as another role than the one the environment is for):
    // libpq then reads the password file only.
    bool no_env_password = false;
    // The service (PGSERVICE or -d service=…) was read into `extra` without its password
    // (without_service_password): libpq must not read it again, PGSERVICE is out of the way.
    bool no_service = false;
    // Other libpq keywords from a conninfo string or URI given with -d (service, sslmode,
    // hostaddr, connect_timeout, …), passed on as they are; never "password".
    std::vector<std::pair<std::string, std::string>> extra;
    std::string describe() const;  // "omero@localhost:5432/omero" (never the password)
};

// Where the password of a connection attempt comes from, in libpq's order: config.xml (the only
// password the tool hands to libpq itself), PGPASSWORD, the password file (PGPASSFILE, a
// passfile keyword, else ~/.pgpass) when it exists, else none. Names the place, never the value.
std::string password_source(const ConnParams &p);

// For a connection as another role than the one a service is for (no_env_password): the
// service's keys (host, port, sslmode, …), as libpq reads them, become explicit keys, and its
// password= is left out, so it is never offered to that other role's login. p itself when no
// service is in use.
ConnParams without_service_password(const ConnParams &p);

struct Notice {
    std::string severity, sqlstate, message, detail, hint;
};

// A progress NOTICE of the extension (README, "Design"): message starts with
// "omero_upgrade progress", DETAIL holds a JSON object.
struct Progress {
    std::string task, unit;
    long long done = 0, total = 0;
    double elapsed_s = 0, eta_s = -1;
};
std::optional<Progress> parse_progress(const Notice &n);

using Value = std::optional<std::string>;

struct Rows {
    std::vector<std::string> columns;
    std::vector<std::vector<Value>> rows;
    long long affected = 0;
    size_t col(const std::string &name) const;
    Value get(size_t r, const std::string &name) const { return rows.at(r).at(col(name)); }
    std::string str(size_t r, const std::string &name) const { return get(r, name).value_or(""); }
    bool empty() const { return rows.empty(); }
};

// An SQL error: the server's message, SQLSTATE and detail.
struct DbError : CommandError {
    DbError(const std::string &msg, std::string sqlstate, std::string detail, std::string hint)
        : CommandError(msg, std::move(hint)), sqlstate(std::move(sqlstate)), detail(std::move(detail))
    {
    }
    std::string sqlstate, detail;
};

class Db {
public:
    static std::unique_ptr<Db> connect(const ConnParams &p);
    ~Db();
    Db(const Db &) = delete;
    Db &operator=(const Db &) = delete;

    Rows query(const std::string &sql, const std::vector<Value> &params = {});
    Value scalar(const std::string &sql, const std::vector<Value> &params = {});
    // query() for a long statement: sent asynchronously, and tick() is called about every
    // interval_s seconds while it runs (e.g. to read its progress from another connection:
    // read_backend_progress). Ctrl-C cancels it as it does query(), also during a tick. An
    // exception from tick() cancels the statement and is rethrown once the statement ended.
    Rows query_ticking(const std::string &sql, const std::vector<Value> &params, double interval_s,
                       const std::function<void()> &tick);
    // The server process of this connection (the pid of PostgreSQL's progress views).
    int backend_pid() const { return PQbackendPID(conn_); }
    // Every NOTICE/WARNING the server sends while a statement runs.
    void on_notice(std::function<void(const Notice &)> handler) { notice_handler_ = std::move(handler); }
    int server_version() const;
    const ConnParams &params() const { return params_; }
    PGconn *raw() { return conn_; }

private:
    Db() = default;
    static void notice_receiver(void *arg, const PGresult *res);
    Rows take_result(PGresult *res);  // frees res; throws DbError for an error result
    PGconn *conn_ = nullptr;
    ConnParams params_;
    std::function<void(const Notice &)> notice_handler_;
};

// What PostgreSQL's progress views (13+) say about the command another backend runs: VACUUM
// (pg_stat_progress_vacuum), VACUUM FULL / CLUSTER (pg_stat_progress_cluster), ANALYZE
// (pg_stat_progress_analyze). Read through a second connection of the same user (the views
// hide other users' backends unless pg_read_all_stats); nullopt while the backend reports
// nothing. Throws DbError when the views cannot be read (e.g. PostgreSQL before 13).
struct BackendProgress {
    std::string command;   // "VACUUM", "VACUUM FULL", "CLUSTER", "ANALYZE"
    std::string phase;     // the view's, e.g. "seq scanning heap", "rebuilding index"
    std::string relation;  // the relation being worked on, as regclass shows it
    long long blks_done = 0, blks_total = 0;        // heap blocks scanned (ANALYZE: sample blocks)
    long long indexes_done = 0, indexes_total = 0;  // VACUUM FULL/CLUSTER: indexes rebuilt, of the table's
    long long block_size = 8192;
};
std::optional<BackendProgress> read_backend_progress(Db &monitor, int pid);

// What the tool needs to know about an OMERO database before acting on it.
struct OmeroDbState {
    std::string dbname;
    std::string schema;         // OMERO's schema (find_omero_schema), "" when none
    bool is_omero = false;      // has a dbpatch table with rows
    std::string version;        // newest dbpatch row: OMERO5.3__1
    bool finished = false;      // its finished time is set
    std::string message;
    std::string encoding;       // UTF8, LATIN1, ...
    long long size_bytes = 0;   // pg_database_size
    std::string extension_version;  // omero_upgrade, "" when not installed
    std::string server_version;     // "15.20"
    int server_version_num = 0;
};
OmeroDbState read_omero_state(Db &db);

// Every connection of the tool runs with search_path = pg_catalog, pg_temp (Db::connect sets it):
// nothing the tool sends resolves a name through a schema another role may create objects in
// (public, "$user"). OMERO's tables are named with the schema that holds them, the extension's
// functions with the extension's schema.
//
// OMERO's schema, unquoted: the setting omero_upgrade.omero_schema when it is set, else the only
// schema holding a table named dbpatch (temporary schemas never count); nullopt when none does.
// Several candidates are an error naming them, never a silent pick (as the extension does:
// extension/omero_db.*): a role that can create a schema cannot make the tool read its dbpatch.
std::optional<std::string> find_omero_schema(Db &db);
// An SQL identifier, always double-quoted ("a""b").
std::string quote_ident(const std::string &name);

// The search_path for a psql child that runs OMERO's own SQL (upgrade and precheck scripts):
// OMERO's schema first (where the scripts create their objects), then pg_catalog, then pg_temp;
// no "$user", no public unless it is OMERO's. Checks first that OMERO's schema holds no function
// or operator named like one of PostgreSQL's (OMERO defines none; members of an installed
// extension do not count), which the scripts would otherwise call with the child's rights: an
// error naming them. Returned as a PGOPTIONS value ("-c search_path=…").
std::string omero_code_pgoptions(Db &db, const std::string &schema);
// The caller's PGOPTIONS (if any) followed by opts: ours come last, so they win.
std::string pgoptions_with(const std::string &opts);

// Ctrl-C / SIGTERM: cancels the statement running on the current connection (PQcancel is
// async-signal-safe) and sets a flag that long steps poll.
void install_interrupt_handler();
bool interrupted();

} // namespace ou
