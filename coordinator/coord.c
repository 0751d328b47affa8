#include "coord.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "client.h"
#include "clock.h"
#include "exporter.h"
#include "log.h"
#include "notify.h"
#include "refit.h"
#include "scheduler.h"
#include "session.h"
#include "target.h"

typedef struct coord_out {
    void *sock;
    uint8_t rid[FRAME_MAX_ROUTING_ID];
    size_t rlen;
    uint8_t *buf;
    size_t len;
    uint64_t attempt_id;
} coord_out_t;

void coord_config_defaults(coord_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->db_path = "./regmix.db";
    cfg->workers_ep = "tcp://*:5555";
    cfg->clients_ep = "tcp://127.0.0.1:5556";
    cfg->heartbeat_ms = 1000;
    cfg->lease_ms = 30000;
    cfg->max_workers = 4096;
    cfg->max_sweeps = 256;
    cfg->max_spec_bytes = 1u << 20;
    cfg->quarantine_after = 5;
    cfg->linger_ms = 500;
    cfg->progress_every_ms = 5000;
    cfg->commit_window_ms = 0;
}

/* ---- errors and logging ---------------------------------------------------------------------- */

void coord_fatal(coord_t *c, const char *what)
{
    if (c->fatal)
        return;
    c->fatal = 1;
    log_error("storage_failed", "what=%s error=\"%s\" action=exit", what, store_errmsg(c->store));
    store_rollback(c->store);
    uv_stop(c->loop);
}

int coord_write(coord_t *c)
{
    if (c->fatal)
        return -EIO;
    int r = store_begin(c->store);
    if (r < 0)
        coord_fatal(c, "begin");
    return r;
}

static void coord__hex(const uint8_t *b, size_t n, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 3 <= outlen; i++, j += 2)
        snprintf(out + j, 3, "%02x", b[i]);
    out[j < outlen ? j : outlen - 1] = '\0';
}

void coord_log_bad(
        coord_t *c, const char *endpoint, const uint8_t *rid, size_t rlen, const char *why)
{
    c->n_bad_input++;
    int64_t now = clock_mono_ms();
    if (now - c->bad_log_window_mono >= 1000) {
        if (c->bad_log_count > 20)
            log_warn("bad_input_suppressed", "count=%d", c->bad_log_count - 20);
        c->bad_log_window_mono = now;
        c->bad_log_count = 0;
    }
    if (++c->bad_log_count > 20)
        return;
    char hex[2 * 32 + 1];
    coord__hex(rid, rlen < 32 ? rlen : 32, hex, sizeof hex);
    char q[256];
    log_warn("bad_input", "endpoint=%s peer=%s why=%s", endpoint, hex[0] ? hex : "-",
             log_quote(why, q, sizeof q));
}

/* ---- outbound queue and group commit ------------------------------------------------------- */

/* The idle handle only keeps the loop from blocking while work is queued. */
static void coord__idle_noop(uv_idle_t *h)
{
    (void)h;
}

void coord_send(coord_t *c,
                void *sock,
                const uint8_t *rid,
                size_t rlen,
                Regmix__Envelope *env,
                uint64_t attempt_id)
{
    if (!sock)
        return;
    env->version = FRAME_VERSION;
    env->id = ++c->next_msg_id;
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = frame_pack(env, &buf, &len);
    if (r < 0) {
        log_error("pack_failed", "body=%s error=%d", frame_body_name(env->body_case), r);
        return;
    }
    if (c->nout == c->out_cap) {
        int cap = c->out_cap ? c->out_cap * 2 : 256;
        coord_out_t *o = realloc(c->out, (size_t)cap * sizeof *o);
        if (!o) {
            free(buf);
            log_error("out_of_memory", "what=send_queue");
            return;
        }
        c->out = o;
        c->out_cap = cap;
    }
    coord_out_t *o = &c->out[c->nout++];
    o->sock = sock;
    o->rlen = rlen > FRAME_MAX_ROUTING_ID ? FRAME_MAX_ROUTING_ID : rlen;
    memcpy(o->rid, rid, o->rlen);
    o->buf = buf;
    o->len = len;
    o->attempt_id = attempt_id;
    /* Once stopping, the handles are closed: what is queued now is never sent, and writes are
     * committed by coord_destroy(). Before coord_init() has made the handle (while loading the
     * store: an orphaned target is persisted as failed), there is no loop running to wake: the
     * first iteration flushes anyway. */
    if (!c->stopping && c->flush_idle.loop)
        uv_idle_start(&c->flush_idle, coord__idle_noop);
}

void coord_send_error(coord_t *c,
                      void *sock,
                      const uint8_t *rid,
                      size_t rlen,
                      uint64_t reply_to,
                      Regmix__ErrorCode code,
                      const char *fmt,
                      ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    Regmix__Envelope env;
    Regmix__Error e = REGMIX__ERROR__INIT;
    frame_envelope_init(&env, 0);
    e.code = code;
    e.message = text;
    env.reply_to = reply_to;
    env.body_case = REGMIX__ENVELOPE__BODY_ERROR;
    env.error = &e;
    coord_send(c, sock, rid, rlen, &env, 0);
}

void coord_reject_malformed(coord_t *c, void *sock, const char *endpoint, const frame_msg_t *msg)
{
    const char *why = msg->why ? msg->why : "bad message";
    if (msg->routing_len == 0) {
        log_error("socket_error", "endpoint=%s error=%d why=\"%s\"", endpoint, msg->err, why);
        return;
    }
    coord_log_bad(c, endpoint, msg->routing_id, msg->routing_len, why);
    coord_send_error(c, sock, msg->routing_id, msg->routing_len, msg->id,
                     msg->err == -EPROTONOSUPPORT ? REGMIX__ERROR_CODE__ERROR_CODE_BAD_VERSION
                                                  : REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE,
                     "%s", why);
}

void coord_kick(coord_t *c)
{
    c->sched_dirty = 1;
    /* Once stopping, the handles are closed: what is queued now is never sent, and writes are
     * committed by coord_destroy(). Before coord_init() has made the handle (while loading the
     * store: an orphaned target is persisted as failed), there is no loop running to wake: the
     * first iteration flushes anyway. */
    if (!c->stopping && c->flush_idle.loop)
        uv_idle_start(&c->flush_idle, coord__idle_noop);
}

/* A message to a peer that is gone: requeue an ASSIGN's attempt, forget a worker's route or a
 * client's watches. */
static void coord__undeliverable(coord_t *c, coord_out_t *o, int err)
{
    if (o->sock == c->wsock) {
        worker_t *w = coord_worker_by_rid(c, o->rid, o->rlen);
        log_info("send_undeliverable", "endpoint=workers worker=%s attempt=%llu error=%d",
                 w ? w->worker_id : "-", (unsigned long long)o->attempt_id, err);
        if (w && err == -EHOSTUNREACH)
            w->connected = 0;
        if (o->attempt_id) {
            attempt_t *a = attempt_table_get(c->attempts, (int64_t)o->attempt_id);
            if (a)
                coord_attempt_lost(c, a, "assign undeliverable");
        }
    } else {
        client_forget_peer(c, o->rid, o->rlen);
    }
}

static void coord__flush_now(coord_t *c)
{
    if (c->fatal)
        return;
    c->last_flush_mono = clock_mono_ms();
    if (c->sched_dirty && !c->stopping) {
        c->sched_dirty = 0;
        scheduler_run(c);
    }
    if (store_in_txn(c->store) && store_commit(c->store) < 0) {
        coord_fatal(c, "commit");
        return;
    }
    int n = c->nout;
    coord_out_t *outs = c->out;
    /* Sending may queue more (undeliverable handling): take the batch first. */
    c->out = NULL;
    c->nout = c->out_cap = 0;
    for (int i = 0; i < n; i++) {
        coord_out_t *o = &outs[i];
        if (zmq_send(o->sock, o->rid, o->rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(o->sock, o->buf, o->len, ZMQ_DONTWAIT) < 0)
            coord__undeliverable(c, o, -errno);
        free(o->buf);
    }
    free(outs);
    if (c->nout == 0 && !c->sched_dirty)
        uv_idle_stop(&c->flush_idle);
}

static void coord__flush_timer(uv_timer_t *t)
{
    coord__flush_now(t->data);
}

/* Once per loop iteration: commit and send, unless the last commit is younger than the commit
 * window; then a timer does it when the window closes, so a busy coordinator commits (and
 * writes the WAL) once per window instead of once per message. */
static void coord__flush(uv_check_t *h)
{
    coord_t *c = h->data;
    if (c->fatal)
        return;
    if (c->nout == 0 && !c->sched_dirty && !store_in_txn(c->store)) {
        uv_idle_stop(&c->flush_idle);
        return;
    }
    int64_t age = clock_mono_ms() - c->last_flush_mono;
    if (c->cfg.commit_window_ms <= 0 || age >= c->cfg.commit_window_ms || c->nout >= 4096) {
        uv_timer_stop(&c->flush_timer);
        coord__flush_now(c);
        return;
    }
    uv_idle_stop(&c->flush_idle);
    if (!uv_is_active((uv_handle_t *)&c->flush_timer))
        uv_timer_start(&c->flush_timer, coord__flush_timer,
                       (uint64_t)(c->cfg.commit_window_ms - age), 0);
}

/* ---- sweeps ---------------------------------------------------------------------------------- */

void coord_sweep_free(sweep_t *sw)
{
    if (!sw)
        return;
    spec_free(sw->spec);
    free(sw->history);
    free(sw->name);
    for (int i = 0; i < sw->ndomains; i++)
        free(sw->domains ? sw->domains[i] : NULL);
    free(sw->domains);
    if (sw->job)
        regmix__assign__free_unpacked(sw->job, NULL);
    free(sw->watchers);
    free(sw);
}

int coord_sweep_add(coord_t *c, sweep_t *sw)
{
    if (c->nsweeps == c->sweeps_cap) {
        int cap = c->sweeps_cap ? c->sweeps_cap * 2 : 16;
        sweep_t **s = realloc(c->sweeps, (size_t)cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        c->sweeps = s;
        c->sweeps_cap = cap;
    }
    c->sweeps[c->nsweeps++] = sw;
    return 0;
}

sweep_t *coord_sweep_by_id(coord_t *c, int64_t id)
{
    int lo = 0, hi = c->nsweeps - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c->sweeps[mid]->id == id)
            return c->sweeps[mid];
        if (c->sweeps[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

sweep_t *coord_sweep_find(coord_t *c, const char *key)
{
    if (!key || !*key)
        return NULL;
    for (int i = c->nsweeps - 1; i >= 0; i--)
        if (strcmp(c->sweeps[i]->sweep_id, key) == 0)
            return c->sweeps[i];
    for (int i = c->nsweeps - 1; i >= 0; i--)
        if (strcmp(c->sweeps[i]->name, key) == 0)
            return c->sweeps[i];
    return NULL;
}

void coord_gpu_classes_update(coord_t *c)
{
    c->ngpu_classes = 0;
    for (int i = 0; i < c->nsweeps; i++) {
        sweep_t *sw = c->sweeps[i];
        if (sw->state != SWEEP_STATE_RUNNING && sw->state != SWEEP_STATE_CONVERGED)
            continue;
        int seen = 0;
        for (int j = 0; j < c->ngpu_classes; j++)
            seen |= c->gpu_classes[j] == sw->gpus;
        if (!seen && c->ngpu_classes < COORD_GPU_CLASSES_MAX)
            c->gpu_classes[c->ngpu_classes++] = sw->gpus;
    }
}

void coord_sweep_info(const sweep_t *sw, Regmix__SweepInfo *info, Regmix__RunCounts *counts)
{
    regmix__sweep_info__init(info);
    regmix__run_counts__init(counts);
    info->sweep_id = (char *)sw->sweep_id;
    info->name = sw->name;
    info->state = (Regmix__SweepState)sw->state;
    counts->queued = (uint32_t)sw->counts[RUN_STATE_QUEUED];
    counts->leased = (uint32_t)sw->counts[RUN_STATE_LEASED];
    counts->running = (uint32_t)sw->counts[RUN_STATE_RUNNING];
    counts->done = (uint32_t)sw->counts[RUN_STATE_DONE];
    counts->failed = (uint32_t)sw->counts[RUN_STATE_FAILED];
    counts->dead = (uint32_t)sw->counts[RUN_STATE_DEAD];
    counts->cancelled = (uint32_t)sw->counts[RUN_STATE_CANCELLED];
    info->runs = counts;
    info->priority = sw->priority;
    info->created_unix_ms = sw->created_ms;
    info->updated_unix_ms = sw->updated_ms;
    info->fits = (uint32_t)sw->nfits;
    /* A converged sweep whose kept runs then finished is done, and still converged. */
    info->converged = sw->state == SWEEP_STATE_CONVERGED || sw->converged_after_runs > 0;
    info->converged_after_runs = (uint32_t)sw->converged_after_runs;
}

void coord_sweep_event(coord_t *c, sweep_t *sw, const char *kind, const char *text, int final)
{
    if (sw->nwatchers == 0)
        return;
    Regmix__Envelope env;
    Regmix__WatchEvent ev = REGMIX__WATCH_EVENT__INIT;
    Regmix__SweepInfo info;
    Regmix__RunCounts counts;
    coord_sweep_info(sw, &info, &counts);
    ev.sweep_id = sw->sweep_id;
    ev.sweep = &info;
    ev.kind = (char *)kind;
    ev.text = (char *)text;
    ev.final = final;
    for (int i = 0; i < sw->nwatchers; i++) {
        frame_envelope_init(&env, 0);
        env.reply_to = sw->watchers[i].req_id;
        env.body_case = REGMIX__ENVELOPE__BODY_WATCH_EVENT;
        env.watch_event = &ev;
        coord_send(c, c->csock, sw->watchers[i].rid, sw->watchers[i].rlen, &env, 0);
    }
    if (final)
        sw->nwatchers = 0;
}

void coord_sweep_count_only(coord_t *c, sweep_t *sw, run_state_t from, run_state_t to, int64_t n)
{
    if (n <= 0 || from == to)
        return;
    sw->counts[from] -= n;
    sw->counts[to] += n;
    sw->updated_ms = clock_unix_ms();
    if (to == RUN_STATE_QUEUED) {
        c->queue_maybe_nonempty = 1;
        coord_kick(c);
    }
}

void coord_sweep_count(coord_t *c, sweep_t *sw, run_state_t from, run_state_t to, int64_t n)
{
    if (n <= 0 || from == to)
        return;
    coord_sweep_count_only(c, sw, from, to, n);
    coord_sweep_check_end(c, sw);
}

void coord_sweep_check_end(coord_t *c, sweep_t *sw)
{
    int64_t now = clock_unix_ms();
    if (!states_sweep_open(sw->state))
        return;
    int64_t left = sw->counts[RUN_STATE_QUEUED] + sw->counts[RUN_STATE_LEASED] +
                   sw->counts[RUN_STATE_RUNNING] + sw->counts[RUN_STATE_FAILED];
    if (left > 0)
        return;
    int converged = sw->state == SWEEP_STATE_CONVERGED;
    sweep_state_t state = sw->counts[RUN_STATE_DONE] > 0 || sw->nruns == 0 ? SWEEP_STATE_DONE
                                                                           : SWEEP_STATE_FAILED;
    if (converged)
        state = SWEEP_STATE_CONVERGED;
    if (coord_write(c) < 0)
        return;
    if (store_sweep_set_state(c->store, sw->id, state, now) < 0) {
        coord_fatal(c, "sweep_set_state");
        return;
    }
    sw->state = state;
    log_info("sweep_ended", "sweep=%s state=%s done=%lld dead=%lld cancelled=%lld", sw->sweep_id,
             states_sweep_name(state), (long long)sw->counts[RUN_STATE_DONE],
             (long long)sw->counts[RUN_STATE_DEAD], (long long)sw->counts[RUN_STATE_CANCELLED]);
    char text[160];
    snprintf(text, sizeof text, "sweep %s ended: %s", sw->sweep_id, states_sweep_name(state));
    coord_sweep_event(c, sw, "end", text, 1);
    coord_gpu_classes_update(c);
}

uint32_t coord_sweep_cancel_runs(coord_t *c, sweep_t *sw, const char *why)
{
    if (coord_write(c) < 0)
        return 0;
    int64_t now = clock_unix_ms();
    int nq = store_runs_move(c->store, sw->id, RUN_STATE_QUEUED, RUN_STATE_CANCELLED, now);
    int nf = store_runs_move(c->store, sw->id, RUN_STATE_FAILED, RUN_STATE_CANCELLED, now);
    if (nq < 0 || nf < 0) {
        coord_fatal(c, "runs_cancel");
        return 0;
    }
    coord_sweep_count_only(c, sw, RUN_STATE_QUEUED, RUN_STATE_CANCELLED, nq);
    coord_sweep_count_only(c, sw, RUN_STATE_FAILED, RUN_STATE_CANCELLED, nf);
    uint32_t cancelled = (uint32_t)(nq + nf);
    int n = attempt_table_count(c->attempts);
    attempt_t **live = calloc((size_t)(n ? n : 1), sizeof *live);
    if (live) {
        n = attempt_table_collect(c->attempts, live, n);
        for (int i = 0; i < n && !c->fatal; i++) {
            if (live[i]->sweep == sw) {
                coord_attempt_cancel(c, live[i], why);
                cancelled++;
            }
        }
        free(live);
    }
    return cancelled;
}

/* ---- workers --------------------------------------------------------------------------------- */

worker_t *coord_worker_by_rid(coord_t *c, const uint8_t *rid, size_t rlen)
{
    for (int i = 0; i < c->nworkers; i++) {
        worker_t *w = c->workers[i];
        if (w->connected && w->rlen == rlen && memcmp(w->rid, rid, rlen) == 0)
            return w;
    }
    return NULL;
}

worker_t *coord_worker_by_id(coord_t *c, const char *worker_id)
{
    for (int i = 0; i < c->nworkers; i++)
        if (strcmp(c->workers[i]->worker_id, worker_id) == 0)
            return c->workers[i];
    return NULL;
}

worker_state_t coord_worker_state(const worker_t *w)
{
    if (w->quarantined)
        return WORKER_STATE_QUARANTINED;
    if (w->draining)
        return WORKER_STATE_DRAINING;
    return w->alive ? WORKER_STATE_CONNECTED : WORKER_STATE_LOST;
}

void coord_worker_persist(coord_t *c, worker_t *w)
{
    if (coord_write(c) < 0)
        return;
    store_worker_row_t row = {
            .worker_id = w->worker_id,
            .host = w->host,
            .boot_id = w->boot_id,
            .gpus_json = w->gpus_json,
            .state = coord_worker_state(w),
            .software_version = w->software_version,
            .slots = w->slots,
            .consecutive_failures = w->consecutive_failures,
            .last_seen_ms = w->last_seen_ms,
            .done = w->done,
            .failed = w->failed,
    };
    if (store_worker_upsert(c->store, &row, clock_unix_ms()) < 0)
        coord_fatal(c, "worker_upsert");
    w->dirty = 0;
}

/* ---- attempts -------------------------------------------------------------------------------- */

void coord_attempt_drop(coord_t *c, attempt_t *a)
{
    worker_t *w = a->worker;
    if (w) {
        attempt_list_remove(&w->attempts, a);
        w->outstanding--;
        w->gpu_used &= ~a->gpu_mask;
        coord_kick(c);
    } else {
        attempt_list_remove(&c->orphans, a);
    }
    attempt_table_remove(c->attempts, a);
    free(a);
}

void coord_attempt_lost(coord_t *c, attempt_t *a, const char *why)
{
    if (coord_write(c) < 0)
        return;
    int64_t now = clock_unix_ms();
    sweep_t *sw = a->sweep;
    run_state_t to = a->attempt_no >= sw->max_attempts ? RUN_STATE_DEAD : RUN_STATE_QUEUED;
    run_state_t from = a->running ? RUN_STATE_RUNNING : RUN_STATE_LEASED;
    if (store_attempt_set_state(c->store, a->id, ATTEMPT_STATE_LOST, now) < 0) {
        coord_fatal(c, "attempt_lost");
        return;
    }
    int r = store_run_finish(c->store, a->run, a->id, to, now, now);
    if (r < 0) {
        coord_fatal(c, "run_requeue");
        return;
    }
    log_info("attempt_lost", "attempt=%lld run=%lld sweep=%s worker=%s why=\"%s\" run_state=%s",
             (long long)a->id, (long long)a->run, sw->sweep_id, a->worker_id, why,
             states_run_name(to));
    coord_attempt_drop(c, a);
    if (r == 1)
        coord_sweep_count(c, sw, from, to, 1);
}

void coord_attempt_cancel(coord_t *c, attempt_t *a, const char *why)
{
    if (coord_write(c) < 0)
        return;
    int64_t now = clock_unix_ms();
    sweep_t *sw = a->sweep;
    run_state_t from = a->running ? RUN_STATE_RUNNING : RUN_STATE_LEASED;
    if (store_attempt_set_state(c->store, a->id, ATTEMPT_STATE_CANCELLED, now) < 0) {
        coord_fatal(c, "attempt_cancel");
        return;
    }
    int r = store_run_finish(c->store, a->run, a->id, RUN_STATE_CANCELLED, 0, now);
    if (r < 0) {
        coord_fatal(c, "run_cancel");
        return;
    }
    worker_t *w = a->worker;
    if (w && w->connected) {
        Regmix__Envelope env;
        Regmix__Cancel cm = REGMIX__CANCEL__INIT;
        frame_envelope_init(&env, 0);
        cm.attempt_id = (uint64_t)a->id;
        cm.reason = (char *)why;
        env.body_case = REGMIX__ENVELOPE__BODY_CANCEL;
        env.cancel = &cm;
        coord_send(c, c->wsock, w->rid, w->rlen, &env, 0);
    }
    coord_attempt_drop(c, a);
    if (r == 1)
        coord_sweep_count(c, sw, from, RUN_STATE_CANCELLED, 1);
}

/* ---- the periodic tick: expiry, leases, retries, watchdog ------------------------------------ */

static void coord__retry_counted(int64_t sweep, void *data)
{
    coord_t *c = data;
    sweep_t *sw = coord_sweep_by_id(c, sweep);
    if (sw)
        coord_sweep_count(c, sw, RUN_STATE_FAILED, RUN_STATE_QUEUED, 1);
}

static void coord__tick(uv_timer_t *t)
{
    coord_t *c = t->data;
    if (c->fatal || c->stopping)
        return;
    int64_t mono = clock_mono_ms();
    int64_t wall = clock_unix_ms();
    int64_t expire = 3 * (int64_t)c->cfg.heartbeat_ms;
    /* A loop that was blocked (a big submit, a slow disk) heard nobody meanwhile: that is not
     * the workers' fault, so the silence they are judged by starts after the stall. */
    int64_t gap = c->last_tick_mono ? mono - c->last_tick_mono : 0;
    c->last_tick_mono = mono;
    if (gap > c->cfg.heartbeat_ms) {
        log_warn("loop_stalled", "ms=%lld", (long long)gap);
        for (int i = 0; i < c->nworkers; i++)
            if (c->workers[i]->last_seen_mono < mono - gap)
                c->workers[i]->last_seen_mono += gap;
        if (c->orphans)
            c->orphan_deadline_mono += gap;
    }
    for (int i = 0; i < c->nworkers; i++) {
        worker_t *w = c->workers[i];
        if (w->alive && mono - w->last_seen_mono > expire) {
            w->alive = 0;
            log_warn("worker_lost", "worker=%s silent_ms=%lld running=%d", w->worker_id,
                     (long long)(mono - w->last_seen_mono), w->outstanding);
            coord_worker_persist(c, w);
        }
        if (!w->alive && w->attempts && mono - w->last_seen_mono > c->cfg.lease_ms) {
            while (w->attempts && !c->fatal)
                coord_attempt_lost(c, w->attempts, "lease passed");
        }
        if (w->alive && w->attempts) {
            /* An ASSIGN the worker never confirmed (STARTED, or listed in a PING) within a lease
             * is lost: the ASSIGN went astray. */
            for (attempt_t *a = w->attempts, *next; a && !c->fatal; a = next) {
                next = a->lnext;
                if (!a->running && !a->reported && mono - a->leased_mono > c->cfg.lease_ms)
                    coord_attempt_lost(c, a, "never started");
            }
        }
        if (w->dirty && mono - c->last_persist_mono > 1000)
            coord_worker_persist(c, w);
    }
    if (mono - c->last_persist_mono > 1000)
        c->last_persist_mono = mono;
    if (c->orphans && mono > c->orphan_deadline_mono) {
        while (c->orphans && !c->fatal)
            coord_attempt_lost(c, c->orphans, "not re-adopted after restart");
    }
    if (wall >= c->next_retry_ms && !c->fatal) {
        if (coord_write(c) == 0) {
            if (store_runs_retry_due(c->store, wall, coord__retry_counted, c) < 0)
                coord_fatal(c, "retry");
            c->next_retry_ms = store_runs_next_retry(c->store);
        }
    }
    notify_watchdog();
    if (store_in_txn(c->store) || c->sched_dirty)
        /* Once stopping, the handles are closed: what is queued now is never sent, and writes are
     * committed by coord_destroy(). */
        if (!c->stopping)
            uv_idle_start(&c->flush_idle, coord__idle_noop);
}

/* ---- loading ----------------------------------------------------------------------------------- */

typedef struct {
    coord_t *c;
    sweep_t *sw;
} coord__load_t;

static int coord__load_domain(int idx, const char *name, double tokens, double prior, void *data)
{
    (void)tokens;
    (void)prior;
    sweep_t *sw = data;
    if (idx < 0 || idx >= sw->ndomains)
        return 0;
    free(sw->domains[idx]);
    sw->domains[idx] = strdup(name);
    return sw->domains[idx] ? 0 : -ENOMEM;
}

static int coord__load_sweep(const store_sweep_row_t *row, void *data)
{
    coord_t *c = data;
    sweep_t *sw = calloc(1, sizeof *sw);
    if (!sw)
        return -ENOMEM;
    sw->id = row->id;
    snprintf(sw->sweep_id, sizeof sw->sweep_id, "%s", row->sweep_id);
    sw->name = strdup(row->name);
    sw->state = row->state;
    sw->priority = row->priority;
    sw->gpus = row->gpus;
    sw->max_attempts = row->max_attempts > 0 ? row->max_attempts : 1;
    sw->backoff_ms = row->backoff_ms;
    sw->ndomains = row->ndomains;
    sw->nruns = row->nruns;
    sw->created_ms = row->created_ms;
    sw->updated_ms = row->updated_ms;
    sw->converged_after_runs = row->converged_after_runs;
    sw->domains = calloc((size_t)(sw->ndomains > 0 ? sw->ndomains : 1), sizeof *sw->domains);
    sw->job = regmix__assign__unpack(NULL, row->job_len, row->job);
    if (!sw->name || !sw->domains || !sw->job) {
        coord_sweep_free(sw);
        return -EBADMSG;
    }
    int r = store_domains_foreach(c->store, sw->id, coord__load_domain, sw);
    char err[512] = "";
    if (row->spec_yaml[0] &&
        spec_parse_string(row->spec_name[0] ? row->spec_name : "spec.yaml", row->spec_yaml,
                          strlen(row->spec_yaml), &sw->spec, err, sizeof err) < 0) {
        char q[600];
        log_warn("spec_unparsable", "sweep=%s why=%s action=no_refits", sw->sweep_id,
                 log_quote(err, q, sizeof q));
        sw->spec = NULL;
    }
    if (r == 0)
        r = refit_load(c, sw);
    if (r == 0)
        r = coord_sweep_add(c, sw);
    if (r < 0) {
        coord_sweep_free(sw);
        return r;
    }
    return 0;
}

static int coord__load_count(int64_t sweep, run_state_t state, int64_t count, void *data)
{
    coord_t *c = data;
    sweep_t *sw = coord_sweep_by_id(c, sweep);
    if (sw && state > 0)
        sw->counts[state] += count;
    return 0;
}

static char *coord__strdup0(const char *s)
{
    return strdup(s ? s : "");
}

static int coord__load_worker(const store_worker_row_t *row, void *data)
{
    coord_t *c = data;
    if (c->nworkers == c->workers_cap) {
        int cap = c->workers_cap ? c->workers_cap * 2 : 16;
        worker_t **ws = realloc(c->workers, (size_t)cap * sizeof *ws);
        if (!ws)
            return -ENOMEM;
        c->workers = ws;
        c->workers_cap = cap;
    }
    worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    snprintf(w->worker_id, sizeof w->worker_id, "%s", row->worker_id);
    w->host = coord__strdup0(row->host);
    w->boot_id = coord__strdup0(row->boot_id);
    w->software_version = coord__strdup0(row->software_version);
    w->gpus_json = coord__strdup0(row->gpus_json);
    w->slots = row->slots;
    w->quarantined = row->state == WORKER_STATE_QUARANTINED;
    w->draining = row->state == WORKER_STATE_DRAINING;
    w->consecutive_failures = row->consecutive_failures;
    w->done = row->done;
    w->failed = row->failed;
    w->last_seen_ms = row->last_seen_ms;
    w->last_seen_mono = clock_mono_ms();
    c->workers[c->nworkers++] = w;
    return 0;
}

static int coord__load_attempt(const store_attempt_row_t *row, void *data)
{
    coord_t *c = data;
    sweep_t *sw = coord_sweep_by_id(c, row->sweep);
    if (!sw)
        return 0;
    attempt_t *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->id = row->id;
    a->run = row->run;
    a->sweep = sw;
    a->run_idx = row->run_idx;
    a->attempt_no = row->attempt_no;
    a->running = row->state == ATTEMPT_STATE_RUNNING;
    a->leased_mono = clock_mono_ms();
    snprintf(a->worker_id, sizeof a->worker_id, "%s", row->worker);
    /* gpu_indices ("0,2") are re-marked when the worker re-adopts the attempt. */
    for (const char *p = row->gpu_indices; *p;) {
        char *end = NULL;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p)
            break;
        if (v < 64)
            a->gpu_mask |= 1ull << v; /* indices for now; mapped to bits at adoption */
        p = *end == ',' ? end + 1 : end;
    }
    attempt_table_put(c->attempts, a);
    attempt_list_push(&c->orphans, a);
    return 0;
}

static int coord__load(coord_t *c, char *err, size_t errlen)
{
    int r = store_sweeps_foreach(c->store, coord__load_sweep, c);
    if (r == 0)
        r = store_run_counts(c->store, coord__load_count, c);
    if (r == 0)
        r = store_workers_foreach(c->store, coord__load_worker, c);
    if (r == 0)
        r = store_attempts_live(c->store, coord__load_attempt, c);
    if (r < 0) {
        snprintf(err, errlen, "loading the database: %s", store_errmsg(c->store));
        return r;
    }
    c->next_attempt_id = store_attempt_max_id(c->store) + 1;
    c->next_retry_ms = store_runs_next_retry(c->store);
    c->orphan_deadline_mono = clock_mono_ms() + c->cfg.lease_ms;
    c->queue_maybe_nonempty = 1;
    c->sched_dirty = 1;
    coord_gpu_classes_update(c);
    return 0;
}

/* ---- sockets ----------------------------------------------------------------------------------- */

static int coord__socket(coord_t *c, const char *ep, void **ret, char *err, size_t errlen)
{
    void *s = zmq_socket(c->zctx, ZMQ_ROUTER);
    if (!s) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return -errno;
    }
    int hwm = 1000000, one = 1;
    int r = frame_socket_setup(s, c->cfg.linger_ms);
    if (r == 0)
        r = auth_server_socket(c->auth, s);
    if (r == 0 && (zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
                   zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
                   zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof one) != 0))
        r = -errno;
    if (r == 0 && zmq_bind(s, ep) != 0)
        r = -errno;
    if (r < 0) {
        snprintf(err, errlen, "%s: %s", ep, zmq_strerror(-r));
        zmq_close(s);
        return r;
    }
    *ret = s;
    return 0;
}

static void coord__make_id(coord_t *c)
{
    uint8_t b[8] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, b, sizeof b) != (ssize_t)sizeof b)
            memset(b, 0, sizeof b);
        close(fd);
    }
    uint64_t x = clock_mono_ms() ^ ((uint64_t)getpid() << 32);
    for (int i = 0; i < 8; i++)
        b[i] ^= (uint8_t)(x >> (8 * i));
    char hex[17];
    coord__hex(b, 8, hex, sizeof hex);
    snprintf(c->coordinator_id, sizeof c->coordinator_id, "coord-%s", hex);
}

static void coord__signal(uv_signal_t *h, int signum)
{
    coord_t *c = h->data;
    log_info("signal", "signum=%d action=stop", signum);
    coord_stop(c);
}

int coord_init(coord_t *c, uv_loop_t *loop, const coord_config_t *cfg, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->cfg = *cfg;
    coord__make_id(c);
    int r = attempt_table_new(&c->attempts);
    if (r < 0)
        return r;
    r = store_open(cfg->db_path, &c->store, err, errlen);
    if (r < 0)
        return r;
    r = coord__load(c, err, errlen);
    if (r < 0)
        return r;
    if (cfg->targets_dir) {
        snprintf(c->targets_dir, sizeof c->targets_dir, "%s", cfg->targets_dir);
    } else {
        char tmp[1000];
        snprintf(tmp, sizeof tmp, "%s", cfg->db_path);
        char *slash = strrchr(tmp, '/');
        if (slash)
            *slash = '\0';
        snprintf(c->targets_dir, sizeof c->targets_dir, "%s/targets", slash ? tmp : ".");
    }
    r = target_load(c);
    if (r < 0) {
        snprintf(err, errlen, "loading targets: %s", store_errmsg(c->store));
        return r;
    }
    r = auth_new(cfg->curve_secret_path, cfg->curve_allow_path, &c->auth, err, errlen);
    if (r < 0)
        return r;
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        snprintf(err, errlen, "zmq_ctx_new failed");
        return -ENOMEM;
    }
    r = auth_start(c->auth, loop, c->zctx, err, errlen);
    if (r < 0)
        return r;
    r = coord__socket(c, cfg->workers_ep, &c->wsock, err, errlen);
    if (r == 0)
        r = coord__socket(c, cfg->clients_ep, &c->csock, err, errlen);
    if (r == 0)
        r = zloop_watch_new(loop, c->wsock, 1, session_on_message, c, &c->wwatch);
    if (r == 0)
        r = zloop_watch_new(loop, c->csock, 1, client_on_message, c, &c->cwatch);
    if (r < 0) {
        if (!err[0])
            snprintf(err, errlen, "watching sockets: %s", strerror(-r));
        return r;
    }
    if (cfg->metrics_addr) {
        r = exporter_start(c, cfg->metrics_addr, &c->exporter, err, errlen);
        if (r < 0)
            return r;
    }
    uv_check_init(loop, &c->flush_check);
    c->flush_check.data = c;
    uv_check_start(&c->flush_check, coord__flush);
    uv_idle_init(loop, &c->flush_idle);
    c->flush_idle.data = c;
    uv_timer_init(loop, &c->flush_timer);
    c->flush_timer.data = c;
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    int period = c->cfg.heartbeat_ms / 4;
    if (period > 250)
        period = 250;
    if (period < 5)
        period = 5;
    uv_timer_start(&c->tick, coord__tick, (uint64_t)period, (uint64_t)period);
    uv_signal_init(loop, &c->sigterm);
    uv_signal_init(loop, &c->sigint);
    c->sigterm.data = c->sigint.data = c;
    uv_signal_start(&c->sigterm, coord__signal, SIGTERM);
    uv_signal_start(&c->sigint, coord__signal, SIGINT);
    coord_kick(c);
    log_info("coordinator_started",
             "id=%s db=%s workers=%s clients=%s heartbeat_ms=%d lease_ms=%d sweeps=%d "
             "live_attempts=%d schema=%d curve=%s",
             c->coordinator_id, cfg->db_path, cfg->workers_ep, cfg->clients_ep, cfg->heartbeat_ms,
             cfg->lease_ms, c->nsweeps, attempt_table_count(c->attempts),
             store_schema_version(c->store),
             !c->auth                ? "off"
             : cfg->curve_allow_path ? "allow-list"
                                     : "any-client");
    return 0;
}

static void coord__close_handle(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h))
        uv_close(h, NULL);
}

void coord_stop(coord_t *c)
{
    if (c->stopping)
        return;
    c->stopping = 1;
    notify_stopping();
    /* Finish what this iteration did: commit, then send the acks that commit covers. */
    if (!c->fatal && c->flush_check.loop) {
        c->sched_dirty = 0;
        coord__flush_now(c);
    }
    refit_cancel_all(c);
    target_stop_all(c);
    zloop_watch_close(&c->wwatch);
    zloop_watch_close(&c->cwatch);
    auth_stop(c->auth);
    exporter_stop(&c->exporter);
    coord__close_handle((uv_handle_t *)&c->flush_check);
    coord__close_handle((uv_handle_t *)&c->flush_idle);
    coord__close_handle((uv_handle_t *)&c->flush_timer);
    coord__close_handle((uv_handle_t *)&c->tick);
    coord__close_handle((uv_handle_t *)&c->sigterm);
    coord__close_handle((uv_handle_t *)&c->sigint);
    /* The shutdown is bounded (linger); a second SIGTERM must not cut it short. A second SIGINT
     * (an impatient ^C) still kills. */
    signal(SIGTERM, SIG_IGN);
}

void coord_destroy(coord_t *c)
{
    if (c->wsock)
        zmq_close(c->wsock);
    if (c->csock)
        zmq_close(c->csock);
    c->wsock = c->csock = NULL;
    auth_destroy(&c->auth);
    if (c->zctx)
        zmq_ctx_term(c->zctx); /* bounded by ZMQ_LINGER */
    c->zctx = NULL;
    if (!c->fatal && c->store)
        store_commit(c->store);
    else if (c->store)
        store_rollback(c->store);
    store_close(&c->store);
    for (int i = 0; i < c->nout; i++)
        free(c->out[i].buf);
    free(c->out);
    c->out = NULL;
    for (int i = 0; i < c->nsweeps; i++)
        coord_sweep_free(c->sweeps[i]);
    free(c->sweeps);
    c->sweeps = NULL;
    for (int i = 0; i < c->nworkers; i++) {
        worker_t *w = c->workers[i];
        free(w->host);
        free(w->boot_id);
        free(w->software_version);
        free(w->gpus_json);
        free(w);
    }
    free(c->workers);
    c->workers = NULL;
    attempt_table_destroy(&c->attempts);
    target_free_all(c);
}
