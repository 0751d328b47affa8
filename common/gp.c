/* gp: Gaussian-process regression on sqrt(weights) with a ridge mean (gp.h). */
#include "gp.h"

#include <cblas.h>
#include <errno.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "surrogate.h"

#define GP_HYPER_MAX 192

struct gp {
    size_t n, d;
    double *Z;     /* (n, d) sqrt of the weights */
    double *L;     /* (n, n) lower Cholesky factor of K + g I (unit signal variance) */
    double *alpha; /* (n) (K + g I)^-1 (y - m(X)) */
    double s2;     /* signal variance */
    double g;      /* noise-to-signal variance ratio */
    double ell;    /* length scale */
    double lin;    /* weight of the linear kernel w_a . w_b (a Bayesian linear trend) */
    double *X;     /* (n, d) the weights */
    double b0;     /* constant mean: the mean target */
    double *b;     /* (d) ridge mean: slopes */
};

/* Matérn 5/2 of a distance r at length scale ell (unit variance). */
static double gp__matern(double r, double ell)
{
    double a = sqrt(5.0) * r / ell;
    return (1 + a + a * a / 3) * exp(-a);
}

static double gp__dist(const double *a, const double *b, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        double t = a[j] - b[j];
        s += t * t;
    }
    return sqrt(s);
}

static void gp__sqrt_row(const double *w, size_t d, double *z)
{
    for (size_t j = 0; j < d; j++)
        z[j] = w[j] > 0 ? sqrt(w[j]) : 0;
}

void gp_destroy(gp_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gp_t *g = *self_p;
    free(g->Z);
    free(g->L);
    free(g->alpha);
    free(g->b);
    free(g->X);
    free(g);
    *self_p = NULL;
}

int gp_fit(
        const double *X, const double *y, size_t n, size_t d, gp_t **ret, char *err, size_t errlen)
{
    static const double ells[] = {0.12, 0.2, 0.32, 0.5, 0.8, 1.3, 2.0, 3.2, 5.0};
    if (n < 2 || d < 1) {
        errbuf_set(err, errlen, "gp fit: need at least 2 runs and 1 domain");
        return -EINVAL;
    }
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(X[i])) {
            errbuf_set(err, errlen, "gp fit: non-finite weight in row %zu", i / d);
            return -EINVAL;
        }
    int rc = -ENOMEM;
    gp_t *g = calloc(1, sizeof *g);
    double *G = NULL;
    double *D = malloc(n * n * sizeof *D);
    double *K = malloc(n * n * sizeof *K);
    double *r = malloc(n * sizeof *r);
    if (!g || !D || !K || !r)
        goto fail;
    g->n = n;
    g->d = d;
    g->Z = malloc(n * d * sizeof *g->Z);
    g->L = malloc(n * n * sizeof *g->L);
    g->alpha = malloc(n * sizeof *g->alpha);
    g->b = calloc(d, sizeof *g->b);
    g->X = malloc(n * d * sizeof *g->X);
    G = malloc(n * n * sizeof *G);
    if (!g->Z || !g->L || !g->alpha || !g->b || !g->X || !G)
        goto fail;
    memcpy(g->X, X, n * d * sizeof *X);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++)
            G[i * n + j] = cblas_ddot((int)d, X + i * d, 1, X + j * d, 1);
    if (0)
        goto fail;
    /* The mean is a constant; a linear trend in the weights is part of the kernel (its
     * uncertainty then counts in the sd, where a fitted linear mean would extrapolate with none) */
    g->b0 = 0;
    for (size_t i = 0; i < n; i++)
        g->b0 += y[i] / (double)n;
    for (size_t i = 0; i < n; i++) {
        double m = g->b0;
        for (size_t j = 0; j < d; j++)
            m += g->b[j] * X[i * d + j];
        r[i] = y[i] - m;
        if (!isfinite(r[i])) {
            errbuf_set(err, errlen, "gp fit: non-finite target in row %zu", i);
            rc = -EINVAL;
            goto fail;
        }
        gp__sqrt_row(X + i * d, d, g->Z + i * d);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++)
            D[i * n + j] = gp__dist(g->Z + i * d, g->Z + j * d, d);
    /* The hyperparameters are chosen on at most GP_HYPER_MAX runs (every n/h-th): the marginal
     * likelihood's optimum moves little with more, and the eigendecompositions cost h^3. */
    size_t h = n < GP_HYPER_MAX ? n : GP_HYPER_MAX;
    double *rh = malloc(h * sizeof *rh);
    size_t *pick = malloc(h * sizeof *pick);
    if (!rh || !pick) {
        free(rh);
        free(pick);
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < h; i++) {
        pick[i] = i * n / h;
        rh[i] = r[pick[i]];
    }
    /* For each length scale one eigendecomposition K = U diag(l) U' gives the marginal
     * likelihood of every noise ratio g in O(n) after O(n^2): |K + g I| = prod(l + g) and
     * r'(K + g I)^-1 r = sum (U'r)_i^2 / (l_i + g). */
    double *lam = malloc(h * sizeof *lam), *ur = malloc(h * sizeof *ur);
    if (!lam || !ur) {
        free(lam);
        free(ur);
        free(rh);
        free(pick);
        rc = -ENOMEM;
        goto fail;
    }
    double best = -INFINITY;
    static const double lins[] = {0, 1, 10, 100};
    for (size_t cfg = 0; cfg < sizeof ells / sizeof ells[0] * 4; cfg++) {
        size_t li = cfg / 4;
        double lin = lins[cfg % 4];
        for (size_t i = 0; i < h; i++) {
            for (size_t j = 0; j < i; j++) {
                size_t a = pick[i], bb = pick[j];
                K[i * h + j] = K[j * h + i] =
                        gp__matern(D[a * n + bb], ells[li]) + lin * G[a * n + bb];
            }
            K[i * h + i] = 1 + lin * G[pick[i] * n + pick[i]];
        }
        if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)h, K, (lapack_int)h, lam) != 0)
            continue;
        /* ur = U' r (columns of K are the eigenvectors) */
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)h, (int)h, 1.0, K, (int)h, rh, 1, 0.0, ur, 1);
        for (int e = 0; e <= 16; e++) {
            double ratio = pow(10.0, -4.0 + 0.25 * e);
            double q = 0, logdet = 0;
            for (size_t i = 0; i < h; i++) {
                double l = (lam[i] > 0 ? lam[i] : 0) + ratio;
                q += ur[i] * ur[i] / l;
                logdet += log(l);
            }
            double s2 = q / (double)h;
            if (!(s2 > 0))
                s2 = 1e-300;
            double lml = -0.5 * (double)h * log(s2) - 0.5 * logdet;
            if (lml > best) {
                best = lml;
                g->ell = ells[li];
                g->lin = lin;
                g->g = ratio;
                g->s2 = s2;
            }
        }
    }
    free(lam);
    free(ur);
    free(rh);
    free(pick);
    if (!(best > -INFINITY)) {
        errbuf_set(err, errlen, "gp fit: no eigendecomposition of the kernel succeeded");
        rc = -EINVAL;
        goto fail;
    }
    /* The Cholesky factor of the chosen K + g I; a ratio too small for it to be positive
     * definite in floating point is raised until it is. */
    for (int tries = 0;; tries++) {
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < i; j++)
                g->L[i * n + j] = gp__matern(D[i * n + j], g->ell) + g->lin * G[i * n + j];
            g->L[i * n + i] = 1 + g->lin * G[i * n + i] + g->g;
        }
        if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, g->L, (lapack_int)n) == 0)
            break;
        if (tries >= 8) {
            errbuf_set(err, errlen, "gp fit: kernel matrix not positive definite");
            rc = -EINVAL;
            goto fail;
        }
        g->g = g->g * 10 + 1e-8;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            g->L[i * n + j] = 0;
    /* alpha = L^-T L^-1 r */
    memcpy(g->alpha, r, n * sizeof *r);
    LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, 1, g->L, (lapack_int)n, g->alpha, 1);
    free(D);
    free(K);
    free(r);
    free(G);
    *ret = g;
    return 0;
fail:
    free(G);
    free(D);
    free(K);
    free(r);
    gp_destroy(&g);
    return rc;
}

/* Leave-one-out check of the fitted noise and signal (Rasmussen & Williams §5.4.2): with
 * C = s2 (K + g I), run i left out is predicted with residual alpha_i / [A^-1]_ii and variance
 * s2 / [A^-1]_ii (A = K + g I), so its standardised residual squared is
 * alpha_i^2 / ([A^-1]_ii s2); A^-1 from the Cholesky factor. Computed on request, not in
 * gp_fit(): only a proposal's interval needs it, and it costs twice the factorisation. */
double gp_loo_scale(const gp_t *gp)
{
    size_t n = gp->n;
    double *Ai = malloc(n * n * sizeof *Ai), loo = NAN;
    if (!Ai)
        return NAN;
    memcpy(Ai, gp->L, n * n * sizeof *Ai);
    if (LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, Ai, (lapack_int)n) == 0 &&
        gp->s2 > 0) {
        double z2 = 0;
        for (size_t i = 0; i < n; i++)
            z2 += gp->alpha[i] * gp->alpha[i] / (Ai[i * n + i] * gp->s2);
        loo = sqrt(z2 / (double)n);
    }
    free(Ai);
    return loo;
}

size_t gp_nruns(const gp_t *gp)
{
    return gp->n;
}

double gp_noise_sd(const gp_t *gp)
{
    return sqrt(gp->s2 * gp->g);
}

void gp_hyper(const gp_t *gp, double *ret_length, double *ret_ratio)
{
    if (ret_length)
        *ret_length = gp->ell;
    if (ret_ratio)
        *ret_ratio = gp->g;
}

#define GP_BLOCK 512

/* Kernel rows of B candidates against the runs: Ks (B, n), and their ridge means. */
static void gp__cross(const gp_t *gp, const double *X, size_t B, double *Ks, double *m)
{
    size_t n = gp->n, d = gp->d;
    double z[64];
    double *zz = d <= 64 ? z : malloc(d * sizeof *zz);
    for (size_t i = 0; i < B; i++) {
        const double *w = X + i * d;
        gp__sqrt_row(w, d, zz);
        double mm = gp->b0;
        for (size_t j = 0; j < d; j++)
            mm += gp->b[j] * w[j];
        m[i] = mm;
        for (size_t k = 0; k < n; k++)
            Ks[i * n + k] = gp__matern(gp__dist(zz, gp->Z + k * d, d), gp->ell) +
                            gp->lin * cblas_ddot((int)d, w, 1, gp->X + k * d, 1);
    }
    if (zz != z)
        free(zz);
}

int gp_predict(const gp_t *gp, const double *X, size_t m, double *mean, double *sd)
{
    size_t n = gp->n, d = gp->d;
    double *Ks = malloc(GP_BLOCK * n * sizeof *Ks);
    double *mm = malloc(GP_BLOCK * sizeof *mm);
    if (!Ks || !mm || (d > 64 && 0)) {
        free(Ks);
        free(mm);
        return -ENOMEM;
    }
    for (size_t s = 0; s < m; s += GP_BLOCK) {
        size_t B = m - s < GP_BLOCK ? m - s : GP_BLOCK;
        gp__cross(gp, X + s * d, B, Ks, mm);
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)B, (int)n, 1.0, Ks, (int)n, gp->alpha, 1, 1.0,
                    mm, 1);
        memcpy(mean + s, mm, B * sizeof *mm);
        if (sd) {
            /* V = Ks L^-T, var = s2 (1 - |v|^2) */
            cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)B,
                        (int)n, 1.0, gp->L, (int)n, Ks, (int)n);
            for (size_t i = 0; i < B; i++) {
                double q = cblas_ddot((int)n, Ks + i * n, 1, Ks + i * n, 1);
                const double *w = X + (s + i) * d;
                double v = 1 + gp->lin * cblas_ddot((int)d, w, 1, w, 1) - q;
                sd[s + i] = v > 0 ? sqrt(gp->s2 * v) : 0;
            }
        }
    }
    free(Ks);
    free(mm);
    return 0;
}

struct gp_batch {
    const gp_t *gp;
    const double *P;
    size_t m, max_added, added;
    double *V;    /* (m, n) rows v_p = L^-1 k(X, p) */
    double *U;    /* (max_added, m) hallucinated factors */
    double *mean; /* (m) */
    double *var;  /* (m) latent variance / s2 */
    double *Zp;   /* (m, d) sqrt of pool weights */
};

void gp_batch_destroy(gp_batch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gp_batch_t *b = *self_p;
    free(b->V);
    free(b->U);
    free(b->mean);
    free(b->var);
    free(b->Zp);
    free(b);
    *self_p = NULL;
}

int gp_batch_new(const gp_t *gp, const double *P, size_t m, size_t max_added, gp_batch_t **ret)
{
    size_t n = gp->n, d = gp->d;
    if (m == 0)
        return -EINVAL;
    gp_batch_t *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->gp = gp;
    b->P = P;
    b->m = m;
    b->max_added = max_added;
    b->V = malloc(m * n * sizeof *b->V);
    b->U = malloc((max_added ? max_added : 1) * m * sizeof *b->U);
    b->mean = malloc(m * sizeof *b->mean);
    b->var = malloc(m * sizeof *b->var);
    b->Zp = malloc(m * d * sizeof *b->Zp);
    if (!b->V || !b->U || !b->mean || !b->var || !b->Zp) {
        gp_batch_destroy(&b);
        return -ENOMEM;
    }
    for (size_t s = 0; s < m; s += GP_BLOCK) {
        size_t B = m - s < GP_BLOCK ? m - s : GP_BLOCK;
        double *Ks = b->V + s * n;
        gp__cross(gp, P + s * d, B, Ks, b->mean + s);
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)B, (int)n, 1.0, Ks, (int)n, gp->alpha, 1, 1.0,
                    b->mean + s, 1);
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)B, (int)n,
                    1.0, gp->L, (int)n, Ks, (int)n);
        for (size_t i = 0; i < B; i++) {
            const double *w = P + (s + i) * d;
            double v = 1 + gp->lin * cblas_ddot((int)d, w, 1, w, 1) -
                       cblas_ddot((int)n, Ks + i * n, 1, Ks + i * n, 1);
            b->var[s + i] = v > 0 ? v : 0;
        }
    }
    for (size_t i = 0; i < m; i++)
        gp__sqrt_row(P + i * d, d, b->Zp + i * d);
    *ret = b;
    return 0;
}

double gp_batch_mean(const gp_batch_t *b, size_t i)
{
    return b->mean[i];
}

double gp_batch_sd(const gp_batch_t *b, size_t i)
{
    return sqrt(b->gp->s2 * b->var[i]);
}

int gp_batch_add(gp_batch_t *b, size_t i)
{
    if (b->added >= b->max_added)
        return -ENOSPC;
    size_t n = b->gp->n, d = b->gp->d, m = b->m;
    double denom = b->var[i] + b->gp->g;
    double *u = b->U + b->added * m;
    const double *vi = b->V + i * n;
    for (size_t p = 0; p < m; p++) {
        double c = gp__matern(gp__dist(b->Zp + p * d, b->Zp + i * d, d), b->gp->ell) +
                   b->gp->lin * cblas_ddot((int)d, b->P + p * d, 1, b->P + i * d, 1);
        c -= cblas_ddot((int)n, b->V + p * n, 1, vi, 1);
        for (size_t j = 0; j < b->added; j++)
            c -= b->U[j * m + p] * b->U[j * m + i];
        u[p] = c / sqrt(denom);
    }
    for (size_t p = 0; p < m; p++) {
        double v = b->var[p] - u[p] * u[p];
        b->var[p] = v > 0 ? v : 0;
    }
    b->added++;
    return 0;
}
