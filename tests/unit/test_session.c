/*
 * test_session: the worker endpoint (coordinator/session.c) and the state changes it causes
 * (transition.c), on a real store without a daemon (coord_harness.h): HELLO before anything,
 * STARTED, RESULT accepted exactly once (fencing), FAILED with retries until dead, quarantine,
 * a HELLO that no longer holds an attempt, the sweep's end with the watch events, and a client's
 * cancel of a run and of the sweep.
 */
#include "coord_harness.h"

#define SPEC(NAME, RUNS, ATTEMPTS)                                                                 \
    "name: " NAME "\n"                                                                             \
    "domains:\n"                                                                                   \
    "  - {name: web, tokens: 5.0e9}\n"                                                             \
    "  - {name: code, tokens: 2.0e9}\n"                                                            \
    "sampling: {runs: " #RUNS ", seed: 1}\n"                                                       \
    "proxy:\n"                                                                                     \
    "  trainer: synthetic\n"                                                                       \
    "  max_attempts: " #ATTEMPTS "\n"                                                              \
    "  backoff_ms: 0\n"                                                                            \
    "  synthetic: {optimum: {web: 0.5, code: 0.5}, delay_ms: 0}\n"                                 \
    "regression: {target: mean, model: linear, refit_every: 1000000}\n"

static const char *const names[2] = {"web", "code"};
static const double losses[2] = {2.5, 3.0};

static void test_before_hello(void)
{
    harness_t h;
    if (h_open(&h, NULL) < 0) {
        CHECK(0);
        return;
    }
    h_ready(&h, 'x', 1);
    h_flush(&h);
    const Regmix__Envelope *e = h_get(&h, REGMIX__ENVELOPE__BODY_ERROR, 0);
    CHECK(e != NULL);
    if (e) {
        CHECK_INT_EQ(e->error->code, REGMIX__ERROR_CODE__ERROR_CODE_UNKNOWN_WORKER);
        CHECK_INT_EQ(e->reply_to, h.next_id);
    }
    CHECK_INT_EQ(h.c->nworkers, 0);
    /* A bad HELLO: no worker, BAD_REQUEST. */
    h_hello(&h, 'x', "has space", 1, 0);
    h_flush(&h);
    e = h_get(&h, REGMIX__ENVELOPE__BODY_ERROR, 0);
    CHECK(e && e->error->code == REGMIX__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    CHECK_INT_EQ(h.c->nworkers, 0);
    h_close(&h);
}

/* Leases every run of a 2-run sweep to worker 'a' and returns the attempt ids. */
static sweep_t *lease_two(harness_t *h, const char *spec, uint64_t ids[2])
{
    sweep_t *sw = h_submit(h, spec, 0);
    if (!sw)
        return NULL;
    h_hello(h, 'a', "w1", 2, 0);
    h_ready(h, 'a', 2);
    h_flush(h);
    CHECK_INT_EQ(h_count(h, REGMIX__ENVELOPE__BODY_ASSIGN, 'a'), 2);
    for (int i = 0; i < 2; i++) {
        const Regmix__Envelope *e = h_get(h, REGMIX__ENVELOPE__BODY_ASSIGN, i);
        ids[i] = e ? e->assign->attempt_id : 0;
    }
    return sw;
}

static void watch(harness_t *h, const sweep_t *sw)
{
    Regmix__Envelope env;
    Regmix__WatchRequest req = REGMIX__WATCH_REQUEST__INIT;
    frame_envelope_init(&env, 0);
    req.sweep_id = (char *)sw->sweep_id;
    env.body_case = REGMIX__ENVELOPE__BODY_WATCH;
    env.watch = &req;
    h_deliver(h, COORD_CLIENTS, 'W', &env);
}

static const char *event_kind(const harness_t *h, int k)
{
    const Regmix__Envelope *e = h_get(h, REGMIX__ENVELOPE__BODY_WATCH_EVENT, k);
    return e ? e->watch_event->kind : "";
}

static void test_result_once(void)
{
    harness_t h;
    uint64_t id[2];
    if (h_open(&h, NULL) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *sw = lease_two(&h, SPEC("results", 2, 1), id);
    if (!sw)
        goto out;
    watch(&h, sw);
    h_flush(&h);
    CHECK_STR_EQ(event_kind(&h, 0), "status");

    Regmix__Envelope env;
    Regmix__Started st = REGMIX__STARTED__INIT;
    frame_envelope_init(&env, 0);
    st.attempt_id = id[0];
    env.body_case = REGMIX__ENVELOPE__BODY_STARTED;
    env.started = &st;
    h_deliver(&h, COORD_WORKERS, 'a', &env);
    h_flush(&h);
    CHECK_INT_EQ(h_run_state(&h, sw, 0), RUN_STATE_RUNNING);
    CHECK_INT_EQ(sw->counts[RUN_STATE_RUNNING], 1);
    CHECK_INT_EQ(sw->counts[RUN_STATE_LEASED], 1);

    h_result(&h, 'a', id[0], names, losses, 2);
    h_flush(&h);
    const Regmix__Envelope *ack = h_get(&h, REGMIX__ENVELOPE__BODY_RESULT_ACK, 0);
    CHECK(ack && ack->result_ack->accepted && ack->result_ack->attempt_id == id[0]);
    CHECK_STR_EQ(event_kind(&h, 0), "result");
    CHECK_INT_EQ(h_run_state(&h, sw, 0), RUN_STATE_DONE);
    CHECK_INT_EQ(store_results_count(h.c->store, sw->id), 1);
    CHECK_INT_EQ(sw->counts[RUN_STATE_DONE], 1);
    CHECK_INT_EQ(sw->state, SWEEP_STATE_RUNNING);

    /* The same RESULT again (a resend): not live any more, accepted=false, stored once. */
    h_result(&h, 'a', id[0], names, losses, 2);
    h_flush(&h);
    ack = h_get(&h, REGMIX__ENVELOPE__BODY_RESULT_ACK, 0);
    CHECK(ack && !ack->result_ack->accepted);
    CHECK_INT_EQ(store_results_count(h.c->store, sw->id), 1);
    CHECK_INT_EQ(h.c->n_fenced, 1);
    CHECK_INT_EQ(h.c->n_results, 1);

    /* A result without losses is the attempt's failure; with max_attempts 1 the run is dead. */
    h_result(&h, 'a', id[1], names, losses, 0);
    h_flush(&h);
    ack = h_get(&h, REGMIX__ENVELOPE__BODY_RESULT_ACK, 0);
    CHECK(ack && !ack->result_ack->accepted);
    CHECK_INT_EQ(h_run_state(&h, sw, 1), RUN_STATE_DEAD);
    /* The sweep ended: failed, result, end events in that order; done (one run is done). */
    CHECK_INT_EQ(sw->state, SWEEP_STATE_DONE);
    CHECK_STR_EQ(event_kind(&h, 0), "failed");
    CHECK_STR_EQ(event_kind(&h, 1), "end");
    const Regmix__Envelope *end = h_get(&h, REGMIX__ENVELOPE__BODY_WATCH_EVENT, 1);
    CHECK(end && end->watch_event->final);
    CHECK_INT_EQ(sw->nwatchers, 0);
    CHECK_INT_EQ(attempt_table_count(h.c->attempts), 0);
    CHECK_INT_EQ(coord_worker_by_id(h.c, "w1")->outstanding, 0);
out:
    h_close(&h);
}

static void quarantine_after_2(coord_config_t *cfg)
{
    cfg->quarantine_after = 2;
}

static void test_failed_retries(void)
{
    harness_t h;
    uint64_t id[2];
    if (h_open(&h, quarantine_after_2) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *sw = lease_two(&h, SPEC("retries", 2, 2), id);
    if (!sw)
        goto out;
    /* First failure: attempts left and no backoff: queued again at once. */
    h_failed(&h, 'a', id[0], 3);
    h_flush(&h);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_FAILED_ACK, 'a'), 1);
    CHECK_INT_EQ(h_run_state(&h, sw, 0), RUN_STATE_QUEUED);
    CHECK_INT_EQ(sw->counts[RUN_STATE_QUEUED], 1);
    worker_t *w = coord_worker_by_id(h.c, "w1");
    CHECK_INT_EQ(w->consecutive_failures, 1);
    CHECK(!w->quarantined);
    /* It is leased again, as attempt 2. */
    h_ready(&h, 'a', 1);
    h_flush(&h);
    const Regmix__Envelope *as = h_get(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 0);
    CHECK(as != NULL);
    if (!as)
        goto out;
    CHECK_INT_EQ(as->assign->attempt_no, 2);
    uint64_t second = as->assign->attempt_id;
    /* Second failure: attempts spent, dead; the worker's second failure in a row quarantines. */
    h_failed(&h, 'a', second, 3);
    h_flush(&h);
    CHECK_INT_EQ(h_run_state(&h, sw, 0), RUN_STATE_DEAD);
    CHECK_INT_EQ(sw->counts[RUN_STATE_DEAD], 1);
    CHECK(w->quarantined);
    CHECK_INT_EQ(coord_worker_state(w), WORKER_STATE_QUARANTINED);
    /* A FAILED for an attempt that is not live is acknowledged and changes nothing. */
    h_failed(&h, 'a', second, 3);
    h_flush(&h);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_FAILED_ACK, 'a'), 1);
    CHECK_INT_EQ(sw->counts[RUN_STATE_DEAD], 1);
    CHECK_INT_EQ(w->failed, 2);
out:
    h_close(&h);
}

static void test_hello_loses_attempts(void)
{
    harness_t h;
    uint64_t id[2];
    if (h_open(&h, NULL) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *sw = lease_two(&h, SPEC("rehello", 2, 3), id);
    if (!sw)
        goto out;
    /* The worker restarted and holds nothing: both attempts lost, both runs queued again. */
    h_hello(&h, 'b', "w1", 2, 0);
    h_flush(&h);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_WELCOME, 'b'), 1);
    CHECK_INT_EQ(h_runs_in(&h, sw, RUN_STATE_QUEUED), 2);
    CHECK_INT_EQ(sw->counts[RUN_STATE_QUEUED], 2);
    CHECK_INT_EQ(sw->counts[RUN_STATE_LEASED], 0);
    CHECK_INT_EQ(attempt_table_count(h.c->attempts), 0);
    /* Its RESULT for a lost attempt is fenced. */
    h_result(&h, 'b', id[0], names, losses, 2);
    h_flush(&h);
    const Regmix__Envelope *ack = h_get(&h, REGMIX__ENVELOPE__BODY_RESULT_ACK, 0);
    CHECK(ack && !ack->result_ack->accepted);
    CHECK_INT_EQ(store_results_count(h.c->store, sw->id), 0);
out:
    h_close(&h);
}

static void cancel(harness_t *h, const sweep_t *sw, int run)
{
    Regmix__Envelope env;
    Regmix__CancelRequest req = REGMIX__CANCEL_REQUEST__INIT;
    frame_envelope_init(&env, 0);
    req.sweep_id = (char *)sw->sweep_id;
    req.has_run = run >= 0;
    req.run_index = run >= 0 ? (uint64_t)run : 0;
    env.body_case = REGMIX__ENVELOPE__BODY_CANCEL_SWEEP;
    env.cancel_sweep = &req;
    h_deliver(h, COORD_CLIENTS, 'C', &env);
}

static void test_cancel(void)
{
    harness_t h;
    uint64_t id[2];
    if (h_open(&h, NULL) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *sw = h_submit(&h, SPEC("cancel", 5, 1), 0);
    if (!sw)
        goto out;
    h_hello(&h, 'a', "w1", 2, 0);
    h_ready(&h, 'a', 2);
    h_flush(&h);
    for (int i = 0; i < 2; i++) {
        const Regmix__Envelope *e = h_get(&h, REGMIX__ENVELOPE__BODY_ASSIGN, i);
        id[i] = e ? e->assign->attempt_id : 0;
    }
    /* One queued run. */
    cancel(&h, sw, 4);
    h_flush(&h);
    const Regmix__Envelope *rep = h_get(&h, REGMIX__ENVELOPE__BODY_CANCEL_REPLY, 0);
    CHECK(rep && rep->cancel_reply->cancelled == 1);
    CHECK_INT_EQ(h_run_state(&h, sw, 4), RUN_STATE_CANCELLED);
    /* The same run again: CONFLICT; a run that does not exist: NOT_FOUND. */
    cancel(&h, sw, 4);
    cancel(&h, sw, 9);
    h_flush(&h);
    const Regmix__Envelope *e0 = h_get(&h, REGMIX__ENVELOPE__BODY_ERROR, 0);
    const Regmix__Envelope *e1 = h_get(&h, REGMIX__ENVELOPE__BODY_ERROR, 1);
    CHECK(e0 && e0->error->code == REGMIX__ERROR_CODE__ERROR_CODE_CONFLICT);
    CHECK(e1 && e1->error->code == REGMIX__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    /* The whole sweep: 2 queued + 2 live (CANCEL to the worker), the sweep cancelled. */
    cancel(&h, sw, -1);
    h_flush(&h);
    rep = h_get(&h, REGMIX__ENVELOPE__BODY_CANCEL_REPLY, 0);
    CHECK(rep && rep->cancel_reply->cancelled == 4);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_CANCEL, 'a'), 2);
    CHECK_INT_EQ(sw->state, SWEEP_STATE_CANCELLED);
    CHECK_INT_EQ(h_runs_in(&h, sw, RUN_STATE_CANCELLED), 5);
    CHECK_INT_EQ(sw->counts[RUN_STATE_CANCELLED], 5);
    CHECK_INT_EQ(attempt_table_count(h.c->attempts), 0);
    /* An ended sweep cannot be cancelled; a result for a cancelled attempt is fenced. */
    cancel(&h, sw, -1);
    h_result(&h, 'a', id[0], names, losses, 2);
    h_flush(&h);
    e0 = h_get(&h, REGMIX__ENVELOPE__BODY_ERROR, 0);
    CHECK(e0 && e0->error->code == REGMIX__ERROR_CODE__ERROR_CODE_CONFLICT);
    const Regmix__Envelope *ack = h_get(&h, REGMIX__ENVELOPE__BODY_RESULT_ACK, 0);
    CHECK(ack && !ack->result_ack->accepted);
out:
    h_close(&h);
}

int main(void)
{
    TEST_RUN(test_before_hello);
    TEST_RUN(test_result_once);
    TEST_RUN(test_failed_retries);
    TEST_RUN(test_hello_loses_attempts);
    TEST_RUN(test_cancel);
    return test_finish();
}
