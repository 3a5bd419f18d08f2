// Shape colours, ARGB <-> RGBA: the two formulas, the request and the report of a conversion,
// and the SQL entry points (see colors.hpp for the phases).
#include "colors.hpp"

#include "color_journal.hpp"
#include "colors_parallel.hpp"
#include "omero.hpp"
#include "srf.hpp"

#include <algorithm>

namespace ou::colors {

int32_t argb_to_rgba(int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint32_t alpha = u >> 24;
    if (alpha == 0)  // OMERO's rule: a transparent ARGB colour becomes opaque
        alpha = 255;
    return (int32_t)((u << 8) | alpha);
}

int32_t rgba_to_argb(int32_t v)
{
    uint32_t u = (uint32_t)v;
    return (int32_t)((u << 24) | (u >> 8));
}

void check_direction(const std::string &direction)
{
    if (direction != "argb_to_rgba" && direction != "rgba_to_argb")
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown direction \"" + direction + "\"",
                    "The directions are argb_to_rgba (what the OMERO 5.3 upgrade needs) and rgba_to_argb (its "
                    "reverse).",
                    "Use 'argb_to_rgba' or 'rgba_to_argb'.");
}

std::string opposite(const std::string &direction)
{
    return direction == "argb_to_rgba" ? "rgba_to_argb" : "argb_to_rgba";
}

void Summary::add(const Summary &b)
{
    selected += b.selected;
    converted += b.converted;
    restored += b.restored;
    already += b.already;
    changed += b.changed;
    purged += b.purged;
    raced += b.raced;
    newer += b.newer;
    for (const auto &s : b.sample)
        if (sample.size() < kSample)
            sample.push_back(s);
    for (int64_t id : b.changed_ids)
        if (changed_ids.size() < kSample)
            changed_ids.push_back(id);
}

Names names_for(spi::Session &spi, const std::string &direction)
{
    const std::string ext = extension_schema(spi);
    auto formula = [&](const std::string &d) {
        return ext + (d == "argb_to_rgba" ? ".omero_argb_to_rgba" : ".omero_rgba_to_argb");
    };
    return Names{omero_name(spi, "shape"), omero_name(spi, "roi"), omero_name(spi, "image"), formula(direction),
                 formula(opposite(direction))};
}

std::vector<std::string> split_json_array(const std::string &json)
{
    // jsonb_agg text of flat objects: split at the top level "}, {".
    std::vector<std::string> out;
    int depth = 0;
    size_t start = std::string::npos;
    for (size_t i = 0; i < json.size(); i++) {
        char c = json[i];
        if (c == '{') {
            if (depth++ == 0)
                start = i;
        } else if (c == '}') {
            if (--depth == 0 && start != std::string::npos)
                out.push_back(json.substr(start, i - start + 1));
        }
    }
    return out;
}

Ids parse_id_array(const std::string &s)
{
    Ids ids;
    std::string cur;
    for (char c : s) {
        if ((c >= '0' && c <= '9') || c == '-')
            cur.push_back(c);
        else if (!cur.empty()) {
            ids.push_back(std::stoll(cur));
            cur.clear();
        }
    }
    if (!cur.empty())
        ids.push_back(std::stoll(cur));
    return ids;
}

namespace {

std::string join(const std::vector<int64_t> &ids)
{
    std::string s;
    for (size_t i = 0; i < ids.size(); i++)
        s += (i ? "," : "") + std::to_string(ids[i]);
    return s;
}

std::string report_message(const char *what, const std::string &direction, const Summary &s, bool dry_run)
{
    const std::string w = what;
    if (!dry_run && s.converted == 0 && s.restored == 0 && s.already == s.selected && s.selected > 0)
        return w + ": nothing to do: all " + std::to_string(s.selected) + " selected shapes are already converted " +
               direction;
    if (s.selected == 0 && s.newer > 0)
        return w + ": nothing to do: no shape selected but newer ones";
    if (s.selected == 0)
        return w + ": nothing to do: no shape selected";
    return w + ": " + direction + (dry_run ? " (dry run, nothing changed)" : "") + ": " +
           std::to_string(s.selected) + " shapes selected, " + std::to_string(s.converted) +
           (dry_run ? " to convert, " : " converted, ") + std::to_string(s.restored) +
           (dry_run ? " to restore from the journal, " : " restored from the journal, ") + std::to_string(s.already) +
           " already converted";
}

std::string report_detail(const std::string &direction, const Summary &s, bool dry_run)
{
    std::string detail;
    if (s.changed)
        detail += std::to_string(s.changed) + " shape(s) were changed by OMERO after their conversion and are left "
                  "as they are (ids " + join(s.changed_ids) + (s.changed > (int64_t)s.changed_ids.size() ? ",…" : "") +
                  "). ";
    if (s.purged)
        detail += std::to_string(s.purged) + " shape(s) cannot be restored: their originals were purged from the "
                  "journal. ";
    if (s.raced)
        detail += std::to_string(s.raced) + " shape(s) changed while being converted and are still pending: run "
                  "the same conversion again. ";
    if (s.newer)
        detail += std::to_string(s.newer) + " shape(s) newer than the completed conversion were left alone: they "
                  "were created after it; convert them explicitly by shape ids if they really are " +
                  std::string(direction == "argb_to_rgba" ? "ARGB" : "RGBA") + ". ";
    if (dry_run && !s.sample.empty()) {
        // What the DBA checks before running it for real: shape ids with [before, after] colours.
        detail += "Sample (up to " + std::to_string(Summary::kSample) + " shapes, [before, after]): ";
        for (size_t i = 0; i < s.sample.size(); i++)
            detail += (i ? "; " : "") + s.sample[i];
        detail += ". ";
    }
    return detail;
}

} // namespace

void report(const char *what, const std::string &direction, const Summary &s, bool dry_run)
{
    const bool warn = s.changed || s.purged || s.raced;
    ou::report(warn ? WARNING : NOTICE, report_message(what, direction, s, dry_run), report_detail(direction, s, dry_run));
}

namespace {

// direction, roi_ids, image_ids, shape_ids, batch_size, dry_run[, method]: the arguments of
// omero_colors_convert and omero_colors_convert_tx (with_scope), or direction, dry_run
// (omero_colors_rewrite).
Request read_request(const Args &args, bool with_scope)
{
    Request r;
    r.direction = args.text(0, "direction", "Use 'argb_to_rgba' (OMERO 5.3 upgrade) or 'rgba_to_argb' (its reverse).");
    check_direction(r.direction);
    const std::string dry_hint = "Pass true to see what would be converted, false to convert.";
    if (!with_scope) {
        r.dry_run = args.flag(1, "dry_run", dry_hint);
        return r;
    }
    std::optional<Ids> *lists[3] = {&r.roi_ids, &r.image_ids, &r.shape_ids};
    static const char *const names[3] = {"roi_ids", "image_ids", "shape_ids"};
    for (int i = 0; i < 3; i++) {
        *lists[i] = args.int8_array(1 + i, names[i], "ids");
        if (*lists[i] && (*lists[i])->empty())
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string(names[i]) + " is an empty array",
                        "An empty list would select no shape at all.",
                        "Pass NULL (or leave it out) to mean no restriction by " + std::string(names[i]) +
                            "; pass every id list as NULL to convert all shapes.");
    }
    r.batch_size = args.batch_size(4, "shapes", 50000);
    r.dry_run = args.flag(5, "dry_run", dry_hint);
    return r;
}

// The procedure's method: 'auto' (the default) rewrites the table in one pass when every shape
// is asked for, no other session is connected and nothing is journaled, else goes by batches;
// 'batch' always by batches; 'rewrite' as omero_colors_rewrite (refused unless it applies).
std::string read_method(const Args &args, const Request &r)
{
    const char *hint = "Use 'auto' (the default), 'batch' or 'rewrite'.";
    std::string method = args.text(6, "method", hint);
    if (method != "auto" && method != "batch" && method != "rewrite")
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown method \"" + method + "\"", "", hint);
    if (method == "rewrite" && !r.all())
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "method 'rewrite' converts every shape", "",
                    "Leave roi_ids, image_ids and shape_ids out, or use method 'batch' or 'auto'.");
    return method;
}

// The procedure's jobs: 1 (the default) converts every batch in this session; N > 1 in N
// background workers at once (colors_parallel.hpp). A 1.2 declaration has no such argument.
int32_t read_jobs(const Args &args)
{
    const std::string hint = "Pass 1 (the default) to convert in this session, or 2 to " + std::to_string(kMaxJobs) +
                             " background workers converting batches at once (at most max_worker_processes free).";
    if (!args.declared(7))
        return 1;
    int32_t jobs = args.int4(7, "jobs", hint);
    if (jobs < 1 || jobs > kMaxJobs)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "jobs out of range: " + std::to_string(jobs), "", hint);
    return jobs;
}

// Under 'auto', for every shape: why not the one-pass rewrite ("" when it applies).
std::string why_by_batches(spi::Session &spi, Journal &jr)
{
    int64_t others = other_sessions(spi).count;
    if (others > 0)
        return std::to_string(others) + " other session(s) are connected";
    if (!jr.empty())
        return "the journal holds earlier conversions";
    return "";
}

// CALL omero_colors_convert (commit per batch) and omero_colors_convert_tx: the rewrite when the
// method asks for it (or 'auto' finds it applies), else by batches.
Summary convert(const Args &args, bool procedure)
{
    Request r = read_request(args, true);
    if (procedure) {
        r.method = read_method(args, r);
        r.jobs = read_jobs(args);
    }
    const bool nonatomic = procedure && args.nonatomic_call();
    if (procedure && !nonatomic && !r.dry_run)
        throw Error(ERRCODE_ACTIVE_SQL_TRANSACTION,
                    "CALL omero_colors_convert commits per batch and cannot run inside a transaction block", "",
                    "CALL it on its own (autocommit), or use SELECT * FROM omero_colors_convert_tx(...) to "
                    "convert inside your transaction.");
    spi::Session spi(nonatomic);
    Journal jr(spi);
    jr.require_omero();
    const Names n = names_for(spi, r.direction);
    const bool whole = r.all() && !r.dry_run;
    std::string by_batches;
    if (whole && r.method == "auto" && !(by_batches = why_by_batches(spi, jr)).empty())
        notice("omero_colors_convert: converting by batches, not by the one-pass rewrite: " + by_batches);
    if (!whole || r.method == "batch" || (r.method == "auto" && !by_batches.empty()))
        return convert_by_batches(spi, jr, n, r, procedure, nonatomic);
    if (r.method == "auto")
        notice("omero_colors_convert: no other session is connected and nothing is journaled: converting every "
               "shape by the one-pass rewrite (an exclusive lock on shape until it is done; method => 'batch' "
               "converts by batches instead)");
    check_rewrite(spi, jr, n, r.direction, false, r.method == "auto");
    Summary sum = rewrite_all(spi, jr, n, r);
    if (nonatomic)
        spi.commit();
    report("omero_colors_convert", r.direction, sum, false);
    return sum;
}

// The fast path: one journal insert and one table rewrite, in one transaction.
Summary rewrite(const Args &args)
{
    Request r = read_request(args, false);
    spi::Session spi;
    Journal jr(spi);
    jr.require_omero();
    const Names n = names_for(spi, r.direction);
    check_rewrite(spi, jr, n, r.direction, r.dry_run, false);
    Summary sum = rewrite_all(spi, jr, n, r);
    report("omero_colors_rewrite", r.direction, sum, r.dry_run);
    return sum;
}

Datum summary_row(FunctionCallInfo fcinfo, const std::string &direction, bool dry_run, const Summary &s)
{
    std::string sample = "[";
    for (size_t i = 0; i < s.sample.size(); i++)
        sample += (i ? ", " : "") + s.sample[i];
    sample += "]";
    srf::Writer out(fcinfo);
    using srf::Cell;
    out.put({s.run_id ? Cell::int8(s.run_id) : Cell::null(), Cell::of(direction), Cell::boolean(dry_run),
             Cell::int8(s.selected), Cell::int8(s.converted), Cell::int8(s.restored), Cell::int8(s.already),
             Cell::int8(s.changed), Cell::int8(s.purged), Cell::int8(s.raced), Cell::jsonb(sample)});
    return out.done();
}

} // namespace
} // namespace ou::colors

using namespace ou;

OU_FUNCTION(omero_argb_to_rgba)
{
    return Int32GetDatum(colors::argb_to_rgba(PG_GETARG_INT32(0)));
}

OU_FUNCTION(omero_rgba_to_argb)
{
    return Int32GetDatum(colors::rgba_to_argb(PG_GETARG_INT32(0)));
}

OU_FUNCTION(omero_colors_convert)
{
    return boundary([&] {
        colors::convert(Args(fcinfo), true);
        PG_RETURN_VOID();
    });
}

OU_FUNCTION(omero_colors_convert_tx)
{
    return boundary([&] {
        Args args(fcinfo);
        colors::Summary s = colors::convert(args, false);
        return colors::summary_row(fcinfo, args.text(0, "direction", ""), args.flag(5, "dry_run", ""), s);
    });
}

OU_FUNCTION(omero_colors_rewrite)
{
    return boundary([&] {
        Args args(fcinfo);
        colors::Summary s = colors::rewrite(args);
        return colors::summary_row(fcinfo, args.text(0, "direction", ""), args.flag(1, "dry_run", ""), s);
    });
}
