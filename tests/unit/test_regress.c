/*
 * test_regress: metrics, objective, the regression models and the forest evaluator.
 *
 * Hand-computed metrics (ties included); linear recovers an exact linear function; ridge shrinks
 * the slopes as alpha grows; on the RegMix paper's data (fit on the 512 training runs, target
 * Pile-CC, scored on the 256 test runs) gbdt reaches Spearman >= 0.98 and linear >= 0.89, and the
 * own forest evaluator gives XGBoost's predictions within 1e-5 relative.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fitdata.h"
#include "forest.h"
#include "metrics.h"
#include "objective.h"
#include "regress.h"
#include "rng.h"
#include "test.h"

#define TARGET "metric/the_pile_pile_cc_val_loss"

/* The gbdt model of test_paper, reused by test_forest_matches_xgboost (one fit, not two). */
static regress_t *paper_gbdt;
static fitdata_t *paper_train;

static void test_metrics_hand(void)
{
    /* x = [1,2,3,4,5], y = [2,4,5,4,5]: mean y = 4, Sxy = 6, Sxx = 10, Syy = 6
     * pearson = 6 / sqrt(60) = 0.7745966692 */
    double x[] = {1, 2, 3, 4, 5}, y[] = {2, 4, 5, 4, 5};
    CHECK_NEAR(metrics_pearson(x, y, 5), 6.0 / sqrt(60.0), 1e-12);
    /* ranks of y with ties: [1, 2.5, 4.5, 2.5, 4.5] */
    double r[5];
    CHECK_INT_EQ(metrics_rank(y, 5, r), 0);
    CHECK_NEAR(r[0], 1.0, 0);
    CHECK_NEAR(r[1], 2.5, 0);
    CHECK_NEAR(r[2], 4.5, 0);
    CHECK_NEAR(r[3], 2.5, 0);
    CHECK_NEAR(r[4], 4.5, 0);
    /* spearman = pearson(1..5, ranks): Sxy = 7, Sxx = 10, Syy = 9 -> 7/sqrt(90)
     * (scipy.stats.spearmanr gives 0.7378647873726218) */
    CHECK_NEAR(metrics_spearman(x, y, 5), 0.7378647873726218, 1e-12);
    CHECK_NEAR(metrics_mse(x, y, 5), (1 + 4 + 4 + 0 + 0) / 5.0, 1e-15);
    /* R² of pred x for truth y: 1 - 9/6 = -0.5 */
    CHECK_NEAR(metrics_r2(y, x, 5), -0.5, 1e-12);
    metrics_t m;
    CHECK_INT_EQ(metrics_compute(y, x, 5, &m), 0);
    CHECK_NEAR(m.spearman, 0.7378647873726218, 1e-12);
    CHECK_NEAR(m.r2, -0.5, 1e-12);
    CHECK(isnan(metrics_pearson(x, (double[]){3, 3, 3, 3, 3}, 5)));
    double rev[] = {5, 4, 3, 2, 1};
    CHECK_NEAR(metrics_spearman(x, rev, 5), -1.0, 1e-12);
}

static void test_kfold(void)
{
    int f1[103], f2[103], f3[103], count[5] = {0};
    CHECK_INT_EQ(metrics_kfold(103, 5, 7, f1), 0);
    CHECK_INT_EQ(metrics_kfold(103, 5, 7, f2), 0);
    CHECK_INT_EQ(metrics_kfold(103, 5, 8, f3), 0);
    int same = 1, differ = 0;
    for (int i = 0; i < 103; i++) {
        CHECK(f1[i] >= 0 && f1[i] < 5);
        count[f1[i]]++;
        same &= f1[i] == f2[i];
        differ += f1[i] != f3[i];
    }
    CHECK(same);
    CHECK(differ > 0);
    for (int k = 0; k < 5; k++)
        CHECK(count[k] == 20 || count[k] == 21);
    CHECK_INT_EQ(metrics_kfold(3, 5, 1, f1), -EINVAL);
}

static void test_objective(void)
{
    const char *cols[] = {"a", "b", "c"};
    objective_t *o = NULL;
    double row[] = {1.0, 2.0, 4.0};
    char err[256];
    CHECK_INT_EQ(objective_parse("b", cols, 3, &o, err, sizeof err), 0);
    CHECK_NEAR(objective_eval(o, row), 2.0, 0);
    CHECK_STR_EQ(objective_text(o), "b");
    objective_destroy(&o);
    CHECK_INT_EQ(objective_parse("a=1.0,c=0.5", cols, 3, &o, err, sizeof err), 0);
    CHECK_NEAR(objective_eval(o, row), 3.0, 1e-15);
    CHECK(!objective_uses(o, 1));
    objective_destroy(&o);
    CHECK_INT_EQ(objective_parse("mean", cols, 3, &o, err, sizeof err), 0);
    CHECK_NEAR(objective_eval(o, row), 7.0 / 3.0, 1e-15);
    objective_destroy(&o);
    CHECK_INT_EQ(objective_parse("d", cols, 3, &o, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "'d'") != NULL);
    CHECK_INT_EQ(objective_parse("a=x", cols, 3, &o, err, sizeof err), -EINVAL);
    CHECK_INT_EQ(objective_parse("a=1,a=2", cols, 3, &o, err, sizeof err), -EINVAL);
    CHECK(o == NULL);
}

/* Random simplex rows: Dirichlet(1,...,1). */
static void simplex_rows(rng_t *r, double *X, size_t n, size_t d)
{
    double *alpha = malloc(d * sizeof *alpha);
    for (size_t j = 0; j < d; j++)
        alpha[j] = 1.0;
    for (size_t i = 0; i < n; i++)
        rng_dirichlet(r, alpha, (int)d, X + i * d);
    free(alpha);
}

static void test_linear_exact(void)
{
    enum { N = 200, D = 6 };
    double X[N * D], y[N], pred[N], w[D] = {0.5, -1.0, 2.0, 0.25, 3.0, -0.75};
    rng_t r;
    rng_seed(&r, 3);
    /* General position (not on the simplex): slopes and intercept are unique. */
    for (size_t i = 0; i < N; i++) {
        y[i] = 1.5;
        for (size_t j = 0; j < D; j++) {
            X[i * D + j] = rng_normal(&r);
            y[i] += w[j] * X[i * D + j];
        }
    }
    regress_t *m = NULL;
    char err[256];
    CHECK_INT_EQ(regress_fit(REGRESS_LINEAR, NULL, X, y, N, D, &m, err, sizeof err), 0);
    double b0 = 0;
    const double *c = regress_coef(m, &b0);
    CHECK_NEAR(b0, 1.5, 1e-10);
    for (size_t j = 0; j < D; j++)
        CHECK_NEAR(c[j], w[j], 1e-10);
    regress_destroy(&m);
    /* On the simplex with an intercept the design is rank-deficient; predictions stay exact. */
    simplex_rows(&r, X, N, D);
    for (size_t i = 0; i < N; i++) {
        y[i] = 1.5;
        for (size_t j = 0; j < D; j++)
            y[i] += w[j] * X[i * D + j];
    }
    CHECK_INT_EQ(regress_fit(REGRESS_LINEAR, NULL, X, y, N, D, &m, err, sizeof err), 0);
    CHECK_INT_EQ(regress_predict(m, X, N, pred), 0);
    double maxerr = 0;
    for (size_t i = 0; i < N; i++)
        maxerr = fmax(maxerr, fabs(pred[i] - y[i]));
    CHECK_MSG(maxerr < 1e-10, "max error %g", maxerr);
    regress_destroy(&m);
    CHECK(m == NULL);
}

static void test_ridge_shrinks(void)
{
    enum { N = 100, D = 4 };
    double X[N * D], y[N], w[D] = {1.0, -2.0, 0.5, 3.0};
    rng_t r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < N; i++) {
        y[i] = 0.3 + 0.01 * rng_normal(&r);
        for (size_t j = 0; j < D; j++) {
            X[i * D + j] = rng_normal(&r);
            y[i] += w[j] * X[i * D + j];
        }
    }
    regress_params_t p;
    regress_params_default(&p);
    double prev = INFINITY;
    double alphas[] = {1e-6, 1.0, 100.0, 1e4};
    for (size_t a = 0; a < 4; a++) {
        p.ridge_alpha = alphas[a];
        regress_t *m = NULL;
        CHECK_INT_EQ(regress_fit(REGRESS_RIDGE, &p, X, y, N, D, &m, NULL, 0), 0);
        if (!m)
            return;
        const double *c = regress_coef(m, NULL);
        double norm = 0;
        for (size_t j = 0; j < D; j++)
            norm += c[j] * c[j];
        CHECK_MSG(norm < prev, "alpha %g: |w|² %g not below %g", alphas[a], norm, prev);
        if (a == 0)
            CHECK_NEAR(c[3], 3.0, 0.01);
        prev = norm;
        regress_destroy(&m);
    }
    CHECK(prev < 0.1);
}

static fitdata_t *paper_load(const char *mix, const char *loss, const fitdata_t *like)
{
    char m[4096], l[4096], err[512];
    snprintf(m, sizeof m, "%s", test_paper_path(mix));
    snprintf(l, sizeof l, "%s", test_paper_path(loss));
    fitdata_t *fd = NULL;
    int rc = fitdata_load(m, l, "index", TARGET, like ? (const char *const *)like->domains : NULL,
                          like ? like->d : 0, &fd, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    return fd;
}

static void test_paper(void)
{
    fitdata_t *tr = paper_load("train_mixture_1m.csv", "train_pile_loss_1m.csv", NULL);
    if (!tr)
        return;
    fitdata_t *te = paper_load("test_mixture_1m.csv", "test_pile_loss_1m.csv", tr);
    if (!te) {
        fitdata_destroy(&tr);
        return;
    }
    CHECK_INT_EQ(tr->n, 512);
    CHECK_INT_EQ(tr->d, 17);
    CHECK_INT_EQ(te->n, 256);
    double *pred = malloc(te->n * sizeof *pred), *ref = malloc(te->n * sizeof *ref);
    regress_params_t p;
    regress_params_default(&p);
    p.threads = 2;
    char err[512];
    const regress_kind_t kinds[] = {REGRESS_LINEAR, REGRESS_RIDGE, REGRESS_GBDT};
    const double floor_rho[] = {0.89, 0.89, 0.98};
    for (int k = 0; k < 3; k++) {
        regress_t *m = NULL;
        double t0 = clock_mono_s();
        int rc = regress_fit(kinds[k], &p, tr->X, tr->y, tr->n, tr->d, &m, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        if (rc)
            continue;
        double tfit = clock_mono_s() - t0;
        CHECK_INT_EQ(regress_predict(m, te->X, te->n, pred), 0);
        metrics_t mt;
        CHECK_INT_EQ(metrics_compute(te->y, pred, te->n, &mt), 0);
        fprintf(stderr, "paper %-6s: spearman %.4f pearson %.4f mse %.5f r2 %.4f (fit %.2f s)\n",
                regress_kind_name(kinds[k]), mt.spearman, mt.pearson, mt.mse, mt.r2, tfit);
        CHECK_MSG(mt.spearman >= floor_rho[k], "%s spearman %.4f < %.2f",
                  regress_kind_name(kinds[k]), mt.spearman, floor_rho[k]);
        if (kinds[k] == REGRESS_GBDT) {
            /* the own forest against XGBoost's predictor, test runs */
            CHECK_INT_EQ(regress_predict_xgboost(m, te->X, te->n, ref), 0);
            double maxrel = 0;
            for (size_t i = 0; i < te->n; i++)
                maxrel = fmax(maxrel, fabs(pred[i] - ref[i]) / fabs(ref[i]));
            CHECK_MSG(maxrel <= 1e-5, "forest vs XGBoost max rel %g", maxrel);
            CHECK_INT_EQ(forest_ntrees(regress_forest(m)), 1000);
            paper_gbdt = m;
            m = NULL;
        }
        regress_destroy(&m);
    }
    /* CV runs and gives a sensible Spearman for linear (fast). */
    metrics_t cv;
    CHECK_INT_EQ(
            regress_cv(REGRESS_LINEAR, &p, tr->X, tr->y, tr->n, tr->d, 5, 1, &cv, err, sizeof err),
            0);
    CHECK_INT_EQ(cv.folds, 5);
    CHECK_INT_EQ(cv.n, 512);
    CHECK(cv.spearman > 0.85 && cv.spearman < 1.0);
    /* gbdt folds run in parallel: the same out-of-fold metrics on 1 and 2 threads (100 trees to
     * keep it short) */
    regress_params_t q = p;
    q.trees = 100;
    q.learning_rate = 0.1;
    metrics_t c1, c2;
    q.threads = 1;
    double t1 = clock_mono_s();
    CHECK_INT_EQ(
            regress_cv(REGRESS_GBDT, &q, tr->X, tr->y, tr->n, tr->d, 5, 3, &c1, err, sizeof err),
            0);
    t1 = clock_mono_s() - t1;
    q.threads = 2;
    double t2 = clock_mono_s();
    CHECK_INT_EQ(
            regress_cv(REGRESS_GBDT, &q, tr->X, tr->y, tr->n, tr->d, 5, 3, &c2, err, sizeof err),
            0);
    t2 = clock_mono_s() - t2;
    CHECK(c1.spearman == c2.spearman && c1.mse == c2.mse && c1.r2 == c2.r2);
    CHECK(c1.spearman > 0.95);
    fprintf(stderr, "gbdt 5-fold CV (100 trees): spearman %.4f, %.2f s on 1 thread, %.2f s on 2\n",
            c1.spearman, t1, t2);
    free(pred);
    free(ref);
    fitdata_destroy(&te);
    paper_train = tr;
}

/* forest == XGBoost on many simplex candidates (Dirichlet(prior)) and timings of both. */
static void test_forest_matches_xgboost(void)
{
    regress_t *m = paper_gbdt;
    fitdata_t *tr = paper_train;
    CHECK(m != NULL && tr != NULL);
    if (!m || !tr)
        return;
    const size_t n = getenv("REGMIX_FOREST_BENCH_N")
                             ? strtoul(getenv("REGMIX_FOREST_BENCH_N"), NULL, 10)
                             : 50000;
    const size_t d = tr->d;
    double *X = malloc(n * d * sizeof *X), *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    double alpha[17];
    for (size_t j = 0; j < d; j++)
        alpha[j] = 0.2;
    rng_t r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < n; i++)
        rng_dirichlet(&r, alpha, (int)d, X + i * d);
    /* exact threshold hits: training rows themselves, and a NaN row for the default path */
    memcpy(X, tr->X, 100 * d * sizeof *X);
    X[100 * d + 3] = NAN;
    double t0 = clock_mono_s();
    CHECK_INT_EQ(regress_predict_xgboost(m, X, n, b), 0);
    double txgb = clock_mono_s() - t0;
    t0 = clock_mono_s();
    CHECK_INT_EQ(regress_predict(m, X, n, a), 0);
    double town = clock_mono_s() - t0;
    double maxrel = 0;
    for (size_t i = 0; i < n; i++)
        maxrel = fmax(maxrel, fabs(a[i] - b[i]) / fabs(b[i]));
    CHECK_MSG(maxrel <= 1e-5, "forest vs XGBoost max rel %g", maxrel);
    fprintf(stderr,
            "predict %zu x %zu, 1000 trees, 2 threads: XGBoost %.3f s, forest %.3f s (%.1fx), "
            "max rel diff %.2g\n",
            n, d, txgb, town, txgb / town, maxrel);
    free(X);
    free(a);
    free(b);
}

/* A hand-written two-tree model: x < threshold goes left, equality goes right, NaN follows the
 * default direction, base_score is added, values outside [0, 1) bin correctly. */
static void test_forest_hand(void)
{
    const char *json =
            "{\"learner\": {\"learner_model_param\": {\"base_score\": \"5E-1\", \"num_feature\": "
            "\"2\", \"num_target\": \"1\"}, \"gradient_booster\": {\"model\": {\"trees\": ["
            "{\"left_children\": [1, -1, 3, -1, -1], \"right_children\": [2, -1, 4, -1, -1],"
            " \"split_indices\": [0, 0, 1, 0, 0], \"split_conditions\": [0.5, 1.0, 0.25, 2.0, 3.0],"
            " \"default_left\": [1, 0, 0, 0, 0], \"split_type\": [0, 0, 0, 0, 0]},"
            "{\"left_children\": [-1], \"right_children\": [-1], \"split_indices\": [0],"
            " \"split_conditions\": [0.125], \"default_left\": [0]}]}}}}";
    forest_t *f = NULL;
    char err[256];
    CHECK_INT_EQ(forest_from_xgboost_json(json, strlen(json), &f, err, sizeof err), 0);
    if (!f)
        return;
    CHECK_INT_EQ(forest_ntrees(f), 2);
    CHECK_INT_EQ(forest_nfeatures(f), 2);
    CHECK_NEAR(forest_base_score(f), 0.5, 0);
    double X[] = {0.4, 0.9, 0.5, 0.1, 0.7, 0.25, NAN, 0.0, 0.9, NAN, 1.5, -2.0};
    double want[] = {1.625, 2.625, 3.625, 1.625, 3.625, 2.625};
    double out[6];
    CHECK_INT_EQ(forest_predict(f, X, 6, 2, out, 1), 0);
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(out[i], want[i], 1e-12);
    double lo, hi;
    forest_bound_rest(f, 0, &lo, &hi);
    CHECK_NEAR(lo, 1.125, 1e-12);
    CHECK_NEAR(hi, 3.125, 1e-12);
    forest_destroy(&f);
    CHECK(f == NULL);
    forest_destroy(&f); /* harmless no-op */
    CHECK_INT_EQ(forest_from_xgboost_json("{\"learner\": 1}", 14, &f, err, sizeof err), -EINVAL);
    CHECK(f == NULL && err[0] != 0);
    CHECK_INT_EQ(forest_from_xgboost_json("not json", 8, &f, err, sizeof err), -EINVAL);
}

/* The pruning bounds of forest.h contain what the remaining trees really add, for every row. */
static void test_forest_bounds(void)
{
    const forest_t *f = paper_gbdt ? regress_forest(paper_gbdt) : NULL;
    CHECK(f != NULL);
    if (!f)
        return;
    enum { N = 4000, D = 17 };
    const int cuts[] = {0, 10, 100, 500, 999, 1000};
    const int ncut = (int)(sizeof cuts / sizeof cuts[0]);
    forest_bounds_t *fb = NULL;
    double t0 = clock_mono_s();
    CHECK_INT_EQ(forest_bounds_new(f, cuts, ncut, &fb), 0);
    double tb = clock_mono_s() - t0;
    if (!fb)
        return;
    double *X = malloc(N * D * sizeof *X), *rest = malloc(N * sizeof *rest);
    uint16_t *bins = malloc(N * D * sizeof *bins);
    double alpha[D];
    for (int j = 0; j < D; j++)
        alpha[j] = 0.1 + 0.05 * j;
    rng_t r;
    rng_seed(&r, 9);
    for (size_t i = 0; i < N; i++)
        rng_dirichlet(&r, alpha, D, X + i * D);
    CHECK_INT_EQ(forest_bin(f, X, N, D, bins), 0);
    int bad = 0, tighter = 0;
    for (int c = 0; c < ncut; c++) {
        for (size_t i = 0; i < N; i++)
            rest[i] = 0;
        forest_accumulate(f, bins, NULL, N, cuts[c], forest_ntrees(f), rest);
        double gmin, gmax;
        forest_bound_rest(f, cuts[c], &gmin, &gmax);
        for (size_t i = 0; i < N; i++) {
            double lo, hi;
            forest_bounds_row(fb, c, bins + i * D, &lo, &hi);
            bad += !(lo <= rest[i] + 1e-9 && rest[i] <= hi + 1e-9);
            bad += !(lo >= gmin - 1e-9 && hi <= gmax + 1e-9);
            tighter += hi - lo < gmax - gmin - 1e-9;
        }
    }
    CHECK_INT_EQ(bad, 0);
    CHECK(tighter > N); /* the per-feature bounds do better than the global ones */
    fprintf(stderr, "bounds table for %d cuts built in %.3f s\n", ncut, tb);
    forest_bounds_destroy(&fb);
    CHECK(fb == NULL);
    free(X);
    free(rest);
    free(bins);
}

int main(void)
{
    TEST_RUN(test_metrics_hand);
    TEST_RUN(test_kfold);
    TEST_RUN(test_objective);
    TEST_RUN(test_linear_exact);
    TEST_RUN(test_ridge_shrinks);
    TEST_RUN(test_forest_hand);
    TEST_RUN(test_paper);
    TEST_RUN(test_forest_matches_xgboost);
    TEST_RUN(test_forest_bounds);
    regress_destroy(&paper_gbdt);
    fitdata_destroy(&paper_train);
    return test_finish();
}
