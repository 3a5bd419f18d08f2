// See run_undo.hpp.
#include "run_undo.hpp"
#include "run_steps.hpp"

#include "common.hpp"
#include "fsutil.hpp"
#include "run_state.hpp"

#include <set>
#include <sys/stat.h>

namespace ou::run {

namespace {

bool attempted(const nlohmann::json &state, const char *id)
{
    for (const auto &s : state.value("steps", nlohmann::json::array()))
        if (s.value("id", "") == id)
            return s.value("attempts", 0) > 0;
    return false;
}

// The run's own database (config.xml may name another one now).
void read_run_database(const nlohmann::json &state, const Installation &m, RollbackPlan &p)
{
    const auto &db = state["database"];
    std::string name = run_database(state), before = db.value("version_before", "");
    std::optional<OmeroDbState> st;
    if (m.db_read && m.db_name == name)
        st = m.db;
    else
        st = read_database(load_settings(m.options, false), name);
    if (!st) {
        p.db_changed = true;
        p.reasons.push_back("the database " + name + " cannot be read: restore the backup into a new one");
        return;
    }
    p.db_now = st->version;
    if (st->version != before || !st->finished) {
        p.db_changed = true;
        p.reasons.push_back("the database " + name + " is at " + st->version + (st->finished ? "" : " (unfinished)") +
                            ", was " + before + ": restore the backup into a new database and switch to it");
    }
    // Site SQL files the run meant to apply (db upgrade --site-sql, in step db-upgrade): content
    // changes like the optional steps', also when no hop ran (a run of site files only).
    const nlohmann::json &site = state.contains("site_sql") ? state["site_sql"] : nlohmann::json();
    if (site.is_object() && site.value("pending", 0) > 0 && attempted(state, step_id::db_upgrade) && !p.db_changed) {
        p.db_changed = true;
        p.reasons.push_back("step db-upgrade applied site SQL (" + std::to_string(site.value("pending", 0)) +
                            " file(s) from " + site.value("dir", "") + ") to " + name +
                            ": restore the backup into a new database and switch to it");
    }
    for (const char *id : {step_id::orphans, step_id::colors, step_id::wells})
        if (attempted(state, id) && !p.db_changed) {
            p.db_changed = true;
            p.reasons.push_back(std::string("step ") + id + " changed the content of " + name +
                                ": restore the backup into a new database and switch to it");
        }
    if (!p.db_changed)
        p.reasons.push_back("the database " + name + " is unchanged (" + st->version +
                            "): no restore, so no write made since the backup is lost");
}

} // namespace

std::string old_tree_now(const nlohmann::json &state)
{
    std::string dir = state["server"].value("dir", ""), old_tree = state["server"].value("old_tree", "");
    if (!dir.empty() && old_tree == dir) {
        struct stat st;
        if (lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode) && is_directory(dir + "-old"))
            return dir + "-old";
    }
    return old_tree;
}

RollbackPlan plan_rollback(const nlohmann::json &state, const Installation &m, const std::string &into)
{
    RollbackPlan p;
    p.has_backup = state["backup"].is_object() && !state["backup"].value("path", "").empty();
    std::string old_tree = old_tree_now(state);
    std::string old_now = resolved_path(old_tree);
    p.switched = !m.tree.empty() && m.tree != (old_now.empty() ? old_tree : old_now);
    if (p.switched)
        p.reasons.push_back(m.server_dir + " points to " + m.tree + ", not the old tree " + old_tree +
                            ": point it back (binaries rollback)");
    read_run_database(state, m, p);
    p.server_down = m.server != ServerRun::Running;
    bool change = p.switched || p.db_changed;
    if (change && m.server != ServerRun::Down)
        p.steps.push_back(new_step(rollback_step_id::stop, "stop the server", {"server", "stop"}));
    if (p.switched)
        p.steps.push_back(new_step(rollback_step_id::binaries_rollback, "point OMERO.server back to the old tree",
                                   {"binaries", "rollback", "--to", old_tree}));
    // Rolled back past a later run's rollback that gave another database back (run_database):
    // the old tree's config.xml names the database from before, so it is pointed at that one.
    std::string dbname = run_database(state);
    if (!p.db_changed && p.switched && dbname != state["database"].value("name", ""))
        p.steps.push_back(new_step(rollback_step_id::db_name, "set omero.db.name of the old tree to " + dbname + " (the database in use)",
                                   {}, {{"internal", true}}));
    if (p.db_changed)
        p.steps.push_back(new_step(rollback_step_id::restore, "restore the pre-upgrade backup into a new database and switch to it",
                                   {"restore", state["backup"].value("path", ""), "--into", into, "--switch"}));
    if (change || p.server_down) {
        if (!change)
            p.reasons.push_back("the server is not running: start the old server again");
        p.steps.push_back(new_step(rollback_step_id::start, "start the old server", {"server", "start"}));
        p.steps.push_back(new_step(rollback_step_id::status, "check that it runs", {"server", "status"}));
    }
    return p;
}

std::string previous_record(const std::string &state_path, const nlohmann::json &state)
{
    const auto &pr = state.value("previous_run", nlohmann::json());
    if (pr.is_object() && !pr.value("state_file", "").empty())
        return state_exists(pr.value("state_file", "")) ? pr.value("state_file", "") : "";
    // Older records: the kept files beside the state file (<state>.<run id>), the newest older one.
    std::string dir = dir_name(state_path), base = base_name(state_path) + ".", id = state.value("run_id", "");
    std::string best, best_id;
    for (const auto &n : dir_entries(dir).value_or(std::vector<std::string>{})) {
        if (n.rfind(base, 0) != 0 || n.size() <= base.size() || n.find(".lock") != std::string::npos ||
            n.find(".tmp") != std::string::npos)
            continue;
        std::string rid = n.substr(base.size());
        if (rid < id && rid > best_id && dir + "/" + n != state_path) {
            best_id = rid;
            best = dir + "/" + n;
        }
    }
    return best;
}

std::string run_database(const nlohmann::json &state)
{
    const auto &rb = state.value("rollback", nlohmann::json());
    if (rb.is_object() && !rb.value("database", "").empty())
        return rb.value("database", "");
    return state["database"].value("name", "");
}

std::string rollback_missing(const nlohmann::json &state, const RollbackPlan &p)
{
    std::string why;
    std::string bk = state["backup"].is_object() ? state["backup"].value("path", "") : "";
    if (p.db_changed && (bk.empty() || !path_exists(bk)))
        why = "its backup " + (bk.empty() ? std::string("(none recorded)") : bk) + " is gone";
    std::string old_tree = old_tree_now(state);
    if (p.switched && !is_directory(old_tree))
        why += (why.empty() ? "" : ", and ") + std::string("its old tree ") + old_tree + " is gone";
    return why;
}

namespace {

// Reached past a run rolled back (which gave back `db`, the state after `state`'s run): is the
// installation as that run left it? "" when so, else what differs.
std::string after_state_differs(const nlohmann::json &state, const Installation &m, const std::string &db)
{
    std::vector<std::string> d;
    std::string id = state.value("run_id", "");
    if (state.value("status", "") != "completed")
        d.push_back("run " + id + " is " + state.value("status", "") + ", not completed");
    std::string nt = state["server"]["new_tree"].is_string() ? state["server"].value("new_tree", "") : "";
    std::string nt_now = resolved_path(nt);
    if (nt.empty() || m.tree != (nt_now.empty() ? nt : nt_now))
        d.push_back(m.server_dir + " points to " + (m.tree.empty() ? std::string("nothing") : m.tree) +
                    ", but run " + id + " left it at " + (nt.empty() ? std::string("(no new tree recorded)") : nt));
    const auto &rd = state["database"];
    std::string left = rd.value("version_after", rd.value("target", ""));
    if (m.db_name != db)
        d.push_back(m.config_path + " names the database " + m.db_name + ", not " + db);
    else if (!m.db_read || !m.db.is_omero)
        d.push_back("the database " + db + " cannot be read" + (m.db_error.empty() ? "" : ": " + m.db_error));
    else if (m.db.version != left || !m.db.finished)
        d.push_back("the database " + db + " is at " + m.db.version + (m.db.finished ? "" : " (unfinished)") +
                    ", but run " + id + " left it at " + left);
    std::string w;
    for (const auto &x : d)
        w += (w.empty() ? "" : "; ") + x;
    return w;
}

} // namespace

RollbackTarget rollback_target(const std::string &state_path, const nlohmann::json &state, const Installation &m)
{
    RollbackTarget t;
    t.path = state_path;
    t.state = state;
    std::set<std::string> seen{state_path};
    std::string gave_back_at;  // when the newest rollback passed over finished
    for (;;) {
        const nlohmann::json &st = t.state;
        const nlohmann::json &rb = st.value("rollback", nlohmann::json());
        std::string status = st.value("status", ""), id = st.value("run_id", "");
        if (status == "rolled back") {
            // Undone already: the run before it is in effect again. The newest rollback (by its
            // finish) gave back the database now in use; one that was only passed over changed nothing.
            if (rb.is_object() && !rb.value("nothing_changed", false)) {
                t.crossed = true;
                std::string fin = rb.value("finished", "");
                if (t.gave_back_run.empty() || fin > gave_back_at) {
                    gave_back_at = fin;
                    t.gave_back_run = id;
                    bool restored = false;
                    for (const auto &s : rb.value("steps", nlohmann::json::array()))
                        restored = restored || s.value("id", "") == rollback_step_id::restore;
                    t.database = restored ? rb.value("into", "") : run_database(st);
                }
            }
        } else {
            if (rb.is_object() && rb.contains("steps")) {
                t.undoable = true;  // its rollback has begun: it is the one to finish
                return t;
            }
            bool backup = st["backup"].is_object() && !st["backup"].value("path", "").empty();
            if (backup) {
                nlohmann::json ps = st;
                if (t.crossed && !t.database.empty() && t.database != st["database"].value("name", ""))
                    ps["rollback"] = {{"database", t.database}};
                RollbackPlan p = plan_rollback(ps, m, "");
                if (p.switched || p.db_changed || t.crossed) {
                    t.undoable = true;
                    if (t.crossed) {
                        t.state = ps;
                        std::string d = after_state_differs(st, m, t.database.empty() ? run_database(st) : t.database);
                        if (!d.empty())
                            t.refusal = "run " + id + " is the last run still in effect (run " + t.gave_back_run +
                                        " after it was rolled back), but the installation is not as it left it: " + d +
                                        "; a rollback of it would not give back the state before it";
                    }
                    if (t.refusal.empty()) {
                        if (std::string w = rollback_missing(st, p); !w.empty())
                            t.refusal = "run " + id + " cannot be rolled back: " + w;
                    }
                    return t;
                }
            } else if (t.crossed) {
                t.why_none = "the run before it, " + id + ", made no backup";
            }
        }
        std::string next = status == "rolled back" && rb.is_object() && rb.value("nothing_changed", false) &&
                                   !rb.value("rolled_back_state", "").empty()
                               ? rb.value("rolled_back_state", "")
                               : previous_record(state_path, st);
        if (next.empty() || seen.count(next) || !state_exists(next)) {
            if (t.why_none.empty())
                t.why_none = "no run before run " + id + " is recorded";
            return t;
        }
        nlohmann::json prev;
        try {
            prev = load_state(next);
        } catch (const CommandError &e) {
            t.why_none = "the record " + next + " cannot be read: " + e.what();
            return t;
        }
        seen.insert(next);
        t.passed.emplace_back(t.path, t.state);
        t.path = next;
        t.state = prev;
    }
}

std::string unfinished_rollback_in_chain(const std::string &state_path, const nlohmann::json &state)
{
    std::string path = state_path;
    nlohmann::json st = state;
    std::set<std::string> seen{path};
    while (st.value("status", "") == "rolled back") {
        const auto &rb = st.value("rollback", nlohmann::json());
        std::string next = rb.is_object() && rb.value("nothing_changed", false) && !rb.value("rolled_back_state", "").empty()
                               ? rb.value("rolled_back_state", "")
                               : previous_record(state_path, st);
        if (next.empty() || seen.count(next) || !state_exists(next))
            return "";
        seen.insert(next);
        try {
            st = load_state(next);
        } catch (const CommandError &) {
            return "";
        }
        path = next;
    }
    const auto &rb = st.value("rollback", nlohmann::json());
    if (path != state_path && rb.is_object() && rb.contains("steps") && rb.value("status", "") != "completed")
        return "the rollback of run " + st.value("run_id", "") + " (" + path + ") has not finished";
    return "";
}

std::string backup_age(const nlohmann::json &state)
{
    if (!state["backup"].is_object())
        return "";
    std::string at = state["backup"].value("created_utc", "");
    std::string ended;
    for (const auto &s : state["steps"])
        if (s.value("id", "") == step_id::backup && s["ended"].is_string())
            ended = s.value("ended", "");
    if (ended.empty())
        return "";
    return hms(seconds_between(ended, iso_now())) + " old (taken " + ended + ")";
}

std::vector<std::string> advice(const nlohmann::json &state, const RollbackPlan &p)
{
    std::vector<std::string> a;
    std::string status = state.value("status", "");
    std::string resume = "continue: fix the cause shown above, then omero-upgrade run --resume";
    const auto &dt = state["downtime"];
    std::string stopped = dt.value("stopped_at", nlohmann::json()).is_string() ? dt.value("stopped_at", "") : "";
    if (status == "rolled back")
        return {"the run was rolled back: nothing to continue"};
    if (p.nothing()) {
        if (status != "completed")
            a.push_back(resume + " (nothing has changed yet: the server still runs the old tree on the unchanged "
                                 "database, so there is nothing of this run to roll back)");
        else
            a.push_back("nothing to roll back: the installation shows no change of this run");
        return a;
    }
    if (status != "completed")
        a.push_back(resume);
    // A completed run: not advice, only how it would be undone (nothing recommends it).
    std::string rb = std::string(status == "completed" ? "to undo this run: " : "roll back: ") + "omero-upgrade rollback";
    if (p.db_changed)
        rb += " restores the backup " + backup_age(state) + "; writes made after it" +
              (stopped.empty() ? "" : " (the server ran until " + stopped + ")") +
              (status == "completed" ? " and since the new server started" : "") + " are lost";
    else if (p.switched)
        rb += " points OMERO.server back and starts the old server; the database is unchanged, so nothing is lost";
    else
        rb += " only starts the old server again (nothing else changed)";
    a.push_back(rb);
    return a;
}

} // namespace ou::run
