/*
 * sgemm_peak: OpenBLAS sgemm throughput on this machine, the yardstick for regmix-train's GFLOP/s.
 *
 * Times C = A B for square n (default 1024) with the given OpenBLAS thread count and prints one
 * JSON line {"n", "threads", "gflops"} (best of the repeats).
 * Usage: sgemm_peak [n] [threads] [repeats]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] == '-') {
        printf("Usage: sgemm_peak [n=1024] [threads=2] [repeats=5]\n"
               "Prints OpenBLAS sgemm GFLOP/s for an n x n x n product as a JSON line.\n"
               "Example: sgemm_peak 2048 2 3\n");
        return 0;
    }
    int n = argc > 1 ? atoi(argv[1]) : 1024, threads = argc > 2 ? atoi(argv[2]) : 2;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (n < 1 || threads < 1 || reps < 1) {
        fprintf(stderr, "sgemm_peak: bad arguments (see --help)\n");
        return 2;
    }
    openblas_set_num_threads(threads);
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4);
    float *c = malloc((size_t)n * n * 4);
    if (!a || !b || !c)
        return 1;
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.01f;
        b[i] = (float)(i % 5) * 0.01f;
    }
    double best = 0.0;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double g = 2.0 * n * (double)n * n / (now() - t0) / 1e9;
        if (r > 0 && g > best) /* the first call warms up */
            best = g;
    }
    printf("{\"n\": %d, \"threads\": %d, \"gflops\": %.1f}\n", n, threads, best);
    free(a);
    free(b);
    free(c);
    return 0;
}
