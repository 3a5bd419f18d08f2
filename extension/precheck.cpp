// omero_precheck() and omero_precheck_report(): every check the official precheck scripts make
// for each hop of the upgrade path, plus the half-applied-upgrade and running-server checks; all
// problems are collected, none stops the others. Read-only: works in a READ ONLY transaction.
#include "omero.hpp"
#include "srf.hpp"
#include "sv5_trace.hpp"

extern "C" {
#include "catalog/pg_type.h"
}

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <functional>
#include <set>
#include <sstream>

namespace ou {
namespace {

struct Check {
    std::string name, status, detail;  // status: ok | warning | failed
};

bool column_exists(spi::Session &spi, const char *table, const char *column, const char *type = nullptr)
{
    auto v = spi.scalar("SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute"
                        " WHERE attrelid = pg_catalog.to_regclass($1) AND attname = $2::pg_catalog.name"
                        "   AND NOT attisdropped AND ($3::pg_catalog.text IS NULL OR atttypid = $3::pg_catalog.regtype)",
                        {spi::text(omero_name(spi, table)), spi::text(column),
                         type ? spi::text(type) : spi::null(TEXTOID)},
                        true);
    return v && *v != "0";
}

bool is_float(const std::string &s)
{
    // As PostgreSQL's float8 input: strtod, surrounding blanks allowed, nothing else.
    const char *begin = s.c_str();
    while (*begin == ' ' || *begin == '\t' || *begin == '\n')
        begin++;
    if (!*begin)
        return false;
    char *end;
    errno = 0;
    std::strtod(begin, &end);
    if (end == begin)
        return false;
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    return *end == '\0';
}

std::vector<std::string> split_spaces(const std::string &s)
{
    // string_to_array(s, ' '): every single space separates, so doubled spaces give empty parts.
    std::vector<std::string> parts;
    std::string cur;
    for (char c : s) {
        if (c == ' ') {
            parts.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    parts.push_back(cur);
    return parts;
}

bool starts(const std::string &s, const char *p) { return s.rfind(p, 0) == 0; }
bool ends(const std::string &s, const char *p)
{
    size_t n = strlen(p);
    return s.size() >= n && s.compare(s.size() - n, n, p) == 0;
}

// Why an OMERO 5.2 shape.transform text cannot be converted by the 5.3 upgrade; "" when it can.
std::string transform_problem(std::string t)
{
    if (t.empty() || t == "none")
        return "";
    if (starts(t, "[ ") && ends(t, " ]") && t.size() >= 4)
        t = "matrix(" + t.substr(2, t.size() - 4) + ")";
    else if (starts(t, "[") && ends(t, "]") && t.size() >= 2)
        t = "matrix(" + t.substr(1, t.size() - 2) + ")";
    struct Form {
        const char *prefix;
        std::set<size_t> counts;
        const char *need;
    };
    static const Form forms[] = {
        {"matrix(", {6}, "six numbers"},          {"translate(", {1, 2}, "one or two numbers"},
        {"scale(", {1, 2}, "one or two numbers"}, {"rotate(", {1, 3}, "one or three numbers"},
        {"skewX(", {1}, "one number"},            {"skewY(", {1}, "one number"},
    };
    for (const Form &f : forms) {
        if (starts(t, f.prefix) && ends(t, ")")) {
            size_t plen = strlen(f.prefix);
            auto nums = split_spaces(t.substr(plen, t.size() - plen - 1));
            if (!f.counts.count(nums.size()))
                return std::string("must have ") + f.need + " in shape.transform value: " + t;
            for (const auto &n : nums)
                if (!is_float(n))
                    return "invalid number \"" + n + "\" in shape.transform value: " + t;
            return "";
        }
    }
    return "cannot parse shape.transform value: " + t;
}

std::string join_ids(const std::vector<int64_t> &ids, size_t max = 20)
{
    std::string s = "{";
    for (size_t i = 0; i < ids.size() && i < max; i++)
        s += (i ? "," : "") + std::to_string(ids[i]);
    if (ids.size() > max)
        s += ",…";
    return s + "}";
}

// The checks made so far; on_check (if given) sees each as soon as it is made, so a long scan
// shows progress.
class Checks {
public:
    explicit Checks(std::function<void(const Check &)> on_check) : on_check_(std::move(on_check)) {}
    void add(const char *name, const char *status, std::string detail)
    {
        list.push_back(Check{name, status, std::move(detail)});
        if (on_check_)
            on_check_(list.back());
    }
    std::vector<Check> list;

private:
    std::function<void(const Check &)> on_check_;
};

// 1. the version, and a chain of scripts to the target (nullopt: none)
std::optional<std::vector<Hop>> check_version(Checks &c, const DbState &db, const std::string &target)
{
    std::optional<std::vector<Hop>> path;
    if (db.version == target && !db.finished) {
        // Never "already at" on a row an upgrade script left unfinished: the script stopped half-way.
        c.add("version", "failed",
              "half-upgraded (unfinished): the newest dbpatch row claims " + target +
                  " but has no finished time; restore the backup taken before that upgrade, then upgrade again");
        path = std::vector<Hop>{};
    } else if (db.version == target) {
        c.add("version", "ok", "already at version " + target + ": no upgrade needed");
        path = std::vector<Hop>{};
    } else if (!is_known_version(db.version)) {
        c.add("version", "failed",
              "wrong OMERO database version for this upgrade: " + db.version + " is not a version this extension knows");
    } else if (!(path = upgrade_path(db.version, target))) {
        c.add("version", "failed", "wrong OMERO database version for this upgrade: no upgrade path from " +
                                       db.version + " to " + target);
    } else {
        std::string hops;
        for (const Hop &h : *path)
            hops += (hops.empty() ? "" : ", ") + h.script();
        c.add("version", "ok", db.version + " → " + target + " in " + std::to_string(path->size()) + " hop(s): " + hops);
    }
    return path;
}

// 2. a half-applied upgrade: the newest dbpatch row never got its finished time
void check_finished(Checks &c, const DbState &db)
{
    if (db.finished)
        c.add("dbpatch_finished", "ok", "the newest dbpatch row (" + db.version + ") is finished");
    else
        c.add("dbpatch_finished", "failed",
              "the newest dbpatch row (id " + std::to_string(db.id) + ", " + db.previous_version + " → " + db.version +
                  ", message '" + db.message +
                  "') has no finished time: an upgrade died half-way; restore the backup taken before it");
}

std::string setting(spi::Session &spi, const char *name)
{
    return spi.scalar("SELECT pg_catalog.current_setting($1, true)", {spi::text(name)}, true).value_or("");
}

// 3. PostgreSQL prerequisite of every hop. omero_upgrade.pretend_server_version_num can only
//    lower the version seen (to test the failure), never raise it.
void check_pg_version(Checks &c, spi::Session &spi, const std::optional<std::vector<Hop>> &path)
{
    const int real = std::stoi(setting(spi, "server_version_num"));
    int server = real;
    int pretend = std::atoi(setting(spi, "omero_upgrade.pretend_server_version_num").c_str());
    if (pretend > 0 && pretend < server)
        server = pretend;
    int prereq = 0;
    if (path)
        for (const Hop &h : *path)
            prereq = std::max(prereq, h.pg_prerequisite);
    std::string shown = server != real ? pretty_pg_version(server) + " (pretended)" : setting(spi, "server_version");
    if (prereq == 0)
        c.add("postgresql_version", "ok", "PostgreSQL " + shown);
    else if (server < prereq)
        c.add("postgresql_version", "failed",
              "PostgreSQL database server version " + pretty_pg_version(server) + " is less than OMERO prerequisite " +
                  pretty_pg_version(prereq));
    else
        c.add("postgresql_version", "ok", "PostgreSQL " + shown + " ≥ prerequisite " + pretty_pg_version(prereq));
}

// 4. encoding
void check_encoding(Checks &c, spi::Session &spi)
{
    std::string enc = spi.scalar("SELECT pg_catalog.pg_encoding_to_char(encoding) FROM pg_catalog.pg_database"
                                 " WHERE datname = pg_catalog.current_database()",
                                 {}, true)
                          .value_or("?");
    if (enc == "UTF8")
        c.add("encoding", "ok", "UTF8");
    else
        c.add("encoding", "failed", "OMERO database character encoding must be UTF8, not " + enc +
                                        " (omero-upgrade db to-utf8 makes a UTF8 copy)");
}

// 5a. OMERO5.2__0 → 5.3: no data in roi.keywords or roi.namespaces (the upgrade drops them)
void check_roi_keywords(Checks &c, spi::Session &spi)
{
    if (!column_exists(spi, "roi", "keywords") || !column_exists(spi, "roi", "namespaces")) {
        c.add("roi_keywords_namespaces", "ok", "roi has no keywords/namespaces columns");
        return;
    }
    auto r = spi.query("SELECT id FROM " + omero_name(spi, "roi") +
                           " WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(keywords) k WHERE k::pg_catalog.text <> '')"
                           "    OR EXISTS (SELECT 1 FROM pg_catalog.unnest(namespaces) n WHERE n::pg_catalog.text <> '')"
                           " ORDER BY id",
                       {}, true);
    if (r.empty()) {
        c.add("roi_keywords_namespaces", "ok", "no data in roi.keywords or roi.namespaces");
        return;
    }
    std::vector<int64_t> ids;
    for (size_t i = 0; i < r.rows.size(); i++)
        ids.push_back(r.int64(i, "id"));
    c.add("roi_keywords_namespaces", "failed",
          "data in roi.keywords or roi.namespaces, which the upgrade drops: roi ids " + join_ids(ids));
}

// 5b. OMERO5.2__0 → 5.3: every shape.transform text can be converted
void check_shape_transform(Checks &c, spi::Session &spi)
{
    if (!column_exists(spi, "shape", "transform", "text") && !column_exists(spi, "shape", "transform", "varchar")) {
        c.add("shape_transform", "ok", "shape.transform is not a text column");
        return;
    }
    auto r = spi.query("SELECT DISTINCT transform::pg_catalog.text AS t FROM " + omero_name(spi, "shape") +
                           " WHERE transform IS NOT NULL ORDER BY 1",
                       {}, true);
    std::vector<std::string> bad;
    for (size_t i = 0; i < r.rows.size(); i++) {
        std::string p = transform_problem(r.str(i, "t"));
        if (!p.empty())
            bad.push_back(p);
    }
    if (bad.empty()) {
        c.add("shape_transform", "ok", std::to_string(r.rows.size()) + " distinct transforms, all convertible");
        return;
    }
    std::string d = std::to_string(bad.size()) + " shape.transform value(s) cannot be converted: " + bad[0];
    for (size_t i = 1; i < bad.size() && i < 5; i++)
        d += "; " + bad[i];
    c.add("shape_transform", "failed", d);
}

// 6. 2017-SV5-filename-2, for paths that start before OMERO5.3__1 (fixed in 5.3.4)
bool sv5_check_needed(const DbState &db, const std::optional<std::vector<Hop>> &path)
{
    if (!path || path->empty())
        return false;
    return is_known_version(db.version) && compare_versions(db.version, "OMERO5.3__1") < 0;
}

void check_sv5(Checks &c, spi::Session &spi)
{
    auto groups = find_sv5_traces(spi);
    if (groups.empty()) {
        c.add("sv5_filename_trace", "ok", "no trace of 2017-SV5-filename-2 in originalfile");
        return;
    }
    std::string d =
        std::to_string(groups.size()) + " group(s) of duplicate original file paths (trace of 2017-SV5-filename-2): ";
    for (size_t i = 0; i < groups.size() && i < 10; i++)
        d += (i ? "; " : "") + std::string("duplicate original file paths with IDs ") + join_ids(groups[i].ids);
    if (groups.size() > 10)
        d += "; … (SELECT * FROM omero_filename_trace_2017_sv5() lists all)";
    c.add("sv5_filename_trace", "failed", d);
}

// 7. other sessions on this database: a running OMERO server (warning: precheck may run with it up)
void check_other_sessions(Checks &c, spi::Session &spi)
{
    OtherSessions others = other_sessions(spi);
    if (others.count == 0)
        c.add("other_sessions", "ok", "no other session is connected to this database");
    else
        c.add("other_sessions", "warning",
              std::to_string(others.count) + " other session(s) connected (" + others.who +
                  "): if the OMERO server is running, stop it before the upgrade itself");
}

std::vector<Check> run_checks(spi::Session &spi, const std::string &target,
                              std::function<void(const Check &)> on_check = {})
{
    Checks c(std::move(on_check));
    DbState db = read_db_state(spi);
    if (!db.has_dbpatch || !db.has_rows) {
        c.add("omero_database", "failed", "not an OMERO database: " + db.why_not_omero());
        return c.list;
    }
    c.add("omero_database", "ok", "dbpatch found, newest row id " + std::to_string(db.id));
    const auto path = check_version(c, db, target);
    check_finished(c, db);
    check_pg_version(c, spi, path);
    check_encoding(c, spi);
    bool from_52 = false;
    if (path)
        for (const Hop &h : *path)
            from_52 = from_52 || (h.from == "OMERO5.2__0" && starts(h.to, "OMERO5.3__"));
    if (from_52) {
        check_roi_keywords(c, spi);
        check_shape_transform(c, spi);
    }
    if (sv5_check_needed(db, path))
        check_sv5(c, spi);
    check_other_sessions(c, spi);
    return c.list;
}

} // namespace
} // namespace ou

using namespace ou;

OU_FUNCTION(omero_precheck_report)
{
    return boundary([&] {
        std::string target = resolve_target(fcinfo, 0);
        std::vector<Check> checks;
        {
            spi::Session spi;
            checks = run_checks(spi, target);
        }
        srf::Writer out(fcinfo);
        for (const Check &c : checks)
            out.put({srf::Cell::of(c.name), srf::Cell::of(c.status), srf::Cell::of(c.detail)});
        return out.done();
    });
}

OU_FUNCTION(omero_precheck)
{
    return boundary([&] {
        std::string target = resolve_target(fcinfo, 0);
        std::vector<Check> checks;
        {
            spi::Session spi;
            checks = run_checks(spi, target, [](const Check &c) {
                notice("check " + c.name + ": " + c.status + ": " + c.detail);
            });
        }
        std::string problems;
        int failed = 0;
        bool at_target = false, half = false;
        for (const Check &c : checks) {
            if (c.status == "failed") {
                failed++;
                problems += "\n- " + c.name + ": " + c.detail;
            }
            if (c.name == "version" && c.status == "ok" && c.detail.rfind("already at", 0) == 0)
                at_target = true;
            if (c.name == "version" && c.detail.rfind("half-upgraded", 0) == 0)
                half = true;
        }
        if (failed)
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        (half        ? "YOUR DATABASE IS HALF-UPGRADED (UNFINISHED) TO VERSION " + target + ": "
                         : at_target ? "YOUR DATABASE IS ALREADY AT VERSION " + target + ", BUT IT HAS "
                                     : "DATABASE IS NOT READY FOR UPGRADE TO VERSION " + target + ": ") +
                            std::to_string(failed) + " problem(s)",
                        "Problems:" + problems, "Fix each problem, then run omero_precheck() again.");
        std::string verdict = at_target ? "YOUR DATABASE IS ALREADY AT VERSION " + target
                                        : "YOUR DATABASE IS READY FOR UPGRADE TO VERSION " + target;
        return srf::text_result(verdict);
    });
}
