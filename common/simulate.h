/*
 * simulate: the RegMix proposal (docs/method.md). Draw N candidate mixtures from Dirichlet(alpha),
 * predict each with a fitted model, and average the weights of the top_k with the lowest
 * prediction.
 *
 * alpha is used as given: the authors' script draws np.random.dirichlet(prior) with the prior
 * token shares (summing to 1) as the concentration, so most candidates sit near a corner or an
 * edge of the simplex and the search covers extreme mixtures too. Scale alpha yourself for a
 * tighter cloud around the prior.
 *
 * Reproducibility: candidates come in blocks of SIMULATE_BLOCK; block b draws from its own stream
 * rng_split(rng_seed(seed), b), so candidate i is the same whatever the thread count. The top_k is
 * ordered by (prediction, candidate index), a total order, so the chosen set and the averages are
 * identical for any thread count. Each thread keeps a bounded max-heap; the heaps are merged at
 * the end. At most threads * SIMULATE_BLOCK candidates are in memory at once.
 *
 * For gbdt models the trees are applied in stages, and after each stage a candidate whose lower
 * bound (partial sum + the smallest leaves the remaining trees can give it, forest_bounds_row())
 * exceeds an upper bound on the k-th best prediction (the heap's worst, or the block's k-th
 * smallest upper bound) is dropped.
 * Dropped candidates provably cannot be in the top_k, and the survivors' predictions are summed in
 * the same order as a full prediction, so the result equals the unpruned one exactly.
 */
#ifndef REGMIX_SIMULATE_H
#define REGMIX_SIMULATE_H

#include <stddef.h>
#include <stdint.h>

#include "regress.h"

/* Candidates per block (one RNG stream, one unit of work for a thread). */
#define SIMULATE_BLOCK 16384

typedef struct simulate_params {
    size_t candidates; /* N (default 1,000,000) */
    int top_k;         /* candidates averaged (default 100), 1 <= top_k <= N */
    uint64_t seed;     /* default 42 */
    int threads;       /* <= 0: the OpenMP default */
    int prune;         /* gbdt: drop candidates by bounds (default 1); 0 predicts all in full */
} simulate_params_t;

typedef struct simulate_result {
    size_t simulated;           /* N */
    int top_k;                  /* k */
    double predicted;           /* mean prediction of the top k */
    double best;                /* lowest prediction */
    double trees_per_candidate; /* gbdt: trees evaluated per candidate on average (pruning) */
} simulate_result_t;

/* Fills *p with the defaults above. */
void simulate_params_default(simulate_params_t *p);

/* Runs the simulation for `model` (d features) with Dirichlet concentration alpha[0..d) (each
 * finite and > 0). Writes the averaged weights of the top_k to ret_weights[0..d) and the summary to
 * *ret. Returns 0, -EINVAL (bad alpha, d, N or top_k; message in err), -ENOMEM. */
int simulate_run(const regress_t *model,
                 const double *alpha,
                 size_t d,
                 const simulate_params_t *p,
                 double *ret_weights,
                 simulate_result_t *ret,
                 char *err,
                 size_t errlen);

/* A predictor of mixtures: writes the predictions of the n candidate mixtures W (n, d) to out (n).
 * Called concurrently from several threads on disjoint blocks; returns 0 or a negative errno. */
typedef int (*simulate_predict_fn)(
        const void *ctx, const double *W, size_t n, size_t d, double *out);

/* The same simulation for any predictor of mixtures (a model over derived features, say): the
 * same candidates, the same top_k order and heap, no pruning. simulate_run() on a linear or ridge
 * model equals simulate_run_fn() with a predictor calling regress_predict(). Same returns as
 * simulate_run(), plus the predictor's errors. */
int simulate_run_fn(simulate_predict_fn predict,
                    const void *ctx,
                    const double *alpha,
                    size_t d,
                    const simulate_params_t *p,
                    double *ret_weights,
                    simulate_result_t *ret,
                    char *err,
                    size_t errlen);

#endif
