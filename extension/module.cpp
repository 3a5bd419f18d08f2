// The loadable module: PG_MODULE_MAGIC and the error raising half of the C++ boundary.
#include "cpp_wrapper.hpp"

extern "C" {
PG_MODULE_MAGIC;
}

namespace ou::detail {

// Called by boundary() once every C++ object of the function body is gone.
void raise(ErrorData *pg, int code, char *msg, char *detail, char *hint)
{
    if (pg)
        ReThrowError(pg);
    // Move the malloc'd texts into palloc'd memory first, so nothing leaks when ereport jumps.
    char *m = pstrdup(msg ? msg : "omero_upgrade error");
    char *d = detail ? pstrdup(detail) : nullptr;
    char *h = hint ? pstrdup(hint) : nullptr;
    free(msg);
    free(detail);
    free(hint);
    ereport(ERROR, (errcode(code), errmsg("%s", m), d ? errdetail("%s", d) : 0, h ? errhint("%s", h) : 0));
    pg_unreachable();
}

} // namespace ou::detail
