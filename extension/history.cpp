// See history.hpp.
#include "history.hpp"


namespace ou {

namespace {

// Every name qualified; the settings are read with missing_ok, an empty one counts as unset.
const char *const k_insert =
    "INSERT INTO omero_upgrade.history (os_user, host, kind, what, details) VALUES ("
    " CASE WHEN pg_catalog.current_setting('omero_upgrade.os_user'::pg_catalog.text, true)"
    "           OPERATOR(pg_catalog.<>) ''::pg_catalog.text"
    "      THEN pg_catalog.current_setting('omero_upgrade.os_user'::pg_catalog.text, true) END,"
    " COALESCE(CASE WHEN pg_catalog.current_setting('omero_upgrade.host'::pg_catalog.text, true)"
    "                    OPERATOR(pg_catalog.<>) ''::pg_catalog.text"
    "               THEN pg_catalog.current_setting('omero_upgrade.host'::pg_catalog.text, true) END,"
    "          pg_catalog.host(pg_catalog.inet_client_addr()), 'local'::pg_catalog.text),"
    " $1, $2, $3::pg_catalog.jsonb)";

} // namespace

void record_history(spi::Session &spi, const std::string &kind, const std::string &what, const std::string &details)
{
    spi::Value have = spi.scalar("SELECT pg_catalog.to_regclass('omero_upgrade.history'::pg_catalog.text)::pg_catalog.text");
    if (!have)
        return;
    spi.exec(k_insert, {spi::text(kind), spi::text(what), spi::text(details.empty() ? "{}" : details)});
}

} // namespace ou
