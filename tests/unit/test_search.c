/*
 * test_search: the active search's modules (gp, surrogate, design, active) on synthetic
 * objectives with a known optimum, fixed seeds, stated tolerances.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "active.h"
#include "design.h"
#include "fitpipe.h"
#include "gp.h"
#include "metrics.h"
#include "rng.h"
#include "spec.h"
#include "surrogate.h"
#include "test.h"

#define D 6

/* A smooth bowl on the simplex with its minimum 3.0 at W_STAR, plus a steep rise near a zero
 * weight of domain 0 (as a loss rises when its own domain vanishes). */
static const double W_STAR[D] = {0.45, 0.25, 0.12, 0.08, 0.06, 0.04};

static double bowl(const double *w)
{
    double s = 0;
    for (int j = 0; j < D; j++)
        s += (w[j] - W_STAR[j]) * (w[j] - W_STAR[j]) * (1 + j);
    return 3.0 + 4 * s + 0.05 * (log(W_STAR[0] + 0.01) - log(w[0] + 0.01)) * (w[0] < W_STAR[0]);
}

static void draw(rng_t *r, double conc, double *w)
{
    double a[D];
    for (int j = 0; j < D; j++)
        a[j] = conc / D;
    rng_dirichlet(r, a, D, w);
}

/* n runs drawn with concentration conc into X (n, D), observed on the bowl with noise sd 0.005 */
static void noisy_runs(rng_t *r, double conc, int n, double *X, double *y)
{
    for (int i = 0; i < n; i++) {
        draw(r, conc, X + i * D);
        y[i] = bowl(X + i * D) + 0.005 * rng_normal(r);
    }
}

static void flat_prior(double *prior)
{
    for (int j = 0; j < D; j++)
        prior[j] = 1.0 / D;
}

static double l1(const double *a, const double *b, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++)
        s += fabs(a[j] - b[j]);
    return s;
}

static void test_project(void)
{
    rng_t r;
    rng_seed(&r, 7);
    double up[D] = {0.5, 0.3, 0.2, 0.1, 0.05, 0.9};
    for (int t = 0; t < 200; t++) {
        double w[D], s = 0;
        draw(&r, 0.5, w);
        double before[D];
        memcpy(before, w, sizeof w);
        int feasible = 1;
        for (int j = 0; j < D; j++)
            feasible &= w[j] <= up[j];
        active_project(w, up, D);
        for (int j = 0; j < D; j++) {
            CHECK(w[j] <= up[j] + 1e-12);
            CHECK(w[j] >= 0);
            s += w[j];
        }
        CHECK_NEAR(s, 1.0, 1e-12);
        if (feasible)
            CHECK(l1(w, before, D) == 0);
    }
}

static void test_ridge_and_loglinear(void)
{
    enum { N = 80 };
    rng_t r;
    rng_seed(&r, 11);
    double X[N * D], y[N], z[N], t[D] = {-1.0, 0.5, 0.2, 0.0, 0.3, 0.8};
    for (int i = 0; i < N; i++) {
        draw(&r, 3, X + i * D);
        y[i] = 2 + 3 * X[i * D] - X[i * D + 1];
        double e = 0;
        for (int j = 0; j < D; j++)
            e += t[j] * X[i * D + j];
        z[i] = 1.5 + exp(e);
    }
    char err[256] = "";
    surrogate_t *s = NULL;
    double p[N];
    CHECK_INT_EQ(surrogate_fit(SURROGATE_RIDGE, X, y, N, D, 1, &s, err, sizeof err), 0);
    CHECK_INT_EQ(surrogate_predict(s, X, N, p, NULL), 0);
    for (int i = 0; i < N; i++)
        CHECK_NEAR(p[i], y[i], 1e-3); /* noise-free linear data: GCV picks a tiny penalty */
    surrogate_destroy(&s);
    CHECK_INT_EQ(surrogate_fit(SURROGATE_LOGLINEAR, X, z, N, D, 1, &s, err, sizeof err), 0);
    CHECK_INT_EQ(surrogate_predict(s, X, N, p, NULL), 0);
    double worst = 0;
    for (int i = 0; i < N; i++)
        worst = fmax(worst, fabs(p[i] - z[i]));
    CHECK_MSG(worst < 5e-3, "loglinear max error %g on its own family", worst);
    surrogate_destroy(&s);
    CHECK_INT_EQ(surrogate_fit(SURROGATE_CV, X, z, N, D, 1, &s, err, sizeof err), 0);
    CHECK(surrogate_kind(s) != SURROGATE_CV && surrogate_kind(s) != SURROGATE_GBDT);
    surrogate_destroy(&s);
    surrogate_kind_t k;
    CHECK_INT_EQ(surrogate_kind_parse("gp", &k), 0);
    CHECK_INT_EQ(k, SURROGATE_GP);
    CHECK_INT_EQ(surrogate_kind_parse("nope", &k), -EINVAL);
}

static void test_gp(void)
{
    enum { N = 60, M = 200 };
    rng_t r;
    rng_seed(&r, 3);
    double X[N * D], y[N], Xt[M * D], yt[M], mean[M], sd[M];
    noisy_runs(&r, 4, N, X, y);
    for (int i = 0; i < M; i++) {
        draw(&r, 4, Xt + i * D);
        yt[i] = bowl(Xt + i * D);
    }
    char err[256] = "";
    gp_t *gp = NULL;
    CHECK_INT_EQ(gp_fit(X, y, N, D, &gp, err, sizeof err), 0);
    if (!gp)
        return;
    CHECK_INT_EQ(gp_predict(gp, Xt, M, mean, sd), 0);
    double rho = metrics_spearman(mean, yt, M);
    CHECK_MSG(rho > 0.9, "gp held-out spearman %g", rho);
    CHECK_MSG(gp_noise_sd(gp) > 0 && gp_noise_sd(gp) < 0.05, "noise %g", gp_noise_sd(gp));
    /* the sd is small at a run and larger far from every run */
    double m1, s1, far[D] = {0, 0, 0, 0, 0, 1}, m2, s2;
    gp_predict(gp, X, 1, &m1, &s1);
    gp_predict(gp, far, 1, &m2, &s2);
    CHECK_MSG(s1 < s2, "sd at a run %g, at a corner %g", s1, s2);
    /* conditioning on a hallucinated run shrinks the variance there to about the noise */
    gp_batch_t *b = NULL;
    CHECK_INT_EQ(gp_batch_new(gp, Xt, M, 2, &b), 0);
    double before = gp_batch_sd(b, 5);
    CHECK_NEAR(gp_batch_sd(b, 5), sd[5], 1e-9);
    CHECK_INT_EQ(gp_batch_add(b, 5), 0);
    CHECK(gp_batch_sd(b, 5) < before);
    CHECK(gp_batch_sd(b, 5) <= gp_noise_sd(gp) * 1.01 + 1e-12);
    CHECK_NEAR(gp_batch_mean(b, 5), mean[5], 1e-12);
    CHECK_INT_EQ(gp_batch_add(b, 6), 0);
    CHECK_INT_EQ(gp_batch_add(b, 7), -ENOSPC);
    gp_batch_destroy(&b);
    /* leave-one-out: the RMS of the standardised residuals is about 1 for a GP whose noise
     * model fits (here it does; a residual not divided by its variance, or a variance without
     * the signal scale s2, gives values far from 1) */
    double loo = gp_loo_scale(gp);
    CHECK_MSG(loo > 0.6 && loo < 1.6, "leave-one-out RMS %g on well-specified data", loo);
    gp_destroy(&gp);
}

static double min_pair(const double *P, const size_t *idx, size_t k)
{
    double m = INFINITY;
    for (size_t a = 0; a < k; a++)
        for (size_t b = a + 1; b < k; b++) {
            double s = 0;
            for (int j = 0; j < D; j++) {
                double t = sqrt(P[idx[a] * D + j]) - sqrt(P[idx[b] * D + j]);
                s += t * t;
            }
            m = fmin(m, s);
        }
    return m;
}

static void test_design(void)
{
    enum { M = 400, K = 20 };
    rng_t r;
    rng_seed(&r, 5);
    double P[M * D];
    for (int i = 0; i < M; i++)
        draw(&r, 2, P + i * D);
    size_t rnd[K], mm[K], dopt[K];
    CHECK_INT_EQ(design_select(DESIGN_RANDOM, P, M, D, K, &r, rnd), 0);
    CHECK_INT_EQ(design_select(DESIGN_MAXIMIN, P, M, D, K, &r, mm), 0);
    CHECK_INT_EQ(design_select(DESIGN_DOPT, P, M, D, K, &r, dopt), 0);
    CHECK(min_pair(P, mm, K) > 2 * min_pair(P, rnd, K));
    for (int a = 0; a < K; a++)
        for (int b = a + 1; b < K; b++) {
            CHECK(mm[a] != mm[b]);
            CHECK(dopt[a] != dopt[b]);
        }
    CHECK_INT_EQ(design_select(DESIGN_MAXIMIN, P, M, D, M + 1, &r, mm), -EINVAL);
}

/* Rounds of active_next, then active_propose: the proposal comes close to the optimum, inside the
 * caps, and its interval holds the true objective. */
static void test_active_rounds(void)
{
    enum { N0 = 16, B = 8, ROUNDS = 4, N = N0 + B * ROUNDS };
    rng_t r;
    rng_seed(&r, 21);
    double X[N * D], y[N], prior[D], up[D];
    for (int j = 0; j < D; j++) {
        prior[j] = 1.0 / D;
        up[j] = 0.6;
    }
    noisy_runs(&r, 2, N0, X, y);
    active_params_t p;
    active_params_default(&p);
    p.pool = 2048;
    p.upper = up;
    p.seed = 9;
    char err[256] = "";
    size_t n = N0;
    for (int round = 0; round < ROUNDS; round++) {
        int rc = active_next(&p, X, y, n, D, prior, B, X + n * D, err, sizeof err);
        CHECK_MSG(rc == 0, "active_next: %s", err);
        if (rc)
            return;
        for (int i = 0; i < B; i++) {
            double s = 0, *w = X + (n + i) * D;
            for (int j = 0; j < D; j++) {
                CHECK(w[j] >= 0 && w[j] <= up[j] + 1e-12);
                s += w[j];
            }
            CHECK_NEAR(s, 1.0, 1e-9);
            y[n + i] = bowl(w) + 0.005 * rng_normal(&r);
        }
        n += B;
    }
    double w[D];
    active_proposal_t pr;
    int rc = active_propose(&p, X, y, n, D, prior, w, &pr, err, sizeof err);
    CHECK_MSG(rc == 0, "active_propose: %s", err);
    double truth = bowl(w);
    CHECK_MSG(truth - 3.0 < 0.04, "regret %g at L1 %g from the optimum, predicted %g sd %g",
              truth - 3.0, l1(w, W_STAR, D), pr.predicted, pr.sd);
    CHECK_MSG(pr.lo <= truth && truth <= pr.hi, "interval [%g, %g] misses %g", pr.lo, pr.hi, truth);
    CHECK(pr.model == SURROGATE_GP);
    /* same inputs, same answer */
    double w2[D];
    active_proposal_t pr2;
    active_propose(&p, X, y, n, D, prior, w2, &pr2, err, sizeof err);
    CHECK(memcmp(w, w2, sizeof w) == 0);
    /* bad input is refused with a message */
    y[0] = NAN;
    CHECK_INT_EQ(active_propose(&p, X, y, n, D, prior, w, &pr, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "run 0") != NULL);
}

/* The expected gain of one more run (active.h): active_step() gives active_propose()'s proposal
 * and active_next()'s round from one fit; on the bowl the gain falls as rounds of runs arrive;
 * with a run exactly at the optimum, runs around it and almost no noise it is below the default
 * gain_tol. */
static void test_active_gain(void)
{
    enum { N0 = 16, B = 8, ROUNDS = 6, N = N0 + B * ROUNDS };
    rng_t r;
    rng_seed(&r, 23);
    double X[N * D], y[N], prior[D], gain[ROUNDS + 1];
    flat_prior(prior);
    noisy_runs(&r, 2, N0, X, y);
    active_params_t p;
    active_params_default(&p);
    p.pool = 2048;
    p.seed = 4;
    char err[256] = "";
    size_t n = N0;
    for (int round = 0; round <= ROUNDS; round++) {
        double w[D];
        active_proposal_t pr;
        size_t k = round < ROUNDS ? B : 0;
        int rc = active_step(&p, X, y, n, D, prior, w, &pr, k, X + n * D, 100 + (uint64_t)round,
                             err, sizeof err);
        CHECK_MSG(rc == 0, "active_step: %s", err);
        if (rc)
            return;
        gain[round] = pr.expected_gain;
        CHECK(pr.expected_gain >= 0 && isfinite(pr.expected_gain));
        if (round == 0) {
            /* one fit, the same answers as the two calls */
            double w1[D], next[B * D];
            active_proposal_t p1;
            CHECK_INT_EQ(active_propose(&p, X, y, n, D, prior, w1, &p1, err, sizeof err), 0);
            CHECK(memcmp(w, w1, sizeof w) == 0 && p1.expected_gain == pr.expected_gain);
            active_params_t q = p;
            q.seed = 100;
            CHECK_INT_EQ(active_next(&q, X, y, n, D, prior, B, next, err, sizeof err), 0);
            CHECK(memcmp(next, X + n * D, sizeof next) == 0);
        }
        for (size_t i = 0; i < k; i++)
            y[n + i] = bowl(X + (n + i) * D) + 0.005 * rng_normal(&r);
        n += k;
    }
    fprintf(stderr, "  gain by runs:");
    for (int round = 0; round <= ROUNDS; round++)
        fprintf(stderr, " %d: %.2g", N0 + B * round, gain[round]);
    fprintf(stderr, "\n");
    CHECK_MSG(gain[ROUNDS] < gain[0] / 10, "gain %g at %d runs, %g at %d", gain[ROUNDS], N, gain[0],
              N0);
    CHECK_MSG(gain[ROUNDS] < gain[ROUNDS / 2], "gain %g at %d runs, %g at %d", gain[ROUNDS], N,
              gain[ROUNDS / 2], N0 + B * (ROUNDS / 2));

    /* A sharp optimum with a run exactly on it, 40 runs around, noise 1e-5 */
    enum { M = 41 };
    double Xs[M * D], ys[M], w[D];
    for (int i = 0; i < M; i++) {
        double *x = Xs + i * D;
        double a[D];
        for (int j = 0; j < D; j++)
            a[j] = (i < M / 2 ? 30 : 3) * W_STAR[j] + 0.01;
        if (i == 0)
            memcpy(x, W_STAR, sizeof W_STAR);
        else
            rng_dirichlet(&r, a, D, x);
        double s = 0;
        for (int j = 0; j < D; j++)
            s += (x[j] - W_STAR[j]) * (x[j] - W_STAR[j]);
        ys[i] = 3.0 + 0.5 * s + 1e-5 * rng_normal(&r);
    }
    active_proposal_t pr;
    p.trust = 0.2;
    CHECK_INT_EQ(active_propose(&p, Xs, ys, M, D, prior, w, &pr, err, sizeof err), 0);
    fprintf(stderr, "  sharp optimum: gain %.3g at L1 %.3g from it, sd %.3g, noise %.3g\n",
            pr.expected_gain, l1(w, W_STAR, D), pr.sd, pr.noise_sd);
    CHECK_MSG(pr.expected_gain < SPEC_GAIN_TOL, "gain %g with a run at the optimum",
              pr.expected_gain);
}

/* Pending runs (running, no result yet): GP-BUCB conditions the batch on them as on its own
 * picks, so the batch after pending {a1} is the rest of the batch that picked a1 first, and a
 * pending mixture is never picked again. */
static void test_active_pending(void)
{
    enum { N = 24 };
    rng_t r;
    rng_seed(&r, 31);
    double X[N * D], y[N], prior[D];
    flat_prior(prior);
    noisy_runs(&r, 2, N, X, y);
    active_params_t p;
    active_params_default(&p);
    p.pool = 2048;
    p.seed = 5;
    char err[256] = "";
    double a[3 * D], b[2 * D];
    CHECK_INT_EQ(active_next(&p, X, y, N, D, prior, 3, a, err, sizeof err), 0);
    p.pending = a;
    p.npending = 1;
    CHECK_INT_EQ(active_next(&p, X, y, N, D, prior, 2, b, err, sizeof err), 0);
    CHECK_MSG(l1(b, a + D, D) < 1e-9 && l1(b + D, a + 2 * D, D) < 1e-9,
              "with a1 pending: %g and %g (L1) from a2 and a3", l1(b, a + D, D),
              l1(b + D, a + 2 * D, D));
    CHECK(l1(b, a, D) > 1e-6 && l1(b + D, a, D) > 1e-6);
    /* two pending: the third pick of the batch */
    p.npending = 2;
    CHECK_INT_EQ(active_next(&p, X, y, N, D, prior, 1, b, err, sizeof err), 0);
    CHECK_MSG(l1(b, a + 2 * D, D) < 1e-9, "with a1, a2 pending: %g (L1) from a3",
              l1(b, a + 2 * D, D));
}

/* The fit pipeline has the search's models and reports an interval on the proposal's objective
 * (predicted -+ 1.96 x the out-of-fold RMSE). */
static void test_fitpipe_models(void)
{
    enum { N = 48 };
    rng_t r;
    rng_seed(&r, 13);
    double X[N * D], y[N], prior[D];
    flat_prior(prior);
    noisy_runs(&r, 3, N, X, y);
    const char *names[] = {"gp", "loglinear"};
    for (int m = 0; m < 2; m++) {
        fitpipe_settings_t st;
        fitpipe_settings_default(&st);
        st.model = fitpipe_model_find(names[m]);
        CHECK(st.model != NULL);
        if (!st.model)
            continue;
        st.candidates = 4000;
        st.top_k = 20;
        st.threads = 1;
        fitpipe_input_t in = {.n = N, .d = D, .X = X, .y = y, .prior = prior};
        fitpipe_record_t rec;
        char err[256] = "";
        int rc = fitpipe_run(&in, &st, &rec, NULL, err, sizeof err);
        CHECK_MSG(rc == 0, "%s: %s", names[m], err);
        if (rc)
            continue;
        CHECK_MSG(rec.predicted_lo < rec.predicted && rec.predicted < rec.predicted_hi,
                  "%s: [%g, %g] around %g", names[m], rec.predicted_lo, rec.predicted_hi,
                  rec.predicted);
        CHECK_NEAR(rec.predicted_hi - rec.predicted, 1.96 * sqrt(rec.cv.mse), 1e-9);
        char *js = fitpipe_record_metrics_json(&rec);
        CHECK(js && strstr(js, "\"predicted_interval\":[") != NULL);
        free(js);
        fitpipe_record_clear(&rec);
    }
}

int main(void)
{
    TEST_RUN(test_project);
    TEST_RUN(test_ridge_and_loglinear);
    TEST_RUN(test_gp);
    TEST_RUN(test_design);
    TEST_RUN(test_active_rounds);
    TEST_RUN(test_active_gain);
    TEST_RUN(test_active_pending);
    TEST_RUN(test_fitpipe_models);
    return test_finish();
}
