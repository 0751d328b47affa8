/* forest: flat, binned evaluation of an XGBoost tree ensemble (see forest.h). */
#include "forest.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

/* Rows per cache block: their bins (BLOCK * nfeatures * 2 bytes) and sums stay in L1 while every
 * tree passes over them. */
#define FOREST_BLOCK 256

/* Cells of the binning shortcut over [0, 1), where mixture weights live: a cell's entry is the
 * bin of its left edge (a power-of-two fraction, exact in float), so a value's bin is at most a
 * few steps to the right of its cell's entry instead of a binary search. */
#define FOREST_LUT 1024

/* A node: internal nodes go to left + (bin > split_bin); a leaf has split_bin 0xFFFF (no uint16
 * exceeds it) and left == itself, so extra steps stay put. */
typedef struct forest_node {
    uint16_t split_bin;
    uint8_t feat;
    uint8_t is_leaf;
    uint32_t left;
} forest_node_t;

struct forest {
    int ntrees;
    int nfeat;
    double base;
    size_t nnodes;
    forest_node_t *nodes; /* (nnodes): every tree, children side by side */
    float *value;         /* (nnodes): leaf value, 0 for internal nodes */
    float *thr;           /* (nnodes): float threshold, for the NaN path */
    uint8_t *default_left;
    uint32_t *root;   /* (ntrees) */
    uint8_t *depth;   /* (ntrees) */
    double *rest_min; /* (ntrees + 1): suffix sums of each tree's smallest leaf */
    double *rest_max;
    float **cuts; /* (nfeat): sorted distinct thresholds of the feature */
    int *ncuts;
    uint16_t *lut; /* (nfeat, FOREST_LUT): bin of each cell's left edge */
};

void forest_destroy(forest_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    forest_t *f = *self_p;
    if (f->cuts)
        for (int j = 0; j < f->nfeat; j++)
            free(f->cuts[j]);
    free(f->cuts);
    free(f->ncuts);
    free(f->lut);
    free(f->nodes);
    free(f->value);
    free(f->thr);
    free(f->default_left);
    free(f->root);
    free(f->depth);
    free(f->rest_min);
    free(f->rest_max);
    free(f);
    *self_p = NULL;
}

static int forest__float_cmp(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;
    return (a > b) - (a < b);
}

/* Number of cuts <= x (upper bound): the bin of x. */
static inline uint16_t forest__bin_of(const float *cuts, int ncuts, float x)
{
    int lo = 0, hi = ncuts;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (cuts[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint16_t)lo;
}

static int forest__str_number(json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        char *end;
        *out = strtod(json_string_value(v), &end);
        return *end ? -EINVAL : 0;
    }
    return -EINVAL;
}

typedef struct forest__tree_json {
    json_t *left, *right, *feat, *cond, *dleft;
    size_t n;
} forest__tree_json_t;

static int forest__tree_arrays(json_t *tree, forest__tree_json_t *t)
{
    t->left = json_object_get(tree, "left_children");
    t->right = json_object_get(tree, "right_children");
    t->feat = json_object_get(tree, "split_indices");
    t->cond = json_object_get(tree, "split_conditions");
    t->dleft = json_object_get(tree, "default_left");
    if (!json_is_array(t->left) || !json_is_array(t->right) || !json_is_array(t->feat) ||
        !json_is_array(t->cond) || !json_is_array(t->dleft))
        return -EINVAL;
    t->n = json_array_size(t->left);
    if (t->n == 0 || json_array_size(t->right) != t->n || json_array_size(t->feat) != t->n ||
        json_array_size(t->cond) != t->n || json_array_size(t->dleft) != t->n)
        return -EINVAL;
    /* numeric splits only: a categorical split (split_type 1) tests set membership */
    json_t *st = json_object_get(tree, "split_type");
    for (size_t i = 0; json_is_array(st) && i < json_array_size(st); i++)
        if (json_integer_value(json_array_get(st, i)) != 0)
            return -EINVAL;
    return 0;
}

static long forest__int_at(json_t *arr, size_t i)
{
    json_t *v = json_array_get(arr, i);
    if (json_is_integer(v))
        return (long)json_integer_value(v);
    if (json_is_boolean(v))
        return json_is_true(v);
    return LONG_MIN;
}

int forest_from_xgboost_json(const char *json, size_t len, forest_t **ret, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        errbuf_set(err, errlen, "model JSON: line %d: %s", jerr.line, jerr.text);
        return -EINVAL;
    }
    int rc = -EINVAL;
    forest_t *f = NULL;
    size_t *queue = NULL;
    long *newid = NULL;
    json_t *learner = json_object_get(root, "learner");
    json_t *mp = json_object_get(learner, "learner_model_param");
    json_t *gb = json_object_get(learner, "gradient_booster");
    json_t *model = json_object_get(gb, "model");
    json_t *trees = json_object_get(model, "trees");
    double base = 0, nfeat_d = 0, ntarget = 1;
    if (!learner || !json_is_array(trees) || json_array_size(trees) == 0 ||
        forest__str_number(json_object_get(mp, "base_score"), &base) != 0 ||
        forest__str_number(json_object_get(mp, "num_feature"), &nfeat_d) != 0) {
        errbuf_set(err, errlen, "model JSON: not a gbtree model with trees and base_score");
        goto out;
    }
    json_t *nt = json_object_get(mp, "num_target");
    if (nt && forest__str_number(nt, &ntarget) == 0 && ntarget > 1) {
        errbuf_set(err, errlen, "model JSON: %g targets, only one is supported", ntarget);
        goto out;
    }
    if (nfeat_d < 1 || nfeat_d > 255) {
        errbuf_set(err, errlen, "model JSON: %g features (1..255 supported)", nfeat_d);
        goto out;
    }
    rc = -ENOMEM;
    f = calloc(1, sizeof *f);
    if (!f)
        goto out;
    f->ntrees = (int)json_array_size(trees);
    f->nfeat = (int)nfeat_d;
    /* XGBoost keeps base_score as a float. */
    f->base = (double)(float)base;
    size_t total = 0, maxn = 0;
    rc = -EINVAL;
    for (int t = 0; t < f->ntrees; t++) {
        forest__tree_json_t tj;
        if (forest__tree_arrays(json_array_get(trees, (size_t)t), &tj) != 0) {
            errbuf_set(err, errlen,
                       "model JSON: tree %d lacks its node arrays or has "
                       "categorical splits",
                       t);
            goto out;
        }
        total += tj.n;
        if (tj.n > maxn)
            maxn = tj.n;
    }
    rc = -ENOMEM;
    f->nodes = calloc(total, sizeof *f->nodes);
    f->value = calloc(total, sizeof *f->value);
    f->thr = calloc(total, sizeof *f->thr);
    f->default_left = calloc(total, 1);
    f->root = calloc((size_t)f->ntrees, sizeof *f->root);
    f->depth = calloc((size_t)f->ntrees, 1);
    f->rest_min = calloc((size_t)f->ntrees + 1, sizeof *f->rest_min);
    f->rest_max = calloc((size_t)f->ntrees + 1, sizeof *f->rest_max);
    f->cuts = calloc((size_t)f->nfeat, sizeof *f->cuts);
    f->ncuts = calloc((size_t)f->nfeat, sizeof *f->ncuts);
    queue = malloc(maxn * sizeof *queue);
    newid = malloc(maxn * sizeof *newid);
    if (!f->nodes || !f->value || !f->thr || !f->default_left || !f->root || !f->depth ||
        !f->rest_min || !f->rest_max || !f->cuts || !f->ncuts || !queue || !newid)
        goto out;
    for (int j = 0; j < f->nfeat; j++) {
        f->cuts[j] = malloc(total * sizeof(float));
        if (!f->cuts[j])
            goto out;
    }

    /* Pass 1: lay each tree out breadth-first with children side by side. */
    size_t next = 0;
    double *tmin = f->rest_min, *tmax = f->rest_max; /* per tree first, suffix sums after */
    rc = -EINVAL;
    for (int t = 0; t < f->ntrees; t++) {
        forest__tree_json_t tj;
        forest__tree_arrays(json_array_get(trees, (size_t)t), &tj);
        for (size_t i = 0; i < tj.n; i++)
            newid[i] = -1;
        size_t base_id = next, qh = 0, qt = 0;
        f->root[t] = (uint32_t)base_id;
        queue[qt++] = 0;
        newid[0] = (long)next++;
        uint8_t *depth = calloc(tj.n, 1);
        if (!depth) {
            rc = -ENOMEM;
            goto out;
        }
        int maxdepth = 0;
        tmin[t] = INFINITY;
        tmax[t] = -INFINITY;
        while (qh < qt) {
            size_t u = queue[qh++];
            size_t nu = (size_t)newid[u];
            long l = forest__int_at(tj.left, u), r = forest__int_at(tj.right, u);
            double cond;
            if (forest__str_number(json_array_get(tj.cond, u), &cond) != 0)
                l = LONG_MIN;
            if (l == -1) {
                f->nodes[nu] = (forest_node_t){0xFFFF, 0, 1, (uint32_t)nu};
                f->value[nu] = (float)cond;
                if (f->value[nu] < tmin[t])
                    tmin[t] = f->value[nu];
                if (f->value[nu] > tmax[t])
                    tmax[t] = f->value[nu];
                continue;
            }
            long feat = forest__int_at(tj.feat, u);
            long dl = forest__int_at(tj.dleft, u);
            if (l <= 0 || r <= 0 || (size_t)l >= tj.n || (size_t)r >= tj.n || newid[l] != -1 ||
                newid[r] != -1 || feat < 0 || feat >= f->nfeat || dl == LONG_MIN ||
                !isfinite(cond)) {
                errbuf_set(err, errlen, "model JSON: tree %d node %zu is malformed", t, u);
                free(depth);
                goto out;
            }
            newid[l] = (long)next++;
            newid[r] = (long)next++;
            queue[qt++] = (size_t)l;
            queue[qt++] = (size_t)r;
            depth[l] = depth[r] = (uint8_t)(depth[u] + 1);
            if (depth[l] > maxdepth)
                maxdepth = depth[l];
            f->nodes[nu] = (forest_node_t){0, (uint8_t)feat, 0, (uint32_t)newid[l]};
            f->thr[nu] = (float)cond;
            f->default_left[nu] = dl != 0;
            f->cuts[feat][f->ncuts[feat]++] = (float)cond;
        }
        free(depth);
        if (maxdepth > 255) {
            errbuf_set(err, errlen, "model JSON: tree %d is deeper than 255", t);
            goto out;
        }
        f->depth[t] = (uint8_t)maxdepth;
    }
    f->nnodes = next;
    for (int t = f->ntrees - 1; t >= 0; t--) {
        tmin[t] += tmin[t + 1];
        tmax[t] += tmax[t + 1];
    }

    /* Pass 2: distinct thresholds per feature, and each split's index among them. */
    for (int j = 0; j < f->nfeat; j++) {
        float *c = f->cuts[j];
        int m = f->ncuts[j], u = 0;
        qsort(c, (size_t)m, sizeof *c, forest__float_cmp);
        for (int i = 0; i < m; i++)
            if (u == 0 || c[i] != c[u - 1])
                c[u++] = c[i];
        f->ncuts[j] = u;
        if (u > 65534) {
            errbuf_set(err, errlen, "model: feature %d has %d thresholds (65534 at most)", j, u);
            rc = -E2BIG;
            goto out;
        }
    }
    if (!(f->lut = malloc((size_t)f->nfeat * FOREST_LUT * sizeof *f->lut))) {
        rc = -ENOMEM;
        goto out;
    }
    for (int j = 0; j < f->nfeat; j++)
        for (int c = 0; c < FOREST_LUT; c++)
            f->lut[(size_t)j * FOREST_LUT + c] =
                    forest__bin_of(f->cuts[j], f->ncuts[j], (float)c / FOREST_LUT);
    for (size_t k = 0; k < f->nnodes; k++) {
        forest_node_t *nd = &f->nodes[k];
        if (nd->is_leaf)
            continue;
        /* the index j of thr among the cuts: x < thr  <=>  bin(x) <= j */
        nd->split_bin =
                (uint16_t)(forest__bin_of(f->cuts[nd->feat], f->ncuts[nd->feat], f->thr[k]) - 1);
    }
    *ret = f;
    f = NULL;
    rc = 0;
out:
    free(queue);
    free(newid);
    forest_destroy(&f);
    json_decref(root);
    return rc;
}

int forest_ntrees(const forest_t *f)
{
    return f->ntrees;
}

int forest_nfeatures(const forest_t *f)
{
    return f->nfeat;
}

double forest_base_score(const forest_t *f)
{
    return f->base;
}

void forest_bound_rest(const forest_t *f, int tree_begin, double *ret_min, double *ret_max)
{
    if (tree_begin < 0)
        tree_begin = 0;
    if (tree_begin > f->ntrees)
        tree_begin = f->ntrees;
    *ret_min = f->rest_min[tree_begin];
    *ret_max = f->rest_max[tree_begin];
}

int forest_bin(const forest_t *f, const double *X, size_t n, size_t d, uint16_t *ret_bins)
{
    if (d < (size_t)f->nfeat)
        return -EINVAL;
    const int m = f->nfeat;
    for (size_t i = 0; i < n; i++) {
        const double *x = X + i * d;
        uint16_t *b = ret_bins + i * (size_t)m;
        for (int j = 0; j < m; j++) {
            if (isnan(x[j]))
                return -EINVAL;
            const float v = (float)x[j];
            if (v >= 0.0f && v < 1.0f) {
                /* v * FOREST_LUT is exact, so the cell's left edge is <= v */
                int k = f->lut[(size_t)j * FOREST_LUT + (int)(v * FOREST_LUT)];
                const float *cuts = f->cuts[j];
                while (k < f->ncuts[j] && cuts[k] <= v)
                    k++;
                b[j] = (uint16_t)k;
            } else {
                b[j] = forest__bin_of(f->cuts[j], f->ncuts[j], v);
            }
        }
    }
    return 0;
}

/* The exact path for one row, as XGBoost walks it: float compare, NaN follows the default. */
static double forest__predict_row(const forest_t *f, const double *x)
{
    double s = f->base;
    for (int t = 0; t < f->ntrees; t++) {
        uint32_t k = f->root[t];
        while (!f->nodes[k].is_leaf) {
            const forest_node_t *nd = &f->nodes[k];
            float v = (float)x[nd->feat];
            int right = isnan(v) ? !f->default_left[k] : !(v < f->thr[k]);
            k = nd->left + (uint32_t)right;
        }
        s += f->value[k];
    }
    return s;
}

#define FOREST_STEP(k, b) k = nodes[k].left + (uint32_t)((b)[nodes[k].feat] > nodes[k].split_bin)

/* Trees [tb, te) over rows of one cache block (n <= FOREST_BLOCK). */
static void forest__accumulate_block(
        const forest_t *f, const uint16_t *const *row, size_t n, int tb, int te, double *acc)
{
    const forest_node_t *nodes = f->nodes;
    const float *value = f->value;
    for (int t = tb; t < te; t++) {
        const uint32_t r = f->root[t];
        const int dep = f->depth[t];
        size_t i = 0;
        /* Eight independent walks interleaved: their loads overlap instead of waiting in turn
         * (1.5x faster than four; eight row pointers and eight indices still fit in registers). */
        for (; i + 8 <= n; i += 8) {
            const uint16_t *b0 = row[i], *b1 = row[i + 1], *b2 = row[i + 2], *b3 = row[i + 3];
            const uint16_t *b4 = row[i + 4], *b5 = row[i + 5], *b6 = row[i + 6], *b7 = row[i + 7];
            uint32_t k0 = r, k1 = r, k2 = r, k3 = r, k4 = r, k5 = r, k6 = r, k7 = r;
            for (int s = 0; s < dep; s++) {
                FOREST_STEP(k0, b0);
                FOREST_STEP(k1, b1);
                FOREST_STEP(k2, b2);
                FOREST_STEP(k3, b3);
                FOREST_STEP(k4, b4);
                FOREST_STEP(k5, b5);
                FOREST_STEP(k6, b6);
                FOREST_STEP(k7, b7);
            }
            acc[i] += value[k0];
            acc[i + 1] += value[k1];
            acc[i + 2] += value[k2];
            acc[i + 3] += value[k3];
            acc[i + 4] += value[k4];
            acc[i + 5] += value[k5];
            acc[i + 6] += value[k6];
            acc[i + 7] += value[k7];
        }
        for (; i < n; i++) {
            uint32_t k = r;
            for (int s = 0; s < dep; s++)
                FOREST_STEP(k, row[i]);
            acc[i] += value[k];
        }
    }
}

void forest_accumulate(const forest_t *f,
                       const uint16_t *bins,
                       const uint32_t *rows,
                       size_t n,
                       int tree_begin,
                       int tree_end,
                       double *acc)
{
    const uint16_t *row[FOREST_BLOCK];
    const size_t m = (size_t)f->nfeat;
    if (tree_begin < 0)
        tree_begin = 0;
    if (tree_end > f->ntrees)
        tree_end = f->ntrees;
    for (size_t lo = 0; lo < n; lo += FOREST_BLOCK) {
        size_t nb = n - lo < FOREST_BLOCK ? n - lo : FOREST_BLOCK;
        for (size_t i = 0; i < nb; i++)
            row[i] = bins + (rows ? rows[lo + i] : lo + i) * m;
        forest__accumulate_block(f, row, nb, tree_begin, tree_end, acc + lo);
    }
}

int forest_predict(const forest_t *f, const double *X, size_t n, size_t d, double *out, int threads)
{
    if (d < (size_t)f->nfeat)
        return -EINVAL;
    const size_t m = (size_t)f->nfeat;
    const long nblocks = (long)((n + FOREST_BLOCK - 1) / FOREST_BLOCK);
    int rc = 0;
#pragma omp parallel num_threads(threads > 0 ? threads : omp_get_max_threads()) if (nblocks > 1)
    {
        uint16_t *bins = malloc(FOREST_BLOCK * m * sizeof *bins);
        uint32_t rows[FOREST_BLOCK];
        double acc[FOREST_BLOCK];
        if (!bins) {
#pragma omp atomic write
            rc = -ENOMEM;
        }
#pragma omp for schedule(dynamic, 4)
        for (long blk = 0; blk < nblocks; blk++) {
            if (!bins)
                continue;
            size_t lo = (size_t)blk * FOREST_BLOCK;
            size_t nb = n - lo < FOREST_BLOCK ? n - lo : FOREST_BLOCK;
            size_t nk = 0;
            for (size_t i = 0; i < nb; i++) {
                const double *x = X + (lo + i) * d;
                if (forest_bin(f, x, 1, d, bins + i * m) == 0) {
                    rows[nk] = (uint32_t)i;
                    acc[nk++] = f->base;
                } else {
                    out[lo + i] = forest__predict_row(f, x);
                }
            }
            forest_accumulate(f, bins, rows, nk, 0, f->ntrees, acc);
            for (size_t k = 0; k < nk; k++)
                out[lo + rows[k]] = acc[k];
        }
        free(bins);
    }
    return rc;
}

struct forest_bounds {
    const forest_t *f;
    int ncut;
    size_t nbins; /* sum over features of (ncuts + 1) */
    size_t *off;  /* (nfeat): first bin of each feature in a cut's row */
    double *lo;   /* (ncut, nbins) */
    double *hi;   /* (ncut, nbins) */
};

void forest_bounds_destroy(forest_bounds_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->off);
    free((*self_p)->lo);
    free((*self_p)->hi);
    free(*self_p);
    *self_p = NULL;
}

/* One tree's smallest and largest reachable leaf per (feature, bin): mn/mx (nbins), walking the
 * tree with each path's bin interval per feature (ilo/ihi, nfeat per depth level). */
static void forest__tree_extremes(const forest_t *f,
                                  const size_t *off,
                                  uint32_t k,
                                  int depth,
                                  uint16_t *ilo,
                                  uint16_t *ihi,
                                  double *gmin,
                                  double *gmax,
                                  double *mn,
                                  double *mx)
{
    const int m = f->nfeat;
    const forest_node_t *nd = &f->nodes[k];
    uint16_t *lo = ilo + (size_t)depth * m, *hi = ihi + (size_t)depth * m;
    if (nd->is_leaf) {
        double v = f->value[k];
        for (int j = 0; j < m; j++) {
            if (lo[j] == 0 && hi[j] == f->ncuts[j]) {
                /* unconstrained on j: counts for every bin, kept as a scalar */
                gmin[j] = fmin(gmin[j], v);
                gmax[j] = fmax(gmax[j], v);
                continue;
            }
            for (size_t b = off[j] + lo[j]; b <= off[j] + hi[j]; b++) {
                mn[b] = fmin(mn[b], v);
                mx[b] = fmax(mx[b], v);
            }
        }
        return;
    }
    uint16_t *clo = lo + m, *chi = hi + m;
    const int j = nd->feat;
    const uint16_t sb = nd->split_bin;
    for (int side = 0; side < 2; side++) {
        memcpy(clo, lo, (size_t)m * sizeof *clo);
        memcpy(chi, hi, (size_t)m * sizeof *chi);
        if (side == 0 && chi[j] > sb)
            chi[j] = sb; /* bin <= sb goes left */
        if (side == 1 && clo[j] < sb + 1)
            clo[j] = (uint16_t)(sb + 1);
        if (clo[j] <= chi[j])
            forest__tree_extremes(f, off, nd->left + (uint32_t)side, depth + 1, ilo, ihi, gmin,
                                  gmax, mn, mx);
    }
}

int forest_bounds_new(const forest_t *f, const int *tree_begin, int n, forest_bounds_t **ret)
{
    if (n < 1)
        return -EINVAL;
    for (int c = 0; c < n; c++)
        if (tree_begin[c] < 0 || tree_begin[c] > f->ntrees)
            return -EINVAL;
    const int m = f->nfeat;
    size_t nbins = 0;
    for (int j = 0; j < m; j++)
        nbins += (size_t)f->ncuts[j] + 1;
    if (nbins > 65536)
        return -E2BIG;
    int maxdepth = 0;
    for (int t = 0; t < f->ntrees; t++)
        if (f->depth[t] > maxdepth)
            maxdepth = f->depth[t];
    forest_bounds_t *fb = calloc(1, sizeof *fb);
    double *mn = malloc(nbins * sizeof *mn), *mx = malloc(nbins * sizeof *mx);
    double *smin = calloc(nbins, sizeof *smin), *smax = calloc(nbins, sizeof *smax);
    double *gmin = malloc((size_t)m * sizeof *gmin), *gmax = malloc((size_t)m * sizeof *gmax);
    uint16_t *ilo = malloc((size_t)(maxdepth + 1) * m * sizeof *ilo);
    uint16_t *ihi = malloc((size_t)(maxdepth + 1) * m * sizeof *ihi);
    int rc = -ENOMEM;
    if (!fb || !mn || !mx || !smin || !smax || !gmin || !gmax || !ilo || !ihi)
        goto out;
    fb->f = f;
    fb->ncut = n;
    fb->nbins = nbins;
    fb->off = malloc((size_t)m * sizeof *fb->off);
    fb->lo = malloc((size_t)n * nbins * sizeof *fb->lo);
    fb->hi = malloc((size_t)n * nbins * sizeof *fb->hi);
    if (!fb->off || !fb->lo || !fb->hi)
        goto out;
    for (int j = 0, o = 0; j < m; j++) {
        fb->off[j] = (size_t)o;
        o += f->ncuts[j] + 1;
    }
    /* Trees from last to first, running suffix sums; a cut point snapshots them. */
    for (int t = f->ntrees; t >= 0; t--) {
        for (int c = 0; c < n; c++)
            if (tree_begin[c] == t) {
                memcpy(fb->lo + (size_t)c * nbins, smin, nbins * sizeof *smin);
                memcpy(fb->hi + (size_t)c * nbins, smax, nbins * sizeof *smax);
            }
        if (t == 0)
            break;
        const int tt = t - 1;
        for (size_t b = 0; b < nbins; b++) {
            mn[b] = INFINITY;
            mx[b] = -INFINITY;
        }
        for (int j = 0; j < m; j++) {
            gmin[j] = INFINITY;
            gmax[j] = -INFINITY;
            ilo[j] = 0;
            ihi[j] = (uint16_t)f->ncuts[j];
        }
        forest__tree_extremes(f, fb->off, f->root[tt], 0, ilo, ihi, gmin, gmax, mn, mx);
        for (int j = 0; j < m; j++)
            for (size_t b = fb->off[j]; b <= fb->off[j] + (size_t)f->ncuts[j]; b++) {
                smin[b] += fmin(mn[b], gmin[j]);
                smax[b] += fmax(mx[b], gmax[j]);
            }
    }
    *ret = fb;
    fb = NULL;
    rc = 0;
out:
    forest_bounds_destroy(&fb);
    free(mn);
    free(mx);
    free(smin);
    free(smax);
    free(gmin);
    free(gmax);
    free(ilo);
    free(ihi);
    return rc;
}

void forest_bounds_row(
        const forest_bounds_t *fb, int cut, const uint16_t *b, double *ret_min, double *ret_max)
{
    const double *lo = fb->lo + (size_t)cut * fb->nbins, *hi = fb->hi + (size_t)cut * fb->nbins;
    double l = -INFINITY, h = INFINITY;
    for (int j = 0; j < fb->f->nfeat; j++) {
        size_t k = fb->off[j] + b[j];
        if (lo[k] > l)
            l = lo[k];
        if (hi[k] < h)
            h = hi[k];
    }
    *ret_min = l;
    *ret_max = h;
}
