/*
 * coord: the shared state of the coordinator (coord.h), the bottom layer.
 */
#include "coord.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "launcher.h"
#include "log.h"

void coord_config_defaults(coord_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->db_path = "./regmix.db";
    cfg->workers_ep = "tcp://127.0.0.1:5555";
    cfg->clients_ep = "tcp://127.0.0.1:5556";
    cfg->heartbeat_ms = 1000;
    cfg->lease_ms = 30000;
    cfg->max_workers = 4096;
    cfg->max_sweeps = 256;
    cfg->max_spec_bytes = 1u << 20;
    cfg->quarantine_after = 5;
    cfg->quarantine_ms = 600000;
    cfg->linger_ms = 500;
    cfg->progress_every_ms = 5000;
    cfg->target_poll_ms = 5000;
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

/* ---- the outbox ------------------------------------------------------------------------------ */

static void coord__wake(coord_t *c)
{
    /* Once stopping, the daemon's handles are closed: what is queued now is never sent, and
     * writes are committed by coord_destroy(). */
    if (!c->stopping && c->on_work)
        c->on_work(c);
}

void coord_send(coord_t *c,
                coord_endpoint_t ep,
                const uint8_t *rid,
                size_t rlen,
                Regmix__Envelope *env,
                uint64_t attempt_id)
{
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
    o->ep = ep;
    o->rlen = rlen > FRAME_MAX_ROUTING_ID ? FRAME_MAX_ROUTING_ID : rlen;
    memcpy(o->rid, rid, o->rlen);
    o->buf = buf;
    o->len = len;
    o->attempt_id = attempt_id;
    coord__wake(c);
}

void coord_send_error(coord_t *c,
                      coord_endpoint_t ep,
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
    coord_send(c, ep, rid, rlen, &env, 0);
}

void coord_outbox_take(coord_t *c, coord_out_t **ret, int *ret_n)
{
    *ret = c->out;
    *ret_n = c->nout;
    c->out = NULL;
    c->nout = c->out_cap = 0;
}

void coord_reject_malformed(coord_t *c, coord_endpoint_t ep, const frame_msg_t *msg)
{
    const char *endpoint = ep == COORD_WORKERS ? "workers" : "clients";
    const char *why = msg->why ? msg->why : "bad message";
    if (msg->routing_len == 0) {
        log_error("socket_error", "endpoint=%s error=%d why=\"%s\"", endpoint, msg->err, why);
        return;
    }
    coord_log_bad(c, endpoint, msg->routing_id, msg->routing_len, why);
    coord_send_error(c, ep, msg->routing_id, msg->routing_len, msg->id,
                     msg->err == -EPROTONOSUPPORT ? REGMIX__ERROR_CODE__ERROR_CODE_BAD_VERSION
                                                  : REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE,
                     "%s", why);
}

void coord_kick(coord_t *c)
{
    c->sched_dirty = 1;
    coord__wake(c);
}

/* ---- sweeps ---------------------------------------------------------------------------------- */

void coord_sweep_destroy(sweep_t **sw_p)
{
    sweep_t *sw = sw_p ? *sw_p : NULL;
    if (!sw)
        return;
    *sw_p = NULL;
    spec_destroy(&sw->spec);
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

int coord_sweep_add(coord_t *c, sweep_t **sw_p)
{
    if (c->nsweeps == c->sweeps_cap) {
        int cap = c->sweeps_cap ? c->sweeps_cap * 2 : 16;
        sweep_t **s = realloc(c->sweeps, (size_t)cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        c->sweeps = s;
        c->sweeps_cap = cap;
    }
    c->sweeps[c->nsweeps++] = *sw_p;
    *sw_p = NULL;
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
        coord_send(c, COORD_CLIENTS, sw->watchers[i].rid, sw->watchers[i].rlen, &env, 0);
    }
    if (final)
        sw->nwatchers = 0;
}

static void coord__worker_destroy(worker_t **w_p)
{
    worker_t *w = *w_p;
    if (!w)
        return;
    *w_p = NULL;
    free(w->host);
    free(w->boot_id);
    free(w->software_version);
    free(w->gpus_json);
    free(w);
}

/* ---- workers --------------------------------------------------------------------------------- */

worker_t *coord_worker_new(coord_t *c, const char *worker_id)
{
    if (c->nworkers == c->workers_cap) {
        int cap = c->workers_cap ? c->workers_cap * 2 : 16;
        worker_t **ws = realloc(c->workers, (size_t)cap * sizeof *ws);
        if (!ws)
            return NULL;
        c->workers = ws;
        c->workers_cap = cap;
    }
    worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    snprintf(w->worker_id, sizeof w->worker_id, "%s", worker_id);
    w->host = strdup("");
    w->boot_id = strdup("");
    w->software_version = strdup("");
    w->gpus_json = strdup("[]");
    if (!w->host || !w->boot_id || !w->software_version || !w->gpus_json) {
        coord__worker_destroy(&w);
        return NULL;
    }
    c->workers[c->nworkers++] = w;
    return w;
}

int coord_worker_forget(coord_t *c, worker_t *w)
{
    if (coord_write(c) < 0)
        return -EIO;
    if (store_worker_delete(c->store, w->worker_id) < 0) {
        coord_fatal(c, "worker_delete");
        return -EIO;
    }
    for (int i = 0; i < c->nworkers; i++) {
        if (c->workers[i] == w) {
            c->workers[i] = c->workers[--c->nworkers];
            break;
        }
    }
    coord__worker_destroy(&w);
    return 0;
}

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

/* ---- targets --------------------------------------------------------------------------------- */

target_t *coord_target_new(coord_t *c, int64_t sweep, const char *role)
{
    target_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->c = c;
    t->sweep = sweep;
    snprintf(t->role, sizeof t->role, "%s", role);
    t->objective = NAN;
    t->loss = NAN;
    t->created_ms = clock_unix_ms();
    t->next = c->targets;
    c->targets = t;
    return t;
}

target_t *coord_target_find(coord_t *c, int64_t sweep, const char *role)
{
    for (target_t *t = c->targets; t; t = t->next)
        if (t->sweep == sweep && strcmp(t->role, role) == 0)
            return t;
    return NULL;
}

static void coord__target_destroy(target_t **t_p)
{
    target_t *t = *t_p;
    if (!t)
        return;
    *t_p = NULL;
    free(t->log_path);
    free(t->weights_json);
    free(t->losses_json);
    free(t->detail);
    free(t->handle);
    launcher_tail_destroy(&t->tail);
    free(t);
}

/* ---- life of the shared state ----------------------------------------------------------------- */

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

int coord_new(uv_loop_t *loop, const coord_config_t *cfg, store_t **store_p, coord_t **ret)
{
    coord_t *c = calloc(1, sizeof *c);
    if (!c || attempt_table_new(&c->attempts) < 0) {
        free(c);
        store_close(store_p);
        return -ENOMEM;
    }
    c->loop = loop;
    c->cfg = *cfg;
    c->store = *store_p;
    *store_p = NULL;
    coord__make_id(c);
    c->next_attempt_id = 1;
    c->next_retry_ms = INT64_MAX;
    *ret = c;
    return 0;
}

void coord_destroy(coord_t **c_p)
{
    coord_t *c = c_p ? *c_p : NULL;
    if (!c)
        return;
    *c_p = NULL;
    if (!c->fatal && c->store)
        store_commit(c->store);
    else if (c->store)
        store_rollback(c->store);
    store_close(&c->store);
    for (int i = 0; i < c->nout; i++)
        free(c->out[i].buf);
    free(c->out);
    for (int i = 0; i < c->nsweeps; i++)
        coord_sweep_destroy(&c->sweeps[i]);
    free(c->sweeps);
    for (int i = 0; i < c->nworkers; i++)
        coord__worker_destroy(&c->workers[i]);
    free(c->workers);
    attempt_table_destroy(&c->attempts);
    while (c->targets) {
        target_t *t = c->targets;
        c->targets = t->next;
        coord__target_destroy(&t);
    }
    free(c);
}
