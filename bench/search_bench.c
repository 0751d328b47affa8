/*
 * search_bench: how good a mixture each search strategy finds for a given number of proxy runs,
 * scored by regret against an oracle whose optimum is known (bench/README.md, "Search").
 *
 * The paper oracle is a smooth function fitted to all 1,256 distinct 1M-proxy runs the RegMix
 * authors released (the 512 training runs, the 488 extra runs 513..1000 of
 * extra_initialcommit_*, the 256 test runs; objective: Pile-CC validation loss): the mean of an
 * ensemble of small neural networks (one tanh hidden layer on the raw weights), a family that no
 * strategy uses. A strategy observes the oracle plus Gaussian noise at the level the data shows
 * (the oracle's held-out residual) at the mixtures it chooses to run, proposes one mixture, and
 * its regret is the noise-free oracle at the proposal minus the oracle's minimum over the simplex
 * (found by 300k random candidates and exponentiated-gradient descent from the best 48).
 *
 * Every (strategy, budget, seed) is an independent task, run in parallel over OpenMP threads;
 * the result is a function of the arguments alone.
 *
 * The corpus oracle (`--oracle corpus`: real sweeps through a coordinator and workers on the
 * demo's corpus, each proposal scored by fresh proxy runs) is the script bench/search_corpus.py:
 * this program execs it with all its arguments.
 */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "active.h"
#include "config.h"
#include "design.h"
#include "fitdata.h"
#include "metrics.h"
#include "regress.h"
#include "rng.h"
#include "sampler.h"
#include "simulate.h"
#include "surrogate.h"

#ifndef REGMIX_PAPER_DEFAULT
#define REGMIX_PAPER_DEFAULT "data/regmix-paper"
#endif
#ifndef REGMIX_CORPUS_SCRIPT
#define REGMIX_CORPUS_SCRIPT "bench/search_corpus.py"
#endif

#define D_MAX 64

/* ---- the oracle: an ensemble of one-hidden-layer tanh networks ------------------------------ */

#define ORACLE_H    48
#define ORACLE_NETS 4
#define ORACLE_EPS  0.01

typedef struct oracle {
    size_t d;
    double ymean, ystd; /* targets standardised for training */
    int nets;
    size_t din; /* network inputs: w, then log(w + ORACLE_EPS) when logf */
    int logf;
    double W1[ORACLE_NETS][ORACLE_H * 2 * D_MAX]; /* (H, din) */
    double b1[ORACLE_NETS][ORACLE_H];
    double W2[ORACLE_NETS][ORACLE_H];
    double b2[ORACLE_NETS];
    double noise; /* observation noise sd */
    double fmin;  /* minimum over the simplex */
    double wmin[D_MAX];
} oracle_t;

/* The network inputs of a mixture w (d) into x (din). */
static void oracle_features(const struct oracle *o, const double *w, double *x);

/* Noise-free oracle at w (and its gradient into g when non-NULL). */
static double oracle_eval(const oracle_t *o, const double *w, double *g)
{
    size_t d = o->d, din = o->din;
    double x[2 * D_MAX], gx[2 * D_MAX];
    oracle_features(o, w, x);
    double f = 0;
    if (g)
        memset(gx, 0, din * sizeof *gx);
    for (int k = 0; k < o->nets; k++) {
        double out = o->b2[k];
        for (int h = 0; h < ORACLE_H; h++) {
            const double *row = o->W1[k] + h * din;
            double a = o->b1[k][h];
            for (size_t j = 0; j < din; j++)
                a += row[j] * x[j];
            double t = tanh(a);
            out += o->W2[k][h] * t;
            if (g) {
                double c = o->W2[k][h] * (1 - t * t) * o->ystd / o->nets;
                for (size_t j = 0; j < din; j++)
                    gx[j] += c * row[j];
            }
        }
        f += out;
    }
    if (g)
        for (size_t j = 0; j < d; j++)
            g[j] = gx[j] + (o->logf ? gx[d + j] / (w[j] + ORACLE_EPS) : 0);
    return o->ymean + o->ystd * f / o->nets;
}

static void oracle_features(const oracle_t *o, const double *w, double *x)
{
    for (size_t j = 0; j < o->d; j++) {
        x[j] = w[j];
        if (o->logf)
            x[o->d + j] = log(w[j] + ORACLE_EPS);
    }
}

/* Trains net k on (X, y standardised) with full-batch Adam and a light L2. */
static void oracle_train_net(oracle_t *o,
                             int k,
                             const double *X,
                             const double *ys,
                             size_t n,
                             int steps,
                             double wd,
                             uint64_t seed)
{
    size_t d = o->din, H = ORACLE_H;
    size_t np = H * d + H + H + 1;
    double *theta = calloc(np, sizeof *theta), *grad = calloc(np, sizeof *grad);
    double *m1 = calloc(np, sizeof *m1), *m2 = calloc(np, sizeof *m2);
    double *A = malloc(n * H * sizeof *A), *dA = malloc(n * H * sizeof *dA);
    double *W1 = theta, *b1 = theta + H * d, *W2 = b1 + H, *b2 = W2 + H;
    rng_t r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < H * d; i++)
        W1[i] = rng_normal(&r) * 0.5;
    for (size_t h = 0; h < H; h++) {
        b1[h] = rng_normal(&r) * 0.5;
        W2[h] = rng_normal(&r) / sqrt((double)H);
    }
    const double lr0 = 0.005, beta1 = 0.9, beta2 = 0.999;
    for (int s = 1; s <= steps; s++) {
        /* forward: A = tanh(X W1' + b1) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)H, (int)d, 1.0, X, (int)d,
                    W1, (int)d, 0.0, A, (int)H);
        for (size_t i = 0; i < n; i++)
            for (size_t h = 0; h < H; h++)
                A[i * H + h] = tanh(A[i * H + h] + b1[h]);
        memset(grad, 0, np * sizeof *grad);
        for (size_t i = 0; i < n; i++) {
            double out = *b2;
            for (size_t h = 0; h < H; h++)
                out += W2[h] * A[i * H + h];
            double e = 2 * (out - ys[i]) / (double)n;
            *(grad + H * d + 2 * H) += e;
            for (size_t h = 0; h < H; h++) {
                grad[H * d + H + h] += e * A[i * H + h];
                dA[i * H + h] = e * W2[h] * (1 - A[i * H + h] * A[i * H + h]);
                grad[H * d + h] += dA[i * H + h];
            }
        }
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)H, (int)d, (int)n, 1.0, dA,
                    (int)H, X, (int)d, 1.0, grad, (int)d);
        for (size_t i = 0; i < H * d + H; i++)
            grad[i] += wd * theta[i];
        for (size_t h = 0; h < H; h++)
            grad[H * d + H + h] += wd * W2[h];
        double lr = lr0 * (0.05 + 0.95 * 0.5 * (1 + cos(M_PI * s / steps)));
        double c1 = 1 - pow(beta1, s), c2 = 1 - pow(beta2, s);
        for (size_t i = 0; i < np; i++) {
            m1[i] = beta1 * m1[i] + (1 - beta1) * grad[i];
            m2[i] = beta2 * m2[i] + (1 - beta2) * grad[i] * grad[i];
            theta[i] -= lr * (m1[i] / c1) / (sqrt(m2[i] / c2) + 1e-8);
        }
    }
    memcpy(o->W1[k], W1, H * d * sizeof *W1);
    memcpy(o->b1[k], b1, H * sizeof *b1);
    memcpy(o->W2[k], W2, H * sizeof *W2);
    o->b2[k] = *b2;
    free(theta);
    free(grad);
    free(m1);
    free(m2);
    free(A);
    free(dA);
}

static void oracle_fit(oracle_t *o,
                       const double *X,
                       const double *y,
                       size_t n,
                       size_t d,
                       int steps,
                       double wd,
                       uint64_t seed)
{
    o->d = d;
    o->logf = 1;
    o->din = o->logf ? 2 * d : d;
    o->nets = ORACLE_NETS;
    double *F = malloc(n * o->din * sizeof *F);
    for (size_t i = 0; i < n; i++)
        oracle_features(o, X + i * d, F + i * o->din);
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++)
        m += y[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        v += (y[i] - m) * (y[i] - m);
    o->ymean = m;
    o->ystd = sqrt(v / (double)n);
    double *ys = malloc(n * sizeof *ys);
    for (size_t i = 0; i < n; i++)
        ys[i] = (y[i] - m) / o->ystd;
#pragma omp parallel for schedule(dynamic)
    for (int k = 0; k < ORACLE_NETS; k++)
        oracle_train_net(o, k, F, ys, n, steps, wd, seed * 1000 + (uint64_t)k);
    free(ys);
    free(F);
}

static void normalise(double *w, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++)
        s += w[j];
    for (size_t j = 0; j < d; j++)
        w[j] /= s;
}

/* The oracle's minimum: random candidates of three kinds, then exponentiated gradient (mirror
 * descent on the simplex) from the best 48, plus the data's own mixtures. */
static void
oracle_optimum(oracle_t *o, const double *prior, const double *upper, const double *X, size_t n)
{
    size_t d = o->d;
    enum { NC = 300000, TOP = 48 };
    double *cand = malloc((size_t)NC * d * sizeof *cand), *f = malloc(NC * sizeof *f);
    double q[D_MAX], qs = 0;
    for (size_t j = 0; j < d; j++)
        qs += (q[j] = sqrt(prior[j]));
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < NC / 1000; blk++) {
        rng_t r, root;
        rng_seed(&root, 777);
        rng_split(&root, (uint64_t)blk, &r);
        double a[D_MAX];
        for (int i = blk * 1000; i < (blk + 1) * 1000; i++) {
            double *w = cand + (size_t)i * d;
            int kind = i % 3;
            double s =
                    kind == 1 ? 0.1 * pow(50.0, rng_uniform(&r)) : 5 * pow(200.0, rng_uniform(&r));
            for (size_t j = 0; j < d; j++)
                a[j] = kind == 0 ? prior[j] : q[j] / qs * s;
            rng_dirichlet(&r, a, (int)d, w);
            active_project(w, upper, d);
            f[i] = oracle_eval(o, w, NULL);
        }
    }
    int top[TOP];
    for (int t = 0; t < TOP; t++) {
        int bi = -1;
        for (int i = 0; i < NC; i++) {
            int taken = 0;
            for (int u = 0; u < t; u++)
                taken |= top[u] == i;
            if (!taken && (bi < 0 || f[i] < f[bi]))
                bi = i;
        }
        top[t] = bi;
    }
    double best = INFINITY, bw[D_MAX];
    for (size_t i = 0; i < n; i++) {
        double v = oracle_eval(o, X + i * d, NULL);
        if (v < best) {
            best = v;
            memcpy(bw, X + i * d, d * sizeof *bw);
        }
    }
#pragma omp parallel for schedule(dynamic)
    for (int t = 0; t < TOP; t++) {
        double w[D_MAX], g[D_MAX], nw[D_MAX];
        memcpy(w, cand + (size_t)top[t] * d, d * sizeof *w);
        for (size_t j = 0; j < d; j++)
            w[j] = w[j] * 0.999 + 0.001 / (double)d;
        double fw = oracle_eval(o, w, g), eta = 1.0;
        for (int it = 0; it < 4000 && eta > 1e-9; it++) {
            for (size_t j = 0; j < d; j++)
                nw[j] = w[j] * exp(-eta * g[j]);
            normalise(nw, d);
            active_project(nw, upper, d);
            double ng[D_MAX];
            double fn = oracle_eval(o, nw, ng);
            if (fn < fw) {
                memcpy(w, nw, d * sizeof *w);
                memcpy(g, ng, d * sizeof *g);
                fw = fn;
                eta *= 1.2;
            } else {
                eta *= 0.5;
            }
        }
        /* weights the descent drove towards zero: try them at exactly zero */
        memcpy(nw, w, d * sizeof *w);
        for (size_t j = 0; j < d; j++)
            if (nw[j] < 1e-4)
                nw[j] = 0;
        normalise(nw, d);
        active_project(nw, upper, d);
        double fz = oracle_eval(o, nw, NULL);
        if (fz < fw) {
            fw = fz;
            memcpy(w, nw, d * sizeof *w);
        }
#pragma omp critical
        if (fw < best) {
            best = fw;
            memcpy(bw, w, d * sizeof *bw);
        }
    }
    o->fmin = best;
    memcpy(o->wmin, bw, d * sizeof *bw);
    free(cand);
    free(f);
}

/* The fitted oracle and its optimum are cached in a file keyed by the data and the settings. */
static int oracle_load(oracle_t *o, const char *path, uint64_t key)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    uint64_t k = 0;
    int ok = fread(&k, sizeof k, 1, f) == 1 && k == key && fread(o, sizeof *o, 1, f) == 1;
    fclose(f);
    return ok ? 0 : -EINVAL;
}

static void oracle_save(const oracle_t *o, const char *path, uint64_t key)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return;
    int ok = fwrite(&key, sizeof key, 1, f) == 1 && fwrite(o, sizeof *o, 1, f) == 1;
    if (fclose(f) == 0 && ok)
        rename(tmp, path);
    else
        remove(tmp);
}

/* ---- the data -------------------------------------------------------------------------------- */

typedef struct paper {
    size_t n, d;
    double *X, *y; /* all 1,256 runs: train, extra, test */
    size_t ntrain, nextra, ntest;
    char **domains;
    double prior[D_MAX];
} paper_t;

static int paper_load(const char *dir, paper_t *p)
{
    char a[1024], b[1024], err[512];
    fitdata_t *tr = NULL, *ex = NULL, *te = NULL;
    const char *t1 = "metric/the_pile_pile_cc_val_loss";
    snprintf(a, sizeof a, "%s/train_mixture_1m.csv", dir);
    snprintf(b, sizeof b, "%s/train_pile_loss_1m.csv", dir);
    int rc = fitdata_load(a, b, NULL, t1, NULL, 0, &tr, err, sizeof err);
    if (rc == 0) {
        snprintf(a, sizeof a, "%s/extra_initialcommit_mixture_1m_1000runs.csv", dir);
        snprintf(b, sizeof b, "%s/extra_initialcommit_pile_loss_1m_1000runs.csv", dir);
        rc = fitdata_load(a, b, NULL, "Pile-CC", NULL, 0, &ex, err, sizeof err);
    }
    if (rc == 0) {
        snprintf(a, sizeof a, "%s/test_mixture_1m.csv", dir);
        snprintf(b, sizeof b, "%s/test_pile_loss_1m.csv", dir);
        rc = fitdata_load(a, b, NULL, t1, (const char *const *)tr->domains, tr->d, &te, err,
                          sizeof err);
    }
    if (rc == 0) {
        snprintf(a, sizeof a, "%s/prior.csv", dir);
        rc = fitdata_load_prior(a, (const char *const *)tr->domains, tr->d, p->prior, err,
                                sizeof err);
    }
    if (rc < 0) {
        fprintf(stderr, "search_bench: %s\n", err);
        goto out;
    }
    if (ex->n != 1000 || ex->d != tr->d || tr->n != 512 || tr->d > D_MAX) {
        fprintf(stderr, "search_bench: %s: expected 512 training and 1000 extra runs\n", dir);
        rc = -EINVAL;
        goto out;
    }
    /* rows 1..512 of the extra export are the training runs (same column order, renamed) */
    for (size_t i = 0; i < 512; i++)
        if (fabs(ex->y[i] - tr->y[i]) > 1e-9) {
            fprintf(stderr, "search_bench: extra row %zu differs from the training run\n", i + 1);
            rc = -EINVAL;
            goto out;
        }
    p->d = tr->d;
    p->ntrain = 512;
    p->nextra = 488;
    p->ntest = te->n;
    p->n = p->ntrain + p->nextra + p->ntest;
    p->X = malloc(p->n * p->d * sizeof *p->X);
    p->y = malloc(p->n * sizeof *p->y);
    memcpy(p->X, tr->X, 512 * p->d * sizeof *p->X);
    memcpy(p->y, tr->y, 512 * sizeof *p->y);
    memcpy(p->X + 512 * p->d, ex->X + 512 * p->d, 488 * p->d * sizeof *p->X);
    memcpy(p->y + 512, ex->y + 512, 488 * sizeof *p->y);
    memcpy(p->X + 1000 * p->d, te->X, te->n * p->d * sizeof *p->X);
    memcpy(p->y + 1000, te->y, te->n * sizeof *p->y);
    p->domains = tr->domains;
    tr->domains = NULL;
    tr->d = 0;
out:
    fitdata_destroy(&tr);
    fitdata_destroy(&ex);
    fitdata_destroy(&te);
    return rc;
}

/* Run-to-run noise from near-duplicate mixtures (L1 < 0.02): sqrt of half the mean squared
 * difference of their objectives; *ret_pairs gets the number of pairs. */
static double paper_dup_noise(const paper_t *p, int *ret_pairs)
{
    double s2 = 0;
    int pairs = 0;
    for (size_t i = 0; i < p->n; i++)
        for (size_t j = i + 1; j < p->n; j++) {
            double l1 = 0;
            for (size_t k = 0; k < p->d && l1 < 0.02; k++)
                l1 += fabs(p->X[i * p->d + k] - p->X[j * p->d + k]);
            if (l1 < 0.02) {
                s2 += 0.5 * (p->y[i] - p->y[j]) * (p->y[i] - p->y[j]);
                pairs++;
            }
        }
    *ret_pairs = pairs;
    return pairs ? sqrt(s2 / pairs) : NAN;
}

/* ---- strategies ------------------------------------------------------------------------------ */

typedef struct bench {
    const oracle_t *o;
    const paper_t *p;
    size_t candidates;   /* regmix: simulated candidates */
    double upper[D_MAX]; /* the sweep's epoch bound: min(1, 15 prior) */
} bench_t;

typedef enum strat_kind {
    S_REGMIX,  /* sweep, gbdt, Dirichlet(prior) candidates, top-100 average */
    S_TOPK,    /* sweep, model, Dirichlet(prior) candidates, top-k average */
    S_ONESHOT, /* design, model, refined search for the proposal */
    S_ACTIVE,  /* design, then rounds of active_next, then active_propose */
} strat_kind_t;

typedef struct strategy {
    const char *name;
    strat_kind_t kind;
    surrogate_kind_t model;
    design_kind_t design;
    active_acq_t acq;
    int repeats;
    size_t topk_n, topk_k;
    const char *what;
} strategy_t;

static const strategy_t strategies[] = {
        {"regmix", S_REGMIX, SURROGATE_GBDT, DESIGN_RANDOM, 0, 0, 0, 100,
         "the paper: Dirichlet sweep, gbdt, Dirichlet(prior) candidates, top-100 average"},
        {"topk_quadratic", S_TOPK, SURROGATE_QUADRATIC, DESIGN_RANDOM, 0, 0, 100000, 10000,
         "the demo's one-shot: sweep, quadratic, top 10% of 100k candidates"},
        {"random_linear", S_ONESHOT, SURROGATE_LINEAR, DESIGN_RANDOM, 0, 0, 0, 0,
         "sweep, linear, refined search"},
        {"random_ridge", S_ONESHOT, SURROGATE_RIDGE, DESIGN_RANDOM, 0, 0, 0, 0,
         "sweep, ridge (GCV), refined search"},
        {"random_loglinear", S_ONESHOT, SURROGATE_LOGLINEAR, DESIGN_RANDOM, 0, 0, 0, 0,
         "sweep, log-linear, refined search"},
        {"random_quadratic", S_ONESHOT, SURROGATE_QUADRATIC, DESIGN_RANDOM, 0, 0, 0, 0,
         "sweep, quadratic (GCV), refined search"},
        {"random_gbdt", S_ONESHOT, SURROGATE_GBDT, DESIGN_RANDOM, 0, 0, 0, 0,
         "sweep, gbdt, refined search"},
        {"random_gp", S_ONESHOT, SURROGATE_GP, DESIGN_RANDOM, 0, 0, 0, 0,
         "sweep, GP, refined search"},
        {"random_cv", S_ONESHOT, SURROGATE_CV, DESIGN_RANDOM, 0, 0, 0, 0,
         "sweep, model chosen by 5-fold CV, refined search"},
        {"maximin_gp", S_ONESHOT, SURROGATE_GP, DESIGN_MAXIMIN, 0, 0, 0, 0,
         "space-filling (maximin) design from the sweep's pool, GP, refined search"},
        {"dopt_gp", S_ONESHOT, SURROGATE_GP, DESIGN_DOPT, 0, 0, 0, 0,
         "D-optimal design from the sweep's pool, GP, refined search"},
        {"active", S_ACTIVE, SURROGATE_GP, DESIGN_MAXIMIN, ACTIVE_LCB, 0, 0, 0,
         "default: maximin first quarter, then GP-BUCB rounds, GP proposal"},
        {"active_ei", S_ACTIVE, SURROGATE_GP, DESIGN_MAXIMIN, ACTIVE_EI, 0, 0, 0,
         "rounds by expected improvement (GP)"},
        {"active_ts", S_ACTIVE, SURROGATE_GP, DESIGN_MAXIMIN, ACTIVE_THOMPSON, 0, 0, 0,
         "rounds by Thompson sampling over bootstrap GP refits"},
        {"active_rep", S_ACTIVE, SURROGATE_GP, DESIGN_MAXIMIN, ACTIVE_LCB, 2, 0, 0,
         "GP-BUCB rounds, 2 repeats of the best runs per batch"},
        {"active_greedy", S_ACTIVE, SURROGATE_GP, DESIGN_MAXIMIN, ACTIVE_GREEDY, 0, 0, 0,
         "rounds of the lowest GP means (no exploration)"},
        {"active_cv", S_ACTIVE, SURROGATE_CV, DESIGN_MAXIMIN, ACTIVE_THOMPSON, 0, 0, 0,
         "rounds by Thompson sampling over bootstrap refits of the CV-chosen model"},
        {"active_loglinear", S_ACTIVE, SURROGATE_LOGLINEAR, DESIGN_MAXIMIN, ACTIVE_THOMPSON, 0, 0,
         0, "rounds by Thompson sampling over bootstrap log-linear refits"},
};
#define NSTRAT (sizeof strategies / sizeof strategies[0])

/* The sweep's first `runs` mixtures (docs/method.md defaults) for this seed. */
static int sweep(const bench_t *b, int runs, uint64_t seed, double *out)
{
    sampler_params_t sp = {0};
    sp.k = (int)b->p->d;
    for (int j = 0; j < sp.k; j++)
        sp.tokens[j] = b->p->prior[j];
    sp.runs = runs;
    sp.seed = seed;
    sp.temperature = 0.5;
    sp.strength_min = 0.1;
    sp.strength_max = 5.0;
    sp.strength_steps = 15;
    sp.max_epochs = 15;
    sp.target_tokens = 0;
    sp.min_weight = 2e-4;
    char err[256];
    return sampler_sample(&sp, out, NULL, err, sizeof err);
}

static void observe(const bench_t *b, const double *X, size_t n, rng_t *r, double *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = oracle_eval(b->o, X + i * b->p->d, NULL) + b->o->noise * rng_normal(r);
}

/* Runs one strategy at one budget and seed; returns the regret (NAN on failure). For strategies
 * that propose with an interval (active_propose), *ret_cover is the probability that one noisy
 * run at the proposal lands in its 95 % interval (the oracle's value and noise are known), else
 * NAN. */
static double run_one(const bench_t *b,
                      const strategy_t *s,
                      int budget,
                      uint64_t seed,
                      double *ret_cover,
                      char *err,
                      size_t errlen)
{
    double lo = NAN, hi = NAN;
    *ret_cover = NAN;
    size_t d = b->p->d, n = (size_t)budget;
    double *X = malloc(n * d * sizeof *X), *y = malloc(n * sizeof *y), w[D_MAX];
    double regret = NAN;
    rng_t noise;
    rng_seed(&noise, seed * 7919 + 17);
    int rc = 0;
    size_t first = n;
    if (s->kind == S_ACTIVE) {
        first = n / 4 < 8 ? 8 : n / 4;
        if (first > n)
            first = n;
    }
    if (s->design == DESIGN_RANDOM) {
        rc = sweep(b, (int)first, seed, X);
    } else {
        size_t m = first * 8 < 512 ? 512 : first * 8;
        double *pool = malloc(m * d * sizeof *pool);
        size_t *idx = malloc(first * sizeof *idx);
        rng_t r;
        rng_seed(&r, seed);
        rc = sweep(b, (int)m, seed, pool);
        if (rc == 0)
            rc = design_select(s->design, pool, m, d, first, &r, idx);
        for (size_t i = 0; rc == 0 && i < first; i++)
            memcpy(X + i * d, pool + idx[i] * d, d * sizeof *X);
        free(pool);
        free(idx);
    }
    if (rc < 0) {
        snprintf(err, errlen, "sweep/design failed (%d)", rc);
        goto out;
    }
    observe(b, X, first, &noise, y);
    active_params_t ap;
    active_params_default(&ap);
    ap.model = s->model;
    ap.acq = s->acq;
    ap.repeats = s->repeats;
    ap.seed = seed;
    ap.upper = b->upper;
    if (s->kind == S_ACTIVE) {
        size_t have = first, left = n - first;
        int rounds = left >= 12 ? 6 : (int)(left / 2 > 0 ? left / 2 : 1);
        for (int r = 0; r < rounds && left > 0; r++) {
            size_t k = (left + (size_t)(rounds - r) - 1) / (size_t)(rounds - r);
            ap.seed = seed * 101 + (uint64_t)r;
            rc = active_next(&ap, X, y, have, d, b->p->prior, k, X + have * d, err, errlen);
            if (rc < 0)
                goto out;
            observe(b, X + have * d, k, &noise, y + have);
            have += k;
            left -= k;
        }
        ap.seed = seed;
    }
    if (s->kind == S_REGMIX) {
        regress_params_t rp;
        regress_params_default(&rp);
        rp.seed = seed;
        rp.threads = 1;
        double cap = floor((double)n / 16.0);
        rp.min_child_weight = fmin(rp.min_child_weight, cap < 1 ? 1 : cap);
        regress_t *m = NULL;
        rc = regress_fit(REGRESS_GBDT, &rp, X, y, n, d, &m, err, errlen);
        if (rc < 0)
            goto out;
        simulate_params_t sp;
        simulate_params_default(&sp);
        sp.candidates = b->candidates;
        sp.top_k = 100;
        sp.seed = seed;
        sp.threads = 1;
        simulate_result_t sr;
        rc = simulate_run(m, b->p->prior, d, &sp, w, &sr, err, errlen);
        regress_destroy(&m);
    } else if (s->kind == S_TOPK) {
        surrogate_t *m = NULL;
        rc = surrogate_fit(s->model, X, y, n, d, seed, &m, err, errlen);
        if (rc == 0)
            rc = active_topk(m, b->p->prior, d, s->topk_n, s->topk_k, seed, w);
        surrogate_destroy(&m);
    } else {
        active_proposal_t pr;
        if (s->model != SURROGATE_GP)
            ap.kappa_propose = 0;
        rc = active_propose(&ap, X, y, n, d, b->p->prior, w, &pr, err, errlen);
        lo = pr.lo;
        hi = pr.hi;
    }
    if (rc < 0)
        goto out;
    /* every proposal is scored under the same bound (regmix's top-k average may leave it) */
    active_project(w, b->upper, d);
    double f = oracle_eval(b->o, w, NULL);
    regret = f - b->o->fmin;
    if (isfinite(lo) && isfinite(hi) && b->o->noise > 0)
        *ret_cover = 0.5 * (erf((hi - f) / (b->o->noise * M_SQRT2)) -
                            erf((lo - f) / (b->o->noise * M_SQRT2)));
out:
    free(X);
    free(y);
    return regret;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fputs("usage: search_bench --oracle paper [options]\n"
          "       search_bench --oracle corpus [options]   (bench/search_corpus.py)\n"
          "\n"
          "Score mixture-search strategies by regret (the oracle's true objective at the proposed\n"
          "mixture minus its minimum) against the number of proxy runs, over seeds.\n"
          "\n"
          "  --oracle NAME        paper: a network ensemble fitted to the RegMix authors' 1,256\n"
          "                       released 1M-proxy runs (Pile-CC loss), with their noise level\n"
          "                       corpus: real sweeps through a coordinator and workers on the\n"
          "                       demo's corpus, proposals scored by fresh proxy runs (runs\n"
          "                       bench/search_corpus.py; `--oracle corpus --help` for its "
          "options)\n"
          "  --budgets LIST       proxy runs per search, comma-separated (default "
          "16,32,64,128,256,512)\n"
          "  --seeds N            seeds per (strategy, budget) (default 10)\n"
          "  --seed S             first seed (default 1)\n"
          "  --strategies LIST    comma-separated names, or 'all' (default: regmix,\n"
          "                       topk_quadratic, random_loglinear, random_gp, maximin_gp,\n"
          "                       active, active_ei, active_ts, active_rep; --list shows all)\n"
          "  --candidates N       regmix's simulated candidates (default 200000; the paper\n"
          "                       draws 1,000,000: same top-100 average, 5x the time)\n"
          "  --noise SD           observation noise (default: the oracle's held-out residual)\n"
          "  --data DIR           the released data (default $REGMIX_PAPER_DIR or the source "
          "tree)\n"
          "  --threads T          parallel tasks (default: all cores)\n"
          "  --cache FILE         the fitted oracle and its optimum are kept here (default:\n"
          "                       paper-oracle.cache beside the program; refitted when the data\n"
          "                       or the settings change)\n"
          "  --no-cache           always refit the oracle (~30 s of CPU)\n"
          "  --json               print one JSON object:\n"
          "                       {\"oracle\": \"paper\", \"strategies\": {NAME: {\"BUDGET\":\n"
          "                        {\"regret\": MEAN, \"ci95\": [LO, HI]}}}, ...}\n"
          "  --check              fit the oracle on the 1,000 train+extra runs, score the 256 "
          "test\n"
          "                       runs, and print its figures (no strategies)\n"
          "  --list               list the strategies and exit\n"
          "  -v, --verbose        progress on stderr\n"
          "  -h, --help           this help\n"
          "  --version            the version\n"
          "\n"
          "Example:\n"
          "  search_bench --oracle paper --budgets 64,128,256,512 --seeds 10 --seed 1 --json\n",
          f);
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    char *dup = strdup(s), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v < 4 || v > 100000 || n >= max) {
            free(dup);
            return -1;
        }
        out[n++] = (int)v;
    }
    free(dup);
    return n;
}

/* Two-sided 97.5 % Student t quantile for df degrees of freedom. */
static double t975(int df)
{
    static const double t[] = {0,     12.706, 4.303, 3.182, 2.776, 2.571, 2.447,
                               2.365, 2.306,  2.262, 2.228, 2.201, 2.179, 2.160,
                               2.145, 2.131,  2.120, 2.110, 2.101, 2.093, 2.086};
    if (df < 1)
        return NAN;
    return df <= 20 ? t[df] : df <= 30 ? 2.042 : df <= 60 ? 2.000 : 1.96;
}

/* --oracle corpus: exec the script with every argument, and the build folder this program is in
 * as REGMIX_BUILD_DIR when that is unset. Returns only on failure (exit status 1). */
static int run_corpus_oracle(int argc, char **argv)
{
    const char *script = getenv("REGMIX_SEARCH_CORPUS");
    if (!script || !*script)
        script = REGMIX_CORPUS_SCRIPT;
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0 && !getenv("REGMIX_BUILD_DIR")) {
        exe[len] = '\0';
        for (int up = 0; up < 2; up++) { /* BUILD/bench/search_bench -> BUILD */
            char *slash = strrchr(exe, '/');
            if (slash)
                *slash = '\0';
        }
        setenv("REGMIX_BUILD_DIR", exe, 1);
    }
    char **av = calloc((size_t)argc + 2, sizeof *av);
    if (!av) {
        fprintf(stderr, "search_bench: out of memory\n");
        return 1;
    }
    const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    av[0] = (char *)py;
    av[1] = (char *)script;
    for (int i = 1; i < argc; i++)
        av[i + 1] = argv[i];
    execvp(py, av);
    fprintf(stderr, "search_bench: --oracle corpus: cannot run %s %s: %s\n", py, script,
            strerror(errno));
    free(av);
    return 1;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if ((strcmp(argv[i], "--oracle") == 0 && i + 1 < argc &&
             strcmp(argv[i + 1], "corpus") == 0) ||
            strcmp(argv[i], "--oracle=corpus") == 0)
            return run_corpus_oracle(argc, argv);
    enum {
        O_ORACLE = 256,
        O_BUDGETS,
        O_SEEDS,
        O_SEED,
        O_STRATS,
        O_CAND,
        O_NOISE,
        O_DATA,
        O_THREADS,
        O_JSON,
        O_CHECK,
        O_LIST,
        O_VERSION,
        O_CACHE,
        O_NOCACHE
    };
    static const struct option opts[] = {
            {"oracle", required_argument, NULL, O_ORACLE},
            {"budgets", required_argument, NULL, O_BUDGETS},
            {"seeds", required_argument, NULL, O_SEEDS},
            {"seed", required_argument, NULL, O_SEED},
            {"strategies", required_argument, NULL, O_STRATS},
            {"candidates", required_argument, NULL, O_CAND},
            {"noise", required_argument, NULL, O_NOISE},
            {"data", required_argument, NULL, O_DATA},
            {"threads", required_argument, NULL, O_THREADS},
            {"json", no_argument, NULL, O_JSON},
            {"check", no_argument, NULL, O_CHECK},
            {"list", no_argument, NULL, O_LIST},
            {"cache", required_argument, NULL, O_CACHE},
            {"no-cache", no_argument, NULL, O_NOCACHE},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, O_VERSION},
            {0},
    };
    const char *oracle_name = NULL, *strats = NULL;
    const char *dir =
            getenv("REGMIX_PAPER_DIR") ? getenv("REGMIX_PAPER_DIR") : REGMIX_PAPER_DEFAULT;
    int budgets[32] = {16, 32, 64, 128, 256, 512}, nb = 6, seeds = 10, json = 0, check = 0,
        verbose = 0, threads = 0;
    long long seed0 = 1;
    double noise = NAN;
    static char cache_buf[4096];
    const char *cache = cache_buf;
    {
        /* default cache: beside the program */
        ssize_t len = readlink("/proc/self/exe", cache_buf, sizeof cache_buf - 32);
        if (len > 0) {
            cache_buf[len] = '\0';
            char *slash = strrchr(cache_buf, '/');
            snprintf(slash ? slash + 1 : cache_buf, 32, "paper-oracle.cache");
        } else {
            snprintf(cache_buf, sizeof cache_buf, "paper-oracle.cache");
        }
    }
    size_t candidates = 200000;
    int c;
    while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case O_ORACLE:
            oracle_name = optarg;
            break;
        case O_BUDGETS:
            nb = parse_list(optarg, budgets, 32);
            if (nb <= 0) {
                fprintf(stderr, "search_bench: --budgets: want integers 4..100000, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case O_SEEDS:
            seeds = (int)strtol(optarg, &end, 10);
            if (*end || seeds < 1 || seeds > 10000) {
                fprintf(stderr, "search_bench: --seeds: want 1..10000, got '%s'\n", optarg);
                return 2;
            }
            break;
        case O_SEED:
            seed0 = strtoll(optarg, &end, 10);
            if (*end || seed0 < 0) {
                fprintf(stderr, "search_bench: --seed: want a non-negative integer\n");
                return 2;
            }
            break;
        case O_STRATS:
            strats = optarg;
            break;
        case O_CAND:
            candidates = (size_t)strtoull(optarg, &end, 10);
            if (*end || candidates < 100) {
                fprintf(stderr, "search_bench: --candidates: want >= 100\n");
                return 2;
            }
            break;
        case O_NOISE:
            noise = strtod(optarg, &end);
            if (*end || !(noise >= 0)) {
                fprintf(stderr, "search_bench: --noise: want a number >= 0\n");
                return 2;
            }
            break;
        case O_DATA:
            dir = optarg;
            break;
        case O_THREADS:
            threads = (int)strtol(optarg, &end, 10);
            if (*end || threads < 1) {
                fprintf(stderr, "search_bench: --threads: want >= 1\n");
                return 2;
            }
            break;
        case O_JSON:
            json = 1;
            break;
        case O_CACHE:
            cache = optarg;
            break;
        case O_NOCACHE:
            cache = NULL;
            break;
        case O_CHECK:
            check = 1;
            break;
        case O_LIST:
            for (size_t i = 0; i < NSTRAT; i++)
                printf("%-18s %s\n", strategies[i].name, strategies[i].what);
            return 0;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case O_VERSION:
            printf("search_bench %s\n", REGMIX_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "search_bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!oracle_name) {
        fprintf(stderr, "search_bench: --oracle is required (paper or corpus)\n");
        return 2;
    }
    if (strcmp(oracle_name, "paper") != 0) {
        fprintf(stderr, "search_bench: --oracle: unknown oracle '%s' (paper, corpus)\n",
                oracle_name);
        return 2;
    }
    int chosen[NSTRAT], nchosen = 0;
    if (strats && strcmp(strats, "all") == 0) {
        for (size_t i = 0; i < NSTRAT; i++)
            chosen[nchosen++] = (int)i;
    } else if (strats) {
        char *dup = strdup(strats), *save = NULL;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            size_t i = 0;
            while (i < NSTRAT && strcmp(strategies[i].name, t) != 0)
                i++;
            if (i == NSTRAT) {
                fprintf(stderr, "search_bench: --strategies: unknown strategy '%s' (--list)\n", t);
                free(dup);
                return 2;
            }
            if (nchosen < (int)NSTRAT)
                chosen[nchosen++] = (int)i;
        }
        free(dup);
    } else {
        static const char *const core[] = {"regmix",    "topk_quadratic", "random_loglinear",
                                           "random_gp", "maximin_gp",     "active",
                                           "active_ei", "active_ts",      "active_rep"};
        for (size_t i = 0; i < NSTRAT; i++)
            for (size_t c2 = 0; c2 < sizeof core / sizeof core[0]; c2++)
                if (strcmp(strategies[i].name, core[c2]) == 0)
                    chosen[nchosen++] = (int)i;
    }
    if (threads > 0)
        omp_set_num_threads(threads);
    openblas_set_num_threads(1);

    paper_t p = {0};
    if (paper_load(dir, &p) < 0)
        return 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    static oracle_t o;
    const int steps = 6000;
    const double wd = 1e-3;
    if (check) {
        /* oracle quality on the 256 test runs when fitted on the 1,000 others */
        oracle_fit(&o, p.X, p.y, 1000, p.d, steps, wd, 1);
        size_t nt = p.ntest;
        double *pred = malloc(nt * sizeof *pred);
        for (size_t i = 0; i < nt; i++)
            pred[i] = oracle_eval(&o, p.X + (1000 + i) * p.d, NULL);
        double mse = metrics_mse(p.y + 1000, pred, nt);
        printf("oracle fitted on 1000 runs, scored on the 256 test runs: spearman %.4f rmse "
               "%.4f r2 %.4f\n",
               metrics_spearman(p.y + 1000, pred, nt), sqrt(mse), metrics_r2(p.y + 1000, pred, nt));
        char err[256];
        regress_t *g = NULL;
        regress_params_t rp;
        regress_params_default(&rp);
        if (regress_fit(REGRESS_GBDT, &rp, p.X, p.y, 1000, p.d, &g, err, sizeof err) == 0) {
            regress_predict(g, p.X + 1000 * p.d, nt, pred);
            printf("gbdt (paper settings) on the same split: spearman %.4f rmse %.4f\n",
                   metrics_spearman(p.y + 1000, pred, nt), sqrt(metrics_mse(p.y + 1000, pred, nt)));
            regress_destroy(&g);
        }
        surrogate_t *s = NULL;
        for (int k = 0; k < SURROGATE_CV; k++) {
            if (surrogate_fit((surrogate_kind_t)k, p.X, p.y, 1000, p.d, 1, &s, err, sizeof err) ==
                0) {
                surrogate_predict(s, p.X + 1000 * p.d, nt, pred, NULL);
                printf("%-10s on the same split: spearman %.4f rmse %.4f\n",
                       surrogate_kind_name((surrogate_kind_t)k),
                       metrics_spearman(p.y + 1000, pred, nt),
                       sqrt(metrics_mse(p.y + 1000, pred, nt)));
                surrogate_destroy(&s);
            } else {
                printf("%s: %s\n", surrogate_kind_name((surrogate_kind_t)k), err);
            }
        }
        int pairs;
        double dn = paper_dup_noise(&p, &pairs);
        printf("near-duplicate pairs (L1 < 0.02): %d, noise sd from them %.4f\n", pairs, dn);
        double m = 0, v = 0;
        for (size_t i = 0; i < p.n; i++)
            m += p.y[i];
        m /= (double)p.n;
        for (size_t i = 0; i < p.n; i++)
            v += (p.y[i] - m) * (p.y[i] - m);
        printf("objective over the 1,256 runs: mean %.4f sd %.4f min %.4f\n", m,
               sqrt(v / (double)p.n), p.y[0]);
        free(pred);
        return 0;
    }
    uint64_t key = 0x0c0ffee5eedULL ^ ((uint64_t)steps << 32) ^ (uint64_t)(wd * 1e9);
    for (size_t i = 0; i < p.n * p.d; i++)
        key = key * 1099511628211ULL ^ (uint64_t)llround(p.X[i] * 1e9);
    for (size_t i = 0; i < p.n; i++)
        key = key * 1099511628211ULL ^ (uint64_t)llround(p.y[i] * 1e9);
    int cached = cache && oracle_load(&o, cache, key) == 0;
    if (!cached)
        oracle_fit(&o, p.X, p.y, p.n, p.d, steps, wd, 1);
    if (!cached) {
        /* noise: the in-sample residual of the ensemble, scaled up for its degrees of freedom is
         * not known for a network; use the held-out figure from --check unless given */
        double *pred = malloc(p.n * sizeof *pred);
        for (size_t i = 0; i < p.n; i++)
            pred[i] = oracle_eval(&o, p.X + i * p.d, NULL);
        double rmse = sqrt(metrics_mse(p.y, pred, p.n));
        if (verbose)
            fprintf(stderr, "oracle: in-sample rmse %.4f spearman %.4f\n", rmse,
                    metrics_spearman(p.y, pred, p.n));
        int pairs;
        double dn = paper_dup_noise(&p, &pairs);
        o.noise = isnan(noise) ? dn : noise;
        free(pred);
    }
    bench_t b = {.o = &o, .p = &p, .candidates = candidates};
    for (size_t j = 0; j < p.d; j++)
        b.upper[j] = fmin(1.0, 15.0 * p.prior[j]);
    if (!cache || oracle_load(&o, cache, key) < 0) {
        oracle_optimum(&o, p.prior, b.upper, p.X, p.n);
        if (cache)
            oracle_save(&o, cache, key);
    }
    if (!isnan(noise))
        o.noise = noise;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double best_run = INFINITY;
    for (size_t i = 0; i < p.n; i++)
        best_run = fmin(best_run, oracle_eval(&o, p.X + i * p.d, NULL));
    if (verbose) {
        fprintf(stderr, "oracle: fitted in %.1f s, noise sd %.4f, minimum %.4f (best run %.4f) at",
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), o.noise,
                o.fmin, best_run);
        for (size_t j = 0; j < p.d; j++)
            if (o.wmin[j] > 0.005)
                fprintf(stderr, " %s=%.3f", p.domains[j], o.wmin[j]);
        fprintf(stderr, "\n");
    }

    size_t ntask = (size_t)nchosen * (size_t)nb * (size_t)seeds;
    double *reg = malloc(ntask * sizeof *reg);
    double *cover = malloc(ntask * sizeof *cover);
    double *secs = calloc((size_t)nchosen * (size_t)nb, sizeof *secs);
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t t = 0; t < ntask; t++) {
        /* largest budgets first: better load balance */
        size_t si = t % (size_t)nchosen, rest = t / (size_t)nchosen;
        size_t bi = (size_t)nb - 1 - rest % (size_t)nb, k = rest / (size_t)nb;
        char err[256] = "";
        struct timespec a, z;
        clock_gettime(CLOCK_MONOTONIC, &a);
        double cv = NAN;
        double r = run_one(&b, &strategies[chosen[si]], budgets[bi], (uint64_t)seed0 + k, &cv, err,
                           sizeof err);
        cover[(si * (size_t)nb + bi) * (size_t)seeds + k] = cv;
        clock_gettime(CLOCK_MONOTONIC, &z);
        reg[(si * (size_t)nb + bi) * (size_t)seeds + k] = r;
#pragma omp atomic
        secs[si * (size_t)nb + bi] +=
                (double)(z.tv_sec - a.tv_sec) + 1e-9 * (double)(z.tv_nsec - a.tv_nsec);
        if (isnan(r)) {
#pragma omp critical
            {
                fprintf(stderr, "search_bench: %s at %d runs, seed %llu: %s\n",
                        strategies[chosen[si]].name, budgets[bi], (unsigned long long)seed0 + k,
                        err);
                failed = 1;
            }
        } else if (verbose) {
#pragma omp critical
            fprintf(stderr, "%s %d seed %llu regret %.4f\n", strategies[chosen[si]].name,
                    budgets[bi], (unsigned long long)seed0 + k, r);
        }
    }
    json_t *root = json_object(), *js = json_object();
    json_object_set_new(root, "oracle", json_string("paper"));
    if (!json)
        printf("oracle paper: noise sd %.4f, minimum %.4f, %d seeds from %lld; regret mean "
               "[95%% CI]\n%-18s",
               o.noise, o.fmin, seeds, seed0, "strategy");
    if (!json) {
        for (int bi = 0; bi < nb; bi++)
            printf(" %24d", budgets[bi]);
        printf("\n");
    }
    for (int si = 0; si < nchosen; si++) {
        json_t *jb = json_object();
        if (!json)
            printf("%-18s", strategies[chosen[si]].name);
        for (int bi = 0; bi < nb; bi++) {
            const double *r = reg + ((size_t)si * (size_t)nb + (size_t)bi) * (size_t)seeds;
            double m = 0, v = 0;
            int cnt = 0;
            for (int k = 0; k < seeds; k++)
                if (!isnan(r[k])) {
                    m += r[k];
                    cnt++;
                }
            m = cnt ? m / cnt : NAN;
            for (int k = 0; k < seeds; k++)
                if (!isnan(r[k]))
                    v += (r[k] - m) * (r[k] - m);
            double half = cnt > 1 ? t975(cnt - 1) * sqrt(v / (cnt - 1)) / sqrt((double)cnt) : NAN;
            json_t *e = json_object();
            json_object_set_new(e, "regret", isfinite(m) ? json_real(m) : json_null());
            json_t *ci = json_array();
            json_array_append_new(ci, isfinite(half) ? json_real(m - half) : json_null());
            json_array_append_new(ci, isfinite(half) ? json_real(m + half) : json_null());
            json_object_set_new(e, "ci95", ci);
            /* the proposal's 95 % interval: the mean probability that a run there lands in it */
            const double *cv = cover + ((size_t)si * (size_t)nb + (size_t)bi) * (size_t)seeds;
            double cm = 0;
            int cn = 0;
            for (int k = 0; k < seeds; k++)
                if (isfinite(cv[k])) {
                    cm += cv[k];
                    cn++;
                }
            if (cn)
                json_object_set_new(e, "coverage", json_real(cm / cn));
            char bkey[16];
            snprintf(bkey, sizeof bkey, "%d", budgets[bi]);
            json_object_set_new(jb, bkey, e);
            if (!json)
                printf(" %8.4f [%6.4f,%6.4f]", m, m - half, m + half);
        }
        if (!json)
            printf("\n");
        json_object_set_new(js, strategies[chosen[si]].name, jb);
    }
    json_object_set_new(root, "strategies", js);
    json_object_set_new(root, "seeds", json_integer(seeds));
    json_object_set_new(root, "seed", json_integer(seed0));
    json_object_set_new(root, "noise_sd", json_real(o.noise));
    json_object_set_new(root, "optimum", json_real(o.fmin));
    json_object_set_new(root, "regmix_candidates", json_integer((json_int_t)candidates));
    if (json) {
        char *txt = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(6));
        puts(txt);
        free(txt);
    } else {
        printf("cpu seconds per run of a strategy at each budget:\n");
        for (int si = 0; si < nchosen; si++) {
            printf("%-18s", strategies[chosen[si]].name);
            for (int bi = 0; bi < nb; bi++)
                printf(" %8.2f", secs[si * nb + bi] / seeds);
            printf("\n");
        }
    }
    json_decref(root);
    free(reg);
    free(cover);
    free(secs);
    free(p.X);
    free(p.y);
    return failed ? 1 : 0;
}
