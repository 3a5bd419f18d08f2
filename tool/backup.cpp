// Verified pg_dump backups (the library of `backup`, `restore`, `db to-utf8` and `run`).
//
// A backup is written under a hidden temporary name (.NAME.partial) in the backup directory,
// verified (pg_restore reads its table of contents, the key OMERO tables and their data are in
// it, the dbpatch data reads back with the version the database had), checksummed, synced and
// only then renamed into place without overwriting anything; then its NAME.sha256 sidecar
// (sha256sum format) and its manifest entry are written. Any failure removes the partial file,
// so a name without ".partial" is always a complete, verified dump.
#include "backup.hpp"
#include "history.hpp"
#include "checksum.hpp"
#include "fsutil.hpp"
#include "installation.hpp"
#include "manifest.hpp"
#include "process.hpp"
#include "progress.hpp"

#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <dirent.h>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace ou {

namespace {

// Tables every OMERO 5 database has; a dump without them (or without their data) is not a usable
// OMERO backup.
const std::vector<std::string> key_tables = {"dbpatch",    "experimenter", "experimentergroup", "event", "image",
                                             "annotation", "originalfile", "roi",               "shape"};

// Removes a partial dump unless released (every failure path leaves nothing behind).
struct PartialGuard {
    std::string path;
    ~PartialGuard()
    {
        if (!path.empty()) {
            remove_tree(path);
            out().log("removed the partial dump " + path);
        }
    }
};

// The dbpatch rows of a dump: pg_restore writes the table's COPY data as text.
std::string dump_dbpatch_version(const std::string &path, std::string &problem)
{
    ProcOptions o;
    o.timeout_s = 600;
    ProcResult r = run_process({"pg_restore", "--data-only", "--schema=public", "--table=dbpatch", "--file=-", path}, o);
    if (!r.ok()) {
        problem = "the dbpatch data cannot be read from the dump (pg_restore " + r.describe() + "): " + r.err_tail(2);
        return "";
    }
    std::istringstream in(r.out);
    std::string line;
    std::vector<std::string> cols;
    bool in_copy = false;
    long long best_id = -1;
    std::string best;
    while (std::getline(in, line)) {
        if (!in_copy) {
            if (line.rfind("COPY public.dbpatch (", 0) == 0) {
                std::string list = line.substr(21, line.find(')') - 21);
                std::istringstream cl(list);
                std::string c;
                while (std::getline(cl, c, ','))
                    cols.push_back(c.substr(c.find_first_not_of(' ')));
                in_copy = true;
            }
            continue;
        }
        if (line == "\\.")
            break;
        std::vector<std::string> f;
        std::istringstream fl(line);
        std::string v;
        while (std::getline(fl, v, '\t'))
            f.push_back(v);
        std::map<std::string, std::string> row;
        for (size_t i = 0; i < cols.size() && i < f.size(); i++)
            row[cols[i]] = f[i];
        long long id = std::atoll(row["id"].c_str());
        if (id > best_id) {
            best_id = id;
            best = row["currentversion"] + "__" + row["currentpatch"];
        }
    }
    if (best_id < 0)
        problem = "the dump holds no dbpatch rows: not a backup of an OMERO database";
    return best;
}

// TOC, key tables, extension entries, dbpatch data: everything but the checksum.
void check_contents(VerifyResult &v)
{
    const std::string src = v.io.empty() ? v.path : v.io;
    try {
        v.toc = read_toc(src, &v.dumped_dbname);
    } catch (const CommandError &e) {
        v.problems.push_back(std::string("pg_restore cannot read the dump's table of contents: ") + e.what());
        return;
    }
    std::set<std::string> rests;
    for (const auto &e : v.toc) {
        rests.insert(e.rest.substr(0, e.rest.rfind(' ')));  // without the owner
        if (is_extension_toc_line(e.rest))
            v.has_extension_entries = true;
    }
    for (const auto &t : key_tables) {
        if (!rests.count("TABLE public " + t))
            v.problems.push_back("table " + t + " is missing from the dump");
        else if (!rests.count("TABLE DATA public " + t))
            v.problems.push_back("the data of table " + t + " is missing from the dump");
    }
    std::string problem;
    v.dbpatch_version = dump_dbpatch_version(src, problem);
    if (!problem.empty())
        v.problems.push_back(problem);
}

} // namespace

std::string file_safe(const std::string &s)
{
    std::string r;
    for (char c : s)
        r += (std::isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-' || c == '+') ? c : '_';
    if (r.empty() || r[0] == '.' || r[0] == '-')
        r = "_" + r;
    return r;
}

bool is_extension_toc_line(const std::string &rest)
{
    // "EXTENSION - omero_upgrade", "COMMENT - EXTENSION omero_upgrade", "TABLE DATA omero_upgrade t",
    // "ACL - SCHEMA omero_upgrade": descriptions are upper case, schemas lower case.
    static const std::regex re("^[A-Z ]+ (- )?([A-Z ]+ )?omero_upgrade( |$)");
    return std::regex_search(rest, re);
}

std::vector<TocEntry> read_toc(const std::string &path, std::string *dbname)
{
    ProcOptions o;
    o.timeout_s = 600;
    ProcResult r = run_process({"pg_restore", "--list", path}, o);
    if (!r.ok())
        throw CommandError("pg_restore --list " + r.describe() + ": " + r.err_tail(3));
    std::vector<TocEntry> toc;
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty())
            continue;
        if (line[0] == ';') {
            size_t p = line.find("dbname: ");
            if (dbname && p != std::string::npos)
                *dbname = line.substr(p + 8);
            continue;
        }
        // "<id>; <tableoid> <oid> <desc> <schema> <name> <owner>"
        size_t semi = line.find("; ");
        if (semi == std::string::npos)
            continue;
        std::istringstream fl(line.substr(semi + 2));
        std::string tableoid, oid;
        fl >> tableoid >> oid;
        std::string rest;
        std::getline(fl, rest);
        rest.erase(0, rest.find_first_not_of(' '));
        TocEntry e{line.substr(0, semi), "", rest, line};
        toc.push_back(e);
    }
    if (toc.empty())
        throw CommandError("pg_restore --list found no entries");
    return toc;
}

DumpPin::~DumpPin()
{
    if (fd >= 0)
        close(fd);
}

namespace {

// Opens the dump once (a FIFO or device is refused, never read) and reads it through that
// descriptor from here on. The descriptor is close-on-exec; run_process hands it to the child
// that is given /dev/fd/N.
void pin_dump(VerifyResult &v)
{
    int fd = open(v.path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        throw CommandError("cannot open " + v.path + ": " + std::strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        close(fd);
        throw CommandError(v.path + " is neither a regular file nor a directory: not a dump");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    v.pin = std::make_shared<DumpPin>();
    v.pin->fd = fd;
    v.io = "/dev/fd/" + std::to_string(fd);
}

std::string others_may_write(const struct stat &st)
{
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
        return std::string("mode ") + mode;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return "owned by uid " + std::to_string(st.st_uid);
    return "";
}

} // namespace

void refuse_dump_others_may_write(const VerifyResult &v)
{
    if (!v.pin)
        return;
    std::vector<std::string> bad;
    struct stat st;
    if (fstat(v.pin->fd, &st) == 0) {
        std::string why = others_may_write(st);
        if (!why.empty())
            bad.push_back(v.name + " (" + why + ")");
        if (S_ISDIR(st.st_mode)) {
            int dfd = dup(v.pin->fd);
            DIR *d = dfd >= 0 ? fdopendir(dfd) : nullptr;
            if (!d && dfd >= 0)
                close(dfd);
            if (d) {
                rewinddir(d);
                while (struct dirent *e = readdir(d)) {
                    std::string n = e->d_name;
                    if (n == "." || n == "..")
                        continue;
                    struct stat fs;
                    if (fstatat(v.pin->fd, e->d_name, &fs, AT_SYMLINK_NOFOLLOW) != 0)
                        continue;
                    std::string w = S_ISREG(fs.st_mode) ? others_may_write(fs) : std::string("not a regular file");
                    if (!w.empty() && bad.size() < 4)
                        bad.push_back(v.name + "/" + n + " (" + w + ")");
                }
                closedir(d);
            }
        }
    }
    if (!bad.empty()) {
        std::string what;
        for (size_t i = 0; i < bad.size(); i++)
            what += (i ? ", " : "") + bad[i];
        throw CommandError("others than this user may change the dump " + v.path + ": " + what +
                               ": changed between its checks and its load, it would be loaded unchecked; refusing; "
                               "nothing was created",
                           "copy it into a directory of your own (cp), or make it yours and private "
                           "(chown, chmod go-w), then restore again");
    }
}

VerifyResult verify_backup(const std::string &path_in, bool checksum)
{
    VerifyResult v;
    v.path = path_in;
    while (v.path.size() > 1 && v.path.back() == '/')
        v.path.pop_back();
    if (!path_exists(v.path))
        throw CommandError(v.path + " does not exist");
    v.dir = dir_name(v.path);
    v.name = base_name(v.path);
    pin_dump(v);
    v.format = is_directory(v.io) ? "directory" : "custom";
    try {
        v.manifest = manifest_entry(v.dir, v.name);
    } catch (const CommandError &e) {
        out().warn(e.what());
    }
    if (checksum) {
        Meter m("checksum", "bytes", path_size(v.path));
        for (auto &p : verify_checksums(v.dir, v.name, [&](unsigned long long n) { m.update(n); }, v.io))
            v.problems.push_back(p);
        m.finish();
    }
    check_contents(v);
    if (v.manifest && !v.dbpatch_version.empty() && v.manifest->value("dbpatch_version", "") != v.dbpatch_version)
        v.problems.push_back("the dump's dbpatch version " + v.dbpatch_version + " differs from the manifest's " +
                             v.manifest->value("dbpatch_version", ""));
    return v;
}

namespace {
std::string resolved(const std::string &p)
{
    char buf[PATH_MAX];
    return realpath(p.c_str(), buf) ? std::string(buf) : p;
}
} // namespace

namespace {

// The dump to import, verified: not one of a manifest already, and sound.
VerifyResult verify_for_import(const std::string &file)
{
    VerifyResult v = verify_backup(file, false);
    if (v.manifest)
        throw CommandError(file + " is already recorded in the manifest of " + v.dir, "check it with: omero-upgrade backup verify " +
                                                                                        shell_quote(file));
    if (!v.ok()) {
        std::string all;
        for (const auto &p : v.problems)
            all += "\n  " + p;
        throw CommandError(file + " is not a sound OMERO dump; nothing was imported:" + all,
                           "make it with pg_dump -Fc (the custom format) of the OMERO database");
    }
    return v;
}

bool ends_with(const std::string &name, const std::string &x)
{
    return name.size() > x.size() && name.compare(name.size() - x.size(), x.size(), x) == 0;
}

// A dump already in the backup directory, adopted where it is (named as the tool names its own).
std::string adopt_in_place(const std::string &file, const std::string &dir, const std::string &name, bool directory)
{
    if (!ends_with(name, directory ? ".pgdir" : ".pgdump"))
        throw CommandError(file + " is in the backup directory but not named *" + (directory ? ".pgdir" : ".pgdump"),
                           "rename it (mv), then import it again");
    if (path_exists(file + ".sha256"))
        throw CommandError(file + ".sha256 exists already: refusing to replace a checksum", "check it: sha256sum -c");
    std::string final_path = dir + "/" + name;
    make_private(final_path);
    return final_path;
}

// from copied to the new file to (0600), with a meter; closed and synced.
void copy_file(const std::string &from, const std::string &to)
{
    int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0)
        throw CommandError("cannot read " + from + ": " + std::strerror(errno));
    int outfd = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (outfd < 0) {
        close(in);
        throw CommandError("cannot create " + to + ": " + std::strerror(errno));
    }
    Meter meter("copy", "bytes", path_size(from));
    unsigned long long done = 0;
    std::vector<char> buf(1 << 20);
    for (;;) {
        ssize_t n = read(in, buf.data(), buf.size());
        if (n < 0 && errno == EINTR && !interrupted())
            continue;
        if (n < 0 || interrupted()) {
            int e = errno;
            close(in);
            close(outfd);
            throw CommandError(interrupted() ? std::string("interrupted") : "cannot read " + from + ": " + std::strerror(e));
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(outfd, buf.data() + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                int e = errno;
                close(in);
                close(outfd);
                throw CommandError("cannot write " + to + ": " + std::strerror(e), "free some space or choose another --backup-dir");
            }
            off += w;
        }
        done += n;
        meter.update(done);
    }
    meter.finish();
    close(in);
    if (fsync(outfd) != 0 || close(outfd) != 0)
        throw CommandError("cannot write " + to + ": " + std::strerror(errno));
}

// A custom-format dump from elsewhere, copied in under a free name (NAME.pgdump, NAME-2.pgdump, …)
// through a partial file. name: the name it gets.
std::string copy_into_dir(const std::string &file, const std::string &dir, std::string &name)
{
    std::string stem = ends_with(name, ".pgdump") ? name.substr(0, name.size() - 7) : name;
    name = stem + ".pgdump";
    for (int n = 2; path_exists(dir + "/" + name) || path_exists(dir + "/" + name + ".sha256") ||
                    path_exists(dir + "/." + name + ".partial");
         n++)
        name = stem + "-" + std::to_string(n) + ".pgdump";
    std::string final_path = dir + "/" + name;
    std::string partial = dir + "/." + name + ".partial";
    PartialGuard guard{partial};
    copy_file(file, partial);
    rename_noreplace(partial, final_path);
    guard.path.clear();
    fsync_dir(dir);
    return final_path;
}

} // namespace

BackupResult import_backup(const std::string &file_in, const std::string &dir_in)
{
    std::string file = file_in;
    while (file.size() > 1 && file.back() == '/')
        file.pop_back();
    if (!path_exists(file))
        throw CommandError(file + " does not exist");
    std::string dir = dir_in;
    bool directory = is_directory(file);
    VerifyResult v = verify_for_import(file);
    if (!ensure_dir(dir, 0700)) {
        struct stat ds;
        if (stat(dir.c_str(), &ds) == 0 && (ds.st_mode & 077))
            out().detail(dir + " is readable by others: its backups are 0600, but their names show");
    }
    std::string name = base_name(file);
    bool in_place = resolved(dir_name(file)) == resolved(dir);
    if (!in_place && directory)
        throw CommandError("a directory-format dump is adopted in place only: " + file + " is outside " + dir,
                           "move it into the backup directory (mv), then: omero-upgrade backup import DIR/NAME.pgdir");
    std::string final_path = in_place ? adopt_in_place(file, dir, name, directory) : copy_into_dir(file, dir, name);
    Meter hmeter("checksum", "bytes", path_size(final_path));
    ChecksumList sums = compute_checksums(final_path, name, [&](unsigned long long n) { hmeter.update(n); });
    hmeter.finish();
    std::string sidecar = format_sidecar(sums);
    write_file_atomic(final_path + ".sha256", sidecar, false, 0600);
    unsigned long long size = path_size(final_path);
    nlohmann::json entry = {
        {"file", name},
        {"format", directory ? "directory" : "custom"},
        {"database", v.dumped_dbname},
        {"dbpatch_version", v.dbpatch_version},
        {"created_utc", utc_timestamp("%Y-%m-%dT%H:%M:%SZ")},
        {"size_bytes", size},
        {"sha256", directory ? sha256_string(sidecar) : sums[0].first},
        {"purpose", "import"},
        {"imported_from", resolved(file)},
        {"extension_installed", v.has_extension_entries},
        {"toc_entries", v.toc.size()},
    };
    add_to_manifest(dir, entry);
    out().say("imported and verified: " + final_path + " (" + human_bytes(size) + ", database " + v.dumped_dbname + ", " +
              v.dbpatch_version + ", " + std::to_string(v.toc.size()) + " entries)" + (in_place ? " in place" : ", a copy of " + file));
    out().say("checksum: " + final_path + ".sha256");
    return {final_path, entry};
}

DumpEstimate dump_space_needed(const std::string &dir, const OmeroDbState &st)
{
    DumpEstimate e;
    unsigned long long db = st.size_bytes > 0 ? (unsigned long long)st.size_bytes : 0;
    e.needed = db;
    e.how = "its size: no earlier dump of it in the manifest";
    nlohmann::json m;
    try {
        m = read_manifest(dir);
    } catch (const std::exception &) {
        return e;  // an unreadable manifest: the size rule (the backup reports the manifest itself)
    }
    const nlohmann::json *last = nullptr;
    if (m.contains("backups") && m["backups"].is_array())
        for (const auto &b : m["backups"])
            if (b.is_object() && b.value("database", "") == st.dbname && b.value("size_bytes", 0ULL) > 0 &&
                (!last || b.value("created_utc", "") >= last->value("created_utc", "")))
                last = &b;
    if (!last)
        return e;
    unsigned long long dump = last->value("size_bytes", 0ULL), then = last->value("database_size_bytes", 0ULL);
    double scaled = (double)dump;
    if (then > 0 && db > then)
        scaled = scaled * (double)db / (double)then;
    unsigned long long need = (unsigned long long)(2 * scaled);
    if (need < db) {
        e.needed = need;
        e.how = "twice the last dump of " + st.dbname + ", " + last->value("file", "") + ": " + human_bytes(dump) +
                (then > 0 ? " for a database of " + human_bytes(then) + ", now " + human_bytes(db) : std::string());
    }
    return e;
}

namespace {

// The database to back up: an OMERO database (its state), a warning when a script did not finish.
OmeroDbState backup_source(Db &db)
{
    OmeroDbState st = read_omero_state(db);
    if (!st.is_omero)
        throw CommandError("database " + db.params().describe() + " is not an OMERO database (no dbpatch rows)",
                           "check omero.db.name in config.xml or --db-name");
    if (!st.finished)
        out().warn("the newest dbpatch row (" + st.version + ") has no finished time: an upgrade script did not "
                   "finish; the backup keeps the database as it is");

    return st;
}

// pg_dump's version line; an error unless it is on PATH and at least as new as the server.
std::string require_pg_dump(const OmeroDbState &st)
{
    std::string pg_dump_full;
    int client = client_major_version("pg_dump", &pg_dump_full);
    if (client == 0)
        throw CommandError("pg_dump is not on PATH", "install the PostgreSQL client (e.g. apt install postgresql-client-" +
                                                         std::to_string(st.server_version_num / 10000) + ")");
    if (client < st.server_version_num / 10000)
        throw CommandError(pg_dump_full + " cannot dump PostgreSQL " + st.server_version + " (a client at least as new as the server is needed)",
                           "install postgresql-client-" + std::to_string(st.server_version_num / 10000) +
                               " and put its bin directory first on PATH");

    return pg_dump_full;
}

// The backup directory made (0700 when we create it) and its free space checked (unless skipped).
void prepare_backup_dir(const std::string &dir, const OmeroDbState &st, const BackupOptions &opts)
{
    // A dump holds password hashes and session keys: the directory we create is 0700, the dumps,
    // sidecars and manifest 0600, whatever the umask.
    if (!ensure_dir(dir, 0700)) {
        struct stat ds;
        if (stat(dir.c_str(), &ds) == 0 && (ds.st_mode & 077))
            out().detail(dir + " is readable by others: its backups are 0600, but their names show");
    }
    unsigned long long avail = free_bytes(dir);
    DumpEstimate need = dump_space_needed(dir, st);
    out().detail("space: " + human_bytes(avail) + " free in " + dir + ", the dump needs about " + human_bytes(need.needed) +
                 " (" + need.how + ")");
    if (!opts.skip_space_check && avail < need.needed)
        throw CommandError("not enough free space in " + dir + ": " + human_bytes(avail) + " available, the database is " +
                               human_bytes(st.size_bytes) + ", the dump needs about " + human_bytes(need.needed) + " (" +
                               need.how + ")",
                           "free some space, choose another --backup-dir, or pass --no-space-check to try anyway "
                           "(a failed dump leaves nothing behind)");

}

// A name no backup, sidecar or leftover in dir has: <db>-<version>-<time>[-N]<ext>.
std::string free_backup_name(const std::string &dir, const OmeroDbState &st, const std::string &ext)
{
    std::string stem = file_safe(st.dbname) + "-" + file_safe(st.version) + "-" + utc_timestamp();
    std::string name = stem + ext;
    for (int n = 2; path_exists(dir + "/" + name) || path_exists(dir + "/" + name + ".sha256") ||
                    path_exists(dir + "/." + name + ".partial");
         n++)
        name = stem + "-" + std::to_string(n) + ext;
    return name;
}

// Each table's size from the catalog's page counts, by "schema.table" as pg_dump --verbose names it.
std::map<std::string, unsigned long long> table_sizes(Db &db, unsigned long long &total_bytes)
{
    std::map<std::string, unsigned long long> table_bytes;
    total_bytes = 0;
    // From the catalog's page counts (kept by VACUUM and ANALYZE), not pg_table_size(): that
    // takes a lock on every table, and a table locked by a long transaction would stall us here.
    Rows sizes = db.query("SELECT n.nspname || '.' || c.relname AS name,"
                          "       (c.relpages::bigint + COALESCE(t.relpages, 0)) * current_setting('block_size')::bigint AS bytes"
                          "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                          "  LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid"
                          " WHERE c.relkind = 'r' AND n.nspname <> 'information_schema'"
                          "   AND n.nspname NOT LIKE 'pg\\_%'");
    for (size_t i = 0; i < sizes.rows.size(); i++) {
        unsigned long long b = std::strtoull(sizes.get(i, "bytes").value_or("0").c_str(), nullptr, 10);
        table_bytes[sizes.get(i, "name").value_or("")] = b;
        total_bytes += b;
    }
    return table_bytes;
}

// pg_dump into partial, a meter counting the bytes of the tables done; the seconds it took.
// Throws CommandError when it fails (the caller's guard removes the partial dump).
double run_pg_dump(const std::vector<std::string> &argv, const PgClient &pc, const std::string &partial,
                   const std::map<std::string, unsigned long long> &table_bytes, unsigned long long total_bytes,
                   const BackupOptions &opts)
{
    Meter meter("pg_dump", "bytes", total_bytes, true);
    std::vector<unsigned long long> started;  // sizes of the tables whose data pg_dump began
    std::string current;
    // The tables begun, except the last one (or the last `jobs` ones, which may still run), are done.
    auto tables_done = [&] {
        size_t running = std::min(started.size(), (size_t)std::max(1, opts.jobs));
        unsigned long long d = 0;
        for (size_t i = 0; i + running < started.size(); i++)
            d += started[i];
        return d;
    };
    auto note = [&] { return (current.empty() ? "" : current + ", ") + human_bytes(path_size(partial)) + " written"; };
    ProcOptions po;
    po.env = pc.env;
    po.umask = 077;  // pg_dump creates its file (custom format) with the umask's mode
    po.on_stderr_line = [&](const std::string &l) {
        static const std::string tag = "dumping contents of table \"";
        size_t p = l.find(tag);
        if (p == std::string::npos)
            return;
        current = l.substr(p + tag.size());
        if (!current.empty() && current.back() == '"')
            current.pop_back();
        auto it = table_bytes.find(current);
        started.push_back(it == table_bytes.end() ? 0 : it->second);
        meter.update(tables_done(), note());
    };
    po.on_tick = [&] { meter.update(tables_done(), note()); };
    ProcResult r = run_process(argv, po);
    if (!r.ok()) {
        std::string why = r.err_tail(3);
        throw CommandError("pg_dump failed (" + r.describe() + ")" + (why.empty() ? "" : ": " + why) +
                               "; the partial dump was removed",
                           r.signal == SIGXFSZ || why.find("No space") != std::string::npos
                               ? "free some space or choose another --backup-dir"
                               : "");
    }
    double dump_s = meter.elapsed();
    current.clear();
    meter.finish(note());

    return dump_s;
}

// The new dump read back (table of contents, key tables, dbpatch data) at the database's version.
VerifyResult verify_new_dump(const std::string &partial, const OmeroDbState &st)
{
    VerifyResult v;
    v.path = partial;
    check_contents(v);
    if (v.ok() && v.dbpatch_version != st.version)
        v.problems.push_back("the dump's dbpatch version " + v.dbpatch_version + " is not the database's " + st.version +
                             " (did an upgrade run meanwhile?)");
    if (!v.ok()) {
        std::string all;
        for (const auto &p : v.problems)
            all += "\n  " + p;
        throw CommandError("the new dump failed verification; it was removed:" + all);
    }

    return v;
}

// The dump checksummed, made private, synced and renamed to final_path, its sidecar written; the sums.
ChecksumList seal_dump(const std::string &partial, const std::string &final_path, const std::string &dir,
                       const std::string &name, PartialGuard &guard, std::string &sidecar)
{
    Meter hmeter("checksum", "bytes", path_size(partial));
    ChecksumList sums = compute_checksums(partial, name, [&](unsigned long long n) { hmeter.update(n); });
    hmeter.finish();
    sidecar = format_sidecar(sums);
    make_private(partial);
    fsync_path(partial);
    rename_noreplace(partial, final_path);
    guard.path.clear();
    fsync_dir(dir);
    write_file_atomic(final_path + ".sha256", sidecar, false, 0600);

    return sums;
}

} // namespace

BackupResult make_backup(const Settings &s, Db &db, const BackupOptions &opts)
{
    OmeroDbState st = backup_source(db);
    std::string pg_dump_full = require_pg_dump(st);

    std::string dir = opts.dir.empty() ? default_backup_dir(s.options) : opts.dir;
    prepare_backup_dir(dir, st, opts);

    bool directory = opts.jobs > 0;
    std::string ext = directory ? ".pgdir" : ".pgdump";
    std::string name = free_backup_name(dir, st, ext);
    std::string final_path = dir + "/" + name;
    std::string partial = dir + "/." + name + ".partial";

    PgClient pc = pg_client(conn_for(s, db.params().dbname));  // db.params() holds no password
    // --verbose names each table as its data is dumped: with the tables' sizes read first, the
    // meter counts the bytes of the tables done (an estimate: sizes on disk, not bytes dumped).
    // A table whose pages were never counted adds nothing.
    std::vector<std::string> argv = {"pg_dump", directory ? "--format=directory" : "--format=custom",
                                     "--file=" + partial, "--no-password", "--verbose"};
    if (directory)
        argv.push_back("--jobs=" + std::to_string(opts.jobs));
    if (!opts.encoding.empty())
        argv.push_back("--encoding=" + opts.encoding);
    argv.push_back("--dbname=" + pc.conninfo);

    out().step("backing up " + db.params().describe() + " (" + st.version + ", " + human_bytes(st.size_bytes) + ") to " +
              final_path);
    unsigned long long total_bytes = 0;
    std::map<std::string, unsigned long long> table_bytes = table_sizes(db, total_bytes);
    PartialGuard guard{partial};
    double dump_s = run_pg_dump(argv, pc, partial, table_bytes, total_bytes, opts);

    VerifyResult v = verify_new_dump(partial, st);

    std::string sidecar;
    ChecksumList sums = seal_dump(partial, final_path, dir, name, guard, sidecar);

    unsigned long long size = path_size(final_path);
    nlohmann::json entry = {
        {"file", name},
        {"format", directory ? "directory" : "custom"},
        {"database", st.dbname},
        {"dbpatch_version", st.version},
        {"dbpatch_finished", st.finished},
        {"created_utc", utc_timestamp("%Y-%m-%dT%H:%M:%SZ")},
        {"size_bytes", size},
        {"database_size_bytes", st.size_bytes},
        {"sha256", directory ? sha256_string(sidecar) : sums[0].first},
        {"server_version", st.server_version},
        {"pg_dump_version", pg_dump_full},
        {"encoding", opts.encoding.empty() ? st.encoding : opts.encoding},
        {"source_encoding", st.encoding},
        {"extension_installed", !st.extension_version.empty()},
        {"purpose", opts.purpose},
        {"host", db.params().host},
        {"port", db.params().port},
        {"toc_entries", v.toc.size()},
        {"dump_seconds", dump_s},
    };
    if (directory)
        entry["jobs"] = opts.jobs;
    add_to_manifest(dir, entry);
    out().say("backup verified and written: " + final_path + " (" + human_bytes(size) + ", " + st.version +
              ", " + std::to_string(v.toc.size()) + " entries)");
    out().say("checksum: " + final_path + ".sha256");
    record_history(s, &db, {"backup", final_path, st.version, std::nullopt, {{final_path, entry["sha256"]}}, entry});
    return {final_path, entry};
}

} // namespace ou
