/*
 * seqrng: the trainer's small counter-seeded random stream (splitmix64, Steele et al. 2014).
 *
 * A stream is a pure function of (seed, stream number), so sequence g of a run is drawn from
 * stream g whatever the rank, the number of ranks or a resume: data order depends only on the
 * seed and the global sequence index. State is a plain struct the caller owns.
 */
#ifndef REGMIX_TRAIN_SEQRNG_H
#define REGMIX_TRAIN_SEQRNG_H

#include <math.h>
#include <stdint.h>

typedef struct seqrng {
    uint64_t state;
} seqrng_t;

static inline uint64_t seqrng_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void seqrng_seed(seqrng_t *r, uint64_t seed, uint64_t stream)
{
    r->state =
            seqrng_mix(seqrng_mix(seed + 0x9e3779b97f4a7c15ULL) ^ (stream * 0xd1342543de82ef95ULL));
}

static inline uint64_t seqrng_u64(seqrng_t *r)
{
    r->state += 0x9e3779b97f4a7c15ULL;
    return seqrng_mix(r->state);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double seqrng_uniform(seqrng_t *r)
{
    return (double)(seqrng_u64(r) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller, one value per call). */
static inline double seqrng_normal(seqrng_t *r)
{
    double u1 = seqrng_uniform(r), u2 = seqrng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

#endif
