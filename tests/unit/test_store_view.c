/*
 * test_store_view: the dashboard's reads and writes (coordinator/store_view.h) on a real
 * temporary SQLite file. The out-of-fold record is one per sweep and replaced by a later fit;
 * results pages by cursor return every result exactly once in storage order and respect the
 * limit; runs pages start at the offset and carry the result of a done run only; a target curve
 * of 2500 points comes back thinned to about the asked maximum, ordered by step, ending with the
 * last point, and only for its own (sweep, role); the fits after a number come in order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_view.h"
#include "test.h"

static char dir[] = "/tmp/regmix-store-view-test-XXXXXX";
static char path[256];

typedef struct {
    int n;
    int64_t ids[64];
    int idx[64];
} page_t;

static int on_result(const store_view_result_t *r, void *data)
{
    page_t *p = data;
    CHECK_INT_EQ(r->nweights, 2);
    CHECK(strstr(r->losses_json, "\"a\"") != NULL);
    p->ids[p->n] = r->id;
    p->idx[p->n++] = r->run_idx;
    return 0;
}

typedef struct {
    int n, with_loss, first;
    char states[64][16];
} runs_t;

static int on_run(const store_view_run_t *r, void *data)
{
    runs_t *p = data;
    if (p->n == 0)
        p->first = r->idx;
    snprintf(p->states[p->n++], 16, "%s", r->state);
    p->with_loss += r->losses_json != NULL;
    CHECK_INT_EQ(r->nweights, 2);
    return 0;
}

typedef struct {
    int n;
    int64_t steps[4000];
    double last_loss;
} curve_t;

static int on_point(int64_t step, double loss, void *data)
{
    curve_t *c = data;
    c->steps[c->n++] = step;
    c->last_loss = loss;
    return 0;
}

typedef struct {
    int *fit_no;
    int *n;
} fit_acc_t;

static int on_fit(const store_fit_row_t *row, void *data)
{
    fit_acc_t *a = data;
    CHECK_STR_EQ(row->model, "linear");
    a->fit_no[(*a->n)++] = row->fit_no;
    return 0;
}

static void test_views(void)
{
    store_t *s = NULL;
    char err[256] = "";
    CHECK_MSG(store_open(path, &s, err, sizeof err) == 0, "%s", err);
    if (!s)
        return;
    store_sweep_row_t row = {.name = "v",
                             .spec_yaml = "name: v\n",
                             .spec_name = "v.yaml",
                             .state = SWEEP_STATE_RUNNING,
                             .max_attempts = 3,
                             .ndomains = 2,
                             .nruns = 30,
                             .created_ms = 1000};
    int64_t sweep = 0, other = 0;
    char sid[32];
    CHECK(store_begin(s) == 0);
    CHECK(store_sweep_insert(s, &row, &sweep, sid) == 0);
    CHECK(store_sweep_insert(s, &row, &other, sid) == 0);
    for (int i = 0; i < 30; i++) {
        double w[2] = {0.01 * i, 1 - 0.01 * i};
        CHECK(store_run_insert(s, sweep, i, (uint64_t)i, w, 2, 0, 0, 1000) == 0);
    }
    /* Results for runs 29, 27, ..., 1 (storage order differs from run order). */
    store_queued_t q[64];
    int nq = store_queue_fetch(s, 0, 64, q);
    CHECK_INT_EQ(nq, 30);
    int64_t aid = store_attempt_max_id(s);
    for (int k = nq - 1; k >= 0; k--) {
        if (q[k].idx % 2 == 0)
            continue;
        aid++;
        CHECK_INT_EQ(store_run_claim(s, q[k].run, aid, 2000), 1);
        CHECK(store_attempt_insert(s, aid, q[k].run, 1, "w1", "", 2000, 9000) == 0);
        CHECK_INT_EQ(store_run_finish(s, q[k].run, aid, RUN_STATE_DONE, 0, 2100), 1);
        CHECK_INT_EQ(store_result_insert(s, q[k].run, aid, sweep, "w1", "{\"a\":1.5}", NULL, 1, 0.5,
                                         2100),
                     1);
    }
    /* the out-of-fold record: one per sweep, replaced */
    char *oof = NULL;
    CHECK(store_view_oof_get(s, sweep, &oof) == 0 && oof == NULL);
    CHECK(store_view_oof_set(s, sweep, 1, "{\"fit_no\":1}") == 0);
    CHECK(store_view_oof_set(s, sweep, 2, "{\"fit_no\":2}") == 0);
    CHECK(store_view_oof_get(s, sweep, &oof) == 0);
    CHECK_STR_EQ(oof ? oof : "", "{\"fit_no\":2}");
    free(oof);
    CHECK(store_view_oof_get(s, other, &oof) == 0 && oof == NULL);
    /* target curves */
    for (int i = 0; i < 2500; i++)
        CHECK(store_view_target_point(s, sweep, "target", i * 10, 5.0 - i * 0.001, 3000 + i) == 0);
    CHECK(store_view_target_point(s, sweep, "baseline", 1, 9.0, 3000) == 0);
    CHECK(store_view_target_point(s, other, "target", 1, 9.0, 3000) == 0);
    for (int f = 1; f <= 3; f++) {
        store_fit_row_t fr = {.sweep = sweep,
                              .fit_no = f,
                              .runs_used = 10 * f,
                              .model = "linear",
                              .metrics_json = "{}",
                              .proposal_json = "{}",
                              .predicted = 1.0,
                              .l1_moved = f == 1 ? NAN : 0.1,
                              .seconds = 0.01,
                              .created_ms = 4000 + f};
        CHECK(store_fit_insert(s, &fr) == 0);
    }
    CHECK(store_commit(s) == 0);

    int fits[8] = {0}, nfits = 0;
    CHECK(store_fits_after(s, sweep, 1, on_fit, &(fit_acc_t){fits, &nfits}) == 0);
    CHECK_INT_EQ(nfits, 2);
    CHECK_INT_EQ(fits[0], 2);
    CHECK_INT_EQ(fits[1], 3);
    nfits = 0;
    CHECK(store_fits_after(s, sweep, -5, on_fit, &(fit_acc_t){fits, &nfits}) == 0);
    CHECK_INT_EQ(nfits, 3);

    page_t all = {0};
    int64_t after = 0;
    for (int pages = 0; pages < 10; pages++) {
        page_t p = {0};
        int n = store_view_results_page(s, sweep, after, 4, on_result, &p);
        CHECK(n >= 0 && n <= 4);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            CHECK(p.ids[i] > after);
            all.idx[all.n++] = p.idx[i];
            after = p.ids[i];
        }
    }
    CHECK_INT_EQ(all.n, 15);
    CHECK_INT_EQ(all.idx[0], 29); /* storage order */
    int seen[30] = {0};
    for (int i = 0; i < all.n; i++)
        seen[all.idx[i]]++;
    for (int i = 0; i < 30; i++)
        CHECK_INT_EQ(seen[i], i % 2);
    runs_t r = {0};
    CHECK_INT_EQ(store_view_runs_page(s, sweep, 10, 8, on_run, &r), 8);
    CHECK_INT_EQ(r.first, 10);
    CHECK_INT_EQ(r.with_loss, 4); /* runs 11, 13, 15, 17 */
    CHECK_STR_EQ(r.states[0], "queued");
    CHECK_STR_EQ(r.states[1], "done");
    runs_t tail = {0};
    CHECK_INT_EQ(store_view_runs_page(s, sweep, 28, 8, on_run, &tail), 2);

    curve_t *c = calloc(1, sizeof *c);
    CHECK(store_view_target_curve(s, sweep, "target", 1000, on_point, c) == 0);
    CHECK_MSG(c->n >= 800 && c->n <= 1001, "thinned to %d points", c->n);
    for (int i = 1; i < c->n; i++)
        CHECK(c->steps[i] > c->steps[i - 1]);
    CHECK_INT_EQ(c->steps[0], 0);
    CHECK_INT_EQ(c->steps[c->n - 1], 24990); /* the last point is kept */
    CHECK_NEAR(c->last_loss, 5.0 - 2499 * 0.001, 1e-12);
    memset(c, 0, sizeof *c);
    CHECK(store_view_target_curve(s, sweep, "target", 5000, on_point, c) == 0);
    CHECK_INT_EQ(c->n, 2500); /* under the maximum: every point */
    memset(c, 0, sizeof *c);
    CHECK(store_view_target_curve(s, sweep, "baseline", 1000, on_point, c) == 0);
    CHECK_INT_EQ(c->n, 1);
    free(c);
    store_close(&s);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/regmix.db", dir);
    TEST_RUN(test_views);
    return test_finish_tmpdir(dir, "store_view");
}
