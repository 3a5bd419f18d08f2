// The batch engine of the colour conversion (CALL omero_colors_convert, omero_colors_convert_tx):
// a run row, then one statement per batch (by primary-key range for all shapes, by listed ids for
// a subset, or one statement for a ROI subset that fits in a batch), each under the journal lock,
// each committed in the procedure; progress NOTICEs; the run finished and reported.
#include "colors_batch.hpp"
#include "color_journal.hpp"
#include "colors_parallel.hpp"
#include "colors_plan.hpp"
#include "omero_db.hpp"
#include "progress.hpp"

#include <algorithm>
#include <utility>

namespace ou::colors {
namespace {

// Planner settings for one of our statements, transaction-local, put back after it (an error
// aborts the transaction, which puts them back too). The names are ours, never user text.
using Settings = std::vector<std::pair<std::string, std::string>>;
template <class F>
auto with_settings(spi::Session &spi, const Settings &set, F &&f)
{
    std::vector<std::string> old;
    for (const auto &[name, value] : set) {
        old.push_back(spi.scalar("SELECT pg_catalog.current_setting($1)", {spi::text(name)}, true).value_or(""));
        spi.exec("SELECT pg_catalog.set_config($1, $2, true)", {spi::text(name), spi::text(value)});
    }
    auto r = f();
    for (size_t i = 0; i < set.size(); i++)
        spi.exec("SELECT pg_catalog.set_config($1, $2, true)", {spi::text(set[i].first), spi::text(old[i])});
    return r;
}
// Every batch statement: no JIT (compiling a plan per batch costs more than it saves).
const Settings kBatchSettings = {{"jit", "off"}};
// A subset's statements: never a scan of the whole table (the planner, seeing ~1% of a big table
// scattered over many pages, would rather read it all, in parallel), so that their cost follows
// the subset's size.
const Settings kSubsetSettings = {{"jit", "off"}, {"enable_seqscan", "off"}};
// One statement for the whole subset (scope_sql): the planner would rather hash-join the ~1% of
// shapes against a scan of the whole table; the nested loop over the primary key is what keeps it
// proportional to the subset and reads each page once.
const Settings kScopeSettings = {{"jit", "off"}, {"enable_seqscan", "off"}, {"enable_hashjoin", "off"},
                                 {"enable_mergejoin", "off"}};

Summary read_batch_result(const spi::Result &r, bool dry_run)
{
    Summary s;
    s.selected = r.int64(0, "selected");
    s.newer = r.int64(0, "newer");
    s.already = r.int64(0, "already");
    s.changed = r.int64(0, "changed");
    s.purged = r.int64(0, "purged");
    int64_t to_convert = r.int64(0, "to_convert"), to_restore = r.int64(0, "to_restore");
    if (dry_run) {
        s.converted = to_convert;
        s.restored = to_restore;
    } else {
        s.converted = r.int64(0, "converted");
        s.restored = r.int64(0, "restored");
        s.raced = to_convert + to_restore - s.converted - s.restored;
    }
    if (auto v = r.get(0, "sample"))
        s.sample = split_json_array(*v);
    if (auto v = r.get(0, "changed_ids"))
        s.changed_ids = parse_id_array(*v);
    return s;
}

// The rows a conversion-only statement converted: selected minus converted raced.
Summary read_convert_result(const spi::Result &r, int64_t selected)
{
    Summary s;
    s.selected = selected;
    s.converted = r.int64(0, "converted");
    s.raced = selected - s.converted;
    if (auto v = r.get(0, "sample"))
        s.sample = split_json_array(*v);
    return s;
}

// The statements that change shapes run as OMERO's code (its triggers on shape); a dry run reads.
spi::Result run_statement(spi::Session &spi, bool dry_run, const std::string &sql, const std::vector<spi::Param> &p)
{
    if (dry_run)
        return spi.query(sql, p);
    return with_omero_code(spi, [&] { return spi.query(sql, p); });
}

} // namespace

BatchStatements::BatchStatements(const Names &n, bool all, bool dry_run)
    : all_(all), dry_run_(dry_run), batch_sql_(batch_sql(n, all ? Selection::Range : Selection::List, dry_run)),
      lean_sql_(lean_sql(n, all ? Selection::Range : Selection::List))
{
}

// The lean way converts every shape of the batch: only for a batch no journal chunk overlaps, and
// not for one that may hold newer shapes.
Summary BatchStatements::convert(spi::Session &spi, Journal &jr, const std::string &direction, int64_t run_id,
                                 std::optional<int64_t> covered, const Batch &b, int32_t want) const
{
    const spi::Param ids = spi::int8_array(b.ids);
    return with_settings(spi, all_ ? kBatchSettings : kSubsetSettings, [&] {
        if (!dry_run_ && (!covered || b.hi <= *covered) && !jr.overlaps(b.lo, b.hi))
            return read_convert_result(run_statement(spi, false, lean_sql_,
                                                     {spi::int8(b.lo), spi::int8(b.hi), spi::text(direction),
                                                      spi::int8(run_id), ids, spi::int4(want)}),
                                       b.n);
        return read_batch_result(run_statement(spi, dry_run_, batch_sql_,
                                               {spi::int8(b.lo), spi::int8(b.hi), spi::text(direction),
                                                spi::int8(run_id), ids, spi::int4(want),
                                                covered ? spi::int8(*covered) : spi::null(INT8OID)}),
                                 dry_run_);
    });
}

namespace {

class Engine {
public:
    Engine(spi::Session &spi, Journal &jr, const Names &n, const Request &r, bool procedure, bool nonatomic)
        : spi_(spi), jr_(jr), n_(n), r_(r), procedure_(procedure), nonatomic_(nonatomic),
          stmts_(n, r.all(), r.dry_run)
    {
    }
    Summary run();

private:
    template <class F> auto guarded(F &&f) { return with_settings(spi_, r_.all() ? kBatchSettings : kSubsetSettings, f); }
    void commit()
    {
        if (nonatomic_)
            spi_.commit();
    }
    int64_t plan();
    bool try_rois_in_one_statement(const Ids &rois);
    std::optional<Batch> next_batch();
    std::vector<Batch> all_batches();
    void run_parallel(WorkerPool &pool, Progress &progress);
    Summary convert_batch(const Batch &b);
    void finish_run();
    size_t sample_wanted() const { return Summary::kSample - std::min(Summary::kSample, sum_.sample.size()); }

    spi::Session &spi_;
    Journal &jr_;
    const Names &n_;
    const Request &r_;
    const bool procedure_, nonatomic_;
    const BatchStatements stmts_;
    std::optional<int64_t> covered_;  // all shapes: the covered_to of a completed run in this direction
    Summary sum_;
    Ids ids_;                   // list mode: the subset's sorted shape ids
    size_t pos_ = 0;            // list mode: the next index into ids_
    int64_t last_ = INT64_MIN;  // range mode: the highest id done
    bool done_ = false;
};

// The shapes in scope, a run row, and (a ROI subset that fits) the one statement. Returns the total.
int64_t Engine::plan()
{
    int64_t total = 0;
    std::optional<Ids> rois;  // a subset of ROIs, to try in one statement (scope_sql, batch_sql(Rois))
    if (r_.all())
        total = std::stoll(spi_.scalar("SELECT pg_catalog.count(*) FROM " + n_.shape, {}, true).value_or("0"));
    else {
        check_ids_exist(spi_, n_, r_);
        if (!r_.shape_ids)
            rois = roi_scope(spi_, n_, r_);  // shapes counted (or bounded) below
        else {
            ids_ = guarded([&] { return select_subset(spi_, n_, r_); });
            total = (int64_t)ids_.size();
        }
    }
    // An all-shapes run after a completed one in this direction: shapes created since are left alone.
    if (r_.all())
        covered_ = jr_.covered_to(r_.direction);
    if (!r_.dry_run) {
        sum_.run_id = jr_.start_run(r_.direction, procedure_ ? "batch" : "tx", r_.roi_ids, r_.image_ids, r_.shape_ids, total);
        commit();
    }
    if (rois && try_rois_in_one_statement(*rois))
        return sum_.selected;
    if (rois) {
        ids_ = guarded([&] { return select_subset(spi_, n_, r_); });
        total = (int64_t)ids_.size();
        if (!r_.dry_run)
            jr_.set_selected(sum_.run_id, total);
    }
    return total;
}

// A subset of ROIs that fits in one batch is done by one statement, under the journal lock: with
// nothing journaled, the lean one-pass statement (its size counted first, on the shape(roi)
// index); else the one that looks its shapes up in the journal (its size bounded by the statement
// itself). False: a bigger subset, to go by batches of shape ids.
bool Engine::try_rois_in_one_statement(const Ids &rois)
{
    if (!r_.dry_run)
        jr_.lock();
    std::optional<Summary> b;
    const spi::Param roi_param = spi::int8_array(rois);
    if (!r_.dry_run && jr_.empty()) {
        int64_t n = guarded([&] { return count_scope(spi_, n_, rois); });
        if (n <= r_.batch_size)
            b = with_settings(spi_, kScopeSettings, [&] {
                auto res = run_statement(spi_, false, scope_sql(n_),
                                         {spi::text(r_.direction), spi::int8(sum_.run_id), roi_param,
                                          spi::int4((int32_t)Summary::kSample)});
                return read_convert_result(res, res.int64(0, "selected"));
            });
    } else {
        b = guarded([&] {
            return read_batch_result(
                run_statement(spi_, r_.dry_run, batch_sql(n_, Selection::Rois, r_.dry_run),
                              {spi::int8(INT64_MIN), spi::int8((int64_t)r_.batch_size + 1), spi::text(r_.direction),
                               spi::int8(sum_.run_id), roi_param, spi::int4((int32_t)Summary::kSample),
                               spi::null(INT8OID)}),
                r_.dry_run);
        });
        if (b->selected > r_.batch_size)
            b.reset();  // nothing was changed: the statement saw more shapes than a batch
    }
    if (!b)
        return false;
    if (!r_.dry_run) {
        jr_.count_batch(sum_.run_id, b->converted, b->restored, b->already, b->changed, b->purged, b->raced);
        jr_.set_selected(sum_.run_id, b->selected);
        commit();
    }
    sum_.add(*b);
    done_ = true;
    return true;
}

// The next batch: by primary-key range (all shapes) or the next listed ids; nullopt at the end.
std::optional<Batch> Engine::next_batch()
{
    Batch b;
    if (done_)
        return std::nullopt;
    if (r_.all()) {
        auto r = spi_.query("SELECT pg_catalog.max(id) AS hi, pg_catalog.count(*) AS n"
                            "  FROM (SELECT id FROM " + n_.shape + " WHERE id > $1 ORDER BY id LIMIT $2) s",
                            {spi::int8(last_), spi::int4(r_.batch_size)}, true);
        if (!r.get(0, "hi"))
            return std::nullopt;
        b.lo = last_ == INT64_MIN ? INT64_MIN : last_ + 1;
        b.hi = r.int64(0, "hi");
        b.n = r.int64(0, "n");
    } else {
        if (pos_ >= ids_.size())
            return std::nullopt;
        b.n = (int64_t)std::min(ids_.size() - pos_, (size_t)r_.batch_size);
        b.lo = ids_[pos_];
        b.hi = ids_[pos_ + b.n - 1];
        b.ids = Ids(ids_.begin() + pos_, ids_.begin() + pos_ + b.n);
        pos_ += b.n;
    }
    return b;
}

// The batches of what is left, as next_batch() would give them one by one.
std::vector<Batch> Engine::all_batches()
{
    std::vector<Batch> out;
    if (!r_.all()) {
        while (auto b = next_batch())
            out.push_back(std::move(*b));
        return out;
    }
    // Every batch_size-th id after last_: one read of the primary key.
    auto r = spi_.query("SELECT pg_catalog.max(id) AS hi, pg_catalog.count(*) AS n"
                        "  FROM (SELECT id, (pg_catalog.row_number() OVER (ORDER BY id) - 1) / $2 AS b"
                        "          FROM " + n_.shape + " WHERE id > $1) s GROUP BY b ORDER BY b",
                        {spi::int8(last_), spi::int8(r_.batch_size)}, true);
    int64_t lo = last_ == INT64_MIN ? INT64_MIN : last_ + 1;
    for (size_t i = 0; i < r.rows.size(); i++) {
        Batch b;
        b.lo = lo;
        b.hi = r.int64(i, "hi");
        b.n = r.int64(i, "n");
        lo = b.hi + 1;
        out.push_back(b);
    }
    return out;
}

// jobs > 1: the batches known now, by the workers; what is left (shapes created meanwhile, above
// the last batch) by the loop of run() as before.
void Engine::run_parallel(WorkerPool &pool, Progress &progress)
{
    const size_t pos = pos_;
    std::vector<Batch> batches = all_batches();
    if (batches.size() < 2) {  // one batch: this session does it (the workers just go)
        pos_ = pos;
        return;
    }
    // Nothing of ours held while the workers run (a ROI subset too big for one statement took the
    // journal lock exclusively to find that out): they take it shared.
    commit();
    jr_.lock_parallel_run();
    Summary s = pool.run(spi_, r_.direction, r_.all(), sum_.run_id, covered_, batches,
                         [&](const Summary &done) { progress.update(sum_.selected + done.selected); });
    sum_.add(s);
    if (r_.all())
        last_ = batches.back().hi;
}

// One batch, under the journal lock.
Summary Engine::convert_batch(const Batch &b)
{
    if (!r_.dry_run)
        jr_.lock();
    return stmts_.convert(spi_, jr_, r_.direction, sum_.run_id, covered_, b, (int32_t)sample_wanted());
}

void Engine::finish_run()
{
    std::optional<int64_t> covered_to;
    if (r_.all())
        covered_to = covered_ ? covered_ : last_ == INT64_MIN ? std::nullopt : std::optional<int64_t>(last_);
    jr_.finish_run(sum_.run_id, covered_to);
    commit();
}

Summary Engine::run()
{
    // The workers first: when there are too few slots, nothing has been changed yet.
    std::unique_ptr<WorkerPool> pool;
    if (r_.jobs > 1 && procedure_ && nonatomic_ && !r_.dry_run)
        pool = std::make_unique<WorkerPool>(r_.jobs);
    Progress progress("colors " + r_.direction, "shapes", plan());
    if (pool && !done_)
        run_parallel(*pool, progress);
    pool.reset();
    while (true) {
        check_interrupts();
        std::optional<Batch> b = next_batch();
        if (!b)
            break;
        Summary s = convert_batch(*b);
        if (!r_.dry_run) {
            jr_.count_batch(sum_.run_id, s.converted, s.restored, s.already, s.changed, s.purged, s.raced);
            commit();
        }
        sum_.add(s);
        last_ = b->hi;
        progress.update(sum_.selected);
    }
    progress.update(sum_.selected);  // not forced: a short run prints no progress line (the summary follows)
    if (!r_.dry_run)
        finish_run();
    sum_.selected = std::max(sum_.selected, (int64_t)0);
    report(procedure_ ? "omero_colors_convert" : "omero_colors_convert_tx", r_.direction, sum_, r_.dry_run);
    return sum_;
}

} // namespace

Summary convert_by_batches(spi::Session &spi, Journal &jr, const Names &n, const Request &r, bool procedure,
                           bool nonatomic)
{
    return Engine(spi, jr, n, r, procedure, nonatomic).run();
}

} // namespace ou::colors
