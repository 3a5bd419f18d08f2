// The history of changes (omero_upgrade.history, extension/sql/70_history.sql): the extension's
// own runs (orphan deletes and restores, colour runs, moves to wells) record themselves in the
// caller's transaction. Who: the session user (the table's default); the OS user and host the
// client gave in the settings omero_upgrade.os_user and omero_upgrade.host (omero-upgrade sets
// them), else no OS user and the client's address. Nothing is recorded when the installed
// extension predates the table (a 1.1 database with this library: ALTER EXTENSION … UPDATE).
#pragma once

#include "spi.hpp"

#include <string>

namespace ou {

// details: a JSON object's text (e.g. the run's row as to_jsonb gives it).
void record_history(spi::Session &spi, const std::string &kind, const std::string &what, const std::string &details);

} // namespace ou
