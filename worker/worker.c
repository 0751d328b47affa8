/*
 * regmix-worker: runs proxy-training attempts for a regmix-coordinator (DESIGN.md §4.2, §4.3).
 *
 * One libuv loop drives everything: a DEALER socket watched through zloop, the job runner
 * (job.c: child processes, progress pipes, synthetic jobs), a tick timer for heartbeats, resends
 * and reconnects, and signal handlers that only set the loop on its way out.
 *
 * Session, as the worker sees it:
 *   CONNECTING  --HELLO-->  (coordinator)  --WELCOME-->  SERVING
 *   SERVING: PING every heartbeat_ms; READY(free slots) after WELCOME and whenever a slot frees;
 *            ASSIGN starts a job (beyond the slots, it waits in a local queue);
 *            every outcome is sent until RESULT_ACK / FAILED_ACK (resent on a timer and after a
 *            reconnect) and kept on disk until then (report.c).
 *   Nothing heard for 3 heartbeat intervals, an UNKNOWN_WORKER error, or a broken socket:
 *            close the socket, open a new one, HELLO again (backoff 250 ms doubling to 2 s while
 *            no WELCOME comes). HELLO lists the attempts still running, queued or holding
 *            results, so a restarted coordinator re-adopts them; WELCOME.abandon_attempt_ids
 *            stops those it no longer wants.
 * The client decides how often to heartbeat, the server decides when it has expired: the
 * coordinator's WELCOME sets the interval, and it alone expires leases.
 *
 * With CURVE keys (curve.h) every socket opened is a CURVE client. A refused handshake looks
 * like silence, so the socket's connection events are watched too and each kind of failure
 * (key refused, CURVE required or not used, handshake failed) is logged once until a WELCOME.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "clock.h"
#include "config.h"
#include "curve.h"
#include "frame.h"
#include "gpu.h"
#include "job.h"
#include "log.h"
#include "report.h"
#include "zloop.h"

#define WORKER_TICK_MS        50
#define WORKER_DEFAULT_HB_MS  1000
#define WORKER_BACKOFF_MIN_MS 250
#define WORKER_BACKOFF_MAX_MS 2000
#define WORKER_MAX_SLOTS      4096
#define WORKER_MAX_QUEUE      65536

typedef struct held {
    report_t r;
    int journaled; /* in the outbox journal (synthetic) rather than a job directory */
    int64_t last_sent_ms;
    struct held *next;
} held_t;

typedef struct queued {
    Regmix__Assign *a; /* owned (unpacked copy) */
    struct queued *next;
} queued_t;

typedef struct worker {
    uv_loop_t *loop;
    const char *endpoint;
    curve_client_t curve; /* CURVE keys for every socket opened (curve.h) */
    char worker_id[512];
    char host[256];
    char boot_id[33];
    unsigned slots;
    gpu_t gpus[GPU_MAX];
    int n_gpus;
    job_config_t jcfg;

    void *zctx;
    void *sock;
    zloop_watch_t *watch;
    void *mon; /* PAIR receiving the socket's handshake events (worker_monitor_cb), or NULL */
    zloop_watch_t *mon_watch;
    unsigned mon_seq;
    int mon_connected, mon_handshook, mon_failed; /* this connection: state, a failure seen */
    unsigned mon_hangups; /* connections in a row closed during the handshake, unexplained */
    unsigned hs_logged;   /* handshake problems logged since the last WELCOME (bits) */
    uint64_t msg_id;

    int welcomed;
    int draining;
    int stopping;
    uint32_t heartbeat_ms;
    uint32_t lease_ms;
    int64_t last_rx_ms;
    int64_t last_ping_ms;
    int64_t hello_ms;
    int64_t backoff_ms;

    job_t **jobs; /* running, slots entries, NULL where free */
    unsigned running;
    queued_t *queue, *queue_tail;
    unsigned queued;
    held_t *held;
    unsigned n_held;
    unsigned n_journaled; /* held reports that live in the journal */
    report_journal_t *journal;

    uv_timer_t tick;
    uv_timer_t flush; /* READY, at most once per loop iteration */
    int ready_dirty;
    uv_signal_t sigint, sigterm;
    unsigned long long done, failed;
} worker_t;

static void worker_hello(worker_t *w);
static void worker_start_queued(worker_t *w);

/* ---- sending ---------------------------------------------------------------------------------- */

static int worker_send(worker_t *w, Regmix__Envelope *env)
{
    if (!w->sock)
        return -ENOTCONN;
    env->id = ++w->msg_id;
    int rc = frame_send(w->sock, NULL, 0, env, ZMQ_DONTWAIT);
    if (rc < 0)
        log_warn("send_failed", "worker=%s body=%s err=\"%s\"", w->worker_id,
                 frame_body_name(env->body_case), strerror(-rc));
    return rc;
}

static unsigned worker_free_slots(const worker_t *w)
{
    unsigned busy = w->running + w->queued;
    return busy >= w->slots ? 0 : w->slots - busy;
}

static void worker_send_ready(worker_t *w)
{
    if (!w->welcomed || w->stopping)
        return;
    Regmix__Envelope env;
    Regmix__Ready ready = REGMIX__READY__INIT;
    frame_envelope_init(&env, 0);
    ready.free_slots = w->draining ? 0 : worker_free_slots(w);
    env.body_case = REGMIX__ENVELOPE__BODY_READY;
    env.ready = &ready;
    worker_send(w, &env);
}

static void worker_flush_cb(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (w->ready_dirty) {
        w->ready_dirty = 0;
        worker_send_ready(w);
    }
}

static void worker_mark_ready(worker_t *w)
{
    if (!w->ready_dirty) {
        w->ready_dirty = 1;
        uv_timer_start(&w->flush, worker_flush_cb, 0, 0);
    }
}

static void worker_send_ping(worker_t *w)
{
    Regmix__Envelope env;
    Regmix__Ping ping = REGMIX__PING__INIT;
    uint64_t ids[WORKER_MAX_SLOTS];
    frame_envelope_init(&env, 0);
    ping.free_slots = w->draining ? 0 : worker_free_slots(w);
    for (unsigned i = 0; i < w->slots; i++)
        if (w->jobs[i] && !w->jobs[i]->finished)
            ids[ping.n_running_attempt_ids++] = w->jobs[i]->attempt_id;
    ping.running_attempt_ids = ids;
    env.body_case = REGMIX__ENVELOPE__BODY_PING;
    env.ping = &ping;
    worker_send(w, &env);
    w->last_ping_ms = clock_mono_ms();
}

/* Sends a held report as RESULT or FAILED. */
static void worker_send_report(worker_t *w, held_t *h)
{
    const report_t *r = &h->r;
    Regmix__Envelope env;
    frame_envelope_init(&env, 0);
    Regmix__Result res = REGMIX__RESULT__INIT;
    Regmix__Failed fail = REGMIX__FAILED__INIT;
    size_t nl = r->n_losses, nb = r->n_bits_per_byte;
    Regmix__DomainValue *vals = calloc(nl + nb + 1, sizeof *vals);
    Regmix__DomainValue **ptrs = calloc(nl + nb + 1, sizeof *ptrs);
    if (!vals || !ptrs) {
        free(vals);
        free(ptrs);
        return;
    }
    if (r->ok) {
        for (size_t i = 0; i < nl + nb; i++) {
            const report_value_t *v = i < nl ? &r->losses[i] : &r->bits_per_byte[i - nl];
            regmix__domain_value__init(&vals[i]);
            vals[i].name = v->name;
            vals[i].value = v->value;
            ptrs[i] = &vals[i];
        }
        res.attempt_id = r->attempt_id;
        res.run_id = r->run_id;
        res.n_losses = nl;
        res.losses = ptrs;
        res.n_bits_per_byte = nb;
        res.bits_per_byte = ptrs + nl;
        res.tokens = r->tokens;
        res.seconds = r->seconds;
        env.body_case = REGMIX__ENVELOPE__BODY_RESULT;
        env.result = &res;
    } else {
        fail.attempt_id = r->attempt_id;
        fail.exit_code = r->exit_code;
        fail.signal = r->signal;
        fail.reason = r->reason ? r->reason : "";
        env.body_case = REGMIX__ENVELOPE__BODY_FAILED;
        env.failed = &fail;
    }
    worker_send(w, &env);
    h->last_sent_ms = clock_mono_ms();
    free(vals);
    free(ptrs);
}

/* ---- held reports ----------------------------------------------------------------------------- */

static held_t *worker_held_find(worker_t *w, uint64_t attempt_id, held_t ***ret_link)
{
    for (held_t **l = &w->held; *l; l = &(*l)->next) {
        if ((*l)->r.attempt_id == attempt_id) {
            if (ret_link)
                *ret_link = l;
            return *l;
        }
    }
    return NULL;
}

/* Takes the report (moved out of `r`) into the outbox. */
static held_t *worker_held_add(worker_t *w, report_t *r)
{
    held_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    report_move(&h->r, r);
    h->next = w->held;
    w->held = h;
    w->n_held++;
    return h;
}

/* Drops a held report: acknowledged, or abandoned by the coordinator. */
static void worker_held_drop(worker_t *w, uint64_t attempt_id, const char *why)
{
    held_t **link = NULL;
    held_t *h = worker_held_find(w, attempt_id, &link);
    if (!h)
        return;
    *link = h->next;
    w->n_held--;
    log_debug("report_dropped", "worker=%s attempt=%" PRIu64 " run=%" PRIu64 " why=%s",
              w->worker_id, attempt_id, h->r.run_id, why);
    if (h->journaled) {
        w->n_journaled--;
        int rc = report_journal_ack(w->journal, attempt_id, w->n_journaled);
        if (rc < 0)
            log_warn("journal_write_failed", "worker=%s err=\"%s\"", w->worker_id, strerror(-rc));
    } else {
        report_forget(&h->r);
    }
    report_clear(&h->r);
    free(h);
}

static void worker_recover(worker_t *w, report_t *r, int journaled)
{
    if (worker_held_find(w, r->attempt_id, NULL)) {
        report_clear(r);
    } else {
        log_info("report_recovered", "worker=%s attempt=%" PRIu64 " run=%" PRIu64 " ok=%d",
                 w->worker_id, r->attempt_id, r->run_id, r->ok);
        held_t *h = worker_held_add(w, r);
        if (h && journaled) {
            h->journaled = 1;
            w->n_journaled++;
        }
    }
    free(r);
}

static void worker_scan_cb(report_t *r, void *arg)
{
    worker_recover(arg, r, 0);
}

static void worker_journal_cb(report_t *r, void *arg)
{
    worker_recover(arg, r, 1);
}

/* ---- jobs ------------------------------------------------------------------------------------- */

static job_t *worker_job_find(worker_t *w, uint64_t attempt_id)
{
    for (unsigned i = 0; i < w->slots; i++)
        if (w->jobs[i] && w->jobs[i]->attempt_id == attempt_id)
            return w->jobs[i];
    return NULL;
}

static int worker_queue_remove(worker_t *w, uint64_t attempt_id)
{
    queued_t *prev = NULL;
    for (queued_t *q = w->queue; q; prev = q, q = q->next) {
        if (q->a->attempt_id != attempt_id)
            continue;
        if (prev)
            prev->next = q->next;
        else
            w->queue = q->next;
        if (w->queue_tail == q)
            w->queue_tail = prev;
        w->queued--;
        regmix__assign__free_unpacked(q->a, NULL);
        free(q);
        return 1;
    }
    return 0;
}

static void worker_progress_cb(job_t *job, const Regmix__Progress *p, void *data)
{
    worker_t *w = data;
    if (!w->welcomed)
        return;
    Regmix__Envelope env;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_PROGRESS;
    env.progress = (Regmix__Progress *)p;
    worker_send(w, &env);
    (void)job;
}

static void worker_done_cb(job_t *job, void *data)
{
    worker_t *w = data;
    for (unsigned i = 0; i < w->slots; i++)
        if (w->jobs[i] == job)
            w->jobs[i] = NULL;
    w->running--;
    if (job->cancelled) {
        log_info("attempt_cancelled", "worker=%s attempt=%" PRIu64 " run=%" PRIu64, w->worker_id,
                 job->attempt_id, job->run_id);
    } else {
        report_t *r = &job->report;
        if (r->ok) {
            w->done++;
            log_debug("attempt_done", "worker=%s attempt=%" PRIu64 " run=%" PRIu64 " loss=%.6g",
                      w->worker_id, r->attempt_id, r->run_id, r->losses[0].value);
        } else {
            char q[600];
            w->failed++;
            log_info("attempt_failed",
                     "worker=%s attempt=%" PRIu64 " run=%" PRIu64 " exit=%d signal=%d reason=%s",
                     w->worker_id, r->attempt_id, r->run_id, r->exit_code, r->signal,
                     log_quote(r->reason ? r->reason : "", q, sizeof q));
        }
        int journal = r->dir == NULL;
        if (journal) {
            int rc = report_journal_append(w->journal, r);
            if (rc < 0)
                log_warn("journal_write_failed", "worker=%s attempt=%" PRIu64 " err=\"%s\"",
                         w->worker_id, r->attempt_id, strerror(-rc));
        }
        held_t *h = worker_held_add(w, r);
        if (h && journal) {
            h->journaled = 1;
            w->n_journaled++;
        }
        if (h && w->welcomed)
            worker_send_report(w, h);
    }
    job_destroy(&job);
    if (!w->stopping) {
        worker_start_queued(w);
        worker_mark_ready(w);
    }
}

static void worker_run(worker_t *w, const Regmix__Assign *a)
{
    unsigned slot = 0;
    while (slot < w->slots && w->jobs[slot])
        slot++;
    job_t *job = NULL;
    int rc = job_start(w->loop, &w->jcfg, a, worker_progress_cb, worker_done_cb, w, &job);
    if (rc < 0) {
        log_error("job_start_failed", "worker=%s attempt=%" PRIu64 " err=\"%s\"", w->worker_id,
                  a->attempt_id, strerror(-rc));
        return;
    }
    w->jobs[slot] = job;
    w->running++;
    log_debug("attempt_started", "worker=%s attempt=%" PRIu64 " run=%" PRIu64 " kind=%d pid=%d",
              w->worker_id, a->attempt_id, a->run_id, a->kind, job->pid);
    /* A synthetic job without delay goes straight to RESULT: STARTED would only cost a write. */
    int delayed = a->kind == REGMIX__JOB_KIND__JOB_KIND_SYNTHETIC && a->synthetic &&
                  a->synthetic->delay_ms > 0;
    if (job->pid > 0 || delayed) {
        Regmix__Envelope env;
        Regmix__Started st = REGMIX__STARTED__INIT;
        frame_envelope_init(&env, 0);
        st.attempt_id = a->attempt_id;
        st.pid = (uint32_t)(job->pid > 0 ? job->pid : 0);
        env.body_case = REGMIX__ENVELOPE__BODY_STARTED;
        env.started = &st;
        worker_send(w, &env);
    }
}

static void worker_start_queued(worker_t *w)
{
    while (w->queue && w->running < w->slots) {
        queued_t *q = w->queue;
        w->queue = q->next;
        if (!w->queue)
            w->queue_tail = NULL;
        w->queued--;
        worker_run(w, q->a);
        regmix__assign__free_unpacked(q->a, NULL);
        free(q);
    }
}

static void worker_on_assign(worker_t *w, const Regmix__Assign *a)
{
    if (a->attempt_id == 0) {
        log_warn("assign_invalid", "worker=%s why=\"attempt id 0\"", w->worker_id);
        return;
    }
    if (worker_job_find(w, a->attempt_id) || worker_held_find(w, a->attempt_id, NULL)) {
        log_debug("assign_duplicate", "worker=%s attempt=%" PRIu64, w->worker_id, a->attempt_id);
        return;
    }
    for (queued_t *q = w->queue; q; q = q->next)
        if (q->a->attempt_id == a->attempt_id)
            return;
    if (w->running < w->slots) {
        worker_run(w, a);
        return;
    }
    /* More ASSIGNs than free slots (a READY crossed a result in flight): run it next. */
    if (w->queued >= WORKER_MAX_QUEUE) {
        log_warn("assign_dropped", "worker=%s attempt=%" PRIu64 " why=\"queue full\"", w->worker_id,
                 a->attempt_id);
        return;
    }
    queued_t *q = calloc(1, sizeof *q);
    size_t len = regmix__assign__get_packed_size(a);
    uint8_t *buf = malloc(len ? len : 1);
    if (!q || !buf) {
        free(q);
        free(buf);
        return;
    }
    regmix__assign__pack(a, buf);
    q->a = regmix__assign__unpack(NULL, len, buf);
    free(buf);
    if (!q->a) {
        free(q);
        return;
    }
    if (w->queue_tail)
        w->queue_tail->next = q;
    else
        w->queue = q;
    w->queue_tail = q;
    w->queued++;
}

/* Stops an attempt the coordinator no longer wants, wherever it is. */
static void worker_stop_attempt(worker_t *w, uint64_t attempt_id, const char *why)
{
    job_t *job = worker_job_find(w, attempt_id);
    if (job)
        job_cancel(job);
    if (worker_queue_remove(w, attempt_id))
        worker_mark_ready(w);
    worker_held_drop(w, attempt_id, why);
    log_info("attempt_stopped", "worker=%s attempt=%" PRIu64 " why=%s running=%d", w->worker_id,
             attempt_id, why, job != NULL);
}

/* ---- session ---------------------------------------------------------------------------------- */

static void worker_on_welcome(worker_t *w, const Regmix__Welcome *wel)
{
    w->welcomed = 1;
    w->hs_logged = 0;
    w->heartbeat_ms = wel->heartbeat_ms ? wel->heartbeat_ms : WORKER_DEFAULT_HB_MS;
    if (w->heartbeat_ms < 10)
        w->heartbeat_ms = 10;
    w->lease_ms = wel->lease_ms;
    w->backoff_ms = WORKER_BACKOFF_MIN_MS;
    log_info("welcome", "worker=%s coordinator=%s heartbeat_ms=%u lease_ms=%u abandon=%zu held=%u",
             w->worker_id, wel->coordinator_id ? wel->coordinator_id : "", w->heartbeat_ms,
             w->lease_ms, wel->n_abandon_attempt_ids, w->n_held);
    for (size_t i = 0; i < wel->n_abandon_attempt_ids; i++)
        worker_stop_attempt(w, wel->abandon_attempt_ids[i], "abandoned");
    for (held_t *h = w->held; h; h = h->next)
        worker_send_report(w, h);
    worker_send_ready(w);
    w->last_ping_ms = clock_mono_ms();
}

static void worker_on_message(worker_t *w, const Regmix__Envelope *env)
{
    switch (env->body_case) {
    case REGMIX__ENVELOPE__BODY_WELCOME:
        worker_on_welcome(w, env->welcome);
        break;
    case REGMIX__ENVELOPE__BODY_PONG:
        break;
    case REGMIX__ENVELOPE__BODY_ASSIGN:
        worker_on_assign(w, env->assign);
        break;
    case REGMIX__ENVELOPE__BODY_RESULT_ACK:
        if (!env->result_ack->accepted && worker_held_find(w, env->result_ack->attempt_id, NULL))
            log_info("result_discarded",
                     "worker=%s attempt=%" PRIu64 " why=\"fenced or duplicate\"", w->worker_id,
                     env->result_ack->attempt_id);
        worker_held_drop(w, env->result_ack->attempt_id,
                         env->result_ack->accepted ? "acked" : "acked-discarded");
        break;
    case REGMIX__ENVELOPE__BODY_FAILED_ACK:
        worker_held_drop(w, env->failed_ack->attempt_id, "failed-acked");
        break;
    case REGMIX__ENVELOPE__BODY_CANCEL:
        worker_stop_attempt(w, env->cancel->attempt_id, "cancelled");
        break;
    case REGMIX__ENVELOPE__BODY_DRAIN: {
        char q[300];
        w->draining = 1;
        log_info("draining", "worker=%s reason=%s", w->worker_id,
                 log_quote(env->drain->reason ? env->drain->reason : "", q, sizeof q));
        break;
    }
    case REGMIX__ENVELOPE__BODY_ERROR: {
        char q[600];
        const Regmix__Error *e = env->error;
        log_warn("coordinator_error", "worker=%s code=%d message=%s", w->worker_id, e->code,
                 log_quote(e->message ? e->message : "", q, sizeof q));
        if (e->code == REGMIX__ERROR_CODE__ERROR_CODE_UNKNOWN_WORKER && w->welcomed) {
            w->welcomed = 0;
            worker_hello(w);
        }
        break;
    }
    default:
        log_warn("unexpected_message", "worker=%s body=%s", w->worker_id,
                 frame_body_name(env->body_case));
        break;
    }
}

static void worker_reconnect(worker_t *w, const char *why);

static void worker_recv_cb(zloop_watch_t *watch, frame_msg_t *msg, void *data)
{
    worker_t *w = data;
    (void)watch;
    if (!msg->env) {
        if (msg->bytes == 0 && msg->err && !msg->why) {
            log_warn("socket_failed", "worker=%s err=\"%s\"", w->worker_id, strerror(-msg->err));
            worker_reconnect(w, "socket failed");
            return;
        }
        log_warn("bad_message", "worker=%s why=\"%s\" bytes=%zu", w->worker_id,
                 msg->why ? msg->why : strerror(-msg->err), msg->bytes);
        return;
    }
    w->last_rx_ms = clock_mono_ms();
    worker_on_message(w, msg->env);
}

static void worker_hello(worker_t *w)
{
    Regmix__Envelope env;
    Regmix__Hello hello = REGMIX__HELLO__INIT;
    frame_envelope_init(&env, 0);
    hello.worker_id = w->worker_id;
    hello.boot_id = w->boot_id;
    hello.host = w->host;
    hello.slots = w->slots;
    hello.software_version = REGMIX_VERSION;
    hello.pid = (uint32_t)getpid();
    Regmix__GpuInfo gi[GPU_MAX], *gp[GPU_MAX];
    for (int i = 0; i < w->n_gpus; i++) {
        regmix__gpu_info__init(&gi[i]);
        gi[i].index = w->gpus[i].index;
        gi[i].name = w->gpus[i].name;
        gi[i].memory_bytes = w->gpus[i].memory_bytes;
        gi[i].uuid = w->gpus[i].uuid;
        gp[i] = &gi[i];
    }
    hello.n_gpus = (size_t)w->n_gpus;
    hello.gpus = gp;
    size_t cap = w->running + w->queued + w->n_held + 1;
    Regmix__HeldAttempt *ha = calloc(cap, sizeof *ha);
    Regmix__HeldAttempt **hp = calloc(cap, sizeof *hp);
    size_t n = 0;
    if (ha && hp) {
        for (unsigned i = 0; i < w->slots; i++) {
            job_t *j = w->jobs[i];
            if (!j)
                continue;
            regmix__held_attempt__init(&ha[n]);
            ha[n].attempt_id = j->attempt_id;
            ha[n].run_id = j->run_id;
            hp[n] = &ha[n];
            n++;
        }
        for (queued_t *q = w->queue; q && n < cap; q = q->next) {
            regmix__held_attempt__init(&ha[n]);
            ha[n].attempt_id = q->a->attempt_id;
            ha[n].run_id = q->a->run_id;
            hp[n] = &ha[n];
            n++;
        }
        for (held_t *h = w->held; h && n < cap; h = h->next) {
            regmix__held_attempt__init(&ha[n]);
            ha[n].attempt_id = h->r.attempt_id;
            ha[n].run_id = h->r.run_id;
            ha[n].finished = 1;
            hp[n] = &ha[n];
            n++;
        }
    }
    hello.n_attempts = n;
    hello.attempts = hp;
    env.body_case = REGMIX__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    worker_send(w, &env);
    free(ha);
    free(hp);
    w->hello_ms = clock_mono_ms();
    log_info("hello", "worker=%s endpoint=%s slots=%u gpus=%d attempts=%zu", w->worker_id,
             w->endpoint, w->slots, w->n_gpus, n);
}

/* Logs a handshake problem once until the next WELCOME. */
static void worker_log_handshake(worker_t *w, unsigned bit, const char *why, unsigned value)
{
    if (w->hs_logged & bit)
        return;
    w->hs_logged |= bit;
    log_error("handshake_failed", "worker=%s endpoint=%s curve=\"%s\" value=%u why=\"%s\"",
              w->worker_id, w->endpoint, w->curve.enabled ? w->curve.public_ : "off", value, why);
}

/* One event of the DEALER's monitor: [event u16, value u32][endpoint]. */
static void worker_monitor_cb(zloop_watch_t *wt, void *s, void *data)
{
    (void)wt;
    worker_t *w = data;
    uint16_t ev = 0;
    uint32_t value = 0;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return;
    }
    if (zmq_msg_size(&m) >= 6) {
        memcpy(&ev, zmq_msg_data(&m), 2);
        memcpy(&value, (const char *)zmq_msg_data(&m) + 2, 4);
    }
    int more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    while (more) {
        zmq_msg_init(&m);
        more = zmq_msg_recv(&m, s, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    int curve = w->curve.enabled;
    switch (ev) {
    case ZMQ_EVENT_CONNECTED:
        w->mon_connected = 1;
        w->mon_handshook = w->mon_failed = 0;
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        w->mon_handshook = 1;
        w->mon_hangups = 0;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        w->mon_failed = 1;
        worker_log_handshake(w, 1,
                             "the coordinator refused our CURVE key: is our public key on its "
                             "--curve-allow list?",
                             value);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        w->mon_failed = 1;
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            worker_log_handshake(w, 2,
                                 curve ? "the coordinator does not use CURVE: start without "
                                         "--curve-server-key and $REGMIX_CURVE_SERVER_KEY"
                                       : "the coordinator requires CURVE: give "
                                         "--curve-server-key and --curve-secret-key",
                                 value);
        else
            worker_log_handshake(w, 4, "handshake protocol error", value);
        break;
    case ZMQ_EVENT_DISCONNECTED:
        /* A CURVE server that cannot open our HELLO (a wrong server key) just hangs up, every
         * time; once could be a coordinator going away, twice in a row is worth a line. (A
         * HANDSHAKE_FAILED_NO_DETAIL is any broken transport: not logged.) */
        if (curve && w->mon_connected && !w->mon_handshook && !w->mon_failed &&
            ++w->mon_hangups >= 2)
            worker_log_handshake(w, 8,
                                 "the connection closed during the CURVE handshake: is "
                                 "--curve-server-key the coordinator's public key?",
                                 value);
        w->mon_connected = 0;
        break;
    default:
        break;
    }
}

static void worker_close_monitor(worker_t *w)
{
    zloop_watch_close(&w->mon_watch);
    if (w->mon) {
        if (w->sock)
            zmq_socket_monitor(w->sock, NULL, 0);
        zmq_close(w->mon);
        w->mon = NULL;
    }
    w->mon_connected = w->mon_handshook = w->mon_failed = 0;
}

/* Watches the handshakes of w->sock (before its connect); failing that only costs the logs. */
static void worker_open_monitor(worker_t *w)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://regmix-worker-monitor-%u", ++w->mon_seq);
    const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    int zero = 0;
    if (zmq_socket_monitor(w->sock, ep, events) != 0)
        return;
    w->mon = zmq_socket(w->zctx, ZMQ_PAIR);
    if (!w->mon || zmq_setsockopt(w->mon, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(w->mon, ep) != 0 ||
        zloop_watch_new_raw(w->loop, w->mon, worker_monitor_cb, w, &w->mon_watch) < 0)
        worker_close_monitor(w);
}

static int worker_open(worker_t *w)
{
    w->sock = zmq_socket(w->zctx, ZMQ_DEALER);
    if (!w->sock)
        return -errno;
    int rc = frame_socket_setup(w->sock, 200);
    int hwm = 100000, ivl = 100, ivl_max = 1000;
    if (rc == 0 && (zmq_setsockopt(w->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
                    zmq_setsockopt(w->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
                    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) != 0 ||
                    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max) != 0))
        rc = -errno;
    if (rc == 0)
        rc = curve_client_apply(&w->curve, w->sock);
    if (rc == 0)
        worker_open_monitor(w);
    if (rc == 0 && zmq_connect(w->sock, w->endpoint) != 0)
        rc = -errno;
    if (rc == 0)
        rc = zloop_watch_new(w->loop, w->sock, 0, worker_recv_cb, w, &w->watch);
    if (rc < 0) {
        worker_close_monitor(w);
        zmq_close(w->sock);
        w->sock = NULL;
    }
    return rc;
}

static void worker_close_socket(worker_t *w)
{
    worker_close_monitor(w);
    zloop_watch_close(&w->watch);
    if (w->sock) {
        zmq_close(w->sock);
        w->sock = NULL;
    }
}

static void worker_reconnect(worker_t *w, const char *why)
{
    log_info("reconnect", "worker=%s why=\"%s\" backoff_ms=%" PRId64, w->worker_id, why,
             w->backoff_ms);
    worker_close_socket(w);
    w->welcomed = 0;
    int rc = worker_open(w);
    if (rc < 0) {
        log_error("socket_open_failed", "worker=%s endpoint=%s err=\"%s\"", w->worker_id,
                  w->endpoint, zmq_strerror(-rc));
        w->hello_ms = clock_mono_ms();
        return;
    }
    worker_hello(w);
}

static void worker_tick_cb(uv_timer_t *t)
{
    worker_t *w = t->data;
    int64_t now = clock_mono_ms();
    if (w->stopping)
        return;
    if (!w->welcomed) {
        if (now - w->hello_ms >= w->backoff_ms) {
            w->backoff_ms = w->backoff_ms * 2 > WORKER_BACKOFF_MAX_MS ? WORKER_BACKOFF_MAX_MS
                                                                      : w->backoff_ms * 2;
            worker_reconnect(w, "no welcome");
        }
        return;
    }
    int64_t hb = w->heartbeat_ms;
    if (now - w->last_rx_ms > 3 * hb) {
        w->backoff_ms = WORKER_BACKOFF_MIN_MS;
        worker_reconnect(w, "coordinator silent for 3 heartbeats");
        return;
    }
    if (now - w->last_ping_ms >= hb)
        worker_send_ping(w);
    int64_t resend = 2 * hb > 1000 ? 2 * hb : 1000;
    for (held_t *h = w->held; h; h = h->next)
        if (now - h->last_sent_ms >= resend)
            worker_send_report(w, h);
}

/* ---- start and stop --------------------------------------------------------------------------- */

static void worker_close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void worker_signal_cb(uv_signal_t *s, int signum)
{
    worker_t *w = s->data;
    if (w->stopping)
        return;
    log_info("stopping", "worker=%s signal=%d running=%u held=%u done=%llu failed=%llu",
             w->worker_id, signum, w->running, w->n_held, w->done, w->failed);
    w->stopping = 1;
    /* Running attempts are given up (the coordinator requeues them when their leases pass);
     * held results stay on disk for the next start. */
    for (unsigned i = 0; i < w->slots; i++)
        job_destroy(&w->jobs[i]);
    w->running = 0;
    worker_close_socket(w);
    worker_close_handle((uv_handle_t *)&w->tick);
    worker_close_handle((uv_handle_t *)&w->flush);
    worker_close_handle((uv_handle_t *)&w->sigint);
    worker_close_handle((uv_handle_t *)&w->sigterm);
}

static void usage(FILE *f)
{
    fputs("usage: regmix-worker --coordinator ENDPOINT [OPTIONS]\n"
          "\n"
          "Run RegMix proxy-training attempts for a regmix-coordinator: connect to its worker\n"
          "endpoint, announce the slots and GPUs of this machine, run each assigned attempt\n"
          "(regmix-train, a command, or a synthetic job) in its own directory, stream progress\n"
          "and send the result until the coordinator acknowledges it.\n"
          "\n"
          "Options:\n"
          "  --coordinator ENDPOINT  coordinator's worker endpoint, e.g. tcp://host:5555\n"
          "                          (default $REGMIX_WORKER_ENDPOINT)\n"
          "  --slots N               attempts run at once (default: GPUs found, at least 1)\n"
          "  --gpus auto|none|LIST   GPUs offered: auto asks nvidia-smi, LIST is e.g. 0,1\n"
          "                          (default auto)\n"
          "  --workdir DIR           job directories (logs, result.json until acknowledged)\n"
          "                          and outbox.jsonl (synthetic results until acknowledged)\n"
          "                          (default /var/tmp/regmix-worker/NAME)\n"
          "  --name NAME             worker name; the id is HOST:NAME (default worker)\n"
          "  --trainer PATH          regmix-train to run for builtin jobs (default next to this\n"
          "                          program in ../train/, else on PATH)\n"
          "  --kill-grace-ms MS      SIGTERM to SIGKILL delay when cancelling (default 5000)\n"
          "  --curve-server-key FILE the coordinator's CURVE public key (Z85): encrypt the\n"
          "                          connection (default $REGMIX_CURVE_SERVER_KEY)\n"
          "  --curve-secret-key FILE this worker's CURVE secret key (Z85, e.g. from regmixctl\n"
          "                          keygen); its public key must be on the coordinator's\n"
          "                          --curve-allow list. Without it, with a server key, a\n"
          "                          fresh key pair is used (default $REGMIX_CURVE_SECRET_KEY)\n"
          "  --log-level L           debug, info, warn or error (default info)\n"
          "  -h, --help              show this help\n"
          "  --version               show the version\n"
          "\n"
          "Example:\n"
          "  regmix-worker --coordinator tcp://10.0.0.1:5555 --slots 8 --gpus auto \\\n"
          "      --workdir /scratch/regmix --name node17 \\\n"
          "      --curve-server-key /etc/regmix/coordinator.pub \\\n"
          "      --curve-secret-key /etc/regmix/node17.key\n",
          f);
}

static int parse_uint(const char *s, unsigned max, unsigned *ret)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v > max || s[0] == '-')
        return -EINVAL;
    *ret = (unsigned)v;
    return 0;
}

static void default_trainer(char *buf, size_t size)
{
    char exe[PATH_MAX];
    size_t len = sizeof exe;
    if (uv_exepath(exe, &len) == 0) {
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            int n = snprintf(buf, size, "%s/../train/regmix-train", exe);
            if (n > 0 && (size_t)n < size && access(buf, X_OK) == 0)
                return;
        }
    }
    snprintf(buf, size, "regmix-train");
}

int main(int argc, char **argv)
{
    enum {
        OPT_COORD = 1000,
        OPT_SLOTS,
        OPT_GPUS,
        OPT_WORKDIR,
        OPT_NAME,
        OPT_TRAINER,
        OPT_LOG,
        OPT_GRACE,
        OPT_CURVE_SERVER,
        OPT_CURVE_SECRET,
        OPT_VERSION
    };
    static const struct option opts[] = {
            {"coordinator", required_argument, NULL, OPT_COORD},
            {"slots", required_argument, NULL, OPT_SLOTS},
            {"gpus", required_argument, NULL, OPT_GPUS},
            {"workdir", required_argument, NULL, OPT_WORKDIR},
            {"name", required_argument, NULL, OPT_NAME},
            {"trainer", required_argument, NULL, OPT_TRAINER},
            {"log-level", required_argument, NULL, OPT_LOG},
            {"kill-grace-ms", required_argument, NULL, OPT_GRACE},
            {"curve-server-key", required_argument, NULL, OPT_CURVE_SERVER},
            {"curve-secret-key", required_argument, NULL, OPT_CURVE_SECRET},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, OPT_VERSION},
            {NULL, 0, NULL, 0},
    };
    const char *endpoint = getenv("REGMIX_WORKER_ENDPOINT");
    const char *gpus = "auto", *workdir = NULL, *name = "worker", *trainer = NULL;
    const char *curve_server = getenv("REGMIX_CURVE_SERVER_KEY");
    const char *curve_secret = getenv("REGMIX_CURVE_SECRET_KEY");
    unsigned slots = 0, grace = 5000;
    log_level_t level = LOG_LEVEL_INFO;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_COORD:
            endpoint = optarg;
            break;
        case OPT_SLOTS:
            if (parse_uint(optarg, WORKER_MAX_SLOTS, &slots) < 0 || slots == 0) {
                fprintf(stderr, "regmix-worker: --slots must be 1..%d\n", WORKER_MAX_SLOTS);
                return 2;
            }
            break;
        case OPT_GPUS:
            gpus = optarg;
            break;
        case OPT_WORKDIR:
            workdir = optarg;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        case OPT_TRAINER:
            trainer = optarg;
            break;
        case OPT_CURVE_SERVER:
            curve_server = optarg;
            break;
        case OPT_CURVE_SECRET:
            curve_secret = optarg;
            break;
        case OPT_GRACE:
            if (parse_uint(optarg, 3600000, &grace) < 0) {
                fprintf(stderr, "regmix-worker: bad --kill-grace-ms '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_LOG:
            if (log_level_parse(optarg, &level) < 0) {
                fprintf(stderr, "regmix-worker: bad --log-level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("regmix-worker %s\n", REGMIX_VERSION);
            return 0;
        default:
            fprintf(stderr, "regmix-worker: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "regmix-worker: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (!endpoint || !*endpoint) {
        fprintf(stderr, "regmix-worker: --coordinator ENDPOINT is required (see --help)\n");
        return 2;
    }
    if (!*name || strchr(name, '/')) {
        fprintf(stderr, "regmix-worker: --name must be non-empty and without '/'\n");
        return 2;
    }
    log_init("regmix-worker", level);
    signal(SIGPIPE, SIG_IGN);

    static worker_t wk;
    worker_t *w = &wk;
    w->endpoint = endpoint;
    char err[512];
    if (curve_client_load(&w->curve, curve_server && *curve_server ? curve_server : NULL,
                          curve_secret && *curve_secret ? curve_secret : NULL, err,
                          sizeof err) < 0) {
        fprintf(stderr, "regmix-worker: %s\n", err);
        return 2;
    }
    w->n_gpus = gpu_discover(gpus, w->gpus, GPU_MAX);
    if (w->n_gpus < 0) {
        fprintf(stderr, "regmix-worker: bad --gpus '%s' (auto, none or e.g. 0,1)\n", gpus);
        return 2;
    }
    w->slots = slots ? slots : (w->n_gpus > 0 ? (unsigned)w->n_gpus : 1);
    if (gethostname(w->host, sizeof w->host - 1) != 0)
        snprintf(w->host, sizeof w->host, "localhost");
    snprintf(w->worker_id, sizeof w->worker_id, "%.200s:%.200s", w->host, name);
    unsigned char rnd[16];
    if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0) {
        uint64_t t = (uint64_t)clock_unix_ms() ^ ((uint64_t)getpid() << 32);
        memcpy(rnd, &t, sizeof t);
        memcpy(rnd + 8, &t, sizeof t);
    }
    for (int i = 0; i < 16; i++)
        snprintf(w->boot_id + 2 * i, 3, "%02x", rnd[i]);

    static char workdir_buf[PATH_MAX], trainer_buf[PATH_MAX];
    if (!workdir) {
        snprintf(workdir_buf, sizeof workdir_buf, "/var/tmp/regmix-worker/%s", name);
        workdir = workdir_buf;
    }
    if (!trainer) {
        default_trainer(trainer_buf, sizeof trainer_buf);
        trainer = trainer_buf;
    }
    /* Create the workdir (and its parent) now, so a bad path is an error at start. */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", workdir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        mkdir(parent, 0755);
    }
    if (mkdir(workdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "regmix-worker: cannot create --workdir %s: %s\n", workdir,
                strerror(errno));
        return 1;
    }
    /* Jobs run with their own directory as cwd: every path handed to them must be absolute. */
    static char workdir_abs[PATH_MAX], trainer_abs[PATH_MAX];
    if (realpath(workdir, workdir_abs))
        workdir = workdir_abs;
    if (strchr(trainer, '/') && realpath(trainer, trainer_abs))
        trainer = trainer_abs;
    w->jcfg.workdir = workdir;
    w->jcfg.trainer = trainer;
    w->jcfg.kill_grace_ms = (int)grace;
    w->jobs = calloc(w->slots, sizeof *w->jobs);
    if (!w->jobs)
        return 1;
    int bad = 0;
    int found = report_scan(workdir, worker_scan_cb, w, &bad);
    if (found < 0) {
        fprintf(stderr, "regmix-worker: cannot read --workdir %s: %s\n", workdir, strerror(-found));
        return 1;
    }
    if (bad)
        log_warn("reports_unreadable", "worker=%s workdir=%s count=%d", w->worker_id, workdir, bad);
    int rc = report_journal_open(workdir, worker_journal_cb, w, &w->journal, &bad);
    if (rc < 0) {
        fprintf(stderr, "regmix-worker: cannot open the outbox journal in %s: %s\n", workdir,
                strerror(-rc));
        return 1;
    }
    if (bad)
        log_warn("journal_lines_skipped", "worker=%s workdir=%s count=%d", w->worker_id, workdir,
                 bad);

    w->loop = uv_default_loop();
    w->zctx = zmq_ctx_new();
    if (!w->zctx) {
        fprintf(stderr, "regmix-worker: cannot create a ZeroMQ context\n");
        return 1;
    }
    w->backoff_ms = WORKER_BACKOFF_MIN_MS;
    w->heartbeat_ms = WORKER_DEFAULT_HB_MS;
    rc = worker_open(w);
    if (rc < 0) {
        fprintf(stderr, "regmix-worker: cannot connect to %s: %s\n", endpoint, zmq_strerror(-rc));
        zmq_ctx_term(w->zctx);
        return 2;
    }
    log_info("started",
             "worker=%s boot=%s pid=%d slots=%u gpus=%d workdir=%s trainer=%s recovered=%u "
             "curve=\"%s\"",
             w->worker_id, w->boot_id, (int)getpid(), w->slots, w->n_gpus, workdir, trainer,
             w->n_held, w->curve.enabled ? w->curve.public_ : "off");
    uv_timer_init(w->loop, &w->tick);
    uv_timer_init(w->loop, &w->flush);
    w->tick.data = w;
    w->flush.data = w;
    uv_signal_init(w->loop, &w->sigint);
    uv_signal_init(w->loop, &w->sigterm);
    w->sigint.data = w;
    w->sigterm.data = w;
    uv_signal_start(&w->sigint, worker_signal_cb, SIGINT);
    uv_signal_start(&w->sigterm, worker_signal_cb, SIGTERM);
    uv_timer_start(&w->tick, worker_tick_cb, WORKER_TICK_MS, WORKER_TICK_MS);
    worker_hello(w);

    uv_run(w->loop, UV_RUN_DEFAULT);

    worker_close_socket(w);
    uv_run(w->loop, UV_RUN_DEFAULT); /* close callbacks of the last handles */
    zmq_ctx_term(w->zctx);
    while (w->held) {
        held_t *h = w->held;
        w->held = h->next;
        report_clear(&h->r);
        free(h);
    }
    while (w->queue) {
        queued_t *q = w->queue;
        w->queue = q->next;
        regmix__assign__free_unpacked(q->a, NULL);
        free(q);
    }
    free(w->jobs);
    report_journal_close(&w->journal);
    uv_loop_close(w->loop);
    log_info("stopped", "worker=%s", w->worker_id);
    return 0;
}
