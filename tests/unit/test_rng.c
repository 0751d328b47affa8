/* Unit tests of common/rng: stream reproducibility, moments of the distributions at a fixed seed,
 * and the log-space path for tiny shape parameters. */
#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "rng.h"
#include "test.h"

static void test_same_seed_same_stream(void)
{
    rng_t a, b, c;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    rng_seed(&c, 43);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rng_u64(&a), y = rng_u64(&b), z = rng_u64(&c);
        CHECK(x == y);
        differ += x != z;
    }
    CHECK(differ > 990);
}

static void test_reference_values(void)
{
    /* splitmix64 reference: seed 1234567 gives 6457827717110365317 first (Vigna's test vector). */
    uint64_t s = 1234567;
    CHECK(rng_splitmix64(&s) == 6457827717110365317ULL);
    CHECK(rng_splitmix64(&s) == 3203168211198807973ULL);
    /* xoshiro256** with state {1, 2, 3, 4}: first outputs 11520, 0, 1509978240, 1215971899390074240
     * (reference implementation). */
    rng_t r = {{1, 2, 3, 4}};
    CHECK(rng_u64(&r) == 11520ULL);
    CHECK(rng_u64(&r) == 0ULL);
    CHECK(rng_u64(&r) == 1509978240ULL);
    CHECK(rng_u64(&r) == 1215971899390074240ULL);
}

static void test_split_and_jump(void)
{
    rng_t p, p2, c1, c2, c3;
    rng_seed(&p, 7);
    p2 = p;
    rng_split(&p, 0, &c1);
    rng_split(&p, 0, &c2);
    rng_split(&p, 1, &c3);
    CHECK(p.s[0] == p2.s[0] && p.s[3] == p2.s[3]); /* parent not advanced */
    uint64_t x1 = rng_u64(&c1), x2 = rng_u64(&c2), x3 = rng_u64(&c3), xp = rng_u64(&p);
    CHECK(x1 == x2);
    CHECK(x1 != x3);
    CHECK(x1 != xp);

    rng_t j1 = p2, j2 = p2;
    rng_jump(&j1);
    rng_jump(&j2);
    CHECK(rng_u64(&j1) == rng_u64(&j2));
    CHECK(rng_u64(&j1) != rng_u64(&p2));
}

static void test_uniform_and_below(void)
{
    rng_t r;
    rng_seed(&r, 1);
    const int n = 200000;
    double sum = 0, sum2 = 0;
    int counts[7] = {0};
    for (int i = 0; i < n; i++) {
        double u = rng_uniform(&r);
        CHECK(u > 0.0 && u < 1.0);
        sum += u;
        sum2 += u * u;
        uint64_t k = rng_below(&r, 7);
        CHECK(k < 7);
        counts[k < 7 ? k : 0]++;
    }
    /* Mean 1/2, variance 1/12; standard error of the mean 6.5e-4: tolerance ~ 6 s.e. */
    CHECK_NEAR(sum / n, 0.5, 4e-3);
    CHECK_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12.0, 2e-3);
    for (int k = 0; k < 7; k++)
        CHECK_NEAR(counts[k] / (double)n, 1.0 / 7.0, 5e-3); /* s.e. 7.8e-4 */
}

static void test_normal_moments(void)
{
    rng_t r;
    rng_seed(&r, 2);
    const int n = 200000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; i++) {
        double x = rng_normal(&r);
        sum += x;
        sum2 += x * x;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK_NEAR(mean, 0.0, 0.015); /* s.e. 2.2e-3 */
    CHECK_NEAR(var, 1.0, 0.02);   /* s.e. 3.2e-3 */
}

/* Gamma(alpha, 1): mean alpha, variance alpha. Sample variance has s.e. about
 * alpha * sqrt((2 + 6/alpha) / n); tolerances are ~6 standard errors. */
static void check_gamma_moments(double alpha, uint64_t seed)
{
    rng_t r;
    rng_seed(&r, seed);
    const int n = 200000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; i++) {
        double lx = rng_gamma_log(&r, alpha);
        CHECK(isfinite(lx));
        double x = exp(lx);
        sum += x;
        sum2 += x * x;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    double se_mean = sqrt(alpha / n);
    double se_var = alpha * sqrt((2.0 + 6.0 / alpha) / n);
    CHECK_MSG(fabs(mean - alpha) <= 6 * se_mean, "alpha %g mean %g", alpha, mean);
    CHECK_MSG(fabs(var - alpha) <= 6 * se_var, "alpha %g var %g", alpha, var);
}

static void test_gamma_moments(void)
{
    check_gamma_moments(0.3, 11);
    check_gamma_moments(1.0, 12);
    check_gamma_moments(2.5, 13);
    check_gamma_moments(30.0, 14);
}

static void test_gamma_tiny_alpha(void)
{
    rng_t r;
    rng_seed(&r, 3);
    /* log X for alpha = 1e-4 has mean digamma(1e-4) ~ -1e4: it must stay finite, and the
     * exponentiated draw underflows, which is why callers stay in log space. */
    double sum = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        double lx = rng_gamma_log(&r, 1e-4);
        CHECK(isfinite(lx));
        sum += lx;
    }
    /* E[log X] = digamma(1e-4) = -10000.58; sd of log X = sqrt(trigamma(1e-4)) ~ 1e4, s.e. 71. */
    CHECK_NEAR(sum / n, -10000.58, 450.0);
    CHECK(isnan(rng_gamma_log(&r, 0.0)));
    CHECK(isnan(rng_gamma_log(&r, -1.0)));
    CHECK(isnan(rng_gamma_log(&r, INFINITY)));
}

static void test_dirichlet_moments(void)
{
    const double alpha[4] = {0.2, 1.0, 3.0, 0.8};
    const double a0 = 5.0;
    rng_t r;
    rng_seed(&r, 5);
    const int n = 100000;
    double sum[4] = {0}, sum2[4] = {0};
    for (int t = 0; t < n; t++) {
        double x[4];
        CHECK(rng_dirichlet(&r, alpha, 4, x) == 0);
        double s = 0;
        for (int i = 0; i < 4; i++) {
            CHECK(x[i] >= 0.0 && x[i] <= 1.0);
            s += x[i];
            sum[i] += x[i];
            sum2[i] += x[i] * x[i];
        }
        CHECK_NEAR(s, 1.0, 1e-12);
    }
    for (int i = 0; i < 4; i++) {
        double m = alpha[i] / a0;
        double v = alpha[i] * (a0 - alpha[i]) / (a0 * a0 * (a0 + 1.0));
        double mean = sum[i] / n, var = sum2[i] / n - mean * mean;
        /* s.e. of the mean sqrt(v/n) <= 6.3e-4; tolerance 4e-3. Variance within 5% relative. */
        CHECK_NEAR(mean, m, 4e-3);
        CHECK_NEAR(var / v, 1.0, 0.05);
    }
}

static void test_dirichlet_tiny_alpha(void)
{
    double alpha[17];
    for (int i = 0; i < 17; i++)
        alpha[i] = 1e-4;
    rng_t r;
    rng_seed(&r, 9);
    for (int t = 0; t < 1000; t++) {
        double x[17];
        CHECK(rng_dirichlet(&r, alpha, 17, x) == 0);
        double s = 0;
        for (int i = 0; i < 17; i++) {
            CHECK(isfinite(x[i]) && x[i] >= 0.0);
            s += x[i];
        }
        CHECK(s > 0.0);
        CHECK_NEAR(s, 1.0, 1e-12);
    }
}

static void test_dirichlet_errors(void)
{
    rng_t r;
    rng_seed(&r, 1);
    double out[3] = {-1, -1, -1};
    const double bad[3] = {1.0, 0.0, 1.0};
    const double nan3[3] = {1.0, NAN, 1.0};
    CHECK_INT_EQ(rng_dirichlet(&r, bad, 3, out), -EINVAL);
    CHECK_INT_EQ(rng_dirichlet(&r, nan3, 3, out), -EINVAL);
    CHECK_INT_EQ(rng_dirichlet(&r, bad, 0, out), -EINVAL);
    CHECK(out[0] == -1 && out[1] == -1 && out[2] == -1);
    const double one[1] = {0.5};
    CHECK_INT_EQ(rng_dirichlet(&r, one, 1, out), 0);
    CHECK(out[0] == 1.0);
}

int main(void)
{
    TEST_RUN(test_same_seed_same_stream);
    TEST_RUN(test_reference_values);
    TEST_RUN(test_split_and_jump);
    TEST_RUN(test_uniform_and_below);
    TEST_RUN(test_normal_moments);
    TEST_RUN(test_gamma_moments);
    TEST_RUN(test_gamma_tiny_alpha);
    TEST_RUN(test_dirichlet_moments);
    TEST_RUN(test_dirichlet_tiny_alpha);
    TEST_RUN(test_dirichlet_errors);
    return test_finish();
}
