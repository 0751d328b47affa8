/*
 * test.h: the tiny harness every C test in tests/ uses.
 *
 * A test program defines static functions `static void test_x(void)` and lists them in main() with
 * TEST_RUN(test_x). CHECK* macros record a failure with file:line and keep going; the program
 * exits 1 if any check failed, 77 (meson's "skipped") when test_skip() was called, 0 otherwise.
 * Tolerances are stated at each CHECK_NEAR call.
 */
#ifndef REGMIX_TEST_H
#define REGMIX_TEST_H

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test__failures;
static int test__checks;
static int test__skipped;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        test__checks++;                                                                            \
        if (!(cond)) {                                                                             \
            test__failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        test__checks++;                                                                            \
        if (!(cond)) {                                                                             \
            test__failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                                         \
    do {                                                                                           \
        long long test__a = (long long)(a), test__b = (long long)(b);                              \
        test__checks++;                                                                            \
        if (test__a != test__b) {                                                                  \
            test__failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,  \
                    #a, #b, test__a, test__b);                                                     \
        }                                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double test__a = (double)(a), test__b = (double)(b);                                       \
        test__checks++;                                                                            \
        if (!(fabs(test__a - test__b) <= (tol))) {                                                 \
            test__failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: |%s - %s| <= %s (%.9g vs %.9g)\n", __FILE__,     \
                    __LINE__, #a, #b, #tol, test__a, test__b);                                     \
        }                                                                                          \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const char *test__a = (a), *test__b = (b);                                                 \
        test__checks++;                                                                            \
        if (!test__a || !test__b || strcmp(test__a, test__b) != 0) {                               \
            test__failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" vs \"%s\")\n", __FILE__,        \
                    __LINE__, #a, #b, test__a ? test__a : "(null)", test__b ? test__b : "(null)"); \
        }                                                                                          \
    } while (0)

#define TEST_RUN(fn)                                                                               \
    do {                                                                                           \
        int test__before = test__failures;                                                         \
        fn();                                                                                      \
        fprintf(stderr, "%s %s\n", test__failures == test__before ? "ok  " : "FAIL", #fn);         \
    } while (0)

/* Marks the whole program as skipped (exit 77); say why, e.g. "no CUDA device". */
static inline void test_skip(const char *why)
{
    fprintf(stderr, "SKIP: %s\n", why);
    test__skipped = 1;
}

static inline int test_finish(void)
{
    fprintf(stderr, "%d checks, %d failed\n", test__checks, test__failures);
    if (test__failures)
        return 1;
    return test__skipped ? 77 : 0;
}

static int test__rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/*
 * Ends a test that worked in the temporary directory `dir`: removes it when every check passed,
 * keeps it (and says so, with `what` it holds) for a look when one failed. Returns test_finish().
 */
static inline int test_finish_tmpdir(const char *dir, const char *what)
{
    int rc = test_finish();
    if (rc == 1)
        fprintf(stderr, "%s kept in %s\n", what, dir);
    else if (nftw(dir, test__rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}

/* Path of a file in the RegMix authors' released data (data/regmix-paper) (REGMIX_PAPER_DIR is set by meson). */
static inline const char *test_paper_path(const char *name)
{
    static char buf[4096];
    const char *dir = getenv("REGMIX_PAPER_DIR");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "data/regmix-paper", name);
    return buf;
}

#endif
