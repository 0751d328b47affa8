/*
 * transition: the one place sweep, run, attempt and target states change (transition.h).
 */
#include "transition.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "sampler.h"

/* ---- sweeps ---------------------------------------------------------------------------------- */

void transition_sweep_count(coord_t *c, sweep_t *sw, run_state_t from, run_state_t to, int64_t n)
{
    if (n <= 0 || from == to)
        return;
    assert(states_run_allowed(from, to));
    sw->counts[from] -= n;
    sw->counts[to] += n;
    sw->updated_ms = clock_unix_ms();
    if (to == RUN_STATE_QUEUED) {
        c->queue_maybe_nonempty = 1;
        coord_kick(c);
    }
}

/* Writes the sweep's new state (the same state again only refreshes the row's updated_ms; the
 * in-memory updated_ms is the last run move's). */
static int transition__sweep_set(coord_t *c, sweep_t *sw, sweep_state_t to, int64_t now)
{
    if (to != sw->state && !states_sweep_allowed(sw->state, to)) {
        log_error("transition_refused", "sweep=%s from=%s to=%s", sw->sweep_id,
                  states_sweep_name(sw->state), states_sweep_name(to));
        return -EINVAL;
    }
    if (coord_write(c) < 0)
        return -EIO;
    if (store_sweep_set_state(c->store, sw->id, to, now) < 0) {
        coord_fatal(c, "sweep_set_state");
        return -EIO;
    }
    sw->state = to;
    return 0;
}

int transition_sweep_awaits_round(const sweep_t *sw)
{
    return sw->spec && sw->spec->sampling.strategy == SPEC_STRATEGY_ACTIVE &&
           sw->nruns < sw->spec->sampling.runs && sw->state == SWEEP_STATE_RUNNING &&
           !sw->rounds_closed;
}

int transition_sweep_add_runs(coord_t *c, sweep_t *sw, const double *w, int k, int fit_no)
{
    if (coord_write(c) < 0)
        return -EIO;
    int64_t now = clock_unix_ms();
    int d = sw->ndomains, first = sw->nruns, r = 0;
    uint64_t seed = sw->spec ? sw->spec->sampling.seed : 0;
    for (int i = 0; r == 0 && i < k; i++)
        r = store_run_insert(c->store, sw->id, first + i, sampler_run_seed(seed, first + i),
                             w + (size_t)i * (size_t)d, d, sw->priority, sw->gpus, now);
    if (r == 0)
        r = store_sweep_set_nruns(c->store, sw->id, first + k, now);
    if (r < 0) {
        coord_fatal(c, "round_insert");
        return -EIO;
    }
    int64_t open = sw->counts[RUN_STATE_QUEUED] + sw->counts[RUN_STATE_LEASED] +
                   sw->counts[RUN_STATE_RUNNING] + sw->counts[RUN_STATE_FAILED];
    sw->nruns = first + k;
    sw->updated_ms = now;
    sw->counts[RUN_STATE_QUEUED] += k;
    c->queue_maybe_nonempty = 1;
    log_info("sweep_round", "sweep=%s fit=%d added=%d open=%lld runs=%d", sw->sweep_id, fit_no, k,
             (long long)open, sw->nruns);
    char text[200];
    snprintf(text, sizeof text, "fit %d added runs %d..%d (%d of %d)", fit_no, first, first + k - 1,
             sw->nruns, sw->spec ? sw->spec->sampling.runs : sw->nruns);
    coord_sweep_event(c, sw, "round", text, 0);
    coord_kick(c);
    return 0;
}

int transition_sweep_close_rounds(coord_t *c, sweep_t *sw)
{
    if (coord_write(c) < 0)
        return -EIO;
    int64_t now = clock_unix_ms();
    if (store_sweep_close_rounds(c->store, sw->id, now) < 0) {
        coord_fatal(c, "rounds_close");
        return -EIO;
    }
    sw->rounds_closed = 1;
    sw->updated_ms = now;
    return 0;
}

void transition_sweep_check_end(coord_t *c, sweep_t *sw)
{
    if (!states_sweep_open(sw->state) || transition_sweep_awaits_round(sw))
        return;
    for (int s = 0; s < RUN_STATE__COUNT; s++)
        if (states_run_open((run_state_t)s) && sw->counts[s] > 0)
            return;
    sweep_state_t state = sw->counts[RUN_STATE_DONE] > 0 || sw->nruns == 0 ? SWEEP_STATE_DONE
                                                                           : SWEEP_STATE_FAILED;
    if (sw->state == SWEEP_STATE_CONVERGED)
        state = SWEEP_STATE_CONVERGED;
    if (transition__sweep_set(c, sw, state, clock_unix_ms()) < 0)
        return;
    log_info("sweep_ended", "sweep=%s state=%s done=%lld dead=%lld cancelled=%lld", sw->sweep_id,
             states_sweep_name(state), (long long)sw->counts[RUN_STATE_DONE],
             (long long)sw->counts[RUN_STATE_DEAD], (long long)sw->counts[RUN_STATE_CANCELLED]);
    char text[160];
    snprintf(text, sizeof text, "sweep %s ended: %s", sw->sweep_id, states_sweep_name(state));
    coord_sweep_event(c, sw, "end", text, 1);
    coord_gpu_classes_update(c);
}

int transition_sweep_converged(coord_t *c, sweep_t *sw, int runs)
{
    if (!states_sweep_allowed(sw->state, SWEEP_STATE_CONVERGED)) {
        log_error("transition_refused", "sweep=%s from=%s to=converged", sw->sweep_id,
                  states_sweep_name(sw->state));
        return -EINVAL;
    }
    if (coord_write(c) < 0)
        return -EIO;
    int64_t now = clock_unix_ms();
    if (store_sweep_converged(c->store, sw->id, runs, now) < 0) {
        coord_fatal(c, "sweep_converged");
        return -EIO;
    }
    sw->state = SWEEP_STATE_CONVERGED;
    sw->converged_after_runs = runs;
    sw->updated_ms = now;
    log_info("sweep_converged", "sweep=%s runs=%d fit=%d", sw->sweep_id, runs, sw->nfits);
    char text[200];
    snprintf(text, sizeof text, "sweep %s converged after %d runs (fit %d)", sw->sweep_id, runs,
             sw->nfits);
    coord_sweep_event(c, sw, "converged", text, 0);
    return 0;
}

uint32_t transition_sweep_cancel_runs(coord_t *c, sweep_t *sw, const char *why)
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
    transition_sweep_count(c, sw, RUN_STATE_QUEUED, RUN_STATE_CANCELLED, nq);
    transition_sweep_count(c, sw, RUN_STATE_FAILED, RUN_STATE_CANCELLED, nf);
    uint32_t cancelled = (uint32_t)(nq + nf);
    int n = attempt_table_count(c->attempts);
    attempt_t **live = calloc((size_t)(n ? n : 1), sizeof *live);
    if (live) {
        n = attempt_table_collect(c->attempts, live, n);
        for (int i = 0; i < n && !c->fatal; i++) {
            if (live[i]->sweep == sw) {
                transition_attempt_cancel(c, live[i], why);
                cancelled++;
            }
        }
        free(live);
    }
    return cancelled;
}

int transition_sweep_cancel(coord_t *c, sweep_t *sw, const char *why)
{
    if (!states_sweep_open(sw->state))
        return -EINVAL;
    /* The sweep first, so the counts below do not end it as done. */
    if (transition__sweep_set(c, sw, SWEEP_STATE_CANCELLED, clock_unix_ms()) < 0)
        return c->fatal ? -EIO : -EINVAL;
    uint32_t cancelled = transition_sweep_cancel_runs(c, sw, why);
    if (c->fatal)
        return -EIO;
    log_info("sweep_cancelled", "sweep=%s runs=%u", sw->sweep_id, cancelled);
    char text[160];
    snprintf(text, sizeof text, "sweep %s cancelled (%u runs)", sw->sweep_id, cancelled);
    coord_sweep_event(c, sw, "end", text, 1);
    coord_gpu_classes_update(c);
    return (int)cancelled;
}

/* ---- runs ------------------------------------------------------------------------------------ */

int transition_run_cancel(coord_t *c, sweep_t *sw, int idx, run_state_t *ret_state)
{
    if (idx < 0 || idx >= sw->nruns)
        return -ENOENT;
    if (coord_write(c) < 0)
        return -EIO;
    int64_t run = 0, live = 0;
    run_state_t st = RUN_STATE_UNSPECIFIED;
    if (store_run_lookup(c->store, sw->id, idx, &run, &st, &live) < 0)
        return -ENOENT;
    *ret_state = st;
    if (st == RUN_STATE_QUEUED || st == RUN_STATE_FAILED) {
        int r = store_run_set_state(c->store, run, st, RUN_STATE_CANCELLED, clock_unix_ms());
        if (r < 0) {
            coord_fatal(c, "run_cancel");
            return -EIO;
        }
        if (r == 1) {
            transition_sweep_count(c, sw, st, RUN_STATE_CANCELLED, 1);
            transition_sweep_check_end(c, sw);
        }
        return r;
    }
    if (states_run_live(st)) {
        attempt_t *a = attempt_table_get(c->attempts, live);
        if (!a)
            return 0;
        transition_attempt_cancel(c, a, "cancelled by a client");
        return c->fatal ? -EIO : 1;
    }
    return -EINVAL;
}

static void transition__retry_counted(int64_t sweep, void *data)
{
    coord_t *c = data;
    sweep_t *sw = coord_sweep_by_id(c, sweep);
    if (sw) {
        transition_sweep_count(c, sw, RUN_STATE_FAILED, RUN_STATE_QUEUED, 1);
        transition_sweep_check_end(c, sw);
    }
}

void transition_runs_retry(coord_t *c, int64_t now_ms)
{
    if (c->fatal || coord_write(c) < 0)
        return;
    if (store_runs_retry_due(c->store, now_ms, transition__retry_counted, c) < 0)
        coord_fatal(c, "retry");
    c->next_retry_ms = store_runs_next_retry(c->store);
}

/* ---- attempts -------------------------------------------------------------------------------- */

int transition_attempt_lease(coord_t *c,
                             worker_t *w,
                             sweep_t *sw,
                             const store_queued_t *q,
                             uint64_t gpu_mask,
                             const char *gpu_indices,
                             attempt_t **ret)
{
    int64_t now = clock_unix_ms();
    int64_t aid = c->next_attempt_id;
    int r = store_run_claim(c->store, q->run, aid, now);
    if (r < 0) {
        coord_fatal(c, "run_claim");
        return -EIO;
    }
    if (r == 0)
        return -EAGAIN;
    c->next_attempt_id++;
    int attempt_no = q->attempts + 1;
    if (store_attempt_insert(c->store, aid, q->run, attempt_no, w->worker_id, gpu_indices, now,
                             now + c->cfg.lease_ms) < 0) {
        coord_fatal(c, "attempt_insert");
        return -EIO;
    }
    attempt_t *a = calloc(1, sizeof *a);
    if (!a) {
        /* The rows are in the transaction: without the attempt in memory they must not commit. */
        coord_fatal(c, "out of memory");
        return -EIO;
    }
    a->id = aid;
    a->run = q->run;
    a->sweep = sw;
    a->worker = w;
    snprintf(a->worker_id, sizeof a->worker_id, "%s", w->worker_id);
    a->run_idx = q->idx;
    a->attempt_no = attempt_no;
    a->gpu_mask = gpu_mask;
    a->leased_mono = clock_mono_ms();
    if (attempt_table_put(c->attempts, a) < 0) {
        free(a);
        coord_fatal(c, "out of memory");
        return -EIO;
    }
    attempt_list_push(&w->attempts, a);
    w->outstanding++;
    w->gpu_used |= gpu_mask;
    c->n_assigned++;
    transition_sweep_count(c, sw, RUN_STATE_QUEUED, RUN_STATE_LEASED, 1);
    transition_sweep_check_end(c, sw);
    *ret = a;
    return 0;
}

void transition_attempt_started(coord_t *c, attempt_t *a)
{
    if (a->running || coord_write(c) < 0)
        return;
    int64_t now = clock_unix_ms();
    if (store_attempt_started(c->store, a->id, now) < 0) {
        coord_fatal(c, "attempt_started");
        return;
    }
    int r = store_run_started(c->store, a->run, a->id, now);
    if (r < 0) {
        coord_fatal(c, "run_started");
        return;
    }
    a->running = 1;
    if (r == 1) {
        transition_sweep_count(c, a->sweep, RUN_STATE_LEASED, RUN_STATE_RUNNING, 1);
        transition_sweep_check_end(c, a->sweep);
    }
}

int transition_attempt_end(coord_t *c, attempt_t *a, const transition_end_t *e)
{
    attempt_state_t afrom = a->running ? ATTEMPT_STATE_RUNNING : ATTEMPT_STATE_LEASED;
    run_state_t from = a->running ? RUN_STATE_RUNNING : RUN_STATE_LEASED;
    assert(states_attempt_allowed(afrom, e->attempt));
    assert(states_run_allowed(from, e->run));
    (void)afrom;
    if (coord_write(c) < 0)
        return -EIO;
    int64_t now = clock_unix_ms();
    sweep_t *sw = a->sweep;
    /* The run first: it moves only when `a` is its live attempt (fencing in the store). */
    int r = store_run_finish(c->store, a->run, a->id, e->run,
                             e->run == RUN_STATE_FAILED ? e->next_try_ms : 0, now);
    int stored = r;
    if (r == 1 && e->attempt == ATTEMPT_STATE_DONE)
        stored = r =
                store_result_insert(c->store, a->run, a->id, sw->id, a->worker_id,
                                    e->losses_json ? e->losses_json : "{}",
                                    e->bpb_json ? e->bpb_json : "{}", e->tokens, e->seconds, now);
    /* A result the store fenced leaves its attempt row as it was; every other end is recorded. */
    if (r >= 0 && (e->attempt != ATTEMPT_STATE_DONE || stored == 1)) {
        if (e->attempt == ATTEMPT_STATE_FAILED)
            r = store_attempt_failed(c->store, a->id, ATTEMPT_STATE_FAILED, e->exit_code,
                                     e->term_signal, e->reason, now) < 0
                        ? -EIO
                        : stored;
        else
            r = store_attempt_set_state(c->store, a->id, e->attempt, now) < 0 ? -EIO : stored;
    }
    if (r < 0) {
        coord_fatal(c, "attempt_end");
        return -EIO;
    }
    if (e->run == RUN_STATE_FAILED && r == 1 && e->next_try_ms < c->next_retry_ms)
        c->next_retry_ms = e->next_try_ms;
    coord_attempt_drop(c, a);
    if (r == 1) {
        transition_sweep_count(c, sw, from, e->run, 1);
        if (e->event_kind)
            coord_sweep_event(c, sw, e->event_kind, e->event_text ? e->event_text : "", 0);
        transition_sweep_check_end(c, sw);
    }
    return r;
}

int transition_attempt_done(coord_t *c,
                            attempt_t *a,
                            const char *losses_json,
                            const char *bpb_json,
                            uint64_t tokens,
                            double seconds)
{
    char text[200] = "";
    if (a->sweep->nwatchers)
        snprintf(text, sizeof text, "run %d done (attempt %d on %s)", a->run_idx, a->attempt_no,
                 a->worker_id);
    transition_end_t e = {
            .attempt = ATTEMPT_STATE_DONE,
            .run = RUN_STATE_DONE,
            .losses_json = losses_json,
            .bpb_json = bpb_json,
            .tokens = tokens,
            .seconds = seconds,
            .event_kind = a->sweep->nwatchers ? "result" : NULL,
            .event_text = text,
    };
    int r = transition_attempt_end(c, a, &e);
    if (r == 1)
        c->n_results++;
    return r;
}

int transition_attempt_failed(
        coord_t *c, attempt_t *a, int exit_code, int term_signal, const char *reason)
{
    sweep_t *sw = a->sweep;
    int64_t now = clock_unix_ms();
    transition_end_t e = {
            .attempt = ATTEMPT_STATE_FAILED,
            .exit_code = exit_code,
            .term_signal = term_signal,
            .reason = reason,
            .event_kind = "failed",
    };
    if (a->attempt_no >= sw->max_attempts) {
        e.run = RUN_STATE_DEAD;
    } else if (sw->backoff_ms <= 0) {
        e.run = RUN_STATE_QUEUED;
    } else {
        int shift = a->attempt_no - 1 < 20 ? a->attempt_no - 1 : 20;
        e.next_try_ms = now + ((int64_t)sw->backoff_ms << shift);
        e.run = RUN_STATE_FAILED;
    }
    char rq[256], text[200];
    log_info("attempt_failed",
             "attempt=%lld run=%lld sweep=%s idx=%d worker=%s attempt_no=%d exit=%d signal=%d "
             "run_state=%s reason=%s",
             (long long)a->id, (long long)a->run, sw->sweep_id, a->run_idx, a->worker_id,
             a->attempt_no, exit_code, term_signal, states_run_name(e.run),
             log_quote(reason ? reason : "", rq, sizeof rq));
    snprintf(text, sizeof text, "run %d attempt %d failed on %s: %s", a->run_idx, a->attempt_no,
             a->worker_id, states_run_name(e.run));
    e.event_text = text;
    return transition_attempt_end(c, a, &e);
}

void transition_attempt_lost(coord_t *c, attempt_t *a, const char *why)
{
    transition_end_t e = {
            .attempt = ATTEMPT_STATE_LOST,
            .run = a->attempt_no >= a->sweep->max_attempts ? RUN_STATE_DEAD : RUN_STATE_QUEUED,
            .reason = why,
    };
    log_info("attempt_lost", "attempt=%lld run=%lld sweep=%s worker=%s why=\"%s\" run_state=%s",
             (long long)a->id, (long long)a->run, a->sweep->sweep_id, a->worker_id, why,
             states_run_name(e.run));
    transition_attempt_end(c, a, &e);
}

void transition_attempt_cancel(coord_t *c, attempt_t *a, const char *why)
{
    worker_t *w = a->worker;
    if (w && w->connected && !c->fatal) {
        Regmix__Envelope env;
        Regmix__Cancel cm = REGMIX__CANCEL__INIT;
        frame_envelope_init(&env, 0);
        cm.attempt_id = (uint64_t)a->id;
        cm.reason = (char *)why;
        env.body_case = REGMIX__ENVELOPE__BODY_CANCEL;
        env.cancel = &cm;
        coord_send(c, COORD_WORKERS, w->rid, w->rlen, &env, 0);
    }
    transition_end_t e = {
            .attempt = ATTEMPT_STATE_CANCELLED,
            .run = RUN_STATE_CANCELLED,
            .reason = why,
    };
    transition_attempt_end(c, a, &e);
}

/* ---- targets --------------------------------------------------------------------------------- */

void transition_target_save(coord_t *c, target_t *t)
{
    if (coord_write(c) < 0)
        return;
    t->updated_ms = clock_unix_ms();
    store_target_row_t row = {
            .sweep = t->sweep,
            .role = t->role,
            .state = t->state,
            .launcher = t->launcher,
            .ranks = t->ranks,
            .pid = t->pid,
            .log_path = t->log_path,
            .weights_json = t->weights_json,
            .losses_json = t->losses_json,
            .objective = t->objective,
            .step = t->step,
            .loss = t->loss,
            .detail = t->detail,
            .created_ms = t->created_ms,
            .updated_ms = t->updated_ms,
            .handle = t->handle,
    };
    if (store_target_upsert(c->store, &row) < 0)
        coord_fatal(c, "target_upsert");
    coord_kick(c);
}

int transition_target(coord_t *c, target_t *t, target_state_t to, const char *detail)
{
    if (!states_target_allowed(t->state, to)) {
        log_error("transition_refused", "sweep=%lld role=%s from=%s to=%s", (long long)t->sweep,
                  t->role, states_target_name(t->state), states_target_name(to));
        return -EINVAL;
    }
    if (detail) {
        char *d = strdup(detail);
        if (d) {
            free(t->detail);
            t->detail = d;
        }
    }
    t->state = to;
    transition_target_save(c, t);
    return c->fatal ? -EIO : 0;
}
