/* metrics: Spearman, Pearson, MSE, R² and the k-fold split (see metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "rng.h"

typedef struct metrics__item {
    double v;
    size_t i;
} metrics__item_t;

static int metrics__item_cmp(const void *pa, const void *pb)
{
    const metrics__item_t *a = pa, *b = pb;
    if (a->v < b->v)
        return -1;
    if (a->v > b->v)
        return 1;
    return (a->i > b->i) - (a->i < b->i);
}

int metrics_rank(const double *x, size_t n, double *ret_ranks)
{
    metrics__item_t *it = malloc((n ? n : 1) * sizeof *it);
    if (!it)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        it[i] = (metrics__item_t){x[i], i};
    qsort(it, n, sizeof *it, metrics__item_cmp);
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo + 1;
        while (hi < n && it[hi].v == it[lo].v)
            hi++;
        /* positions lo..hi-1 hold ranks lo+1..hi: their average */
        double r = 0.5 * (double)(lo + 1 + hi);
        for (size_t j = lo; j < hi; j++)
            ret_ranks[it[j].i] = r;
        lo = hi;
    }
    free(it);
    return 0;
}

double metrics_pearson(const double *a, const double *b, size_t n)
{
    if (n < 2)
        return NAN;
    double ma = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= (double)n;
    mb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        double da = a[i] - ma, db = b[i] - mb;
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    if (saa <= 0 || sbb <= 0)
        return NAN;
    return sab / sqrt(saa * sbb);
}

double metrics_spearman(const double *a, const double *b, size_t n)
{
    if (n < 2)
        return NAN;
    double *ra = malloc(2 * n * sizeof *ra);
    if (!ra)
        return NAN;
    double *rb = ra + n;
    double r = NAN;
    if (metrics_rank(a, n, ra) == 0 && metrics_rank(b, n, rb) == 0)
        r = metrics_pearson(ra, rb, n);
    free(ra);
    return r;
}

double metrics_mse(const double *truth, const double *pred, size_t n)
{
    if (n == 0)
        return NAN;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = truth[i] - pred[i];
        s += e * e;
    }
    return s / (double)n;
}

double metrics_r2(const double *truth, const double *pred, size_t n)
{
    if (n == 0)
        return NAN;
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m += truth[i];
    m /= (double)n;
    double res = 0, tot = 0;
    for (size_t i = 0; i < n; i++) {
        res += (truth[i] - pred[i]) * (truth[i] - pred[i]);
        tot += (truth[i] - m) * (truth[i] - m);
    }
    if (tot <= 0)
        return NAN;
    return 1.0 - res / tot;
}

int metrics_compute(const double *truth, const double *pred, size_t n, metrics_t *ret)
{
    if (n < 2)
        return -EINVAL;
    double *ranks = malloc(2 * n * sizeof *ranks);
    if (!ranks)
        return -ENOMEM;
    int rc = metrics_rank(truth, n, ranks);
    if (rc == 0)
        rc = metrics_rank(pred, n, ranks + n);
    if (rc == 0) {
        ret->n = n;
        ret->folds = 0;
        ret->spearman = metrics_pearson(ranks, ranks + n, n);
        ret->pearson = metrics_pearson(truth, pred, n);
        ret->mse = metrics_mse(truth, pred, n);
        ret->r2 = metrics_r2(truth, pred, n);
    }
    free(ranks);
    return rc;
}

int metrics_kfold(size_t n, int k, uint64_t seed, int *ret_fold)
{
    if (k < 2 || (size_t)k > n)
        return -EINVAL;
    size_t *perm = malloc(n * sizeof *perm);
    if (!perm)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    rng_t rng;
    rng_seed(&rng, seed);
    /* Fisher-Yates */
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rng_below(&rng, (uint64_t)i + 1);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        ret_fold[perm[i]] = (int)(i % (size_t)k);
    free(perm);
    return 0;
}
