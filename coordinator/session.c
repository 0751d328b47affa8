#include "session.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "refit.h"
#include "transition.h"

#define SESSION_NAME_MAX    128
#define SESSION_LOSSES_MAX  SPEC_MAX_DOMAINS
#define SESSION_HOST_MAX    255
#define SESSION_TEXT_MAX    128  /* boot id, software version, GPU names and uuids */
#define SESSION_LOSS_MAX    1000 /* nats or bits per byte: anything above is not a loss */
#define SESSION_CANCELS_MAX 32   /* CANCELs one PING may cause */

static void
session__reply(coord_t *c, const worker_t *w, const frame_msg_t *msg, Regmix__Envelope *env)
{
    env->reply_to = msg->id;
    if (w)
        coord_send(c, COORD_WORKERS, w->rid, w->rlen, env, 0);
    else
        coord_send(c, COORD_WORKERS, msg->routing_id, msg->routing_len, env, 0);
}

static int session__name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > SESSION_NAME_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p == 0x7f || *p == '"' || *p == '\\')
            return 0;
    return 1;
}

static char *session__dup(char *old, const char *s)
{
    free(old);
    char *d = strdup(s ? s : "");
    return d;
}

static char *session__gpus_json(const Regmix__Hello *h)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < h->n_gpus; i++) {
        const Regmix__GpuInfo *g = h->gpus[i];
        json_array_append_new(arr, json_pack("{s:i, s:s, s:I, s:s}", "index", (int)g->index, "name",
                                             g->name ? g->name : "", "memory_bytes",
                                             (json_int_t)g->memory_bytes, "uuid",
                                             g->uuid ? g->uuid : ""));
    }
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    return s ? s : strdup("[]");
}

static int session__cmp_u64(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? -1 : a > b;
}

/* Maps an orphan's stored GPU indices (bits = index values) to positions in w->gpu_index. */
static uint64_t session__gpu_positions(const worker_t *w, uint64_t index_bits)
{
    uint64_t mask = 0;
    for (int i = 0; i < w->ngpus; i++)
        if (w->gpu_index[i] < 64 && (index_bits & (1ull << w->gpu_index[i])))
            mask |= 1ull << i;
    return mask;
}

/* NULL when every string of the HELLO is within its cap, else why not. */
static const char *session__hello_text_check(const Regmix__Hello *h)
{
    if (h->host && strlen(h->host) > SESSION_HOST_MAX)
        return "host longer than 255 bytes";
    if ((h->boot_id && strlen(h->boot_id) > SESSION_TEXT_MAX) ||
        (h->software_version && strlen(h->software_version) > SESSION_TEXT_MAX))
        return "boot_id or software_version longer than 128 bytes";
    for (size_t i = 0; i < h->n_gpus; i++)
        if ((h->gpus[i]->name && strlen(h->gpus[i]->name) > SESSION_TEXT_MAX) ||
            (h->gpus[i]->uuid && strlen(h->gpus[i]->uuid) > SESSION_TEXT_MAX))
            return "a GPU name or uuid longer than 128 bytes";
    return NULL;
}

/*
 * A HELLO for an id that is already bound: with CURVE the id belongs to the key that first said
 * HELLO for it (only that key may use it, also after the other disconnected); without CURVE to
 * the live connection, unless the HELLO comes from the same worker process (its boot id), which
 * reconnected, or the old connection is closed (a killed worker restarting). A refused peer
 * gets CONFLICT and the live worker keeps its attempts. Returns 1 when refused.
 */
static int
session__hello_conflict(coord_t *c, const worker_t *w, const frame_msg_t *msg, const char *boot)
{
    const char *why = NULL;
    if (w->key[0] && strcmp(w->key, msg->peer_key) != 0)
        why = "is bound to another CURVE key";
    else if (!w->key[0] && w->connected && w->alive &&
             (w->rlen != msg->routing_len || memcmp(w->rid, msg->routing_id, w->rlen) != 0) &&
             strcmp(w->boot_id, boot) != 0 && (!c->route_live || c->route_live(c, w->rid, w->rlen)))
        why = "is connected from another peer";
    if (!why)
        return 0;
    char text[300];
    snprintf(text, sizeof text,
             "worker id %s %s; give each worker its own --name (refused, the live worker keeps "
             "its attempts)",
             w->worker_id, why);
    coord_log_bad(c, "workers", msg->routing_id, msg->routing_len, text);
    coord_send_error(c, COORD_WORKERS, msg->routing_id, msg->routing_len, msg->id,
                     REGMIX__ERROR_CODE__ERROR_CODE_CONFLICT, "%s", text);
    return 1;
}

/* At the worker limit: forgets the worker seen longest ago among those with no connection and
 * no live or orphaned attempts (its row too), so ids that came once cannot fill the table for
 * good. Quarantined workers are forgotten last. */
static void session__worker_gc(coord_t *c)
{
    worker_t *best = NULL;
    for (int i = 0; i < c->nworkers; i++) {
        worker_t *w = c->workers[i];
        if ((w->connected && w->alive) || w->outstanding > 0 || w->attempts)
            continue;
        int orphaned = 0;
        for (attempt_t *a = c->orphans; a && !orphaned; a = a->lnext)
            orphaned = strcmp(a->worker_id, w->worker_id) == 0;
        if (orphaned)
            continue; /* its attempts may still be re-adopted */
        if (!best || w->quarantined < best->quarantined ||
            (w->quarantined == best->quarantined && w->last_seen_ms < best->last_seen_ms))
            best = w;
    }
    if (!best)
        return;
    char id[COORD_WORKER_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", best->worker_id);
    long long seen = (long long)best->last_seen_ms;
    if (coord_worker_forget(c, best) == 0)
        log_info("worker_forgotten", "worker=%s last_seen_ms=%lld why=worker_limit", id, seen);
}

void session_worker_strike(coord_t *c, worker_t *w, const char *why)
{
    w->consecutive_failures++;
    if (!w->quarantined && w->consecutive_failures >= c->cfg.quarantine_after) {
        w->quarantined = 1;
        w->quarantined_mono = clock_mono_ms();
        log_warn("worker_quarantined", "worker=%s consecutive_failures=%d last=\"%s\"",
                 w->worker_id, w->consecutive_failures, why);
    }
    coord_worker_persist(c, w);
}

static void session__hello(coord_t *c, const frame_msg_t *msg, const Regmix__Hello *h)
{
    if (!session__name_ok(h->worker_id)) {
        coord_send_error(c, COORD_WORKERS, msg->routing_id, msg->routing_len, msg->id,
                         REGMIX__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
                         "worker_id must be 1-%d printable characters without spaces",
                         SESSION_NAME_MAX);
        return;
    }
    if (h->slots == 0 || h->slots > COORD_MAX_SLOTS || h->n_gpus > COORD_MAX_GPUS ||
        h->n_attempts > COORD_MAX_HELD) {
        coord_send_error(c, COORD_WORKERS, msg->routing_id, msg->routing_len, msg->id,
                         REGMIX__ERROR_CODE__ERROR_CODE_BAD_REQUEST,
                         "slots must be 1-%d, gpus at most %d, held attempts at most %d",
                         COORD_MAX_SLOTS, COORD_MAX_GPUS, COORD_MAX_HELD);
        return;
    }
    const char *too_long = session__hello_text_check(h);
    if (too_long) {
        coord_log_bad(c, "workers", msg->routing_id, msg->routing_len, too_long);
        coord_send_error(c, COORD_WORKERS, msg->routing_id, msg->routing_len, msg->id,
                         REGMIX__ERROR_CODE__ERROR_CODE_BAD_REQUEST, "%s", too_long);
        return;
    }
    worker_t *w = coord_worker_by_id(c, h->worker_id);
    const char *boot = h->boot_id ? h->boot_id : "";
    if (w && session__hello_conflict(c, w, msg, boot))
        return;
    if (!w) {
        if (c->nworkers >= c->cfg.max_workers)
            session__worker_gc(c);
        if (c->nworkers >= c->cfg.max_workers) {
            coord_send_error(c, COORD_WORKERS, msg->routing_id, msg->routing_len, msg->id,
                             REGMIX__ERROR_CODE__ERROR_CODE_LIMIT, "too many workers (limit %d)",
                             c->cfg.max_workers);
            return;
        }
        w = coord_worker_new(c, h->worker_id);
        if (!w) {
            coord_send_error(c, COORD_WORKERS, msg->routing_id, msg->routing_len, msg->id,
                             REGMIX__ERROR_CODE__ERROR_CODE_INTERNAL, "out of memory");
            return;
        }
    }
    /* Another worker id on this routing id (a renamed worker): that one is gone from here. */
    worker_t *other = coord_worker_by_rid(c, msg->routing_id, msg->routing_len);
    if (other && other != w)
        other->connected = 0;

    int new_boot = strcmp(w->boot_id, boot) != 0;
    if (msg->peer_key[0] && !w->key[0])
        memcpy(w->key, msg->peer_key, sizeof w->key);
    w->host = session__dup(w->host, h->host);
    w->boot_id = session__dup(w->boot_id, boot);
    w->software_version = session__dup(w->software_version, h->software_version);
    free(w->gpus_json);
    w->gpus_json = session__gpus_json(h);
    w->slots = (int)h->slots;
    w->ngpus = (int)h->n_gpus;
    for (int i = 0; i < w->ngpus; i++)
        w->gpu_index[i] = h->gpus[i]->index;
    if (new_boot) {
        /* A restarted worker process is not draining any more; a quarantine stays (a peer that
         * failed its jobs must not clear it by reconnecting with a new boot id). */
        w->draining = 0;
    }
    memcpy(w->rid, msg->routing_id, msg->routing_len);
    w->rlen = msg->routing_len;
    w->connected = 1;
    w->alive = 1;
    w->ready_free = 0;
    w->assigned_since_ready = 0;
    w->last_seen_mono = clock_mono_ms();
    w->last_seen_ms = clock_unix_ms();

    /* Re-adoption: what the worker holds and we still consider live (held by it) stays;
     * what it holds and is not live is abandoned; what we think it runs and it does not list
     * is lost. */
    size_t nheld = h->n_attempts;
    uint64_t *held = calloc(nheld ? nheld : 1, sizeof *held);
    uint64_t *abandon = calloc(nheld ? nheld : 1, sizeof *abandon);
    size_t nabandon = 0;
    if (!held || !abandon) {
        free(held);
        free(abandon);
        coord_send_error(c, COORD_WORKERS, msg->routing_id, msg->routing_len, msg->id,
                         REGMIX__ERROR_CODE__ERROR_CODE_INTERNAL, "out of memory");
        return;
    }
    int adopted = 0;
    for (size_t i = 0; i < nheld; i++) {
        uint64_t id = h->attempts[i]->attempt_id;
        held[i] = id;
        attempt_t *a = attempt_table_get(c->attempts, (int64_t)id);
        if (a && a->worker == w)
            continue;
        if (a && !a->worker && strcmp(a->worker_id, w->worker_id) == 0) {
            attempt_list_remove(&c->orphans, a);
            a->worker = w;
            a->gpu_mask = session__gpu_positions(w, a->gpu_mask);
            a->leased_mono = clock_mono_ms();
            attempt_list_push(&w->attempts, a);
            w->outstanding++;
            adopted++;
            log_info("attempt_adopted", "attempt=%llu run=%lld worker=%s finished=%d",
                     (unsigned long long)id, (long long)a->run, w->worker_id,
                     (int)h->attempts[i]->finished);
            continue;
        }
        abandon[nabandon++] = id;
    }
    qsort(held, nheld, sizeof *held, session__cmp_u64);
    for (attempt_t *a = w->attempts, *next; a && !c->fatal; a = next) {
        next = a->lnext;
        uint64_t key = (uint64_t)a->id;
        if (!bsearch(&key, held, nheld, sizeof *held, session__cmp_u64))
            transition_attempt_lost(c, a, "not held by the worker at hello");
    }
    for (attempt_t *a = c->orphans, *next; a && !c->fatal; a = next) {
        next = a->lnext;
        if (strcmp(a->worker_id, w->worker_id) == 0)
            transition_attempt_lost(c, a, "not held by the worker at hello");
    }
    w->gpu_used = 0;
    for (attempt_t *a = w->attempts; a; a = a->lnext)
        w->gpu_used |= a->gpu_mask;
    coord_worker_persist(c, w);

    Regmix__Envelope env;
    Regmix__Welcome wel = REGMIX__WELCOME__INIT;
    frame_envelope_init(&env, 0);
    wel.heartbeat_ms = (uint32_t)c->cfg.heartbeat_ms;
    wel.lease_ms = (uint32_t)c->cfg.lease_ms;
    wel.coordinator_id = c->coordinator_id;
    wel.n_abandon_attempt_ids = nabandon;
    wel.abandon_attempt_ids = abandon;
    env.body_case = REGMIX__ENVELOPE__BODY_WELCOME;
    env.welcome = &wel;
    session__reply(c, w, msg, &env);
    if (w->draining) {
        Regmix__Drain d = REGMIX__DRAIN__INIT;
        frame_envelope_init(&env, 0);
        d.reason = (char *)"drained by an operator";
        env.body_case = REGMIX__ENVELOPE__BODY_DRAIN;
        env.drain = &d;
        coord_send(c, COORD_WORKERS, w->rid, w->rlen, &env, 0);
    }
    char hq[160];
    log_info("worker_hello",
             "worker=%s host=%s slots=%d gpus=%d boot_new=%d held=%zu adopted=%d abandoned=%zu",
             w->worker_id, log_quote(w->host, hq, sizeof hq), w->slots, w->ngpus, new_boot, nheld,
             adopted, nabandon);
    free(held);
    free(abandon);
    coord_kick(c);
}

static void session__ping(coord_t *c, worker_t *w, const frame_msg_t *msg, const Regmix__Ping *p)
{
    /* Attempts the worker runs that are not live here (lease passed, cancelled): stop them.
     * At most SESSION_CANCELS_MAX a PING: the worker lists what it still runs in the next one,
     * so an honest worker gets the rest then, and a peer naming thousands of unknown ids cannot
     * make one message cost thousands of replies. */
    int cancels = 0;
    for (size_t i = 0; i < p->n_running_attempt_ids && i < COORD_MAX_HELD; i++) {
        uint64_t id = p->running_attempt_ids[i];
        attempt_t *a = attempt_table_get(c->attempts, (int64_t)id);
        if (a && a->worker == w) {
            a->reported = 1;
            continue;
        }
        if (++cancels > SESSION_CANCELS_MAX)
            continue;
        Regmix__Envelope env;
        Regmix__Cancel cm = REGMIX__CANCEL__INIT;
        frame_envelope_init(&env, 0);
        cm.attempt_id = id;
        cm.reason = (char *)"attempt is not live (lease passed, cancelled or fenced)";
        env.body_case = REGMIX__ENVELOPE__BODY_CANCEL;
        env.cancel = &cm;
        coord_send(c, COORD_WORKERS, w->rid, w->rlen, &env, 0);
    }
    Regmix__Envelope env;
    Regmix__Pong pong = REGMIX__PONG__INIT;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_PONG;
    env.pong = &pong;
    session__reply(c, w, msg, &env);
}

static void session__ready(coord_t *c, worker_t *w, const Regmix__Ready *r)
{
    int n = (int)(r->free_slots > COORD_MAX_SLOTS ? COORD_MAX_SLOTS : r->free_slots);
    w->ready_free = n;
    w->assigned_since_ready = 0;
    coord_kick(c);
}

static void session__started(coord_t *c, worker_t *w, const Regmix__Started *s)
{
    attempt_t *a = attempt_table_get(c->attempts, (int64_t)s->attempt_id);
    if (!a || a->worker != w || a->running)
        return;
    transition_attempt_started(c, a);
}

static void session__progress(coord_t *c, worker_t *w, const Regmix__Progress *p)
{
    attempt_t *a = attempt_table_get(c->attempts, (int64_t)p->attempt_id);
    if (!a || a->worker != w)
        return;
    int64_t mono = clock_mono_ms();
    if (a->last_progress_mono && mono - a->last_progress_mono < c->cfg.progress_every_ms)
        return;
    a->last_progress_mono = mono;
    if (coord_write(c) < 0)
        return;
    if (store_progress_insert(c->store, a->id, p->step, p->loss, p->lr, p->tokens,
                              p->tokens_per_second, clock_unix_ms()) < 0)
        coord_fatal(c, "progress_insert");
}

/* Renders name/value pairs as a JSON object; NULL when a name is bad or a value not finite. */
static char *session__values_json(Regmix__DomainValue **v, size_t n)
{
    if (n > SESSION_LOSSES_MAX)
        return NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!v[i]->name || !*v[i]->name || strlen(v[i]->name) > SESSION_NAME_MAX ||
            !isfinite(v[i]->value) || v[i]->value < 0 || v[i]->value > SESSION_LOSS_MAX ||
            json_object_set_new(o, v[i]->name, json_real(v[i]->value))) {
            json_decref(o);
            return NULL;
        }
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static void
session__ack_result(coord_t *c, worker_t *w, const frame_msg_t *msg, uint64_t id, int accepted)
{
    Regmix__Envelope env;
    Regmix__ResultAck ack = REGMIX__RESULT_ACK__INIT;
    frame_envelope_init(&env, 0);
    ack.attempt_id = id;
    ack.accepted = accepted;
    env.body_case = REGMIX__ENVELOPE__BODY_RESULT_ACK;
    env.result_ack = &ack;
    session__reply(c, w, msg, &env);
}

/* The attempt failed (FAILED, or a result that cannot be stored): the worker's failure count
 * (quarantine after quarantine_after in a row), then the attempt ends (transition.h). */
static void session__attempt_failed(
        coord_t *c, worker_t *w, attempt_t *a, int exit_code, int sig, const char *reason)
{
    w->failed++;
    session_worker_strike(c, w, "attempt failed");
    transition_attempt_failed(c, a, exit_code, sig, reason);
}

static void
session__result(coord_t *c, worker_t *w, const frame_msg_t *msg, const Regmix__Result *res)
{
    attempt_t *a = attempt_table_get(c->attempts, (int64_t)res->attempt_id);
    if (!a || a->worker != w) {
        c->n_fenced++;
        log_info("result_fenced", "attempt=%llu run=%llu worker=%s",
                 (unsigned long long)res->attempt_id, (unsigned long long)res->run_id,
                 w->worker_id);
        session__ack_result(c, w, msg, res->attempt_id, 0);
        return;
    }
    if (coord_write(c) < 0)
        return;
    char *losses = session__values_json(res->losses, res->n_losses);
    char *bpb = session__values_json(res->bits_per_byte, res->n_bits_per_byte);
    const char *bad = NULL;
    if (res->run_id != (uint64_t)a->run)
        bad = "result names another run than its attempt's";
    else if (!losses || !bpb || res->n_losses == 0)
        bad = "result with no losses, or a loss that is not finite or not in [0, 1000]";
    else if (!isfinite(res->seconds) || res->seconds < 0)
        bad = "result with bad seconds";
    if (bad) {
        free(losses);
        free(bpb);
        coord_log_bad(c, "workers", msg->routing_id, msg->routing_len, bad);
        session__attempt_failed(c, w, a, 0, 0, bad);
        session__ack_result(c, w, msg, res->attempt_id, 0);
        return;
    }
    sweep_t *sw = a->sweep;
    int r = transition_attempt_done(c, a, losses, bpb, res->tokens, res->seconds);
    free(losses);
    free(bpb);
    if (r < 0)
        return;
    int accepted = r == 1;
    w->done++;
    w->consecutive_failures = 0;
    w->probation = 0;
    w->dirty = 1;
    if (accepted)
        refit_maybe(c, sw);
    session__ack_result(c, w, msg, res->attempt_id, accepted);
}

static void
session__failed(coord_t *c, worker_t *w, const frame_msg_t *msg, const Regmix__Failed *f)
{
    attempt_t *a = attempt_table_get(c->attempts, (int64_t)f->attempt_id);
    if (a && a->worker == w && coord_write(c) == 0)
        session__attempt_failed(c, w, a, f->exit_code, f->signal, f->reason);
    else
        log_info("failed_fenced", "attempt=%llu worker=%s", (unsigned long long)f->attempt_id,
                 w->worker_id);
    Regmix__Envelope env;
    Regmix__FailedAck ack = REGMIX__FAILED_ACK__INIT;
    frame_envelope_init(&env, 0);
    ack.attempt_id = f->attempt_id;
    env.body_case = REGMIX__ENVELOPE__BODY_FAILED_ACK;
    env.failed_ack = &ack;
    session__reply(c, w, msg, &env);
}

void session_on_message(zloop_watch_t *zw, frame_msg_t *msg, void *data)
{
    (void)zw;
    coord_t *c = data;
    if (c->stopping || c->fatal)
        return;
    if (msg->err) {
        coord_reject_malformed(c, COORD_WORKERS, msg);
        return;
    }
    Regmix__Envelope *env = msg->env;
    if (env->body_case < REGMIX__ENVELOPE__BODY_HELLO ||
        env->body_case > REGMIX__ENVELOPE__BODY_FAILED) {
        char why[96];
        snprintf(why, sizeof why, "body %s is not valid on the worker endpoint",
                 frame_body_name(env->body_case));
        coord_log_bad(c, "workers", msg->routing_id, msg->routing_len, why);
        coord_send_error(c, COORD_WORKERS, msg->routing_id, msg->routing_len, msg->id,
                         REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE, "%s", why);
        return;
    }
    if (env->body_case == REGMIX__ENVELOPE__BODY_HELLO) {
        session__hello(c, msg, env->hello);
        return;
    }
    worker_t *w = coord_worker_by_rid(c, msg->routing_id, msg->routing_len);
    if (!w) {
        coord_log_bad(c, "workers", msg->routing_id, msg->routing_len,
                      "worker message before HELLO");
        coord_send_error(c, COORD_WORKERS, msg->routing_id, msg->routing_len, msg->id,
                         REGMIX__ERROR_CODE__ERROR_CODE_UNKNOWN_WORKER,
                         "unknown worker: send HELLO first");
        return;
    }
    w->last_seen_mono = clock_mono_ms();
    w->last_seen_ms = clock_unix_ms();
    if (!w->alive) {
        w->alive = 1;
        w->dirty = 1;
        log_info("worker_back", "worker=%s running=%d", w->worker_id, w->outstanding);
        coord_kick(c);
    }
    switch (env->body_case) {
    case REGMIX__ENVELOPE__BODY_PING:
        session__ping(c, w, msg, env->ping);
        break;
    case REGMIX__ENVELOPE__BODY_READY:
        session__ready(c, w, env->ready);
        break;
    case REGMIX__ENVELOPE__BODY_STARTED:
        session__started(c, w, env->started);
        break;
    case REGMIX__ENVELOPE__BODY_PROGRESS:
        session__progress(c, w, env->progress);
        break;
    case REGMIX__ENVELOPE__BODY_RESULT:
        session__result(c, w, msg, env->result);
        break;
    case REGMIX__ENVELOPE__BODY_FAILED:
        session__failed(c, w, msg, env->failed);
        break;
    default:
        break;
    }
}
