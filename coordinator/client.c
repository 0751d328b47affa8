#include "client.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dashboard.h"
#include "log.h"
#include "sampler.h"
#include "scheduler.h"
#include "spec.h"
#include "target.h"
#include "transition.h"

#define CLIENT_ERR(c, msg, code, ...)                                                              \
    coord_send_error((c), COORD_CLIENTS, (msg)->routing_id, (msg)->routing_len, (msg)->id,         \
                     REGMIX__ERROR_CODE__ERROR_CODE_##code, __VA_ARGS__)

static void client__reply(coord_t *c, const frame_msg_t *msg, Regmix__Envelope *env)
{
    env->reply_to = msg->id;
    if (regmix__envelope__get_packed_size(env) > FRAME_MAX_BYTES) {
        CLIENT_ERR(c, msg, LIMIT, "the reply would exceed the %u-byte message limit",
                   FRAME_MAX_BYTES);
        return;
    }
    coord_send(c, COORD_CLIENTS, msg->routing_id, msg->routing_len, env, 0);
}

/* ---- submit ------------------------------------------------------------------------------------ */

/* Runs stored per loop iteration while a submitted sweep goes in (about 15 ms on the test
 * machine): bounds what one submit holds the loop for, whatever its size. */
#define CLIENT_RUNS_PER_TURN 5000

/* Samplings at once. A submit's mixtures are drawn on a thread of its own, not in libuv's pool
 * (where the refits run, refit.c), at most this many at a time; later submits wait their turn
 * in FIFO order (c->sample_wait) holding only their spec. */
#define CLIENT_SAMPLERS 2

typedef struct client_submit {
    uv_async_t sampled; /* the sampling thread is done */
    uv_thread_t thread;
    struct client_submit *next_waiting;
    uv_idle_t chunk; /* storing the runs, a chunk per loop iteration */
    coord_t *c;
    uint8_t rid[FRAME_MAX_ROUTING_ID];
    size_t rlen;
    uint64_t req_id;
    spec_t *spec;
    char *yaml;
    char *spec_name;
    int priority;
    double *weights; /* (runs, k) */
    sweep_t *sw;     /* stored 'loading', not yet in c->sweeps */
    int64_t id;
    int64_t now;
    int next; /* the next run index to store */
    int r;
    char err[512];
} client_submit_t;

static void client__submit_free(client_submit_t *s)
{
    s->c->nloading--;
    coord_sweep_destroy(&s->sw);
    spec_destroy(&s->spec);
    free(s->yaml);
    free(s->spec_name);
    free(s->weights);
    free(s);
}

/* Sampling thread: draws the mixtures. Touches only the job (and reads c->stopping). */
static void client__sample_work(client_submit_t *s)
{
    sampler_params_t *p = malloc(sizeof *p);
    if (!p) {
        s->r = -ENOMEM;
        return;
    }
    sampler_params_from_spec(s->spec, p);
    if (s->spec->sampling.strategy == SPEC_STRATEGY_ACTIVE)
        p->runs = s->spec->sampling.initial; /* the rest comes in rounds (refit.c) */
    s->weights = malloc((size_t)p->runs * (size_t)p->k * sizeof(double));
    if (!s->weights) {
        free(p);
        s->r = -ENOMEM;
        return;
    }
    /* A stopping coordinator cancels the sampling (a big or unsampleable sweep must not hold
     * SIGTERM up); c->stopping is set atomically by daemon_stop(). */
    s->r = sampler_sample_cancellable(p, s->weights, NULL, &s->c->stopping, s->err, sizeof s->err);
    free(p);
}

/* Packs the sweep-wide part of every ASSIGN from the spec. Returns a malloc'd buffer. */
static uint8_t *client__job_template(const spec_t *spec, size_t *ret_len)
{
    Regmix__Assign a = REGMIX__ASSIGN__INIT;
    Regmix__SyntheticJob syn = REGMIX__SYNTHETIC_JOB__INIT;
    int k = spec->ndomains;
    Regmix__DomainWeight *dw = calloc((size_t)k, sizeof *dw);
    Regmix__DomainWeight **dwp = calloc((size_t)k, sizeof *dwp);
    char *train = spec_train_json(spec, SPEC_STAGE_PROXY);
    char *data = spec_domains_json(spec);
    uint8_t *buf = NULL;
    if (!dw || !dwp || !train || !data)
        goto out;
    switch (spec->proxy.trainer) {
    case SPEC_TRAINER_COMMAND:
        a.kind = REGMIX__JOB_KIND__JOB_KIND_COMMAND;
        break;
    case SPEC_TRAINER_SYNTHETIC:
        a.kind = REGMIX__JOB_KIND__JOB_KIND_SYNTHETIC;
        break;
    default:
        a.kind = REGMIX__JOB_KIND__JOB_KIND_BUILTIN;
        break;
    }
    a.n_argv = (size_t)spec->proxy.ncommand;
    a.argv = spec->proxy.command;
    a.train_args_json = train;
    a.data_json = data;
    a.gpus = (uint32_t)spec->proxy.gpus;
    if (spec->proxy.trainer == SPEC_TRAINER_SYNTHETIC) {
        for (int i = 0; i < k; i++) {
            regmix__domain_weight__init(&dw[i]);
            dw[i].domain = spec->domains[i].name;
            dw[i].weight = spec->proxy.synthetic.optimum ? spec->proxy.synthetic.optimum[i]
                                                         : spec->domains[i].prior;
            dwp[i] = &dw[i];
        }
        syn.n_optimum = (size_t)k;
        syn.optimum = dwp;
        syn.noise = spec->proxy.synthetic.noise;
        syn.delay_ms = (uint32_t)spec->proxy.synthetic.delay_ms;
        syn.fail_rate = spec->proxy.synthetic.fail_rate;
        a.synthetic = &syn;
    }
    *ret_len = regmix__assign__get_packed_size(&a);
    buf = malloc(*ret_len ? *ret_len : 1);
    if (buf)
        regmix__assign__pack(&a, buf);
out:
    free(dw);
    free(dwp);
    free(train);
    free(data);
    return buf;
}

/* Loop thread: stores the sweep row ('loading', store.h) and its domains in one savepoint and
 * builds the sweep, which joins c->sweeps only once every run is stored (client__submit_chunk). */
static int client__submit_begin(coord_t *c, client_submit_t *s)
{
    const spec_t *spec = s->spec;
    int k = spec->ndomains, runs = spec->sampling.strategy == SPEC_STRATEGY_ACTIVE
                                           ? spec->sampling.initial
                                           : spec->sampling.runs;
    size_t job_len = 0;
    uint8_t *job = client__job_template(spec, &job_len);
    sweep_t *sw = calloc(1, sizeof *sw);
    int r = -ENOMEM;
    if (!job || !sw)
        goto fail;
    sw->name = strdup(spec->name);
    sw->domains = calloc((size_t)k, sizeof *sw->domains);
    sw->job = regmix__assign__unpack(NULL, job_len, job);
    if (!sw->name || !sw->domains || !sw->job)
        goto fail;
    sw->ndomains = k;
    for (int i = 0; i < k; i++)
        if (!(sw->domains[i] = strdup(spec->domains[i].name)))
            goto fail;
    int64_t now = clock_unix_ms();
    sw->state = SWEEP_STATE_RUNNING;
    sw->priority = s->priority;
    sw->gpus = spec->proxy.gpus;
    sw->max_attempts = spec->proxy.max_attempts > 0 ? spec->proxy.max_attempts : 1;
    sw->backoff_ms = spec->proxy.backoff_ms;
    sw->nruns = runs;
    sw->created_ms = sw->updated_ms = now;
    sw->counts[RUN_STATE_QUEUED] = runs;

    r = coord_write(c);
    if (r < 0)
        goto fail;
    r = store_savepoint(c->store);
    if (r < 0)
        goto fail_db;
    store_sweep_row_t row = {
            .name = spec->name,
            .spec_yaml = s->yaml,
            .spec_name = s->spec_name,
            .loading = 1,
            .priority = s->priority,
            .gpus = sw->gpus,
            .max_attempts = sw->max_attempts,
            .backoff_ms = sw->backoff_ms,
            .job = job,
            .job_len = job_len,
            .ndomains = k,
            .nruns = runs,
            .created_ms = now,
    };
    r = store_sweep_insert(c->store, &row, &sw->id, sw->sweep_id);
    for (int i = 0; r == 0 && i < k; i++)
        r = store_domain_insert(c->store, sw->id, i, spec->domains[i].name, spec->domains[i].tokens,
                                spec->domains[i].prior);
    if (r < 0) {
        store_savepoint_rollback(c->store);
        goto fail_db;
    }
    r = store_savepoint_release(c->store);
    if (r < 0)
        goto fail_db;
    free(job);
    s->sw = sw;
    s->now = now;
    return 0;
fail_db:
    snprintf(s->err, sizeof s->err, "storing the sweep: %s", store_errmsg(c->store));
    r = -EIO;
fail:
    free(job);
    coord_sweep_destroy(&sw);
    return r;
}

static void client__submit_closed(uv_handle_t *h)
{
    client__submit_free(h->data);
}

/* Every run stored: the sweep joins c->sweeps (schedulable) and the client gets its id, sent
 * after the commit that covers the last chunk. */
static void client__submit_done(coord_t *c, client_submit_t *s)
{
    sweep_t *sw = s->sw;
    s->sw = NULL;
    if (coord_sweep_add(c, &sw) < 0) {
        /* The rows are in the transaction: without the sweep in memory they must not commit. */
        coord_sweep_destroy(&sw);
        coord_fatal(c, "out of memory");
        return;
    }
    sw = coord_sweep_by_id(c, s->id);
    sw->spec = s->spec; /* the sweep keeps the parsed spec (refits, mixture prior) */
    s->spec = NULL;
    c->queue_maybe_nonempty = 1;
    coord_gpu_classes_update(c);
    coord_kick(c);
    log_info("sweep_submitted", "sweep=%s name=%s runs=%d domains=%d priority=%d gpus=%d",
             sw->sweep_id, sw->name, sw->nruns, sw->ndomains, sw->priority, sw->gpus);
    Regmix__Envelope env;
    Regmix__SubmitReply rep = REGMIX__SUBMIT_REPLY__INIT;
    frame_envelope_init(&env, 0);
    rep.sweep_id = sw->sweep_id;
    rep.runs = (uint32_t)sw->nruns;
    env.reply_to = s->req_id;
    env.body_case = REGMIX__ENVELOPE__BODY_SUBMIT_REPLY;
    env.submit_reply = &rep;
    coord_send(c, COORD_CLIENTS, s->rid, s->rlen, &env, 0);
}

/* Idle handle, once per loop iteration: stores the next CLIENT_RUNS_PER_TURN runs in a savepoint
 * of the group transaction, so a 10^6-run submit takes many short turns and status, list and
 * the workers are served between them. The last chunk flips the row to 'running' in the same
 * savepoint. A coordinator stopping meanwhile leaves the row 'loading': the next start drops it
 * (the client never had an answer). A failed chunk drops the partial sweep and answers an error. */
static void client__submit_chunk(uv_idle_t *h)
{
    client_submit_t *s = h->data;
    coord_t *c = s->c;
    if (c->stopping || c->fatal) {
        uv_close((uv_handle_t *)h, client__submit_closed);
        return;
    }
    const spec_t *spec = s->spec;
    sweep_t *sw = s->sw;
    int k = sw->ndomains, runs = sw->nruns;
    int end = runs - s->next > CLIENT_RUNS_PER_TURN ? s->next + CLIENT_RUNS_PER_TURN : runs;
    int r = coord_write(c);
    if (r < 0) {
        uv_close((uv_handle_t *)h, client__submit_closed);
        return;
    }
    r = store_savepoint(c->store);
    for (int i = s->next; r == 0 && i < end; i++)
        r = store_run_insert(c->store, sw->id, i, sampler_run_seed(spec->sampling.seed, i),
                             s->weights + (size_t)i * (size_t)k, k, s->priority, sw->gpus, s->now);
    if (r == 0 && end == runs)
        r = store_sweep_loaded(c->store, sw->id, clock_unix_ms());
    if (r == 0)
        r = store_savepoint_release(c->store);
    if (r < 0) {
        snprintf(s->err, sizeof s->err, "storing the sweep's runs: %s", store_errmsg(c->store));
        store_savepoint_rollback(c->store);
        if (store_savepoint(c->store) < 0 ||
            store_sweeps_drop_loading(c->store, sw->id, NULL) < 0 ||
            store_savepoint_release(c->store) < 0) {
            coord_fatal(c, "dropping a partly stored sweep");
        } else {
            log_warn("sweep_submit_failed", "sweep=%s stored=%d runs=%d error=\"%s\"", sw->sweep_id,
                     s->next, runs, s->err);
            coord_send_error(c, COORD_CLIENTS, s->rid, s->rlen, s->req_id,
                             REGMIX__ERROR_CODE__ERROR_CODE_INTERNAL, "%s", s->err);
        }
        uv_close((uv_handle_t *)h, client__submit_closed);
        return;
    }
    s->next = end;
    if (end < runs)
        return;
    s->id = sw->id;
    client__submit_done(c, s);
    uv_close((uv_handle_t *)h, client__submit_closed);
}

static void client__sample_done(client_submit_t *s)
{
    coord_t *c = s->c;
    if (c->stopping || c->fatal) {
        client__submit_free(s);
        return;
    }
    const uint8_t *rid = s->rid;
    if (s->r < 0) {
        coord_send_error(c, COORD_CLIENTS, rid, s->rlen, s->req_id,
                         s->r == -ENOMEM ? REGMIX__ERROR_CODE__ERROR_CODE_INTERNAL
                                         : REGMIX__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
                         "sampling the mixtures: %s", s->err[0] ? s->err : strerror(-s->r));
        client__submit_free(s);
        return;
    }
    int r = client__submit_begin(c, s);
    if (r < 0) {
        coord_send_error(c, COORD_CLIENTS, rid, s->rlen, s->req_id,
                         REGMIX__ERROR_CODE__ERROR_CODE_INTERNAL, "%s",
                         s->err[0] ? s->err : strerror(-r));
        client__submit_free(s);
        return;
    }
    uv_idle_init(c->loop, &s->chunk);
    s->chunk.data = s;
    uv_idle_start(&s->chunk, client__submit_chunk);
}

static void client__sample_thread(void *arg)
{
    client_submit_t *s = arg;
    client__sample_work(s);
    uv_async_send(&s->sampled);
}

static void client__sampled_closed(uv_handle_t *h)
{
    client__sample_done(h->data);
}

static void client__sample_next(coord_t *c);

static void client__sampled(uv_async_t *h)
{
    client_submit_t *s = h->data;
    uv_thread_join(&s->thread);
    s->c->nsampling--;
    uv_close((uv_handle_t *)h, client__sampled_closed);
    client__sample_next(s->c);
}

/* Starts the waiting samplings while fewer than CLIENT_SAMPLERS run; a stopping coordinator
 * drops them (their clients never had an answer). */
static void client__sample_next(coord_t *c)
{
    while (c->sample_wait && (c->nsampling < CLIENT_SAMPLERS || c->stopping || c->fatal)) {
        client_submit_t *s = c->sample_wait;
        c->sample_wait = s->next_waiting;
        if (!c->sample_wait)
            c->sample_wait_tail = NULL;
        if (c->stopping || c->fatal) {
            client__submit_free(s);
            continue;
        }
        if (uv_async_init(c->loop, &s->sampled, client__sampled) < 0) {
            coord_send_error(c, COORD_CLIENTS, s->rid, s->rlen, s->req_id,
                             REGMIX__ERROR_CODE__ERROR_CODE_INTERNAL, "cannot start the sampling");
            client__submit_free(s);
            continue;
        }
        s->sampled.data = s;
        if (uv_thread_create(&s->thread, client__sample_thread, s) < 0) {
            s->r = -ENOMEM;
            snprintf(s->err, sizeof s->err, "cannot start a sampling thread");
            uv_close((uv_handle_t *)&s->sampled, client__sampled_closed);
            continue;
        }
        c->nsampling++;
    }
}

static void client__submit(coord_t *c, const frame_msg_t *msg, const Regmix__SubmitRequest *req)
{
    const char *yaml = req->spec_yaml ? req->spec_yaml : "";
    size_t len = strlen(yaml);
    if (len > c->cfg.max_spec_bytes || len > SPEC_MAX_BYTES) {
        CLIENT_ERR(c, msg, LIMIT, "spec is %zu bytes; the limit is %zu", len,
                   c->cfg.max_spec_bytes < SPEC_MAX_BYTES ? c->cfg.max_spec_bytes
                                                          : (size_t)SPEC_MAX_BYTES);
        return;
    }
    int open = c->nloading; /* submits being sampled or stored count too */
    for (int i = 0; i < c->nsweeps; i++)
        open += states_sweep_open(c->sweeps[i]->state);
    if (open >= c->cfg.max_sweeps) {
        CLIENT_ERR(c, msg, LIMIT, "%d sweeps are running; the limit is %d", open,
                   c->cfg.max_sweeps);
        return;
    }
    const char *name = req->spec_name && *req->spec_name ? req->spec_name : "spec.yaml";
    client_submit_t *s = calloc(1, sizeof *s);
    if (!s) {
        CLIENT_ERR(c, msg, INTERNAL, "out of memory");
        return;
    }
    s->c = c;
    c->nloading++;
    int r = spec_parse_string(name, yaml, len, &s->spec, s->err, sizeof s->err);
    if (r < 0) {
        CLIENT_ERR(c, msg, BAD_REQUEST, "%s", s->err[0] ? s->err : "invalid spec");
        client__submit_free(s);
        return;
    }
    memcpy(s->rid, msg->routing_id, msg->routing_len);
    s->rlen = msg->routing_len;
    s->req_id = msg->id;
    s->yaml = strdup(yaml);
    s->spec_name = strdup(name);
    s->priority = req->priority ? req->priority : s->spec->priority;
    if (!s->yaml || !s->spec_name) {
        CLIENT_ERR(c, msg, INTERNAL, "out of memory");
        client__submit_free(s);
        return;
    }
    if (c->sample_wait_tail)
        c->sample_wait_tail->next_waiting = s;
    else
        c->sample_wait = s;
    c->sample_wait_tail = s;
    client__sample_next(c);
}

/* ---- status, list, watch ----------------------------------------------------------------------- */

static sweep_t *client__sweep(coord_t *c, const frame_msg_t *msg, const char *key)
{
    sweep_t *sw = coord_sweep_find(c, key);
    if (!sw)
        CLIENT_ERR(c, msg, NOT_FOUND, "no sweep '%.64s'", key ? key : "");
    return sw;
}

static int client__latest_fit(coord_t *c, const sweep_t *sw, Regmix__FitInfo **ret);
static void client__fit_info_free(Regmix__FitInfo *f);

/* The sweep's counts, and since issue 10 its latest fit (one row read by fit number) with what
 * it is judged against and the target's realised objective (in memory). */
static void client__status(coord_t *c, const frame_msg_t *msg, const Regmix__StatusRequest *req)
{
    sweep_t *sw = client__sweep(c, msg, req->sweep_id);
    if (!sw)
        return;
    Regmix__Envelope env;
    Regmix__StatusReply rep = REGMIX__STATUS_REPLY__INIT;
    Regmix__StatusFigures fig = REGMIX__STATUS_FIGURES__INIT;
    Regmix__SweepInfo info;
    Regmix__RunCounts counts;
    Regmix__FitInfo *fit = NULL;
    if (client__latest_fit(c, sw, &fit) < 0) {
        CLIENT_ERR(c, msg, INTERNAL, "reading the latest fit of %s failed", sw->sweep_id);
        return;
    }
    coord_sweep_info(sw, &info, &counts);
    const target_t *t = coord_target_find(c, sw->id, "target");
    fig.l1_tol = sw->spec ? sw->spec->regression.convergence.l1_tol : NAN;
    /* gain_tol decides only an active sweep's convergence: NaN for the others. */
    fig.gain_tol = sw->spec && sw->spec->sampling.strategy == SPEC_STRATEGY_ACTIVE
                           ? sw->spec->regression.convergence.gain_tol
                           : NAN;
    fig.target_objective = t && t->state == TARGET_STATE_DONE ? t->objective : NAN;
    fig.target_state = (char *)(t ? states_target_name(t->state) : "");
    fig.target_as_proxy = sw->spec && spec_target_as_proxy(sw->spec);
    rep.sweep = &info;
    rep.latest_fit = fit;
    rep.figures = &fig;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_STATUS_REPLY;
    env.status_reply = &rep;
    client__reply(c, msg, &env);
    client__fit_info_free(fit);
}

static void client__list(coord_t *c, const frame_msg_t *msg)
{
    int n = c->nsweeps;
    Regmix__SweepInfo *infos = calloc((size_t)(n ? n : 1), sizeof *infos);
    Regmix__SweepInfo **ptrs = calloc((size_t)(n ? n : 1), sizeof *ptrs);
    Regmix__RunCounts *counts = calloc((size_t)(n ? n : 1), sizeof *counts);
    if (!infos || !ptrs || !counts) {
        CLIENT_ERR(c, msg, INTERNAL, "out of memory");
    } else {
        for (int i = 0; i < n; i++) {
            coord_sweep_info(c->sweeps[i], &infos[i], &counts[i]);
            ptrs[i] = &infos[i];
        }
        Regmix__Envelope env;
        Regmix__ListReply rep = REGMIX__LIST_REPLY__INIT;
        rep.n_sweeps = (size_t)n;
        rep.sweeps = ptrs;
        frame_envelope_init(&env, 0);
        env.body_case = REGMIX__ENVELOPE__BODY_LIST_REPLY;
        env.list_reply = &rep;
        client__reply(c, msg, &env);
    }
    free(infos);
    free(ptrs);
    free(counts);
}

static void client__watch(coord_t *c, const frame_msg_t *msg, const Regmix__WatchRequest *req)
{
    sweep_t *sw = client__sweep(c, msg, req->sweep_id);
    if (!sw)
        return;
    coord_watcher_t me;
    memcpy(me.rid, msg->routing_id, msg->routing_len);
    me.rlen = msg->routing_len;
    me.req_id = msg->id;
    if (states_sweep_open(sw->state)) {
        if (sw->nwatchers >= COORD_MAX_WATCHERS) {
            CLIENT_ERR(c, msg, LIMIT, "sweep %s has %d watchers; the limit", sw->sweep_id,
                       COORD_MAX_WATCHERS);
            return;
        }
        coord_watcher_t *ws = realloc(sw->watchers, (size_t)(sw->nwatchers + 1) * sizeof *ws);
        if (!ws) {
            CLIENT_ERR(c, msg, INTERNAL, "out of memory");
            return;
        }
        sw->watchers = ws;
    }
    /* The first event goes to this watcher only: the current status (final if it ended). */
    int final = !states_sweep_open(sw->state);
    coord_watcher_t *saved = sw->watchers;
    int nsaved = sw->nwatchers;
    sw->watchers = &me;
    sw->nwatchers = 1;
    char text[160];
    snprintf(text, sizeof text, "sweep %s is %s", sw->sweep_id, states_sweep_name(sw->state));
    coord_sweep_event(c, sw, final ? "end" : "status", text, final);
    sw->watchers = saved;
    sw->nwatchers = nsaved;
    if (!final)
        sw->watchers[sw->nwatchers++] = me;
}

void client_forget_peer(coord_t *c, const uint8_t *rid, size_t rlen)
{
    for (int i = 0; i < c->nsweeps; i++) {
        sweep_t *sw = c->sweeps[i];
        for (int j = 0; j < sw->nwatchers;) {
            if (sw->watchers[j].rlen == rlen && memcmp(sw->watchers[j].rid, rid, rlen) == 0)
                sw->watchers[j] = sw->watchers[--sw->nwatchers];
            else
                j++;
        }
    }
}

/* ---- cancel ------------------------------------------------------------------------------------ */

static void client__cancel_reply(coord_t *c, const frame_msg_t *msg, uint32_t n)
{
    Regmix__Envelope env;
    Regmix__CancelReply rep = REGMIX__CANCEL_REPLY__INIT;
    rep.cancelled = n;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_CANCEL_REPLY;
    env.cancel_reply = &rep;
    client__reply(c, msg, &env);
}

static void client__cancel(coord_t *c, const frame_msg_t *msg, const Regmix__CancelRequest *req)
{
    sweep_t *sw = client__sweep(c, msg, req->sweep_id);
    if (!sw)
        return;
    if (req->target) {
        /* the target launches only: scancel, kubectl delete or SIGTERM (target.h) */
        int n = target_cancel(c, sw);
        if (n == 0) {
            CLIENT_ERR(c, msg, CONFLICT, "sweep %s has no pending or running target", sw->sweep_id);
            return;
        }
        client__cancel_reply(c, msg, (uint32_t)n);
        return;
    }
    if (!states_sweep_open(sw->state) && !req->has_run) {
        /* an ended sweep may still have its target running: cancelling the sweep stops it */
        int n = target_cancel(c, sw);
        if (n > 0) {
            client__cancel_reply(c, msg, (uint32_t)n);
            return;
        }
        CLIENT_ERR(c, msg, CONFLICT, "sweep %s already ended (%s)", sw->sweep_id,
                   states_sweep_name(sw->state));
        return;
    }
    if (req->has_run) {
        run_state_t st = RUN_STATE_UNSPECIFIED;
        int r = req->run_index < (uint64_t)sw->nruns
                        ? transition_run_cancel(c, sw, (int)req->run_index, &st)
                        : -ENOENT;
        if (r == -ENOENT) {
            CLIENT_ERR(c, msg, NOT_FOUND, "sweep %s has no run %llu", sw->sweep_id,
                       (unsigned long long)req->run_index);
            return;
        }
        if (r == -EINVAL) {
            CLIENT_ERR(c, msg, CONFLICT, "run %llu of %s is %s", (unsigned long long)req->run_index,
                       sw->sweep_id, states_run_name(st));
            return;
        }
        if (r < 0) {
            CLIENT_ERR(c, msg, INTERNAL, "storage failure");
            return;
        }
        log_info("run_cancelled", "sweep=%s idx=%llu cancelled=%d", sw->sweep_id,
                 (unsigned long long)req->run_index, r);
        client__cancel_reply(c, msg, (uint32_t)r);
        return;
    }
    int n = transition_sweep_cancel(c, sw, "sweep cancelled by a client");
    if (n < 0) {
        CLIENT_ERR(c, msg, INTERNAL, "storage failure");
        return;
    }
    n += target_cancel(c, sw);
    uint32_t cancelled = (uint32_t)n;
    client__cancel_reply(c, msg, cancelled);
}

/* ---- results ----------------------------------------------------------------------------------- */

/* Rows of one ResultsReply: at most 1000, fewer for wide sweeps (a row carries a weight and
 * usually a loss per domain, ~100 bytes each), so a page stays under ~10 MB. */
#define CLIENT_RESULTS_PAGE  1000
#define CLIENT_RESULTS_CELLS 100000

typedef struct {
    Regmix__RunResult **rows;
    size_t n, cap;
    int k;
    char **domains;
    json_t *names; /* set of loss names */
    int err;
} client__results_t;

static void client__run_result_free(Regmix__RunResult *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_losses; i++) {
        free(r->losses[i]->name);
        free(r->losses[i]);
    }
    free(r->losses);
    for (size_t i = 0; i < r->n_weights; i++)
        free(r->weights[i]);
    free(r->weights);
    free(r->worker_id);
    free(r);
}

static int client__result_row(const store_result_row_t *row, void *data)
{
    client__results_t *acc = data;
    if (acc->n == acc->cap) {
        size_t cap = acc->cap ? acc->cap * 2 : 256;
        Regmix__RunResult **rows = realloc(acc->rows, cap * sizeof *rows);
        if (!rows)
            return -ENOMEM;
        acc->rows = rows;
        acc->cap = cap;
    }
    Regmix__RunResult *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    regmix__run_result__init(r);
    acc->rows[acc->n++] = r;
    r->run_index = (uint64_t)row->run_idx;
    r->attempt_no = (uint32_t)row->attempt_no;
    r->worker_id = strdup(row->worker);
    r->seconds = row->seconds;
    int k = row->nweights < acc->k ? row->nweights : acc->k;
    r->weights = calloc((size_t)(k ? k : 1), sizeof *r->weights);
    if (!r->worker_id || !r->weights)
        return -ENOMEM;
    for (int i = 0; i < k; i++) {
        Regmix__DomainWeight *dw = malloc(sizeof *dw);
        if (!dw)
            return -ENOMEM;
        regmix__domain_weight__init(dw);
        dw->domain = acc->domains[i];
        dw->weight = row->weights[i];
        r->weights[r->n_weights++] = dw;
    }
    json_t *o = json_loads(row->losses_json, 0, NULL);
    if (json_is_object(o)) {
        size_t m = json_object_size(o);
        r->losses = calloc(m ? m : 1, sizeof *r->losses);
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v)
        {
            Regmix__DomainValue *dv = malloc(sizeof *dv);
            if (!r->losses || !dv) {
                free(dv);
                json_decref(o);
                return -ENOMEM;
            }
            regmix__domain_value__init(dv);
            dv->name = strdup(key);
            dv->value = json_number_value(v);
            r->losses[r->n_losses++] = dv;
            json_object_set_new(acc->names, key, json_true());
        }
    }
    json_decref(o);
    return 0;
}

static int client__cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void client__results(coord_t *c, const frame_msg_t *msg, const Regmix__ResultsRequest *req)
{
    sweep_t *sw = client__sweep(c, msg, req->sweep_id);
    if (!sw)
        return;
    /* One page per request (regmixctl asks for the next with the last run index): the work on
     * the loop thread and the reply stay bounded however big the sweep. */
    client__results_t acc = {.k = sw->ndomains, .domains = sw->domains, .names = json_object()};
    int page = CLIENT_RESULTS_CELLS / (sw->ndomains + 1);
    page = page < 1 ? 1 : page > CLIENT_RESULTS_PAGE ? CLIENT_RESULTS_PAGE : page;
    int limit = req->limit && (int)req->limit < page ? (int)req->limit : page;
    int64_t after = req->has_after ? (int64_t)req->after_run_index : -1;
    int r = acc.names ? store_results_page(c->store, sw->id, after, limit + 1, client__result_row,
                                           &acc)
                      : -ENOMEM;
    int more = r > limit;
    if (more) {
        client__run_result_free(acc.rows[--acc.n]);
        r = limit;
    }
    size_t nnames = acc.names ? json_object_size(acc.names) : 0;
    char **names = calloc(nnames ? nnames : 1, sizeof *names);
    if (r < 0 || !names) {
        CLIENT_ERR(c, msg, INTERNAL, "reading results failed");
    } else {
        size_t i = 0;
        const char *key;
        json_t *v;
        json_object_foreach(acc.names, key, v)
        {
            names[i++] = (char *)key;
        }
        qsort(names, nnames, sizeof *names, client__cmp_str);
        Regmix__Envelope env;
        Regmix__ResultsReply rep = REGMIX__RESULTS_REPLY__INIT;
        rep.n_results = acc.n;
        rep.results = acc.rows;
        rep.n_domains = (size_t)sw->ndomains;
        rep.domains = sw->domains;
        rep.n_loss_names = nnames;
        rep.loss_names = names;
        rep.more = more;
        frame_envelope_init(&env, 0);
        env.body_case = REGMIX__ENVELOPE__BODY_RESULTS_REPLY;
        env.results_reply = &rep;
        client__reply(c, msg, &env);
    }
    free(names);
    for (size_t i = 0; i < acc.n; i++)
        client__run_result_free(acc.rows[i]);
    free(acc.rows);
    json_decref(acc.names);
}

/* ---- fits and mixture -------------------------------------------------------------------------- */

typedef struct {
    const sweep_t *sw;
    Regmix__FitInfo **fits;
    size_t n, cap;
    int last_only;
} client__fits_t;

static void client__fit_info_free(Regmix__FitInfo *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_proposal; i++)
        free(f->proposal[i]);
    free(f->proposal);
    free(f->model);
    free(f->cv);
    if (f->estimate) {
        free(f->estimate->verdict);
        free(f->estimate->proposal_from);
        free(f->estimate);
    }
    free(f);
}

static double client__json_num(json_t *o, const char *key)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A string member of the fit's metrics JSON, copied ("" when absent or not a string); NULL only
 * when out of memory. */
static char *client__json_str(json_t *o, const char *key)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return strdup(json_is_string(v) ? json_string_value(v) : "");
}

/* The estimate at the proposal from the fit's metrics JSON: the interval (fitpipe.c), the verdict,
 * and the active sweep's keys, each NaN or "" where the fit did not record it. */
static Regmix__ProposalEstimate *client__estimate(json_t *mj)
{
    Regmix__ProposalEstimate *e = malloc(sizeof *e);
    if (!e)
        return NULL;
    regmix__proposal_estimate__init(e);
    json_t *iv = json_is_object(mj) ? json_object_get(mj, "predicted_interval") : NULL;
    json_t *lo = json_array_get(iv, 0), *hi = json_array_get(iv, 1);
    e->predicted_lo = json_is_array(iv) && json_is_number(lo) ? json_number_value(lo) : NAN;
    e->predicted_hi = json_is_array(iv) && json_is_number(hi) ? json_number_value(hi) : NAN;
    e->predicted_sd = client__json_num(mj, "predicted_sd");
    e->noise_sd = client__json_num(mj, "noise_sd");
    e->expected_gain = client__json_num(mj, "expected_gain");
    e->verdict = client__json_str(mj, "verdict");
    e->proposal_from = client__json_str(mj, "proposal_from");
    if (!e->verdict || !e->proposal_from) {
        free(e->verdict);
        free(e->proposal_from);
        free(e);
        return NULL;
    }
    return e;
}

static int client__fit_row(const store_fit_row_t *row, void *data)
{
    client__fits_t *acc = data;
    const sweep_t *sw = acc->sw;
    if (acc->last_only && acc->n == 1) {
        client__fit_info_free(acc->fits[0]);
        acc->n = 0;
    }
    if (acc->n == acc->cap) {
        size_t cap = acc->cap ? acc->cap * 2 : 16;
        Regmix__FitInfo **f = realloc(acc->fits, cap * sizeof *f);
        if (!f)
            return -ENOMEM;
        acc->fits = f;
        acc->cap = cap;
    }
    Regmix__FitInfo *f = calloc(1, sizeof *f);
    Regmix__Metrics *m = calloc(1, sizeof *m);
    if (!f || !m) {
        free(f);
        free(m);
        return -ENOMEM;
    }
    regmix__fit_info__init(f);
    regmix__metrics__init(m);
    acc->fits[acc->n++] = f;
    f->cv = m;
    f->fit_no = (uint32_t)row->fit_no;
    f->runs_used = (uint32_t)row->runs_used;
    f->model = strdup(row->model);
    f->predicted = row->predicted;
    f->l1_moved = row->l1_moved;
    f->seconds = row->seconds;
    f->created_unix_ms = row->created_ms;
    json_t *mj = json_loads(row->metrics_json, 0, NULL);
    m->spearman = client__json_num(mj, "spearman");
    m->pearson = client__json_num(mj, "pearson");
    m->mse = client__json_num(mj, "mse");
    m->r2 = client__json_num(mj, "r2");
    double folds = client__json_num(mj, "folds");
    m->folds = isfinite(folds) && folds > 0 ? (uint32_t)folds : 0;
    f->estimate = client__estimate(mj);
    json_decref(mj);
    json_t *pj = json_loads(row->proposal_json, 0, NULL);
    f->proposal = calloc((size_t)(sw->ndomains ? sw->ndomains : 1), sizeof *f->proposal);
    if (!f->model || !f->proposal || !f->estimate) {
        json_decref(pj);
        return -ENOMEM;
    }
    for (int i = 0; i < sw->ndomains; i++) {
        Regmix__DomainWeight *dw = malloc(sizeof *dw);
        if (!dw) {
            json_decref(pj);
            return -ENOMEM;
        }
        regmix__domain_weight__init(dw);
        dw->domain = sw->domains[i];
        dw->weight = client__json_num(pj, sw->domains[i]);
        f->proposal[f->n_proposal++] = dw;
    }
    json_decref(pj);
    return 0;
}

/* The sweep's latest fit in *ret (NULL before the first): one row, read by its number. */
static int client__latest_fit(coord_t *c, const sweep_t *sw, Regmix__FitInfo **ret)
{
    *ret = NULL;
    if (sw->nfits < 1)
        return 0;
    client__fits_t acc = {.sw = sw, .last_only = 1};
    int r = store_fits_after(c->store, sw->id, sw->nfits - 1, client__fit_row, &acc);
    if (r < 0 || acc.n == 0) {
        for (size_t i = 0; i < acc.n; i++)
            client__fit_info_free(acc.fits[i]);
        free(acc.fits);
        return r < 0 ? r : 0;
    }
    *ret = acc.fits[0];
    free(acc.fits);
    return 0;
}

static void client__fits(coord_t *c, const frame_msg_t *msg, const char *sweep_id)
{
    sweep_t *sw = client__sweep(c, msg, sweep_id);
    if (!sw)
        return;
    client__fits_t acc = {.sw = sw};
    int r = store_fits_foreach(c->store, sw->id, client__fit_row, &acc);
    if (r < 0) {
        CLIENT_ERR(c, msg, INTERNAL, "reading fits failed");
    } else {
        Regmix__Envelope env;
        Regmix__FitsReply rep = REGMIX__FITS_REPLY__INIT;
        rep.n_fits = acc.n;
        rep.fits = acc.fits;
        frame_envelope_init(&env, 0);
        env.body_case = REGMIX__ENVELOPE__BODY_FITS_REPLY;
        env.fits_reply = &rep;
        client__reply(c, msg, &env);
    }
    for (size_t i = 0; i < acc.n; i++)
        client__fit_info_free(acc.fits[i]);
    free(acc.fits);
}

/* The proposal: the latest fit (one row, as status reads it) beside the prior. */
static void client__mixture(coord_t *c, const frame_msg_t *msg, const char *sweep_id)
{
    sweep_t *sw = client__sweep(c, msg, sweep_id);
    if (!sw)
        return;
    Regmix__FitInfo *fit = NULL;
    int k = sw->ndomains;
    Regmix__DomainWeight *dw = calloc((size_t)(k ? k : 1), sizeof *dw);
    Regmix__DomainWeight **dwp = calloc((size_t)(k ? k : 1), sizeof *dwp);
    if (client__latest_fit(c, sw, &fit) < 0) {
        CLIENT_ERR(c, msg, INTERNAL, "reading the latest fit of %s failed", sw->sweep_id);
    } else if (!dw || !dwp) {
        CLIENT_ERR(c, msg, INTERNAL, "out of memory");
    } else {
        Regmix__Envelope env;
        Regmix__MixtureReply rep = REGMIX__MIXTURE_REPLY__INIT;
        for (int i = 0; i < k && sw->spec; i++) {
            regmix__domain_weight__init(&dw[i]);
            dw[i].domain = sw->domains[i];
            dw[i].weight = sw->spec->domains[i].prior;
            dwp[i] = &dw[i];
        }
        rep.sweep_id = sw->sweep_id;
        rep.has_fit = fit != NULL;
        rep.fit = fit;
        rep.converged = sw->state == SWEEP_STATE_CONVERGED;
        rep.n_prior = sw->spec ? (size_t)k : 0;
        rep.prior = dwp;
        frame_envelope_init(&env, 0);
        env.body_case = REGMIX__ENVELOPE__BODY_MIXTURE_REPLY;
        env.mixture_reply = &rep;
        client__reply(c, msg, &env);
    }
    client__fit_info_free(fit);
    free(dw);
    free(dwp);
}

/* ---- report ------------------------------------------------------------------------------------ */

static void client__report(coord_t *c, const frame_msg_t *msg, const char *sweep_id)
{
    sweep_t *sw = client__sweep(c, msg, sweep_id);
    if (!sw)
        return;
    char *doc = dashboard_sweep_json(c, sw);
    if (!doc) {
        CLIENT_ERR(c, msg, INTERNAL, "reading the sweep failed");
        return;
    }
    Regmix__Envelope env;
    Regmix__ReportReply rep = REGMIX__REPORT_REPLY__INIT;
    rep.sweep_json = doc;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_REPORT_REPLY;
    env.report_reply = &rep;
    client__reply(c, msg, &env);
    free(doc);
}

/* ---- launch and target ------------------------------------------------------------------------- */

static void client__targets(coord_t *c, const frame_msg_t *msg, const char *sweep_id, int launch)
{
    sweep_t *sw = client__sweep(c, msg, sweep_id);
    if (!sw)
        return;
    if (launch) {
        char err[512] = "";
        int r = target_launch(c, sw, err, sizeof err);
        if (r == -ENOENT || r == -EALREADY) {
            CLIENT_ERR(c, msg, CONFLICT, "%s", err);
            return;
        }
        if (r < 0) {
            CLIENT_ERR(c, msg, BAD_REQUEST, "%s", err[0] ? err : strerror(-r));
            return;
        }
    }
    Regmix__TargetInfo **infos = NULL;
    size_t n = 0;
    if (target_infos(c, sw, &infos, &n) < 0) {
        CLIENT_ERR(c, msg, INTERNAL, "out of memory");
        return;
    }
    Regmix__Envelope env;
    Regmix__LaunchReply lrep = REGMIX__LAUNCH_REPLY__INIT;
    Regmix__TargetReply trep = REGMIX__TARGET_REPLY__INIT;
    frame_envelope_init(&env, 0);
    if (launch) {
        lrep.n_targets = n;
        lrep.targets = infos;
        env.body_case = REGMIX__ENVELOPE__BODY_LAUNCH_REPLY;
        env.launch_reply = &lrep;
    } else {
        trep.n_targets = n;
        trep.targets = infos;
        env.body_case = REGMIX__ENVELOPE__BODY_TARGET_REPLY;
        env.target_reply = &trep;
    }
    client__reply(c, msg, &env);
    target_infos_free(infos, n);
}

/* ---- workers and drain ------------------------------------------------------------------------- */

static void client__workers(coord_t *c, const frame_msg_t *msg)
{
    int n = c->nworkers;
    Regmix__WorkerInfo *infos = calloc((size_t)(n ? n : 1), sizeof *infos);
    Regmix__WorkerInfo **ptrs = calloc((size_t)(n ? n : 1), sizeof *ptrs);
    Regmix__GpuInfo *gpus = calloc((size_t)(n ? n : 1) * COORD_MAX_GPUS, sizeof *gpus);
    Regmix__GpuInfo **gptrs = calloc((size_t)(n ? n : 1) * COORD_MAX_GPUS, sizeof *gptrs);
    if (!infos || !ptrs || !gpus || !gptrs) {
        CLIENT_ERR(c, msg, INTERNAL, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        worker_t *w = c->workers[i];
        Regmix__WorkerInfo *wi = &infos[i];
        regmix__worker_info__init(wi);
        wi->worker_id = w->worker_id;
        wi->host = w->host;
        wi->slots = (uint32_t)w->slots;
        int credit = scheduler_credit(w);
        int free_slots = w->slots - w->outstanding;
        wi->free_slots = (uint32_t)(w->alive && free_slots > 0 ? free_slots : 0);
        (void)credit;
        wi->running = (uint32_t)w->outstanding;
        wi->state = (char *)states_worker_name(coord_worker_state(w));
        wi->consecutive_failures = (uint32_t)w->consecutive_failures;
        wi->last_seen_unix_ms = w->last_seen_ms;
        wi->done = (uint64_t)w->done;
        wi->failed = (uint64_t)w->failed;
        Regmix__GpuInfo *g = gpus + (size_t)i * COORD_MAX_GPUS;
        Regmix__GpuInfo **gp = gptrs + (size_t)i * COORD_MAX_GPUS;
        for (int j = 0; j < w->ngpus; j++) {
            regmix__gpu_info__init(&g[j]);
            g[j].index = w->gpu_index[j];
            gp[j] = &g[j];
        }
        wi->n_gpus = (size_t)w->ngpus;
        wi->gpus = gp;
        ptrs[i] = wi;
    }
    Regmix__Envelope env;
    Regmix__WorkersReply rep = REGMIX__WORKERS_REPLY__INIT;
    rep.n_workers = (size_t)n;
    rep.workers = ptrs;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_WORKERS_REPLY;
    env.workers_reply = &rep;
    client__reply(c, msg, &env);
out:
    free(infos);
    free(ptrs);
    free(gpus);
    free(gptrs);
}

static void client__drain(coord_t *c, const frame_msg_t *msg, const Regmix__DrainRequest *req)
{
    worker_t *w = req->worker_id ? coord_worker_by_id(c, req->worker_id) : NULL;
    if (!w) {
        CLIENT_ERR(c, msg, NOT_FOUND, "no worker '%.128s'", req->worker_id ? req->worker_id : "");
        return;
    }
    w->draining = 1;
    coord_worker_persist(c, w);
    if (w->connected) {
        Regmix__Envelope env;
        Regmix__Drain d = REGMIX__DRAIN__INIT;
        frame_envelope_init(&env, 0);
        d.reason = (char *)"drained by an operator";
        env.body_case = REGMIX__ENVELOPE__BODY_DRAIN;
        env.drain = &d;
        coord_send(c, COORD_WORKERS, w->rid, w->rlen, &env, 0);
    }
    log_info("worker_draining", "worker=%s running=%d", w->worker_id, w->outstanding);
    Regmix__Envelope env;
    Regmix__DrainReply rep = REGMIX__DRAIN_REPLY__INIT;
    rep.ok = 1;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_DRAIN_REPLY;
    env.drain_reply = &rep;
    client__reply(c, msg, &env);
}

/* ---- dispatch ---------------------------------------------------------------------------------- */

void client_on_message(zloop_watch_t *zw, frame_msg_t *msg, void *data)
{
    (void)zw;
    coord_t *c = data;
    if (c->stopping || c->fatal)
        return;
    if (msg->err) {
        coord_reject_malformed(c, COORD_CLIENTS, msg);
        return;
    }
    Regmix__Envelope *env = msg->env;
    switch (env->body_case) {
    case REGMIX__ENVELOPE__BODY_SUBMIT:
        client__submit(c, msg, env->submit);
        break;
    case REGMIX__ENVELOPE__BODY_STATUS:
        client__status(c, msg, env->status);
        break;
    case REGMIX__ENVELOPE__BODY_LIST:
        client__list(c, msg);
        break;
    case REGMIX__ENVELOPE__BODY_WATCH:
        client__watch(c, msg, env->watch);
        break;
    case REGMIX__ENVELOPE__BODY_CANCEL_SWEEP:
        client__cancel(c, msg, env->cancel_sweep);
        break;
    case REGMIX__ENVELOPE__BODY_RESULTS:
        client__results(c, msg, env->results);
        break;
    case REGMIX__ENVELOPE__BODY_WORKERS:
        client__workers(c, msg);
        break;
    case REGMIX__ENVELOPE__BODY_DRAIN_WORKER:
        client__drain(c, msg, env->drain_worker);
        break;
    case REGMIX__ENVELOPE__BODY_FITS:
        client__fits(c, msg, env->fits->sweep_id);
        break;
    case REGMIX__ENVELOPE__BODY_MIXTURE:
        client__mixture(c, msg, env->mixture->sweep_id);
        break;
    case REGMIX__ENVELOPE__BODY_LAUNCH:
        client__targets(c, msg, env->launch->sweep_id, 1);
        break;
    case REGMIX__ENVELOPE__BODY_TARGET:
        client__targets(c, msg, env->target->sweep_id, 0);
        break;
    case REGMIX__ENVELOPE__BODY_REPORT:
        client__report(c, msg, env->report->sweep_id);
        break;
    default: {
        char why[96];
        snprintf(why, sizeof why, "body %s is not valid on the client endpoint",
                 frame_body_name(env->body_case));
        coord_log_bad(c, "clients", msg->routing_id, msg->routing_len, why);
        CLIENT_ERR(c, msg, BAD_MESSAGE, "%s", why);
        break;
    }
    }
}
