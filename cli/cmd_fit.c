/*
 * regmixctl fit: the offline RegMix fit, through the same pipeline as the coordinator's refits
 * (common/fitpipe.h): every model of its table, k-fold cross-validation, the simulation and its
 * top-k. Input: a mixtures CSV joined with a losses CSV, or a sweep's `regmixctl results --csv`
 * with its spec (--results, --spec): with the sweep's settings it proposes exactly what the
 * coordinator's refit on the same results proposed. Scores on a held-out test set or by k-fold
 * cross-validation (docs/method.md). Output: a readable table, or one JSON object with --json;
 * --out writes the proposal as YAML a spec can use.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "fitdata.h"
#include "fitpipe.h"
#include "metrics.h"
#include "spec.h"

static void fit_usage(FILE *f)
{
    fputs("usage: regmixctl fit --mixtures M.csv --losses L.csv --target COLUMN [options]\n"
          "       regmixctl fit --results R.csv --spec SWEEP.yaml [options]\n"
          "\n"
          "Fit the RegMix regression from mixture weights to a validation loss, score it, and\n"
          "propose the mixture with the lowest predicted loss: draw N candidates from\n"
          "Dirichlet(prior) and average the weights of the top K. The same pipeline as the\n"
          "coordinator's refits: a sweep's results with its spec propose what the sweep's last\n"
          "fit on those results proposed.\n"
          "\n"
          "Input:\n"
          "  --mixtures M.csv       one row per run: the join column and one weight per domain\n"
          "                         (every other column is a domain; rows are renormalised)\n"
          "  --losses L.csv         one row per run: the join column and loss columns\n"
          "  --target SPEC          a loss column name, 'mean' (of all loss columns), or a\n"
          "                         weighted sum 'name=w,name=w' (default with --spec: its\n"
          "                         regression.target)\n"
          "  --join COLUMN          the key column of both files (default: index)\n"
          "  --results R.csv        a sweep's `regmixctl results SWEEP --csv` (needs --spec): the\n"
          "                         weights as stored, the domains' losses, rows the sweep's\n"
          "                         order; rows missing a loss the target needs are skipped\n"
          "  --spec SWEEP.yaml      take the sweep's settings: domains, prior, regression.model,\n"
          "                         target, cv_folds, seed, simulate, top_k (options given\n"
          "                         explicitly win)\n"
          "Model and scoring:\n"
          "  --model KIND           one of:\n",
          f);
    for (const fitpipe_model_t *m = fitpipe_models; m->name; m++)
        fprintf(f, "                           %-10s %s\n", m->name, m->about);
    fputs("                         (default gbdt; gbdt scales min_child_weight down below 320\n"
          "                         runs, min(20, runs/16), as the coordinator does)\n"
          "  --test-mixtures TM.csv, --test-losses TL.csv\n"
          "                         score on these held-out runs; without them, k-fold CV\n"
          "  --cv K                 folds of the cross-validation (default 5; 0: no scoring)\n"
          "Proposal:\n"
          "  --prior P.csv          Dirichlet concentration, CSV 'domain,weight' naming every\n"
          "                         domain (default: the spec's token prior, else the mean of\n"
          "                         the training mixtures)\n"
          "  --simulate N           candidates to draw (default 1000000; 0: no proposal)\n"
          "  --top-k K              candidates averaged (default 100)\n"
          "  --seed S               seed of the candidates, the folds and XGBoost (default 42;\n"
          "                         with --spec its regression.seed)\n"
          "  --threads T            threads (default: all cores; the result does not depend on "
          "it)\n"
          "Output:\n"
          "  --json                 print one JSON object instead of the table\n"
          "  --out MIXTURE.yaml     write the proposal as YAML ('mixture: {domain: weight}')\n"
          "  --report FIT.html      write the plots (predicted against actual on the test set\n"
          "                         or out of fold, proposal against prior, each domain's\n"
          "                         weight against the target) as one self-contained HTML file\n"
          "  -h, --help             show this help\n"
          "  --version              show the version\n"
          "\n"
          "Exit status: 0 success, 2 bad usage or input (one line on stderr naming file and\n"
          "line), 1 other failures.\n"
          "\n"
          "Examples:\n"
          "  regmixctl fit --mixtures train_mixture_1m.csv --losses train_pile_loss_1m.csv \\\n"
          "      --target metric/the_pile_pile_cc_val_loss --test-mixtures test_mixture_1m.csv \\\n"
          "      --test-losses test_pile_loss_1m.csv --prior prior.csv --json\n"
          "  regmixctl results 1a2b3c --csv > results.csv\n"
          "  regmixctl fit --results results.csv --spec sweep.yaml --json\n",
          f);
}

typedef struct fit_opts {
    const char *mixtures, *losses, *target, *join, *test_mixtures, *test_losses, *prior, *out;
    const char *results, *spec, *report;
    const fitpipe_model_t *model;
    int cv, top_k, threads, json;
    size_t simulate;
    uint64_t seed;
    /* which settings were given explicitly (they win over --spec) */
    int set_model, set_cv, set_top_k, set_simulate, set_seed;
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
        O_RESULTS,
        O_SPEC,
        O_REPORT,
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
            {"results", required_argument, NULL, O_RESULTS},
            {"spec", required_argument, NULL, O_SPEC},
            {"report", required_argument, NULL, O_REPORT},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, O_VERSION},
            {NULL, 0, NULL, 0},
    };
    *o = (fit_opts_t){.join = "index",
                      .model = &fitpipe_models[0],
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
        case O_RESULTS:
            o->results = optarg;
            break;
        case O_SPEC:
            o->spec = optarg;
            break;
        case O_REPORT:
            o->report = optarg;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_MODEL:
            if (!(o->model = fitpipe_model_find(optarg))) {
                fprintf(stderr, "regmixctl fit: --model: '%s' is not one of", optarg);
                for (const fitpipe_model_t *m = fitpipe_models; m->name; m++)
                    fprintf(stderr, " %s", m->name);
                fputc('\n', stderr);
                return 2;
            }
            o->set_model = 1;
            break;
        case O_CV:
            if (fit_parse_count("--cv", optarg, 1000, &v))
                return 2;
            o->cv = (int)v;
            o->set_cv = 1;
            break;
        case O_SIM:
            if (fit_parse_count("--simulate", optarg, 1000000000ULL, &v))
                return 2;
            o->simulate = (size_t)v;
            o->set_simulate = 1;
            break;
        case O_TOPK:
            if (fit_parse_count("--top-k", optarg, 1000000, &v))
                return 2;
            if (v < 1) {
                fprintf(stderr, "regmixctl fit: --top-k must be at least 1\n");
                return 2;
            }
            o->top_k = (int)v;
            o->set_top_k = 1;
            break;
        case O_SEED:
            if (fit_parse_count("--seed", optarg, UINT64_MAX, &v))
                return 2;
            o->seed = v;
            o->set_seed = 1;
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
    if (o->results && (o->mixtures || o->losses || o->test_mixtures)) {
        fprintf(stderr, "regmixctl fit: --results replaces --mixtures, --losses and the test "
                        "files\n");
        return 2;
    }
    if (o->results && !o->spec) {
        fprintf(stderr, "regmixctl fit: --results needs the sweep's --spec (its domains)\n");
        return 2;
    }
    if (!o->results && (!o->mixtures || !o->losses || (!o->target && !o->spec))) {
        fprintf(stderr, "regmixctl fit: --mixtures, --losses and --target (or --spec) are "
                        "required, or --results and --spec (see --help)\n");
        return 2;
    }
    if (!o->test_mixtures != !o->test_losses) {
        fprintf(stderr, "regmixctl fit: --test-mixtures and --test-losses go together\n");
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
                          const char *target,
                          const fitdata_t *tr,
                          const fitpipe_record_t *rec)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "regmixctl fit: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "# Proposed mixture from `regmixctl fit` (RegMix, docs/method.md)\n");
    fprintf(f, "# model %s, target %s, %zu training runs from %s\n", rec->model, target,
            rec->runs_used, o->results ? o->results : o->mixtures);
    fprintf(f,
            "# mean of the top %d of %zu Dirichlet(%s) candidates, seed %llu;"
            " mean predicted %.6f\n",
            rec->top_k, rec->simulated,
            o->prior  ? o->prior
            : o->spec ? "token prior"
                      : "mean training mixture",
            (unsigned long long)o->seed, rec->predicted_topk);
    fprintf(f, "mixture:\n");
    for (size_t j = 0; j < tr->d; j++) {
        fputs("  ", f);
        fit_yaml_string(f, tr->domains[j]);
        fprintf(f, ": %.9g\n", rec->proposal[j]);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "regmixctl fit: %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* Takes the sweep's settings from the spec where no option gave them. */
static void fit_apply_spec(fit_opts_t *o, const spec_t *spec, fitpipe_settings_t *st)
{
    fitpipe_settings_from_spec(spec, st);
    if (!o->set_model)
        o->model = st->model;
    if (!o->set_cv)
        o->cv = spec->regression.cv_folds;
    if (!o->set_seed)
        o->seed = spec->regression.seed;
    if (!o->set_simulate)
        o->simulate = (size_t)spec->regression.simulate;
    if (!o->set_top_k)
        o->top_k = spec->regression.top_k;
}

/* --report: the dashboard's page (docs/dashboard.md) for one offline fit: a sweep document with
 * one fit and its out-of-fold (pred NULL: rec's) or test-set (pred over te) predictions, and the
 * training runs as results whose one loss is the objective. Returns the exit status. */
static int fit_write_report(const fit_opts_t *o,
                            const char *target,
                            const fitdata_t *tr,
                            const fitdata_t *te,
                            const double *alpha,
                            const fitpipe_record_t *rec,
                            const metrics_t *score,
                            const double *pred)
{
    double asum = 0;
    for (size_t j = 0; j < tr->d; j++)
        asum += alpha[j];
    /* The objective of each run: the loaded target, or what the fit computed (--results). */
    double *y = malloc((tr->n ? tr->n : 1) * sizeof *y);
    if (!y)
        return 1;
    for (size_t i = 0; i < tr->n; i++)
        y[i] = tr->y ? tr->y[i] : NAN;
    for (size_t k = 0; rec->oof_rows && k < rec->runs_used; k++)
        if (rec->oof_rows[k] < tr->n)
            y[rec->oof_rows[k]] = rec->oof_actual[k];
    json_t *domains = json_array(), *rows = json_array();
    for (size_t j = 0; j < tr->d; j++)
        json_array_append_new(domains, json_pack("{s:s, s:n, s:o}", "name", tr->domains[j],
                                                 "tokens", "prior", fit_num(alpha[j] / asum)));
    for (size_t i = 0; i < tr->n; i++) {
        json_t *x = json_array();
        for (size_t j = 0; j < tr->d; j++)
            json_array_append_new(x, fit_num(tr->X[i * tr->d + j]));
        json_array_append_new(rows, json_pack("{s:I, s:i, s:s, s:o, s:{s:o}, s:n}", "idx",
                                              (json_int_t)i, "attempt", 1, "worker", "", "w", x,
                                              "loss", target, fit_num(y[i]), "seconds"));
    }
    free(y);
    json_t *fit = json_pack("{s:i, s:I, s:s, s:o, s:n, s:s}", "fit_no", 1, "runs_used",
                            (json_int_t)rec->runs_used, "model", rec->model, "predicted",
                            fit_num(rec->predicted), "l1_moved", "verdict", "");
    json_t *m = score ? fit_metrics_json(score) : json_object();
    const char *keys[] = {"spearman", "pearson", "r2", "mse"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        json_t *v = json_object_get(m, keys[k]);
        json_object_set(fit, keys[k], v ? v : json_null());
    }
    json_decref(m);
    if (rec->proposal) {
        json_t *p = json_array();
        for (size_t j = 0; j < tr->d; j++)
            json_array_append_new(p, fit_num(rec->proposal[j]));
        json_object_set_new(fit, "proposal", p);
    }
    json_object_set_new(fit, "predicted_interval",
                        isfinite(rec->predicted_lo) && isfinite(rec->predicted_hi)
                                ? json_pack("[f, f]", rec->predicted_lo, rec->predicted_hi)
                                : json_null());
    json_t *oof = json_null();
    if (score && (te ? pred != NULL : rec->oof_rows != NULL)) {
        json_t *r = json_array(), *a = json_array(), *p = json_array();
        size_t n = te ? te->n : rec->runs_used;
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(r, json_integer((json_int_t)(te ? i : rec->oof_rows[i])));
            json_array_append_new(a, fit_num(te ? te->y[i] : rec->oof_actual[i]));
            json_array_append_new(p, fit_num(te ? pred[i] : rec->oof_predicted[i]));
        }
        char label[96];
        if (te)
            snprintf(label, sizeof label, "test set, %zu runs", te->n);
        else
            snprintf(label, sizeof label, "out of fold, %d folds", score->folds);
        oof = json_pack("{s:i, s:s, s:o, s:o, s:o}", "fit_no", 1, "label", label, "runs", r,
                        "actual", a, "predicted", p);
    }
    const char *src = o->results ? o->results : o->mixtures;
    const char *name = strrchr(src, '/');
    json_t *doc = json_pack(
            "{s:s, s:{s:s, s:s, s:s, s:{s:I, s:I}, s:i, s:b, s:i, s:n, s:n}, s:o, s:s, s:n, "
            "s:[o], s:o, s:[]}",
            "kind", "fit", "sweep", "sweep_id", "offline fit", "name", name ? name + 1 : src,
            "state", te ? "scored on a test set" : "cross-validated", "runs", "done",
            (json_int_t)tr->n, "total", (json_int_t)tr->n, "fits", 1, "converged", 0,
            "converged_after_runs", 0, "rate_per_s", "eta_s", "domains", domains, "objective",
            target, "l1_tol", "fits", fit, "oof", oof, "targets");
    if (!doc) {
        fprintf(stderr, "regmixctl fit: out of memory\n");
        json_decref(rows);
        return 1;
    }
    char title[1100];
    snprintf(title, sizeof title, "regmix fit: %s", target);
    return cmd_report_write(o->report, title, doc, rows) ? 1 : 0;
}

int cmd_fit(int argc, char **argv)
{
    fit_opts_t o;
    int rc = fit_parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    char err[1024] = "", target[1024] = "";
    spec_t *spec = NULL;
    fitdata_t *tr = NULL, *te = NULL;
    fitpipe_fitted_t *fitted = NULL;
    fitpipe_record_t rec = {0};
    double *alpha = NULL, *pred = NULL;
    const char **dnames = NULL;
    metrics_t score = {0};
    int scored = 0;
    fitpipe_settings_t st;
    fitpipe_settings_default(&st);

    if (o.spec) {
        rc = spec_parse_file(o.spec, &spec, err, sizeof err);
        if (rc != 0)
            goto fail;
        fit_apply_spec(&o, spec, &st);
        if (!(dnames = calloc((size_t)spec->ndomains, sizeof *dnames))) {
            rc = -ENOMEM;
            goto fail;
        }
        for (int i = 0; i < spec->ndomains; i++)
            dnames[i] = spec->domains[i].name;
        if (o.target)
            snprintf(target, sizeof target, "%s", o.target);
        else if ((rc = fitpipe_target_text(spec, target, sizeof target)) != 0)
            goto fail;
    } else {
        snprintf(target, sizeof target, "%s", o.target);
    }
    if (o.simulate && (size_t)o.top_k > o.simulate) {
        fprintf(stderr, "regmixctl fit: --top-k %d exceeds --simulate %zu\n", o.top_k, o.simulate);
        rc = 2;
        goto done;
    }
    st.model = o.model;
    st.params.seed = o.seed;
    st.seed = o.seed;
    st.cv_folds = o.cv;
    st.candidates = o.simulate;
    st.top_k = o.top_k;
    st.threads = o.threads;

    const size_t nd = spec ? (size_t)spec->ndomains : 0;
    if (o.results)
        rc = fitdata_load_results(o.results, dnames, nd, dnames, (int)nd, &tr, err, sizeof err);
    else
        rc = fitdata_load(o.mixtures, o.losses, o.join, target, dnames, nd, &tr, err, sizeof err);
    if (rc == 0 && o.test_mixtures)
        rc = fitdata_load(o.test_mixtures, o.test_losses, o.join, target,
                          (const char *const *)tr->domains, tr->d, &te, err, sizeof err);
    if (rc == 0 && !(alpha = malloc(tr->d * sizeof *alpha)))
        rc = -ENOMEM;
    if (rc == 0 && o.prior) {
        rc = fitdata_load_prior(o.prior, (const char *const *)tr->domains, tr->d, alpha, err,
                                sizeof err);
    } else if (rc == 0 && spec) {
        for (size_t j = 0; j < tr->d; j++)
            alpha[j] = spec->domains[j].prior;
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
    if (te || (o.cv > 0 && (o.cv < 2 || (size_t)o.cv > tr->n))) {
        if (!te) {
            snprintf(err, sizeof err, "%s: --cv %d needs 2..%zu folds",
                     o.results ? o.results : o.mixtures, o.cv, tr->n);
            rc = -EINVAL;
            goto fail;
        }
        st.cv_folds = 0; /* a held-out test set scores instead */
    }

    fitpipe_input_t in = {
            .n = tr->n,
            .d = tr->d,
            .X = tr->X,
            .m = tr->m,
            .loss_names = dnames,
            .losses = tr->losses,
            .target = target,
            .y = tr->losses ? NULL : tr->y,
            .prior = alpha,
    };
    rc = fitpipe_run(&in, &st, &rec, te ? &fitted : NULL, err, sizeof err);
    if (rc != 0)
        goto fail;
    if (st.cv_folds >= 2) {
        score = rec.cv;
        scored = 1;
    }
    if (te) {
        if (!(pred = malloc(te->n * sizeof *pred))) {
            rc = -ENOMEM;
            goto fail;
        }
        rc = fitpipe_fitted_predict(fitted, te->X, te->n, pred);
        if (rc == 0)
            rc = metrics_compute(te->y, pred, te->n, &score);
        if (rc == -EINVAL)
            snprintf(err, sizeof err, "%s: need at least 2 test runs", o.test_mixtures);
        if (rc != 0)
            goto fail;
        scored = 1;
    }
    const double *w = rec.proposal;

    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(rec.model));
        json_object_set_new(j, "target", json_string(tr->target ? tr->target : target));
        json_object_set_new(j, "train_runs", json_integer((json_int_t)rec.runs_used));
        if (rec.runs_skipped)
            json_object_set_new(j, "skipped_runs", json_integer((json_int_t)rec.runs_skipped));
        if (scored)
            json_object_set_new(j, te ? "test" : "cv", fit_metrics_json(&score));
        if (w) {
            json_t *p = json_object(), *ws = json_object();
            json_object_set_new(p, "simulated", json_integer((json_int_t)rec.simulated));
            json_object_set_new(p, "top_k", json_integer(rec.top_k));
            json_object_set_new(p, "predicted", fit_num(rec.predicted_topk));
            json_object_set_new(p, "predicted_at_proposal", fit_num(rec.predicted));
            json_t *iv = json_array();
            json_array_append_new(iv, fit_num(rec.predicted_lo));
            json_array_append_new(iv, fit_num(rec.predicted_hi));
            json_object_set_new(p, "interval", iv);
            for (size_t k = 0; k < tr->d; k++)
                json_object_set_new(ws, tr->domains[k], json_real(w[k]));
            json_object_set_new(p, "weights", ws);
            json_object_set_new(j, "proposal", p);
        }
        json_t *s = json_object();
        json_object_set_new(s, "fit", json_real(rec.seconds_fit));
        json_object_set_new(s, "cv", json_real(rec.seconds_cv));
        json_object_set_new(s, "simulate", json_real(rec.seconds_simulate));
        json_object_set_new(j, "seconds", s);
        char *text = json_dumps(j, JSON_REAL_PRECISION(17));
        json_decref(j);
        if (!text) {
            rc = -ENOMEM;
            goto fail;
        }
        puts(text);
        free(text);
    } else {
        printf("model      %s\n", rec.model);
        printf("target     %s\n", tr->target ? tr->target : target);
        printf("train      %zu runs (%s)", rec.runs_used, o.results ? o.results : o.mixtures);
        if (rec.runs_skipped)
            printf(", %zu skipped (a loss missing)", rec.runs_skipped);
        putchar('\n');
        if (scored)
            printf("%-10s %zu runs%s: spearman %.4f  pearson %.4f  mse %.6g  r2 %.4f\n",
                   te ? "test" : "cv", score.n, te ? "" : " out of fold", score.spearman,
                   score.pearson, score.mse, score.r2);
        if (w) {
            printf("proposal   mean of the top %d of %zu candidates, predicted %.6f\n", rec.top_k,
                   rec.simulated, rec.predicted_topk);
            if (isfinite(rec.predicted_lo))
                printf("           at the proposal %.6f, 95%% interval of a run [%.6f, %.6f] "
                       "(out-of-fold RMSE)\n",
                       rec.predicted, rec.predicted_lo, rec.predicted_hi);
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
        printf("seconds    fit %.3f  cv %.3f  simulate %.3f\n", rec.seconds_fit, rec.seconds_cv,
               rec.seconds_simulate);
    }
    if (o.out && w)
        rc = fit_write_yaml(o.out, &o, tr->target ? tr->target : target, tr, &rec) ? -EIO : 0;
    else if (o.out)
        fprintf(stderr, "regmixctl fit: --out ignored: no proposal with --simulate 0\n");
    if (rc == -EIO) {
        rc = 1;
        goto done;
    }
    if (o.report) {
        rc = fit_write_report(&o, tr->target ? tr->target : target, tr, te, alpha, &rec,
                              scored ? &score : NULL, pred);
        if (rc == 0 && !o.json)
            printf("report     %s\n", o.report);
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
    fitpipe_record_clear(&rec);
    fitpipe_fitted_destroy(&fitted);
    fitdata_destroy(&tr);
    fitdata_destroy(&te);
    spec_destroy(&spec);
    free(dnames);
    free(alpha);
    free(pred);
    return rc;
}
