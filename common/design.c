/* design: random, maximin and D-optimal first designs from a pool (design.h). */
#include "design.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int design_kind_parse(const char *name, design_kind_t *ret)
{
    static const char *const names[] = {"random", "maximin", "dopt"};
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *ret = (design_kind_t)i;
            return 0;
        }
    return -EINVAL;
}

static int
design__maximin(const double *pool, size_t m, size_t d, size_t k, rng_t *rng, size_t *ret_idx)
{
    double *Z = malloc(m * d * sizeof *Z), *near = malloc(m * sizeof *near);
    if (!Z || !near) {
        free(Z);
        free(near);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m * d; i++)
        Z[i] = pool[i] > 0 ? sqrt(pool[i]) : 0;
    for (size_t i = 0; i < m; i++)
        near[i] = INFINITY;
    size_t pick = (size_t)rng_below(rng, m);
    for (size_t c = 0; c < k; c++) {
        ret_idx[c] = pick;
        near[pick] = -1;
        size_t far = 0;
        double fd = -2;
        for (size_t i = 0; i < m; i++) {
            if (near[i] < 0)
                continue;
            double s = 0;
            for (size_t j = 0; j < d; j++) {
                double t = Z[i * d + j] - Z[pick * d + j];
                s += t * t;
            }
            if (s < near[i])
                near[i] = s;
            if (near[i] > fd) {
                fd = near[i];
                far = i;
            }
        }
        pick = far;
    }
    free(Z);
    free(near);
    return 0;
}

static int
design__dopt(const double *pool, size_t m, size_t d, size_t k, rng_t *rng, size_t *ret_idx)
{
    double *Mi = calloc(d * d, sizeof *Mi), *v = malloc(d * sizeof *v);
    char *used = calloc(m, 1);
    if (!Mi || !v || !used) {
        free(Mi);
        free(v);
        free(used);
        return -ENOMEM;
    }
    for (size_t j = 0; j < d; j++)
        Mi[j * d + j] = 1e6;
    size_t start = (size_t)rng_below(rng, m);
    for (size_t c = 0; c < k; c++) {
        size_t best = start;
        double bv = -1;
        if (c > 0) {
            for (size_t i = 0; i < m; i++) {
                if (used[i])
                    continue;
                const double *f = pool + i * d;
                double q = 0;
                for (size_t a = 0; a < d; a++) {
                    double r = 0;
                    for (size_t b = 0; b < d; b++)
                        r += Mi[a * d + b] * f[b];
                    q += f[a] * r;
                }
                if (q > bv) {
                    bv = q;
                    best = i;
                }
            }
        }
        ret_idx[c] = best;
        used[best] = 1;
        /* Sherman-Morrison: Mi -= Mi f f' Mi / (1 + f' Mi f) */
        const double *f = pool + best * d;
        double q = 0;
        for (size_t a = 0; a < d; a++) {
            v[a] = 0;
            for (size_t b = 0; b < d; b++)
                v[a] += Mi[a * d + b] * f[b];
            q += f[a] * v[a];
        }
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++)
                Mi[a * d + b] -= v[a] * v[b] / (1 + q);
    }
    free(Mi);
    free(v);
    free(used);
    return 0;
}

int design_select(design_kind_t kind,
                  const double *pool,
                  size_t m,
                  size_t d,
                  size_t k,
                  rng_t *rng,
                  size_t *ret_idx)
{
    if (k == 0 || k > m || d == 0)
        return -EINVAL;
    switch (kind) {
    case DESIGN_RANDOM:
        for (size_t i = 0; i < k; i++)
            ret_idx[i] = i;
        return 0;
    case DESIGN_MAXIMIN:
        return design__maximin(pool, m, d, k, rng, ret_idx);
    case DESIGN_DOPT:
        return design__dopt(pool, m, d, k, rng, ret_idx);
    }
    return -EINVAL;
}
