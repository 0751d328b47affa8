/*
 * sampler: draws the sweep's candidate mixtures exactly as docs/method.md (the RegMix authors'
 * generator): a tempered token prior, Dirichlet draws at log-spaced strengths, rejection of
 * mixtures that would repeat a domain more than max_epochs times, zeroing of tiny weights, and
 * removal of near-duplicates.
 *
 * The sampler is a pure function of its parameters: one seeded rng_t drives every draw, so the
 * same parameters give the same mixtures bit for bit on one platform. The caller owns the output
 * buffer; nothing is allocated beyond the call.
 */
#ifndef REGMIX_SAMPLER_H
#define REGMIX_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "spec.h"

/* Two kept mixtures closer than this in L1 distance are near-duplicates; the later is dropped. */
#define SAMPLER_DUP_L1 1e-5

typedef struct sampler_params {
    int k;                           /* domains, 1..SPEC_MAX_DOMAINS */
    double tokens[SPEC_MAX_DOMAINS]; /* [k] available tokens (> 0); prior p_i = share of total */
    int runs;                        /* mixtures to keep, 1..SPEC_MAX_RUNS */
    uint64_t seed;                   /* drives every draw */
    double temperature;              /* q_i = p_i^t / sum_j p_j^t */
    double strength_min;             /* strengths log-spaced min..max, `strength_steps` of them */
    double strength_max;
    int strength_steps;
    double max_epochs;    /* reject x_i > max_epochs * p_i ... */
    double target_tokens; /* ... or, when > 0, x_i > max_epochs * tokens_i / this */
    double min_weight;    /* x_i < min_weight becomes 0, then renormalise */
} sampler_params_t;

/* What a sampler_sample() call did (all counts of candidate draws). */
typedef struct sampler_stats {
    long draws;      /* Dirichlet draws in all */
    long over_bound; /* rejected by the epoch bound */
    long degenerate; /* every weight below min_weight */
    long duplicates; /* dropped as near-duplicates of a kept mixture */
} sampler_stats_t;

/* Fills *ret from the spec's domains and sampling section (runs and seed included; callers may
 * override fields afterwards). */
void sampler_params_from_spec(const spec_t *spec, sampler_params_t *ret);

/* The tempered prior q (out[k]) of the parameters: q_i = p_i^t / sum_j p_j^t, p_i the token
 * share. */
void sampler_prior(const sampler_params_t *params, double *out);

/* Strength j (0-based) of the log-spaced grid: min * (max/min)^(j/(steps-1)); min if steps == 1. */
double sampler_strength(const sampler_params_t *params, int j);

/* Draws params->runs mixtures into out (runs, k) row-major: each row sums to 1, has zeros where a
 * weight fell below min_weight, respects the epoch bound, and is at least SAMPLER_DUP_L1 (L1)
 * from every other row. Stats go to *stats when non-NULL. Returns 0; -EINVAL for bad parameters;
 * -ENOMEM; -EDOM when 1000 * runs + 1e6 draws in all (above 1000 runs: 100 * runs + 2e6),
 * or 1000 * min(runs, 1000) + 1e6 draws in a row, did not yield enough mixtures, or the rate of
 * the last 2^20 draws could not finish within that budget (the bound or min_weight is too tight for the runs
 * asked, or the simplex has no room for that many distinct mixtures: 2 domains hold about
 * 2 / SAMPLER_DUP_L1), with the reason in err. On failure the contents of out are unspecified. */
int sampler_sample(const sampler_params_t *params,
                   double *out,
                   sampler_stats_t *stats,
                   char *err,
                   size_t errlen);

/* sampler_sample() that also gives up with -ECANCELED soon (within 65536 draws) after *cancel
 * (read atomically; set by another thread, e.g. a daemon stopping) becomes non-zero. */
int sampler_sample_cancellable(const sampler_params_t *params,
                               double *out,
                               sampler_stats_t *stats,
                               const int *cancel,
                               char *err,
                               size_t errlen);

/* The seed of proxy run `run_index` of a sweep seeded `sweep_seed`: a splitmix64 mix, distinct
 * for distinct run indices of one sweep, and unrelated to the sampler's own stream. */
uint64_t sampler_run_seed(uint64_t sweep_seed, int run_index);

#endif
