/*
 * gp: Gaussian-process regression of a loss on mixture weights, for the active search
 * (docs/search.md). Rasmussen & Williams, "Gaussian Processes for Machine Learning" (2006),
 * algorithm 2.1 (Cholesky prediction) and §5.4 (marginal likelihood).
 *
 * The model is y = c + f(w) + noise with c the mean target and f a GP whose kernel is a Matérn
 * 5/2 on z = sqrt(w) plus a linear kernel lin * (w_a . w_b). The Matérn part's distance
 * |sqrt(a) - sqrt(b)| is the Hellinger distance of two mixtures, the natural one between
 * distributions, and it stretches the neighbourhood of a zero weight where the loss moves fastest.
 * The linear part is a Bayesian linear trend in the weights: a loss is dominated by a few domains'
 * shares, and with the trend inside the kernel its uncertainty counts in the posterior sd (a
 * fitted linear mean extrapolates into corners with none, which made the first version propose
 * mixtures 1.5 nats worse than its runs from 32 runs). The length scale (9 values), lin (0, 1,
 * 10, 100) and the noise-to-signal ratio (1e-4..1, 17 values) maximise the marginal likelihood,
 * the signal variance is profiled out in closed form.
 *
 * Batches: gp_batch_new() holds the posterior over a pool of candidates and can condition it on
 * "hallucinated" observations at chosen candidates (the posterior mean is unchanged, the
 * variance shrinks around them): GP-BUCB of Desautels, Krause & Burdick (JMLR 2014), so a batch
 * spreads over the places worth measuring instead of piling onto one.
 *
 * A fitted gp_t is immutable; prediction is thread-safe. It copies what it needs.
 */
#ifndef REGMIX_GP_H
#define REGMIX_GP_H

#include <stddef.h>

typedef struct gp gp_t;

/* Fits the GP to rows X (n, d), each a mixture summing to 1, and targets y (n); n >= 2. On
 * success *ret is a new model the caller frees with gp_destroy(). Returns 0, -EINVAL (bad sizes
 * or non-finite data, message in err), -ENOMEM. */
int gp_fit(
        const double *X, const double *y, size_t n, size_t d, gp_t **ret, char *err, size_t errlen);

/* Predicts rows X (m, d): the posterior mean of the latent function into mean (m) and, when sd is
 * non-NULL, its standard deviation (without the observation noise) into sd (m). Returns 0 or
 * -ENOMEM. */
int gp_predict(const gp_t *gp, const double *X, size_t m, double *mean, double *sd);

/* The root mean square of the leave-one-out standardised residuals (Rasmussen & Williams
 * §5.4.2): about 1 when the fitted noise and signal explain the runs, above 1 when the GP is
 * over-confident (it took noise for signal); NAN when it could not be computed. */
double gp_loo_scale(const gp_t *gp);

/* The number of runs the GP was fitted on. */
size_t gp_nruns(const gp_t *gp);

/* The standard deviation of one observation's noise, as fitted. */
double gp_noise_sd(const gp_t *gp);

/* The chosen kernel length scale (in Hellinger units) and noise-to-signal variance ratio. */
void gp_hyper(const gp_t *gp, double *ret_length, double *ret_ratio);

/* Frees the model and sets *self_p to NULL; NULL or *self_p == NULL is a harmless no-op. */
void gp_destroy(gp_t **self_p);

/* The posterior over a pool of m candidates, conditioned step by step on hallucinated
 * observations. Borrows gp and the pool (both must outlive it). */
typedef struct gp_batch gp_batch_t;

/* Computes the posterior mean and variance over the pool P (m, d). Room for `max_added`
 * hallucinated points. Returns 0, -EINVAL, -ENOMEM. */
int gp_batch_new(const gp_t *gp, const double *P, size_t m, size_t max_added, gp_batch_t **ret);

/* Current posterior mean and standard deviation of pool point i. */
double gp_batch_mean(const gp_batch_t *b, size_t i);
double gp_batch_sd(const gp_batch_t *b, size_t i);

/* Conditions the posterior on an observation at pool point i (value = its mean): every pool
 * variance shrinks by its covariance with i. Returns 0, or -ENOSPC past max_added. */
int gp_batch_add(gp_batch_t *b, size_t i);

/* Frees it; NULL-safe, sets *self_p to NULL. */
void gp_batch_destroy(gp_batch_t **self_p);

#endif
