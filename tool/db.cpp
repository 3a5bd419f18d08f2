// See db.hpp.
#include "db.hpp"
#include "foreign_types.hpp"

#include <poll.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <sys/stat.h>

namespace ou {

namespace {
std::atomic<PGcancel *> g_cancel{nullptr};
volatile sig_atomic_t g_interrupted = 0;

void on_signal(int)
{
    g_interrupted = 1;
    if (PGcancel *c = g_cancel.load()) {
        char errbuf[256];
        PQcancel(c, errbuf, sizeof errbuf);
    }
}
} // namespace

void install_interrupt_handler()
{
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted()
{
    return g_interrupted != 0;
}

std::string ConnParams::describe() const
{
    std::string d = user.empty() ? "" : user + "@";
    d += host.empty() ? "(default host)" : host;
    if (!port.empty())
        d += ":" + port;
    d += "/" + (dbname.empty() ? std::string("(default database)") : dbname);
    for (const auto &[k, v] : extra)
        if (k == "service")
            d += " (service " + v + ")";
    return d;
}

std::string password_source(const ConnParams &p)
{
    if (p.password)
        return "config.xml (omero.db.pass)";
    const char *pw = std::getenv("PGPASSWORD");
    if (pw && *pw && !p.no_env_password)
        return "PGPASSWORD";
    std::string file;
    for (const auto &[k, v] : p.extra)
        if (k == "passfile")
            file = v;
    if (file.empty()) {
        const char *pf = std::getenv("PGPASSFILE");
        if (pf && *pf)
            file = pf;
    }
    if (file.empty()) {
        const char *home = std::getenv("HOME");
        if (home && *home)
            file = std::string(home) + "/.pgpass";
    }
    struct stat st;
    if (!file.empty() && stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode))
        return "the password file " + file;
    return std::string("none (no omero.db.pass in config.xml for this user, no PGPASSWORD, no password file") +
           (file.empty() ? "" : " " + file) + ")";
}

std::optional<Progress> parse_progress(const Notice &n)
{
    if (n.message.rfind("omero_upgrade progress", 0) != 0 || n.detail.empty())
        return std::nullopt;
    auto j = nlohmann::json::parse(n.detail, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return std::nullopt;
    Progress p;
    p.task = j.value("task", "");
    p.unit = j.value("unit", "");
    p.done = j.value("done", 0LL);
    p.total = j.value("total", 0LL);
    p.elapsed_s = j.value("elapsed_s", 0.0);
    p.eta_s = j.value("eta_s", -1.0);
    return p;
}

size_t Rows::col(const std::string &name) const
{
    for (size_t i = 0; i < columns.size(); i++)
        if (columns[i] == name)
            return i;
    throw CommandError("internal: no result column " + name);
}

ConnParams without_service_password(const ConnParams &p)
{
    std::string service;
    for (const auto &[k, v] : p.extra)
        if (k == "service")
            service = v;
    const char *env_service = std::getenv("PGSERVICE");
    std::string saved = env_service ? env_service : "";
    if (service.empty())
        service = saved;
    if (service.empty() || p.no_service)
        return p;
    // PQconndefaults reads the service PGSERVICE names, from libpq's own files (PGSERVICEFILE,
    // ~/.pg_service.conf, the system's pg_service.conf), without connecting; what differs from
    // the defaults without it is the service's part.
    auto defaults_with = [](const char *svc) {
        std::map<std::string, std::string> d;
        if (svc)
            setenv("PGSERVICE", svc, 1);
        else
            unsetenv("PGSERVICE");
        PQconninfoOption *o = PQconndefaults();
        for (PQconninfoOption *i = o; o && i->keyword; i++)
            if (i->val && *i->val)
                d[i->keyword] = i->val;
        if (o)
            PQconninfoFree(o);
        return d;
    };
    auto plain = defaults_with(nullptr);
    auto with = defaults_with(service.c_str());
    if (env_service)
        setenv("PGSERVICE", saved.c_str(), 1);
    else
        unsetenv("PGSERVICE");
    ConnParams q = p;
    q.extra.clear();
    std::set<std::string> given{"password", "service", "host", "port", "dbname", "user"};
    for (const auto &[k, v] : p.extra)
        if (k != "service") {
            q.extra.emplace_back(k, v);
            given.insert(k);
        }
    for (const auto &[k, v] : with) {
        if (plain.count(k) && plain[k] == v)
            continue;
        if (!given.count(k))
            q.extra.emplace_back(k, v);
        else if (k == "host" && q.host.empty())
            q.host = v;
        else if (k == "port" && q.port.empty())
            q.port = v;
    }
    q.no_service = true;
    return q;
}

std::unique_ptr<Db> Db::connect(const ConnParams &p)
{
    std::vector<const char *> keys, values;
    auto add = [&](const char *k, const std::string &v) {
        if (!v.empty()) {
            keys.push_back(k);
            values.push_back(v.c_str());
        }
    };
    for (const auto &[k, v] : p.extra)
        add(k.c_str(), v);
    add("host", p.host);
    add("port", p.port);
    add("dbname", p.dbname);
    add("user", p.user);
    if (p.password)
        add("password", *p.password);
    add("fallback_application_name", "omero-upgrade");
    keys.push_back(nullptr);
    values.push_back(nullptr);
    std::unique_ptr<Db> db(new Db());
    db->params_ = p;
    db->params_.password.reset();  // not kept beyond the connection attempt
    // expand_dbname 0: dbname is a name here; a conninfo or URI given with -d was expanded into
    // these fields by load_settings (PQconninfoParse), so a database named "a=b" stays a name.
    {
        // no_env_password: libpq takes PGPASSWORD as the password's default (an empty value given
        // here counts as not given), so it is out of the environment for the attempt only. The
        // tool connects from its main thread only.
        const char *env_pw = p.no_env_password ? std::getenv("PGPASSWORD") : nullptr;
        const char *env_svc = p.no_service ? std::getenv("PGSERVICE") : nullptr;
        std::string saved = env_pw ? env_pw : "", saved_svc = env_svc ? env_svc : "";
        if (env_pw)
            unsetenv("PGPASSWORD");
        if (env_svc)
            unsetenv("PGSERVICE");
        db->conn_ = PQconnectdbParams(keys.data(), values.data(), 0);
        if (env_pw)
            setenv("PGPASSWORD", saved.c_str(), 1);
        if (env_svc)
            setenv("PGSERVICE", saved_svc.c_str(), 1);
    }
    if (!db->conn_ || PQstatus(db->conn_) != CONNECTION_OK) {
        std::string msg = db->conn_ ? PQerrorMessage(db->conn_) : "out of memory";
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
            msg.pop_back();
        // The server asked for a password: say where it came from (never what it is).
        std::string pw;
        if (db->conn_ && (PQconnectionNeedsPassword(db->conn_) || PQconnectionUsedPassword(db->conn_)))
            pw = " (the server asked for a password; password from: " + password_source(p) + ")";
        std::string hint = "check omero.db.* in etc/grid/config.xml, -d/--dbname, -h/--db-host, -p/--db-port, -U/--db-user";
        if (!pw.empty())
            hint = p.password ? "check omero.db.pass in etc/grid/config.xml (bin/omero config set omero.db.pass), or the role's "
                                "password (ALTER ROLE … PASSWORD)"
                              : "set the password in PGPASSWORD or a password file (~/.pgpass or PGPASSFILE: "
                                "host:port:database:user:password), or omero.db.pass in config.xml for omero.db.user";
        throw CommandError("could not connect to the database " + p.describe() + ": " + msg + pw, hint);
    }
    // -v: where libpq really went (a service file, PGHOST, a URI…), once per target.
    {
        auto s = [](const char *v) { return std::string(v ? v : ""); };
        std::string where = "connected to host " + s(PQhost(db->conn_)) + ", port " + s(PQport(db->conn_)) + ", database " +
                            s(PQdb(db->conn_)) + ", user " + s(PQuser(db->conn_));
        for (const auto &[k, v] : p.extra)
            if (k == "service")
                where += ", service " + v;
        const char *svc = std::getenv("PGSERVICE");
        if (svc && *svc)
            where += ", PGSERVICE " + std::string(svc);
        where += std::string(", password: ") + (PQconnectionUsedPassword(db->conn_) ? password_source(p) : "not asked for");
        static std::set<std::string> shown;
        static std::mutex m;
        std::lock_guard<std::mutex> lock(m);
        if (shown.insert(where).second)
            out().detail(where);
    }
    // What was left to libpq (a service file, PG* variables), as it resolved it.
    for (auto [field, value] : {std::pair{&db->params_.host, PQhost(db->conn_)}, std::pair{&db->params_.port, PQport(db->conn_)},
                                std::pair{&db->params_.dbname, PQdb(db->conn_)}, std::pair{&db->params_.user, PQuser(db->conn_)}})
        if (field->empty() && value)
            *field = value;
    PQsetNoticeReceiver(db->conn_, &Db::notice_receiver, db.get());
    // Before anything else is sent: no name of ours resolves through a schema others may write
    // (ALTER ROLE … SET search_path, PGOPTIONS and "$user" included). Session-wide, so it holds
    // after a failed transaction too.
    db->query("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)");
    // The extension's progress NOTICEs carry their JSON DETAIL (parse_progress) only for sessions
    // that ask: ours, whatever application_name a -d conninfo gives; a psql user's never does.
    db->query("SELECT pg_catalog.set_config('omero_upgrade.progress_detail', 'on', false)");
    return db;
}

Db::~Db()
{
    if (conn_)
        PQfinish(conn_);
}

void Db::notice_receiver(void *arg, const PGresult *res)
{
    Db *db = static_cast<Db *>(arg);
    Notice n;
    auto field = [res](int code) {
        const char *v = PQresultErrorField(res, code);
        return std::string(v ? v : "");
    };
    n.severity = field(PG_DIAG_SEVERITY_NONLOCALIZED);
    n.sqlstate = field(PG_DIAG_SQLSTATE);
    n.message = field(PG_DIAG_MESSAGE_PRIMARY);
    n.detail = field(PG_DIAG_MESSAGE_DETAIL);
    n.hint = field(PG_DIAG_MESSAGE_HINT);
    if (db->notice_handler_)
        db->notice_handler_(n);
    else
        out().detail(n.severity + ": " + n.message);
}

Rows Db::query(const std::string &sql, const std::vector<Value> &params)
{
    std::vector<const char *> vals;
    for (const auto &p : params)
        vals.push_back(p ? p->c_str() : nullptr);
    // Restores the previous cancel afterwards: a query on a second connection during
    // query_ticking() must leave Ctrl-C aimed at the long statement.
    PGcancel *cancel = PQgetCancel(conn_);
    PGcancel *prev = g_cancel.exchange(cancel);
    PGresult *res = PQexecParams(conn_, sql.c_str(), (int)vals.size(), nullptr, vals.data(), nullptr, nullptr, 0);
    g_cancel.store(prev);
    PQfreeCancel(cancel);
    return take_result(res);
}

Rows Db::query_ticking(const std::string &sql, const std::vector<Value> &params, double interval_s,
                       const std::function<void()> &tick)
{
    std::vector<const char *> vals;
    for (const auto &p : params)
        vals.push_back(p ? p->c_str() : nullptr);
    if (!PQsendQueryParams(conn_, sql.c_str(), (int)vals.size(), nullptr, vals.data(), nullptr, nullptr, 0))
        return take_result(nullptr);
    PGcancel *cancel = PQgetCancel(conn_);
    PGcancel *prev = g_cancel.exchange(cancel);
    bool cancelled = false;
    auto cancel_now = [&] {
        if (!cancelled && cancel) {
            char errbuf[256];
            PQcancel(cancel, errbuf, sizeof errbuf);
        }
        cancelled = true;
    };
    std::exception_ptr tick_error;
    using clock = std::chrono::steady_clock;
    auto next = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(interval_s));
    PGresult *keep = nullptr;  // the first error, else the last result
    for (;;) {
        while (PQisBusy(conn_)) {
            // Ctrl-C during a tick cancelled the tick's query (or nothing): cancel ours too.
            if (interrupted())
                cancel_now();
            int wait_ms = (int)std::chrono::duration_cast<std::chrono::milliseconds>(next - clock::now()).count();
            struct pollfd pfd = {PQsocket(conn_), POLLIN, 0};
            int pr = poll(&pfd, 1, wait_ms < 0 ? 0 : wait_ms);
            if (pr > 0 && !PQconsumeInput(conn_))
                break;  // connection lost: PQgetResult reports it
            if (pr < 0 && errno != EINTR)
                break;
            if (clock::now() >= next) {
                if (!tick_error && !cancelled) {
                    try {
                        tick();
                    } catch (...) {
                        tick_error = std::current_exception();
                        cancel_now();
                    }
                }
                next = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(interval_s));
            }
        }
        PGresult *res = PQgetResult(conn_);
        if (!res)
            break;
        bool kept_error = keep && PQresultStatus(keep) != PGRES_TUPLES_OK && PQresultStatus(keep) != PGRES_COMMAND_OK;
        if (kept_error) {
            PQclear(res);
        } else {
            if (keep)
                PQclear(keep);
            keep = res;
        }
    }
    g_cancel.store(prev);
    PQfreeCancel(cancel);
    if (tick_error) {
        if (keep)
            PQclear(keep);
        std::rethrow_exception(tick_error);
    }
    return take_result(keep);
}

Rows Db::take_result(PGresult *res)
{
    std::unique_ptr<PGresult, void (*)(PGresult *)> guard(res, PQclear);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        auto field = [res](int code) {
            const char *v = res ? PQresultErrorField(res, code) : nullptr;
            return std::string(v ? v : "");
        };
        std::string msg = field(PG_DIAG_MESSAGE_PRIMARY);
        if (msg.empty())
            msg = PQerrorMessage(conn_);
        while (!msg.empty() && msg.back() == '\n')
            msg.pop_back();
        std::string sqlstate = field(PG_DIAG_SQLSTATE);
        if (sqlstate == "57014" && interrupted())
            msg = "interrupted (Ctrl-C): the running statement was cancelled";
        throw DbError(msg, sqlstate, field(PG_DIAG_MESSAGE_DETAIL), field(PG_DIAG_MESSAGE_HINT));
    }
    Rows r;
    const char *affected = PQcmdTuples(res);
    r.affected = affected && *affected ? std::atoll(affected) : 0;
    int nf = PQnfields(res), nt = PQntuples(res);
    for (int c = 0; c < nf; c++)
        r.columns.emplace_back(PQfname(res, c));
    r.rows.reserve(nt);
    for (int t = 0; t < nt; t++) {
        std::vector<Value> row;
        for (int c = 0; c < nf; c++)
            row.push_back(PQgetisnull(res, t, c) ? Value() : Value(std::string(PQgetvalue(res, t, c))));
        r.rows.push_back(std::move(row));
    }
    return r;
}

Value Db::scalar(const std::string &sql, const std::vector<Value> &params)
{
    Rows r = query(sql, params);
    if (r.rows.empty() || r.rows[0].empty())
        return std::nullopt;
    return r.rows[0][0];
}

int Db::server_version() const
{
    return PQserverVersion(conn_);
}

std::optional<BackendProgress> read_backend_progress(Db &monitor, int pid)
{
    // Columns present in PostgreSQL 13 to 17. One backend runs one command at a time; VACUUM
    // (ANALYZE) shows in the vacuum view, then in the analyze view. Catalog reads only: the
    // relation itself is locked by the command (VACUUM FULL: exclusively).
    Rows r = monitor.query(
        "SELECT p.command, p.phase, p.relid::pg_catalog.regclass::text AS relation, p.done, p.total, p.idx_done,"
        "       (SELECT count(*) FROM pg_catalog.pg_index i WHERE i.indrelid = p.relid) AS idx_total,"
        "       pg_catalog.current_setting('block_size') AS block_size"
        "  FROM (SELECT 'VACUUM' AS command, phase, relid, heap_blks_scanned AS done, heap_blks_total AS total,"
        "               0::bigint AS idx_done, 1 AS ord"
        "          FROM pg_catalog.pg_stat_progress_vacuum WHERE pid = $1::integer"
        "        UNION ALL"
        "        SELECT command, phase, relid, heap_blks_scanned, heap_blks_total, index_rebuild_count, 2"
        "          FROM pg_catalog.pg_stat_progress_cluster WHERE pid = $1::integer"
        "        UNION ALL"
        "        SELECT 'ANALYZE', phase, relid, sample_blks_scanned, sample_blks_total, 0, 3"
        "          FROM pg_catalog.pg_stat_progress_analyze WHERE pid = $1::integer) p"
        " ORDER BY p.ord LIMIT 1",
        {std::to_string(pid)});
    if (r.empty())
        return std::nullopt;
    auto num = [&](const char *c) { return std::atoll(r.str(0, c).c_str()); };
    BackendProgress p;
    p.command = r.str(0, "command");
    p.phase = r.str(0, "phase");
    p.relation = r.str(0, "relation");
    p.blks_done = num("done");
    p.blks_total = num("total");
    p.indexes_done = num("idx_done");
    p.indexes_total = num("idx_total");
    if (long long bs = num("block_size"); bs > 0)
        p.block_size = bs;
    return p;
}

std::string quote_ident(const std::string &name)
{
    std::string q = "\"";
    for (char c : name) {
        if (c == '"')
            q += '"';
        q += c;
    }
    return q + "\"";
}

std::optional<std::string> find_omero_schema(Db &db)
{
    Value chosen = db.scalar("SELECT NULLIF(pg_catalog.current_setting('omero_upgrade.omero_schema', true), '')");
    Rows r = db.query("SELECT n.nspname::pg_catalog.text AS s FROM pg_catalog.pg_class c"
                      "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
                      " WHERE c.relname OPERATOR(pg_catalog.=) 'dbpatch'::pg_catalog.name"
                      "   AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::\"char\"[])"
                      "   AND n.oid OPERATOR(pg_catalog.<>) pg_catalog.pg_my_temp_schema()"
                      "   AND NOT pg_catalog.pg_is_other_temp_schema(n.oid)"
                      "   AND ($1::pg_catalog.text IS NULL OR n.nspname OPERATOR(pg_catalog.=) $1::pg_catalog.name)"
                      " ORDER BY 1",
                      {chosen});
    if (chosen) {
        if (r.empty())
            throw CommandError("omero_upgrade.omero_schema is \"" + *chosen +
                                   "\", but no schema of that name holds a table named dbpatch",
                               "set omero_upgrade.omero_schema to the schema of OMERO's tables, or RESET it");
        return r.str(0, "s");
    }
    if (r.rows.size() > 1) {
        std::string names;
        for (size_t i = 0; i < r.rows.size(); i++)
            names += (i ? ", " : "") + quote_ident(r.str(i, "s"));
        throw CommandError("more than one schema of the database " + db.params().dbname +
                               " holds a table named dbpatch: " + names + " (omero-upgrade never picks one)",
                           "name the schema of OMERO's tables: ALTER ROLE <you> SET omero_upgrade.omero_schema = "
                           "'<schema>' (or ALTER DATABASE … SET), or drop the other dbpatch tables");
    }
    if (r.empty())
        return std::nullopt;
    return r.str(0, "s");
}

std::string omero_code_pgoptions(Db &db, const std::string &schema)
{
    Value shadows = db.scalar(
        "SELECT pg_catalog.string_agg(x, ', ' ORDER BY x) FROM ("
        " SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text AS x FROM pg_catalog.pg_proc p"
        "  WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace(pg_catalog.quote_ident($1))"
        "    AND EXISTS (SELECT 1 FROM pg_catalog.pg_proc c"
        "        WHERE c.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace"
        "          AND c.proname OPERATOR(pg_catalog.=) p.proname)"
        "    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
        "                     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"
        "                       AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')"
        " UNION ALL"
        " SELECT 'operator ' OPERATOR(pg_catalog.||) o.oid::pg_catalog.regoperator::pg_catalog.text"
        "   FROM pg_catalog.pg_operator o"
        "  WHERE o.oprnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace(pg_catalog.quote_ident($1))"
        "    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
        "                     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass"
        "                       AND d.objid OPERATOR(pg_catalog.=) o.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')) AS s",
        {schema});
    if (shadows)
        throw CommandError("the schema of OMERO's tables (" + quote_ident(schema) +
                               ") holds functions or operators named like PostgreSQL's own: " + *shadows +
                               "; OMERO defines none, and OMERO's scripts would call them with the rights of the role "
                               "running them",
                           "drop them (and REVOKE CREATE ON SCHEMA " + quote_ident(schema) +
                               " FROM PUBLIC if every role may create objects there), then run it again");
    // PGOPTIONS splits on unescaped white space; a backslash escapes the next character.
    std::string path = quote_ident(schema) + ", pg_catalog, pg_temp", esc;
    for (char c : path) {
        if (c == ' ' || c == '\\' || c == '\t')
            esc += '\\';
        esc += c;
    }
    return "-c search_path=" + esc;
}

std::string pgoptions_with(const std::string &opts)
{
    const char *env = std::getenv("PGOPTIONS");
    return env && *env ? std::string(env) + " " + opts : opts;
}

OmeroDbState read_omero_state(Db &db)
{
    OmeroDbState st;
    Rows r = db.query("SELECT pg_catalog.current_database() AS dbname, pg_catalog.pg_encoding_to_char(d.encoding) AS encoding, "
                      "pg_catalog.pg_database_size(d.oid) AS size, "
                      "pg_catalog.current_setting('server_version_num') AS num, "
                      "pg_catalog.current_setting('server_version') AS ver, "
                      "(SELECT e.extversion FROM pg_catalog.pg_extension e"
                      "  WHERE e.extname OPERATOR(pg_catalog.=) 'omero_upgrade'::pg_catalog.name) AS ext "
                      "FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()");
    st.dbname = r.str(0, "dbname");
    st.encoding = r.str(0, "encoding");
    st.size_bytes = std::atoll(r.str(0, "size").c_str());
    st.server_version_num = std::atoi(r.str(0, "num").c_str());
    st.server_version = r.str(0, "ver");
    size_t sp = st.server_version.find(' ');
    if (sp != std::string::npos)
        st.server_version.resize(sp);
    st.extension_version = r.str(0, "ext");
    std::optional<std::string> schema = find_omero_schema(db);
    if (!schema)
        return st;
    st.schema = *schema;
    if (Value foreign = db.scalar(foreign_column_types_sql, {quote_ident(*schema) + ".dbpatch"}))
        throw CommandError("OMERO's table " + *schema + ".dbpatch has columns whose types carry casts of their "
                               "owner's: " + *foreign + "; the cast's function "
                               "would run with this session's rights when the version is read: refusing to read it",
                           "put OMERO's own column types back (ALTER TABLE dbpatch ALTER COLUMN … TYPE), or restore the "
                           "database from a backup");
    Rows p = db.query("SELECT currentversion::pg_catalog.text OPERATOR(pg_catalog.||) '__'::pg_catalog.text"
                      "       OPERATOR(pg_catalog.||) currentpatch::pg_catalog.text AS version,"
                      "       finished IS NOT NULL AS finished, coalesce(message::pg_catalog.text, '') AS message"
                      "  FROM " + quote_ident(*schema) + ".dbpatch ORDER BY id DESC LIMIT 1");
    if (p.empty())
        return st;
    st.is_omero = true;
    st.version = p.str(0, "version");
    st.finished = p.str(0, "finished") == "t";
    st.message = p.str(0, "message");
    return st;
}

} // namespace ou
