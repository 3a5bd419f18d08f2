// See site_sql.hpp.
#include "site_sql.hpp"

#include "checksum.hpp"
#include "extension_sql.hpp"
#include "history.hpp"
#include "common.hpp"
#include "fsutil.hpp"
#include "installation.hpp"
#include "process.hpp"
#include "records.hpp"
#include "schema_verify.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <regex>

namespace ou {

namespace {

const char *const k_kind = "omero-upgrade-site-sql";

// The table of the installed extension (a member of it, not a look-alike someone created).
std::string current_db(Db &db)
{
    return db.scalar("SELECT pg_catalog.current_database()::pg_catalog.text").value_or("");
}


// Before the site's file, in its transaction: the search_path is OMERO's schema (as the psql
// session of the official scripts has it), then pg_catalog, then pg_temp, whatever the caller's
// PGOPTIONS or role settings say; the transaction id, to notice a file that ends it.
const char *const k_pre =
    "SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident(:'ou_schema') OPERATOR(pg_catalog.||) "
    "', pg_catalog, pg_temp'::pg_catalog.text, true) AS ou_search_path \\gset\n"
    "SELECT pg_catalog.pg_current_xact_id()::pg_catalog.text AS ou_xid \\gset\n";

// After it, still in its transaction: refuse a file that committed or rolled back on its own
// (its changes would not be one transaction with its record), then the record.
const char *const k_post =
    "SELECT (pg_catalog.pg_current_xact_id()::pg_catalog.text OPERATOR(pg_catalog.=) :'ou_xid') AS ou_same_tx \\gset\n"
    "\\if :ou_same_tx\n"
    "\\else\n"
    "SELECT 'omero-upgrade: the site SQL file ended its own transaction (COMMIT, ROLLBACK or END in it)'::pg_catalog.int4;\n"
    "\\endif\n"
    "\\if :ou_record\n"
    "INSERT INTO omero_upgrade.site_sql (file_name, sha256, os_user, host, db_version) "
    "VALUES (:'ou_name', :'ou_sha256', :'ou_os_user', :'ou_host', :'ou_version');\n"
    "INSERT INTO omero_upgrade.history (os_user, host, kind, what, to_version, checksums, details) "
    "VALUES (:'ou_os_user', :'ou_host', 'site-sql'::pg_catalog.text, :'ou_name', :'ou_version', "
    "pg_catalog.jsonb_build_object(:'ou_path'::pg_catalog.text, :'ou_sha256'::pg_catalog.text), "
    "pg_catalog.jsonb_build_object('dir'::pg_catalog.text, :'ou_dir'::pg_catalog.text));\n"
    "\\endif\n";

} // namespace

size_t SitePlan::pending() const
{
    return std::count_if(files.begin(), files.end(), [](const SiteFile &f) { return f.status == "pending"; });
}

size_t SitePlan::changed() const
{
    return std::count_if(files.begin(), files.end(), [](const SiteFile &f) { return f.status == "changed"; });
}

size_t SitePlan::refused() const
{
    return std::count_if(files.begin(), files.end(), [](const SiteFile &f) { return f.status == "refused"; });
}

std::string find_psql_include(const std::string &content)
{
    // A meta-command starts a line (after blanks) with a backslash; the include commands are
    // \i, \ir, \include, \include_relative, followed by blanks or the end of the line.
    static const std::regex re(R"(^[ \t]*\\(i|ir|include|include_relative)([ \t]|$))");
    size_t start = 0, n = 1;
    while (start <= content.size()) {
        size_t end = content.find('\n', start);
        std::string line = content.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (std::regex_search(line, re))
            return "line " + std::to_string(n) + ": " + line;
        if (end == std::string::npos)
            break;
        start = end + 1;
        n++;
    }
    return "";
}

nlohmann::json SitePlan::to_json() const
{
    nlohmann::json fs = nlohmann::json::array();
    for (const auto &f : files) {
        nlohmann::json j = {{"name", f.name}, {"sha256", f.sha256}, {"status", f.status}};
        if (!f.problem.empty())
            j["problem"] = f.problem;
        if (!f.record.is_null())
            j["record"] = f.record;
        fs.push_back(j);
    }
    return {{"dir", dir},         {"store", store}, {"store_file", store_file}, {"files", fs},
            {"pending", pending()}, {"changed", changed()}, {"refused", refused()}, {"recorded_missing", recorded_missing}};
}

SitePlan plan_site_sql(const Settings &s, Db &db, const std::string &dir_in)
{
    SitePlan p;
    p.dir = lexical_absolute(dir_in);
    if (!is_directory(p.dir))
        throw CommandError("--site-sql " + dir_in + " is not a directory", "give the directory holding the site's *.sql files");
    auto names = dir_entries(p.dir);
    if (!names)
        throw CommandError("cannot read the directory " + p.dir + ": " + std::strerror(errno));
    std::sort(names->begin(), names->end());
    for (const auto &n : *names) {
        if (n.size() <= 4 || n.compare(n.size() - 4, 4, ".sql") != 0 || n[0] == '.')
            continue;
        struct stat st;
        std::string path = p.dir + "/" + n;
        if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        SiteFile f;
        f.name = n;
        f.path = path;
        if (!read_file(path, f.content))
            throw CommandError("cannot read the site SQL file " + path + ": " + std::strerror(errno));
        f.sha256 = sha256_string(f.content);
        p.files.push_back(std::move(f));
    }

    // The records: the extension's table, and the private file (always read: it may hold what
    // was applied before the extension was installed).
    std::map<std::string, nlohmann::json> rec;
    p.store = ext::has_state_table(db, "site_sql") ? "extension" : "file";
    p.store_file = dir_name(given_server_dir(s.options)) + "/.omero-upgrade-site-sql.json";
    std::string dbname = current_db(db);
    nlohmann::json fj = read_private_json(p.store_file, k_kind);
    if (fj.is_object() && fj.contains("databases") && fj["databases"].contains(dbname))
        for (const auto &r : fj["databases"][dbname]) {
            nlohmann::json j = r;
            j["store"] = "file";
            rec[r.value("name", "")] = j;
        }
    if (p.store == "extension") {
        Rows r = ext::site_sql_records(db);
        for (size_t i = 0; i < r.rows.size(); i++) {
            nlohmann::json j = {{"store", "extension"}};
            for (const char *c : {"name", "sha256", "applied_at", "db_role", "os_user", "host", "db_version"})
                j[c] = r.get(i, c) ? nlohmann::json(*r.get(i, c)) : nlohmann::json();
            rec[r.str(i, "name")] = j;
        }
    }
    for (auto &f : p.files) {
        auto it = rec.find(f.name);
        if (it == rec.end()) {
            std::string inc = find_psql_include(f.content);
            if (inc.empty())
                f.status = "pending";
            else {
                f.status = "refused";
                f.problem = "it includes another file (" + inc + "), which would run without being part of its SHA-256";
            }
            continue;
        }
        f.record = it->second;
        f.status = it->second.value("sha256", "") == f.sha256 ? "applied" : "changed";
        rec.erase(it);
    }
    for (const auto &[n, r] : rec)
        p.recorded_missing.push_back(n);
    return p;
}

bool show_site_plan(const SitePlan &p, bool dry_run)
{
    out().say("site SQL from " + p.dir + ": " + std::to_string(p.files.size()) + " file(s), " +
              std::to_string(p.pending()) + " to apply; records in " +
              (p.store == "extension" ? std::string("omero_upgrade.site_sql") : p.store_file));
    for (const auto &f : p.files) {
        if (f.status == "pending")
            out().say(std::string("  ") + (dry_run ? "would apply " : "to apply    ") + f.name + " (sha256 " + f.sha256 + ")");
        else if (f.status == "applied")
            out().say("  already applied " + f.name + " (sha256 " + f.sha256 + ", " + f.record.value("applied_at", "") +
                      "): skipped");
        else if (f.status == "refused")
            out().error("site SQL " + f.name + " is refused: " + f.problem +
                        "; put the included SQL into the site file itself (psql's \\i, \\ir, \\include are not allowed)");
        else
            out().error("site SQL " + f.name + " was applied with sha256 " + f.record.value("sha256", "") + " (" +
                        f.record.value("applied_at", "") + ") but now has sha256 " + f.sha256 +
                        ": an applied file must not change; put the applied content back, or add a new file for the change");
    }
    for (const auto &n : p.recorded_missing)
        out().warn("site SQL " + n + " is recorded as applied but is no longer in " + p.dir);
    return p.blocking() == 0;
}

nlohmann::json apply_site_sql(const Settings &s, Db &db, SitePlan &p, const std::string &db_version,
                              const std::string &scripts_dir)
{
    nlohmann::json applied = nlohmann::json::array();
    if (p.pending() == 0)
        return applied;
    if (find_program("psql").empty())
        throw CommandError("psql is not on PATH", "install the PostgreSQL client (e.g. apt install postgresql-client)");
    std::string schema = omero_schema(db);  // the connection's own search_path then is pg_catalog, pg_temp
    bool in_ext = ext::has_state_table(db, "site_sql");
    std::string dbname = current_db(db);
    std::string os_user = os_user_name(), host = host_name();
    std::string appname = "omero-upgrade-site-" + std::to_string(getpid());
    PrivateTempDir tmp("omero-upgrade-site");  // files 0600 for psql
    std::string pre = tmp.write("omero-upgrade-pre.sql", k_pre), post = tmp.write("omero-upgrade-post.sql", k_post);
    for (auto &f : p.files) {
        if (f.status != "pending")
            continue;
        // The exact bytes hashed, from a private copy (the file in DIR may change meanwhile).
        std::string copy = tmp.write(f.name, f.content);
        ConnParams cp = omero_user_conn(s);
        PgClient c = pg_client(cp, appname);
        ProcOptions po;
        po.env = c.env;
        po.cwd = tmp.path();  // not DIR: nothing there is reachable by a relative name (includes are refused anyway)
        po.log_stdout = true;
        std::vector<std::string> argv = {"psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1",
                                         "-v", "ou_schema=" + schema, "-v", "ou_name=" + f.name,
                                         "-v", "ou_sha256=" + f.sha256, "-v", "ou_os_user=" + os_user,
                                         "-v", "ou_host=" + host, "-v", "ou_version=" + db_version,
                                         "-v", std::string("ou_record=") + (in_ext ? "on" : "off"),
                                         "-v", "ou_path=" + f.path, "-v", "ou_dir=" + p.dir,
                                         "-d", c.conninfo, "-f", pre, "-f", copy, "-f", post};
        out().say("site SQL " + f.name + ": applying (sha256 " + f.sha256 + ")");
        auto t0 = std::chrono::steady_clock::now();
        ProcResult r;
        try {
            r = run_process(argv, po);
        } catch (const CommandError &e) {
            if (interrupted()) {
                try {
                    db.query("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                             "WHERE application_name OPERATOR(pg_catalog.=) $1",
                             {appname});
                } catch (const CommandError &) {
                }
                throw CommandError("interrupted (Ctrl-C) while applying the site SQL file " + f.name +
                                       ": its transaction was rolled back, nothing of it is recorded",
                                   "run the same command again to go on");
            }
            throw;
        }
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!r.ok()) {
            out().result()["site_sql"] = p.to_json();
            out().result()["site_sql"]["applied"] = applied;
            out().result()["site_sql"]["failed"] = f.name;
            throw CommandError("the site SQL file " + f.path + " failed (" + r.describe() + "):\n" + r.err_tail(4) +
                                   "\nits transaction was rolled back and nothing of it is recorded" +
                                   (applied.empty() ? "" : "; the " + std::to_string(applied.size()) +
                                                               " file(s) before it are applied and recorded"),
                               "fix the file, then run the same command again: it applies " + f.name + " and what follows",
                               EXIT_PROBLEM);  // as a failing hop
        }
        nlohmann::json rec = {{"name", f.name},         {"sha256", f.sha256},   {"applied_at", utc_timestamp("%Y-%m-%dT%H:%M:%SZ")},
                              {"os_user", os_user},     {"host", host},         {"db_role", cp.user},
                              {"db_version", db_version}, {"seconds", secs}};
        if (in_ext) {
            Value got = ext::site_sql_sha256(db, f.name);
            if (!got || *got != f.sha256)
                throw CommandError("the site SQL file " + f.name + " ran, but its record in omero_upgrade.site_sql is " +
                                   (got ? "of another content (" + *got + ")" : "missing") +
                                   ": did the file change the table or end its transaction?");
        } else {
            update_private_json(p.store_file, k_kind, [&](nlohmann::json &j) {
                j["databases"][dbname].push_back(rec);
                return true;
            });
            record_history(s, &db, {"site-sql", f.name, std::nullopt, db_version, {{f.path, f.sha256}}, {{"dir", p.dir}}});
        }
        f.status = "applied now";
        f.record = rec;
        applied.push_back(rec);
        char took[32];
        std::snprintf(took, sizeof took, "%.1f", secs);
        out().say("site SQL " + f.name + ": applied in " + took + " s, recorded " + (in_ext ? "in omero_upgrade.site_sql" : "in " + p.store_file));
    }
    return applied;
}

} // namespace ou
