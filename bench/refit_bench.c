/*
 * refit_bench: the wall time of one coordinator refit (common/fitpipe.h, fitpipe_run()) of an
 * active sweep against the refit it replaced, side by side on the same data and thread count
 * (bench/README.md, "Refit").
 *
 * The data is a demo-like sweep: 7 domains with the token shares of the demo's corpus, mixtures
 * from the sampler at the demo's settings (temperature 0.3, strengths 0.3..5, min_weight 1e-3),
 * a bowl objective with noise 0.003; the demo's regression (quadratic, 100,000 candidates, top
 * 10,000, 5 folds). For each run count it times, best of --reps:
 *
 *   topk            a random sweep's refit: CV, fit, the top-k simulation
 *   topk+round      the active sweep's refit before: the same, then active_next() for a round
 *   active          the active sweep's refit now: CV, active_step() (GP proposal and its gain)
 *   active+round    the same with the round, from the same GP
 *
 * and prints the ratios active / topk and active+round / topk+round.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fitpipe.h"
#include "rng.h"
#include "sampler.h"

#define D     7
#define BATCH 8

static const double tokens[D] = {32, 35, 18, 6.6, 5.9, 2.4, 1.5};
static const double optimum[D] = {0.3, 0.2, 0.2, 0.1, 0.1, 0.05, 0.05};
static const char *const names[D] = {"code_c", "dictionary", "scripture", "manpages",
                                     "legal",  "quotes",     "packages"};

static void usage(FILE *f)
{
    fputs("usage: refit_bench [--runs LIST] [--reps R] [--threads T]\n"
          "\n"
          "Time one refit of an active sweep (the GP's proposal, its expected gain and the next\n"
          "round from one fit) against the refit it replaced (the top-k proposal, then\n"
          "active_next() for the round), on a demo-like sweep of 7 domains, best of R.\n"
          "\n"
          "  --runs LIST   run counts, comma-separated (default 32,128)\n"
          "  --reps R      repetitions per timing, the best is kept (default 5)\n"
          "  --threads T   threads of the simulation (default 2)\n"
          "  -h, --help    this help\n"
          "  --version     the version\n"
          "\n"
          "Example:\n"
          "  refit_bench --runs 32,128 --reps 5\n",
          f);
}

/* Best wall time of `reps` refits of the first n rows. */
static double best_of(int reps,
                      size_t n,
                      const double *X,
                      const double *L,
                      const double *prior,
                      const double *upper,
                      int threads,
                      int active,
                      int round)
{
    fitpipe_settings_t st;
    fitpipe_settings_default(&st);
    st.model = fitpipe_model_find("quadratic");
    st.cv_folds = 5;
    st.seed = 1;
    st.candidates = 100000;
    st.top_k = 10000;
    st.threads = threads;
    st.active = active;
    fitpipe_input_t in = {.n = n,
                          .d = D,
                          .X = X,
                          .m = D,
                          .loss_names = names,
                          .losses = L,
                          .target = "mean",
                          .prior = prior,
                          .upper = upper,
                          .next_k = round ? BATCH : 0,
                          .next_seed = 99};
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        fitpipe_record_t rec;
        char err[512];
        if (fitpipe_run(&in, &st, &rec, NULL, err, sizeof err) < 0) {
            fprintf(stderr, "refit_bench: %s\n", err);
            exit(1);
        }
        best = fmin(best, rec.seconds);
        fitpipe_record_clear(&rec);
    }
    return best;
}

int main(int argc, char **argv)
{
    enum { O_VERSION = 256 };
    static const struct option opts[] = {
            {"runs", required_argument, NULL, 'n'},    {"reps", required_argument, NULL, 'r'},
            {"threads", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, O_VERSION}, {NULL, 0, NULL, 0},
    };
    char runs_arg[256] = "32,128";
    int reps = 5, threads = 2, c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'n':
            snprintf(runs_arg, sizeof runs_arg, "%s", optarg);
            break;
        case 'r':
            reps = (int)strtol(optarg, &end, 10);
            if (!end || *end || reps < 1 || reps > 1000) {
                fprintf(stderr, "refit_bench: --reps must be 1..1000, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 't':
            threads = (int)strtol(optarg, &end, 10);
            if (!end || *end || threads < 1 || threads > 1024) {
                fprintf(stderr, "refit_bench: --threads must be 1..1024, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case O_VERSION:
            printf("refit_bench %s\n", REGMIX_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "refit_bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    size_t ns[16], nn = 0, nmax = 0;
    for (char *tok = strtok(runs_arg, ","); tok; tok = strtok(NULL, ",")) {
        char *end = NULL;
        long v = strtol(tok, &end, 10);
        if (!end || *end || v < 8 || v > 4096 || nn == 16) {
            fprintf(stderr, "refit_bench: --runs takes up to 16 counts of 8..4096, got '%s'\n",
                    tok);
            return 2;
        }
        ns[nn++] = (size_t)v;
        nmax = (size_t)v > nmax ? (size_t)v : nmax;
    }
    if (nn == 0) {
        fprintf(stderr, "refit_bench: --runs is empty\n");
        return 2;
    }

    sampler_params_t sp;
    memset(&sp, 0, sizeof sp);
    sp.k = D;
    for (int i = 0; i < D; i++)
        sp.tokens[i] = tokens[i];
    sp.runs = (int)nmax;
    sp.seed = 7;
    sp.temperature = 0.3;
    sp.strength_min = 0.3;
    sp.strength_max = 5;
    sp.strength_steps = 10;
    sp.max_epochs = 15;
    sp.min_weight = 1e-3;
    double *X = malloc(nmax * D * sizeof *X), *L = malloc(nmax * D * sizeof *L);
    double prior[D], upper[D], tot = 0;
    char err[256];
    if (!X || !L || sampler_sample(&sp, X, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "refit_bench: %s\n", X && L ? err : "out of memory");
        return 1;
    }
    for (int i = 0; i < D; i++)
        tot += tokens[i];
    for (int i = 0; i < D; i++) {
        prior[i] = tokens[i] / tot;
        upper[i] = fmin(1.0, 15 * prior[i]);
    }
    rng_t r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < nmax; i++) {
        double s = 0;
        for (int j = 0; j < D; j++)
            s += (X[i * D + j] - optimum[j]) * (X[i * D + j] - optimum[j]);
        double loss = 2.3 + s + 0.003 * rng_normal(&r);
        for (int j = 0; j < D; j++)
            L[i * D + j] = loss;
    }

    printf("refit wall seconds, best of %d, %d threads (7 domains, quadratic, 100k candidates)\n",
           reps, threads);
    printf("%6s %10s %12s %10s %12s %14s %16s\n", "runs", "topk", "topk+round", "active",
           "active+round", "active/topk", "+round/+round");
    for (size_t k = 0; k < nn; k++) {
        size_t n = ns[k];
        double t0 = best_of(reps, n, X, L, prior, upper, threads, 0, 0);
        double t1 = best_of(reps, n, X, L, prior, upper, threads, 0, 1);
        double t2 = best_of(reps, n, X, L, prior, upper, threads, 1, 0);
        double t3 = best_of(reps, n, X, L, prior, upper, threads, 1, 1);
        printf("%6zu %10.3f %12.3f %10.3f %12.3f %14.2f %16.2f\n", n, t0, t1, t2, t3, t2 / t0,
               t3 / t1);
    }
    free(X);
    free(L);
    return 0;
}
