/*
 * session: the worker's side of the worker protocol (session.h).
 */
#include "session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "config.h"
#include "frame.h"
#include "jobs.h"
#include "log.h"
#include "net.h"
#include "outbox.h"

static void session_send_ping(worker_t *w)
{
    Regmix__Envelope env;
    Regmix__Ping ping = REGMIX__PING__INIT;
    uint64_t ids[WORKER_MAX_SLOTS];
    frame_envelope_init(&env, 0);
    ping.free_slots = w->draining ? 0 : jobs_free_slots(w);
    for (unsigned i = 0; i < w->slots; i++)
        if (w->jobs[i] && !w->jobs[i]->finished)
            ids[ping.n_running_attempt_ids++] = w->jobs[i]->attempt_id;
    ping.running_attempt_ids = ids;
    env.body_case = REGMIX__ENVELOPE__BODY_PING;
    env.ping = &ping;
    net_send(w, &env);
    w->last_ping_ms = clock_mono_ms();
}

static void session_on_welcome(worker_t *w, const Regmix__Welcome *wel)
{
    w->welcomed = 1;
    w->ever_welcomed = 1;
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
        jobs_stop(w, wel->abandon_attempt_ids[i], "abandoned");
    for (held_t *h = w->held; h; h = h->next)
        outbox_send(w, h);
    jobs_send_ready(w);
    w->last_ping_ms = clock_mono_ms();
}

static void session_on_message(worker_t *w, const Regmix__Envelope *env)
{
    switch (env->body_case) {
    case REGMIX__ENVELOPE__BODY_WELCOME:
        session_on_welcome(w, env->welcome);
        break;
    case REGMIX__ENVELOPE__BODY_PONG:
        break;
    case REGMIX__ENVELOPE__BODY_ASSIGN:
        jobs_assign(w, env->assign);
        break;
    case REGMIX__ENVELOPE__BODY_RESULT_ACK:
        if (!env->result_ack->accepted && outbox_find(w, env->result_ack->attempt_id, NULL))
            log_info("result_discarded",
                     "worker=%s attempt=%" PRIu64 " why=\"fenced or duplicate\"", w->worker_id,
                     env->result_ack->attempt_id);
        /* The kill tests check that every attempt acknowledged here is stored. */
        if (env->result_ack->accepted && outbox_find(w, env->result_ack->attempt_id, NULL))
            log_info("result_acked", "worker=%s attempt=%" PRIu64, w->worker_id,
                     env->result_ack->attempt_id);
        outbox_drop(w, env->result_ack->attempt_id,
                    env->result_ack->accepted ? "acked" : "acked-discarded");
        break;
    case REGMIX__ENVELOPE__BODY_FAILED_ACK:
        outbox_drop(w, env->failed_ack->attempt_id, "failed-acked");
        break;
    case REGMIX__ENVELOPE__BODY_CANCEL:
        jobs_stop(w, env->cancel->attempt_id, "cancelled");
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
            session_hello(w);
        }
        if (e->code == REGMIX__ERROR_CODE__ERROR_CODE_CONFLICT && !w->ever_welcomed) {
            /* Another live worker holds this id (same host and --name, or another CURVE key):
             * say so and stop rather than fight over it. */
            fprintf(stderr, "regmix-worker: %s\n", e->message ? e->message : "worker id in use");
            worker_quit(w, 2);
        }
        break;
    }
    default:
        log_warn("unexpected_message", "worker=%s body=%s", w->worker_id,
                 frame_body_name(env->body_case));
        break;
    }
}

static void session_recv_cb(zloop_watch_t *watch, frame_msg_t *msg, void *data)
{
    worker_t *w = data;
    (void)watch;
    if (!msg->env) {
        if (msg->bytes == 0 && msg->err && !msg->why) {
            log_warn("socket_failed", "worker=%s err=\"%s\"", w->worker_id, strerror(-msg->err));
            session_reconnect(w, "socket failed");
            return;
        }
        log_warn("bad_message", "worker=%s why=\"%s\" bytes=%zu", w->worker_id,
                 msg->why ? msg->why : strerror(-msg->err), msg->bytes);
        return;
    }
    w->last_rx_ms = clock_mono_ms();
    session_on_message(w, msg->env);
}

void session_hello(worker_t *w)
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
    net_send(w, &env);
    free(ha);
    free(hp);
    w->hello_ms = clock_mono_ms();
    log_info("hello", "worker=%s endpoint=%s slots=%u gpus=%d attempts=%zu", w->worker_id,
             w->endpoint, w->slots, w->n_gpus, n);
}

void session_reconnect(worker_t *w, const char *why)
{
    log_info("reconnect", "worker=%s why=\"%s\" backoff_ms=%" PRId64, w->worker_id, why,
             w->backoff_ms);
    net_close(w);
    w->welcomed = 0;
    int rc = session_open(w);
    if (rc < 0) {
        log_error("socket_open_failed", "worker=%s endpoint=%s err=\"%s\"", w->worker_id,
                  w->endpoint, zmq_strerror(-rc));
        w->hello_ms = clock_mono_ms();
        return;
    }
    session_hello(w);
}

void session_tick(worker_t *w)
{
    int64_t now = clock_mono_ms();
    if (w->stopping)
        return;
    /* A stall of this process (descheduled on a loaded machine, a slow fork or disk) is not the
     * coordinator's silence: libuv runs due timers before it polls the socket, so the PONGs that
     * came meanwhile are still unread here. The silence judged leaves the stall out (the time
     * past one tick), as the coordinator's does for its workers (daemon.c). */
    int64_t gap = w->last_tick_ms ? now - w->last_tick_ms : 0;
    w->last_tick_ms = now;
    if (gap > (int64_t)w->heartbeat_ms && gap > 2 * WORKER_TICK_MS) {
        int64_t stalled = gap - WORKER_TICK_MS;
        log_warn("loop_stalled", "worker=%s ms=%lld", w->worker_id, (long long)gap);
        w->last_rx_ms = w->last_rx_ms + stalled < now ? w->last_rx_ms + stalled : now;
        w->hello_ms = w->hello_ms + stalled < now ? w->hello_ms + stalled : now;
    }
    if (!w->welcomed) {
        if (now - w->hello_ms >= w->backoff_ms) {
            w->backoff_ms = w->backoff_ms * 2 > WORKER_BACKOFF_MAX_MS ? WORKER_BACKOFF_MAX_MS
                                                                      : w->backoff_ms * 2;
            session_reconnect(w, "no welcome");
        }
        return;
    }
    int64_t hb = w->heartbeat_ms;
    if (now - w->last_rx_ms > 3 * hb) {
        w->backoff_ms = WORKER_BACKOFF_MIN_MS;
        session_reconnect(w, "coordinator silent for 3 heartbeats");
        return;
    }
    if (now - w->last_ping_ms >= hb)
        session_send_ping(w);
    int64_t resend = 2 * hb > 1000 ? 2 * hb : 1000;
    for (held_t *h = w->held; h; h = h->next)
        if (now - h->last_sent_ms >= resend)
            outbox_send(w, h);
}

int session_open(worker_t *w)
{
    return net_open(w, session_recv_cb);
}
