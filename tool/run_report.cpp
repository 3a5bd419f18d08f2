// See run_report.hpp.
#include "run_report.hpp"
#include "run_steps.hpp"

#include "installation.hpp"
#include "run_state.hpp"

#include <cstdio>
#include <optional>
#include <sstream>

namespace ou::run {

void collect_warnings(const nlohmann::json &state, std::vector<std::string> &w)
{
    for (const auto &s : state["steps"])
        for (const auto &x : s.value("warnings", nlohmann::json::array()))
            w.push_back(s.value("id", "") + ": " + x.get<std::string>());
}


std::string rollback_commands(const nlohmann::json &st, bool by_hand, const RollbackPlan *plan)
{
    // Only what changed (plan: as the installation shows it now); without a plan, all of it.
    bool sw = !plan || plan->switched, dbc = !plan || plan->db_changed;
    std::string sd = shell_quote(st["server"].value("dir", ""));
    std::string sf = shell_quote(st.value("state_file", ""));
    std::string bk = st["backup"].is_object() ? shell_quote(st["backup"].value("path", "")) : "<backup>";
    std::string into = shell_quote(st["rollback"].value("into", ""));
    // Where the old tree is now: a server directory that was a plain directory was moved to
    // <dir>-old by binaries install (its recorded path is the server directory itself).
    std::string old_tree = old_tree_now(st);
    std::string c = "omero-upgrade --server-dir " + sd + " rollback --state " + sf + "\n";
    if (!by_hand)
        return c;
    // The connection of the run (host, port, user), as the tool's own restore uses it.
    const auto &db = st["database"];
    std::string server;
    if (!db.value("host", "").empty())
        server += " -h " + shell_quote(db.value("host", ""));
    if (!db.value("port", "").empty())
        server += " -p " + shell_quote(db.value("port", ""));
    std::string conn = server;
    if (!db.value("user", "").empty())
        conn += " -U " + shell_quote(db.value("user", ""));
    // The dump is loaded as the new database's owner (as the tool's restore does): its CHECKs and
    // domains run their owner's functions with the loader's rights.
    std::string owner = shell_quote(db.value("omero_db_user", "omero"));
    c += "  # which does, step by step:\n";
    if (sw || dbc)
        c += "  omero-upgrade --server-dir " + sd + " server stop\n";
    if (sw)
        c += "  omero-upgrade --server-dir " + sd + " binaries rollback --to " + shell_quote(old_tree) + "\n";
    if (dbc)
        c += "  omero-upgrade --server-dir " + sd + " restore " + bk + " --into " + into + " --switch\n";
    c += "  omero-upgrade --server-dir " + sd + " server start\n";
    if (!sw && !dbc)
        return c;
    c += "  # or with PostgreSQL's and OMERO's own tools (the server stopped):\n";
    if (dbc)
        c += "  createdb" + conn + " -T template0 -E UTF8 -O " + owner + " " + into + " && pg_restore" + server + " -U " +
             owner + " --no-owner --exit-on-error -d " + into + " " + bk + "\n";
    if (sw && dbc)
        c += "  ln -sfn " + shell_quote(old_tree) + " " + sd + " && " + sd + "/bin/omero config set omero.db.name " + into +
             "\n";
    else if (sw)
        c += "  ln -sfn " + shell_quote(old_tree) + " " + sd +
             (run_database(st) != db.value("name", "")
                  ? " && " + sd + "/bin/omero config set omero.db.name " + shell_quote(run_database(st))
                  : std::string()) +
             "\n";
    else
        c += "  " + sd + "/bin/omero config set omero.db.name " + into + "\n";
    return c;
}

namespace {

// The versions as read back at the end of the run from the database the server uses (config.xml
// of the tree OMERO.server points to), never the plan's target; and where OMERO.server points.
void say_versions(const nlohmann::json &st, const std::string &status)
{
    const auto &db = st["database"];
    std::string name = db.value("name", ""), after = db.value("name_after", name);
    std::string line = "  database " + after + ": " + db.value("version_before", "");
    if (!db.value("version_after", "").empty()) {
        std::string v = db.value("version_after", "") + (db.value("finished_after", true) ? "" : " (unfinished)");
        line += status == "completed" ? " → " + v : ", now " + v + " (target " + db.value("target", "") + ")";
    } else {
        line += " → ? (target " + db.value("target", "") + "; not read back" +
                (db.contains("read_back_error") ? ": " + db.value("read_back_error", "") : "") + ")";
    }
    if (after != name)
        line += "; the run worked on " + name + ", but the server's config.xml now names " + after;
    out().say(line);
    // A run rolled back: where it pointed OMERO.server is history; say where it points now.
    std::string now_tree = status == "rolled back" ? resolved_path(st["server"].value("dir", "")) : "";
    out().say("  server   " + st["server"].value("dir", "") + " → " +
              (st["server"]["new_tree"].is_string() ? st["server"].value("new_tree", "") : "(not switched yet)") +
              (status == "rolled back" ? " until the rollback, now → " + (now_tree.empty() ? std::string("?") : now_tree)
                                       : "; old tree kept: " + old_tree_now(st)));
}

// One line per step (id, status, time, attempts), its errors, what it did and how to undo that
// step alone (run_steps.cpp).
void say_steps(const nlohmann::json &st, const std::string &status)
{
    double total = 0;
    for (const auto &s : st["steps"]) {
        char line[256];
        double secs = s["seconds"].is_number() ? s["seconds"].get<double>() : 0;
        total += secs;
        std::snprintf(line, sizeof line, "  %-18s %-11s %8s%s", s.value("id", "").c_str(),
                      s.value("status", "").c_str(), s["seconds"].is_number() ? hms(secs).c_str() : "-",
                      s.value("attempts", 0) > 1 ? ("  (" + std::to_string(s.value("attempts", 0)) + " attempts)").c_str()
                                                 : "");
        out().say(line);
        for (const auto &e : s.value("errors", nlohmann::json::array()))
            out().say("      error: " + e.get<std::string>());
        StepEffect fx = step_effect(st, s);
        if (!fx.did.empty())
            out().say("      did: " + fx.did +
                      (status == "rolled back" ? std::string(" (the run is rolled back)") : "\n      undo alone: " + fx.undo));
    }
    out().say("  steps took " + hms(total) + " in all");
    if (st["backup"].is_object())
        out().say("  backup   " + st["backup"].value("path", "") + "\n           sha256 " +
                  st["backup"].value("sha256", "") + ", " + human_bytes(st["backup"].value("size_bytes", 0ULL)) +
                  ", dbpatch " + st["backup"].value("dbpatch_version", ""));
}

void say_downtime(const nlohmann::json &st)
{
    const auto &dt = st["downtime"];
    auto dts = [&dt](const char *k) { return dt.value(k, nlohmann::json()).is_string() ? dt.value(k, "") : ""; };
    const nlohmann::json *stop = nullptr;
    for (const auto &s : st["steps"])
        if (s.value("id", "") == step_id::server_stop)
            stop = &s;
    std::string stop_status = stop ? stop->value("status", "") : "";
    if (dt.value("seconds", nlohmann::json()).is_number())
        out().say("  downtime " + hms(dt["seconds"].get<double>()) + " (server stopped " + dts("stopped_at") +
                  ", started " + dts("started_at") + "; measured from the start of the stop " + dts("stop_began") + ")");
    else if (!dts("stopped_at").empty())
        out().say("  downtime the server has been down since " + dts("stopped_at") +
                  (dts("stop_began").empty() ? "" : " (stop began " + dts("stop_began") + ")"));
    else if (stop_status == "failed") {
        const auto &r = stop->value("result", nlohmann::json());
        bool sessions = r.is_object() && !r.value("running", true);
        out().say(sessions ? "  downtime none yet: server-stop failed; bin/omero says the server is down but OMERO "
                             "sessions remain on the database, so it is not confirmed stopped"
                           : "  downtime none: server-stop failed, the server is still running");
    } else if (stop_status == "interrupted" || stop_status == "running")
        out().say("  downtime unknown: server-stop did not finish, the server may still be running "
                  "(omero-upgrade server status tells)");
}

// db-verify's verdict (state["schema"]).
void say_schema(const nlohmann::json &st)
{
    if (!st.contains("schema") || !st["schema"].is_object())
        return;
    const auto &v = st["schema"];
    std::string verdict = v.value("verdict", "");
    std::string ver = v["version"].is_string() ? v.value("version", "") : "its version";
    if (verdict == "conforms")
        out().say("  schema   conforms to a fresh " + ver + " (db verify: no difference)");
    else if (verdict == "differs") {
        std::string by;
        for (const char *c : {"missing", "changed", "extra"})
            if (v["by_change"].value(c, 0) > 0)
                by += (by.empty() ? "" : ", ") + std::to_string(v["by_change"].value(c, 0)) + " " + c;
        out().say("  schema   differs: " + std::to_string(v.value("differences", 0)) + " difference(s) from a fresh " +
                  ver + " (" + by + "), see " + v.value("command", "db verify"));
    } else
        out().say("  schema   not verified: " + v.value("reason", "") + "; see " + v.value("command", "db verify"));
}

// Which of "continue" and "roll back" fits, and the rollback of only what changed, as the
// installation shows it now (run_undo.hpp), never the whole restore-and-switch by default.
void say_rollback(const GlobalOptions &g, const nlohmann::json &st, const std::string &status,
                  std::optional<RollbackPlan> &plan, std::vector<std::string> &adv)
{
    try {
        plan = plan_rollback(st, read_installation(g, {true, st.value("state_file", "")}), st["rollback"].value("into", ""));
        adv = advice(st, *plan);
    } catch (const std::exception &e) {
        out().detail(std::string("could not read the installation for the rollback plan: ") + e.what());
    }
    if (plan && plan->nothing()) {
        out().say("To roll back: nothing of this run to roll back (" +
                  (plan->reasons.empty() ? std::string("nothing changed") : plan->reasons.back()) + ")");
    } else {
        out().say("To roll back:" + std::string(plan && !(plan->switched && plan->db_changed)
                                                    ? " (only what changed: " + std::string(plan->switched ? "the server tree" : "the database") + ")"
                                                    : ""));
        std::istringstream in(rollback_commands(st, true, plan ? &*plan : nullptr));
        std::string l;
        while (std::getline(in, l))
            out().say("  " + l);
    }
    if (status != "completed") {
        std::string age = backup_age(st);
        if (!age.empty())
            out().say("  backup age: " + age);
    }
    for (const auto &x : adv)  // a completed run's line is no advice ("to undo this run: …")
        out().say((status == "completed" ? "" : "advice: ") + x);
}

} // namespace

int print_report(const GlobalOptions &g, const nlohmann::json &st)
{
    std::string status = st.value("status", "");
    out().say("");
    out().say("Report of run " + st.value("run_id", "") + ": " + status);
    say_versions(st, status);
    say_steps(st, status);
    say_downtime(st);
    say_schema(st);
    std::vector<std::string> w;
    collect_warnings(st, w);
    if (!w.empty()) {
        out().say("  warnings:");
        for (const auto &x : w)
            out().say("    " + x);
    }
    out().say("  log      " + st.value("log_file", ""));
    out().say("  state    " + st.value("state_file", ""));
    std::optional<RollbackPlan> plan;
    std::vector<std::string> adv;
    if (st["backup"].is_object() && status != "rolled back")
        say_rollback(g, st, status, plan, adv);
    if (status != "completed" && status != "rolled back")
        out().say("To continue: omero-upgrade --server-dir " + shell_quote(st["server"].value("dir", "")) +
                  " run --resume --state " + shell_quote(st.value("state_file", "")));
    nlohmann::json r = st;
    r["rollback_commands"] = plan && plan->nothing() ? "" : rollback_commands(st, true, plan ? &*plan : nullptr);
    r["advice"] = adv;
    if (plan)
        r["rollback_plan"] = {{"switched", plan->switched}, {"db_changed", plan->db_changed},
                              {"nothing", plan->nothing()}, {"reasons", plan->reasons}};
    r["warnings_all"] = w;
    out().result() = r;
    return status == "completed" ? EXIT_OK : EXIT_PROBLEM;
}

} // namespace ou::run
