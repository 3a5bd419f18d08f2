// Parallel batches of the colour conversion: the caller's pool (WorkerPool) and the background
// worker's main (omero_colors_worker_main). See colors_parallel.hpp.
//
// Shared memory: one segment made before the workers are registered (who the caller is, the
// state, the counters, the first error), and once the run is planned a second one with the
// batches (and, for a subset, their shape ids). A worker claims batch i by incrementing `next`;
// each batch is its own transaction (converted, journaled and counted in color_runs, as a batch of
// the single-session loop), then its counts go into the shared counters. So a cancel, a crash or
// an error leaves every batch converted and journaled, or untouched; a new CALL resumes.
#include "colors_parallel.hpp"

#include "color_journal.hpp"
#include "omero_db.hpp"

extern "C" {
#include "access/xact.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void omero_colors_worker_main(Datum arg);
}

#include <algorithm>
#include <cstring>

namespace ou::colors {
namespace {

enum State : uint32 { kWait = 0, kGo = 1, kStop = 2 };
enum Counter { kSelected, kConverted, kRestored, kAlready, kChanged, kPurged, kRaced, kNewer, kCounters };

// The first segment: written by the caller before it registers the workers, then shared.
struct Shared {
    pid_t caller_pid;
    PGPROC *caller;
    Oid database, session_user, current_user;
    int sec_context;
    char omero_schema[NAMEDATALEN * 2 + 8];
    char replication_role[16];  // the caller's session_replication_role (which triggers fire)
    int jobs;
    Latch *latches[kMaxJobs];  // each worker's, set by the worker once attached
    pg_atomic_uint32 state;
    // The work, set before state becomes kGo.
    dsm_handle work;
    char direction[16];
    bool all, has_covered;
    int64 run_id, covered;
    uint32 nbatches;
    pg_atomic_uint32 next, done;
    pg_atomic_uint64 counts[kCounters];
    // Under mutex: the first few changed shapes, and the first error of a worker.
    slock_t mutex;
    int nchanged;
    int64 changed_ids[Summary::kSample];
    bool failed;
    int failed_worker, sqlerrcode;
    char message[1024], detail[1024], hint[512];
};

// The second segment: a header, the batches, then the shape ids of a subset's batches.
struct WorkBatch {
    int64 lo, hi, n;
    uint64 off;  // the batch's first id in ids (subsets)
};
struct Work {
    uint32 n;
    uint64 nids;
    WorkBatch batches[FLEXIBLE_ARRAY_MEMBER];
};
const int64 *work_ids(const Work *w)
{
    return (const int64 *)(w->batches + w->n);
}

void set_latches(Shared *sh)
{
    for (int i = 0; i < sh->jobs; i++)
        if (Latch *l = sh->latches[i])
            SetLatch(l);
}

} // namespace

struct WorkerPool::Impl {
    dsm_segment *seg = nullptr, *work = nullptr;
    Shared *sh = nullptr;
    std::vector<BackgroundWorkerHandle *> handles;
    bool finished = false;  // every batch done: the workers end on their own

    Impl(int jobs);
    void start(int jobs);
    void stop() noexcept;
    bool all_stopped();
    Summary counts();
    [[noreturn]] void raise_failure();
};

WorkerPool::Impl::Impl(int jobs)
{
    try {
        start(jobs);
    } catch (...) {
        stop();  // the workers registered so far, and the segment
        throw;
    }
}

void WorkerPool::Impl::start(int jobs)
{
    seg = pg_guard([] {
        dsm_segment *s = dsm_create(sizeof(Shared), 0);
        dsm_pin_mapping(s);  // until the destructor: the caller commits while its workers run
        return s;
    });
    sh = (Shared *)dsm_segment_address(seg);
    memset(sh, 0, sizeof(Shared));
    sh->caller_pid = MyProcPid;
    sh->caller = MyProc;
    sh->database = MyDatabaseId;
    sh->session_user = GetSessionUserId();  // connects as it (pg_background: the authenticated one)
    GetUserIdAndSecContext(&sh->current_user, &sh->sec_context);
    if (const char *schema = omero_schema_setting())
        strlcpy(sh->omero_schema, schema, sizeof(sh->omero_schema));
    strlcpy(sh->replication_role, GetConfigOption("session_replication_role", false, false),
            sizeof(sh->replication_role));
    sh->jobs = jobs;
    pg_atomic_init_u32(&sh->state, kWait);
    pg_atomic_init_u32(&sh->next, 0);
    pg_atomic_init_u32(&sh->done, 0);
    for (auto &c : sh->counts)
        pg_atomic_init_u64(&c, 0);
    SpinLockInit(&sh->mutex);

    const dsm_handle h = dsm_segment_handle(seg);
    for (int i = 0; i < jobs; i++) {
        BackgroundWorkerHandle *handle = nullptr;
        bool registered = pg_guard([h, i, &handle] {
            BackgroundWorker w;
            memset(&w, 0, sizeof(w));
            w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
            w.bgw_start_time = BgWorkerStart_ConsistentState;
            w.bgw_restart_time = BGW_NEVER_RESTART;
            snprintf(w.bgw_library_name, BGW_MAXLEN, "omero_upgrade");
            snprintf(w.bgw_function_name, BGW_MAXLEN, "omero_colors_worker_main");
            snprintf(w.bgw_name, BGW_MAXLEN, "omero_upgrade colors worker %d for PID %d", i + 1, (int)MyProcPid);
            snprintf(w.bgw_type, BGW_MAXLEN, "omero_upgrade colors worker");
            w.bgw_main_arg = UInt32GetDatum(h);
            memcpy(w.bgw_extra, &i, sizeof(i));
            w.bgw_notify_pid = MyProcPid;
            MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
            bool ok = RegisterDynamicBackgroundWorker(&w, &handle);
            MemoryContextSwitchTo(old);
            return ok;
        });
        if (!registered)
            throw Error(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
                        "omero_colors_convert: no background worker slot free for job " + std::to_string(i + 1) +
                            " of " + std::to_string(jobs),
                        "max_worker_processes (" + std::string(GetConfigOption("max_worker_processes", false, false)) +
                            ") are all in use (parallel queries, other extensions, other conversions). Nothing was "
                            "changed.",
                        "Pass fewer jobs (jobs => 1 needs no worker), wait for the other workers to end, or raise "
                        "max_worker_processes (a server restart).");
        handles.push_back(handle);
    }
    for (size_t i = 0; i < handles.size(); i++) {
        BackgroundWorkerHandle *handle = handles[i];
        BgwHandleStatus st = pg_guard([handle] {
            pid_t pid;
            return WaitForBackgroundWorkerStartup(handle, &pid);
        });
        if (st != BGWH_STARTED)
            throw Error(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
                        "omero_colors_convert: background worker " + std::to_string(i + 1) + " could not be started",
                        "The server could not start the process (see its log). Nothing was changed.",
                        "Pass fewer jobs, or jobs => 1.");
    }
}

// Stops every worker (a batch under way rolls back) and waits until each is gone. No interrupt
// is served here: this runs while an error or a cancel unwinds.
void WorkerPool::Impl::stop() noexcept
{
    if (sh) {
        pg_atomic_write_u32(&sh->state, kStop);
        pg_memory_barrier();
        set_latches(sh);
    }
    for (BackgroundWorkerHandle *h : handles)
        if (!finished)
            TerminateBackgroundWorker(h);
    for (BackgroundWorkerHandle *h : handles) {
        pid_t pid;
        while (GetBackgroundWorkerPid(h, &pid) != BGWH_STOPPED) {
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
        }
        pfree(h);
    }
    handles.clear();
    if (work)
        dsm_detach(work);
    if (seg)
        dsm_detach(seg);
    work = seg = nullptr;
    sh = nullptr;
}

bool WorkerPool::Impl::all_stopped()
{
    for (BackgroundWorkerHandle *h : handles) {
        pid_t pid;
        if (GetBackgroundWorkerPid(h, &pid) != BGWH_STOPPED)
            return false;
    }
    return true;
}

Summary WorkerPool::Impl::counts()
{
    Summary s;
    int64_t *fields[kCounters] = {&s.selected, &s.converted, &s.restored, &s.already,
                                  &s.changed,  &s.purged,    &s.raced,    &s.newer};
    for (int c = 0; c < kCounters; c++)
        *fields[c] = (int64_t)pg_atomic_read_u64(&sh->counts[c]);
    SpinLockAcquire(&sh->mutex);
    int n = sh->nchanged;
    int64 ids[Summary::kSample];
    memcpy(ids, sh->changed_ids, sizeof(ids));
    SpinLockRelease(&sh->mutex);
    s.changed_ids.assign(ids, ids + n);
    return s;
}

void WorkerPool::Impl::raise_failure()
{
    SpinLockAcquire(&sh->mutex);
    int worker = sh->failed_worker, code = sh->sqlerrcode;
    char message[sizeof(sh->message)], detail[sizeof(sh->detail)], hint[sizeof(sh->hint)];
    memcpy(message, sh->message, sizeof(message));
    memcpy(detail, sh->detail, sizeof(detail));
    memcpy(hint, sh->hint, sizeof(hint));
    SpinLockRelease(&sh->mutex);
    std::string d = detail;
    d += std::string(d.empty() ? "" : " ") + "The other workers were stopped: every batch is converted and journaled, "
         "or untouched.";
    std::string h = hint;
    h += std::string(h.empty() ? "" : " ") + "CALL omero_colors_convert again to resume.";
    throw Error(code, "omero_colors_convert: background worker " + std::to_string(worker + 1) + ": " + message, d, h);
}

WorkerPool::WorkerPool(int jobs) : impl_(std::make_unique<Impl>(jobs))
{
}

WorkerPool::~WorkerPool()
{
    impl_->stop();
}

Summary WorkerPool::run(spi::Session &spi, const std::string &direction, bool all, int64_t run_id,
                        std::optional<int64_t> covered, const std::vector<Batch> &batches,
                        const std::function<void(const Summary &)> &progress)
{
    Impl &p = *impl_;
    Shared *sh = p.sh;
    uint64 nids = 0;
    for (const Batch &b : batches)
        nids += b.ids ? b.ids->size() : 0;
    const Size size = offsetof(Work, batches) + batches.size() * sizeof(WorkBatch) + nids * sizeof(int64);
    p.work = pg_guard([size] {
        dsm_segment *s = dsm_create(size, 0);
        dsm_pin_mapping(s);
        return s;
    });
    Work *w = (Work *)dsm_segment_address(p.work);
    w->n = (uint32)batches.size();
    w->nids = nids;
    int64 *ids = (int64 *)work_ids(w);
    uint64 off = 0;
    for (size_t i = 0; i < batches.size(); i++) {
        const Batch &b = batches[i];
        w->batches[i] = WorkBatch{b.lo, b.hi, b.n, off};
        if (b.ids) {
            memcpy(ids + off, b.ids->data(), b.ids->size() * sizeof(int64));
            off += b.ids->size();
        }
    }
    sh->work = dsm_segment_handle(p.work);
    strlcpy(sh->direction, direction.c_str(), sizeof(sh->direction));
    sh->all = all;
    sh->run_id = run_id;
    sh->has_covered = covered.has_value();
    sh->covered = covered.value_or(0);
    sh->nbatches = w->n;
    pg_write_barrier();
    pg_atomic_write_u32(&sh->state, kGo);
    set_latches(sh);

    uint32 reported = 0;
    for (;;) {
        check_interrupts();
        SpinLockAcquire(&sh->mutex);
        bool failed = sh->failed;
        SpinLockRelease(&sh->mutex);
        if (failed)
            p.raise_failure();
        uint32 done = pg_atomic_read_u32(&sh->done);
        if (done != reported) {
            progress(p.counts());
            reported = done;
        }
        if (done >= w->n)
            break;
        if (p.all_stopped()) {
            if (pg_atomic_read_u32(&sh->done) >= w->n)
                continue;
            SpinLockAcquire(&sh->mutex);
            failed = sh->failed;
            SpinLockRelease(&sh->mutex);
            if (failed)
                continue;
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "omero_colors_convert: the background workers stopped with " +
                            std::to_string(pg_atomic_read_u32(&sh->done)) + " of " + std::to_string(w->n) +
                            " batches done",
                        "A worker ended without an error of its own (terminated, or it could not connect: see the "
                        "server log). Every batch is converted and journaled, or untouched.",
                        "CALL omero_colors_convert again to resume.");
        }
        pg_guard([] {
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 200, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
        });
    }
    p.finished = true;
    (void)spi;
    return p.counts();
}

namespace {

// One batch, in the worker's transaction: the caller's checks again, the journal lock shared
// with the other workers of this run, the batch statement, its counts in color_runs.
// A batch's counts, as add_counts() shares them (plain data: it lives in worker_loop's frame).
struct BatchCounts {
    int64 v[kCounters];
    int nchanged;
    int64 changed_ids[Summary::kSample];
};

void worker_batch(const Shared *sh, const Work *w, uint32 i, BatchCounts *out)
{
    spi::Session spi;
    Journal jr(spi);
    jr.require_omero();
    const std::string direction = sh->direction;
    const Names n = names_for(spi, direction);
    const WorkBatch &wb = w->batches[i];
    Batch b;
    b.lo = wb.lo;
    b.hi = wb.hi;
    b.n = wb.n;
    if (!sh->all)
        b.ids = Ids(work_ids(w) + wb.off, work_ids(w) + wb.off + wb.n);
    jr.lock_shared();
    std::optional<int64_t> covered;
    if (sh->has_covered)
        covered = sh->covered;
    Summary s = BatchStatements(n, sh->all, false).convert(spi, jr, direction, sh->run_id, covered, b, 0);
    jr.count_batch(sh->run_id, s.converted, s.restored, s.already, s.changed, s.purged, s.raced);
    const int64_t fields[kCounters] = {s.selected, s.converted, s.restored, s.already,
                                       s.changed,  s.purged,    s.raced,    s.newer};
    memcpy(out->v, fields, sizeof(out->v));
    out->nchanged = (int)std::min(s.changed_ids.size(), Summary::kSample);
    for (int k = 0; k < out->nchanged; k++)
        out->changed_ids[k] = s.changed_ids[k];
}

void add_counts(Shared *sh, const BatchCounts &s)
{
    for (int c = 0; c < kCounters; c++)
        pg_atomic_fetch_add_u64(&sh->counts[c], (uint64)s.v[c]);
    SpinLockAcquire(&sh->mutex);
    for (int k = 0; k < s.nchanged; k++)
        if (sh->nchanged < (int)Summary::kSample)
            sh->changed_ids[sh->nchanged++] = s.changed_ids[k];
    SpinLockRelease(&sh->mutex);
}

bool caller_alive(const Shared *sh)
{
    return BackendPidGetProc(sh->caller_pid) != nullptr;
}

// Waits for the caller's go (or stop): true to work.
bool wait_for_go(Shared *sh)
{
    for (;;) {
        uint32 st = pg_atomic_read_u32(&sh->state);
        if (st == kStop || !caller_alive(sh))
            return false;
        if (st == kGo) {
            pg_read_barrier();
            return true;
        }
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

// The worker's batches, each its own transaction. Called under PG_TRY (worker_main): a
// PostgreSQL error longjmps out of here, so nothing here has a destructor; the C++ of each batch
// runs inside boundary(), which turns its exceptions into PostgreSQL errors once unwound.
void worker_loop(Shared *sh, int me)
{
    // The caller's role and settings; our search_path, as every call of ours has.
    SetUserIdAndSecContext(sh->current_user, sh->sec_context);
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
    SetConfigOption("application_name", "omero_upgrade colors worker", PGC_USERSET, PGC_S_SESSION);
    if (sh->omero_schema[0])
        SetConfigOption("omero_upgrade.omero_schema", sh->omero_schema, PGC_USERSET, PGC_S_SESSION);
    // A superuser's "replica" (no ordinary trigger fires) holds for the workers' batches as for the
    // caller's own: the same statements with the same triggers, whatever the number of jobs.
    SetConfigOption("session_replication_role", sh->replication_role, PGC_SUSET, PGC_S_SESSION);
    pgstat_report_appname("omero_upgrade colors worker");
    if (!wait_for_go(sh))
        return;
    dsm_segment *ws = dsm_attach(sh->work);  // outside a transaction: as long as the process
    if (!ws)
        return;  // the caller is gone
    const Work *w = (const Work *)dsm_segment_address(ws);
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (pg_atomic_read_u32(&sh->state) == kStop || !caller_alive(sh))
            break;
        uint32 i = pg_atomic_fetch_add_u32(&sh->next, 1);
        if (i >= w->n)
            break;
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        pgstat_report_activity(STATE_RUNNING, "omero_colors_convert: a batch of a parallel run");
        BatchCounts counts;
        BatchCounts *out = &counts;
        boundary([sh, w, i, out] {
            worker_batch(sh, w, i, out);
            return (Datum)0;
        });
        PopActiveSnapshot();
        CommitTransactionCommand();
        pgstat_report_activity(STATE_IDLE, nullptr);
        add_counts(sh, counts);
        pg_atomic_fetch_add_u32(&sh->done, 1);
        SetLatch(&sh->caller->procLatch);
    }
    (void)me;
}

} // namespace
} // namespace ou::colors

using namespace ou::colors;

// The background worker (registered by WorkerPool): attach, connect as the caller, work, and on
// an error hand its message to the caller before ending.
void omero_colors_worker_main(Datum arg)
{
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    // No resource owner: the mapping lasts as long as the process.
    dsm_segment *seg = dsm_attach(DatumGetUInt32(arg));
    if (!seg)
        proc_exit(0);  // the caller is gone already
    Shared *sh = (Shared *)dsm_segment_address(seg);
    int me;
    memcpy(&me, MyBgworkerEntry->bgw_extra, sizeof(me));
    if (me < 0 || me >= sh->jobs)
        proc_exit(1);
    sh->latches[me] = MyLatch;
    pg_memory_barrier();
    BackgroundWorkerInitializeConnectionByOid(sh->database, sh->session_user, 0);
    MemoryContext ctx = CurrentMemoryContext;
    PG_TRY();
    {
        worker_loop(sh, me);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(ctx);
        ErrorData *e = CopyErrorData();
        SpinLockAcquire(&sh->mutex);
        if (!sh->failed) {
            sh->failed = true;
            sh->failed_worker = me;
            sh->sqlerrcode = e->sqlerrcode;
            strlcpy(sh->message, e->message ? e->message : "error", sizeof(sh->message));
            strlcpy(sh->detail, e->detail ? e->detail : "", sizeof(sh->detail));
            strlcpy(sh->hint, e->hint ? e->hint : "", sizeof(sh->hint));
        }
        SpinLockRelease(&sh->mutex);
        SetLatch(&sh->caller->procLatch);
        PG_RE_THROW();
    }
    PG_END_TRY();
    sh->latches[me] = nullptr;
    proc_exit(0);
}
