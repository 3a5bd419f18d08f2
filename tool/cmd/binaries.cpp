// omero-upgrade binaries install NEW.zip|NEW_DIR, binaries rollback: the "copy new binaries"
// step of the guide. The archive is checked entry by entry before anything is written, extracted
// beside the server into its own versioned directory, and the OMERO.server symlink is repointed
// in one rename(2); the old tree is kept, and a state file beside the server directory
// (.omero-upgrade-binaries.json) records the previous target so that rollback can point back.
#include "commands.hpp"
#include "history.hpp"
#include "archive.hpp"
#include "checksum.hpp"
#include "fsutil.hpp"
#include "progress.hpp"
#include "omero_server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>

namespace ou {

namespace {

const char *const state_name = ".omero-upgrade-binaries.json";

std::string real_path(const std::string &p)
{
    char buf[PATH_MAX];
    return realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

bool inside(const std::string &path, const std::string &dir)
{
    return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

// The OMERO.server path itself (the symlink, not what it points to): --server-dir, OMERODIR or
// ./OMERO.server, made absolute through its parent only.
std::string server_link_path(const GlobalOptions &g)
{
    const char *env = std::getenv("OMERODIR");
    std::string p = !g.server_dir.empty() ? g.server_dir : env && *env ? env : "OMERO.server";
    while (p.size() > 1 && p.back() == '/')
        p.pop_back();
    std::string parent = real_path(dir_name(p));
    if (parent.empty())
        throw CommandError("the directory holding " + p + " does not exist", "give --server-dir DIR or OMERODIR");
    return (parent == "/" ? "" : parent) + "/" + base_name(p);
}

enum class Kind { Missing, Symlink, Directory, Other };

Kind kind_of(const std::string &p)
{
    struct stat st;
    if (lstat(p.c_str(), &st) != 0)
        return Kind::Missing;
    if (S_ISLNK(st.st_mode))
        return Kind::Symlink;
    return S_ISDIR(st.st_mode) ? Kind::Directory : Kind::Other;
}

std::string link_target(const std::string &link)
{
    char buf[PATH_MAX];
    ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
    if (n < 0)
        throw CommandError("cannot read the symlink " + link + ": " + std::strerror(errno));
    return std::string(buf, n);
}

// Repoints link at target in one rename(2): a new symlink under a temp name, renamed over the old.
void swap_symlink(const std::string &link, const std::string &target)
{
    std::string tmp = dir_name(link) + "/." + base_name(link) + ".omero-upgrade-tmp." + std::to_string(getpid());
    unlink(tmp.c_str());
    if (symlink(target.c_str(), tmp.c_str()) != 0)
        throw CommandError("cannot create the symlink " + tmp + ": " + std::strerror(errno));
    if (rename(tmp.c_str(), link.c_str()) != 0) {
        int e = errno;
        unlink(tmp.c_str());
        throw CommandError("cannot rename " + tmp + " over " + link + ": " + std::strerror(e));
    }
    fsync_dir(dir_name(link));
}

// The symlink's text: a plain name when the tree sits beside it (as the guide's ln -s does).
std::string link_text(const std::string &link, const std::string &tree)
{
    return dir_name(tree) == dir_name(link) ? base_name(tree) : tree;
}

nlohmann::json read_state(const std::string &path)
{
    std::string text;
    if (!read_file(path, text))
        return nullptr;
    auto j = parse_stored_json(text);
    if (j.is_discarded() || !j.is_object())
        throw CommandError(path + " is not valid JSON: refusing to guess what binaries install did",
                           "look at it, repair or remove it");
    return j;
}

// Splits a relative path into its components ("" and "." dropped).
std::vector<std::string> components(const std::string &rel)
{
    std::vector<std::string> parts;
    std::istringstream in(rel);
    std::string c;
    while (std::getline(in, c, '/'))
        if (!c.empty() && c != ".")
            parts.push_back(c);
    return parts;
}

// Opens the directory rel below root one component at a time, never following a symlink (and
// creating missing ones, 0755, when create): whatever a tree holds (etc -> .., lib/scripts ->
// ../..), nothing is written outside root. -1 with why set when a component is a symlink, not a
// directory, "..", or (without create) missing.
int open_dir_beneath(const std::string &root, const std::string &rel, bool create, std::string &why)
{
    int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        why = root + ": " + std::strerror(errno);
        return -1;
    }
    std::string done = root;
    for (const auto &c : components(rel)) {
        done += "/" + c;
        if (c == "..") {
            why = done + ": '..' in a path to write";
            close(fd);
            return -1;
        }
        int next = openat(fd, c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(fd, c.c_str(), 0755) != 0 && errno != EEXIST) {
                why = "cannot create " + done + ": " + std::strerror(errno);
                close(fd);
                return -1;
            }
            next = openat(fd, c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0) {
            int e = errno;
            struct stat st;
            if (fstatat(fd, c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                why = done + " is a symlink: refusing to write through it (it could lead outside " + root + ")";
            else if (e == ENOTDIR)
                why = done + " is not a directory";
            else
                why = done + ": " + std::strerror(e);
            close(fd);
            return e == ENOENT && !create ? -2 : -1;
        }
        close(fd);
        fd = next;
    }
    return fd;
}

// Refuses (before anything is repointed) a path the install will write below root when one of
// its existing components is a symlink or not a directory; missing components are fine.
void check_writable_beneath(const std::string &root, const std::string &rel)
{
    std::string why;
    int fd = open_dir_beneath(root, rel, false, why);
    if (fd >= 0)
        close(fd);
    else if (fd == -1)
        throw CommandError("the new server tree is not safe to write into: " + why + "; nothing was repointed",
                           "use the release's own zip or directory, unchanged");
}

// Copies the regular file from to root/rel through a temp file and rename, with the source's
// mode, and its owner when we may (root, or our own file). rel's directories are opened (and
// created) below root without following symlinks.
void copy_file_beneath(const std::string &from, const std::string &root, const std::string &rel, bool keep_owner)
{
    std::string to = root + "/" + rel, why;
    int in = open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        throw CommandError("cannot read " + from + ": " + std::strerror(errno));
    struct stat st;
    fstat(in, &st);
    int dfd = open_dir_beneath(root, dir_name(rel), true, why);
    if (dfd < 0) {
        close(in);
        throw CommandError("cannot write " + to + ": " + why);
    }
    std::string name = base_name(rel);
    std::string tmp = "." + name + ".omero-upgrade-tmp." + std::to_string(getpid());
    unlinkat(dfd, tmp.c_str(), 0);
    int outfd = openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (outfd < 0) {
        int e = errno;
        close(in);
        close(dfd);
        throw CommandError("cannot write " + dir_name(to) + "/" + tmp + ": " + std::strerror(e));
    }
    std::string err;
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(outfd, buf, n) != n) {
            err = std::strerror(errno);
            break;
        }
    if (n < 0)
        err = std::strerror(errno);
    if (err.empty() && keep_owner && fchown(outfd, st.st_uid, st.st_gid) != 0)
        out().warn("cannot give " + to + " the owner of " + from + " (uid " + std::to_string(st.st_uid) + "): " +
                   std::strerror(errno));
    if (err.empty() && fchmod(outfd, st.st_mode & 07777) != 0)
        err = std::strerror(errno);
    if (err.empty() && fsync(outfd) != 0)
        err = std::strerror(errno);
    close(outfd);
    close(in);
    // renameat replaces whatever has the name (a symlink included) and never writes through it.
    if (err.empty() && renameat(dfd, tmp.c_str(), dfd, name.c_str()) != 0)
        err = std::strerror(errno);
    if (!err.empty())
        unlinkat(dfd, tmp.c_str(), 0);
    else
        fsync(dfd);
    close(dfd);
    if (!err.empty())
        throw CommandError("cannot copy " + from + " to " + to + ": " + err);
}

bool same_content(const std::string &a, const std::string &b)
{
    return sha256_file(a) == sha256_file(b);
}

// SHA-256 of every regular file below dir (relative names), skipping git's own files and
// Python's byte code, which always differ and are not scripts.
void hash_tree(const std::string &dir, const std::string &rel, std::map<std::string, std::string> &hashes)
{
    auto names = dir_entries(dir + (rel.empty() ? "" : "/" + rel));
    if (!names)
        return;
    for (const auto &n : *names) {
        if (n == ".git" || n == "__pycache__" || (n.size() > 4 && n.compare(n.size() - 4, 4, ".pyc") == 0))
            continue;
        std::string r = rel.empty() ? n : rel + "/" + n;
        std::string full = dir + "/" + r;
        struct stat st;
        if (lstat(full.c_str(), &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            hash_tree(dir, r, hashes);
        else if (S_ISREG(st.st_mode))
            hashes[r] = sha256_file(full);
    }
}

// Entries of PATH, PYTHONPATH and OMERODIR that lead into the old tree (other than through the
// OMERO.server symlink, which follows the swap).
std::vector<std::string> env_into(const std::string &old_tree, const std::string &link)
{
    std::vector<std::string> warnings;
    std::string old_real = real_path(old_tree);
    for (const char *var : {"PATH", "PYTHONPATH", "OMERODIR"}) {
        const char *v = std::getenv(var);
        if (!v || !*v)
            continue;
        std::istringstream in(v);
        std::string entry;
        while (std::getline(in, entry, ':')) {
            if (entry.empty() || inside(entry, link))
                continue;
            std::string r = real_path(entry);
            if (inside(entry, old_tree) || (!old_real.empty() && !r.empty() && inside(r, old_real)))
                warnings.push_back(std::string(var) + " still points into the old server tree: " + entry);
        }
    }
    return warnings;
}

Settings settings_for_tree(const Settings &base, const std::string &tree)
{
    Settings s = base;
    s.server_dir = tree;
    return s;
}

// Refuses while the server of tree runs (unless forced).
void require_stopped(const Settings &base, const std::string &tree, bool force)
{
    if (access((tree + "/bin/omero").c_str(), X_OK) != 0)
        return;
    if (omero_admin_running(settings_for_tree(base, tree), 120)) {
        if (!force)
            throw Refused("the server in " + tree + " is running (bin/omero admin status)",
                               "stop it first: omero-upgrade server stop (or --force)");
        out().warn("the server in " + tree + " is running (--force: going on)");
    }
}

// Why the existing directory tree may not be used as the tree of the archive whose SHA-256 is
// archive_sha: "" when the binaries record (state) says this tool extracted it there from that
// archive and its bin/omero is as extracted.
std::string reuse_refusal(const nlohmann::json &state, const std::string &tree, const std::string &archive_sha,
                          const std::string &state_path)
{
    const nlohmann::json *rec = nullptr;
    if (state.is_object() && state.contains("extracted") && state["extracted"].is_object() &&
        state["extracted"].contains(tree) && state["extracted"][tree].is_object())
        rec = &state["extracted"][tree];
    if (!rec)
        return "binaries install did not extract it (no record of it in " + state_path + "): it may hold anything";
    if (rec->value("archive_sha256", "") != archive_sha)
        return "it was extracted from another archive (" + rec->value("source", "") + ", sha256 " +
               rec->value("archive_sha256", "") + "), not from this one (sha256 " + archive_sha + ")";
    struct stat st;
    std::string bin = tree + "/bin/omero";
    if (lstat(bin.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        return "its bin/omero is not the regular file extracted there";
    std::string now = sha256_file(bin);
    if (now != rec->value("bin_omero_sha256", ""))
        return "its bin/omero changed since it was extracted (sha256 " + now + ", extracted " +
               rec->value("bin_omero_sha256", "") + ")";
    return "";
}

struct InstallOpts {
    std::string source, name;
    bool carry = false, dry_run = false, force = false;
};

void add_binaries_install_options(CLI::App &sub, InstallOpts &o)
{
    sub.add_option("source", o.source, "the new server: an OMERO.server zip (or other archive), or a directory")
        ->required();
    sub.add_option("--name", o.name, "name of the versioned directory (default: the archive's top directory)");
    sub.add_flag("--carry-scripts", o.carry, "copy scripts added under lib/scripts of the old server to the new one");
    sub.add_flag("--dry-run", o.dry_run, "check everything and show what would be done, change nothing");
    sub.add_flag("--force", o.force, "go on although the server is running");
}

// What one binaries install works with, filled in step by step (run_binaries_install).
struct Install {
    const InstallOpts &o;
    Settings &s;
    nlohmann::json &res;
    std::string link, parent, state_path;  // the OMERO.server link, its directory, the binaries record
    Kind k = Kind::Missing;
    std::string current;       // the tree the server runs now
    std::string old_dir_move;  // where a plain directory at link goes (<link>-old)
    bool from_archive = false;
    std::unique_ptr<ArchiveFile> archive;  // opened once: checked and extracted from this descriptor
    ArchiveCheck check;
    std::string archive_sha;
    std::string new_tree;
    bool extracted = false;  // the new tree is there (a directory given, or extracted before)
    bool already = false;    // the link points at the new tree already (a re-run after the swap)
    std::string old_tree;    // "" when not known
    std::vector<std::string> env_warnings;
    nlohmann::json added = nlohmann::json::array(), changed = nlohmann::json::array();  // lib/scripts

    Install(const InstallOpts &opts, Settings &settings, nlohmann::json &result, const std::string &server_link)
        : o(opts), s(settings), res(result), link(server_link), parent(dir_name(server_link)),
          state_path(parent + "/" + state_name)
    {
    }
};

// 1. Where things are now.
void locate_current(Install &in)
{
    const std::string &link = in.link;
    in.k = kind_of(link);
    if (in.k == Kind::Missing || in.k == Kind::Other)
        throw CommandError("no OMERO.server directory or symlink at " + link,
                           "give the current server with --server-dir DIR or OMERODIR");
    in.current = in.k == Kind::Symlink ? real_path(link) : link;
    if (in.current.empty())
        throw CommandError(link + " is a dangling symlink (" + link_target(link) + ")");
    in.old_dir_move = link + "-old";
    if (in.k == Kind::Directory && path_exists(in.old_dir_move))
        throw CommandError(link + " is a directory and " + in.old_dir_move + " already exists",
                           "move " + in.old_dir_move + " away (it would be where the current server goes)");
}

// The versioned directory's name for the archive: --name, its top directory, else its file name
// without the archive suffix; never a name the tool itself uses beside the server.
std::string new_tree_name(const Install &in)
{
    const InstallOpts &o = in.o;
    std::string name = o.name;
    if (name.empty())
        name = in.check.top_dir;
    if (name.empty()) {
        name = base_name(o.source);
        for (const char *ext : {".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar"})
            if (name.size() > std::strlen(ext) && name.compare(name.size() - std::strlen(ext), std::string::npos, ext) == 0) {
                name.resize(name.size() - std::strlen(ext));
                break;
            }
    }
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
        throw CommandError("cannot use '" + name + "' as the name of the new server directory", "give --name NAME");
    // Names the tool itself uses beside the server: the new tree would be (or replace)
    // the link, the place of the old tree, the state file or a temp file.
    std::string lb = base_name(in.link);
    if (name == lb || name == lb + "-old" || name == state_name || name.rfind(".omero-upgrade", 0) == 0 ||
        name.rfind("." + lb + ".omero-upgrade", 0) == 0)
        throw CommandError("cannot use '" + name + "' as the name of the new server directory: " +
                               "omero-upgrade uses " + in.parent + "/" + name + " itself" +
                               (o.name.empty() ? " (it is the top directory or the name of " + o.source + ")" : "") +
                               "; nothing was extracted",
                           "give --name NAME (e.g. OMERO.server-<version>)");
    return name;
}

// 2. An archive: opened once (a regular file, nothing else), checked entry by entry. false: it
// holds unsafe entries (said, nothing extracted).
bool check_source_archive(Install &in)
{
    const InstallOpts &o = in.o;
    in.archive = std::make_unique<ArchiveFile>(o.source);
    Meter m("checking the archive", "bytes", in.archive->size());
    in.check = check_archive(*in.archive, [&](unsigned long long n) { m.update(n); });
    m.finish();
    const ArchiveCheck &check = in.check;
    in.res["archive"] = {{"entries", check.entries}, {"bytes", check.bytes}, {"problems", check.problems}};
    if (!check.ok()) {
        for (const auto &p : check.problems)
            out().error("unsafe archive entry: " + p);
        out().hint("nothing was extracted; use an archive from the official download site");
        return false;
    }
    std::string top = check.top_dir.empty() ? "" : check.top_dir + "/";
    if (!check.has_bin_omero || !check.has_sql_psql)
        throw CommandError(o.source + " is not an OMERO.server: it holds no " +
                               (!check.has_bin_omero ? top + "bin/omero" : "") +
                               (!check.has_bin_omero && !check.has_sql_psql ? " and no " : "") +
                               (!check.has_sql_psql ? top + "sql/psql" : "") + "; nothing was extracted",
                           "give the OMERO.server-<version>.zip of a release (or its unpacked directory)");
    in.new_tree = in.parent + "/" + new_tree_name(in);
    return true;
}

// An existing directory of the archive's name is used only when this tool extracted it there
// from this same archive (the binaries record: the archive's SHA-256 and bin/omero's, as
// extracted); anything else there (planted, unpacked by hand, another release of the same top
// directory, changed since) is refused: --name gives a fresh one.
void check_reuse(Install &in)
{
    in.archive_sha = sha256_file(in.o.source);
    if (!in.extracted)
        return;
    std::string why = reuse_refusal(read_state(in.state_path), in.new_tree, in.archive_sha, in.state_path);
    if (!why.empty())
        throw CommandError(in.new_tree + " exists already, but " + why + "; it is not used, nothing was changed",
                           "move it away, or give --name NAME for a fresh directory (e.g. --name " +
                               base_name(in.new_tree) + "-2)");
    out().say(in.new_tree + " exists already (extracted before): using it, as extracted from this archive (sha256 " +
              in.archive_sha + ")");
}

// 2. The new tree: a directory as it is, or an archive checked (extracted beside the server
// later). false: the archive is unsafe.
bool find_new_tree(Install &in)
{
    const InstallOpts &o = in.o;
    struct stat st;
    if (stat(o.source.c_str(), &st) != 0)
        throw CommandError("cannot read " + o.source + ": " + std::strerror(errno));
    in.from_archive = !S_ISDIR(st.st_mode);
    if (in.from_archive && !check_source_archive(in))
        return false;
    if (!in.from_archive)
        in.new_tree = real_path(o.source);
    in.res["new_tree"] = in.new_tree;
    in.extracted = !in.from_archive || is_directory(in.new_tree);
    if (in.from_archive && !in.extracted && path_exists(in.new_tree))
        throw CommandError(in.new_tree + " exists and is not a directory");
    if (in.from_archive)
        check_reuse(in);
    if (in.extracted) {
        bool bin = access((in.new_tree + "/bin/omero").c_str(), X_OK) == 0, sql = is_directory(in.new_tree + "/sql/psql");
        if (!bin || !sql)
            throw CommandError(in.new_tree + " is not an OMERO.server: it has no " +
                                   (!bin ? std::string("executable bin/omero") : "") + (!bin && !sql ? " and no " : "") +
                                   (!sql ? "sql/psql" : "") + "; nothing was changed",
                               "give the unpacked OMERO.server directory of a release (or its zip)");
    }
    return true;
}

// 3. The old tree. A re-run after a swap: the link already points at the new tree; the state
// file knows the old one.
void find_old_tree(Install &in)
{
    nlohmann::json state = read_state(in.state_path);
    in.already = in.k == Kind::Symlink && in.current == real_path(in.new_tree);
    if (in.already) {
        if (state.is_object() && state.value("current", "") == real_path(in.new_tree))
            in.old_tree = state.value("previous", "");
        out().say(in.link + " already points to " + in.new_tree);
    } else {
        if (in.new_tree == in.current)
            throw CommandError(in.o.source + " is the current server itself");
        in.old_tree = in.k == Kind::Directory ? in.old_dir_move : in.current;
    }
    in.res["previous_tree"] = in.old_tree;
}

// 4. Nothing may run from the current tree while it is swapped; room to extract.
void check_before_swap(Install &in)
{
    require_stopped(in.s, in.current, in.o.force);
    if (in.from_archive && !in.extracted) {
        unsigned long long free = free_bytes(in.parent);
        if (free < in.check.bytes + in.check.bytes / 10)
            throw CommandError("not enough free space in " + in.parent + " to extract " + in.o.source + ": " +
                               human_bytes(in.check.bytes) + " needed, " + human_bytes(free) + " free");
    }
    if (!in.old_tree.empty())
        in.env_warnings = env_into(in.old_tree, in.link);
}

// Every path the install writes below the new tree (config.xml, carried scripts) is opened
// without following symlinks: a tree where that fails is refused before the swap. lib/scripts
// of the old and the new tree compared (in.added, in.changed).
void compare_scripts(Install &in)
{
    const std::string &new_tree = in.new_tree;
    if (in.old_tree.empty())
        return;
    check_writable_beneath(new_tree, "etc/grid");
    // Not compared through a symlink of the new tree (it could lead anywhere); refused
    // when scripts are to be carried into it.
    std::string why;
    int fd = open_dir_beneath(new_tree, "lib/scripts", false, why);
    if (fd >= 0)
        close(fd);
    if (fd == -1) {
        if (in.o.carry)
            check_writable_beneath(new_tree, "lib/scripts");
        out().warn("lib/scripts not compared: " + why);
        return;
    }
    // A plain directory is moved to old_tree only by the swap: until then it is at link.
    std::string old_now = in.k == Kind::Directory && !in.already ? in.link : in.old_tree;
    std::map<std::string, std::string> old_h, new_h;
    hash_tree(old_now + "/lib/scripts", "", old_h);
    hash_tree(new_tree + "/lib/scripts", "", new_h);
    for (const auto &[rel, h] : old_h) {
        auto it = new_h.find(rel);
        if (it == new_h.end())
            in.added.push_back(rel);
        else if (it->second != h)
            in.changed.push_back(rel);
    }
    if (in.o.carry)
        for (const auto &rel : in.added)
            check_writable_beneath(new_tree, "lib/scripts/" + dir_name(rel.get<std::string>()));
}

void say_dry_run(const Install &in)
{
    const std::string &link = in.link, &new_tree = in.new_tree;
    if (in.from_archive && !in.extracted)
        out().say("archive " + in.o.source + ": " + std::to_string(in.check.entries) + " entries, " +
                  human_bytes(in.check.bytes) + ", all safe; would extract it to " + new_tree);
    if (!in.already) {
        if (in.k == Kind::Directory)
            out().say("would move " + link + " to " + in.old_dir_move);
        out().say("would point " + link + " to " + new_tree + " (was " + in.current + ")");
    }
    if (!in.old_tree.empty()) {
        out().say("would copy " + in.old_tree + "/etc/grid/config.xml to " + new_tree +
                  "/etc/grid/config.xml (mode and owner kept) unless it is there");
        out().say("would compare lib/scripts of the old and the new server" +
                  std::string(in.o.carry ? " and copy the added scripts" : ""));
    }
    for (const auto &w : in.env_warnings)
        out().warn(w);
}

// What a later install of the same archive checks before it uses this tree again.
void record_extraction(const Install &in)
{
    nlohmann::json rec = read_state(in.state_path);
    if (!rec.is_object())
        rec = nlohmann::json::object();
    rec["extracted"][in.new_tree] = {{"source", in.o.source},
                                     {"archive_sha256", in.archive_sha},
                                     {"bin_omero_sha256", sha256_file(in.new_tree + "/bin/omero")},
                                     {"extracted_at", utc_timestamp()}};
    write_file_atomic(in.state_path, stored_json_text(rec, 2) + "\n");
}

// 5. Extract: into a temp dir beside the target, then one rename into the versioned dir.
void extract(Install &in)
{
    const InstallOpts &o = in.o;
    const ArchiveCheck &check = in.check;
    std::string tmpl = in.parent + "/.omero-upgrade-extract-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data()))
        throw CommandError("cannot create a temp directory in " + in.parent + ": " + std::strerror(errno));
    std::string tmp = buf.data();
    try {
        out().step("extracting " + o.source + " (" + std::to_string(check.entries) + " entries, " +
                   human_bytes(check.bytes) + ")");
        Meter m("extracting", "bytes", check.bytes);
        extract_archive(*in.archive, check, tmp, [&](unsigned long long n) { m.update(n); });
        m.finish();
        std::string tree = check.top_dir.empty() ? tmp : tmp + "/" + check.top_dir;
        if (access((tree + "/bin/omero").c_str(), X_OK) != 0 || !is_directory(tree + "/sql/psql"))
            throw CommandError(o.source + " holds no OMERO.server (no executable bin/omero or no sql/psql in it)");
        if (check.top_dir.empty()) {
            chmod(tmp.c_str(), 0755);
            rename_noreplace(tmp, in.new_tree);
        } else {
            rename_noreplace(tree, in.new_tree);
            rmdir(tmp.c_str());
        }
    } catch (...) {
        remove_tree(tmp);
        throw;
    }
    out().say("extracted to " + in.new_tree);
    record_extraction(in);
}

// 6. The swap. A plain directory is first moved aside, as the guide does; the binaries record
// then says where the link pointed before (binaries rollback points it back).
void repoint(Install &in)
{
    const std::string &link = in.link, &new_tree = in.new_tree;
    if (in.k == Kind::Directory) {
        rename_noreplace(link, in.old_dir_move);
        out().say("moved " + link + " to " + in.old_dir_move);
    }
    swap_symlink(link, link_text(link, new_tree));
    out().say("pointed " + link + " to " + new_tree + " (was " + (in.k == Kind::Directory ? in.old_dir_move : in.current) +
              ")");
    nlohmann::json state = read_state(in.state_path);  // with what the extraction recorded
    nlohmann::json history = state.is_object() && state.contains("history") ? state["history"] : nlohmann::json::array();
    history.push_back({{"at", utc_timestamp()}, {"action", "install"}, {"from", in.old_tree}, {"to", new_tree}});
    nlohmann::json ns = {{"server", link},
                         {"previous", in.old_tree},
                         {"current", real_path(new_tree)},
                         {"previous_was_directory", in.k == Kind::Directory},
                         {"source", in.o.source},
                         {"installed_at", utc_timestamp()},
                         {"history", history}};
    if (state.is_object() && state.contains("extracted"))
        ns["extracted"] = state["extracted"];
    write_file_atomic(in.state_path, stored_json_text(ns, 2) + "\n");
    record_history(in.s, {"binaries-install", link + " → " + new_tree, std::nullopt, std::nullopt, nlohmann::json::object(),
                          {{"server", link}, {"from", in.old_tree}, {"to", real_path(new_tree)}, {"source", in.o.source}}});
}

// The new tree's config.xml renamed aside (config.xml.stale-<stamp>, a free name): the name.
std::string set_config_aside(const std::string &new_tree, const std::string &new_cfg)
{
    std::string stamp = "config.xml.stale-" + utc_timestamp(), aside = stamp;
    std::string why;
    int dfd = open_dir_beneath(new_tree, "etc/grid", false, why);
    if (dfd < 0)
        throw CommandError("cannot set " + new_cfg + " aside: " + why);
    int rc, e;
    for (int i = 2;; i++) {  // a free name: two installs in one second get -2, -3…
        rc = renameat2(dfd, "config.xml", dfd, aside.c_str(), RENAME_NOREPLACE);
        e = errno;
        if (rc == 0 || e != EEXIST || i > 1000)
            break;
        aside = stamp + "-" + std::to_string(i);
    }
    close(dfd);
    if (rc != 0)
        throw CommandError("cannot rename " + new_cfg + " to " + aside + ": " + std::strerror(e));
    return aside;
}

// 7. config.xml, with its mode and owner.
void carry_config_xml(Install &in)
{
    const std::string &new_tree = in.new_tree;
    std::string old_cfg = in.old_tree + "/etc/grid/config.xml", new_cfg = new_tree + "/etc/grid/config.xml";
    std::string cfg_status;
    if (!path_exists(old_cfg)) {
        cfg_status = "none in the old server";
        out().warn("no " + old_cfg + " to copy");
    } else if (!path_exists(new_cfg)) {
        copy_file_beneath(old_cfg, new_tree, "etc/grid/config.xml", true);
        cfg_status = "copied";
        out().say("copied " + old_cfg + " to " + new_cfg);
    } else if (same_content(old_cfg, new_cfg)) {
        cfg_status = "already there";
        out().say(new_cfg + " is already the old server's config.xml");
    } else if (!in.already) {
        // Swapped just now: the server ran on the old tree's config.xml until this install, so
        // a different one in the new tree is stale (left by an earlier install that was rolled
        // back: it names the database from before the rollback). Starting the new server on
        // it would run it on that database. Kept aside, and the live one copied.
        std::string aside = set_config_aside(new_tree, new_cfg);
        copy_file_beneath(old_cfg, new_tree, "etc/grid/config.xml", true);
        cfg_status = "replaced the stale one (kept as etc/grid/" + aside + ")";
        in.res["config_xml_stale"] = new_tree + "/etc/grid/" + aside;
        out().warn(new_cfg + " differed from " + old_cfg + ", the configuration the server ran on: kept it as " +
                   aside + " and copied the live one (compare them if the new tree's was edited on purpose)");
    } else {
        cfg_status = "kept the new one (differs)";
        out().warn(new_cfg + " exists and differs from " + old_cfg +
                   ": kept it (compare them; it may hold changes made since the swap)");
    }
    in.res["config_xml"] = cfg_status;
}

// 8. lib/scripts: added and changed in the old server compared with the new one (compared by
// compare_scripts, before the swap).
void carry_scripts(Install &in)
{
    nlohmann::json carried = nlohmann::json::array();
    for (const auto &rel : in.added) {
        std::string r = rel.get<std::string>();
        if (in.o.carry) {
            copy_file_beneath(in.old_tree + "/lib/scripts/" + r, in.new_tree, "lib/scripts/" + r, true);
            carried.push_back(r);
            out().say("carried lib/scripts/" + r + " to the new server");
        } else {
            out().warn("lib/scripts/" + r + " exists only in the old server (give --carry-scripts to copy it)");
        }
    }
    for (const auto &rel : in.changed)
        out().warn("lib/scripts/" + rel.get<std::string>() +
                   " differs between the old and the new server: merge your changes by hand if it was edited");
    in.res["scripts"] = {{"added", in.added}, {"changed", in.changed}, {"carried", carried}};
}

int run_binaries_install(const InstallOpts &o, Context &ctx)
{
    Install in(o, ctx.settings(), out().result(), server_link_path(ctx.global()));
    in.res["server"] = in.link;
    in.res["dry_run"] = o.dry_run;

    locate_current(in);
    if (!find_new_tree(in))
        return EXIT_PROBLEM;
    find_old_tree(in);
    check_before_swap(in);
    if (in.extracted)
        compare_scripts(in);
    if (o.dry_run) {
        say_dry_run(in);
        return EXIT_OK;
    }
    if (in.from_archive && !in.extracted) {
        extract(in);
        compare_scripts(in);
    }
    if (!in.already)
        repoint(in);
    in.res["swapped"] = !in.already;
    if (in.old_tree.empty()) {
        out().warn("the previous server tree is not known (no " + in.state_path +
                   "): config.xml and lib/scripts were not compared");
        return EXIT_OK;
    }
    carry_config_xml(in);
    carry_scripts(in);
    // 9. The environment.
    for (const auto &w : in.env_warnings)
        out().warn(w + " (update it before starting the server)");
    in.res["environment_warnings"] = in.env_warnings;
    out().say("binaries installed: " + in.link + " -> " + in.new_tree + "; the old tree is kept at " + in.old_tree);
    return EXIT_OK;
}

struct RollbackOpts {
    bool dry_run = false, force = false;
    std::string to;
};

// binaries rollback --to DIR: the tree the install that made the symlink point to `current` came
// from (the newest such install in the record's history), "" when none is recorded.
std::string installed_from(const nlohmann::json &state, const std::string &current)
{
    const auto &h = state.value("history", nlohmann::json::array());
    for (auto it = h.rbegin(); it != h.rend(); ++it)
        if (it->value("action", "") == "install" && real_path(it->value("to", "")) == current)
            return it->value("from", "");
    return "";
}

void add_binaries_rollback_options(CLI::App &sub, RollbackOpts &o)
{
    sub.add_option("--to", o.to,
                   "the tree to point back to: the one the install that made the symlink point where it does came "
                   "from (default: the previous tree of the last install); for a rollback of an earlier run");
    sub.add_flag("--dry-run", o.dry_run, "show what would be done, change nothing");
    sub.add_flag("--force", o.force, "go on although the server is running");
}

int run_binaries_rollback(const RollbackOpts &o, Context &ctx)
{
    Settings &s = ctx.settings();
    std::string link = server_link_path(ctx.global()), parent = dir_name(link);
    std::string state_path = parent + "/" + state_name;
    nlohmann::json state = read_state(state_path);
    if (!state.is_object() || !state.contains("current"))
        throw CommandError("no record of a binaries install beside " + link + " (" + state_path + ")",
                           "point the symlink back by hand: ln -sfn OLD_DIR " + link);
    std::string previous = state.value("previous", ""), installed = state.value("current", "");
    nlohmann::json &res = out().result();
    res["server"] = link;
    res["previous_tree"] = previous;
    res["dry_run"] = o.dry_run;
    if (state.value("server", link) != link)
        throw CommandError(state_path + " is about " + state.value("server", "") + ", not " + link);
    if (kind_of(link) != Kind::Symlink)
        throw CommandError(link + " is not a symlink: nothing to point back");
    std::string current = real_path(link);
    if (!o.to.empty()) {
        // An earlier install's way back: the symlink must point where that install made it
        // point, and DIR be the tree it came from (its history entry), else it is refused.
        std::string want = real_path(o.to);
        if (want.empty())
            throw CommandError("the tree " + o.to + " to point back to is gone");
        if (current == want) {
            res["rolled_back"] = false;
            out().say(link + " already points to " + o.to + ": nothing to do");
            return EXIT_OK;
        }
        std::string from = installed_from(state, current);
        if (from.empty() || real_path(from) != want) {
            out().error(link + " points to " + (current.empty() ? link_target(link) : current) + ", which " +
                        (from.empty() ? std::string("no recorded binaries install made it point to")
                                      : "binaries install made it point to from " + from + ", not from " + o.to));
            out().hint("it was changed by hand since; point it yourself");
            return EXIT_PROBLEM;
        }
        previous = o.to;
        installed = current;
        res["previous_tree"] = previous;
    }
    if (!previous.empty() && current == real_path(previous)) {
        res["rolled_back"] = false;
        out().say(link + " already points to the previous tree " + previous + ": nothing to do");
        return EXIT_OK;
    }
    if (current != installed) {
        out().error(link + " points to " + (current.empty() ? link_target(link) : current) +
                    ", not to what binaries install made it point to (" + installed + ")");
        out().hint("it was changed by hand since; point it yourself");
        return EXIT_PROBLEM;
    }
    if (previous.empty() || !is_directory(previous) || access((previous + "/bin/omero").c_str(), X_OK) != 0)
        throw CommandError("the previous server tree " + previous + " is gone or is not an OMERO.server");
    require_stopped(s, current, o.force);
    // The old server cannot use a database that was upgraded since.
    try {
        auto db = ctx.connect();
        OmeroDbState st = read_omero_state(*db);
        std::string old_newest = server_newest_version(settings_for_tree(s, previous));
        if (st.is_omero && !old_newest.empty() && compare_versions(st.version, old_newest) > 0)
            out().warn("the database " + s.conn.dbname + " is at " + st.version + ", newer than the previous server (" +
                       old_newest + ") can use: restore the backup taken before db upgrade (omero-upgrade restore)");
    } catch (const CommandError &e) {
        out().detail(std::string("database version not checked: ") + e.what());
    }
    if (o.dry_run) {
        out().say("would point " + link + " back to " + previous + " (now " + current + ")");
        return EXIT_OK;
    }
    swap_symlink(link, link_text(link, previous));
    state["history"].push_back({{"at", utc_timestamp()}, {"action", "rollback"}, {"from", current}, {"to", previous}});
    state["rolled_back_at"] = utc_timestamp();
    write_file_atomic(state_path, stored_json_text(state, 2) + "\n");
    record_history(s, {"binaries-rollback", link + " → " + previous, std::nullopt, std::nullopt,
                       nlohmann::json::object(), {{"server", link}, {"from", current}, {"to", previous}}});
    res["rolled_back"] = true;
    out().say("pointed " + link + " back to " + previous + "; " + current + " is kept");
    return EXIT_OK;
}

} // namespace

CommandRun setup_binaries_install(CLI::App &sub)
{
    return command_setup<InstallOpts, add_binaries_install_options, run_binaries_install>(sub);
}

CommandRun setup_binaries_rollback(CLI::App &sub)
{
    return command_setup<RollbackOpts, add_binaries_rollback_options, run_binaries_rollback>(sub);
}

} // namespace ou
