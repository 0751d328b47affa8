/*
 * design: first designs for a sweep, chosen from a pool of candidate mixtures (for instance the
 * sampler's Dirichlet sweep, which keeps the epoch bounds): k of the m pool rows by
 *
 *   random   the first k rows (the pool is already random)
 *   maximin  greedy farthest-point (Gonzalez 1985) in Hellinger space (sqrt of the weights):
 *            each pick is the pool row farthest from every row picked so far, a space-filling
 *            design that a 2-approximation of the maximin one
 *   dopt     greedy D-optimal for a linear model in the weights: each pick maximises the
 *            prediction variance f' M^-1 f under the picks so far (M = sum f f' + 1e-6 I),
 *            the sequential construction of Wynn (1970), which increases det M the most
 *
 * Pure functions over caller buffers; rng drives the random start.
 */
#ifndef REGMIX_DESIGN_H
#define REGMIX_DESIGN_H

#include <stddef.h>

#include "rng.h"

typedef enum design_kind {
    DESIGN_RANDOM = 0,
    DESIGN_MAXIMIN,
    DESIGN_DOPT,
} design_kind_t;

/* Parses "random", "maximin" or "dopt"; returns 0 or -EINVAL. */
int design_kind_parse(const char *name, design_kind_t *ret);

/* Writes the indexes of k distinct rows of pool (m, d) to ret_idx (k). Returns 0, -EINVAL
 * (k > m or k == 0), -ENOMEM. */
int design_select(design_kind_t kind,
                  const double *pool,
                  size_t m,
                  size_t d,
                  size_t k,
                  rng_t *rng,
                  size_t *ret_idx);

#endif
