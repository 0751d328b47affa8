/*
 * regmixctl next: the active search offline (docs/search.md). Reads the runs done so far (a
 * mixtures CSV and a losses CSV joined on a key, as `regmixctl fit`), fits the search's model,
 * and prints the next K mixtures to run (active_next(), the code of the daemon's active rounds)
 * and the current proposal with an interval on its objective (active_propose()). For people who
 * run their proxies with their own tools.
 */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "active.h"
#include "commands.h"
#include "config.h"
#include "fitdata.h"

static void next_usage(FILE *f)
{
    fputs("usage: regmixctl next --mixtures M.csv --losses L.csv --target T --n K [options]\n"
          "\n"
          "Propose the next K mixtures to run, given the runs so far: fit the search model (a\n"
          "Gaussian process by default), search candidates from Dirichlet draws refined locally,\n"
          "and pick a batch by an acquisition (lower confidence bound with the batch's own\n"
          "picks hallucinated, by default). Also prints the current proposal: the mixture to\n"
          "train the target on now, with a 95% interval on its objective.\n"
          "\n"
          "Input:\n"
          "  --mixtures M.csv     one row per run: the join column and one weight per domain\n"
          "  --losses L.csv       one row per run: the join column and loss columns\n"
          "  --target SPEC        a loss column, 'mean', or 'name=w,name=w'\n"
          "  --join COLUMN        the key column of both files (default: index)\n"
          "  --prior P.csv        token shares, CSV 'domain,weight' naming every domain: the\n"
          "                       Dirichlet concentration of the wide candidates, and with\n"
          "                       --max-epochs the cap on each weight (default: the mean mixture,\n"
          "                       no caps)\n"
          "  --max-epochs E       cap each weight at E * its prior share, as the sweep does\n"
          "                       (default 15 with --prior; 0: no caps)\n"
          "Search:\n"
          "  --n K                mixtures to propose (1..4096)\n"
          "  --model KIND         gp (default), linear, ridge, loglinear, quadratic, gbdt, cv\n"
          "  --acquisition A      lcb (default), ei, thompson, greedy\n"
          "  --repeats R          of the K, re-run the R runs with the lowest predicted objective\n"
          "  --candidates N       random candidates per search (default 8192)\n"
          "  --seed S             seed (default 42)\n"
          "Output:\n"
          "  --json               one JSON object: {\"next\": [{domain: weight}], \"proposal\":\n"
          "                       {\"mixture\", \"predicted\", \"sd\", \"noise_sd\", "
          "\"interval\"}}\n"
          "                       (default: the K mixtures as CSV with a header, 'index' 1..K,\n"
          "                       and the proposal on stderr)\n"
          "  -h, --help           show this help\n"
          "  --version            show the version\n"
          "\n"
          "Exit status: 0 success, 2 bad usage or input, 1 other failures.\n"
          "\n"
          "Example:\n"
          "  regmixctl next --mixtures train_mixture_1m.csv --losses train_pile_loss_1m.csv \\\n"
          "      --target metric/the_pile_pile_cc_val_loss --prior prior.csv --n 16 > next.csv\n",
          f);
}

int cmd_next(int argc, char **argv)
{
    /* The GP works on small matrices from OpenMP threads: OpenBLAS threads of its own only spin
     * against them (2.4 s of CPU took 150 s of wall on a loaded machine). */
    openblas_set_num_threads(1);
    enum {
        O_MIX = 256,
        O_LOSS,
        O_TARGET,
        O_JOIN,
        O_PRIOR,
        O_EPOCHS,
        O_N,
        O_MODEL,
        O_ACQ,
        O_REPEATS,
        O_CAND,
        O_SEED,
        O_JSON,
        O_VERSION
    };
    static const struct option opts[] = {
            {"mixtures", required_argument, NULL, O_MIX},
            {"losses", required_argument, NULL, O_LOSS},
            {"target", required_argument, NULL, O_TARGET},
            {"join", required_argument, NULL, O_JOIN},
            {"prior", required_argument, NULL, O_PRIOR},
            {"max-epochs", required_argument, NULL, O_EPOCHS},
            {"n", required_argument, NULL, O_N},
            {"model", required_argument, NULL, O_MODEL},
            {"acquisition", required_argument, NULL, O_ACQ},
            {"repeats", required_argument, NULL, O_REPEATS},
            {"candidates", required_argument, NULL, O_CAND},
            {"seed", required_argument, NULL, O_SEED},
            {"json", no_argument, NULL, O_JSON},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, O_VERSION},
            {0},
    };
    const char *mixtures = NULL, *losses = NULL, *target = NULL, *join = NULL, *prior = NULL;
    double epochs = NAN;
    long k = 0;
    int json = 0;
    active_params_t ap;
    active_params_default(&ap);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        errno = 0;
        switch (c) {
        case O_MIX:
            mixtures = optarg;
            break;
        case O_LOSS:
            losses = optarg;
            break;
        case O_TARGET:
            target = optarg;
            break;
        case O_JOIN:
            join = optarg;
            break;
        case O_PRIOR:
            prior = optarg;
            break;
        case O_EPOCHS:
            epochs = strtod(optarg, &end);
            if (*end || !(epochs >= 0) || !isfinite(epochs)) {
                fprintf(stderr, "regmixctl next: --max-epochs: '%s' is not a number >= 0\n",
                        optarg);
                return 2;
            }
            break;
        case O_N:
            k = strtol(optarg, &end, 10);
            if (*end || errno || k < 1 || k > 4096) {
                fprintf(stderr, "regmixctl next: --n: '%s' is not an integer in 1..4096\n", optarg);
                return 2;
            }
            break;
        case O_MODEL:
            if (surrogate_kind_parse(optarg, &ap.model) < 0) {
                fprintf(stderr,
                        "regmixctl next: --model: unknown model '%s' (gp, linear, ridge, "
                        "loglinear, quadratic, gbdt, cv)\n",
                        optarg);
                return 2;
            }
            break;
        case O_ACQ:
            if (active_acq_parse(optarg, &ap.acq) < 0) {
                fprintf(stderr,
                        "regmixctl next: --acquisition: unknown '%s' (lcb, ei, thompson, "
                        "greedy)\n",
                        optarg);
                return 2;
            }
            break;
        case O_REPEATS: {
            long r = strtol(optarg, &end, 10);
            if (*end || errno || r < 0 || r > 64) {
                fprintf(stderr, "regmixctl next: --repeats: '%s' is not an integer in 0..64\n",
                        optarg);
                return 2;
            }
            ap.repeats = (int)r;
            break;
        }
        case O_CAND: {
            long v = strtol(optarg, &end, 10);
            if (*end || errno || v < 16 || v > 10000000) {
                fprintf(stderr,
                        "regmixctl next: --candidates: '%s' is not an integer in 16..10000000\n",
                        optarg);
                return 2;
            }
            ap.pool = (size_t)v;
            break;
        }
        case O_SEED: {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (!*optarg || *optarg == '-' || *end || errno) {
                fprintf(stderr, "regmixctl next: --seed: '%s' is not a non-negative integer\n",
                        optarg);
                return 2;
            }
            ap.seed = v;
            break;
        }
        case O_JSON:
            json = 1;
            break;
        case 'h':
            next_usage(stdout);
            return 0;
        case O_VERSION:
            printf("regmixctl %s\n", REGMIX_VERSION);
            return 0;
        default:
            fprintf(stderr, "regmixctl next: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "regmixctl next: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!mixtures || !losses || !target || k == 0) {
        fprintf(stderr, "regmixctl next: --mixtures, --losses, --target and --n are required "
                        "(see --help)\n");
        return 2;
    }
    char err[512] = "";
    fitdata_t *fd = NULL;
    int rc = fitdata_load(mixtures, losses, join, target, NULL, 0, &fd, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "regmixctl next: %s\n", err);
        return rc == -ENOMEM ? 1 : 2;
    }
    size_t d = fd->d, n = fd->n;
    int status = 1;
    double *alpha = calloc(d, sizeof *alpha), *upper = calloc(d, sizeof *upper);
    double *next = calloc((size_t)k * d, sizeof *next), *w = calloc(d, sizeof *w);
    if (!alpha || !upper || !next || !w)
        goto out;
    if (prior) {
        rc = fitdata_load_prior(prior, (const char *const *)fd->domains, d, alpha, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "regmixctl next: %s\n", err);
            status = rc == -ENOMEM ? 1 : 2;
            goto out;
        }
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += alpha[j];
        if (isnan(epochs))
            epochs = 15;
        for (size_t j = 0; j < d; j++)
            upper[j] = fmin(1.0, epochs * alpha[j] / s);
        if (epochs > 0) {
            double su = 0;
            for (size_t j = 0; j < d; j++)
                su += upper[j];
            if (su < 1) {
                fprintf(stderr,
                        "regmixctl next: --max-epochs %g caps the weights at %g in all, below 1\n",
                        epochs, su);
                status = 2;
                goto out;
            }
            ap.upper = upper;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                alpha[j] += fd->X[i * d + j] / (double)n;
        for (size_t j = 0; j < d; j++)
            if (!(alpha[j] > 0)) {
                fprintf(stderr,
                        "regmixctl next: %s: domain '%s' has weight 0 in every run: give "
                        "--prior\n",
                        mixtures, fd->domains[j]);
                status = 2;
                goto out;
            }
    }
    rc = active_next(&ap, fd->X, fd->y, n, d, alpha, (size_t)k, next, err, sizeof err);
    active_proposal_t pr;
    if (rc == 0)
        rc = active_propose(&ap, fd->X, fd->y, n, d, alpha, w, &pr, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "regmixctl next: %s\n", err);
        status = rc == -EINVAL ? 2 : 1;
        goto out;
    }
    if (json) {
        json_t *root = json_object(), *arr = json_array(), *prop = json_object(),
               *mix = json_object(), *iv = json_array();
        for (long i = 0; i < k; i++) {
            json_t *o = json_object();
            for (size_t j = 0; j < d; j++)
                json_object_set_new(o, fd->domains[j], json_real(next[(size_t)i * d + j]));
            json_array_append_new(arr, o);
        }
        for (size_t j = 0; j < d; j++)
            json_object_set_new(mix, fd->domains[j], json_real(w[j]));
        json_object_set_new(prop, "mixture", mix);
        json_object_set_new(prop, "model", json_string(surrogate_kind_name(pr.model)));
        json_object_set_new(prop, "predicted", json_real(pr.predicted));
        json_object_set_new(prop, "sd", isfinite(pr.sd) ? json_real(pr.sd) : json_null());
        json_object_set_new(prop, "noise_sd",
                            isfinite(pr.noise_sd) ? json_real(pr.noise_sd) : json_null());
        json_array_append_new(iv, isfinite(pr.lo) ? json_real(pr.lo) : json_null());
        json_array_append_new(iv, isfinite(pr.hi) ? json_real(pr.hi) : json_null());
        json_object_set_new(prop, "interval", iv);
        json_object_set_new(root, "runs", json_integer((json_int_t)n));
        json_object_set_new(root, "target", json_string(fd->target));
        json_object_set_new(root, "next", arr);
        json_object_set_new(root, "proposal", prop);
        char *txt = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        json_decref(root);
        if (!txt)
            goto out;
        puts(txt);
        free(txt);
    } else {
        printf("index");
        for (size_t j = 0; j < d; j++)
            printf(",%s", fd->domains[j]);
        printf("\n");
        for (long i = 0; i < k; i++) {
            printf("%ld", i + 1);
            for (size_t j = 0; j < d; j++)
                printf(",%.6f", next[(size_t)i * d + j]);
            printf("\n");
        }
        fprintf(stderr,
                "proposal (%s, %zu runs): predicted %s %.4f, 95%% interval of a run [%.4f, "
                "%.4f]\n",
                surrogate_kind_name(pr.model), n, fd->target, pr.predicted, pr.lo, pr.hi);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "regmixctl next: writing the output failed\n");
        goto out;
    }
    status = 0;
out:
    free(alpha);
    free(upper);
    free(next);
    free(w);
    fitdata_destroy(&fd);
    return status;
}
