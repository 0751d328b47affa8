/*
 * active: the active search's two questions (docs/search.md), the same code for the daemon's
 * rounds, `regmixctl next` and bench/search_bench:
 *
 *   active_next()     which k mixtures to run next, given the runs so far;
 *   active_propose()  which mixture to train the target on, with an interval on its objective.
 *
 * Both fit a surrogate (surrogate.h) and search a pool of candidates: draws from Dirichlet(prior)
 * (the paper's simulation, sparse corners), draws from the tempered prior at log-spaced strengths
 * (dense mixtures), the runs themselves, and then `refine` rounds of local moves around the best
 * candidates so far (Dirichlet(c x + 1e-3) at c = 30..3000, and moves of a share of one domain
 * to another), so the search can leave the corners the Dirichlet draws sit in.
 *
 * Acquisitions for the next batch:
 *   lcb       GP-BUCB (gp.h): the lowest mean - kappa sd, then the posterior is conditioned on a
 *             hallucinated result there, and so on for the whole batch (first on the pending
 *             runs, those still running, when given)
 *   ei        expected improvement over the best posterior mean at a run, conditioned the same way
 *   thompson  each pick is the minimum of a model refitted on a bootstrap resample of the runs
 *             (any model; the only choice for models without their own uncertainty)
 *   greedy    the k lowest means, no exploration (a baseline)
 * `repeats` of the k picks re-run the runs with the lowest posterior means, which measures the
 * noise where it matters most.
 *
 * The proposal is the candidate with the lowest mean + kappa_propose sd (1 by default: a
 * candidate far from every run must look better by its uncertainty to win), and its interval is
 * mean -+ 1.96 sqrt(sd^2 + noise^2): where a run at the proposal should land. For models
 * without their own uncertainty, sd comes from 8 bootstrap refits.
 *
 * The expected gain of one more run (the stopping rule of EGO, Jones, Schonlau & Welch 1998) is
 * the largest expected improvement E[max(0, mu* - f(x))] over the candidates (the proposal's pool,
 * then `refine` rounds around the candidates with the largest), mu* the proposal's mean and f
 * the model's posterior of the objective without the noise of a run: how much lower than the
 * proposal the best place to run next is expected to be. A sweep may stop when it is small.
 *
 * active_step() does both with one fitted surrogate (the daemon's refits: proposal, gain and the
 * next round); active_next() and active_propose() are active_step() with one of the two.
 *
 * Every function is a pure function of its inputs and params->seed.
 */
#ifndef REGMIX_ACTIVE_H
#define REGMIX_ACTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "surrogate.h"

typedef enum active_acq {
    ACTIVE_LCB = 0,
    ACTIVE_EI,
    ACTIVE_THOMPSON,
    ACTIVE_GREEDY,
} active_acq_t;

typedef struct active_params {
    surrogate_kind_t model; /* default gp */
    active_acq_t acq;       /* default lcb */
    double kappa;           /* lcb: sd multiplier (2) */
    double kappa_propose;   /* proposal: mean + this * sd (1) */
    size_t pool;            /* random candidates per search (8192) */
    int refine;             /* local refinement rounds (3) */
    int repeats;            /* picks per batch that repeat the best runs (0) */
    uint64_t seed;          /* default 42 */
    double trust;           /* proposal: at most this Hellinger distance from a run (0.2;
                               0: anywhere) */
    const double *upper;    /* (d) largest weight of each domain (the sweep's epoch bound), or
                               NULL: every candidate is projected under it (active_project) */
    const double *pending;  /* (npending, d) mixtures being run, no result yet: lcb and ei
                               condition the batch on them (hallucinated at their posterior
                               mean, as the batch's own picks) and never pick them; NULL: none */
    size_t npending;
} active_params_t;

/* The proposal and its predicted objective. */
typedef struct active_proposal {
    double predicted;      /* model mean at the proposal */
    double sd;             /* model standard deviation there (NAN if none) */
    double noise_sd;       /* standard deviation of one run's noise (residual estimate) */
    double lo, hi;         /* 95 % interval of a run's objective at the proposal: predicted -+
                             1.96 sqrt(sd^2 + noise_sd^2) x interval_scale */
    double interval_scale; /* GP: max(1, RMS of its leave-one-out standardised residuals,
                              gp_loo_scale()), widening an over-confident GP's interval; else 1 */
    double expected_gain;  /* of one more run: the largest expected improvement below predicted */
    surrogate_kind_t model;
} active_proposal_t;

/* Fills *p with the defaults above. */
void active_params_default(active_params_t *p);

/* Parses "lcb", "ei", "thompson", "greedy"; returns 0 or -EINVAL. */
int active_acq_parse(const char *name, active_acq_t *ret);

/* The k mixtures (ret_next, (k, d) row-major) to run next after runs X (n, d) with objectives y
 * (n); prior (d) is the Dirichlet concentration of the wide candidates (token shares) and each
 * must be > 0. Returns 0, -EINVAL (message in err), -EIO, -ENOMEM. */
int active_next(const active_params_t *p,
                const double *X,
                const double *y,
                size_t n,
                size_t d,
                const double *prior,
                size_t k,
                double *ret_next,
                char *err,
                size_t errlen);

/* The proposed mixture (ret_w, d) and its predicted objective (*ret). Same arguments. */
int active_propose(const active_params_t *p,
                   const double *X,
                   const double *y,
                   size_t n,
                   size_t d,
                   const double *prior,
                   double *ret_w,
                   active_proposal_t *ret,
                   char *err,
                   size_t errlen);

/* active_propose() into ret_w and *ret (both NULL: none) and active_next() with the seed
 * next_seed into ret_next (k of them; 0: none) from one fit of the surrogate (seeded by p->seed;
 * a gp's fit does not depend on it), each the same as the single call's. Same arguments and
 * returns. */
int active_step(const active_params_t *p,
                const double *X,
                const double *y,
                size_t n,
                size_t d,
                const double *prior,
                double *ret_w,
                active_proposal_t *ret,
                size_t k,
                double *ret_next,
                uint64_t next_seed,
                char *err,
                size_t errlen);

/* Projects the mixture w (d, summing to 1) under the caps upper (d; sum > 1): each weight
 * above its cap is set to it and the excess is shared by the others in proportion to their
 * weights (to those with room, equally, when they are all zero), until none is above. */
void active_project(double *w, const double *upper, size_t d);

/* The RegMix simulation for any surrogate: N candidates from Dirichlet(prior), the average of
 * the top_k lowest predictions into ret_w (d). Returns 0, -EINVAL, -ENOMEM. */
int active_topk(const surrogate_t *s,
                const double *prior,
                size_t d,
                size_t N,
                size_t top_k,
                uint64_t seed,
                double *ret_w);

#endif
