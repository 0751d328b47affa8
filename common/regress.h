/*
 * regress: the RegMix regression from mixture weights to a validation loss (docs/method.md).
 *
 * Three kinds of model share one opaque handle. `linear` is least squares with an intercept; the
 * mixture columns sum to one, so with an intercept the design is rank-deficient, and the fit
 * centres X and y and takes the minimum-norm least-squares slopes (LAPACK dgelsd, an SVD), which
 * are unique and predict the same as any other least-squares solution on the simplex. `ridge`
 * adds alpha * |slopes|² (the intercept is not penalised), solved by Cholesky (dposv). `gbdt` is
 * gradient-boosted regression trees trained with XGBoost's C API on the paper's LightGBM settings
 * (1000 trees, learning rate 0.01, at most 31 leaves grown best-first, 20 rows per leaf, base score
 * = mean target as LightGBM's boost_from_average, no L2 on leaves), then evaluated with forest.h.
 *
 * A fitted regress_t is immutable: regress_predict() may run concurrently from many threads on
 * disjoint outputs. The model copies what it needs; the caller keeps ownership of X and y.
 */
#ifndef REGMIX_REGRESS_H
#define REGMIX_REGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "forest.h"
#include "metrics.h"

typedef enum regress_kind {
    REGRESS_LINEAR = 0,
    REGRESS_RIDGE = 1,
    REGRESS_GBDT = 2,
    REGRESS_GP = 3,        /* Gaussian process on sqrt(weights) with a ridge mean (gp.h) */
    REGRESS_LOGLINEAR = 4, /* L = c + exp(sum t_j w_j) (surrogate.h) */
} regress_kind_t;

typedef struct regress_params {
    double ridge_alpha;      /* ridge: penalty on the squared slopes (default 1e-3) */
    int trees;               /* gbdt: boosting rounds (1000) */
    double learning_rate;    /* gbdt: shrinkage (0.01) */
    int max_leaves;          /* gbdt: leaves per tree (31) */
    double min_child_weight; /* gbdt: hessian (= rows, for squared error) per leaf (20) */
    double lambda;           /* gbdt: L2 penalty on leaf values (0, as LightGBM's default) */
    int max_bin;             /* gbdt: histogram bins per feature (256) */
    uint64_t seed;           /* gbdt: XGBoost seed (42) */
    int threads;             /* threads for prediction and fits over 20k rows; <= 0: all */
} regress_params_t;

typedef struct regress regress_t;

/* Fills *p with the defaults above. */
void regress_params_default(regress_params_t *p);

/* Parses "linear", "ridge", "gbdt", "gp" or "loglinear"; returns 0 or -EINVAL. gp and loglinear
 * take mixtures (rows summing to 1) and are fitted by surrogate.h. */
int regress_kind_parse(const char *name, regress_kind_t *ret);

/* The name of a kind ("linear", "ridge", "gbdt", "gp", "loglinear"). */
const char *regress_kind_name(regress_kind_t kind);

/* Fits a model of `kind` to rows X (n, d) row-major and targets y (n). params may be NULL for the
 * defaults. On success *ret is a new model the caller frees with regress_destroy(). Returns 0,
 * -EINVAL (bad sizes, non-finite data, a singular system; message in err), -EIO (XGBoost failed;
 * its message in err), -ENOMEM. */
int regress_fit(regress_kind_t kind,
                const regress_params_t *params,
                const double *X,
                const double *y,
                size_t n,
                size_t d,
                regress_t **ret,
                char *err,
                size_t errlen);

/* Predicts rows X (n, d) with d as fitted into out (n). Multi-threaded over rows for gbdt and
 * thread-safe. Returns 0 or -ENOMEM. */
int regress_predict(const regress_t *model, const double *X, size_t n, double *out);

/* The same predictions computed by XGBoost itself (gbdt only; the reference for forest.h and the
 * benchmark). Returns 0, -ENOTSUP for other kinds, -EIO if XGBoost fails. Not thread-safe. */
int regress_predict_xgboost(const regress_t *model, const double *X, size_t n, double *out);

/* The model's kind and its number of features. */
regress_kind_t regress_kind(const regress_t *model);
size_t regress_nfeatures(const regress_t *model);

/* The tree ensemble of a gbdt model (owned by the model), NULL for other kinds. */
const forest_t *regress_forest(const regress_t *model);

/* Linear and ridge: the intercept and the d slopes (owned by the model); NULL for gbdt. */
const double *regress_coef(const regress_t *model, double *ret_intercept);

/* Frees the model and sets *self_p to NULL; NULL or *self_p == NULL is a harmless no-op. */
void regress_destroy(regress_t **self_p);

/* k-fold cross-validation: splits the n rows with metrics_kfold(n, k, seed), fits on k-1 folds,
 * predicts the held-out one, and scores all out-of-fold predictions together into *ret
 * (ret->folds = k). Returns 0, -EINVAL (k < 2, k > n, or a fit error, message in err), -EIO,
 * -ENOMEM. */
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
               size_t errlen);

/* regress_cv() that also writes the out-of-fold prediction of every row to ret_oof (n), the
 * numbers behind the scores (the dashboard's predicted-against-actual plot). ret_oof is
 * untouched on failure. */
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
                       size_t errlen);

#endif
