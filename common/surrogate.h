/*
 * surrogate: the models the active search can fit (docs/search.md), one opaque handle over
 *
 *   linear     least squares with an intercept (regress.h)
 *   ridge      ridge on the weights, penalty chosen by generalised cross-validation (GCV,
 *              Golub, Heath & Wahba 1979) over a log grid, from one SVD
 *   loglinear  L = c + exp(sum_j t_j w_j), the form of Data Mixing Laws (Ye et al. 2024) and
 *              olmix (the k of L = c + k exp(...) is exp of a shift of t, since the w sum to 1),
 *              fitted by Levenberg-Marquardt from a log-linear start, t lightly ridged
 *   quadratic  ridge (GCV) on the products w_i w_j, i <= j (a full quadratic on the simplex)
 *   gp         Gaussian process (gp.h): the only one with its own uncertainty
 *   gbdt       XGBoost trees on the paper's settings (regress.h), min_child_weight capped at n/16
 *   cv         the one of linear, ridge, loglinear, quadratic and gp with the lowest 5-fold
 *              cross-validated squared error (gbdt is left out: 5 fits of 1000 trees per round)
 *
 * A fitted surrogate_t is immutable and thread-safe to predict from; it copies what it needs.
 */
#ifndef REGMIX_SURROGATE_H
#define REGMIX_SURROGATE_H

#include <stddef.h>
#include <stdint.h>

#include "gp.h"

typedef enum surrogate_kind {
    SURROGATE_LINEAR = 0,
    SURROGATE_RIDGE,
    SURROGATE_LOGLINEAR,
    SURROGATE_QUADRATIC,
    SURROGATE_GP,
    SURROGATE_GBDT,
    SURROGATE_CV,
    SURROGATE_NKINDS
} surrogate_kind_t;

typedef struct surrogate surrogate_t;

/* Parses a kind name ("linear", ..., "cv"); returns 0 or -EINVAL. */
int surrogate_kind_parse(const char *name, surrogate_kind_t *ret);

/* The name of a kind. */
const char *surrogate_kind_name(surrogate_kind_t kind);

/* Fits `kind` to rows X (n, d), mixtures summing to 1, and targets y (n); seed drives the CV
 * split and XGBoost. On success *ret is a new model freed with surrogate_destroy(). Returns 0,
 * -EINVAL (too few rows, non-finite data, a failed solve; message in err), -EIO, -ENOMEM. */
int surrogate_fit(surrogate_kind_t kind,
                  const double *X,
                  const double *y,
                  size_t n,
                  size_t d,
                  uint64_t seed,
                  surrogate_t **ret,
                  char *err,
                  size_t errlen);

/* Predicts rows X (m, d) into mean (m); when sd is non-NULL, the model's own standard deviation
 * of the mean (gp) or NAN (the others) into sd (m). Returns 0 or -ENOMEM. */
int surrogate_predict(const surrogate_t *s, const double *X, size_t m, double *mean, double *sd);

/* The kind actually fitted (cv resolves to the chosen one). */
surrogate_kind_t surrogate_kind(const surrogate_t *s);

/* The GP inside a gp surrogate, else NULL. */
const gp_t *surrogate_gp(const surrogate_t *s);

/* Frees the model and sets *self_p to NULL; NULL or *self_p == NULL is a harmless no-op. */
void surrogate_destroy(surrogate_t **self_p);

/* 5-fold cross-validated mean squared error of `kind` on (X, y) with the split seeded by seed.
 * Returns 0 and the MSE in *ret, or a negative errno from a fit. */
int surrogate_cv_mse(surrogate_kind_t kind,
                     const double *X,
                     const double *y,
                     size_t n,
                     size_t d,
                     uint64_t seed,
                     double *ret,
                     char *err,
                     size_t errlen);

/* Ridge regression of y (n) on the p columns of F (n, p), with an unpenalised intercept and the
 * penalty chosen by GCV over alpha = s_max^2 * 10^-k, k = 0..10 (s_max the largest singular value
 * of the centred F). Writes the intercept to *ret_b0 and the slopes to ret_b (p). Returns 0,
 * -EINVAL (SVD failed), -ENOMEM. */
int surrogate_ridge_gcv(const double *F,
                        const double *y,
                        size_t n,
                        size_t p,
                        double *ret_b0,
                        double *ret_b,
                        char *err,
                        size_t errlen);

/* The d (d + 1) / 2 products w_i w_j (i <= j) of each row of X (n, d) into out (n, q). */
void surrogate_quadratic_expand(const double *X, size_t n, size_t d, double *out);

#endif
