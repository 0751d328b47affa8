/*
 * coord_harness.h: the coordinator's handlers without a daemon, for the unit tests of the
 * scheduler, the session, refit and target (tests/unit/test_{scheduler,session,refit,target}.c).
 *
 * A harness is what daemon.c is, minus sockets: a real SQLite store in a temporary directory, a
 * coord_t built by coord_new() on a real libuv loop (the thread pool runs the sampler and the
 * fits, child processes run the target launches), messages handed to session_on_message() and
 * client_on_message() as frame_recv() would, and a flush that does what the daemon's does
 * (scheduling pass, commit, then take the outbox). What would have been sent is decoded into
 * h->sent[] for the test to check.
 */
#ifndef REGMIX_COORD_HARNESS_H
#define REGMIX_COORD_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "client.h"
#include "clock.h"
#include "coord.h"
#include "scheduler.h"
#include "session.h"
#include "test.h"

#define H_MAX_SENT 8192

typedef struct harness {
    char dir[128];
    uv_loop_t loop;
    uv_timer_t wake; /* keeps UV_RUN_ONCE from blocking longer than 5 ms while we poll */
    coord_t *c;
    uint64_t next_id;
    int nsent;
    Regmix__Envelope *sent[H_MAX_SENT];
    coord_endpoint_t sent_ep[H_MAX_SENT];
    uint8_t sent_rid[H_MAX_SENT];
} harness_t;

static inline void h__wake(uv_timer_t *t)
{
    (void)t;
}

/* Opens a fresh store and coordinator; cfg_edit (may be NULL) adjusts the config. */
static inline int h_open(harness_t *h, void (*cfg_edit)(coord_config_t *))
{
    memset(h, 0, sizeof *h);
    snprintf(h->dir, sizeof h->dir, "/tmp/regmix-coord-unit-XXXXXX");
    if (!mkdtemp(h->dir))
        return -1;
    char db[200], err[256] = "";
    snprintf(db, sizeof db, "%s/regmix.db", h->dir);
    static coord_config_t cfg;
    coord_config_defaults(&cfg);
    cfg.db_path = db;
    cfg.lease_ms = 30000;
    if (cfg_edit)
        cfg_edit(&cfg);
    store_t *store = NULL;
    if (uv_loop_init(&h->loop) != 0 || store_open(db, &store, err, sizeof err) < 0) {
        fprintf(stderr, "harness: %s\n", err);
        return -1;
    }
    uv_timer_init(&h->loop, &h->wake);
    uv_timer_start(&h->wake, h__wake, 5, 5);
    if (coord_new(&h->loop, &cfg, &store, &h->c) < 0)
        return -1;
    snprintf(h->c->targets_dir, sizeof h->c->targets_dir, "%s/targets", h->dir);
    return 0;
}

static inline void h__clear_sent(harness_t *h)
{
    for (int i = 0; i < h->nsent; i++)
        regmix__envelope__free_unpacked(h->sent[i], NULL);
    h->nsent = 0;
}

/* What the daemon's flush does: scheduling pass, commit, then "send" (decode) the outbox. The
 * previous flush's messages are dropped. */
static inline void h_flush(harness_t *h)
{
    coord_t *c = h->c;
    h__clear_sent(h);
    if (c->sched_dirty) {
        c->sched_dirty = 0;
        scheduler_run(c);
    }
    if (store_in_txn(c->store))
        CHECK(store_commit(c->store) == 0);
    coord_out_t *outs = NULL;
    int n = 0;
    coord_outbox_take(c, &outs, &n);
    for (int i = 0; i < n; i++) {
        if (h->nsent < H_MAX_SENT) {
            Regmix__Envelope *env = regmix__envelope__unpack(NULL, outs[i].len, outs[i].buf);
            CHECK(env != NULL);
            if (env) {
                h->sent_ep[h->nsent] = outs[i].ep;
                h->sent_rid[h->nsent] = outs[i].rlen ? outs[i].rid[0] : 0;
                h->sent[h->nsent++] = env;
            }
        }
        free(outs[i].buf);
    }
    free(outs);
}

/* How many messages of `body` went to peer `rid` (0: any peer) in the last flush. */
static inline int h_count(const harness_t *h, Regmix__Envelope__BodyCase body, uint8_t rid)
{
    int n = 0;
    for (int i = 0; i < h->nsent; i++)
        n += h->sent[i]->body_case == body && (!rid || h->sent_rid[i] == rid);
    return n;
}

/* The k-th message of `body` in the last flush, or NULL. */
static inline const Regmix__Envelope *
h_get(const harness_t *h, Regmix__Envelope__BodyCase body, int k)
{
    for (int i = 0; i < h->nsent; i++)
        if (h->sent[i]->body_case == body && k-- == 0)
            return h->sent[i];
    return NULL;
}

/* Hands `env` to the worker (COORD_WORKERS) or client handler as from peer `rid` (one byte). */
static inline uint64_t
h_deliver(harness_t *h, coord_endpoint_t ep, uint8_t rid, Regmix__Envelope *env)
{
    frame_msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.routing_id[0] = rid;
    msg.routing_len = 1;
    msg.env = env;
    env->id = msg.id = ++h->next_id;
    if (ep == COORD_WORKERS)
        session_on_message(NULL, &msg, h->c);
    else
        client_on_message(NULL, &msg, h->c);
    return msg.id;
}

static inline void
h_hello(harness_t *h, uint8_t rid, const char *worker_id, uint32_t slots, int ngpus)
{
    Regmix__Envelope env;
    Regmix__Hello hello = REGMIX__HELLO__INIT;
    Regmix__GpuInfo g[8], *gp[8];
    for (int i = 0; i < ngpus && i < 8; i++) {
        regmix__gpu_info__init(&g[i]);
        g[i].index = (uint32_t)(10 + i); /* device numbers differ from positions */
        gp[i] = &g[i];
    }
    frame_envelope_init(&env, 0);
    hello.worker_id = (char *)worker_id;
    hello.boot_id = (char *)"boot-1";
    hello.host = (char *)"unit";
    hello.slots = slots;
    hello.n_gpus = (size_t)ngpus;
    hello.gpus = gp;
    env.body_case = REGMIX__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    h_deliver(h, COORD_WORKERS, rid, &env);
}

static inline void h_ready(harness_t *h, uint8_t rid, uint32_t free_slots)
{
    Regmix__Envelope env;
    Regmix__Ready r = REGMIX__READY__INIT;
    frame_envelope_init(&env, 0);
    r.free_slots = free_slots;
    env.body_case = REGMIX__ENVELOPE__BODY_READY;
    env.ready = &r;
    h_deliver(h, COORD_WORKERS, rid, &env);
}

/* A RESULT for `attempt` with one loss per name (n of them). */
static inline void h_result(harness_t *h,
                            uint8_t rid,
                            uint64_t attempt,
                            const char *const *names,
                            const double *losses,
                            int n)
{
    Regmix__Envelope env;
    Regmix__Result res = REGMIX__RESULT__INIT;
    Regmix__DomainValue dv[16], *dvp[16];
    for (int i = 0; i < n && i < 16; i++) {
        regmix__domain_value__init(&dv[i]);
        dv[i].name = (char *)names[i];
        dv[i].value = losses[i];
        dvp[i] = &dv[i];
    }
    frame_envelope_init(&env, 0);
    res.attempt_id = attempt;
    /* the run the attempt was assigned (0 when it is not live: the RESULT is fenced anyway) */
    attempt_t *a = attempt_table_get(h->c->attempts, (int64_t)attempt);
    res.run_id = a ? (uint64_t)a->run : 0;
    res.n_losses = (size_t)n;
    res.losses = dvp;
    res.seconds = 0.5;
    env.body_case = REGMIX__ENVELOPE__BODY_RESULT;
    env.result = &res;
    h_deliver(h, COORD_WORKERS, rid, &env);
}

static inline void h_failed(harness_t *h, uint8_t rid, uint64_t attempt, int exit_code)
{
    Regmix__Envelope env;
    Regmix__Failed f = REGMIX__FAILED__INIT;
    frame_envelope_init(&env, 0);
    f.attempt_id = attempt;
    f.exit_code = exit_code;
    f.reason = (char *)"unit test failure";
    env.body_case = REGMIX__ENVELOPE__BODY_FAILED;
    env.failed = &f;
    h_deliver(h, COORD_WORKERS, rid, &env);
}

/* Runs the loop until cond(h) holds or `ms` pass; returns 1 when it held. */
static inline int h_run_until(harness_t *h, int (*cond)(harness_t *), int ms)
{
    int64_t deadline = clock_mono_ms() + ms;
    while (!cond(h)) {
        if (clock_mono_ms() > deadline)
            return 0;
        uv_run(&h->loop, UV_RUN_ONCE);
    }
    return 1;
}

static inline int h__has_submit_reply(harness_t *h)
{
    if (h->c->nout == 0)
        return 0;
    h_flush(h);
    return h_count(h, REGMIX__ENVELOPE__BODY_SUBMIT_REPLY, 0) +
                   h_count(h, REGMIX__ENVELOPE__BODY_ERROR, 0) >
           0;
}

/* Submits `yaml` from client peer 'C' with `priority` and waits (thread pool: the sampler) for
 * the reply. Returns the sweep, or NULL (the test fails). */
static inline sweep_t *h_submit(harness_t *h, const char *yaml, int priority)
{
    Regmix__Envelope env;
    Regmix__SubmitRequest req = REGMIX__SUBMIT_REQUEST__INIT;
    frame_envelope_init(&env, 0);
    req.spec_yaml = (char *)yaml;
    req.spec_name = (char *)"unit.yaml";
    req.priority = priority;
    env.body_case = REGMIX__ENVELOPE__BODY_SUBMIT;
    env.submit = &req;
    h_deliver(h, COORD_CLIENTS, 'C', &env);
    CHECK(h_run_until(h, h__has_submit_reply, 20000));
    const Regmix__Envelope *rep = h_get(h, REGMIX__ENVELOPE__BODY_SUBMIT_REPLY, 0);
    CHECK(rep != NULL);
    if (!rep) {
        const Regmix__Envelope *e = h_get(h, REGMIX__ENVELOPE__BODY_ERROR, 0);
        fprintf(stderr, "submit: %s\n", e && e->error->message ? e->error->message : "no reply");
        return NULL;
    }
    return coord_sweep_find(h->c, rep->submit_reply->sweep_id);
}

/* The state of run `idx` of `sw` as stored. */
static inline run_state_t h_run_state(harness_t *h, const sweep_t *sw, int idx)
{
    int64_t run = 0, live = 0;
    run_state_t st = RUN_STATE_UNSPECIFIED;
    if (store_run_lookup(h->c->store, sw->id, idx, &run, &st, &live) < 0)
        return RUN_STATE_UNSPECIFIED;
    return st;
}

/* How many runs of `sw` are stored in `state`. */
static inline int h_runs_in(harness_t *h, const sweep_t *sw, run_state_t state)
{
    int n = 0;
    for (int i = 0; i < sw->nruns; i++)
        n += h_run_state(h, sw, i) == state;
    return n;
}

/* A restart: the coordinator is destroyed (its transaction committed) and a new one opens the
 * same store; nothing is loaded (the test loads what it needs, as daemon.c would). */
static inline int h_reopen(harness_t *h)
{
    h__clear_sent(h);
    char db[200], err[256] = "";
    snprintf(db, sizeof db, "%s/regmix.db", h->dir);
    coord_config_t cfg = h->c->cfg;
    coord_destroy(&h->c);
    store_t *store = NULL;
    if (store_open(db, &store, err, sizeof err) < 0 ||
        coord_new(&h->loop, &cfg, &store, &h->c) < 0) {
        fprintf(stderr, "harness: reopen: %s\n", err);
        return -1;
    }
    snprintf(h->c->targets_dir, sizeof h->c->targets_dir, "%s/targets", h->dir);
    return 0;
}

static inline void h__close_cb(uv_handle_t *handle)
{
    (void)handle;
}

/* Frees everything; the temporary directory is removed unless a check failed so far. */
static inline void h_close(harness_t *h)
{
    h__clear_sent(h);
    uv_timer_stop(&h->wake);
    uv_close((uv_handle_t *)&h->wake, h__close_cb);
    uv_run(&h->loop, UV_RUN_DEFAULT); /* queued work and closing handles finish */
    coord_destroy(&h->c);
    CHECK(uv_loop_close(&h->loop) == 0);
    if (test__failures)
        fprintf(stderr, "coordinator unit test kept in %s\n", h->dir);
    else if (nftw(h->dir, test__rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", h->dir);
}

#endif
