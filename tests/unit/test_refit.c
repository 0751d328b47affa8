/*
 * test_refit: coordinator/refit.c on a real store without a daemon (coord_harness.h): results
 * reported through the worker endpoint start a refit every regression.refit_every results (the
 * fitter runs in libuv's thread pool of the harness's loop); each fit is stored with the next fit
 * number and announced (`fit`); the second fit, within l1_tol of the first, converges the sweep
 * (`converged`; on_converge: cancel cancels what is left), and refit_load() reads the history
 * back into a fresh coordinator.
 *
 * The losses are noise-free and linear in the mixture (web's loss falls with the web weight), so
 * the fitted objective ranks the runs perfectly and the proposal is the same at both fits.
 */
#include "coord_harness.h"
#include "refit.h"

#define SPEC                                                                                       \
    "name: refit\n"                                                                                \
    "domains:\n"                                                                                   \
    "  - {name: web, tokens: 5.0e9}\n"                                                             \
    "  - {name: code, tokens: 2.0e9}\n"                                                            \
    "  - {name: books, tokens: 1.0e9}\n"                                                           \
    "sampling: {runs: 20, seed: 7}\n"                                                              \
    "proxy:\n"                                                                                     \
    "  trainer: synthetic\n"                                                                       \
    "  synthetic: {optimum: {web: 0.5, code: 0.3, books: 0.2}, delay_ms: 0}\n"                     \
    "regression:\n"                                                                                \
    "  target: web\n"                                                                              \
    "  model: linear\n"                                                                            \
    "  simulate: 2000\n"                                                                           \
    "  top_k: 10\n"                                                                                \
    "  refit_every: 8\n"                                                                           \
    "  cv_folds: 4\n"                                                                              \
    "  seed: 3\n"                                                                                  \
    "  convergence: {min_runs: 8, min_spearman: 0.5, stable_refits: 1, l1_tol: 0.5}\n"             \
    "  on_converge: cancel\n"

static sweep_t *g_sw;

static int fit_idle(harness_t *h)
{
    (void)h;
    return g_sw->fit_job == NULL && g_sw->fit_reader == NULL;
}

/* A refit is under way: its snapshot being read (a range of runs per loop iteration) or the fit
 * running. */
static int fit_busy(const sweep_t *sw)
{
    return sw->fit_job != NULL || sw->fit_reader != NULL;
}

/* Leases up to n runs to worker 'a' and reports each with noise-free linear losses. */
static int report(harness_t *h, sweep_t *sw, int n)
{
    h_ready(h, 'a', (uint32_t)n);
    h_flush(h);
    int sent = h_count(h, REGMIX__ENVELOPE__BODY_ASSIGN, 'a');
    uint64_t ids[64];
    double w[64][3];
    for (int i = 0; i < sent && i < 64; i++) {
        const Regmix__Assign *as = h_get(h, REGMIX__ENVELOPE__BODY_ASSIGN, i)->assign;
        ids[i] = as->attempt_id;
        for (int k = 0; k < 3; k++)
            w[i][k] = as->weights[k]->weight;
    }
    static const char *const names[3] = {"web", "code", "books"};
    for (int i = 0; i < sent && i < 64; i++) {
        double l[3] = {3.0 - w[i][0], 3.0 - 0.5 * w[i][1], 3.0 - 0.2 * w[i][2]};
        h_result(h, 'a', ids[i], names, l, 3);
    }
    (void)sw;
    return sent;
}

static int fits_in_store(harness_t *h, const sweep_t *sw);

static int count_fit(const store_fit_row_t *row, void *data)
{
    (void)row;
    (*(int *)data)++;
    return 0;
}

static int fits_in_store(harness_t *h, const sweep_t *sw)
{
    int n = 0;
    CHECK(store_fits_foreach(h->c->store, sw->id, count_fit, &n) == 0);
    return n;
}

static void test_refit_converges(void)
{
    harness_t h;
    if (h_open(&h, NULL) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *sw = g_sw = h_submit(&h, SPEC, 0);
    if (!sw)
        goto out;
    CHECK(sw->spec != NULL);
    h_hello(&h, 'a', "w1", 16, 0);
    /* 7 results: not due yet. */
    CHECK_INT_EQ(report(&h, sw, 7), 7);
    CHECK(!fit_busy(sw));
    CHECK_INT_EQ(sw->nfits, 0);
    /* The 8th starts the first refit. */
    CHECK_INT_EQ(report(&h, sw, 1), 1);
    CHECK(fit_busy(sw));
    CHECK(h_run_until(&h, fit_idle, 30000));
    h_flush(&h);
    CHECK_INT_EQ(sw->nfits, 1);
    CHECK_INT_EQ(fits_in_store(&h, sw), 1);
    CHECK_INT_EQ(sw->results_at_last_fit, 8);
    /* One fit, no history to be stable against: still running. */
    CHECK_INT_EQ(sw->state, SWEEP_STATE_RUNNING);

    /* Eight more: the second fit proposes the same mixture: converged; the rest is cancelled. */
    CHECK_INT_EQ(report(&h, sw, 8), 8);
    CHECK(fit_busy(sw));
    CHECK(h_run_until(&h, fit_idle, 30000));
    h_flush(&h);
    CHECK_INT_EQ(sw->nfits, 2);
    CHECK_INT_EQ(fits_in_store(&h, sw), 2);
    CHECK_INT_EQ(sw->state, SWEEP_STATE_CONVERGED);
    CHECK_INT_EQ(sw->converged_after_runs, 16);
    CHECK_INT_EQ(sw->counts[RUN_STATE_DONE], 16);
    CHECK_INT_EQ(sw->counts[RUN_STATE_CANCELLED], 4);
    CHECK_INT_EQ(h_runs_in(&h, sw, RUN_STATE_CANCELLED), 4);
    if (sw->nfits != 2)
        goto out;
    /* the proposal leans to web (its loss falls fastest with its weight) */
    CHECK(sw->history[3 + 0] > sw->history[3 + 1]);
    double l1 = 0;
    for (int k = 0; k < 3; k++)
        l1 += fabs(sw->history[k] - sw->history[3 + k]);
    CHECK(l1 < 0.5);

    /* refit_load(): a fresh coordinator on the same store reads the same history. */
    sweep_t copy = {.id = sw->id, .ndomains = 3, .domains = sw->domains};
    CHECK(refit_load(h.c, &copy) == 0);
    CHECK_INT_EQ(copy.nfits, 2);
    CHECK(copy.history && fabs(copy.history[3] - sw->history[3]) < 1e-9);
    free(copy.history);
out:
    h_close(&h);
}

#define ACTIVE_SPEC                                                                                \
    "name: rounds\n"                                                                               \
    "domains:\n"                                                                                   \
    "  - {name: web, tokens: 5.0e9}\n"                                                             \
    "  - {name: code, tokens: 2.0e9}\n"                                                            \
    "  - {name: books, tokens: 1.0e9}\n"                                                           \
    "sampling: {runs: 24, seed: 7, strategy: active, initial: 8, batch: 8}\n"                      \
    "proxy:\n"                                                                                     \
    "  trainer: synthetic\n"                                                                       \
    "  synthetic: {optimum: {web: 0.5, code: 0.3, books: 0.2}, delay_ms: 0}\n"                     \
    "regression:\n"                                                                                \
    "  target: web\n"                                                                              \
    "  model: linear\n"                                                                            \
    "  simulate: 2000\n"                                                                           \
    "  top_k: 10\n"                                                                                \
    "  refit_every: 100\n"                                                                         \
    "  cv_folds: 2\n"                                                                              \
    "  seed: 3\n"                                                                                  \
    "  convergence: {min_runs: 1000}\n"

/* The sweep's runs in the store (indices 0..n-1). */
static int stored_runs(harness_t *h, const sweep_t *sw)
{
    int64_t run = 0, live = 0;
    run_state_t st;
    int n = 0;
    while (store_run_lookup(h->c->store, sw->id, n, &run, &st, &live) == 0)
        n++;
    return n;
}

/* Rounds that overlap running runs: an active sweep asks for its next round when its open runs
 * fall to half a batch (4 of 8), not when they reach 0; the round (conditioned on the 4 still
 * running as pending points: test_search's test_active_pending) is stored with the fit while
 * they run, and no further round comes until the open runs fall to half a batch again. */
static void test_round_overlaps(void)
{
    harness_t h;
    if (h_open(&h, NULL) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *sw = g_sw = h_submit(&h, ACTIVE_SPEC, 0);
    if (!sw)
        goto out;
    h_hello(&h, 'a', "w1", 16, 0);
    h_ready(&h, 'a', 8);
    h_flush(&h);
    int sent = h_count(&h, REGMIX__ENVELOPE__BODY_ASSIGN, 'a');
    CHECK_INT_EQ(sent, 8);
    if (sent != 8)
        goto out;
    uint64_t ids[8];
    double w[8][3];
    for (int i = 0; i < 8; i++) {
        const Regmix__Assign *as = h_get(&h, REGMIX__ENVELOPE__BODY_ASSIGN, i)->assign;
        ids[i] = as->attempt_id;
        for (int k = 0; k < 3; k++)
            w[i][k] = as->weights[k]->weight;
    }
    static const char *const names[3] = {"web", "code", "books"};
    for (int i = 0; i < 4; i++) {
        /* 3 results: 5 open, more than half a batch: no refit (refit_every is 100) */
        if (i == 3)
            CHECK(!fit_busy(sw) && sw->nfits == 0);
        double l[3] = {3.0 - w[i][0], 3.0 - 0.5 * w[i][1], 3.0 - 0.2 * w[i][2]};
        h_result(&h, 'a', ids[i], names, l, 3);
    }
    /* the 4th: 4 open, the round is asked for */
    CHECK(fit_busy(sw));
    CHECK(h_run_until(&h, fit_idle, 30000));
    h_flush(&h);
    CHECK_INT_EQ(sw->nfits, 1);
    CHECK_INT_EQ(sw->nruns, 16);
    CHECK_INT_EQ(sw->counts[RUN_STATE_LEASED] + sw->counts[RUN_STATE_RUNNING], 4);
    CHECK_INT_EQ(sw->counts[RUN_STATE_QUEUED], 8);
    CHECK_INT_EQ(stored_runs(&h, sw), 16);
    /* the open runs' mixtures (what the next round will be conditioned on): the 4 running, then
     * the round's 8, by index */
    double open_w[16 * 3];
    CHECK_INT_EQ(store_runs_open_weights(h.c->store, sw->id, 3, 16, open_w), 12);
    for (int i = 0; i < 4; i++)
        CHECK(memcmp(open_w + i * 3, w[4 + i], sizeof w[0]) == 0);
    /* the 4 running end: 8 queued are open, no round */
    for (int i = 4; i < 8; i++) {
        double l[3] = {3.0 - w[i][0], 3.0 - 0.5 * w[i][1], 3.0 - 0.2 * w[i][2]};
        h_result(&h, 'a', ids[i], names, l, 3);
    }
    CHECK(!fit_busy(sw));
    CHECK_INT_EQ(sw->nruns, 16);
out:
    h_close(&h);
}

int main(void)
{
    TEST_RUN(test_refit_converges);
    TEST_RUN(test_round_overlaps);
    return test_finish();
}
