/* active: next mixtures to run and the proposal, from a surrogate and a refined pool (active.h). */
#include "active.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "rng.h"

#define ACTIVE_BOOT    8  /* bootstrap refits for models without their own uncertainty */
#define ACTIVE_CENTRES 12 /* candidates refined around per round */
#define ACTIVE_MOVES   48 /* local moves per centre per round */
#define ACTIVE_MAX_D   64
#define ACTIVE_SD_MIN  1024 /* candidates that always get a GP sd */
#define ACTIVE_SD_WORK 4e8  /* n^2 * candidates worth of GP sd per scoring */

void active_params_default(active_params_t *p)
{
    *p = (active_params_t){
            .model = SURROGATE_GP,
            .acq = ACTIVE_LCB,
            .kappa = 2.0,
            .kappa_propose = 1.0,
            .pool = 8192,
            .refine = 3,
            .repeats = 0,
            .seed = 42,
            .trust = 0.2,
    };
}

int active_acq_parse(const char *name, active_acq_t *ret)
{
    static const char *const names[] = {"lcb", "ei", "thompson", "greedy"};
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *ret = (active_acq_t)i;
            return 0;
        }
    return -EINVAL;
}

/* A fitted model with an uncertainty: the GP's own, or the spread of bootstrap refits. */
typedef struct active__model {
    surrogate_t *main;
    surrogate_t *boot[ACTIVE_BOOT];
    int nboot;
    double noise_sd;
} active__model_t;

static void active__model_clear(active__model_t *m)
{
    surrogate_destroy(&m->main);
    for (int b = 0; b < m->nboot; b++)
        surrogate_destroy(&m->boot[b]);
    m->nboot = 0;
}

/* Fits one surrogate to the bootstrap resample `stream` of the runs. */
static int active__fit_boot(surrogate_kind_t kind,
                            const double *X,
                            const double *y,
                            size_t n,
                            size_t d,
                            uint64_t seed,
                            uint64_t stream,
                            surrogate_t **ret,
                            char *err,
                            size_t errlen)
{
    double *Xb = malloc(n * d * sizeof *Xb), *yb = malloc(n * sizeof *yb);
    if (!Xb || !yb) {
        free(Xb);
        free(yb);
        return -ENOMEM;
    }
    rng_t root, r;
    rng_seed(&root, seed ^ 0x9e3779b97f4a7c15ULL);
    rng_split(&root, stream, &r);
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)rng_below(&r, n);
        memcpy(Xb + i * d, X + k * d, d * sizeof *X);
        yb[i] = y[k];
    }
    int rc = surrogate_fit(kind, Xb, yb, n, d, seed + stream, ret, err, errlen);
    free(Xb);
    free(yb);
    return rc;
}

static int active__model_fit(const active_params_t *p,
                             const double *X,
                             const double *y,
                             size_t n,
                             size_t d,
                             int want_boot,
                             active__model_t *m,
                             char *err,
                             size_t errlen)
{
    memset(m, 0, sizeof *m);
    int rc = surrogate_fit(p->model, X, y, n, d, p->seed, &m->main, err, errlen);
    if (rc < 0)
        return rc;
    surrogate_kind_t kind = surrogate_kind(m->main);
    if (kind == SURROGATE_GP) {
        m->noise_sd = gp_noise_sd(surrogate_gp(m->main));
        return 0;
    }
    double mse = NAN;
    if (n >= 4 && surrogate_cv_mse(kind, X, y, n, d, p->seed, &mse, err, errlen) == 0)
        m->noise_sd = sqrt(mse);
    else
        m->noise_sd = NAN;
    if (!want_boot)
        return 0;
    for (int b = 0; b < ACTIVE_BOOT; b++) {
        rc = active__fit_boot(kind, X, y, n, d, p->seed, (uint64_t)b + 1, &m->boot[b], err, errlen);
        if (rc < 0) {
            active__model_clear(m);
            return rc;
        }
        m->nboot = b + 1;
    }
    return 0;
}

/* mean and sd (sd may be NULL) of rows P (k, d). */
static int active__model_eval(
        const active__model_t *m, const double *P, size_t k, size_t d, double *mean, double *sd)
{
    int rc = surrogate_predict(m->main, P, k, mean, sd);
    if (rc < 0 || !sd || surrogate_kind(m->main) == SURROGATE_GP)
        return rc;
    if (m->nboot < 2)
        return 0;
    double *t = malloc(k * sizeof *t), *s1 = calloc(k, sizeof *s1), *s2 = calloc(k, sizeof *s2);
    if (!t || !s1 || !s2) {
        free(t);
        free(s1);
        free(s2);
        return -ENOMEM;
    }
    for (int b = 0; b < m->nboot && rc == 0; b++) {
        rc = surrogate_predict(m->boot[b], P, k, t, NULL);
        for (size_t i = 0; i < k; i++) {
            s1[i] += t[i];
            s2[i] += t[i] * t[i];
        }
    }
    double B = m->nboot;
    for (size_t i = 0; i < k && rc == 0; i++) {
        double v = (s2[i] - s1[i] * s1[i] / B) / (B - 1);
        sd[i] = v > 0 ? sqrt(v) : 0;
    }
    (void)d;
    free(t);
    free(s1);
    free(s2);
    return rc;
}

/* A growing set of candidates with their scores. */
typedef struct active__pool {
    size_t m, cap, d;
    double *P;     /* (cap, d) */
    double *mean;  /* (cap) */
    double *sd;    /* (cap) */
    double *score; /* (cap) */
    double ei_ref; /* finite: score = -expected improvement below ei_ref (active__ei) */
} active__pool_t;

static void active__pool_free(active__pool_t *pl)
{
    free(pl->P);
    free(pl->mean);
    free(pl->sd);
    free(pl->score);
    memset(pl, 0, sizeof *pl);
}

static int active__pool_init(active__pool_t *pl, size_t cap, size_t d)
{
    memset(pl, 0, sizeof *pl);
    pl->cap = cap;
    pl->d = d;
    pl->ei_ref = NAN;
    pl->P = malloc(cap * d * sizeof *pl->P);
    pl->mean = malloc(cap * sizeof *pl->mean);
    pl->sd = malloc(cap * sizeof *pl->sd);
    pl->score = malloc(cap * sizeof *pl->score);
    if (!pl->P || !pl->mean || !pl->sd || !pl->score) {
        active__pool_free(pl);
        return -ENOMEM;
    }
    return 0;
}

static int active__cmp_score(const void *a, const void *b, void *ctx)
{
    const double *s = ctx;
    double x = s[*(const size_t *)a], y = s[*(const size_t *)b];
    return x < y   ? -1
           : x > y ? 1
                   : (*(const size_t *)a > *(const size_t *)b) -
                             (*(const size_t *)a < *(const size_t *)b);
}

/* E[max(0, ref - f)] for f ~ N(mean, sd^2): the expected improvement below ref (sd 0 or
 * unknown: max(0, ref - mean)). */
static double active__ei(double ref, double mean, double sd)
{
    double imp = ref - mean;
    if (!(sd > 0))
        return imp > 0 ? imp : 0;
    double z = imp / sd;
    double ei = imp * 0.5 * erfc(-z / sqrt(2.0)) + sd * exp(-0.5 * z * z) / sqrt(2 * M_PI);
    return ei > 0 ? ei : 0;
}

/* The scores of rows [from, m) from their mean and sd: mean + kappa * sd (sd 0 where unknown;
 * a candidate without an sd cannot win a pessimistic score), or with pl->ei_ref finite, minus
 * the expected improvement below it. */
static void active__pool_rescore(active__pool_t *pl, size_t from, double kappa, int need_sd)
{
    for (size_t i = from; i < pl->m; i++) {
        if (isfinite(pl->ei_ref)) {
            pl->score[i] = -active__ei(pl->ei_ref, pl->mean[i], need_sd ? pl->sd[i] : NAN);
            if (!isfinite(pl->score[i]))
                pl->score[i] = INFINITY;
            continue;
        }
        double s = need_sd && isfinite(pl->sd[i]) ? pl->sd[i] : 0;
        pl->score[i] = pl->mean[i] + kappa * s;
        if (need_sd && kappa > 0 && isnan(pl->sd[i]))
            pl->score[i] = INFINITY;
        if (!isfinite(pl->score[i]))
            pl->score[i] = INFINITY;
    }
}

/* Scores rows [from, m) of the pool: mean + sgn * kappa * sd (sd 0 where unknown). */
static int active__pool_score(
        active__pool_t *pl, size_t from, const active__model_t *mod, double kappa, int need_sd)
{
    size_t k = pl->m - from;
    if (k == 0)
        return 0;
    int rc;
    size_t n = mod->main && surrogate_gp(mod->main) ? gp_nruns(surrogate_gp(mod->main)) : 0;
    if (need_sd && n > 0 && k > ACTIVE_SD_MIN &&
        (double)k * (double)n * (double)n > ACTIVE_SD_WORK) {
        /* A GP's sd costs n^2 per candidate: past ACTIVE_SD_WORK, only the candidates with the
         * lowest means get one (the others score by their mean alone). */
        rc = active__model_eval(mod, pl->P + from * pl->d, k, pl->d, pl->mean + from, NULL);
        if (rc < 0)
            return rc;
        size_t want = (size_t)(ACTIVE_SD_WORK / ((double)n * (double)n));
        if (want < ACTIVE_SD_MIN)
            want = ACTIVE_SD_MIN;
        size_t *idx = malloc(k * sizeof *idx);
        double *Q = malloc(want * pl->d * sizeof *Q), *qm = malloc(want * sizeof *qm),
               *qs = malloc(want * sizeof *qs);
        if (!idx || !Q || !qm || !qs) {
            free(idx);
            free(Q);
            free(qm);
            free(qs);
            return -ENOMEM;
        }
        for (size_t i = 0; i < k; i++) {
            idx[i] = from + i;
            pl->sd[from + i] = NAN; /* none: see the scores below */
        }
        qsort_r(idx, k, sizeof *idx, active__cmp_score, pl->mean);
        for (size_t i = 0; i < want; i++)
            memcpy(Q + i * pl->d, pl->P + idx[i] * pl->d, pl->d * sizeof *Q);
        rc = active__model_eval(mod, Q, want, pl->d, qm, qs);
        for (size_t i = 0; i < want && rc == 0; i++)
            pl->sd[idx[i]] = qs[i];
        free(idx);
        free(Q);
        free(qm);
        free(qs);
    } else {
        rc = active__model_eval(mod, pl->P + from * pl->d, k, pl->d, pl->mean + from,
                                need_sd ? pl->sd + from : NULL);
    }
    if (rc < 0)
        return rc;
    for (size_t i = from; !need_sd && i < pl->m; i++)
        pl->sd[i] = NAN;
    active__pool_rescore(pl, from, kappa, need_sd);
    return 0;
}

static void active__normalise(double *w, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        if (!(w[j] > 1e-12))
            w[j] = 0;
        s += w[j];
    }
    for (size_t j = 0; j < d; j++)
        w[j] = s > 0 ? w[j] / s : 1.0 / (double)d;
}

void active_project(double *w, const double *upper, size_t d)
{
    if (!upper)
        return;
    char fixed[ACTIVE_MAX_D] = {0};
    for (size_t round = 0; round <= d; round++) {
        double excess = 0, freem = 0, room = 0;
        for (size_t j = 0; j < d; j++)
            if (w[j] > upper[j]) {
                excess += w[j] - upper[j];
                w[j] = upper[j];
                fixed[j] = 1;
            }
        if (!(excess > 1e-15))
            return;
        for (size_t j = 0; j < d; j++)
            if (!fixed[j]) {
                freem += w[j];
                room += upper[j] - w[j];
            }
        if (freem > 0) {
            double f = (freem + excess) / freem;
            for (size_t j = 0; j < d; j++)
                if (!fixed[j])
                    w[j] *= f;
        } else if (room > 0) {
            for (size_t j = 0; j < d; j++)
                if (!fixed[j])
                    w[j] += excess * (upper[j] - w[j]) / room;
        } else {
            return;
        }
    }
}

/* Base candidates: a third from Dirichlet(prior), a third from the tempered prior at strengths
 * 0.1..5 (the sweep's), a third at strengths 5..200 (dense mixtures), then the runs. */
static void active__pool_base(active__pool_t *pl,
                              const double *upper,
                              size_t want,
                              const double *X,
                              size_t n,
                              const double *prior,
                              rng_t *rng)
{
    size_t d = pl->d;
    double q[ACTIVE_MAX_D], a[ACTIVE_MAX_D], qs = 0, ps = 0;
    for (size_t j = 0; j < d; j++) {
        q[j] = sqrt(prior[j]);
        qs += q[j];
        ps += prior[j];
    }
    for (size_t i = 0; i < want; i++) {
        double *w = pl->P + pl->m * d;
        int kind = (int)(i % 3);
        double s = kind == 1 ? 0.1 * pow(50.0, rng_uniform(rng)) : 5 * pow(40.0, rng_uniform(rng));
        for (size_t j = 0; j < d; j++)
            a[j] = kind == 0 ? prior[j] / ps : q[j] / qs * s;
        if (rng_dirichlet(rng, a, (int)d, w) < 0)
            continue;
        active__normalise(w, d);
        active_project(w, upper, d);
        pl->m++;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(pl->P + pl->m * d, X + i * d, d * sizeof *X);
        pl->m++;
    }
}

/* Indexes of the `k` lowest scores of the pool into idx (k <= m). */
static int active__lowest(const active__pool_t *pl, size_t k, size_t *idx)
{
    size_t *all = malloc(pl->m * sizeof *all);
    if (!all)
        return -ENOMEM;
    for (size_t i = 0; i < pl->m; i++)
        all[i] = i;
    qsort_r(all, pl->m, sizeof *all, active__cmp_score, pl->score);
    memcpy(idx, all, k * sizeof *idx);
    free(all);
    return 0;
}

/* `rounds` of local moves around the ACTIVE_CENTRES best-scored candidates. */
static int active__refine(active__pool_t *pl,
                          const double *upper,
                          const active__model_t *mod,
                          double kappa,
                          int need_sd,
                          int rounds,
                          rng_t *rng)
{
    static const double conc[] = {30, 100, 300, 1000, 3000};
    size_t d = pl->d;
    size_t centres[ACTIVE_CENTRES];
    double a[ACTIVE_MAX_D];
    for (int r = 0; r < rounds; r++) {
        size_t nc = pl->m < ACTIVE_CENTRES ? pl->m : ACTIVE_CENTRES;
        if (pl->m + nc * ACTIVE_MOVES > pl->cap)
            break;
        int rc = active__lowest(pl, nc, centres);
        if (rc < 0)
            return rc;
        size_t from = pl->m;
        for (size_t c = 0; c < nc; c++) {
            const double *x = pl->P + centres[c] * d;
            for (int k = 0; k < ACTIVE_MOVES; k++) {
                double *w = pl->P + pl->m * d;
                if (k % 2 == 0) {
                    double cc = conc[(k / 2) % (sizeof conc / sizeof conc[0])];
                    for (size_t j = 0; j < d; j++)
                        a[j] = cc * x[j] + 1e-3;
                    if (rng_dirichlet(rng, a, (int)d, w) < 0)
                        continue;
                } else {
                    /* move a share of domain i to domain j */
                    memcpy(w, x, d * sizeof *w);
                    size_t i = (size_t)rng_below(rng, d), j = (size_t)rng_below(rng, d);
                    for (int t = 0; t < 8 && !(w[i] > 0); t++)
                        i = (size_t)rng_below(rng, d);
                    if (i == j)
                        j = (j + 1) % d;
                    double f = k % 6 == 1 ? 1.0 : rng_uniform(rng) * (k % 6 == 3 ? 0.5 : 0.1);
                    double mv = w[i] * f;
                    w[i] -= mv;
                    w[j] += mv;
                }
                active__normalise(w, d);
                active_project(w, upper, d);
                pl->m++;
            }
        }
        rc = active__pool_score(pl, from, mod, kappa, need_sd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int active__check(const double *X,
                         const double *y,
                         size_t n,
                         size_t d,
                         const double *prior,
                         char *err,
                         size_t errlen)
{
    if (d < 2 || d > ACTIVE_MAX_D) {
        errbuf_set(err, errlen, "active: need 2..%d domains, got %zu", ACTIVE_MAX_D, d);
        return -EINVAL;
    }
    if (n < 3) {
        errbuf_set(err, errlen, "active: need at least 3 runs with a result, got %zu", n);
        return -EINVAL;
    }
    for (size_t j = 0; j < d; j++)
        if (!(prior[j] > 0) || !isfinite(prior[j])) {
            errbuf_set(err, errlen, "active: prior weight %zu must be finite and > 0", j);
            return -EINVAL;
        }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) {
            errbuf_set(err, errlen, "active: run %zu has a non-finite objective", i);
            return -EINVAL;
        }
        for (size_t j = 0; j < d; j++)
            if (!(X[i * d + j] >= 0) || !isfinite(X[i * d + j])) {
                errbuf_set(err, errlen, "active: run %zu has a bad weight in column %zu", i, j);
                return -EINVAL;
            }
    }
    return 0;
}

/* Candidates farther than `radius` (Hellinger: |sqrt(a) - sqrt(b)|) from every run cannot be
 * proposed: the GP's sd covers its kernel part only, not the ridge mean it extrapolates with. */
static void active__trust(active__pool_t *pl, const double *X, size_t n, double radius)
{
    size_t d = pl->d;
    double r2 = radius * radius;
    double *Z = malloc(n * d * sizeof *Z);
    if (!Z)
        return;
    for (size_t i = 0; i < n * d; i++)
        Z[i] = X[i] > 0 ? sqrt(X[i]) : 0;
    for (size_t c = 0; c < pl->m; c++) {
        double z[ACTIVE_MAX_D];
        for (size_t j = 0; j < d; j++)
            z[j] = pl->P[c * d + j] > 0 ? sqrt(pl->P[c * d + j]) : 0;
        int near = 0;
        for (size_t i = 0; i < n && !near; i++) {
            double s = 0;
            for (size_t j = 0; j < d && s <= r2; j++) {
                double t = z[j] - Z[i * d + j];
                s += t * t;
            }
            near = s <= r2;
        }
        if (!near)
            pl->score[c] = INFINITY;
    }
    free(Z);
}

static size_t active__pool_cap(const active_params_t *p, size_t n, int rounds)
{
    return p->pool + n +
           (size_t)(p->refine > 0 ? p->refine : 0) * (size_t)rounds * ACTIVE_CENTRES * ACTIVE_MOVES;
}

/* The proposal of the fitted model mod and the expected gain of one more run (active.h). */
static int active__propose_fitted(const active_params_t *p,
                                  const active__model_t *mod,
                                  const double *X,
                                  size_t n,
                                  size_t d,
                                  const double *prior,
                                  double *ret_w,
                                  active_proposal_t *ret)
{
    active__pool_t pl;
    /* room for the proposal's refinement and the gain's */
    int rc = active__pool_init(&pl, active__pool_cap(p, n, 2), d);
    if (rc < 0)
        return rc;
    rng_t rng;
    rng_seed(&rng, p->seed ^ 0x5851f42d4c957f2dULL);
    active__pool_base(&pl, p->upper, p->pool, X, n, prior, &rng);
    int need_sd = 1;
    rc = active__pool_score(&pl, 0, mod, p->kappa_propose, need_sd);
    if (rc == 0)
        rc = active__refine(&pl, p->upper, mod, p->kappa_propose, need_sd, p->refine, &rng);
    if (rc < 0)
        goto out;
    if (p->trust > 0)
        active__trust(&pl, X, n, p->trust);
    size_t best;
    rc = active__lowest(&pl, 1, &best);
    if (rc < 0)
        goto out;
    memcpy(ret_w, pl.P + best * d, d * sizeof *ret_w);
    double sd = pl.sd[best], nz = mod->noise_sd;
    double tot = sqrt((isfinite(sd) ? sd * sd : 0) + (isfinite(nz) ? nz * nz : 0));
    /* A GP that took noise for signal (leave-one-out residuals larger than it predicts) gets an
     * interval widened by their RMS, so that a run at the proposal lands in it as often as said;
     * never narrowed. */
    const gp_t *gp = surrogate_gp(mod->main);
    double loo = gp ? gp_loo_scale(gp) : NAN, scale = isfinite(loo) && loo > 1 ? loo : 1;
    tot *= scale;
    *ret = (active_proposal_t){
            .predicted = pl.mean[best],
            .sd = sd,
            .noise_sd = nz,
            .lo = pl.mean[best] - 1.96 * tot,
            .hi = pl.mean[best] + 1.96 * tot,
            .interval_scale = scale,
            .expected_gain = NAN,
            .model = surrogate_kind(mod->main),
    };
    /* The expected gain of one more run (EGO's stopping rule, Jones, Schonlau & Welch 1998): the
     * largest expected improvement below the proposal's mean over the pool, anywhere under the
     * caps (not only within the trust radius), refined around the candidates with the largest. */
    pl.ei_ref = pl.mean[best];
    active__pool_rescore(&pl, 0, 0, need_sd);
    rc = active__refine(&pl, p->upper, mod, 0, need_sd, p->refine, &rng);
    if (rc < 0)
        goto out;
    double gain = 0;
    for (size_t i = 0; i < pl.m; i++)
        if (isfinite(pl.score[i]) && -pl.score[i] > gain)
            gain = -pl.score[i];
    ret->expected_gain = gain;
out:
    active__pool_free(&pl);
    return rc;
}

int active_propose(const active_params_t *p,
                   const double *X,
                   const double *y,
                   size_t n,
                   size_t d,
                   const double *prior,
                   double *ret_w,
                   active_proposal_t *ret,
                   char *err,
                   size_t errlen)
{
    return active_step(p, X, y, n, d, prior, ret_w, ret, 0, NULL, 0, err, errlen);
}

/* Thompson: pick j is the refined minimum of a bootstrap refit. */
static int active__thompson(const active_params_t *p,
                            const double *X,
                            const double *y,
                            size_t n,
                            size_t d,
                            const double *prior,
                            size_t k,
                            size_t first,
                            double *ret_next,
                            char *err,
                            size_t errlen)
{
    surrogate_kind_t kind = p->model;
    int rc = 0;
    for (size_t j = first; j < k && rc == 0; j++) {
        active__model_t mod = {0};
        rc = active__fit_boot(kind, X, y, n, d, p->seed, 1000 + j, &mod.main, err, errlen);
        if (rc < 0)
            break;
        active__pool_t pl;
        rc = active__pool_init(&pl, active__pool_cap(p, n, 1), d);
        if (rc == 0) {
            rng_t rng;
            rng_seed(&rng, p->seed * 31 + j);
            active__pool_base(&pl, p->upper, p->pool / 4 + 64, X, n, prior, &rng);
            rc = active__pool_score(&pl, 0, &mod, 0, 0);
            if (rc == 0)
                rc = active__refine(&pl, p->upper, &mod, 0, 0, p->refine, &rng);
            size_t best;
            if (rc == 0)
                rc = active__lowest(&pl, 1, &best);
            if (rc == 0)
                memcpy(ret_next + j * d, pl.P + best * d, d * sizeof *ret_next);
        }
        active__pool_free(&pl);
        active__model_clear(&mod);
    }
    return rc;
}

/* The next k mixtures from the fitted model mod (active.h). */
static int active__next_fitted(const active_params_t *p,
                               const active__model_t *mod,
                               const double *X,
                               const double *y,
                               size_t n,
                               size_t d,
                               const double *prior,
                               size_t k,
                               double *ret_next,
                               char *err,
                               size_t errlen)
{
    int rc;
    int is_gp = surrogate_kind(mod->main) == SURROGATE_GP;
    active_acq_t acq = p->acq;
    if (!is_gp && (acq == ACTIVE_LCB || acq == ACTIVE_EI))
        acq = ACTIVE_THOMPSON;
    active__pool_t pl;
    gp_batch_t *gb = NULL;
    char *used = NULL;
    double *sub = NULL;
    rc = active__pool_init(&pl, active__pool_cap(p, n, 1), d);
    if (rc < 0)
        return rc;
    rng_t rng;
    rng_seed(&rng, p->seed ^ 0x2545f4914f6cdd1dULL);
    active__pool_base(&pl, p->upper, p->pool, X, n, prior, &rng);
    size_t runs_at = pl.m - n; /* the runs sit at [runs_at, runs_at + n) */
    double kappa = acq == ACTIVE_LCB ? -p->kappa : 0;
    rc = active__pool_score(&pl, 0, mod, kappa, is_gp);
    if (rc == 0)
        rc = active__refine(&pl, p->upper, mod, kappa, is_gp, p->refine, &rng);
    if (rc < 0)
        goto out;
    size_t reps = p->repeats > 0 ? (size_t)p->repeats : 0;
    if (reps > k)
        reps = k;
    if (reps > n)
        reps = n;
    /* Repeats: the runs with the lowest means. */
    size_t rep_idx[64];
    if (reps > 64)
        reps = 64;
    for (size_t r = 0; r < reps; r++) {
        size_t bi = 0;
        double bm = INFINITY;
        for (size_t i = 0; i < n; i++) {
            int taken = 0;
            for (size_t t = 0; t < r; t++)
                taken |= rep_idx[t] == runs_at + i;
            if (!taken && pl.mean[runs_at + i] < bm) {
                bm = pl.mean[runs_at + i];
                bi = runs_at + i;
            }
        }
        rep_idx[r] = bi;
        memcpy(ret_next + r * d, X + (bi - runs_at) * d, d * sizeof *ret_next);
    }
    if (acq == ACTIVE_THOMPSON) {
        rc = active__thompson(p, X, y, n, d, prior, k, reps, ret_next, err, errlen);
        goto out;
    }
    used = calloc(pl.m, 1);
    if (!used) {
        rc = -ENOMEM;
        goto out;
    }
    if (acq == ACTIVE_GREEDY) {
        size_t *idx = malloc(pl.m * sizeof *idx);
        if (!idx) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < pl.m; i++)
            pl.score[i] = pl.mean[i];
        active__lowest(&pl, pl.m, idx);
        for (size_t j = reps, t = 0; j < k; j++, t++)
            memcpy(ret_next + j * d, pl.P + idx[t % pl.m] * d, d * sizeof *ret_next);
        free(idx);
        goto out;
    }
    /* The batch is chosen among the best-scored candidates only: conditioning costs n^2 per
     * candidate. The pending runs (p->pending: running, no result yet) and the repeats come
     * first so the batch is conditioned on them; the pending ones cannot be picked. */
    size_t npend = p->pending ? p->npending : 0;
    size_t nr = gp_nruns(surrogate_gp(mod->main));
    size_t T = (size_t)(ACTIVE_SD_WORK / ((double)nr * (double)nr));
    if (T < ACTIVE_SD_MIN)
        T = ACTIVE_SD_MIN;
    if (T > pl.m)
        T = pl.m;
    size_t *top = malloc(pl.m * sizeof *top), ns = 0;
    sub = malloc((T + reps + npend) * d * sizeof *sub);
    if (!top || !sub) {
        free(top);
        rc = -ENOMEM;
        goto out;
    }
    active__lowest(&pl, pl.m, top);
    for (size_t q = 0; q < npend; q++) {
        memcpy(sub + ns * d, p->pending + q * d, d * sizeof *sub);
        ns++;
    }
    for (size_t r = 0; r < reps; r++) {
        memcpy(sub + ns * d, pl.P + rep_idx[r] * d, d * sizeof *sub);
        used[rep_idx[r]] = 1;
        ns++;
    }
    for (size_t i = 0; i < pl.m && ns < T + reps + npend; i++) {
        int dup = used[top[i]];
        for (size_t q = 0; q < npend && !dup; q++)
            dup = memcmp(pl.P + top[i] * d, p->pending + q * d, d * sizeof *sub) == 0;
        if (!dup)
            memcpy(sub + (ns++) * d, pl.P + top[i] * d, d * sizeof *sub);
    }
    free(top);
    free(used);
    used = calloc(ns, 1);
    if (!used) {
        rc = -ENOMEM;
        goto out;
    }
    rc = gp_batch_new(surrogate_gp(mod->main), sub, ns, k + npend, &gb);
    if (rc < 0)
        goto out;
    for (size_t r = 0; r < npend + reps; r++) {
        gp_batch_add(gb, r);
        used[r] = 1;
    }
    double best = INFINITY;
    for (size_t i = 0; i < n; i++)
        best = fmin(best, pl.mean[runs_at + i]);
    for (size_t j = reps; j < k; j++) {
        size_t bi = 0;
        double bs = INFINITY;
        for (size_t i = 0; i < ns; i++) {
            if (used[i])
                continue;
            double mu = gp_batch_mean(gb, i), sd = gp_batch_sd(gb, i), s;
            if (acq == ACTIVE_LCB) {
                s = mu - p->kappa * sd;
            } else {
                double imp = best - mu;
                if (sd > 0) {
                    double z = imp / sd;
                    s = -(imp * 0.5 * erfc(-z / sqrt(2.0)) +
                          sd * exp(-0.5 * z * z) / sqrt(2 * M_PI));
                } else {
                    s = -(imp > 0 ? imp : 0);
                }
            }
            if (s < bs) {
                bs = s;
                bi = i;
            }
        }
        used[bi] = 1;
        memcpy(ret_next + j * d, sub + bi * d, d * sizeof *ret_next);
        gp_batch_add(gb, bi);
    }
out:
    free(used);
    free(sub);
    gp_batch_destroy(&gb);
    active__pool_free(&pl);
    return rc;
}

int active_next(const active_params_t *p,
                const double *X,
                const double *y,
                size_t n,
                size_t d,
                const double *prior,
                size_t k,
                double *ret_next,
                char *err,
                size_t errlen)
{
    return active_step(p, X, y, n, d, prior, NULL, NULL, k, ret_next, p->seed, err, errlen);
}

int active_step(const active_params_t *p,
                const double *X,
                const double *y,
                size_t n,
                size_t d,
                const double *prior,
                double *ret_w,
                active_proposal_t *ret,
                size_t k,
                double *ret_next,
                uint64_t next_seed,
                char *err,
                size_t errlen)
{
    int rc = active__check(X, y, n, d, prior, err, errlen);
    if (rc < 0)
        return rc;
    int propose = ret_w && ret;
    if (!propose && k == 0)
        return 0;
    active__model_t mod;
    int boot = propose && p->model != SURROGATE_GP && p->kappa_propose != 0;
    rc = active__model_fit(p, X, y, n, d, boot, &mod, err, errlen);
    if (rc < 0)
        return rc;
    double *w = propose ? malloc(d * sizeof *w) : NULL;
    active_proposal_t pr;
    if (propose && !w)
        rc = -ENOMEM;
    if (rc == 0 && propose)
        rc = active__propose_fitted(p, &mod, X, n, d, prior, w, &pr);
    if (rc == 0 && k > 0) {
        active_params_t pn = *p;
        pn.seed = next_seed;
        rc = active__next_fitted(&pn, &mod, X, y, n, d, prior, k, ret_next, err, errlen);
    }
    if (rc == 0 && propose) {
        memcpy(ret_w, w, d * sizeof *w);
        *ret = pr;
    }
    if (rc == -ENOMEM)
        errbuf_set(err, errlen, "active: out of memory");
    free(w);
    active__model_clear(&mod);
    return rc;
}

/* Max-heap on the prediction of the top_k kept so far. */
static void active__heap_down(double *hp, double *hw, size_t k, size_t d, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && hp[l] > hp[m])
            m = l;
        if (r < k && hp[r] > hp[m])
            m = r;
        if (m == i)
            return;
        double t = hp[i];
        hp[i] = hp[m];
        hp[m] = t;
        for (size_t j = 0; j < d; j++) {
            double u = hw[i * d + j];
            hw[i * d + j] = hw[m * d + j];
            hw[m * d + j] = u;
        }
        i = m;
    }
}

int active_topk(const surrogate_t *s,
                const double *prior,
                size_t d,
                size_t N,
                size_t top_k,
                uint64_t seed,
                double *ret_w)
{
    enum { B = 4096 };
    if (top_k == 0 || top_k > N || d > ACTIVE_MAX_D || d < 2)
        return -EINVAL;
    double *pred = malloc(B * sizeof *pred), *W = malloc(B * d * sizeof *W);
    double *hp = malloc(top_k * sizeof *hp), *hw = malloc(top_k * d * sizeof *hw);
    int rc = -ENOMEM;
    if (!pred || !W || !hp || !hw)
        goto out;
    double ps = 0, a[ACTIVE_MAX_D];
    for (size_t j = 0; j < d; j++)
        ps += prior[j];
    for (size_t j = 0; j < d; j++)
        a[j] = prior[j] / ps;
    rng_t rng;
    rng_seed(&rng, seed);
    size_t kept = 0;
    rc = 0;
    for (size_t s0 = 0; s0 < N && rc == 0; s0 += B) {
        size_t b = N - s0 < B ? N - s0 : B;
        for (size_t i = 0; i < b; i++) {
            if (rng_dirichlet(&rng, a, (int)d, W + i * d) < 0) {
                rc = -EINVAL;
                goto out;
            }
            active__normalise(W + i * d, d);
        }
        rc = surrogate_predict(s, W, b, pred, NULL);
        for (size_t i = 0; i < b && rc == 0; i++) {
            if (!isfinite(pred[i]))
                continue;
            if (kept < top_k) {
                hp[kept] = pred[i];
                memcpy(hw + kept * d, W + i * d, d * sizeof *W);
                kept++;
                if (kept == top_k)
                    for (size_t h = top_k / 2 + 1; h-- > 0;)
                        active__heap_down(hp, hw, top_k, d, h);
            } else if (pred[i] < hp[0]) {
                hp[0] = pred[i];
                memcpy(hw, W + i * d, d * sizeof *W);
                active__heap_down(hp, hw, top_k, d, 0);
            }
        }
    }
    if (rc == 0) {
        for (size_t j = 0; j < d; j++) {
            double t = 0;
            for (size_t h = 0; h < kept; h++)
                t += hw[h * d + j];
            ret_w[j] = kept ? t / (double)kept : 1.0 / (double)d;
        }
    }
out:
    free(pred);
    free(W);
    free(hp);
    free(hw);
    return rc;
}
