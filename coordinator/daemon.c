/*
 * daemon: the coordinator daemon's life cycle (daemon.h), the top layer.
 */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "auth.h"
#include "client.h"
#include "clock.h"
#include "config.h"
#include "exporter.h"
#include "log.h"
#include "notify.h"
#include "refit.h"
#include "scheduler.h"
#include "session.h"
#include "target.h"
#include "transition.h"

struct daemon {
    coord_t *c;
    uv_loop_t *loop;
    void *zctx;
    void *wsock; /* ROUTER for workers */
    void *csock; /* ROUTER for clients */
    zloop_watch_t *wwatch;
    zloop_watch_t *cwatch;
    struct auth *auth;         /* NULL without CURVE */
    struct exporter *exporter; /* NULL without --metrics */
    uv_check_t flush_check;
    uv_idle_t flush_idle;
    uv_timer_t flush_timer;
    int64_t last_flush_mono;
    uv_timer_t tick;
    int64_t last_tick_mono;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    int handles; /* the handles above are initialised */
    int stopping;
    int64_t undeliv_window_mono; /* rate limit of send_undeliverable lines */
    int64_t last_commit_mono;    /* -Dtest_ack_before_commit only */
    int undeliv_logs;
};

/* ---- outbound queue and group commit ------------------------------------------------------- */

/* The idle handle only keeps the loop from blocking while work is queued. */
static void daemon__idle_noop(uv_idle_t *h)
{
    (void)h;
}

/* coord_t.on_work: something is queued or a scheduling pass is asked for. */
static void daemon__wake(coord_t *c)
{
    daemon_t *d = c->owner;
    if (d && d->handles && !d->stopping)
        uv_idle_start(&d->flush_idle, daemon__idle_noop);
}

/* A message to a peer that is gone: requeue an ASSIGN's attempt, forget a worker's route or a
 * client's watches. */
static void daemon__undeliverable(daemon_t *d, coord_out_t *o, int err)
{
    coord_t *c = d->c;
    if (o->ep == COORD_WORKERS) {
        worker_t *w = coord_worker_by_rid(c, o->rid, o->rlen);
        /* A peer that never reads fills its send queue: each further message is undeliverable,
         * so log at most 10 a second. */
        int64_t now = clock_mono_ms();
        if (now - d->undeliv_window_mono >= 1000) {
            if (d->undeliv_logs > 10)
                log_warn("send_undeliverable_suppressed", "count=%d", d->undeliv_logs - 10);
            d->undeliv_window_mono = now;
            d->undeliv_logs = 0;
        }
        if (++d->undeliv_logs <= 10)
            log_info("send_undeliverable", "endpoint=workers worker=%s attempt=%llu error=%d",
                     w ? w->worker_id : "-", (unsigned long long)o->attempt_id, err);
        if (w && err == -EHOSTUNREACH)
            w->connected = 0;
        if (o->attempt_id) {
            attempt_t *a = attempt_table_get(c->attempts, (int64_t)o->attempt_id);
            if (a)
                transition_attempt_lost(c, a, "assign undeliverable");
        }
    } else {
        client_forget_peer(c, o->rid, o->rlen);
    }
}

static void daemon__flush_now(daemon_t *d)
{
    coord_t *c = d->c;
    if (c->fatal)
        return;
    d->last_flush_mono = clock_mono_ms();
    if (c->sched_dirty && !c->stopping) {
        c->sched_dirty = 0;
        scheduler_run(c);
    }
#if REGMIX_TEST_ACK_BEFORE_COMMIT
    /* Fault injection (-Dtest_ack_before_commit=true, tests only): send first and commit at
     * most every 2 s, breaking "persist before send"; the kill tests must catch it. */
    int late = store_in_txn(c->store) && d->last_flush_mono - d->last_commit_mono < 2000;
    if (!late && store_in_txn(c->store)) {
        d->last_commit_mono = d->last_flush_mono;
        if (store_commit(c->store) < 0) {
            coord_fatal(c, "commit");
            return;
        }
    }
#else
    if (store_in_txn(c->store) && store_commit(c->store) < 0) {
        coord_fatal(c, "commit");
        return;
    }
#endif
    /* Sending may queue more (undeliverable handling): take the batch first. */
    coord_out_t *outs = NULL;
    int n = 0;
    coord_outbox_take(c, &outs, &n);
    for (int i = 0; i < n; i++) {
        coord_out_t *o = &outs[i];
        void *sock = o->ep == COORD_WORKERS ? d->wsock : d->csock;
        if (!sock || zmq_send(sock, o->rid, o->rlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(sock, o->buf, o->len, ZMQ_DONTWAIT) < 0)
            daemon__undeliverable(d, o, sock ? -errno : -ENOTCONN);
        free(o->buf);
    }
    free(outs);
    if (c->nout == 0 && !c->sched_dirty)
        uv_idle_stop(&d->flush_idle);
}

static void daemon__flush_timer(uv_timer_t *t)
{
    daemon__flush_now(t->data);
}

/* Once per loop iteration: commit and send, unless the last commit is younger than the commit
 * window; then a timer does it when the window closes, so a busy coordinator commits (and
 * writes the WAL) once per window instead of once per message. */
static void daemon__flush(uv_check_t *h)
{
    daemon_t *d = h->data;
    coord_t *c = d->c;
    if (c->fatal)
        return;
    if (c->nout == 0 && !c->sched_dirty && !store_in_txn(c->store)) {
        uv_idle_stop(&d->flush_idle);
        return;
    }
    int64_t age = clock_mono_ms() - d->last_flush_mono;
    if (c->cfg.commit_window_ms <= 0 || age >= c->cfg.commit_window_ms || c->nout >= 4096) {
        uv_timer_stop(&d->flush_timer);
        daemon__flush_now(d);
        return;
    }
    uv_idle_stop(&d->flush_idle);
    if (!uv_is_active((uv_handle_t *)&d->flush_timer))
        uv_timer_start(&d->flush_timer, daemon__flush_timer,
                       (uint64_t)(c->cfg.commit_window_ms - age), 0);
}

/* ---- the periodic tick: expiry, leases, retries, watchdog ------------------------------------ */

static void daemon__tick(uv_timer_t *t)
{
    daemon_t *d = t->data;
    coord_t *c = d->c;
    if (c->fatal || c->stopping)
        return;
    int64_t mono = clock_mono_ms();
    int64_t wall = clock_unix_ms();
    int64_t expire = 3 * (int64_t)c->cfg.heartbeat_ms;
    /* A loop that was blocked (a big submit, a slow disk) heard nobody meanwhile: that is not
     * the workers' fault, so the silence they are judged by starts after the stall. */
    int64_t gap = d->last_tick_mono ? mono - d->last_tick_mono : 0;
    d->last_tick_mono = mono;
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
                transition_attempt_lost(c, w->attempts, "lease passed");
        }
        if (w->alive && w->attempts) {
            /* An ASSIGN the worker never confirmed (STARTED, or listed in a PING) within a lease
             * is lost: the ASSIGN went astray. */
            for (attempt_t *a = w->attempts, *next; a && !c->fatal; a = next) {
                next = a->lnext;
                if (!a->running && !a->reported && mono - a->leased_mono > c->cfg.lease_ms) {
                    /* A lease taken and never started counts against the worker: a peer that
                     * claims slots and sits on them is quarantined like one that fails. */
                    session_worker_strike(c, w, "lease never started");
                    transition_attempt_lost(c, a, "never started");
                }
            }
        }
        if (w->quarantined &&
            mono - (w->quarantined_mono ? w->quarantined_mono : mono) > c->cfg.quarantine_ms) {
            /* Probation: one more failure (a failed or never-started attempt) quarantines it
             * again; a success clears the count. A new boot id alone never does this. */
            w->quarantined = 0;
            w->probation = 1;
            w->consecutive_failures = c->cfg.quarantine_after - 1;
            log_info("worker_probation", "worker=%s after_ms=%d", w->worker_id,
                     c->cfg.quarantine_ms);
            coord_worker_persist(c, w);
            coord_kick(c);
        }
        if (w->quarantined && !w->quarantined_mono)
            w->quarantined_mono = mono; /* quarantined before this start: the clock starts now */
        if (w->dirty && mono - c->last_persist_mono > 1000)
            coord_worker_persist(c, w);
    }
    if (mono - c->last_persist_mono > 1000)
        c->last_persist_mono = mono;
    if (c->orphans && mono > c->orphan_deadline_mono) {
        while (c->orphans && !c->fatal)
            transition_attempt_lost(c, c->orphans, "not re-adopted after restart");
    }
    if (wall >= c->next_retry_ms)
        transition_runs_retry(c, wall);
    /* An active sweep whose last open runs ended without a result (dead, lost, cancelled) asks
     * for its round here: only a result calls refit_maybe() otherwise, and the sweep would wait
     * for a round forever. refit_maybe() starts nothing while runs are open or a refit is on. */
    for (int i = 0; i < c->nsweeps && !c->fatal; i++)
        if (transition_sweep_awaits_round(c->sweeps[i]))
            refit_maybe(c, c->sweeps[i]);
    target_tick(c, mono);
    notify_watchdog();
    if (store_in_txn(c->store) || c->sched_dirty)
        daemon__wake(c);
}

/* ---- loading ----------------------------------------------------------------------------------- */

static int daemon__load_domain(int idx, const char *name, double tokens, double prior, void *data)
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

static int daemon__load_sweep(const store_sweep_row_t *row, void *data)
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
    sw->rounds_closed = row->rounds_closed;
    sw->domains = calloc((size_t)(sw->ndomains > 0 ? sw->ndomains : 1), sizeof *sw->domains);
    sw->job = regmix__assign__unpack(NULL, row->job_len, row->job);
    if (!sw->name || !sw->domains || !sw->job) {
        coord_sweep_destroy(&sw);
        return -EBADMSG;
    }
    int r = store_domains_foreach(c->store, sw->id, daemon__load_domain, sw);
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
        r = coord_sweep_add(c, &sw);
    coord_sweep_destroy(&sw);
    return r;
}

static int daemon__load_count(int64_t sweep, run_state_t state, int64_t count, void *data)
{
    coord_t *c = data;
    sweep_t *sw = coord_sweep_by_id(c, sweep);
    if (sw && state > 0)
        sw->counts[state] += count;
    return 0;
}

/* Replaces *field with a copy of s (NULL: ""); keeps the old value when out of memory. */
static int daemon__set(char **field, const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        return -ENOMEM;
    free(*field);
    *field = d;
    return 0;
}

static int daemon__load_worker(const store_worker_row_t *row, void *data)
{
    coord_t *c = data;
    worker_t *w = coord_worker_new(c, row->worker_id);
    if (!w || daemon__set(&w->host, row->host) < 0 || daemon__set(&w->boot_id, row->boot_id) < 0 ||
        daemon__set(&w->software_version, row->software_version) < 0 ||
        daemon__set(&w->gpus_json, row->gpus_json) < 0)
        return -ENOMEM;
    w->slots = row->slots;
    w->quarantined = row->state == WORKER_STATE_QUARANTINED;
    w->draining = row->state == WORKER_STATE_DRAINING;
    w->consecutive_failures = row->consecutive_failures;
    w->done = row->done;
    w->failed = row->failed;
    w->last_seen_ms = row->last_seen_ms;
    w->last_seen_mono = clock_mono_ms();
    return 0;
}

static int daemon__load_attempt(const store_attempt_row_t *row, void *data)
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

static int daemon__load(coord_t *c, char *err, size_t errlen)
{
    /* A sweep whose runs were still going in when the last coordinator died was never
     * acknowledged: it goes, whole (store.h). */
    int dropped = 0;
    int r = store_begin(c->store);
    if (r == 0)
        r = store_sweeps_drop_loading(c->store, 0, &dropped);
    if (r == 0)
        r = store_commit(c->store);
    else
        store_rollback(c->store);
    if (r == 0 && dropped > 0)
        log_warn("sweep_load_dropped",
                 "sweeps=%d reason=\"submitted but not all runs stored before the last stop\"",
                 dropped);
    if (r == 0)
        r = store_sweeps_foreach(c->store, daemon__load_sweep, c);
    if (r == 0)
        r = store_run_counts(c->store, daemon__load_count, c);
    if (r == 0)
        r = store_workers_foreach(c->store, daemon__load_worker, c);
    if (r == 0)
        r = store_attempts_live(c->store, daemon__load_attempt, c);
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
    /* A refit the last coordinator owed (results that arrived before it died, an active
     * sweep's round not yet chosen with every run ended) starts now: no result may come to ask
     * for it. A sweep with nothing left to run and no round to wait for (its rounds closed)
     * ends. */
    for (int i = 0; i < c->nsweeps && !c->fatal; i++) {
        if (c->sweeps[i]->state != SWEEP_STATE_RUNNING)
            continue;
        refit_maybe(c, c->sweeps[i]);
        transition_sweep_check_end(c, c->sweeps[i]);
    }
    return 0;
}

/* ---- sockets ----------------------------------------------------------------------------------- */

static int daemon__socket(
        daemon_t *d, const char *ep, const char *domain, void **ret, char *err, size_t errlen)
{
    void *s = zmq_socket(d->zctx, ZMQ_ROUTER);
    if (!s) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return -errno;
    }
    int is_workers = strcmp(domain, AUTH_DOMAIN_WORKERS) == 0;
    int r = frame_socket_setup(s, d->c->cfg.linger_ms);
    if (r == 0)
        r = auth_server_socket(d->auth, s, domain);
    /* Per-endpoint limits: a worker's largest message is a RESULT of SPEC_MAX_DOMAINS losses;
     * a client's is a submit of a spec at its limit. What a slow peer does not read stops at
     * the send high-water mark (then it is undeliverable, never queued without bound). Honest
     * peers never set a routing id, so no handover: a peer cannot take another's route. */
    if (r == 0)
        r = frame_socket_limit(s, is_workers ? COORD_WORKER_MSG_MAX : COORD_CLIENT_MSG_MAX,
                               COORD_SNDHWM, COORD_RCVHWM);
    /* An ipc:// endpoint is a socket file: only this user may connect to it. */
    mode_t old_mask = umask(0077);
    if (r == 0 && zmq_bind(s, ep) != 0)
        r = -errno;
    umask(old_mask);
    if (r < 0) {
        snprintf(err, errlen, "%s: %s", ep, zmq_strerror(-r));
        zmq_close(s);
        return r;
    }
    *ret = s;
    return 0;
}

/* coord_t.route_live: probes the worker's route with a PONG (it carries no state, so it may
 * leave before the next commit); ZMQ_ROUTER_MANDATORY answers EHOSTUNREACH for a closed one. */
static int daemon__route_live(coord_t *c, const uint8_t *rid, size_t rlen)
{
    daemon_t *d = c->owner;
    if (!d || !d->wsock)
        return 1;
    Regmix__Envelope env;
    Regmix__Pong pong = REGMIX__PONG__INIT;
    frame_envelope_init(&env, ++c->next_msg_id);
    env.body_case = REGMIX__ENVELOPE__BODY_PONG;
    env.pong = &pong;
    return frame_send(d->wsock, rid, rlen, &env, ZMQ_DONTWAIT) != -EHOSTUNREACH;
}

static void daemon__signal(uv_signal_t *h, int signum)
{
    daemon_t *d = h->data;
    log_info("signal", "signum=%d action=stop", signum);
    daemon_stop(d);
}

/* The targets' work directories: --targets-dir, else targets/ beside the database. */
static void daemon__targets_dir(coord_t *c, const coord_config_t *cfg)
{
    if (cfg->targets_dir) {
        snprintf(c->targets_dir, sizeof c->targets_dir, "%s", cfg->targets_dir);
        return;
    }
    char tmp[1000];
    snprintf(tmp, sizeof tmp, "%s", cfg->db_path);
    char *slash = strrchr(tmp, '/');
    if (slash)
        *slash = '\0';
    snprintf(c->targets_dir, sizeof c->targets_dir, "%s/targets", slash ? tmp : ".");
}

static int daemon__start(daemon_t *d, const coord_config_t *cfg, char *err, size_t errlen)
{
    uv_loop_t *loop = d->loop;
    store_t *store = NULL;
    int r = store_open(cfg->db_path, &store, err, errlen);
    if (r < 0)
        return r;
    if (cfg->sync_normal && store_set_synchronous(store, 0) < 0) {
        snprintf(err, errlen, "%s: cannot set synchronous = NORMAL", cfg->db_path);
        store_close(&store);
        return -EIO;
    }
    r = coord_new(loop, cfg, &store, &d->c);
    if (r < 0) {
        snprintf(err, errlen, "out of memory");
        return r;
    }
    coord_t *c = d->c;
    r = daemon__load(c, err, errlen);
    if (r < 0)
        return r;
    daemon__targets_dir(c, cfg);
    r = target_load(c);
    if (r < 0) {
        snprintf(err, errlen, "loading targets: %s", store_errmsg(c->store));
        return r;
    }
    r = auth_new(
            cfg->curve_secret_path,
            cfg->curve_allow_workers_path ? cfg->curve_allow_workers_path : cfg->curve_allow_path,
            cfg->curve_allow_clients_path ? cfg->curve_allow_clients_path : cfg->curve_allow_path,
            &d->auth, err, errlen);
    if (r < 0)
        return r;
    /* Protected mode: what other machines can reach needs CURVE and an allow list. */
    if (!cfg->insecure) {
        r = auth_check_endpoint(d->auth, AUTH_DOMAIN_WORKERS, cfg->workers_ep, err, errlen);
        if (r == 0)
            r = auth_check_endpoint(d->auth, AUTH_DOMAIN_CLIENTS, cfg->clients_ep, err, errlen);
        if (r < 0)
            return r;
    } else {
        log_warn("insecure", "workers=%s clients=%s curve=%s", cfg->workers_ep, cfg->clients_ep,
                 d->auth ? "on" : "off");
    }
    d->zctx = zmq_ctx_new();
    if (!d->zctx) {
        snprintf(err, errlen, "zmq_ctx_new failed");
        return -ENOMEM;
    }
    r = auth_start(d->auth, loop, d->zctx, err, errlen);
    if (r < 0)
        return r;
    r = daemon__socket(d, cfg->workers_ep, AUTH_DOMAIN_WORKERS, &d->wsock, err, errlen);
    if (r == 0)
        r = daemon__socket(d, cfg->clients_ep, AUTH_DOMAIN_CLIENTS, &d->csock, err, errlen);
    if (r == 0)
        r = zloop_watch_new(loop, d->wsock, 1, session_on_message, c, &d->wwatch);
    if (r == 0)
        r = zloop_watch_new(loop, d->csock, 1, client_on_message, c, &d->cwatch);
    if (r < 0) {
        if (!err[0])
            snprintf(err, errlen, "watching sockets: %s", strerror(-r));
        return r;
    }
    if (cfg->metrics_addr) {
        r = exporter_start(c, cfg->metrics_addr, &d->exporter, err, errlen);
        if (r < 0)
            return r;
    }
    uv_check_init(loop, &d->flush_check);
    d->flush_check.data = d;
    uv_check_start(&d->flush_check, daemon__flush);
    uv_idle_init(loop, &d->flush_idle);
    d->flush_idle.data = d;
    uv_timer_init(loop, &d->flush_timer);
    d->flush_timer.data = d;
    uv_timer_init(loop, &d->tick);
    d->tick.data = d;
    int period = c->cfg.heartbeat_ms / 4;
    if (period > 250)
        period = 250;
    if (period < 5)
        period = 5;
    uv_timer_start(&d->tick, daemon__tick, (uint64_t)period, (uint64_t)period);
    uv_signal_init(loop, &d->sigterm);
    uv_signal_init(loop, &d->sigint);
    d->sigterm.data = d->sigint.data = d;
    uv_signal_start(&d->sigterm, daemon__signal, SIGTERM);
    uv_signal_start(&d->sigint, daemon__signal, SIGINT);
    d->handles = 1;
    c->owner = d;
    c->on_work = daemon__wake;
    c->route_live = daemon__route_live;
    coord_kick(c);
    log_info("coordinator_started",
             "id=%s db=%s workers=%s clients=%s heartbeat_ms=%d lease_ms=%d sweeps=%d "
             "live_attempts=%d schema=%d curve=%s",
             c->coordinator_id, cfg->db_path, cfg->workers_ep, cfg->clients_ep, cfg->heartbeat_ms,
             cfg->lease_ms, c->nsweeps, attempt_table_count(c->attempts),
             store_schema_version(c->store), d->auth ? "on" : "off");
    return 0;
}

int daemon_new(uv_loop_t *loop, const coord_config_t *cfg, daemon_t **ret, char *err, size_t errlen)
{
    daemon_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->loop = loop;
    int r = daemon__start(d, cfg, err, errlen);
    if (r < 0) {
        daemon_stop(d);
        uv_run(loop, UV_RUN_DEFAULT); /* the closing handles finish */
        daemon_destroy(&d);
        return r;
    }
    *ret = d;
    return 0;
}

coord_t *daemon_coord(daemon_t *d)
{
    return d->c;
}

static void daemon__close_handle(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h))
        uv_close(h, NULL);
}

void daemon_stop(daemon_t *d)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    coord_t *c = d->c;
    notify_stopping();
    /* Finish what this iteration did: commit, then send the acks that commit covers. */
    if (c && !c->fatal && d->handles) {
        c->sched_dirty = 0;
        daemon__flush_now(d);
    }
    if (c) {
        /* Atomic: a sampling thread polls it (client.c) to give up. */
        __atomic_store_n(&c->stopping, 1, __ATOMIC_RELAXED);
        refit_cancel_all(c);
        target_stop_all(c);
    }
    zloop_watch_close(&d->wwatch);
    zloop_watch_close(&d->cwatch);
    auth_stop(d->auth);
    exporter_stop(&d->exporter);
    if (d->handles) {
        daemon__close_handle((uv_handle_t *)&d->flush_check);
        daemon__close_handle((uv_handle_t *)&d->flush_idle);
        daemon__close_handle((uv_handle_t *)&d->flush_timer);
        daemon__close_handle((uv_handle_t *)&d->tick);
        daemon__close_handle((uv_handle_t *)&d->sigterm);
        daemon__close_handle((uv_handle_t *)&d->sigint);
    }
    /* The shutdown is bounded (linger); a second SIGTERM must not cut it short. A second SIGINT
     * (an impatient ^C) still kills. */
    signal(SIGTERM, SIG_IGN);
}

void daemon_destroy(daemon_t **d_p)
{
    daemon_t *d = d_p ? *d_p : NULL;
    if (!d)
        return;
    *d_p = NULL;
    if (d->wsock)
        zmq_close(d->wsock);
    if (d->csock)
        zmq_close(d->csock);
    auth_destroy(&d->auth);
    if (d->zctx)
        zmq_ctx_term(d->zctx); /* bounded by ZMQ_LINGER */
    coord_destroy(&d->c);
    free(d);
}
