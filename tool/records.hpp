// What the tool records about its own changes outside the database (site SQL steps, the history
// when the extension is not installed): who runs it, and private JSON files (0600 whatever the
// umask, written atomically under an flock of FILE.lock).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace ou {

// The operating-system user running the tool (its effective uid's name, else "uid N").
std::string os_user_name();
// This machine's host name.
std::string host_name();

// Reads FILE (null when it does not exist), lets update change it, writes it back atomically
// (temp file 0600 beside it, fsync, rename, fsync of the directory), all under an exclusive flock
// of FILE.lock. Throws CommandError when the file exists but is not JSON of kind `kind`, or
// cannot be written. update returns false to write nothing.
void update_private_json(const std::string &file, const std::string &kind,
                         const std::function<bool(nlohmann::json &)> &update);
// Reads FILE (null when it does not exist); throws CommandError when it is not JSON of `kind`.
nlohmann::json read_private_json(const std::string &file, const std::string &kind);

} // namespace ou
