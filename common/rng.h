/*
 * rng: the explicit-state pseudo-random generator every stochastic part of regmix uses.
 *
 * The generator is xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64, so any 64-bit
 * seed (0 included) gives a well-mixed state. State lives in an `rng_t` the caller embeds and
 * owns; nothing here is global, so one seed reproduces a stream bit for bit on one platform and
 * threads never share a generator: give each thread or run its own stream with rng_split() (a
 * pure function of the parent's state and a stream number) or rng_jump() (2^128 steps ahead).
 *
 * The distributions work in log space where small shape parameters would underflow: a Gamma(1e-4)
 * draw is usually far below DBL_MIN, so rng_gamma_log() returns its logarithm and rng_dirichlet()
 * normalises those logarithms with log-sum-exp.
 */
#ifndef REGMIX_RNG_H
#define REGMIX_RNG_H

#include <stdint.h>

/* Generator state; embed it, seed it with rng_seed() before use. Copying it forks the stream. */
typedef struct rng {
    uint64_t s[4];
} rng_t;

/* Seeds the state from a 64-bit seed through splitmix64. Every seed is valid. */
void rng_seed(rng_t *rng, uint64_t seed);

/* One step of splitmix64 on *state (advances it) returning a well-mixed 64-bit value; useful to
 * derive seeds (e.g. per-run seeds) from a base seed without a full generator. */
uint64_t rng_splitmix64(uint64_t *state);

/* Derives an independent generator for `stream` from `parent` without advancing the parent:
 * the same parent state and stream number give the same child on every call. */
void rng_split(const rng_t *parent, uint64_t stream, rng_t *ret_child);

/* Advances the state by 2^128 steps (xoshiro256's jump polynomial): calling it k times on copies
 * gives k non-overlapping subsequences. */
void rng_jump(rng_t *rng);

/* Next raw 64-bit output. */
uint64_t rng_u64(rng_t *rng);

/* Uniform integer in [0, n) without modulo bias (Lemire's method); n must be > 0. */
uint64_t rng_below(rng_t *rng, uint64_t n);

/* Uniform double in the open interval (0, 1): never 0 (safe for log), never 1; 53 random bits. */
double rng_uniform(rng_t *rng);

/* Standard normal N(0, 1) draw (Box-Muller, one output per call; uses two uniforms). */
double rng_normal(rng_t *rng);

/* Logarithm of a Gamma(alpha, 1) draw, for alpha > 0 (returns NAN for alpha <= 0 or non-finite).
 * Marsaglia & Tsang (2000) for alpha >= 1; for alpha < 1 it draws G ~ Gamma(alpha + 1) and
 * U ~ U(0,1) and returns log G + log(U) / alpha, so alpha = 1e-4 stays finite. */
double rng_gamma_log(rng_t *rng, double alpha);

/* Gamma(alpha, 1) draw, exp(rng_gamma_log()); may underflow to 0 for tiny alpha. */
double rng_gamma(rng_t *rng, double alpha);

/* Fills out[0..k) with a Dirichlet(alpha[0..k)) draw: log-space gammas normalised with
 * log-sum-exp, so the result is finite, non-negative and sums to 1 (within rounding) even for
 * alpha_i = 1e-4. Returns 0, or -EINVAL (out untouched) if k < 1 or any alpha_i is not a finite
 * positive number. */
int rng_dirichlet(rng_t *rng, const double *alpha, int k, double *out);

#endif
