/* regress: linear, ridge and XGBoost gbdt regression of a loss on mixture weights (regress.h). */
#include "regress.h"

#include <errno.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "errbuf.h"
#include "surrogate.h"

struct regress {
    regress_kind_t kind;
    size_t d;
    int threads;
    double intercept; /* linear, ridge */
    double *coef;     /* linear, ridge: (d) */
    BoosterHandle booster;
    forest_t *forest;
    surrogate_t *sur; /* gp, loglinear */
};

void regress_params_default(regress_params_t *p)
{
    *p = (regress_params_t){
            .ridge_alpha = 1e-3,
            .trees = 1000,
            .learning_rate = 0.01,
            .max_leaves = 31,
            .min_child_weight = 20,
            .lambda = 0,
            .max_bin = 256,
            .seed = 42,
            .threads = 0,
    };
}

int regress_kind_parse(const char *name, regress_kind_t *ret)
{
    static const char *const names[] = {"linear", "ridge", "gbdt", "gp", "loglinear"};
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *ret = (regress_kind_t)i;
            return 0;
        }
    return -EINVAL;
}

const char *regress_kind_name(regress_kind_t kind)
{
    switch (kind) {
    case REGRESS_LINEAR:
        return "linear";
    case REGRESS_RIDGE:
        return "ridge";
    case REGRESS_GBDT:
        return "gbdt";
    case REGRESS_GP:
        return "gp";
    case REGRESS_LOGLINEAR:
        return "loglinear";
    }
    return "?";
}

void regress_destroy(regress_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    regress_t *m = *self_p;
    free(m->coef);
    if (m->booster)
        XGBoosterFree(m->booster);
    forest_destroy(&m->forest);
    surrogate_destroy(&m->sur);
    free(m);
    *self_p = NULL;
}

regress_kind_t regress_kind(const regress_t *model)
{
    return model->kind;
}

size_t regress_nfeatures(const regress_t *model)
{
    return model->d;
}

const forest_t *regress_forest(const regress_t *model)
{
    return model->forest;
}

const double *regress_coef(const regress_t *model, double *ret_intercept)
{
    if (!model->coef)
        return NULL;
    if (ret_intercept)
        *ret_intercept = model->intercept;
    return model->coef;
}

/* Linear and ridge on centred data: the intercept then carries the means and is not penalised,
 * and the slopes come from a system without the intercept column that makes the simplex design
 * rank-deficient. */
static int regress__fit_linear(regress_t *m,
                               const regress_params_t *p,
                               const double *X,
                               const double *y,
                               size_t n,
                               size_t d,
                               char *err,
                               size_t errlen)
{
    int rc = -ENOMEM;
    double *xm = calloc(d, sizeof *xm);
    double *Xc = malloc(n * d * sizeof *Xc);
    double *yc = calloc(n > d ? n : d, sizeof *yc);
    double *A = calloc(d * d, sizeof *A);
    double *s = calloc(d, sizeof *s);
    m->coef = calloc(d, sizeof *m->coef);
    if (!xm || !Xc || !yc || !A || !s || !m->coef)
        goto out;
    double ym = 0;
    for (size_t i = 0; i < n; i++) {
        ym += y[i];
        for (size_t j = 0; j < d; j++)
            xm[j] += X[i * d + j];
    }
    ym /= (double)n;
    for (size_t j = 0; j < d; j++)
        xm[j] /= (double)n;
    for (size_t i = 0; i < n; i++) {
        yc[i] = y[i] - ym;
        for (size_t j = 0; j < d; j++)
            Xc[i * d + j] = X[i * d + j] - xm[j];
    }
    if (m->kind == REGRESS_LINEAR) {
        /* Minimum-norm least squares by SVD; singular values below 1e-10 of the largest are
         * treated as zero (the simplex direction is one of them). */
        lapack_int rank = 0;
        lapack_int info = LAPACKE_dgelsd(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)d, 1, Xc,
                                         (lapack_int)d, yc, 1, s, 1e-10, &rank);
        if (info != 0) {
            errbuf_set(err, errlen, "linear fit: dgelsd failed (info %d)", (int)info);
            rc = -EINVAL;
            goto out;
        }
        memcpy(m->coef, yc, d * sizeof *m->coef);
    } else {
        double alpha = p->ridge_alpha;
        if (!(alpha > 0) || !isfinite(alpha)) {
            errbuf_set(err, errlen, "ridge fit: alpha must be positive, got %g", alpha);
            rc = -EINVAL;
            goto out;
        }
        /* (Xc'Xc + alpha I) w = Xc'yc */
        for (size_t i = 0; i < n; i++) {
            const double *x = Xc + i * d;
            for (size_t j = 0; j < d; j++) {
                m->coef[j] += x[j] * yc[i];
                for (size_t k = j; k < d; k++)
                    A[j * d + k] += x[j] * x[k];
            }
        }
        for (size_t j = 0; j < d; j++)
            A[j * d + j] += alpha;
        lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)d, 1, A, (lapack_int)d,
                                        m->coef, 1);
        if (info != 0) {
            errbuf_set(err, errlen, "ridge fit: dposv failed (info %d)", (int)info);
            rc = -EINVAL;
            goto out;
        }
    }
    m->intercept = ym;
    for (size_t j = 0; j < d; j++)
        m->intercept -= m->coef[j] * xm[j];
    rc = 0;
out:
    free(xm);
    free(Xc);
    free(yc);
    free(A);
    free(s);
    return rc;
}

#define REGRESS_XGB(call)                                                                          \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            errbuf_set(err, errlen, "XGBoost: %s", XGBGetLastError());                             \
            rc = -EIO;                                                                             \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static int regress__fit_gbdt(regress_t *m,
                             const regress_params_t *p,
                             const double *X,
                             const double *y,
                             size_t n,
                             size_t d,
                             char *err,
                             size_t errlen)
{
    int rc = -ENOMEM;
    DMatrixHandle dm = NULL;
    float *Xf = malloc(n * d * sizeof *Xf);
    float *yf = malloc(n * sizeof *yf);
    if (!Xf || !yf)
        goto out;
    double ym = 0;
    for (size_t i = 0; i < n * d; i++)
        Xf[i] = (float)X[i];
    for (size_t i = 0; i < n; i++) {
        yf[i] = (float)y[i];
        ym += y[i];
    }
    ym /= (double)n;
    if (p->trees < 1 || p->max_leaves < 2 || !(p->learning_rate > 0) || p->max_bin < 2) {
        errbuf_set(err, errlen, "gbdt fit: bad parameters (trees %d, leaves %d, rate %g)", p->trees,
                   p->max_leaves, p->learning_rate);
        rc = -EINVAL;
        goto out;
    }
    REGRESS_XGB(XGDMatrixCreateFromMat(Xf, (bst_ulong)n, (bst_ulong)d, NAN, &dm));
    REGRESS_XGB(XGDMatrixSetFloatInfo(dm, "label", yf, (bst_ulong)n));
    REGRESS_XGB(XGBoosterCreate(&dm, 1, &m->booster));
    char buf[64];
    const char *fixed[][2] = {
            {"objective", "reg:squarederror"},
            {"tree_method", "hist"},
            {"grow_policy", "lossguide"},
            {"max_depth", "0"},
            {"verbosity", "0"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        REGRESS_XGB(XGBoosterSetParam(m->booster, fixed[i][0], fixed[i][1]));
#define REGRESS_SETF(name, fmt, val)                                                               \
    do {                                                                                           \
        snprintf(buf, sizeof buf, fmt, val);                                                       \
        REGRESS_XGB(XGBoosterSetParam(m->booster, name, buf));                                     \
    } while (0)
    REGRESS_SETF("max_leaves", "%d", p->max_leaves);
    REGRESS_SETF("eta", "%.17g", p->learning_rate);
    REGRESS_SETF("min_child_weight", "%.17g", p->min_child_weight);
    REGRESS_SETF("lambda", "%.17g", p->lambda);
    REGRESS_SETF("max_bin", "%d", p->max_bin);
    REGRESS_SETF("seed", "%llu", (unsigned long long)p->seed);
    REGRESS_SETF("base_score", "%.9g", ym);
    /* A RegMix fit has hundreds to a few thousand rows: XGBoost's per-tree parallel regions cost
     * more than they save there, and their spin-waiting threads starve everything else on a busy
     * machine (measured: 512 rows, 1000 trees, 1.2 s on 1 thread, no faster on 2, and several
     * times slower when two such fits share two cores). Threads pay off from ~20k rows. */
    int nthread = n < 20000 ? 1 : p->threads;
    if (nthread > 0)
        REGRESS_SETF("nthread", "%d", nthread);
#undef REGRESS_SETF
    for (int it = 0; it < p->trees; it++)
        REGRESS_XGB(XGBoosterUpdateOneIter(m->booster, it, dm));
    bst_ulong len = 0;
    const char *json = NULL;
    REGRESS_XGB(XGBoosterSaveModelToBuffer(m->booster, "{\"format\": \"json\"}", &len, &json));
    rc = forest_from_xgboost_json(json, (size_t)len, &m->forest, err, errlen);
out:
    if (dm)
        XGDMatrixFree(dm);
    free(Xf);
    free(yf);
    return rc;
}

int regress_fit(regress_kind_t kind,
                const regress_params_t *params,
                const double *X,
                const double *y,
                size_t n,
                size_t d,
                regress_t **ret,
                char *err,
                size_t errlen)
{
    regress_params_t defaults;
    if (!params) {
        regress_params_default(&defaults);
        params = &defaults;
    }
    if (n < 2 || d < 1) {
        errbuf_set(err, errlen, "fit: need at least 2 rows and 1 feature (got %zu x %zu)", n, d);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) {
            errbuf_set(err, errlen, "fit: target of row %zu is not finite", i);
            return -EINVAL;
        }
        for (size_t j = 0; j < d; j++)
            if (!isfinite(X[i * d + j])) {
                errbuf_set(err, errlen, "fit: feature %zu of row %zu is not finite", j, i);
                return -EINVAL;
            }
    }
    regress_t *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->kind = kind;
    m->d = d;
    m->threads = params->threads;
    int rc;
    switch (kind) {
    case REGRESS_LINEAR:
    case REGRESS_RIDGE:
        rc = regress__fit_linear(m, params, X, y, n, d, err, errlen);
        break;
    case REGRESS_GBDT:
        rc = regress__fit_gbdt(m, params, X, y, n, d, err, errlen);
        break;
    case REGRESS_GP:
    case REGRESS_LOGLINEAR:
        rc = surrogate_fit(kind == REGRESS_GP ? SURROGATE_GP : SURROGATE_LOGLINEAR, X, y, n, d,
                           params->seed, &m->sur, err, errlen);
        break;
    default:
        errbuf_set(err, errlen, "fit: unknown model kind %d", (int)kind);
        rc = -EINVAL;
    }
    if (rc != 0) {
        regress_destroy(&m);
        return rc;
    }
    *ret = m;
    return 0;
}

int regress_predict(const regress_t *m, const double *X, size_t n, double *out)
{
    if (m->sur)
        return surrogate_predict(m->sur, X, n, out, NULL);
    if (m->forest)
        return forest_predict(m->forest, X, n, m->d, out, m->threads);
    for (size_t i = 0; i < n; i++) {
        double s = m->intercept;
        for (size_t j = 0; j < m->d; j++)
            s += m->coef[j] * X[i * m->d + j];
        out[i] = s;
    }
    return 0;
}

int regress_predict_xgboost(const regress_t *m, const double *X, size_t n, double *out)
{
    if (!m->booster)
        return -ENOTSUP;
    char *err = NULL;
    size_t errlen = 0;
    int rc = -ENOMEM;
    DMatrixHandle dm = NULL;
    float *Xf = malloc((n ? n : 1) * m->d * sizeof *Xf);
    if (!Xf)
        goto out;
    for (size_t i = 0; i < n * m->d; i++)
        Xf[i] = (float)X[i];
    char nt[16];
    snprintf(nt, sizeof nt, "%d", m->threads > 0 ? m->threads : 0);
    REGRESS_XGB(XGBoosterSetParam(m->booster, "nthread", nt));
    REGRESS_XGB(XGDMatrixCreateFromMat_omp(Xf, (bst_ulong)n, (bst_ulong)m->d, NAN, &dm,
                                           m->threads > 0 ? m->threads : 0));
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *res = NULL;
    REGRESS_XGB(XGBoosterPredictFromDMatrix(m->booster, dm,
                                            "{\"type\": 0, \"training\": false, "
                                            "\"iteration_begin\": 0, \"iteration_end\": 0, "
                                            "\"strict_shape\": false}",
                                            &shape, &dim, &res));
    for (size_t i = 0; i < n; i++)
        out[i] = res[i];
    rc = 0;
out:
    if (dm)
        XGDMatrixFree(dm);
    free(Xf);
    return rc;
}

/* One fold of regress_cv(): fit on the rows whose fold is not f, predict those whose fold is f
 * into oof. Allocates its own buffers, so folds can run concurrently. */
static int regress__cv_fold(regress_kind_t kind,
                            const regress_params_t *params,
                            const double *X,
                            const double *y,
                            size_t n,
                            size_t d,
                            const int *fold,
                            int f,
                            double *oof,
                            char *err,
                            size_t errlen)
{
    int rc = -ENOMEM;
    double *Xt = malloc(n * d * sizeof *Xt), *yt = malloc(n * sizeof *yt);
    double *Xv = malloc(n * d * sizeof *Xv), *pv = malloc(n * sizeof *pv);
    regress_t *m = NULL;
    if (!Xt || !yt || !Xv || !pv)
        goto out;
    size_t nt = 0, nv = 0;
    for (size_t i = 0; i < n; i++) {
        if (fold[i] == f) {
            memcpy(Xv + nv++ * d, X + i * d, d * sizeof *X);
        } else {
            memcpy(Xt + nt * d, X + i * d, d * sizeof *X);
            yt[nt++] = y[i];
        }
    }
    rc = regress_fit(kind, params, Xt, yt, nt, d, &m, err, errlen);
    if (rc == 0)
        rc = regress_predict(m, Xv, nv, pv);
    for (size_t i = 0, v = 0; rc == 0 && i < n; i++)
        if (fold[i] == f)
            oof[i] = pv[v++];
out:
    regress_destroy(&m);
    free(Xt);
    free(yt);
    free(Xv);
    free(pv);
    return rc;
}

int regress_cv(regress_kind_t kind,
               const regress_params_t *params,
               const double *X,
               const double *y,
               size_t n,
               size_t d,
               int k,
               uint64_t seed,
               metrics_t *ret,
               char *err,
               size_t errlen)
{
    return regress_cv_predict(kind, params, X, y, n, d, k, seed, ret, NULL, err, errlen);
}

int regress_cv_predict(regress_kind_t kind,
                       const regress_params_t *params,
                       const double *X,
                       const double *y,
                       size_t n,
                       size_t d,
                       int k,
                       uint64_t seed,
                       metrics_t *ret,
                       double *ret_oof,
                       char *err,
                       size_t errlen)
{
    if (k < 2 || (size_t)k > n) {
        errbuf_set(err, errlen, "cross-validation: %d folds for %zu rows", k, n);
        return -EINVAL;
    }
    regress_params_t defaults;
    if (!params) {
        regress_params_default(&defaults);
        params = &defaults;
    }
    enum { ERRLEN = 512 };
    int rc = -ENOMEM;
    int *fold = malloc(n * sizeof *fold), *frc = calloc((size_t)k, sizeof *frc);
    double *oof = malloc(n * sizeof *oof);
    char *ferr = calloc((size_t)k, ERRLEN);
    if (!fold || !frc || !oof || !ferr)
        goto out;
    rc = metrics_kfold(n, k, seed, fold);
    if (rc != 0)
        goto out;
    /* Small gbdt fits run on one XGBoost thread each (see regress__fit_gbdt), so the folds
     * themselves run in parallel; each has its own booster and buffers. Linear fits take
     * microseconds and stay sequential. */
    int threads = params->threads > 0 ? params->threads : omp_get_max_threads();
    int par = kind == REGRESS_GBDT && n < 20000 && threads > 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads < k ? threads : k) if (par)
    for (int f = 0; f < k; f++)
        frc[f] = regress__cv_fold(kind, params, X, y, n, d, fold, f, oof, ferr + (size_t)f * ERRLEN,
                                  ERRLEN);
    for (int f = 0; f < k; f++)
        if (frc[f] != 0) {
            errbuf_set(err, errlen, "%s", ferr + (size_t)f * ERRLEN);
            rc = frc[f];
            goto out;
        }
    rc = metrics_compute(y, oof, n, ret);
    if (rc == 0)
        ret->folds = k;
    if (rc == 0 && ret_oof)
        memcpy(ret_oof, oof, n * sizeof *oof);
out:
    free(fold);
    free(frc);
    free(oof);
    free(ferr);
    return rc;
}
