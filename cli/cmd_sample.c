/*
 * regmixctl sample: the sweep's mixtures without a coordinator. Parses a sweep spec, draws its
 * mixtures with the sampler (docs/method.md) and writes them as CSV `run,<domain>,...`, runs
 * numbered from 0, weights printed with %.17g so they read back bit for bit. What the
 * coordinator would hand to proxy run i is row i of this file for the same spec and seed.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "csv.h"
#include "sampler.h"
#include "spec.h"

static void sample_usage(FILE *f)
{
    fputs("usage: regmixctl sample --spec SWEEP.yaml [--runs N] [--seed S] [--out FILE.csv]\n"
          "\n"
          "Draw a sweep's candidate mixtures exactly as the coordinator would: the token prior\n"
          "tempered, Dirichlet draws at log-spaced strengths, rejection of mixtures over the\n"
          "epoch bound, zeroing of weights below min_weight, removal of near-duplicates. Output\n"
          "is CSV with a header 'run,<domain>,...' and one row per run (run numbered from 0);\n"
          "weights are printed with 17 significant digits and each row sums to 1.\n"
          "\n"
          "Options:\n"
          "  --spec SWEEP.yaml   the sweep spec (required); its sampling section gives the\n"
          "                      defaults of --runs and --seed\n"
          "  --runs N            number of mixtures (1..1000000)\n"
          "  --seed S            sampler seed (0..2^64-1); the same seed gives the same file\n"
          "  --out FILE.csv      write to FILE.csv (atomically) instead of stdout\n"
          "  --json              print {\"domains\": [...], \"mixtures\": [[...], ...]} instead\n"
          "  -h, --help          show this help\n"
          "  --version           show the version\n"
          "\n"
          "Exit status: 0 success, 2 bad usage, bad spec (one line naming file:line:col) or\n"
          "sampling bounds too tight, 1 other failures.\n"
          "\n"
          "Example:\n"
          "  regmixctl sample --spec sweep.yaml --runs 512 --seed 42 --out mixtures.csv\n",
          f);
}

static int write_csv(FILE *f, const spec_t *spec, const double *w, int runs)
{
    const int k = spec->ndomains;
    fputs("run", f);
    for (int i = 0; i < k; i++) {
        fputc(',', f);
        csv_write_field(f, spec->domains[i].name);
    }
    fputc('\n', f);
    for (int r = 0; r < runs; r++) {
        fprintf(f, "%d", r);
        for (int i = 0; i < k; i++)
            fprintf(f, ",%.17g", w[(size_t)r * (size_t)k + (size_t)i]);
        fputc('\n', f);
    }
    return ferror(f) ? -EIO : 0;
}

static int write_json(FILE *f, const spec_t *spec, const double *w, int runs)
{
    const int k = spec->ndomains;
    json_t *root = json_object(), *doms = json_array(), *mix = json_array();
    int bad = !root || !doms || !mix;
    for (int i = 0; i < k && !bad; i++)
        bad = json_array_append_new(doms, json_string(spec->domains[i].name)) < 0;
    for (int r = 0; r < runs && !bad; r++) {
        json_t *row = json_array();
        bad = !row;
        for (int i = 0; i < k && !bad; i++)
            bad = json_array_append_new(row, json_real(w[(size_t)r * (size_t)k + (size_t)i])) < 0;
        if (!bad)
            bad = json_array_append_new(mix, row) < 0;
        else
            json_decref(row);
    }
    if (!bad)
        bad = json_object_set_new(root, "domains", doms) < 0 ||
              json_object_set_new(root, "mixtures", mix) < 0;
    else {
        json_decref(doms);
        json_decref(mix);
    }
    if (!bad)
        bad = json_dumpf(root, f, JSON_COMPACT | JSON_REAL_PRECISION(17)) < 0;
    json_decref(root);
    if (!bad)
        fputc('\n', f);
    return bad || ferror(f) ? -EIO : 0;
}

int cmd_sample(int argc, char **argv)
{
    enum { OPT_VERSION = 256, OPT_JSON };
    static const struct option opts[] = {
            {"spec", required_argument, NULL, 's'},      {"runs", required_argument, NULL, 'n'},
            {"seed", required_argument, NULL, 'S'},      {"out", required_argument, NULL, 'o'},
            {"json", no_argument, NULL, OPT_JSON},       {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, OPT_VERSION}, {NULL, 0, NULL, 0},
    };
    const char *spec_path = NULL, *out_path = NULL;
    long runs = -1;
    int have_seed = 0, json = 0;
    uint64_t seed = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's':
            spec_path = optarg;
            break;
        case 'n':
            errno = 0;
            runs = strtol(optarg, &end, 10);
            if (end == optarg || *end || errno || runs < 1 || runs > SPEC_MAX_RUNS) {
                fprintf(stderr, "regmixctl sample: --runs must be an integer in 1..%d, got '%s'\n",
                        SPEC_MAX_RUNS, optarg);
                return 2;
            }
            break;
        case 'S':
            errno = 0;
            seed = strtoull(optarg, &end, 10);
            if (end == optarg || *end || errno || optarg[0] == '-') {
                fprintf(stderr,
                        "regmixctl sample: --seed must be an integer in 0..2^64-1, "
                        "got '%s'\n",
                        optarg);
                return 2;
            }
            have_seed = 1;
            break;
        case 'o':
            out_path = optarg;
            break;
        case OPT_JSON:
            json = 1;
            break;
        case 'h':
            sample_usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("regmixctl %s\n", REGMIX_VERSION);
            return 0;
        default:
            sample_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "regmixctl sample: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!spec_path) {
        fprintf(stderr, "regmixctl sample: --spec SWEEP.yaml is required (see --help)\n");
        return 2;
    }

    char err[1024];
    spec_t *spec = NULL;
    int rc = spec_parse_file(spec_path, &spec, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "regmixctl sample: %s\n", err);
        return rc == -ENOMEM ? 1 : 2;
    }
    sampler_params_t *params = malloc(sizeof *params);
    double *w = NULL;
    int status = 1;
    if (!params) {
        fprintf(stderr, "regmixctl sample: out of memory\n");
        goto out;
    }
    sampler_params_from_spec(spec, params);
    if (runs > 0)
        params->runs = (int)runs;
    if (have_seed)
        params->seed = seed;
    w = malloc((size_t)params->runs * (size_t)params->k * sizeof *w);
    if (!w) {
        fprintf(stderr, "regmixctl sample: out of memory for %d x %d weights\n", params->runs,
                params->k);
        goto out;
    }
    rc = sampler_sample(params, w, NULL, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "regmixctl sample: %s: %s\n", spec_path, err);
        status = rc == -ENOMEM ? 1 : 2;
        goto out;
    }

    FILE *f = stdout;
    char *tmp = NULL;
    if (out_path) {
        /* Write beside the target and rename, so a reader never sees half a file. */
        size_t n = strlen(out_path) + 32;
        tmp = malloc(n);
        if (!tmp) {
            fprintf(stderr, "regmixctl sample: out of memory\n");
            goto out;
        }
        snprintf(tmp, n, "%s.tmp.%ld", out_path, (long)getpid());
        f = fopen(tmp, "we");
        if (!f) {
            fprintf(stderr, "regmixctl sample: %s: %s\n", tmp, strerror(errno));
            free(tmp);
            goto out;
        }
    }
    rc = json ? write_json(f, spec, w, params->runs) : write_csv(f, spec, w, params->runs);
    if (out_path) {
        if (fclose(f) != 0 && rc == 0)
            rc = -errno;
        if (rc == 0 && rename(tmp, out_path) != 0)
            rc = -errno;
        if (rc < 0) {
            fprintf(stderr, "regmixctl sample: %s: %s\n", out_path, strerror(-rc));
            unlink(tmp);
        }
        free(tmp);
    } else if (fflush(stdout) != 0 && rc == 0) {
        rc = -EIO;
        fprintf(stderr, "regmixctl sample: writing stdout: %s\n", strerror(EIO));
    }
    status = rc < 0 ? 1 : 0;
out:
    free(w);
    free(params);
    spec_destroy(&spec);
    return status;
}
