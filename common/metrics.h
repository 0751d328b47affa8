/*
 * metrics: how well predictions match observations, and the k-fold split that produces
 * out-of-fold predictions to measure them on.
 *
 * Pure functions over caller-owned arrays of length n; nothing is kept. Spearman's ρ is the
 * Pearson correlation of the ranks, ties sharing the average of the ranks they span (the
 * definition scipy.stats.spearmanr uses). A correlation over a constant vector is undefined and
 * comes back as NAN, as does any metric over fewer than two points.
 */
#ifndef REGMIX_METRICS_H
#define REGMIX_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* The metrics of one prediction set against its observations. */
typedef struct metrics {
    size_t n;        /* number of points */
    int folds;       /* k for cross-validation, 0 for a held-out test set */
    double spearman; /* rank correlation, average ranks for ties */
    double pearson;  /* linear correlation */
    double mse;      /* mean squared error */
    double r2;       /* coefficient of determination, 1 - SS_res / SS_tot */
} metrics_t;

/* Writes the 1-based ranks of x[0..n) to ret_ranks[0..n), ties getting the average of the ranks
 * they span ([10, 20, 20, 30] -> [1, 2.5, 2.5, 4]). Returns 0 or -ENOMEM. */
int metrics_rank(const double *x, size_t n, double *ret_ranks);

/* Pearson correlation of a and b; NAN if n < 2 or either is constant. */
double metrics_pearson(const double *a, const double *b, size_t n);

/* Spearman rank correlation of a and b with average ranks for ties; NAN as for Pearson or if
 * memory runs out. */
double metrics_spearman(const double *a, const double *b, size_t n);

/* Mean squared error of pred against truth; NAN if n == 0. */
double metrics_mse(const double *truth, const double *pred, size_t n);

/* R² of pred against truth (1 - SS_res / SS_tot, may be negative); NAN if truth is constant. */
double metrics_r2(const double *truth, const double *pred, size_t n);

/* Fills *ret with all four metrics of pred against truth (ret->folds = 0). Returns 0, -EINVAL if
 * n < 2, or -ENOMEM. */
int metrics_compute(const double *truth, const double *pred, size_t n, metrics_t *ret);

/* Assigns each of n points a fold in [0, k): a seeded shuffle (rng.h) dealt round-robin, so
 * fold sizes differ by at most one and the same seed gives the same split. Returns 0, -EINVAL if
 * k < 2 or k > n, or -ENOMEM. */
int metrics_kfold(size_t n, int k, uint64_t seed, int *ret_fold);

#endif
