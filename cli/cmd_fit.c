/*
 * regmixctl fit: the offline RegMix fit. Joins a mixtures CSV with a losses CSV, fits the
 * regression (gbdt, linear or ridge), scores it on a held-out test set or by k-fold
 * cross-validation, and simulates Dirichlet(prior) candidates to propose a mixture
 * (DESIGN.md §3.4-3.5). Output: a readable table, or one JSON object with --json; --out writes the
 * proposal as YAML a spec can use.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "commands.h"
#include "config.h"
#include "fitdata.h"
#include "metrics.h"
#include "regress.h"
#include "simulate.h"

static void fit_usage(FILE *f)
{
    fputs("usage: regmixctl fit --mixtures M.csv --losses L.csv --target COLUMN [options]\n"
          "\n"
          "Fit the RegMix regression from mixture weights to a validation loss, score it, and\n"
          "propose the mixture with the lowest predicted loss: draw N candidates from\n"
          "Dirichlet(prior) and average the weights of the top K.\n"
          "\n"
          "Input:\n"
          "  --mixtures M.csv       one row per run: the join column and one weight per domain\n"
          "                         (every other column is a domain; rows are renormalised)\n"
          "  --losses L.csv         one row per run: the join column and loss columns\n"
          "  --target SPEC          a loss column name, 'mean' (of all loss columns), or a\n"
          "                         weighted sum 'name=w,name=w'\n"
          "  --join COLUMN          the key column of both files (default: index)\n"
          "Model and scoring:\n"
          "  --model KIND           gbdt (default; XGBoost, 1000 trees, learning rate 0.01,\n"
          "                         31 leaves), linear, or ridge\n"
          "  --test-mixtures TM.csv, --test-losses TL.csv\n"
          "                         score on these held-out runs; without them, k-fold CV\n"
          "  --cv K                 folds of the cross-validation (default 5; 0: no scoring)\n"
          "Proposal:\n"
          "  --prior P.csv          Dirichlet concentration, CSV 'domain,weight' naming every\n"
          "                         domain (default: the mean of the training mixtures)\n"
          "  --simulate N           candidates to draw (default 1000000; 0: no proposal)\n"
          "  --top-k K              candidates averaged (default 100)\n"
          "  --seed S               seed of the candidates, the folds and XGBoost (default 42)\n"
          "  --threads T            threads (default: all cores)\n"
          "Output:\n"
          "  --json                 print one JSON object instead of the table\n"
          "  --out MIXTURE.yaml     write the proposal as YAML ('mixture: {domain: weight}')\n"
          "  -h, --help             show this help\n"
          "  --version              show the version\n"
          "\n"
          "Exit status: 0 success, 2 bad usage or input (one line on stderr naming file and\n"
          "line), 1 other failures.\n"
          "\n"
          "Example:\n"
          "  regmixctl fit --mixtures train_mixture_1m.csv --losses train_pile_loss_1m.csv \\\n"
          "      --target metric/the_pile_pile_cc_val_loss --test-mixtures test_mixture_1m.csv \\\n"
          "      --test-losses test_pile_loss_1m.csv --prior prior.csv --json\n",
          f);
}

typedef struct fit_opts {
    const char *mixtures, *losses, *target, *join, *test_mixtures, *test_losses, *prior, *out;
    regress_kind_t kind;
    int cv, top_k, threads, json;
    size_t simulate;
    uint64_t seed;
} fit_opts_t;

/* Parses a non-negative integer option value; returns 0 or -EINVAL. */
static int
fit_parse_count(const char *opt, const char *s, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *s == '-' || *end || errno || v > max) {
        fprintf(stderr, "regmixctl fit: %s: '%s' is not an integer in 0..%llu\n", opt, s, max);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int fit_parse_args(int argc, char **argv, fit_opts_t *o)
{
    enum {
        O_MIX = 256,
        O_LOSS,
        O_TARGET,
        O_JOIN,
        O_MODEL,
        O_TMIX,
        O_TLOSS,
        O_CV,
        O_PRIOR,
        O_SIM,
        O_TOPK,
        O_SEED,
        O_THREADS,
        O_JSON,
        O_OUT,
        O_VERSION
    };
    static const struct option longopts[] = {
            {"mixtures", required_argument, NULL, O_MIX},
            {"losses", required_argument, NULL, O_LOSS},
            {"target", required_argument, NULL, O_TARGET},
            {"join", required_argument, NULL, O_JOIN},
            {"model", required_argument, NULL, O_MODEL},
            {"test-mixtures", required_argument, NULL, O_TMIX},
            {"test-losses", required_argument, NULL, O_TLOSS},
            {"cv", required_argument, NULL, O_CV},
            {"prior", required_argument, NULL, O_PRIOR},
            {"simulate", required_argument, NULL, O_SIM},
            {"top-k", required_argument, NULL, O_TOPK},
            {"seed", required_argument, NULL, O_SEED},
            {"threads", required_argument, NULL, O_THREADS},
            {"json", no_argument, NULL, O_JSON},
            {"out", required_argument, NULL, O_OUT},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, O_VERSION},
            {NULL, 0, NULL, 0},
    };
    *o = (fit_opts_t){.join = "index",
                      .kind = REGRESS_GBDT,
                      .cv = 5,
                      .top_k = 100,
                      .simulate = 1000000,
                      .seed = 42};
    unsigned long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_MIX:
            o->mixtures = optarg;
            break;
        case O_LOSS:
            o->losses = optarg;
            break;
        case O_TARGET:
            o->target = optarg;
            break;
        case O_JOIN:
            o->join = optarg;
            break;
        case O_TMIX:
            o->test_mixtures = optarg;
            break;
        case O_TLOSS:
            o->test_losses = optarg;
            break;
        case O_PRIOR:
            o->prior = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_MODEL:
            if (regress_kind_parse(optarg, &o->kind) != 0) {
                fprintf(stderr, "regmixctl fit: --model: '%s' is not gbdt, linear or ridge\n",
                        optarg);
                return 2;
            }
            break;
        case O_CV:
            if (fit_parse_count("--cv", optarg, 1000, &v))
                return 2;
            o->cv = (int)v;
            break;
        case O_SIM:
            if (fit_parse_count("--simulate", optarg, 1000000000ULL, &v))
                return 2;
            o->simulate = (size_t)v;
            break;
        case O_TOPK:
            if (fit_parse_count("--top-k", optarg, 1000000, &v))
                return 2;
            if (v < 1) {
                fprintf(stderr, "regmixctl fit: --top-k must be at least 1\n");
                return 2;
            }
            o->top_k = (int)v;
            break;
        case O_SEED:
            if (fit_parse_count("--seed", optarg, UINT64_MAX, &v))
                return 2;
            o->seed = v;
            break;
        case O_THREADS:
            if (fit_parse_count("--threads", optarg, 1024, &v))
                return 2;
            o->threads = (int)v;
            break;
        case 'h':
            fit_usage(stdout);
            return 0;
        case O_VERSION:
            printf("regmixctl fit %s\n", REGMIX_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "regmixctl fit: %s needs a value (see --help)\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "regmixctl fit: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "regmixctl fit: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (!o->mixtures || !o->losses || !o->target) {
        fprintf(stderr, "regmixctl fit: --mixtures, --losses and --target are required (see "
                        "--help)\n");
        return 2;
    }
    if (!o->test_mixtures != !o->test_losses) {
        fprintf(stderr, "regmixctl fit: --test-mixtures and --test-losses go together\n");
        return 2;
    }
    if (o->simulate && (size_t)o->top_k > o->simulate) {
        fprintf(stderr, "regmixctl fit: --top-k %d exceeds --simulate %zu\n", o->top_k,
                o->simulate);
        return 2;
    }
    return -1;
}

/* A JSON number, or null where the value is not finite (a correlation of a constant). */
static json_t *fit_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *fit_metrics_json(const metrics_t *m)
{
    json_t *j = json_object();
    json_object_set_new(j, "runs", json_integer((json_int_t)m->n));
    if (m->folds)
        json_object_set_new(j, "folds", json_integer(m->folds));
    json_object_set_new(j, "spearman", fit_num(m->spearman));
    json_object_set_new(j, "pearson", fit_num(m->pearson));
    json_object_set_new(j, "mse", fit_num(m->mse));
    json_object_set_new(j, "r2", fit_num(m->r2));
    return j;
}

/* Index order of the proposal, heaviest first. */
static const double *fit_sort_w;
static int fit_by_weight(const void *pa, const void *pb)
{
    double a = fit_sort_w[*(const size_t *)pa], b = fit_sort_w[*(const size_t *)pb];
    if (a != b)
        return a < b ? 1 : -1;
    return (*(const size_t *)pa > *(const size_t *)pb) -
           (*(const size_t *)pa < *(const size_t *)pb);
}

static void fit_yaml_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\x%02x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static int fit_write_yaml(const char *path,
                          const fit_opts_t *o,
                          const fitdata_t *tr,
                          const double *w,
                          const simulate_result_t *sr)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "regmixctl fit: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "# Proposed mixture from `regmixctl fit` (RegMix, DESIGN.md 3.5)\n");
    fprintf(f, "# model %s, target %s, %zu training runs from %s\n", regress_kind_name(o->kind),
            tr->target, tr->n, o->mixtures);
    fprintf(f,
            "# mean of the top %d of %zu Dirichlet(%s) candidates, seed %llu;"
            " mean predicted %.6f\n",
            sr->top_k, sr->simulated, o->prior ? o->prior : "mean training mixture",
            (unsigned long long)o->seed, sr->predicted);
    fprintf(f, "mixture:\n");
    for (size_t j = 0; j < tr->d; j++) {
        fputs("  ", f);
        fit_yaml_string(f, tr->domains[j]);
        fprintf(f, ": %.9g\n", w[j]);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "regmixctl fit: %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

int cmd_fit(int argc, char **argv)
{
    fit_opts_t o;
    int rc = fit_parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    char err[1024] = "";
    fitdata_t *tr = NULL, *te = NULL;
    regress_t *model = NULL;
    double *alpha = NULL, *w = NULL, *pred = NULL;
    metrics_t score = {0};
    int scored = 0;
    simulate_result_t sr = {0};
    regress_params_t rp;
    regress_params_default(&rp);
    rp.seed = o.seed;
    rp.threads = o.threads;

    rc = fitdata_load(o.mixtures, o.losses, o.join, o.target, NULL, 0, &tr, err, sizeof err);
    if (rc == 0 && o.test_mixtures)
        rc = fitdata_load(o.test_mixtures, o.test_losses, o.join, o.target,
                          (const char *const *)tr->domains, tr->d, &te, err, sizeof err);
    if (rc == 0 && !(alpha = malloc(tr->d * sizeof *alpha)))
        rc = -ENOMEM;
    if (rc == 0 && o.prior) {
        rc = fitdata_load_prior(o.prior, (const char *const *)tr->domains, tr->d, alpha, err,
                                sizeof err);
    } else if (rc == 0) {
        for (size_t j = 0; j < tr->d; j++) {
            alpha[j] = 0;
            for (size_t i = 0; i < tr->n; i++)
                alpha[j] += tr->X[i * tr->d + j];
            alpha[j] /= (double)tr->n;
            if (!(alpha[j] > 0) && o.simulate) {
                snprintf(err, sizeof err, "%s: domain '%s' has weight 0 in every run: give --prior",
                         o.mixtures, tr->domains[j]);
                rc = -EINVAL;
                break;
            }
        }
    }
    if (rc != 0)
        goto fail;

    double t0 = clock_mono_s();
    rc = regress_fit(o.kind, &rp, tr->X, tr->y, tr->n, tr->d, &model, err, sizeof err);
    if (rc != 0)
        goto fail;
    double t_fit = clock_mono_s() - t0;

    if (te) {
        if (!(pred = malloc(te->n * sizeof *pred))) {
            rc = -ENOMEM;
            goto fail;
        }
        rc = regress_predict(model, te->X, te->n, pred);
        if (rc == 0)
            rc = metrics_compute(te->y, pred, te->n, &score);
        if (rc == -EINVAL)
            snprintf(err, sizeof err, "%s: need at least 2 test runs", o.test_mixtures);
        if (rc != 0)
            goto fail;
        scored = 1;
    } else if (o.cv > 0) {
        if (o.cv < 2 || (size_t)o.cv > tr->n) {
            snprintf(err, sizeof err, "%s: --cv %d needs 2..%zu folds", o.mixtures, o.cv, tr->n);
            rc = -EINVAL;
            goto fail;
        }
        rc = regress_cv(o.kind, &rp, tr->X, tr->y, tr->n, tr->d, o.cv, o.seed, &score, err,
                        sizeof err);
        if (rc != 0)
            goto fail;
        scored = 1;
    }

    double t_sim = 0;
    if (o.simulate) {
        if (!(w = malloc(tr->d * sizeof *w))) {
            rc = -ENOMEM;
            goto fail;
        }
        simulate_params_t sp;
        simulate_params_default(&sp);
        sp.candidates = o.simulate;
        sp.top_k = o.top_k;
        sp.seed = o.seed;
        sp.threads = o.threads;
        t0 = clock_mono_s();
        rc = simulate_run(model, alpha, tr->d, &sp, w, &sr, err, sizeof err);
        if (rc != 0)
            goto fail;
        t_sim = clock_mono_s() - t0;
    }

    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(regress_kind_name(o.kind)));
        json_object_set_new(j, "target", json_string(tr->target));
        json_object_set_new(j, "train_runs", json_integer((json_int_t)tr->n));
        if (scored)
            json_object_set_new(j, te ? "test" : "cv", fit_metrics_json(&score));
        if (o.simulate) {
            json_t *p = json_object(), *ws = json_object();
            json_object_set_new(p, "simulated", json_integer((json_int_t)sr.simulated));
            json_object_set_new(p, "top_k", json_integer(sr.top_k));
            json_object_set_new(p, "predicted", fit_num(sr.predicted));
            for (size_t k = 0; k < tr->d; k++)
                json_object_set_new(ws, tr->domains[k], json_real(w[k]));
            json_object_set_new(p, "weights", ws);
            json_object_set_new(j, "proposal", p);
        }
        json_t *s = json_object();
        json_object_set_new(s, "fit", json_real(t_fit));
        json_object_set_new(s, "simulate", json_real(t_sim));
        json_object_set_new(j, "seconds", s);
        char *text = json_dumps(j, JSON_REAL_PRECISION(10));
        json_decref(j);
        if (!text) {
            rc = -ENOMEM;
            goto fail;
        }
        puts(text);
        free(text);
    } else {
        printf("model      %s\n", regress_kind_name(o.kind));
        printf("target     %s\n", tr->target);
        printf("train      %zu runs (%s)\n", tr->n, o.mixtures);
        if (scored)
            printf("%-10s %zu runs%s: spearman %.4f  pearson %.4f  mse %.6g  r2 %.4f\n",
                   te ? "test" : "cv", score.n, te ? "" : " out of fold", score.spearman,
                   score.pearson, score.mse, score.r2);
        if (o.simulate) {
            printf("proposal   mean of the top %d of %zu candidates, predicted %.6f\n", sr.top_k,
                   sr.simulated, sr.predicted);
            size_t *ord = malloc(tr->d * sizeof *ord);
            if (!ord) {
                rc = -ENOMEM;
                goto fail;
            }
            for (size_t k = 0; k < tr->d; k++)
                ord[k] = k;
            fit_sort_w = w;
            qsort(ord, tr->d, sizeof *ord, fit_by_weight);
            for (size_t k = 0; k < tr->d; k++)
                printf("  %-40s %.6f\n", tr->domains[ord[k]], w[ord[k]]);
            free(ord);
        }
        printf("seconds    fit %.3f  simulate %.3f\n", t_fit, t_sim);
    }
    if (o.out && o.simulate)
        rc = fit_write_yaml(o.out, &o, tr, w, &sr) ? -EIO : 0;
    else if (o.out)
        fprintf(stderr, "regmixctl fit: --out ignored: no proposal with --simulate 0\n");
    if (rc == -EIO) {
        rc = 1;
        goto done;
    }
    rc = 0;
    goto done;
fail:
    if (rc == -ENOMEM)
        fprintf(stderr, "regmixctl fit: out of memory\n");
    else
        fprintf(stderr, "regmixctl fit: %s\n", err[0] ? err : strerror(-rc));
    /* bad input (files, columns, values) is exit 2; XGBoost or system failures are 1 */
    rc = rc == -EINVAL || rc == -ENOENT || rc == -EISDIR || rc == -EFBIG || rc == -EACCES ? 2 : 1;
done:
    fitdata_destroy(&tr);
    fitdata_destroy(&te);
    regress_destroy(&model);
    free(alpha);
    free(w);
    free(pred);
    return rc;
}
