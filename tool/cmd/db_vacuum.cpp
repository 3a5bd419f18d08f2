// omero-upgrade db vacuum [--full]: the guide's optional "VACUUM FULL VERBOSE ANALYZE", table by
// table, largest first, with progress; a re-run simply does it again. VACUUM FULL rewrites each
// table (and its indexes) beside the old copy, so it needs about the table's size free in the
// server's data directory: checked when the server is local and its data directory visible,
// otherwise the tool says it cannot check and asks for --force.
#include "commands.hpp"
#include "progress.hpp"
#include "omero_server.hpp"

#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace ou {

namespace {

struct VacuumOpts {
    bool full = false, dry_run = false, force = false, no_analyze = false;
};

bool local_server(const std::string &host)
{
    return host.empty() || host[0] == '/' || host == "localhost" || host == "127.0.0.1" || host == "::1";
}

// Free bytes in the server's data directory, or why it cannot be told.
bool server_free_space(Db &db, const ConnParams &cp, unsigned long long &free, std::string &why)
{
    if (!local_server(cp.host)) {
        why = "the database server " + cp.host + " is not on this machine";
        return false;
    }
    std::string dir;
    try {
        dir = db.scalar("SELECT pg_catalog.current_setting('data_directory')").value_or("");
    } catch (const DbError &e) {
        why = std::string("the data directory is not visible to this user (") + e.what() + ")";
        return false;
    }
    struct statvfs v;
    if (statvfs(dir.c_str(), &v) != 0) {
        why = "cannot examine the data directory " + dir + ": " + std::strerror(errno);
        return false;
    }
    free = (unsigned long long)v.f_bavail * v.f_frsize;
    return true;
}

void add_db_vacuum_options(CLI::App &sub, VacuumOpts &o)
{
    sub.add_flag("--full", o.full, "VACUUM FULL: rewrite each table to give space back (exclusive lock per table)");
    sub.add_flag("--no-analyze", o.no_analyze, "do not ANALYZE");
    sub.add_flag("--dry-run", o.dry_run, "list the tables and the checks, vacuum nothing");
    sub.add_flag("--force", o.force, "go on when free space cannot be checked or other sessions use the database");
}

// The tables to vacuum: of every schema but the system ones, largest first (names quoted by
// the server), with their sizes and indexes.
struct VacuumTables {
    Rows r;
    size_t n = 0;
    unsigned long long total = 0, largest = 0;
};

VacuumTables list_tables(Db &db)
{
    VacuumTables v;
    Rows &r = v.r;
    r = db.query(
        "SELECT format('%I.%I', n.nspname, c.relname) AS name, pg_catalog.pg_total_relation_size(c.oid) AS size,"
        "       c.reltablespace <> 0 AS own_tablespace"
        "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        "   AND n.nspname !~ '^pg_(toast|temp)'"
        " ORDER BY 2 DESC, 1");
    v.n = r.rows.size();
    for (size_t i = 0; i < v.n; i++) {
        unsigned long long sz = std::strtoull(r.str(i, "size").c_str(), nullptr, 10);
        v.total += sz;
        v.largest = std::max(v.largest, sz);
    }
    return v;
}

// VACUUM FULL locks each table exclusively and needs the largest table's size again: refused
// (EXIT_PROBLEM, said why) when other sessions use the database or the space is short, unless
// --force; EXIT_OK to go on.
int check_full_vacuum(const VacuumOpts &o, Db &db, const Settings &s, const VacuumTables &t, nlohmann::json &res)
{
    const Rows &r = t.r;
    const size_t n = t.n;
    const unsigned long long largest = t.largest;
    // Exclusive locks: nobody else should be working on the database.
    auto others = other_sessions(db, s.omero_db_user);
    if (!others.empty()) {
        std::string msg = "other sessions use the database " + s.conn.dbname + ": " + describe_sessions(others);
        if (!o.force) {
            out().error(msg + " (VACUUM FULL locks each table exclusively)");
            out().hint("stop the server first (omero-upgrade server stop), or give --force");
            return EXIT_PROBLEM;
        }
        out().warn(msg + " (--force: going on)");
    }
    unsigned long long free = 0;
    std::string why;
    bool known = server_free_space(db, s.conn, free, why);
    res["free_space_checked"] = known;
    if (known) {
        res["free_bytes"] = free;
        unsigned long long needed = largest + largest / 10;
        if (free < needed) {
            std::string msg = "VACUUM FULL of " + r.str(0, "name") + " needs about " + human_bytes(needed) +
                              " free in the server's data directory, " + human_bytes(free) + " are free";
            if (!o.force) {
                out().error(msg);
                out().hint("free some space, or run db vacuum without --full (or --force)");
                return EXIT_PROBLEM;
            }
            out().warn(msg + " (--force: going on)");
        } else {
            out().say("free space in the server's data directory: " + human_bytes(free) + " (the largest table needs about " +
                      human_bytes(needed) + ")");
        }
    } else if (!o.force) {
        out().error("cannot check the free space VACUUM FULL needs: " + why);
        out().hint("make sure about " + human_bytes(largest + largest / 10) +
                  " are free where the database keeps its files, then give --force");
        return EXIT_PROBLEM;
    } else {
        out().warn("cannot check the free space VACUUM FULL needs: " + why + " (--force: going on)");
    }
    for (size_t i = 0; i < n; i++)
        if (r.str(i, "own_tablespace") == "t")
            out().warn(r.str(i, "name") + " is in a tablespace of its own: its free space was not checked");
    return EXIT_OK;
}

// The statement: VACUUM, with FULL and ANALYZE as asked.
std::string vacuum_verb(const VacuumOpts &o)
{
    std::string opts = o.full ? "FULL" : "";
    if (!o.no_analyze)
        opts += opts.empty() ? "ANALYZE" : ", ANALYZE";
    std::string verb = "VACUUM" + (opts.empty() ? std::string() : " (" + opts + ")");
    return verb;
}

// How much of a table (before bytes) PostgreSQL's progress view p shows done, never back
// (in_table: counted so far, updated), and in words.
std::string table_progress(const BackendProgress &p, unsigned long long before, unsigned long long &in_table)
{
    unsigned long long bs = (unsigned long long)p.block_size;
    unsigned long long heap = (unsigned long long)std::max(0LL, p.blks_total) * bs;
    unsigned long long scanned = (unsigned long long)std::max(0LL, p.blks_done) * bs;
    unsigned long long est = 0;
    std::string what = p.phase;
    if (p.command == "ANALYZE") {
        // The statement's last part: the rest of the table as the sample is read.
        what = "analyzing: " + p.phase;
        est = in_table;
        if (p.blks_total > 0) {
            what += ", " + std::to_string(p.blks_done) + "/" + std::to_string(p.blks_total) + " sample blocks";
            est += (unsigned long long)((double)(before - std::min(in_table, before)) *
                                        (double)std::min(p.blks_done, p.blks_total) / (double)p.blks_total);
        }
    } else if (p.phase == "rebuilding index" || p.phase == "performing final cleanup") {
        unsigned long long rest = before > heap ? before - heap : 0;
        if (p.phase == "performing final cleanup")
            est = before;
        else if (p.indexes_total > 0)
            est = heap + (unsigned long long)((double)rest * (double)std::min(p.indexes_done, p.indexes_total) /
                                              (double)p.indexes_total);
        if (p.phase == "rebuilding index" && p.indexes_total > 0)
            what += " " + std::to_string(std::min(p.indexes_done + 1, p.indexes_total)) + " of " +
                    std::to_string(p.indexes_total);
    } else if (p.command != "VACUUM" && p.phase != "seq scanning heap" && p.phase != "index scanning heap") {
        est = heap;  // VACUUM FULL past its heap scan: sorting, writing, swapping
    } else {
        est = scanned;
        if (p.blks_total > 0)
            what += ", " + std::to_string(p.blks_done) + "/" + std::to_string(p.blks_total) + " blocks";
    }
    if (p.relation.rfind("pg_toast.", 0) == 0)
        what += " of " + p.relation;
    in_table = std::max(in_table, std::min(est, before));
    return what;
}

// Inside a table, a second connection reads PostgreSQL's progress views about once a second
// (heap blocks scanned, indexes rebuilt): without it a large table would be silent for minutes.
// Monitoring is never worth failing for: without it the meter moves between tables only.
struct ProgressMonitor {
    std::unique_ptr<Db> conn;

    void off(const std::string &why)
    {
        out().detail("db vacuum: progress inside each table not shown (" + why + "): the meter moves between tables only");
        conn.reset();
    }
    explicit ProgressMonitor(Context &ctx)
    {
        try {
            conn = ctx.connect();
            if (conn->server_version() < 130000)
                off("PostgreSQL " + std::to_string(conn->server_version() / 10000) +
                    " has no progress view for ANALYZE; 13 or later has");
        } catch (const std::exception &e) {
            off(std::string("no second connection: ") + e.what());
        }
    }
};

// One table vacuumed, the meter moved by what the monitor sees of backend pid; its entry of
// "done".
nlohmann::json vacuum_table(Db &db, const std::string &verb, const std::string &name, unsigned long long before,
                            const std::string &note, Meter &meter, unsigned long long bytes_done,
                            ProgressMonitor &monitor, int pid)
{
    auto ts = std::chrono::steady_clock::now();
    // Bytes of this table counted done so far: heap blocks scanned, then (VACUUM FULL)
    // the indexes' share as they are rebuilt; never back, never beyond the table.
    unsigned long long in_table = 0;
    std::string last_phase;
    auto tick = [&] {
        if (!monitor.conn)
            return;
        std::optional<BackendProgress> p;
        try {
            p = read_backend_progress(*monitor.conn, pid);
        } catch (const std::exception &e) {
            if (!interrupted())
                monitor.off(std::string("PostgreSQL's progress views cannot be read: ") + e.what());
            monitor.conn.reset();
            return;
        }
        if (!p)
            return;
        std::string what = table_progress(*p, before, in_table);
        std::string line_note = note + ": " + what;
        // A new phase of a table that has already taken a while gets its own line.
        if (p->command + p->phase != last_phase && !last_phase.empty() && meter.elapsed() >= 2)
            meter.show(bytes_done + in_table, line_note);
        else
            meter.update(bytes_done + in_table, line_note);
        last_phase = p->command + p->phase;
    };
    db.query_ticking(verb + " " + name, {}, 1.0, tick);
    unsigned long long after = std::strtoull(
        db.scalar("SELECT pg_catalog.pg_total_relation_size($1::regclass)", {name}).value_or("0").c_str(), nullptr, 10);
    return {{"table", name},
            {"size_before", before},
            {"size_after", after},
            {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count()}};
}

// Every table, largest first, with a meter of bytes done of all (sizes before): large tables
// take longest, so this is a fair estimate. The largest tables get a line of their own; between
// the others the meter's throttle decides.
nlohmann::json vacuum_tables(Context &ctx, Db &db, const VacuumTables &tables, const std::string &verb)
{
    const Rows &r = tables.r;
    const size_t n = tables.n;
    nlohmann::json done = nlohmann::json::array();
    Meter meter("db vacuum", "bytes", tables.total, true);
    ProgressMonitor monitor(ctx);
    const int pid = db.backend_pid();
    unsigned long long bytes_done = 0;
    for (size_t i = 0; i < n; i++) {
        std::string name = r.str(i, "name");
        unsigned long long before = std::strtoull(r.str(i, "size").c_str(), nullptr, 10);
        std::string note = "table " + std::to_string(i + 1) + " of " + std::to_string(n) + ": " + verb + " " + name +
                           " (" + human_bytes(before) + ")";
        if (i == 0 || before >= tables.total / 20)
            meter.show(bytes_done, note);
        else
            meter.update(bytes_done, note);
        done.push_back(vacuum_table(db, verb, name, before, note, meter, bytes_done, monitor, pid));
        bytes_done += before;
    }
    meter.finish();
    return done;
}

int run_db_vacuum(const VacuumOpts &o, Context &ctx)
{
    Settings &s = ctx.settings();
    Db *db = &ctx.db();
    nlohmann::json &res = out().result();
    res["database"] = s.conn.dbname;
    res["full"] = o.full;
    res["dry_run"] = o.dry_run;
    VacuumTables tables = list_tables(*db);
    const Rows &r = tables.r;
    const size_t n = tables.n;
    const unsigned long long total = tables.total, largest = tables.largest;
    res["tables"] = n;
    res["size_before"] = total;
    out().say(std::to_string(n) + " table(s) in " + s.conn.dbname + ", " + human_bytes(total) + " with indexes; largest " +
              (n ? r.str(0, "name") + " (" + human_bytes(largest) + ")" : std::string("none")));

    if (o.full && check_full_vacuum(o, *db, s, tables, res) != EXIT_OK)
        return EXIT_PROBLEM;

    std::string verb = vacuum_verb(o);
    if (o.dry_run) {
        for (size_t i = 0; i < n; i++)
            out().say("would run: " + verb + " " + r.str(i, "name") + "  -- " +
                      human_bytes(std::strtoull(r.str(i, "size").c_str(), nullptr, 10)));
        return EXIT_OK;
    }

    std::vector<std::string> skipped;
    db->on_notice([&](const Notice &nt) {
        if (nt.severity == "WARNING")
            skipped.push_back(nt.message);
        out().detail(nt.severity + ": " + nt.message);
    });
    auto t0 = std::chrono::steady_clock::now();
    nlohmann::json done = vacuum_tables(ctx, *db, tables, verb);
    unsigned long long after_total = 0;
    for (const auto &d : done)
        after_total += d["size_after"].get<unsigned long long>();
    res["done"] = done;
    res["size_after"] = after_total;
    res["skipped"] = skipped;
    for (const auto &w : skipped)
        out().warn(w);
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out().say(verb + " of " + std::to_string(n) + " table(s) done in " + std::to_string((long)el) + " s: " +
              human_bytes(total) + " → " + human_bytes(after_total));
    return skipped.empty() ? EXIT_OK : EXIT_PROBLEM;
}

} // namespace

CommandRun setup_db_vacuum(CLI::App &sub)
{
    return command_setup<VacuumOpts, add_db_vacuum_options, run_db_vacuum>(sub);
}

} // namespace ou
