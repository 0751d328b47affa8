/* Unit tests of common/sampler: Dirichlet means at a fixed strength (with and without
 * temperature), every bound on the paper's 17-domain prior, zeroing below min_weight,
 * de-duplication, reproducibility, the draw cap, and per-run seeds. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "test.h"

/* The 17-domain Pile prior of the RegMix paper (data/regmix-paper/README.md). */
static const double pile_prior[17] = {
        0.113285273, 0.079608651, 0.003913491, 0.185375901, 0.051081359, 0.015962925,
        0.101750772, 0.003707518, 0.066529351, 0.001750772, 0.027085479, 0.236869207,
        0.01184346,  0.007929969, 0.008032956, 0.038825953, 0.046446962};

static void pile_params(sampler_params_t *p, int runs, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->k = 17;
    for (int i = 0; i < 17; i++)
        p->tokens[i] = pile_prior[i] * 250e9;
    p->runs = runs;
    p->seed = seed;
    p->temperature = 0.5;
    p->strength_min = 0.1;
    p->strength_max = 5.0;
    p->strength_steps = 15;
    p->max_epochs = 15;
    p->min_weight = 2e-4;
}

static void test_strength_grid_and_prior(void)
{
    sampler_params_t p;
    pile_params(&p, 1, 1);
    CHECK_NEAR(sampler_strength(&p, 0), 0.1, 1e-15);
    CHECK_NEAR(sampler_strength(&p, 14), 5.0, 1e-14);
    /* np.logspace(log10(0.1), log10(5), 15)[7] = sqrt(0.5) = 0.7071067811865476 */
    CHECK_NEAR(sampler_strength(&p, 7), 0.7071067811865476, 1e-15);
    p.strength_steps = 1;
    CHECK_NEAR(sampler_strength(&p, 0), 0.1, 0);

    double q[17], s = 0, t = 0;
    sampler_prior(&p, q);
    for (int i = 0; i < 17; i++) {
        s += q[i];
        t += sqrt(pile_prior[i]);
    }
    CHECK_NEAR(s, 1.0, 1e-15);
    CHECK_NEAR(q[11], sqrt(pile_prior[11]) / t, 1e-12);
}

/* With one strength, no bound and no zeroing, rows are plain Dirichlet(q * s) draws: the sample
 * mean of x_i is q_i, with standard error sqrt(q_i (1 - q_i) / ((s + 1) n)). */
static void check_means(double temperature, double strength, uint64_t seed)
{
    sampler_params_t p;
    memset(&p, 0, sizeof p);
    p.k = 4;
    const double tokens[4] = {5, 3, 1.5, 0.5};
    for (int i = 0; i < 4; i++)
        p.tokens[i] = tokens[i];
    p.runs = 20000;
    p.seed = seed;
    p.temperature = temperature;
    p.strength_min = p.strength_max = strength;
    p.strength_steps = 1;
    p.max_epochs = 1e9;
    p.min_weight = 0;
    double *out = malloc(sizeof(double) * 4 * (size_t)p.runs);
    sampler_stats_t st;
    char err[256];
    CHECK_INT_EQ(sampler_sample(&p, out, &st, err, sizeof err), 0);
    CHECK_INT_EQ(st.over_bound, 0);
    double q[4];
    sampler_prior(&p, q);
    for (int i = 0; i < 4; i++) {
        double m = 0;
        for (int r = 0; r < p.runs; r++)
            m += out[r * 4 + i];
        m /= p.runs;
        double se = sqrt(q[i] * (1 - q[i]) / ((strength + 1) * p.runs));
        CHECK_MSG(fabs(m - q[i]) < 6 * se, "t %g s %g: mean[%d] %g vs %g (se %g)", temperature,
                  strength, i, m, q[i], se);
    }
    free(out);
}

static void test_dirichlet_means(void)
{
    check_means(1.0, 2.0, 7);
    check_means(0.5, 1.0, 8);
    check_means(0.5, 20.0, 9);
}

/* Every property of docs/method.md on the paper's prior with the default parameters. */
static void check_properties(const sampler_params_t *p, const double *out)
{
    double total = 0;
    for (int i = 0; i < p->k; i++)
        total += p->tokens[i];
    int zeros = 0, bad_bound = 0, bad_min = 0, bad_sum = 0, dups = 0;
    for (int r = 0; r < p->runs; r++) {
        const double *x = out + (size_t)r * (size_t)p->k;
        double s = 0;
        for (int i = 0; i < p->k; i++) {
            double b = p->target_tokens > 0 ? p->max_epochs * p->tokens[i] / p->target_tokens
                                            : p->max_epochs * p->tokens[i] / total;
            bad_bound += x[i] > b || x[i] < 0;
            bad_min += x[i] != 0 && x[i] < p->min_weight;
            zeros += x[i] == 0;
            s += x[i];
        }
        bad_sum += fabs(s - 1.0) > 1e-12;
        for (int r2 = 0; r2 < r; r2++) {
            const double *y = out + (size_t)r2 * (size_t)p->k;
            double l1 = 0;
            for (int i = 0; i < p->k; i++)
                l1 += fabs(x[i] - y[i]);
            dups += l1 < SAMPLER_DUP_L1;
        }
    }
    CHECK_INT_EQ(bad_bound, 0);
    CHECK_INT_EQ(bad_min, 0);
    CHECK_INT_EQ(bad_sum, 0);
    CHECK_INT_EQ(dups, 0);
    CHECK(zeros > 0); /* small strengths put many domains below min_weight */
}

static void test_bounds_paper_prior(void)
{
    sampler_params_t p;
    pile_params(&p, 512, 42);
    double *out = malloc(sizeof(double) * 17 * 512);
    sampler_stats_t st;
    char err[512];
    CHECK_INT_EQ(sampler_sample(&p, out, &st, err, sizeof err), 0);
    check_properties(&p, out);
    CHECK(st.over_bound > 0); /* the bound does reject at these strengths */
    CHECK(st.draws == 512 + st.over_bound + st.degenerate + st.duplicates);

    /* The target-token bound: 25B target tokens make 15 epochs of the small domains bind. */
    p.target_tokens = 25e9 * 20;
    CHECK_INT_EQ(sampler_sample(&p, out, &st, err, sizeof err), 0);
    check_properties(&p, out);
    free(out);
}

static void test_reproducible(void)
{
    sampler_params_t p;
    pile_params(&p, 256, 1234);
    double *a = malloc(sizeof(double) * 17 * 256), *b = malloc(sizeof(double) * 17 * 256);
    char err[256];
    CHECK_INT_EQ(sampler_sample(&p, a, NULL, err, sizeof err), 0);
    CHECK_INT_EQ(sampler_sample(&p, b, NULL, err, sizeof err), 0);
    CHECK(memcmp(a, b, sizeof(double) * 17 * 256) == 0);
    p.seed = 1235;
    CHECK_INT_EQ(sampler_sample(&p, b, NULL, err, sizeof err), 0);
    int same = 0;
    for (int r = 0; r < 256; r++)
        same += memcmp(a + r * 17, b + r * 17, sizeof(double) * 17) == 0;
    CHECK(same < 3); /* only one-hot rows can coincide */
    free(a);
    free(b);
}

/* Tiny strength on two domains: after zeroing below 0.3 nearly every draw is (1, 0) or (0, 1),
 * so a third distinct mixture (weights in [0.3, 0.7], probability ~1e-4 per draw) comes only after
 * thousands of draws that are dropped as duplicates. */
static void test_duplicates_dropped(void)
{
    sampler_params_t p;
    memset(&p, 0, sizeof p);
    p.k = 2;
    p.tokens[0] = p.tokens[1] = 1;
    p.runs = 3;
    p.seed = 3;
    p.temperature = 1;
    p.strength_min = p.strength_max = 1e-4;
    p.strength_steps = 1;
    p.max_epochs = 10;
    p.min_weight = 0.3;
    double out[6];
    sampler_stats_t st;
    char err[256] = "";
    CHECK_INT_EQ(sampler_sample(&p, out, &st, err, sizeof err), 0);
    CHECK_MSG(st.duplicates > 1000, "%ld duplicates", st.duplicates);
    CHECK(st.draws == 3 + st.duplicates + st.over_bound + st.degenerate);
    int onehot = 0, mid = 0;
    for (int r = 0; r < 3; r++) {
        CHECK(out[2 * r] + out[2 * r + 1] == 1.0);
        onehot += out[2 * r] == 0.0 || out[2 * r] == 1.0;
        mid += out[2 * r] >= 0.3 && out[2 * r] <= 0.7;
    }
    CHECK_INT_EQ(onehot, 2);
    CHECK_INT_EQ(mid, 1);
    check_properties(&p, out);
}

static void test_impossible_bound(void)
{
    sampler_params_t p;
    pile_params(&p, 8, 5);
    p.max_epochs = 0.9; /* sum of bounds 0.9 < 1: no mixture can pass */
    double out[17 * 8];
    char err[512] = "";
    sampler_stats_t st;
    CHECK_INT_EQ(sampler_sample(&p, out, &st, err, sizeof err), -EDOM);
    CHECK_INT_EQ(st.draws, 1000 * 8 + 1000000);
    CHECK_INT_EQ(st.over_bound, st.draws);
    CHECK_MSG(strstr(err, "over the epoch bound") != NULL, "%s", err);
}

static void test_bad_params(void)
{
    sampler_params_t p;
    pile_params(&p, 8, 5);
    double out[17 * 8];
    char err[256];
    sampler_params_t b = p;
    b.k = 0;
    CHECK_INT_EQ(sampler_sample(&b, out, NULL, err, sizeof err), -EINVAL);
    b = p;
    b.tokens[3] = 0;
    CHECK_INT_EQ(sampler_sample(&b, out, NULL, err, sizeof err), -EINVAL);
    b = p;
    b.runs = SPEC_MAX_RUNS + 1;
    CHECK_INT_EQ(sampler_sample(&b, out, NULL, err, sizeof err), -EINVAL);
    b = p;
    b.strength_max = 0.01;
    CHECK_INT_EQ(sampler_sample(&b, out, NULL, err, sizeof err), -EINVAL);
    b = p;
    b.min_weight = 1.0;
    CHECK_INT_EQ(sampler_sample(&b, out, NULL, err, sizeof err), -EINVAL);
}

static void test_from_spec(void)
{
    const char *yaml = "name: s\n"
                       "domains: [{name: a, tokens: 3e9}, {name: b, tokens: 1e9}]\n"
                       "sampling: {runs: 16, seed: 77, temperature: 0.9, max_epochs: 4,\n"
                       "           strengths: {min: 0.5, max: 2, steps: 3}, min_weight: 0.01,\n"
                       "           target_tokens: 2e9}\n";
    spec_t *s = NULL;
    char err[256];
    CHECK_INT_EQ(spec_parse_string("s.yaml", yaml, strlen(yaml), &s, err, sizeof err), 0);
    if (!s)
        return;
    sampler_params_t p;
    sampler_params_from_spec(s, &p);
    CHECK(p.k == 2 && p.tokens[0] == 3e9 && p.tokens[1] == 1e9);
    CHECK(p.runs == 16 && p.seed == 77 && p.temperature == 0.9 && p.max_epochs == 4);
    CHECK(p.strength_min == 0.5 && p.strength_max == 2 && p.strength_steps == 3);
    CHECK(p.min_weight == 0.01 && p.target_tokens == 2e9);
    double out[32];
    CHECK_INT_EQ(sampler_sample(&p, out, NULL, err, sizeof err), 0);
    check_properties(&p, out);
    spec_destroy(&s);
}

static void test_run_seeds(void)
{
    uint64_t a = sampler_run_seed(42, 0), b = sampler_run_seed(42, 1), c = sampler_run_seed(43, 0);
    CHECK(a == sampler_run_seed(42, 0));
    CHECK(a != b && a != c && b != c);
    CHECK(a != 42);
    /* Distinct over a sweep's runs. */
    int coll = 0;
    uint64_t prev = sampler_run_seed(7, 0);
    for (int r = 1; r < 100000; r++) {
        uint64_t s = sampler_run_seed(7, r);
        coll += s == prev;
        prev = s;
    }
    CHECK_INT_EQ(coll, 0);
}

int main(void)
{
    TEST_RUN(test_strength_grid_and_prior);
    TEST_RUN(test_dirichlet_means);
    TEST_RUN(test_bounds_paper_prior);
    TEST_RUN(test_reproducible);
    TEST_RUN(test_duplicates_dropped);
    TEST_RUN(test_impossible_bound);
    TEST_RUN(test_bad_params);
    TEST_RUN(test_from_spec);
    TEST_RUN(test_run_seeds);
    return test_finish();
}
