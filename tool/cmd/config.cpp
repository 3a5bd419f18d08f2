// omero-upgrade config upgrade-check off|on: off turns off the server's upgrade-check notifications by
// setting omero.upgrades.url to an empty string through bin/omero config set (OMERO edits
// config.xml under its own lock), then reads config.xml back to confirm; it records the value it
// replaced beside the server directory, and `on` puts that back (or removes the key: OMERO's default).
#include "commands.hpp"
#include "fsutil.hpp"
#include "installation.hpp"
#include "omero_server.hpp"

#include <unistd.h>

namespace ou {

namespace {

struct UpgradeCheckOpts {
    std::string state;
    bool dry_run = false;
};

// Where `off` records the value it replaced, for `on`: beside the server directory (as the run's
// state file), so that it survives a swap of the server tree; 0600.
std::string record_path(const GlobalOptions &g)
{
    return dir_name(given_server_dir(g)) + "/.omero-upgrade-upgrade-check.json";
}

void add_config_upgrade_check_options(CLI::App &sub, UpgradeCheckOpts &o)
{
    sub.add_option("state", o.state, "off, or on (restores the value off replaced)")->required()->check(CLI::IsMember({"off", "on"}));
    sub.add_flag("--dry-run", o.dry_run, "show what would be done, change nothing");
}

int run_config_upgrade_check(const UpgradeCheckOpts &o, Context &ctx)
{
    const std::string key = "omero.upgrades.url";
    Settings &s = ctx.settings();
    ctx.require_omero_bin();
    nlohmann::json &res = out().result();
    res["key"] = key;
    res["state"] = o.state;
    res["dry_run"] = o.dry_run;
    auto it = s.properties.find(key);
    const std::string rec_path = record_path(ctx.global());
    res["record"] = rec_path;
    if (o.state == "on") {
        if (it == s.properties.end() || !it->second.empty()) {
            res["changed"] = false;
            out().say("the upgrade check is already on (" + key + " is " +
                      (it == s.properties.end() ? std::string("unset, OMERO's default") : "'" + it->second + "'") + ")");
            return EXIT_OK;
        }
        std::string text;
        nlohmann::json rec;
        if (read_file(rec_path, text)) {
            rec = parse_stored_json(text);
            if (rec.is_discarded() || !rec.is_object() || rec.value("key", "") != key)
                throw CommandError(rec_path + " is not a record of config upgrade-check off",
                                   "remove it, then run config upgrade-check on again (it then removes " + key +
                                       ", OMERO's default)");
        }
        bool had = rec.is_object() && rec.value("previous_set", false);
        std::string prev = rec.is_object() ? rec.value("previous", "") : "";
        std::string what = had ? "'" + prev + "' (recorded by config upgrade-check off)"
                               : rec.is_object() ? std::string("unset, OMERO's default (recorded by config upgrade-check off)")
                                                 : std::string("unset, OMERO's default (nothing recorded)");
        res["restores"] = had ? nlohmann::json(prev) : nlohmann::json(nullptr);
        if (o.dry_run) {
            out().say("would run: bin/omero config set " + key + (had ? " " + shell_quote(prev) : std::string()) + " (restoring " +
                      what + ")");
            return EXIT_OK;
        }
        if (had)
            omero_config_set(s, key, prev);
        else
            omero_config_unset(s, key);
        Settings after = ctx.fresh_settings(true);
        auto a = after.properties.find(key);
        if (had ? (a == after.properties.end() || a->second != prev) : a != after.properties.end()) {
            out().error("bin/omero config set " + key + " ran, but " + after.config_path + " does not show " + what);
            return EXIT_PROBLEM;
        }
        if (rec.is_object())
            unlink(rec_path.c_str());
        res["changed"] = true;
        out().say("the upgrade check is on: " + key + " is " + what + "; it takes effect at the next start");
        return EXIT_OK;
    }
    if (it != s.properties.end() && it->second.empty()) {
        res["changed"] = false;
        out().say("the upgrade check is already off (" + key + " is empty in profile " + s.profile + ")");
        return EXIT_OK;
    }
    std::string was = it == s.properties.end() ? "unset, OMERO's default" : "'" + it->second + "'";
    res["previous"] = was;
    if (o.dry_run) {
        out().say("would run: bin/omero config set " + key + " '' (now " + was + ")");
        return EXIT_OK;
    }
    // Recorded first: a crash after the change still leaves what `on` needs.
    nlohmann::json rec = {{"key", key},
                          {"previous_set", it != s.properties.end()},
                          {"previous", it == s.properties.end() ? std::string() : it->second},
                          {"profile", s.profile},
                          {"config", s.config_path},
                          {"recorded_utc", utc_timestamp("%Y-%m-%dT%H:%M:%SZ")}};
    write_file_atomic(rec_path, stored_json_text(rec, 2) + "\n", true, 0600);
    omero_config_set(s, key, "");
    Settings after = ctx.fresh_settings(true);
    auto a = after.properties.find(key);
    if (a == after.properties.end() || !a->second.empty()) {
        out().error("bin/omero config set " + key + " '' ran, but " + after.config_path + " does not show it empty");
        return EXIT_PROBLEM;
    }
    res["changed"] = true;
    out().say("the upgrade check is off: " + key + " is empty (was " + was + "); it takes effect at the next start");
    out().detail("recorded the previous value in " + rec_path + " (config upgrade-check on restores it)");
    return EXIT_OK;
}

} // namespace

CommandRun setup_config_upgrade_check(CLI::App &sub)
{
    return command_setup<UpgradeCheckOpts, add_config_upgrade_check_options, run_config_upgrade_check>(sub);
}

} // namespace ou
