/*
 * test_scheduler: coordinator/scheduler.c on a real store without a daemon (coord_harness.h):
 * credit (READY free slots, slots − live attempts), priority before FIFO, GPU classes and the
 * GPU indices sent, and that every ASSIGN's run and attempt are committed as leased.
 */
#include "coord_harness.h"

#define SPEC(NAME, RUNS, GPUS)                                                                     \
    "name: " NAME "\n"                                                                             \
    "domains:\n"                                                                                   \
    "  - {name: web, tokens: 5.0e9}\n"                                                             \
    "  - {name: code, tokens: 2.0e9}\n"                                                            \
    "sampling: {runs: " #RUNS ", seed: 1}\n"                                                       \
    "proxy:\n"                                                                                     \
    "  trainer: synthetic\n"                                                                       \
    "  gpus: " #GPUS "\n"                                                                          \
    "  synthetic: {optimum: {web: 0.5, code: 0.5}, delay_ms: 0}\n"                                 \
    "regression: {target: mean, model: linear, refit_every: 1000000}\n"

static void test_credit(void)
{
    harness_t h;
    if (h_open(&h, NULL) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *sw = h_submit(&h, SPEC("credit", 6, 0), 0);
    if (!sw)
        goto out;
    CHECK_INT_EQ(sw->counts[RUN_STATE_QUEUED], 6);
    h_hello(&h, 'a', "w1", 4, 0);
    h_flush(&h);
    /* HELLO gives no credit: WELCOME only. */
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_WELCOME, 'a'), 1);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 0), 0);
    h_ready(&h, 'a', 3);
    h_flush(&h);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 'a'), 3);
    CHECK_INT_EQ(sw->counts[RUN_STATE_LEASED], 3);
    CHECK_INT_EQ(sw->counts[RUN_STATE_QUEUED], 3);
    /* persist before send: the flush committed the claims the ASSIGNs carry */
    CHECK_INT_EQ(h_runs_in(&h, sw, RUN_STATE_LEASED), 3);
    CHECK_INT_EQ(attempt_table_count(h.c->attempts), 3);
    const Regmix__Envelope *a0 = h_get(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 0);
    const Regmix__Envelope *a2 = h_get(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 2);
    if (a0 && a2) {
        CHECK(a0->assign->attempt_id != a2->assign->attempt_id);
        CHECK_INT_EQ(a0->assign->attempt_no, 1);
        CHECK_INT_EQ(a0->assign->n_weights, 2);
        CHECK_STR_EQ(a0->assign->sweep_id, sw->sweep_id);
        CHECK_INT_EQ(a0->assign->kind, REGMIX__JOB_KIND__JOB_KIND_SYNTHETIC);
        /* FIFO within a priority: run indices in submit order */
        CHECK(a0->assign->run_id < a2->assign->run_id);
    }
    /* No new READY: the credit is spent. */
    coord_kick(h.c);
    h_flush(&h);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 0), 0);
    /* READY 4 but slots − live = 1: one more. */
    h_ready(&h, 'a', 4);
    h_flush(&h);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 'a'), 1);
    CHECK_INT_EQ(sw->counts[RUN_STATE_LEASED], 4);
    CHECK_INT_EQ(scheduler_credit(coord_worker_by_id(h.c, "w1")), 0);
    /* A draining worker gets nothing. */
    coord_worker_by_id(h.c, "w1")->draining = 1;
    h_ready(&h, 'a', 4);
    h_flush(&h);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 0), 0);
out:
    h_close(&h);
}

static void test_priority(void)
{
    harness_t h;
    if (h_open(&h, NULL) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *low = h_submit(&h, SPEC("low", 3, 0), 1);
    sweep_t *high = h_submit(&h, SPEC("high", 3, 0), 5);
    if (!low || !high)
        goto out;
    h_hello(&h, 'a', "w1", 8, 0);
    h_ready(&h, 'a', 4);
    h_flush(&h);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 'a'), 4);
    /* every run of the later, higher-priority sweep first, then the oldest of the other */
    CHECK_INT_EQ(high->counts[RUN_STATE_LEASED], 3);
    CHECK_INT_EQ(low->counts[RUN_STATE_LEASED], 1);
    CHECK_INT_EQ(h_run_state(&h, low, 0), RUN_STATE_LEASED);
    CHECK_INT_EQ(h_run_state(&h, low, 1), RUN_STATE_QUEUED);
    for (int i = 0; i < 3; i++) {
        const Regmix__Envelope *e = h_get(&h, REGMIX__ENVELOPE__BODY_ASSIGN, i);
        CHECK(e && strcmp(e->assign->sweep_id, high->sweep_id) == 0);
    }
out:
    h_close(&h);
}

static void test_gpus(void)
{
    harness_t h;
    if (h_open(&h, NULL) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *sw = h_submit(&h, SPEC("gpu", 4, 1), 0);
    if (!sw)
        goto out;
    /* A worker without GPUs gets no run that needs one. */
    h_hello(&h, 'a', "cpu", 4, 0);
    h_ready(&h, 'a', 4);
    h_flush(&h);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 0), 0);
    /* Two GPUs: two runs, one GPU each, distinct device numbers. */
    h_hello(&h, 'b', "gpu", 4, 2);
    h_ready(&h, 'b', 4);
    h_flush(&h);
    CHECK_INT_EQ(h_count(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 'b'), 2);
    const Regmix__Envelope *a = h_get(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 0);
    const Regmix__Envelope *b = h_get(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 1);
    if (a && b) {
        CHECK_INT_EQ(a->assign->n_gpu_indices, 1);
        CHECK_INT_EQ(b->assign->n_gpu_indices, 1);
        CHECK_INT_EQ(a->assign->gpu_indices[0], 10);
        CHECK_INT_EQ(b->assign->gpu_indices[0], 11);
    }
    CHECK_INT_EQ(sw->counts[RUN_STATE_LEASED], 2);
    CHECK_INT_EQ(sw->counts[RUN_STATE_QUEUED], 2);
out:
    h_close(&h);
}

int main(void)
{
    TEST_RUN(test_credit);
    TEST_RUN(test_priority);
    TEST_RUN(test_gpus);
    return test_finish();
}
