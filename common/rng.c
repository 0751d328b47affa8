/* rng: xoshiro256** with splitmix64 seeding and log-space Gamma/Dirichlet draws (see rng.h). */
#include "rng.h"

#include <errno.h>
#include <math.h>

/* GCC/Clang extension; -Wpedantic accepts it through __extension__. */
__extension__ typedef unsigned __int128 rng_u128;

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* splitmix64 (Vigna, public domain reference implementation). */
uint64_t rng_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(rng_t *rng, uint64_t seed)
{
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = rng_splitmix64(&sm);
    /* splitmix64 outputs are a bijection of distinct inputs, so four zeros cannot happen; keep
     * the guard anyway since an all-zero state would emit zeros forever. */
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]))
        rng->s[0] = 1;
}

/* xoshiro256** 1.0 (Blackman & Vigna, public domain reference implementation). */
uint64_t rng_u64(rng_t *rng)
{
    uint64_t *s = rng->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void rng_jump(rng_t *rng)
{
    static const uint64_t jump[] = {0x180ec6d33cfd0abaULL, 0xd5a61266f0c9392cULL,
                                    0xa9582618e03fc9aaULL, 0x39abdc4529b1661cULL};
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int i = 0; i < 4; i++) {
        for (int b = 0; b < 64; b++) {
            if (jump[i] & (1ULL << b)) {
                s0 ^= rng->s[0];
                s1 ^= rng->s[1];
                s2 ^= rng->s[2];
                s3 ^= rng->s[3];
            }
            rng_u64(rng);
        }
    }
    rng->s[0] = s0;
    rng->s[1] = s1;
    rng->s[2] = s2;
    rng->s[3] = s3;
}

void rng_split(const rng_t *parent, uint64_t stream, rng_t *ret_child)
{
    /* Hash the parent's whole state and the stream number into one splitmix64 seed chain; the
     * child's state words are successive splitmix64 outputs, so nearby stream numbers give
     * unrelated states. */
    uint64_t h = stream ^ 0x6a09e667f3bcc909ULL;
    for (int i = 0; i < 4; i++) {
        h ^= parent->s[i];
        h = rng_splitmix64(&h);
    }
    rng_seed(ret_child, h);
}

uint64_t rng_below(rng_t *rng, uint64_t n)
{
    /* Lemire (2019), "Fast random integer generation in an interval". */
    rng_u128 m = (rng_u128)rng_u64(rng) * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = -n % n;
        while (l < t) {
            m = (rng_u128)rng_u64(rng) * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double rng_uniform(rng_t *rng)
{
    /* 53 bits plus half an ulp: values (k + 0.5) / 2^53, k in [0, 2^53), all inside (0, 1). */
    return ((double)(rng_u64(rng) >> 11) + 0.5) * 0x1.0p-53;
}

double rng_normal(rng_t *rng)
{
    double u1 = rng_uniform(rng);
    double u2 = rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Marsaglia & Tsang (2000), "A simple method for generating gamma variables", for alpha >= 1,
 * returning log of the draw: log(d * v). */
static double gamma_log_mt(rng_t *rng, double alpha)
{
    const double d = alpha - 1.0 / 3.0;
    const double c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = rng_normal(rng);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = rng_uniform(rng);
        double x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2)
            return log(d) + log(v);
        if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v)))
            return log(d) + log(v);
    }
}

double rng_gamma_log(rng_t *rng, double alpha)
{
    if (!(alpha > 0.0) || !isfinite(alpha))
        return NAN;
    if (alpha >= 1.0)
        return gamma_log_mt(rng, alpha);
    /* Boost: if G ~ Gamma(alpha + 1) and U ~ U(0,1) then G * U^(1/alpha) ~ Gamma(alpha). */
    double lg = gamma_log_mt(rng, alpha + 1.0);
    return lg + log(rng_uniform(rng)) / alpha;
}

double rng_gamma(rng_t *rng, double alpha)
{
    return exp(rng_gamma_log(rng, alpha));
}

int rng_dirichlet(rng_t *rng, const double *alpha, int k, double *out)
{
    if (k < 1)
        return -EINVAL;
    for (int i = 0; i < k; i++)
        if (!(alpha[i] > 0.0) || !isfinite(alpha[i]))
            return -EINVAL;
    double mx = -INFINITY;
    for (int i = 0; i < k; i++) {
        out[i] = rng_gamma_log(rng, alpha[i]);
        if (out[i] > mx)
            mx = out[i];
    }
    double sum = 0.0;
    for (int i = 0; i < k; i++) {
        out[i] = exp(out[i] - mx);
        sum += out[i];
    }
    /* sum >= 1 since the largest term is exp(0). */
    for (int i = 0; i < k; i++)
        out[i] /= sum;
    return 0;
}
