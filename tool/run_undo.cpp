// See run_undo.hpp.
#include "run_undo.hpp"

#include "run_state.hpp"

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
    std::string name = db.value("name", ""), before = db.value("version_before", "");
    std::optional<OmeroDbState> st;
    if (m.db_read && m.db_name == name)
        st = m.db;
    else
        st = read_database(load_settings(false), name);
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
    for (const char *id : {"orphans", "colors", "wells"})
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

RollbackPlan plan_rollback(const nlohmann::json &state, const Installation &m, const std::string &into)
{
    RollbackPlan p;
    p.has_backup = state["backup"].is_object() && !state["backup"].value("path", "").empty();
    std::string old_tree = state["server"].value("old_tree", "");
    std::string old_now = resolved_path(old_tree);
    p.switched = !m.tree.empty() && m.tree != (old_now.empty() ? old_tree : old_now);
    if (p.switched)
        p.reasons.push_back(m.server_dir + " points to " + m.tree + ", not the old tree " + old_tree +
                            ": point it back (binaries rollback)");
    read_run_database(state, m, p);
    p.server_down = m.server != ServerRun::Running;
    bool change = p.switched || p.db_changed;
    if (change && m.server != ServerRun::Down)
        p.steps.push_back(new_step("stop", "stop the server", {"server", "stop"}));
    if (p.switched)
        p.steps.push_back(new_step("binaries-rollback", "point OMERO.server back to the old tree", {"binaries", "rollback"}));
    if (p.db_changed)
        p.steps.push_back(new_step("restore", "restore the pre-upgrade backup into a new database and switch to it",
                                   {"restore", state["backup"].value("path", ""), "--into", into, "--switch"}));
    if (change || p.server_down) {
        if (!change)
            p.reasons.push_back("the server is not running: start the old server again");
        p.steps.push_back(new_step("start", "start the old server", {"server", "start"}));
        p.steps.push_back(new_step("status", "check that it runs", {"server", "status"}));
    }
    return p;
}

std::string backup_age(const nlohmann::json &state)
{
    if (!state["backup"].is_object())
        return "";
    std::string at = state["backup"].value("created_utc", "");
    std::string ended;
    for (const auto &s : state["steps"])
        if (s.value("id", "") == "backup" && s["ended"].is_string())
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
                                 "database, so there is nothing to roll back)");
        else
            a.push_back("nothing to roll back: the installation shows no change of this run");
        return a;
    }
    if (status != "completed")
        a.push_back(resume);
    std::string rb = "roll back: omero-upgrade rollback";
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
