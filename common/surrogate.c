/* surrogate: the active search's model table (surrogate.h). */
#include "surrogate.h"

#include <cblas.h>
#include <errno.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "metrics.h"
#include "regress.h"

struct surrogate {
    surrogate_kind_t kind;
    size_t d;
    double b0;     /* linear in features: intercept (ridge, quadratic); loglinear: c */
    double *b;     /* slopes (ridge: d, quadratic: q); loglinear: t (d) */
    regress_t *rg; /* linear, gbdt */
    gp_t *gp;      /* gp */
};

static const char *const surrogate__names[SURROGATE_NKINDS] = {
        "linear", "ridge", "loglinear", "quadratic", "gp", "gbdt", "cv",
};

int surrogate_kind_parse(const char *name, surrogate_kind_t *ret)
{
    for (int i = 0; i < SURROGATE_NKINDS; i++)
        if (name && strcmp(name, surrogate__names[i]) == 0) {
            *ret = (surrogate_kind_t)i;
            return 0;
        }
    return -EINVAL;
}

const char *surrogate_kind_name(surrogate_kind_t kind)
{
    return (unsigned)kind < SURROGATE_NKINDS ? surrogate__names[kind] : "?";
}

void surrogate_destroy(surrogate_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    surrogate_t *s = *self_p;
    free(s->b);
    regress_destroy(&s->rg);
    gp_destroy(&s->gp);
    free(s);
    *self_p = NULL;
}

surrogate_kind_t surrogate_kind(const surrogate_t *s)
{
    return s->kind;
}

const gp_t *surrogate_gp(const surrogate_t *s)
{
    return s->gp;
}

void surrogate_quadratic_expand(const double *X, size_t n, size_t d, double *out)
{
    for (size_t r = 0; r < n; r++) {
        const double *w = X + r * d;
        for (size_t i = 0; i < d; i++)
            for (size_t j = i; j < d; j++)
                *out++ = w[i] * w[j];
    }
}

int surrogate_ridge_gcv(const double *F,
                        const double *y,
                        size_t n,
                        size_t p,
                        double *ret_b0,
                        double *ret_b,
                        char *err,
                        size_t errlen)
{
    size_t r = n < p ? n : p;
    double *A = malloc(n * p * sizeof *A);
    double *fm = calloc(p, sizeof *fm);
    double *U = malloc(n * r * sizeof *U);
    double *Vt = malloc(r * p * sizeof *Vt);
    double *s = malloc(r * sizeof *s);
    double *c = malloc(r * sizeof *c);
    double *yc = malloc(n * sizeof *yc);
    int rc = -ENOMEM;
    if (!A || !fm || !U || !Vt || !s || !c || !yc)
        goto out;
    double ym = 0;
    for (size_t i = 0; i < n; i++) {
        ym += y[i];
        for (size_t j = 0; j < p; j++)
            fm[j] += F[i * p + j];
    }
    ym /= (double)n;
    for (size_t j = 0; j < p; j++)
        fm[j] /= (double)n;
    double yy = 0;
    for (size_t i = 0; i < n; i++) {
        yc[i] = y[i] - ym;
        yy += yc[i] * yc[i];
        for (size_t j = 0; j < p; j++)
            A[i * p + j] = F[i * p + j] - fm[j];
    }
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)n, (lapack_int)p, A,
                                     (lapack_int)p, s, U, (lapack_int)r, Vt, (lapack_int)p);
    if (info != 0) {
        errbuf_set(err, errlen, "ridge fit: SVD failed (info %d)", (int)info);
        rc = -EINVAL;
        goto out;
    }
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)r, 1.0, U, (int)r, yc, 1, 0.0, c, 1);
    double cc = 0;
    for (size_t k = 0; k < r; k++)
        cc += c[k] * c[k];
    double smax2 = s[0] * s[0], best = INFINITY, balpha = smax2;
    if (smax2 > 0) {
        for (int e = 0; e <= 20; e++) {
            double alpha = smax2 * pow(10.0, -0.5 * e);
            double rss = yy - cc, df = 0;
            for (size_t k = 0; k < r; k++) {
                double sh = alpha / (s[k] * s[k] + alpha);
                rss += c[k] * c[k] * sh * sh;
                df += 1 - sh;
            }
            double den = (double)n - df - 1; /* the intercept is one more degree of freedom */
            if (den < 0.5)
                den = 0.5;
            double gcv = (double)n * rss / (den * den);
            if (gcv < best) {
                best = gcv;
                balpha = alpha;
            }
        }
    }
    for (size_t j = 0; j < p; j++)
        ret_b[j] = 0;
    for (size_t k = 0; k < r; k++) {
        double f = s[k] > 0 ? c[k] * s[k] / (s[k] * s[k] + balpha) : 0;
        for (size_t j = 0; j < p; j++)
            ret_b[j] += Vt[k * p + j] * f;
    }
    *ret_b0 = ym;
    for (size_t j = 0; j < p; j++)
        *ret_b0 -= ret_b[j] * fm[j];
    rc = 0;
out:
    free(A);
    free(fm);
    free(U);
    free(Vt);
    free(s);
    free(c);
    free(yc);
    return rc;
}

/* Levenberg-Marquardt on L = c + exp(t . w), parameters (c, t_1..t_d). */
static int surrogate__fit_loglinear(surrogate_t *s,
                                    const double *X,
                                    const double *y,
                                    size_t n,
                                    size_t d,
                                    char *err,
                                    size_t errlen)
{
    size_t p = d + 1;
    double *th = malloc(p * sizeof *th), *nt = malloc(p * sizeof *nt);
    double *JtJ = malloc(p * p * sizeof *JtJ), *Jte = malloc(p * sizeof *Jte);
    double *A = malloc(p * p * sizeof *A), *lg = malloc(n * sizeof *lg);
    double *t0 = malloc(d * sizeof *t0);
    int rc = -ENOMEM;
    if (!th || !nt || !JtJ || !Jte || !A || !lg || !t0)
        goto out;
    double ymin = INFINITY, ymax = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        ymin = fmin(ymin, y[i]);
        ymax = fmax(ymax, y[i]);
    }
    double span = ymax - ymin > 1e-6 ? ymax - ymin : 1e-6;
    /* Start: c below the lowest loss, t from a ridge fit of log(y - c) on w (the intercept folds
     * into t because the w sum to 1). */
    th[0] = ymin - 0.5 * span;
    for (size_t i = 0; i < n; i++)
        lg[i] = log(y[i] - th[0]);
    double b0;
    rc = surrogate_ridge_gcv(X, lg, n, d, &b0, t0, err, errlen);
    if (rc < 0)
        goto out;
    for (size_t j = 0; j < d; j++) {
        t0[j] += b0;
        th[1 + j] = t0[j];
    }
    /* Ridge on t - t0, light: keeps an under-determined fit (n <= d) near the start. */
    const double rho = 1e-7 * (double)n;
    double lambda = 1e-3;
    double sse = INFINITY;
    for (int it = 0; it < 200; it++) {
        double cur = 0;
        memset(JtJ, 0, p * p * sizeof *JtJ);
        memset(Jte, 0, p * sizeof *Jte);
        double J[1 + 64];
        double *Jr = d + 1 <= 65 ? J : NULL;
        if (!Jr) {
            errbuf_set(err, errlen, "loglinear fit: at most 64 domains");
            rc = -EINVAL;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const double *w = X + i * d;
            double z = 0;
            for (size_t j = 0; j < d; j++)
                z += th[1 + j] * w[j];
            double ez = exp(z);
            double e = th[0] + ez - y[i];
            cur += e * e;
            Jr[0] = 1;
            for (size_t j = 0; j < d; j++)
                Jr[1 + j] = ez * w[j];
            for (size_t a = 0; a < p; a++) {
                Jte[a] += Jr[a] * e;
                for (size_t b = a; b < p; b++)
                    JtJ[a * p + b] += Jr[a] * Jr[b];
            }
        }
        for (size_t j = 0; j < d; j++) {
            double dt = th[1 + j] - t0[j];
            cur += rho * dt * dt;
            Jte[1 + j] += rho * dt;
            JtJ[(1 + j) * p + 1 + j] += rho;
        }
        if (!isfinite(cur))
            break;
        sse = cur;
        int improved = 0;
        for (int tries = 0; tries < 12 && !improved; tries++) {
            for (size_t a = 0; a < p; a++) {
                for (size_t b = a; b < p; b++)
                    A[a * p + b] = JtJ[a * p + b];
                A[a * p + a] += lambda * (JtJ[a * p + a] + 1e-12);
                nt[a] = -Jte[a];
            }
            if (LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)p, 1, A, (lapack_int)p, nt, 1) !=
                0) {
                lambda *= 10;
                continue;
            }
            for (size_t a = 0; a < p; a++)
                nt[a] += th[a];
            double f = 0;
            for (size_t i = 0; i < n; i++) {
                double z = 0;
                for (size_t j = 0; j < d; j++)
                    z += nt[1 + j] * X[i * d + j];
                double e = nt[0] + exp(z) - y[i];
                f += e * e;
            }
            for (size_t j = 0; j < d; j++) {
                double dt = nt[1 + j] - t0[j];
                f += rho * dt * dt;
            }
            if (isfinite(f) && f < sse) {
                improved = 1;
                double rel = (sse - f) / (sse + 1e-300);
                memcpy(th, nt, p * sizeof *th);
                lambda = fmax(lambda / 3, 1e-9);
                if (rel < 1e-10)
                    it = 1 << 20;
            } else {
                lambda *= 4;
            }
        }
        if (!improved)
            break;
    }
    s->b0 = th[0];
    s->b = malloc(d * sizeof *s->b);
    if (!s->b) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(s->b, th + 1, d * sizeof *s->b);
    rc = 0;
out:
    free(th);
    free(nt);
    free(JtJ);
    free(Jte);
    free(A);
    free(lg);
    free(t0);
    return rc;
}

static int surrogate__fit_one(surrogate_t *s,
                              const double *X,
                              const double *y,
                              size_t n,
                              size_t d,
                              uint64_t seed,
                              char *err,
                              size_t errlen)
{
    switch (s->kind) {
    case SURROGATE_LINEAR:
        return regress_fit(REGRESS_LINEAR, NULL, X, y, n, d, &s->rg, err, errlen);
    case SURROGATE_RIDGE:
        s->b = malloc(d * sizeof *s->b);
        if (!s->b)
            return -ENOMEM;
        return surrogate_ridge_gcv(X, y, n, d, &s->b0, s->b, err, errlen);
    case SURROGATE_QUADRATIC: {
        size_t q = d * (d + 1) / 2;
        double *F = malloc(n * q * sizeof *F);
        s->b = malloc(q * sizeof *s->b);
        if (!F || !s->b) {
            free(F);
            return -ENOMEM;
        }
        surrogate_quadratic_expand(X, n, d, F);
        int rc = surrogate_ridge_gcv(F, y, n, q, &s->b0, s->b, err, errlen);
        free(F);
        return rc;
    }
    case SURROGATE_LOGLINEAR:
        return surrogate__fit_loglinear(s, X, y, n, d, err, errlen);
    case SURROGATE_GP:
        return gp_fit(X, y, n, d, &s->gp, err, errlen);
    case SURROGATE_GBDT: {
        regress_params_t rp;
        regress_params_default(&rp);
        rp.seed = seed;
        rp.threads = 1;
        double cap = floor((double)n / 16.0);
        if (cap < 1)
            cap = 1;
        if (rp.min_child_weight > cap)
            rp.min_child_weight = cap;
        return regress_fit(REGRESS_GBDT, &rp, X, y, n, d, &s->rg, err, errlen);
    }
    default:
        errbuf_set(err, errlen, "surrogate: bad kind %d", (int)s->kind);
        return -EINVAL;
    }
}

int surrogate_cv_mse(surrogate_kind_t kind,
                     const double *X,
                     const double *y,
                     size_t n,
                     size_t d,
                     uint64_t seed,
                     double *ret,
                     char *err,
                     size_t errlen)
{
    int k = n >= 10 ? 5 : (int)(n / 2);
    if (k < 2) {
        errbuf_set(err, errlen, "cv: need at least 4 runs");
        return -EINVAL;
    }
    int *fold = malloc(n * sizeof *fold);
    double *Xt = malloc(n * d * sizeof *Xt), *yt = malloc(n * sizeof *yt);
    double *Xv = malloc(n * d * sizeof *Xv), *yv = malloc(n * sizeof *yv);
    double *pv = malloc(n * sizeof *pv);
    int rc = -ENOMEM;
    if (!fold || !Xt || !yt || !Xv || !yv || !pv)
        goto out;
    rc = metrics_kfold(n, k, seed, fold);
    if (rc < 0)
        goto out;
    double sse = 0;
    for (int f = 0; f < k; f++) {
        size_t nt = 0, nv = 0;
        for (size_t i = 0; i < n; i++) {
            if (fold[i] == f) {
                memcpy(Xv + nv * d, X + i * d, d * sizeof *X);
                yv[nv++] = y[i];
            } else {
                memcpy(Xt + nt * d, X + i * d, d * sizeof *X);
                yt[nt++] = y[i];
            }
        }
        surrogate_t *m = NULL;
        rc = surrogate_fit(kind, Xt, yt, nt, d, seed, &m, err, errlen);
        if (rc < 0)
            goto out;
        rc = surrogate_predict(m, Xv, nv, pv, NULL);
        surrogate_destroy(&m);
        if (rc < 0)
            goto out;
        for (size_t i = 0; i < nv; i++)
            sse += (pv[i] - yv[i]) * (pv[i] - yv[i]);
    }
    *ret = sse / (double)n;
    rc = 0;
out:
    free(fold);
    free(Xt);
    free(yt);
    free(Xv);
    free(yv);
    free(pv);
    return rc;
}

int surrogate_fit(surrogate_kind_t kind,
                  const double *X,
                  const double *y,
                  size_t n,
                  size_t d,
                  uint64_t seed,
                  surrogate_t **ret,
                  char *err,
                  size_t errlen)
{
    if (n < 2 || d < 2) {
        errbuf_set(err, errlen, "fit: need at least 2 runs and 2 domains (got %zu, %zu)", n, d);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(y[i])) {
            errbuf_set(err, errlen, "fit: non-finite target in row %zu", i);
            return -EINVAL;
        }
    if (kind == SURROGATE_CV) {
        static const surrogate_kind_t choices[] = {SURROGATE_LINEAR, SURROGATE_RIDGE,
                                                   SURROGATE_LOGLINEAR, SURROGATE_QUADRATIC,
                                                   SURROGATE_GP};
        surrogate_kind_t best = SURROGATE_GP;
        double bmse = INFINITY;
        for (size_t c = 0; c < sizeof choices / sizeof choices[0] && n >= 4; c++) {
            double mse;
            if (surrogate_cv_mse(choices[c], X, y, n, d, seed, &mse, err, errlen) == 0 &&
                mse < bmse) {
                bmse = mse;
                best = choices[c];
            }
        }
        kind = best;
    }
    surrogate_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->kind = kind;
    s->d = d;
    int rc = surrogate__fit_one(s, X, y, n, d, seed, err, errlen);
    if (rc < 0) {
        surrogate_destroy(&s);
        return rc;
    }
    *ret = s;
    return 0;
}

int surrogate_predict(const surrogate_t *s, const double *X, size_t m, double *mean, double *sd)
{
    size_t d = s->d;
    if (s->kind == SURROGATE_GP)
        return gp_predict(s->gp, X, m, mean, sd);
    if (sd)
        for (size_t i = 0; i < m; i++)
            sd[i] = NAN;
    switch (s->kind) {
    case SURROGATE_LINEAR:
    case SURROGATE_GBDT:
        return regress_predict(s->rg, X, m, mean);
    case SURROGATE_RIDGE:
        for (size_t i = 0; i < m; i++)
            mean[i] = s->b0 + cblas_ddot((int)d, X + i * d, 1, s->b, 1);
        return 0;
    case SURROGATE_LOGLINEAR:
        for (size_t i = 0; i < m; i++)
            mean[i] = s->b0 + exp(cblas_ddot((int)d, X + i * d, 1, s->b, 1));
        return 0;
    case SURROGATE_QUADRATIC: {
        size_t q = d * (d + 1) / 2;
        double f[64 * 65 / 2];
        if (d > 64)
            return -EINVAL;
        for (size_t i = 0; i < m; i++) {
            surrogate_quadratic_expand(X + i * d, 1, d, f);
            mean[i] = s->b0 + cblas_ddot((int)q, f, 1, s->b, 1);
        }
        return 0;
    }
    default:
        return -EINVAL;
    }
}
