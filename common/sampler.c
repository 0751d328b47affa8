/* sampler: RegMix mixture sampling (docs/method.md; Liu et al., ICLR 2025, and the authors'
 * mixture_config/synthesize_mixture.py), see sampler.h. */
#include "sampler.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "rng.h"

void sampler_params_from_spec(const spec_t *spec, sampler_params_t *ret)
{
    memset(ret, 0, sizeof *ret);
    ret->k = spec->ndomains;
    for (int i = 0; i < spec->ndomains && i < SPEC_MAX_DOMAINS; i++)
        ret->tokens[i] = spec->domains[i].tokens;
    const spec_sampling_t *s = &spec->sampling;
    ret->runs = s->runs;
    ret->seed = s->seed;
    ret->temperature = s->temperature;
    ret->strength_min = s->strength_min;
    ret->strength_max = s->strength_max;
    ret->strength_steps = s->strength_steps;
    ret->max_epochs = s->max_epochs;
    ret->target_tokens = s->target_tokens;
    ret->min_weight = s->min_weight;
}

void sampler_prior(const sampler_params_t *params, double *out)
{
    double total = 0, qsum = 0;
    for (int i = 0; i < params->k; i++)
        total += params->tokens[i];
    for (int i = 0; i < params->k; i++) {
        out[i] = pow(params->tokens[i] / total, params->temperature);
        qsum += out[i];
    }
    for (int i = 0; i < params->k; i++)
        out[i] /= qsum;
}

double sampler_strength(const sampler_params_t *params, int j)
{
    if (params->strength_steps <= 1)
        return params->strength_min;
    /* np.logspace(log10(min), log10(max), steps), as the authors' generator. */
    double lo = log(params->strength_min), hi = log(params->strength_max);
    return exp(lo + (hi - lo) * (double)j / (double)(params->strength_steps - 1));
}

uint64_t sampler_run_seed(uint64_t sweep_seed, int run_index)
{
    /* Two splitmix64 rounds: the first decorrelates the sweep seed from the sampler's own
     * rng_seed(sweep_seed) stream, the second makes neighbouring run indices unrelated. Each
     * round is a bijection of its input, so distinct run indices give distinct seeds. */
    uint64_t x = sweep_seed ^ 0xd1b54a32d192ed03ULL;
    x = rng_splitmix64(&x) + (uint64_t)(uint32_t)run_index;
    return rng_splitmix64(&x);
}

static int check_params(const sampler_params_t *p, char *err, size_t errlen)
{
    if (p->k < 1 || p->k > SPEC_MAX_DOMAINS) {
        errbuf_set(err, errlen, "sampler: %d domains (1..%d)", p->k, SPEC_MAX_DOMAINS);
        return -EINVAL;
    }
    for (int i = 0; i < p->k; i++)
        if (!(p->tokens[i] > 0) || !isfinite(p->tokens[i])) {
            errbuf_set(err, errlen, "sampler: domain %d has %g tokens (must be positive)", i,
                       p->tokens[i]);
            return -EINVAL;
        }
    if (p->runs < 1 || p->runs > SPEC_MAX_RUNS) {
        errbuf_set(err, errlen, "sampler: runs %d (1..%d)", p->runs, SPEC_MAX_RUNS);
        return -EINVAL;
    }
    if (!(p->temperature > 0) || !isfinite(p->temperature) || !(p->strength_min > 0) ||
        !(p->strength_max >= p->strength_min) || !isfinite(p->strength_max) ||
        p->strength_steps < 1 || !(p->max_epochs > 0) || !(p->target_tokens >= 0) ||
        !isfinite(p->target_tokens) || !(p->min_weight >= 0) || !(p->min_weight < 1)) {
        errbuf_set(err, errlen,
                   "sampler: temperature, strengths, max_epochs, target_tokens or "
                   "min_weight out of range");
        return -EINVAL;
    }
    return 0;
}

/*
 * Near-duplicate index. Every coordinate of two mixtures within L1 distance d differs by < d,
 * and so does the projection v(x) = sum_i c_i x_i for weights c_i in (0, 1]. Kept mixtures are
 * hashed by floor(v / (2 d)); a candidate need only be compared with the mixtures of its own and
 * the two neighbouring buckets (the factor 2 absorbs rounding in v). This finds exactly the
 * mixtures a comparison with every kept one would, in O(1) expected time per candidate instead
 * of O(runs).
 */
typedef struct dedup {
    int64_t *keys; /* [cap] bucket keys */
    int *head;     /* [cap] first kept row of the bucket, -1 when the slot is empty */
    int *next;     /* [runs] next kept row in the same bucket, -1 at the end */
    double *coef;  /* [k] projection weights */
    size_t cap;    /* power of two, > 2 * runs */
} dedup_t;

static void dedup_free(dedup_t *d)
{
    free(d->keys);
    free(d->head);
    free(d->next);
    free(d->coef);
}

static int dedup_init(dedup_t *d, int runs, int k)
{
    memset(d, 0, sizeof *d);
    d->cap = 16;
    while (d->cap < 2 * (size_t)runs + 2)
        d->cap *= 2;
    d->keys = malloc(d->cap * sizeof *d->keys);
    d->head = malloc(d->cap * sizeof *d->head);
    d->next = malloc((size_t)runs * sizeof *d->next);
    d->coef = malloc((size_t)k * sizeof *d->coef);
    if (!d->keys || !d->head || !d->next || !d->coef) {
        dedup_free(d);
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->cap; i++)
        d->head[i] = -1;
    /* Weyl sequence in (0, 1): distinct, deterministic weights. */
    for (int i = 0; i < k; i++) {
        double c = fmod(0.5 + 0.6180339887498949 * (double)(i + 1), 1.0);
        d->coef[i] = c > 0.01 ? c : c + 0.5;
    }
    return 0;
}

static int64_t dedup_key(const dedup_t *d, const double *x, int k)
{
    double v = 0;
    for (int i = 0; i < k; i++)
        v += d->coef[i] * x[i];
    return (int64_t)floor(v / (2.0 * SAMPLER_DUP_L1));
}

static size_t dedup_slot(const dedup_t *d, int64_t key)
{
    uint64_t h = (uint64_t)key;
    size_t s = (size_t)rng_splitmix64(&h) & (d->cap - 1);
    while (d->head[s] != -1 && d->keys[s] != key)
        s = (s + 1) & (d->cap - 1);
    return s;
}

/* True when x is within SAMPLER_DUP_L1 of a kept row of out (rows, k). */
static int dedup_has(const dedup_t *d, const double *out, int k, const double *x, int64_t key)
{
    for (int64_t b = key - 1; b <= key + 1; b++) {
        size_t s = dedup_slot(d, b);
        for (int r = d->head[s]; r >= 0; r = d->next[r]) {
            const double *y = out + (size_t)r * (size_t)k;
            double l1 = 0;
            for (int i = 0; i < k && l1 < SAMPLER_DUP_L1; i++)
                l1 += fabs(x[i] - y[i]);
            if (l1 < SAMPLER_DUP_L1)
                return 1;
        }
    }
    return 0;
}

static void dedup_add(dedup_t *d, int row, int64_t key)
{
    size_t s = dedup_slot(d, key);
    d->keys[s] = key;
    d->next[row] = d->head[s];
    d->head[s] = row;
}

int sampler_sample(const sampler_params_t *params,
                   double *out,
                   sampler_stats_t *stats,
                   char *err,
                   size_t errlen)
{
    return sampler_sample_cancellable(params, out, stats, NULL, err, errlen);
}

int sampler_sample_cancellable(const sampler_params_t *params,
                               double *out,
                               sampler_stats_t *stats,
                               const int *cancel,
                               char *err,
                               size_t errlen)
{
    int rc = check_params(params, err, errlen);
    if (rc < 0)
        return rc;
    const int k = params->k;
    double *q = malloc((size_t)k * sizeof *q);
    double *alpha = malloc((size_t)k * sizeof *alpha);
    double *bound = malloc((size_t)k * sizeof *bound);
    double *x = malloc((size_t)k * sizeof *x);
    double *strengths = malloc((size_t)params->strength_steps * sizeof *strengths);
    dedup_t dd;
    int have_dd = 0;
    if (!q || !alpha || !bound || !x || !strengths || dedup_init(&dd, params->runs, k) < 0) {
        errbuf_set(err, errlen, "sampler: out of memory");
        rc = -ENOMEM;
        goto out;
    }
    have_dd = 1;

    double total = 0;
    for (int i = 0; i < k; i++)
        total += params->tokens[i];
    sampler_prior(params, q);
    for (int i = 0; i < k; i++)
        bound[i] = params->target_tokens > 0
                           ? params->max_epochs * params->tokens[i] / params->target_tokens
                           : params->max_epochs * params->tokens[i] / total;
    for (int j = 0; j < params->strength_steps; j++)
        strengths[j] = sampler_strength(params, j);

    sampler_stats_t st = {0};
    /* Budget: 1000 draws a run for small sweeps; big ones get 100 a run beyond the first 1000
     * (a sweep of 10^6 runs stops after ~10^8 draws, seconds, not ~10^9). */
    const long cap =
            params->runs <= 1000 ? 1000L * params->runs + 1000000L : 2000000L + 100L * params->runs;
    /* Every window of draws, the rate kept so far in it must be able to finish within the cap;
     * when the space is filling up (2 domains hold ~2 / SAMPLER_DUP_L1 distinct mixtures) it
     * cannot, and waiting for the cap would only burn CPU. */
    const long window = 1L << 20;
    int kept_at_window = 0;
    /* Draws in a row that kept nothing: the space is full (or the bound too tight) long before
     * the total cap of a big sweep is spent. */
    const long stall = 1000L * (params->runs < 1000 ? params->runs : 1000) + 1000000L;
    long since_kept = 0;
    rng_t rng;
    rng_seed(&rng, params->seed);
    int kept = 0;
    while (kept < params->runs) {
        if (cancel && (st.draws & 0xffff) == 0 && __atomic_load_n(cancel, __ATOMIC_RELAXED)) {
            errbuf_set(err, errlen, "sampler: cancelled after %ld draws", st.draws);
            rc = -ECANCELED;
            break;
        }
        int hopeless = 0;
        if (st.draws > 0 && st.draws % window == 0) {
            long gained = kept - kept_at_window;
            hopeless = (double)(params->runs - kept) * (double)window >
                       (double)gained * (double)(cap - st.draws);
            kept_at_window = kept;
        }
        if (st.draws >= cap || since_kept >= stall || hopeless) {
            errbuf_set(
                    err, errlen,
                    "sampler: gave up after %ld draws with %d of %d mixtures: %ld over the epoch "
                    "bound (max_epochs %g%s), %ld with every weight below min_weight %g, %ld "
                    "near-duplicates; raise max_epochs or ask for fewer runs",
                    st.draws, kept, params->runs, st.over_bound, params->max_epochs,
                    params->target_tokens > 0 ? " x tokens / target_tokens" : " x prior",
                    st.degenerate, params->min_weight, st.duplicates);
            rc = -EDOM;
            break;
        }
        st.draws++;
        since_kept++;
        double s = strengths[rng_below(&rng, (uint64_t)params->strength_steps)];
        for (int i = 0; i < k; i++)
            alpha[i] = q[i] * s;
        if (rng_dirichlet(&rng, alpha, k, x) < 0) {
            /* q_i * s can only underflow to 0 for absurd strengths; check_params bounds them. */
            errbuf_set(err, errlen, "sampler: Dirichlet parameter underflow (strength %g)", s);
            rc = -EINVAL;
            break;
        }
        int bad = 0;
        for (int i = 0; i < k && !bad; i++)
            bad = x[i] > bound[i];
        if (bad) {
            st.over_bound++;
            continue;
        }
        double sum = 0;
        for (int i = 0; i < k; i++) {
            if (x[i] < params->min_weight)
                x[i] = 0;
            sum += x[i];
        }
        if (!(sum > 0)) {
            st.degenerate++;
            continue;
        }
        for (int i = 0; i < k; i++)
            x[i] /= sum;
        /* Renormalising scales kept weights up; the bound must hold for the mixture we emit. */
        for (int i = 0; i < k && !bad; i++)
            bad = x[i] > bound[i];
        if (bad) {
            st.over_bound++;
            continue;
        }
        int64_t key = dedup_key(&dd, x, k);
        if (dedup_has(&dd, out, k, x, key)) {
            st.duplicates++;
            continue;
        }
        memcpy(out + (size_t)kept * (size_t)k, x, (size_t)k * sizeof *x);
        dedup_add(&dd, kept, key);
        kept++;
        since_kept = 0;
    }
    if (stats)
        *stats = st;
out:
    if (have_dd)
        dedup_free(&dd);
    free(q);
    free(alpha);
    free(bound);
    free(x);
    free(strengths);
    return rc;
}
