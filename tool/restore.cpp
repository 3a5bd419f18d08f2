// A verified backup into a new database (the library of `restore`, `db to-utf8` and `rollback`).
//
// Order: checksum and contents first (a damaged dump stops everything before a database is
// created), then the new database (UTF8, template0, owned by the OMERO user; names are quoted by
// the server with format('%I')), then pg_restore with --exit-on-error, then the restored dbpatch
// version is compared with the manifest's, and only then, with --switch, config.xml is pointed at
// the new database. The source database and the dump are never changed.
#include "restore.hpp"
#include "fsutil.hpp"
#include "process.hpp"
#include "progress.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace ou {

namespace {

std::unique_ptr<Db> connect_maintenance(const Settings &s)
{
    try {
        return connect_db(s, "postgres");
    } catch (const CommandError &first) {
        try {
            return connect_db(s, "template1");
        } catch (const CommandError &) {
            throw first;
        }
    }
}

// Writes the filtered table of contents for pg_restore -L: the omero_upgrade entries commented out.
std::string write_filtered_list(const VerifyResult &v, const std::string &dir, int &left_out)
{
    std::string text;
    left_out = 0;
    for (const auto &e : v.toc) {
        if (is_extension_toc_line(e.rest)) {
            text += ";" + e.line + "\n";
            left_out++;
        } else {
            text += e.line + "\n";
        }
    }
    std::string path = dir + "/toc.list";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text.data(), text.size()) != (ssize_t)text.size()) {
        if (fd >= 0)
            close(fd);
        throw CommandError("cannot write " + path + ": " + std::strerror(errno));
    }
    close(fd);
    return path;
}

// A private temporary directory, removed with what it holds.
struct TempDir {
    std::string path;
    TempDir()
    {
        const char *tmp = std::getenv("TMPDIR");
        std::string t = std::string(tmp && *tmp ? tmp : "/tmp") + "/omero-upgrade.XXXXXX";
        std::vector<char> b(t.begin(), t.end());
        b.push_back('\0');
        if (!mkdtemp(b.data()))
            throw CommandError(std::string("cannot create a temporary directory: ") + std::strerror(errno));
        path = b.data();
    }
    ~TempDir() { remove_tree(path); }
};

} // namespace

void check_db_name(const std::string &name)
{
    if (name.empty())
        throw CommandError("the new database name is empty");
    if (name.size() > 63)
        throw CommandError("the database name '" + name + "' is longer than 63 bytes: PostgreSQL would shorten it",
                           "choose a shorter name");
}

bool check_restore_target(const Settings &s, const std::string &name)
{
    check_db_name(name);
    auto maint = connect_maintenance(s);
    if (maint->query("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", {name}).empty())
        return false;
    auto target = connect_db(s, name);
    Rows r = target->query(
        "SELECT (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "        WHERE n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema']) "
        "          AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%') AS relations, "
        "       pg_catalog.pg_encoding_to_char(d.encoding) AS encoding "
        "FROM pg_catalog.pg_database d WHERE d.datname = current_database()");
    if (r.str(0, "relations") != "0")
        throw CommandError("database '" + name + "' already exists and is not empty (" + r.str(0, "relations") +
                               " relations): refusing to restore into it",
                           "choose a new name with --into, or drop that database yourself if it is really unused");
    if (r.str(0, "encoding") != "UTF8")
        throw CommandError("database '" + name + "' already exists with encoding " + r.str(0, "encoding") +
                               ", not UTF8: OMERO needs UTF8",
                           "drop it, or choose a new name with --into (the tool then creates it UTF8)");
    return true;
}

RestoreResult restore_into(const Settings &s, const VerifyResult &v, const RestoreOptions &o)
{
    std::string owner = o.owner.empty() ? s.omero_db_user : o.owner;
    bool existed = check_restore_target(s, o.into);
    auto maint = connect_maintenance(s);
    bool created = false;
    if (!existed) {
        if (maint->query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", {owner}).empty())
            throw CommandError("the database owner role '" + owner + "' does not exist on this server",
                               "create it first, or give the owner with --owner ROLE");
        // The server quotes the names: no SQL text is built from user input here.
        std::string sql = maint->scalar("SELECT format('CREATE DATABASE %I WITH ENCODING ''UTF8'' TEMPLATE template0 "
                                        "OWNER %I', $1::text, $2::text)",
                                        {o.into, owner})
                              .value_or("");
        try {
            maint->query(sql);
        } catch (const DbError &e) {
            throw CommandError(std::string("could not create database '") + o.into + "': " + e.what(),
                               "connect as a role that may create databases and is a member of '" + owner +
                                   "' (e.g. --db-user postgres), or create it yourself: createdb -E UTF8 -T template0 -O " +
                                   shell_quote(owner) + " " + shell_quote(o.into));
        }
        created = true;
        out().say("created database '" + o.into + "' (UTF8, owner " + owner + ")");
    } else {
        out().say("restoring into the existing empty UTF8 database '" + o.into + "'");
    }
    auto drop_created = [&] {
        if (!created) {
            out().warn("the database '" + o.into + "' existed before this run and is left as the failed restore left it");
            return;
        }
        try {
            std::string drop = maint->scalar("SELECT format('DROP DATABASE %I', $1::text)", {o.into}).value_or("");
            maint->query(drop);
            out().say("dropped the database '" + o.into + "' created by this run (the restore failed)");
        } catch (const std::exception &e) {
            out().warn("could not drop the half-restored database '" + o.into + "': " + e.what());
        }
    };

    try {
        TempDir tmp;
        bool leave_out_ext = false;
        int left_out = 0;
        if (v.has_extension_entries) {
            bool available =
                !maint->query("SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'omero_upgrade'").empty();
            leave_out_ext = o.skip_extension || !available;
            if (leave_out_ext)
                out().warn(std::string(available ? "--skip-extension" : "this server has no omero_upgrade extension") +
                           ": the extension and its state (journals, archives) are left out of the restore");
        }
        ConnParams target = conn_for(s, o.into);
        PgClient pc = pg_client(target);
        std::vector<std::string> argv = {"pg_restore", "--exit-on-error", "--no-password", "--verbose",
                                         "--dbname=" + pc.conninfo};
        if (o.jobs > 0)
            argv.push_back("--jobs=" + std::to_string(o.jobs));
        if (leave_out_ext)
            argv.push_back("--use-list=" + write_filtered_list(v, tmp.path, left_out));
        argv.push_back(v.path);

        size_t total = 0, done = 0;
        for (const auto &e : v.toc)
            if (e.rest.rfind("TABLE DATA ", 0) == 0)
                total++;
        // Tables' data done: with --jobs the "finished item … TABLE DATA" lines; alone, pg_restore
        // names a table as it begins it, so the ones before the last are done. An estimate: tables
        // differ in size.
        Meter meter("pg_restore", "tables", total, true);
        size_t begun = 0;
        ProcOptions po;
        po.env = pc.env;
        po.on_stderr_line = [&](const std::string &l) {
            if (o.jobs > 0 && l.find("finished item") != std::string::npos && l.find("TABLE DATA") != std::string::npos)
                done++;
            else if (o.jobs == 0 && l.find("processing data for table") != std::string::npos)
                done = begun++;
            else
                return;
            meter.update(done, "");
        };
        po.on_tick = [&] { meter.update(done); };
        out().say("restoring " + v.path + " into '" + o.into + "'" +
                  (o.jobs > 0 ? " with " + std::to_string(o.jobs) + " jobs" : ""));
        ProcResult r = run_process(argv, po);
        if (r.ok())
            meter.finish();
        if (!r.ok()) {
            // Only the error lines: -v output is in the log.
            std::string errors;
            std::istringstream in(r.err);
            std::string l;
            while (std::getline(in, l))
                if (l.find("error:") != std::string::npos || l.find("ERROR") != std::string::npos ||
                    l.find("DETAIL") != std::string::npos)
                    errors += "\n  " + l;
            throw CommandError("pg_restore failed (" + r.describe() + ")" + (errors.empty() ? ": " + r.err_tail(2) : ":" + errors));
        }

        auto db = connect_db(s, o.into);
        OmeroDbState st = read_omero_state(*db);
        RestoreResult res;
        res.version_ok = st.is_omero && st.version == o.expected_version;
        res.info = {{"file", v.path},
                    {"database", o.into},
                    {"created", created},
                    {"owner", owner},
                    {"dbpatch_version", st.version},
                    {"expected_dbpatch_version", o.expected_version},
                    {"encoding", st.encoding},
                    {"extension_left_out", leave_out_ext},
                    {"extension_entries_left_out", left_out},
                    {"size_bytes", st.size_bytes}};
        if (!res.version_ok)
            out().error("the restored database's dbpatch version is " + (st.version.empty() ? "missing" : st.version) +
                        ", expected " + o.expected_version + ": do not use '" + o.into + "'");
        else
            out().say("restored '" + o.into + "': dbpatch " + st.version + ", " + human_bytes(st.size_bytes));
        return res;
    } catch (...) {
        drop_created();
        throw;
    }
}

} // namespace ou
