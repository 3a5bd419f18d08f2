// SQL entry points for OMERO database versions and upgrade paths (the facts: common/omero_versions.hpp).
#include "omero.hpp"
#include "srf.hpp"

extern "C" {
#include "utils/builtins.h"
}


namespace ou {

std::string resolve_target(FunctionCallInfo fcinfo, int argno)
{
    if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
        return newest_known_version;
    text *t = PG_GETARG_TEXT_PP(argno);
    std::string target(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
    if (!is_known_version(target)) {
        std::string known;
        for (const auto &k : known_versions())
            known += (known.empty() ? "" : ", ") + k;
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown OMERO database version \"" + target + "\"",
                    "Known versions: " + known + ".", "Versions are written like OMERO5.4__0.");
    }
    return target;
}

} // namespace ou

using namespace ou;

OU_FUNCTION(omero_db_version)
{
    return boundary([&] {
        std::string v;
        {
            spi::Session spi;
            v = require_db_version(spi);
        }
        const char *c = v.c_str();
        return pg_guard([c] { return PointerGetDatum(cstring_to_text(c)); });
    });
}

OU_FUNCTION(omero_upgrade_path)
{
    return boundary([&] {
        std::string target = resolve_target(fcinfo, 0);
        std::string current;
        {
            spi::Session spi;
            current = require_db_version(spi);
        }
        auto path = upgrade_path(current, target);
        if (!path)
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "no upgrade path from " + current + " to " + target,
                        is_known_version(current) ? "No chain of official upgrade scripts leads there."
                                                  : "The database version " + current + " is not one this extension knows.",
                        "Pick a newer target, or restore the database to a version that can be upgraded.");
        srf::Writer out(fcinfo);
        int step = 1;
        for (const Hop &h : *path)
            out.put({srf::Cell::int4(step++), srf::Cell::of(h.from), srf::Cell::of(h.to), srf::Cell::of(h.script()),
                     h.has_precheck ? srf::Cell::of(h.precheck()) : srf::Cell::null(),
                     srf::Cell::int4(h.pg_prerequisite)});
        return out.done();
    });
}
