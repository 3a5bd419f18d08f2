// omero-upgrade config upgrade-check off: turns off the server's upgrade-check notifications by
// setting omero.upgrades.url to an empty string through bin/omero config set (OMERO edits
// config.xml under its own lock), then reads config.xml back to confirm.
#include "omero_server.hpp"

namespace ou {

namespace {

struct UpgradeCheckOpts {
    std::string state;
    bool dry_run = false;
};

CommandRun setup_upgrade_check(CLI::App &sub)
{
    auto o = std::make_shared<UpgradeCheckOpts>();
    sub.add_option("state", o->state, "off")->required()->check(CLI::IsMember({"off"}));
    sub.add_flag("--dry-run", o->dry_run, "show what would be done, change nothing");
    return [o] {
        const std::string key = "omero.upgrades.url";
        Settings s = load_settings(true);
        require_omero_bin(s);
        nlohmann::json &res = out().result();
        res["key"] = key;
        res["dry_run"] = o->dry_run;
        auto it = s.properties.find(key);
        if (it != s.properties.end() && it->second.empty()) {
            res["changed"] = false;
            out().say("the upgrade check is already off (" + key + " is empty in profile " + s.profile + ")");
            return EXIT_OK;
        }
        std::string was = it == s.properties.end() ? "unset, OMERO's default" : "'" + it->second + "'";
        res["previous"] = was;
        if (o->dry_run) {
            out().say("would run: bin/omero config set " + key + " '' (now " + was + ")");
            return EXIT_OK;
        }
        omero_config_set(s, key, "");
        Settings after = load_settings(true);
        auto a = after.properties.find(key);
        if (a == after.properties.end() || !a->second.empty()) {
            out().error("bin/omero config set " + key + " '' ran, but " + after.config_path + " does not show it empty");
            return EXIT_PROBLEM;
        }
        res["changed"] = true;
        out().say("the upgrade check is off: " + key + " is empty (was " + was + "); it takes effect at the next start");
        return EXIT_OK;
    };
}

Register reg_upgrade_check({"config upgrade-check", "turn off the upgrade-check notifications (omero.upgrades.url)",
                            setup_upgrade_check});

} // namespace

} // namespace ou
