// See run_steps.hpp. One section per step of a run, in plan order: its definition (def_*), what
// it records (record_*), what it did and how that is undone alone (effect_*); then the plan that
// orders them (build_steps) and the tables the executor and the report dispatch through.
#include "run_steps.hpp"

#include "checksum.hpp"
#include "common.hpp"
#include "fsutil.hpp"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace ou::run {

namespace {

using json = nlohmann::json;

// What every effect_* reads: the step's result, and the commands its undo names.
struct EffectOf {
    const json &state;
    const json &r;            // the step's recorded result (an object)
    std::string sd;           // omero-upgrade --server-dir DIR
    std::string restore;      // the whole-database undo
    // A count of the result, "?" when it is not there.
    std::string n(const json &o, const char *k) const
    {
        return o.is_object() && o.contains(k) && o[k].is_number() ? std::to_string(o[k].get<long long>()) : std::string("?");
    }
    std::string n(const char *k) const { return n(r, k); }
};

// ---- check, precheck: read-only, nothing recorded, nothing to undo --------------------------
StepDef def_check(const RunOptions &o, const std::string &target)
{
    std::vector<std::string> check = {"check", "--target", target, "--backup-dir", o.backup_dir};
    if (o.no_space_check)
        check.push_back("--no-space-check");
    return {step_id::check, "check the prerequisites", check, "reads the settings, the database, free space; changes nothing"};
}

StepDef def_precheck(const std::string &target)
{
    return {step_id::precheck, "precheck the database for every hop (includes the SV5 scan)", {"precheck", "--target", target},
            "reads the database (the extension, else the new server's -precheck.sql scripts); changes nothing",
            false, false, StepDir::Preview};
}

// ---- tree-listing: done by run itself --------------------------------------------------------
StepDef def_tree_listing()
{
    return {step_id::tree_listing, "record a listing of the current server tree", {"(internal)"},
            "writes a listing (type, size, path, link target) of the server tree beside the state file",
            false, false, StepDir::Server, true};
}

std::ostringstream *g_listing;
std::string g_listing_root;
unsigned long long g_listing_files, g_listing_bytes;

int list_entry(const char *path, const struct stat *st, int type, FTW *)
{
    std::string rel = std::string(path).substr(std::min(g_listing_root.size() + 1, std::strlen(path)));
    if (rel.empty())
        rel = ".";
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st->st_mode & 07777);
    std::string kind = S_ISDIR(st->st_mode) ? "d" : S_ISLNK(st->st_mode) ? "l" : S_ISREG(st->st_mode) ? "f" : "o";
    *g_listing << kind << "\t" << mode << "\t" << (S_ISREG(st->st_mode) ? st->st_size : 0) << "\t" << rel;
    if (type == FTW_SL) {
        char buf[PATH_MAX];
        ssize_t n = readlink(path, buf, sizeof buf - 1);
        *g_listing << "\t-> " << (n > 0 ? std::string(buf, n) : "?");
    }
    *g_listing << "\n";
    if (S_ISREG(st->st_mode)) {
        g_listing_files++;
        g_listing_bytes += st->st_size;
    }
    return interrupted() ? 1 : 0;
}

ChildOutcome tree_listing(const json &state)
{
    ChildOutcome o;
    std::string root = state["server"].value("old_tree", "");
    std::string file = dir_name(state.value("state_file", "")) + "/omero-upgrade-run-" +
                       state.value("run_id", "") + ".tree.tsv";
    std::ostringstream s;
    s << "# listing of " << root << " (type, mode, size, path, link target) before the upgrade\n";
    g_listing = &s;
    g_listing_root = root;
    g_listing_files = g_listing_bytes = 0;
    int rc = nftw(root.c_str(), list_entry, 32, FTW_PHYS);
    g_listing = nullptr;
    if (rc != 0) {
        o.interrupted = interrupted();
        o.error = o.interrupted ? "interrupted" : "cannot list " + root;
        return o;
    }
    write_file_atomic(file, s.str());
    o.exit_code = 0;
    o.json = {{"result", {{"listing", file}, {"root", root}, {"files", g_listing_files}, {"bytes", g_listing_bytes}}}};
    out().step("      " + std::to_string(g_listing_files) + " files, " + human_bytes(g_listing_bytes) + " listed in " +
              file);
    return o;
}

// ---- backup: recorded in state["backup"], checked before every step that needs it ------------
StepDef def_backup(const RunOptions &o)
{
    std::vector<std::string> backup = {"backup", "--backup-dir", o.backup_dir};
    if (o.jobs > 0)
        backup.insert(backup.end(), {"--jobs", std::to_string(o.jobs)});
    if (o.no_space_check)
        backup.push_back("--no-space-check");
    return {step_id::backup, "verified backup of the database", backup,
            "writes a pg_dump, its .sha256 and the manifest into " + o.backup_dir};
}

// A backup made by an earlier attempt (which then failed to record, or was followed by a
// failure) is verified and kept rather than made again.
std::vector<std::string> backup_command(const json &state, std::vector<std::string> args)
{
    if (state["backup"].is_object()) {
        std::string p = state["backup"].value("path", "");
        if (!p.empty() && path_exists(p))
            return {"backup", "verify", p};
    }
    return args;
}

// The backup (path and SHA-256) this process made or compared with the record: a resumed run,
// perhaps days later, reads the whole file once before its first step that needs the backup.
std::string g_backup_checked;

void record_backup(json &state, json &step, const ChildOutcome &)
{
    const auto &r = step["result"];
    if (!r.is_object())
        return;
    if (!r.value("path", "").empty() && r.contains("sha256")) {
        state["backup"] = {{"path", r.value("path", "")},
                           {"sha256", r.value("sha256", "")},
                           {"size_bytes", r.value("size_bytes", 0ULL)},
                           {"dbpatch_version", r.value("dbpatch_version", "")},
                           {"format", r.value("format", "")},
                           {"created_utc", r.value("created_utc", "")},
                           {"verified", true}};
        g_backup_checked = r.value("path", "") + "\n" + r.value("sha256", "");  // just made
    } else if (state["backup"].is_object()) {
        state["backup"]["verified_again"] = step["ended"];  // backup verify of the earlier one
    }
    out().step("      backup " + state["backup"].value("path", "") + " sha256 " + state["backup"].value("sha256", ""));
}

// ---- server-stop: the downtime begins -------------------------------------------------------
StepDef def_server_stop(const RunOptions &o)
{
    std::vector<std::string> stop = {"server", "stop"};
    if (o.stop_timeout > 0)
        stop.insert(stop.end(), {"--timeout", std::to_string(o.stop_timeout)});
    return {step_id::server_stop, "stop the server (confirmed: no OMERO session left)", stop,
            "runs bin/omero web stop, admin stop; the server is down from here", true, true};
}

// The server is down only once server-stop is done: until then (a stop that failed or was
// interrupted) it may well still run. The downtime is measured from the start of the attempt
// that stopped it; a re-run after that (an injected failure) does not move it.
void record_server_stop_start(json &state, json &step)
{
    if (state["downtime"].value("stopped_at", json()).is_null())
        state["downtime"]["stop_began"] = step["started"];
}

void record_server_stop(json &state, json &step, const ChildOutcome &)
{
    if (state["downtime"].value("stopped_at", json()).is_null())
        state["downtime"]["stopped_at"] = step["ended"];
}

StepEffect effect_server_stop(const EffectOf &c)
{
    return {"stopped the server", c.sd + " server start"};
}

// ---- binaries-install: recorded in server.new_tree ------------------------------------------
StepDef def_binaries_install(const RunOptions &o)
{
    std::vector<std::string> install = {"binaries", "install", o.new_server};
    if (o.carry_scripts)
        install.push_back("--carry-scripts");
    return {step_id::binaries_install, "install the new server and repoint the OMERO.server symlink", install,
            "unpacks beside the current tree, copies etc/grid/config.xml, swaps the symlink; the old tree is kept",
            true, true};
}

void record_binaries_install(json &state, json &, const ChildOutcome &)
{
    state["server"]["new_tree"] = resolved_path(state["server"].value("dir", ""));
}

StepEffect effect_binaries_install(const EffectOf &c)
{
    const json &server = c.state["server"];
    StepEffect e;
    e.did = "OMERO.server → " + (server["new_tree"].is_string() ? server.value("new_tree", "") : "?") + " (was " +
            old_tree_now(c.state) + ")";
    if (c.r.contains("config_xml"))
        e.did += "; config.xml " + c.r.value("config_xml", "");
    e.undo = c.sd + " binaries rollback (the server stopped)";
    return e;
}

// ---- db-upgrade: the hops (state["hops"]) and the site SQL (state["site_sql"]) --------------
StepDef def_db_upgrade(const RunOptions &o, const std::string &target)
{
    std::vector<std::string> upgrade = {"db", "upgrade", "--target", target};
    if (!o.site_sql.empty())
        upgrade.insert(upgrade.end(), {"--site-sql", o.site_sql});
    return {step_id::db_upgrade,
            o.site_sql.empty() ? "upgrade the database, hop by hop" : "upgrade the database, hop by hop, then the site SQL",
            upgrade,
            std::string("runs the new server's sql/psql scripts (listed above) as the OMERO database user") +
                (o.site_sql.empty() ? "" : ", then the site SQL files not applied yet (listed above), each in its own transaction"),
            true, true};
}

StepEffect effect_db_upgrade(const EffectOf &c)
{
    StepEffect e;
    std::string hops;
    for (const auto &h : c.state.value("hops", json::array()))
        hops += (hops.empty() ? "" : ", ") + h.value("from", "") + " → " + h.value("to", "");
    e.did = "ran " + std::to_string(c.state.value("hops", json::array()).size()) + " upgrade script(s)" +
            (hops.empty() ? "" : ": " + hops);
    const json &r = c.r;
    if (r.contains("site_sql") && r["site_sql"].is_object() && r["site_sql"].contains("applied"))
        e.did += "; applied " + std::to_string(r["site_sql"]["applied"].size()) + " site SQL file(s) from " +
                 r["site_sql"].value("dir", "");
    e.undo = "no script undoes an upgrade: " + c.restore;
    return e;
}

// ---- db-verify: its verdict in state["schema"]; a schema that differs does not stop the run ---
StepDef def_db_verify()
{
    return {step_id::db_verify, "verify the upgraded schema against a fresh one of its version", {"db", "verify"},
            "builds the fresh schema from the new server's creation files in a scratch database (dropped after) "
            "and compares the catalogs; changes nothing",
            true, true};
}

// db verify's exit 1 (the schema differs) and 2 (it could not verify: no CREATEDB, no creation
// files) are its verdict: the run goes on and the report says it.
bool accept_db_verify(const ChildOutcome &o)
{
    return o.exit_code == EXIT_PROBLEM || o.exit_code == EXIT_ERROR;
}

// state["schema"]: {"verdict": "conforms"|"differs"|"not verified", "version", "differences",
// "by_change", "reason", "exit_code", "command"}.
void record_db_verify(json &state, json &step, const ChildOutcome &o)
{
    const json &r = step["result"];
    std::string cmd = "omero-upgrade --server-dir " + shell_quote(state["server"].value("dir", "")) + " db verify";
    json v = {{"exit_code", o.exit_code}, {"command", cmd}};
    v["version"] = r.is_object() ? r.value("version", json()) : json();
    std::string warning;
    if (o.exit_code == 0 || (o.exit_code == EXIT_PROBLEM && r.is_object() && r.contains("differences"))) {
        json by = json::object();
        size_t n = 0;
        for (const auto &d : r.value("differences", json::array())) {
            std::string c = d.value("difference", "");
            by[c] = by.value(c, 0) + 1;
            n++;
        }
        v["verdict"] = n == 0 ? "conforms" : "differs";
        v["differences"] = n;
        v["by_change"] = by;
        if (n)
            warning = "schema differs: " + std::to_string(n) + " difference(s) from a fresh " +
                      v.value("version", std::string("?")) + ", see " + cmd;
    } else {
        v["verdict"] = "not verified";
        v["reason"] = o.error;
        warning = "schema not verified (" + o.error + "); run " + cmd + " when that is fixed";
    }
    state["schema"] = v;
    if (!warning.empty()) {
        step["warnings"].push_back(warning);
        out().warn(warning);
    }
}

// ---- orphans: archived in the extension, restored by db orphans restore ----------------------
StepDef def_orphans()
{
    return {step_id::orphans, "delete orphaned annotations (archived, restorable)", {"db", "orphans", "delete", "--apply"},
            "deletes the orphaned annotations the official script would, keeping them in the extension's archive",
            true, true};
}

StepEffect effect_orphans(const EffectOf &c)
{
    return {"deleted " + c.n("deleted") + " orphaned annotation(s) in orphans run " + c.n("run_id") + " (" +
                c.n("skipped") + " skipped: linked meanwhile), archived in the extension",
            c.sd + " db orphans restore --run " + c.n("run_id")};
}

// ---- colors: journaled, undone by colors revert ---------------------------------------------
StepDef def_colors(const RunOptions &o)
{
    // No selection: every shape (the extension rewrites the table in one pass when nothing else
    // uses the database, as with the server stopped, and nothing is journaled).
    std::vector<std::string> c = {"colors", "convert"};
    if (o.colors != "all" && o.colors[0] == '@')
        c.insert(c.end(), {"--roi-file", o.colors.substr(1)});
    else if (o.colors != "all")
        c.insert(c.end(), {"--roi", o.colors});
    else if (o.online)
        c.push_back("--batches");  // never the rewrite's table lock while OMERO starts and runs
    return {step_id::colors, "convert shape colours ARGB → RGBA", c,
            o.colors != "all"
                ? "converts shape.fillcolor/strokecolor of the chosen ROIs' shapes, journaled (colors revert undoes it)"
            : o.online ? "converts shape.fillcolor/strokecolor of every shape by journaled batches while OMERO runs "
                         "(colors revert undoes it)"
                       : "converts shape.fillcolor/strokecolor of every shape (one pass over the table when "
                         "nothing else uses the database), journaled (colors revert undoes it)",
            true, true};
}

StepEffect effect_colors(const EffectOf &c)
{
    const json &n = c.r.contains("counts") ? c.r["counts"] : json::object();
    return {"converted " + c.n(n, "converted") + " shape(s) ARGB → RGBA (" + c.r.value("scope", std::string("?")) +
                ", method " + c.r.value("method", std::string("?")) + ", colours run " + c.n("run_id") + "; " +
                c.n(n, "already") + " already converted), journaled",
            c.sd + " colors revert (the exact originals from the journal)"};
}

// ---- wells: journaled in a file of the backup directory, undone by move-to-wells --undo -------
StepDef def_wells(const RunOptions &o)
{
    // "screen:1,2" → annotations move-to-wells --screen 1,2 --apply (validated by the option).
    // The run adds its --journal (prepare: one per run, so a resumed attempt continues it).
    size_t colon = o.wells.find(':');
    std::vector<std::string> w = {"annotations", "move-to-wells", "--" + o.wells.substr(0, colon),
                                  o.wells.substr(colon + 1), "--apply"};
    return {step_id::wells, "move annotations from Images to Wells", w,
            "links annotations of the wells' images to the wells", true, true};
}

StepEffect effect_wells(const EffectOf &c)
{
    const json &r = c.r;
    const json &t = r.contains("totals") ? r["totals"] : json::object();
    StepEffect e;
    e.did = "created " + c.n(t, "links_created") + " well annotation link(s) on " + c.n(t, "wells") + " well(s), removed " +
            c.n(t, "links_removed") + " image link(s)";
    if (r.contains("journal") && r["journal"].is_string()) {
        e.did += "; journaled in " + r.value("journal", "") + " (OMERO session(s) " + json_text(r["sessions"]) + ")";
        e.undo = c.sd + " annotations move-to-wells --undo " + shell_quote(r.value("journal", "")) +
                 " --apply (deletes exactly the well links it created, gives back the image links it removed)";
    } else
        e.undo = "not journaled: delete the created wellannotationlink rows by hand, or " + c.restore;
    return e;
}

// ---- vacuum-full: the same data, nothing to undo ---------------------------------------------
StepDef def_vacuum_full(const RunOptions &o)
{
    // --force-step vacuum-full: the user made sure of the space the plan could not check.
    std::vector<std::string> v = {"db", "vacuum", "--full"};
    if (std::find(o.force_steps.begin(), o.force_steps.end(), step_id::vacuum_full) != o.force_steps.end())
        v.push_back("--force");
    return {step_id::vacuum_full, "VACUUM FULL ANALYZE, largest table first", v,
            "rewrites every table (needs free space about the size of the largest)", true, true};
}

StepEffect effect_vacuum_full(const EffectOf &c)
{
    return {"rewrote " + c.n("tables") + " table(s): " + human_bytes(c.r.value("size_before", 0ULL)) + " → " +
                human_bytes(c.r.value("size_after", 0ULL)),
            "nothing to undo (the data is the same)"};
}

// ---- cache-clear -----------------------------------------------------------------------------
StepDef def_cache_clear()
{
    return {step_id::cache_clear, "clear the Bio-Formats memo cache", {"cache", "clear"},
            "deletes everything below <omero.data.dir>/BioFormatsCache", true, true};
}

StepEffect effect_cache_clear(const EffectOf &c)
{
    return {"deleted " + c.n("files") + " memo file(s), " + human_bytes(c.r.value("bytes", 0ULL)),
            "nothing to undo (the server rebuilds the memo files as it reads images)"};
}

// ---- upgrade-check-off -----------------------------------------------------------------------
StepDef def_upgrade_check_off()
{
    return {step_id::upgrade_check_off, "turn the upgrade check off", {"config", "upgrade-check", "off"},
            "bin/omero config set omero.upgrades.url ''", true, true};
}

StepEffect effect_upgrade_check_off(const EffectOf &)
{
    return {"set omero.upgrades.url to ''",
            "OMERO.server/bin/omero config set omero.upgrades.url <its former value> (unset: config set omero.upgrades.url)"};
}

// ---- environment: warnings about PATH, PYTHONPATH, OMERODIR; the JVM settings shown ----------
StepDef def_environment()
{
    return {step_id::environment, "report the JVM memory settings", {"server", "jvmcfg"},
            "runs bin/omero admin jvmcfg; checks PATH, PYTHONPATH and OMERODIR", true, true};
}

void record_environment(json &state, json &step, const ChildOutcome &)
{
    const auto &r = step["result"];
    // The new tree lives at a new path: anything still naming the old one is stale.
    std::string old_tree = state["server"].value("old_tree", "");
    for (const char *v : {"PATH", "PYTHONPATH", "OMERODIR"}) {
        const char *e = std::getenv(v);
        if (e && !old_tree.empty() && std::string(e).find(old_tree) != std::string::npos) {
            std::string w = std::string(v) + " still points into the old tree " + old_tree + ": point it at " +
                            state["server"].value("dir", "");
            step["warnings"].push_back(w);
            out().warn(w);
        }
    }
    if (r.is_object() && r.contains("output")) {
        std::istringstream in(r.value("output", ""));
        std::string l;
        while (std::getline(in, l))
            if (!l.empty())
                out().say("      " + l);
    }
}

// ---- server-start: the downtime ends ---------------------------------------------------------
StepDef def_server_start()
{
    return {step_id::server_start, "start the new server", {"server", "start"}, "runs bin/omero admin start; the server is up",
            true, true};
}

void record_server_start(json &state, json &step, const ChildOutcome &)
{
    state["downtime"]["started_at"] = step["ended"];
    const auto &dt = state["downtime"];
    state["downtime"]["seconds"] = seconds_between(
        dt.value("stop_began", json()).is_string() ? dt.value("stop_began", "") : dt.value("stopped_at", ""),
        step.value("ended", ""));
}

StepEffect effect_server_start(const EffectOf &c)
{
    return {"started the new server", c.sd + " server stop"};
}

// ---- diagnostics -----------------------------------------------------------------------------
StepDef def_diagnostics()
{
    return {step_id::diagnostics, "server diagnostics", {"server", "diagnostics"}, "runs bin/omero admin diagnostics", false,
            true};
}

// ---- the tables ------------------------------------------------------------------------------
using Recorder = void (*)(json &state, json &step, const ChildOutcome &o);
using Effect = StepEffect (*)(const EffectOf &);

struct StepKind {
    const char *id;
    Recorder recorded;  // on_done (null: nothing to record)
    Effect effect;      // the report's did / undo alone (null: nothing to tell)
};

const StepKind kinds[] = {
    {step_id::backup, record_backup, nullptr},
    {step_id::server_stop, record_server_stop, effect_server_stop},
    {step_id::binaries_install, record_binaries_install, effect_binaries_install},
    {step_id::db_upgrade, nullptr, effect_db_upgrade},
    {step_id::db_verify, record_db_verify, nullptr},
    {step_id::orphans, nullptr, effect_orphans},
    {step_id::colors, nullptr, effect_colors},
    {step_id::wells, nullptr, effect_wells},
    {step_id::vacuum_full, nullptr, effect_vacuum_full},
    {step_id::cache_clear, nullptr, effect_cache_clear},
    {step_id::upgrade_check_off, nullptr, effect_upgrade_check_off},
    {step_id::environment, record_environment, nullptr},
    {step_id::server_start, record_server_start, effect_server_start},
};

const StepKind *kind_of(const json &step)
{
    std::string id = step.value("id", "");
    for (const auto &k : kinds)
        if (id == k.id)
            return &k;
    return nullptr;
}

} // namespace

std::vector<StepDef> build_steps(const RunOptions &o, const std::string &target, bool db_hops)
{
    std::vector<StepDef> s = {def_check(o, target), def_precheck(target), def_tree_listing(), def_backup(o),
                              def_server_stop(o), def_binaries_install(o)};
    // db_hops false (a binaries-only upgrade): no db-upgrade step unless there is site SQL.
    if (db_hops || !o.site_sql.empty())
        s.push_back(def_db_upgrade(o, target));
    // Its verdict goes into the report; a schema that differs, or one it could not verify, does
    // not stop the run (README, "omero-upgrade run").
    // --online: the steps that are safe with OMERO up (verify reads the catalogs; the orphan delete
    // re-checks every link as it deletes; the colour conversion goes by journaled batches, each
    // skipping a shape OMERO changed meanwhile) run after server-start, outside the offline window.
    std::vector<StepDef> online;
    auto add_online = [&](StepDef d) {
        d.offline = !o.online;
        (o.online ? online : s).push_back(std::move(d));
    };
    add_online(def_db_verify());
    if (o.orphans)
        add_online(def_orphans());
    if (!o.colors.empty())
        add_online(def_colors(o));
    if (!o.wells.empty())
        s.push_back(def_wells(o));
    if (o.vacuum_full)
        s.push_back(def_vacuum_full(o));
    for (StepDef d : {def_cache_clear(), def_upgrade_check_off(), def_environment(), def_server_start()})
        s.push_back(std::move(d));
    for (StepDef &d : online)
        s.push_back(std::move(d));
    s.push_back(def_diagnostics());
    return s;
}

std::vector<std::string> step_command(const nlohmann::json &state, const nlohmann::json &step)
{
    auto args = step["command"].get<std::vector<std::string>>();
    if (step.value("id", "") == step_id::backup)
        return backup_command(state, args);
    return args;
}

ChildOutcome run_internal_step(const nlohmann::json &state, const nlohmann::json &)
{
    return tree_listing(state);  // the only internal step of a run
}

std::string backup_missing(const nlohmann::json &state)
{
    const auto &b = state["backup"];
    if (!b.is_object() || b.value("path", "").empty())
        return "no verified backup is recorded yet (step backup)";
    std::string p = b.value("path", "");
    if (!path_exists(p))
        return "the backup " + p + " recorded by step backup is gone";
    std::string want = b.value("sha256", "");
    if (g_backup_checked == p + "\n" + want)
        return "";
    out().step("      comparing the SHA-256 of the backup " + p + " with the recorded one");
    std::string got;
    try {
        // As backup computes it: of the file, or of the sidecar listing a directory dump's files.
        ChecksumList l = compute_checksums(p, base_name(p));
        got = is_directory(p) ? sha256_string(format_sidecar(l)) : l.empty() ? "" : l[0].first;
    } catch (const CommandError &e) {
        return "cannot read the backup " + p + " to check it: " + e.what();
    }
    if (got != want)
        return "the backup " + p + " changed since step backup recorded it (sha256 " + got + ", recorded " + want +
               "): it is not the backup this run verified; put the original back, or roll back";
    g_backup_checked = p + "\n" + want;
    return "";
}

void record_step_start(nlohmann::json &state, nlohmann::json &step)
{
    if (step.value("id", "") == step_id::server_stop)
        record_server_stop_start(state, step);
}

void record_step_done(nlohmann::json &state, nlohmann::json &step, const ChildOutcome &o)
{
    if (const StepKind *k = kind_of(step); k && k->recorded)
        k->recorded(state, step, o);
}

bool step_accepts(const nlohmann::json &step, const ChildOutcome &o)
{
    return step.value("id", "") == step_id::db_verify && accept_db_verify(o);
}

StepEffect step_effect(const nlohmann::json &state, const nlohmann::json &step)
{
    if (step.value("status", "") != "done")
        return {};
    const StepKind *k = kind_of(step);
    if (!k || !k->effect)
        return {};
    const json &r = step.contains("result") && step["result"].is_object() ? step["result"] : json::object();
    std::string sd = "omero-upgrade --server-dir " + shell_quote(state["server"].value("dir", ""));
    std::string bk = state["backup"].is_object() ? shell_quote(state["backup"].value("path", "")) : "<backup>";
    std::string restore = sd + " restore " + bk + " --into NEW_DB --switch (the whole database as before the run)";
    return k->effect({state, r, sd, restore});
}

} // namespace ou::run
