/*
 * fitpipe.c: the model table, one fit, the convergence verdict (see fitpipe.h).
 */
#include "fitpipe.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "active.h"
#include "clock.h"
#include "objective.h"
#include "simulate.h"

/* ---- the model table ------------------------------------------------------------------------- */

const fitpipe_model_t fitpipe_models[] = {
        {"gbdt", "gradient-boosted trees (XGBoost; 1000 trees, learning rate 0.01, 31 leaves)",
         REGRESS_GBDT, 0, NULL, NULL},
        {"linear", "least squares on the weights", REGRESS_LINEAR, 0, NULL, NULL},
        {"ridge", "ridge regression on the weights", REGRESS_RIDGE, 0, NULL, NULL},
        {"quadratic", "ridge on the products w_i w_j (a quadratic surface)", REGRESS_RIDGE,
         FITPIPE_QUADRATIC_MAX_D, fitpipe_quadratic_features, fitpipe_quadratic_expand},
        {"gp", "Gaussian process on sqrt(weights), ridge mean, Matern 5/2 (docs/search.md)",
         REGRESS_GP, 64, NULL, NULL},
        {"loglinear", "L = c + exp(sum t_j w_j), Levenberg-Marquardt (docs/search.md)",
         REGRESS_LOGLINEAR, 64, NULL, NULL},
        {NULL, NULL, REGRESS_LINEAR, 0, NULL, NULL},
};

/* The names above, in the same order (tests/unit/test_fitpipe.c checks that they agree). */
const char *const fitpipe_model_words[] = {"gbdt", "linear",    "ridge", "quadratic",
                                           "gp",   "loglinear", NULL};

const fitpipe_model_t *fitpipe_model_find(const char *name)
{
    for (const fitpipe_model_t *m = fitpipe_models; name && m->name; m++)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static size_t fitpipe__nfeatures(const fitpipe_model_t *m, size_t d)
{
    return m->nfeatures ? m->nfeatures(d) : d;
}

struct fitpipe_fitted {
    const fitpipe_model_t *model;
    size_t d;
    regress_t *reg; /* over fitpipe__nfeatures(model, d) features */
};

/* The features of X (n, d) for m: X itself (*ret_owned NULL) or a new array the caller frees. */
static int fitpipe__features(const fitpipe_model_t *m,
                             const double *X,
                             size_t n,
                             size_t d,
                             const double **ret,
                             double **ret_owned)
{
    *ret_owned = NULL;
    if (!m->featurize) {
        *ret = X;
        return 0;
    }
    double *F = malloc((n ? n : 1) * fitpipe__nfeatures(m, d) * sizeof *F);
    if (!F)
        return -ENOMEM;
    m->featurize(X, n, d, F);
    *ret = *ret_owned = F;
    return 0;
}

static int fitpipe__check_d(const fitpipe_model_t *m, size_t d, char *err, size_t errlen)
{
    if (m->max_d && d > m->max_d) {
        snprintf(err, errlen, "fitpipe: model %s takes at most %zu domains, got %zu", m->name,
                 m->max_d, d);
        return -EINVAL;
    }
    return 0;
}

int fitpipe_fit(const fitpipe_model_t *model,
                const regress_params_t *params,
                const double *X,
                const double *y,
                size_t n,
                size_t d,
                fitpipe_fitted_t **ret,
                char *err,
                size_t errlen)
{
    if (!model || !model->name || !X || !y || !ret) {
        snprintf(err, errlen, "fitpipe: bad arguments");
        return -EINVAL;
    }
    int rc = fitpipe__check_d(model, d, err, errlen);
    if (rc < 0)
        return rc;
    fitpipe_fitted_t *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->model = model;
    f->d = d;
    const double *feat;
    double *owned = NULL;
    rc = fitpipe__features(model, X, n, d, &feat, &owned);
    if (rc == 0)
        rc = regress_fit(model->kind, params, feat, y, n, fitpipe__nfeatures(model, d), &f->reg,
                         err, errlen);
    free(owned);
    if (rc < 0) {
        free(f);
        return rc;
    }
    *ret = f;
    return 0;
}

/* Rows per featurize call when predicting: bounds the scratch memory (2080 features at 64
 * domains: 17 MB). */
#define FITPIPE_PREDICT_CHUNK 1024

int fitpipe_fitted_predict(const fitpipe_fitted_t *f, const double *X, size_t n, double *out)
{
    if (!f->model->featurize)
        return regress_predict(f->reg, X, n, out);
    size_t q = fitpipe__nfeatures(f->model, f->d);
    size_t chunk = n < FITPIPE_PREDICT_CHUNK ? n : FITPIPE_PREDICT_CHUNK;
    double *F = malloc((chunk ? chunk : 1) * q * sizeof *F);
    if (!F)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += chunk) {
        size_t c = n - i < chunk ? n - i : chunk;
        f->model->featurize(X + i * f->d, c, f->d, F);
        rc = regress_predict(f->reg, F, c, out + i);
    }
    free(F);
    return rc;
}

void fitpipe_fitted_destroy(fitpipe_fitted_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    regress_destroy(&(*self_p)->reg);
    free(*self_p);
    *self_p = NULL;
}

/* simulate.h's predictor for a fitted model with a feature map. */
static int fitpipe__sim_predict(const void *ctx, const double *W, size_t n, size_t d, double *out)
{
    (void)d;
    return fitpipe_fitted_predict(ctx, W, n, out);
}

/* Simulates candidates for f and averages the top_k into proposal (d): simulate_run() on the
 * regression itself (pruned for gbdt) when the model has no feature map, else simulate_run_fn()
 * (the same candidates and the same top-k). */
static int fitpipe__simulate(const fitpipe_fitted_t *f,
                             const double *prior,
                             const fitpipe_settings_t *s,
                             double *proposal,
                             simulate_result_t *sr,
                             char *err,
                             size_t errlen)
{
    simulate_params_t sp;
    simulate_params_default(&sp);
    sp.candidates = s->candidates;
    sp.top_k = s->top_k;
    sp.seed = s->seed;
    sp.threads = s->threads;
    if (!f->model->featurize)
        return simulate_run(f->reg, prior, f->d, &sp, proposal, sr, err, errlen);
    return simulate_run_fn(fitpipe__sim_predict, f, prior, f->d, &sp, proposal, sr, err, errlen);
}

/* ---- settings -------------------------------------------------------------------------------- */

void fitpipe_settings_default(fitpipe_settings_t *ret)
{
    memset(ret, 0, sizeof *ret);
    ret->model = &fitpipe_models[0];
    regress_params_default(&ret->params);
    ret->params.seed = 0;
    ret->small_n_gbdt = 1;
    ret->cv_folds = 5;
    ret->seed = 0;
    ret->candidates = 1000000;
    ret->top_k = 100;
    ret->threads = 0;
    ret->convergence = (spec_convergence_t){.min_runs = 32,
                                            .min_spearman = 0.8,
                                            .stable_refits = 3,
                                            .l1_tol = 0.05,
                                            .gain_tol = SPEC_GAIN_TOL};
    ret->active = 0;
}

void fitpipe_settings_from_spec(const spec_t *spec, fitpipe_settings_t *ret)
{
    const spec_regression_t *r = &spec->regression;
    fitpipe_settings_default(ret);
    int nmodels = 0;
    while (fitpipe_models[nmodels].name)
        nmodels++;
    ret->model = &fitpipe_models[(int)r->model >= 0 && (int)r->model < nmodels ? (int)r->model : 0];
    ret->params.seed = r->seed;
    ret->cv_folds = r->cv_folds;
    ret->seed = r->seed;
    ret->candidates = r->simulate > 0 ? (size_t)r->simulate : 1;
    ret->top_k = r->top_k;
    ret->convergence = r->convergence;
    ret->active = spec->sampling.strategy == SPEC_STRATEGY_ACTIVE;
}

int fitpipe_target_text(const spec_t *spec, char *buf, size_t len)
{
    const spec_regression_t *r = &spec->regression;
    if (!buf || len == 0)
        return -EINVAL;
    if (r->target_kind == SPEC_TARGET_MEAN || r->ntargets == 0) {
        if (snprintf(buf, len, "mean") >= (int)len)
            return -ENOSPC;
        return 0;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->ntargets; i++) {
        int di = r->target_domains[i];
        if (di < 0 || di >= spec->ndomains)
            return -EINVAL;
        int w;
        if (r->target_kind == SPEC_TARGET_DOMAIN && r->ntargets == 1)
            w = snprintf(buf + used, len - used, "%s", spec->domains[di].name);
        else
            w = snprintf(buf + used, len - used, "%s%s=%.17g", i ? "," : "", spec->domains[di].name,
                         r->target_weights[i]);
        if (w < 0 || (size_t)w >= len - used)
            return -ENOSPC;
        used += (size_t)w;
    }
    return 0;
}

double fitpipe_min_child_weight(const fitpipe_settings_t *s, size_t n)
{
    double mcw = s->params.min_child_weight;
    if (!s->small_n_gbdt)
        return mcw;
    double cap = floor((double)n / 16.0);
    if (cap < 1)
        cap = 1;
    return mcw < cap ? mcw : cap;
}

double fitpipe_l1(const double *a, const double *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++)
        s += fabs(a[i] - b[i]);
    return s;
}

fitpipe_verdict_t fitpipe_judge(const spec_convergence_t *c,
                                size_t runs,
                                double spearman,
                                const double *proposal,
                                const double *history,
                                size_t nhistory,
                                size_t d,
                                double *ret_l1_window)
{
    double window = NAN;
    size_t need = c->stable_refits > 0 ? (size_t)c->stable_refits : 0;
    if (need > 0 && nhistory >= need && history) {
        window = 0;
        for (size_t j = nhistory - need; j < nhistory; j++) {
            double l1 = fitpipe_l1(proposal, history + j * d, d);
            if (l1 > window)
                window = l1;
        }
    } else if (need == 0) {
        window = 0;
    }
    if (ret_l1_window)
        *ret_l1_window = window;
    if (runs < (size_t)(c->min_runs > 0 ? c->min_runs : 0))
        return FITPIPE_TOO_FEW_RUNS;
    if (!(spearman >= c->min_spearman))
        return FITPIPE_LOW_SPEARMAN;
    if (!(window < c->l1_tol))
        return FITPIPE_MOVING;
    return FITPIPE_CONVERGED;
}

fitpipe_verdict_t
fitpipe_judge_gain(const spec_convergence_t *c, size_t runs, double spearman, double expected_gain)
{
    if (runs < (size_t)(c->min_runs > 0 ? c->min_runs : 0))
        return FITPIPE_TOO_FEW_RUNS;
    if (!(spearman >= c->min_spearman))
        return FITPIPE_LOW_SPEARMAN;
    if (!(expected_gain < c->gain_tol))
        return FITPIPE_EXPLORING;
    return FITPIPE_CONVERGED;
}

const char *fitpipe_verdict_name(fitpipe_verdict_t v)
{
    switch (v) {
    case FITPIPE_TOO_FEW_RUNS:
        return "too_few_runs";
    case FITPIPE_LOW_SPEARMAN:
        return "low_spearman";
    case FITPIPE_MOVING:
        return "moving";
    case FITPIPE_CONVERGED:
        return "converged";
    case FITPIPE_EXPLORING:
        return "exploring";
    }
    return "?";
}

int fitpipe_should_refit(int refit_every,
                         int cv_folds,
                         size_t results,
                         size_t results_at_last_fit,
                         size_t total_runs,
                         int in_flight)
{
    size_t least = cv_folds > 2 ? (size_t)cv_folds : 2;
    if (in_flight || results < least || results <= results_at_last_fit)
        return 0;
    size_t every = refit_every > 0 ? (size_t)refit_every : 1;
    if (results - results_at_last_fit >= every)
        return 1;
    return total_runs > 0 && results >= total_runs;
}

void fitpipe_record_clear(fitpipe_record_t *rec)
{
    if (!rec)
        return;
    free(rec->proposal);
    rec->proposal = NULL;
    free(rec->oof_rows);
    rec->oof_rows = NULL;
    free(rec->oof_actual);
    rec->oof_actual = NULL;
    free(rec->oof_predicted);
    rec->oof_predicted = NULL;
    free(rec->next);
    rec->next = NULL;
    rec->nnext = 0;
}

size_t fitpipe_quadratic_features(size_t d)
{
    return d * (d + 1) / 2;
}

void fitpipe_quadratic_expand(const double *X, size_t n, size_t d, double *out)
{
    size_t q = fitpipe_quadratic_features(d);
    for (size_t r = 0; r < n; r++) {
        const double *w = X + r * d;
        double *o = out + r * q;
        for (size_t i = 0; i < d; i++)
            for (size_t j = i; j < d; j++)
                *o++ = w[i] * w[j];
    }
}

int fitpipe_run(const fitpipe_input_t *in,
                const fitpipe_settings_t *s,
                fitpipe_record_t *ret,
                fitpipe_fitted_t **ret_fitted,
                char *err,
                size_t errlen)
{
    double t0 = clock_mono_s();
    if (!in || !s || !ret || !s->model || !s->model->name || in->d < 2 || !in->X || !in->prior ||
        (!in->y && (in->m < 1 || !in->losses || !in->loss_names || !in->target)) ||
        (in->nhistory && !in->history) || s->cv_folds < 0 || s->cv_folds == 1 ||
        (s->candidates && (s->top_k < 1 || s->candidates < (size_t)s->top_k))) {
        snprintf(err, errlen, "fitpipe: bad input or settings");
        return -EINVAL;
    }
    const size_t d = in->d;
    for (size_t j = 0; j < d && s->candidates; j++) {
        if (!(in->prior[j] > 0) || !isfinite(in->prior[j])) {
            snprintf(err, errlen, "fitpipe: prior[%zu] must be finite and > 0", j);
            return -EINVAL;
        }
    }
    int rc = fitpipe__check_d(s->model, d, err, errlen);
    if (rc < 0)
        return rc;
    objective_t *obj = NULL;
    if (!in->y) {
        rc = objective_parse(in->target, in->loss_names, in->m, &obj, err, errlen);
        if (rc < 0)
            return rc;
    }

    double *X = malloc((in->n ? in->n : 1) * d * sizeof *X);
    double *y = malloc((in->n ? in->n : 1) * sizeof *y);
    double *proposal = s->candidates ? calloc(d, sizeof *proposal) : NULL;
    size_t *rows = malloc((in->n ? in->n : 1) * sizeof *rows);
    double *oof = s->cv_folds >= 2 ? malloc((in->n ? in->n : 1) * sizeof *oof) : NULL;
    const double *feat = NULL;
    double *F = NULL, *next = NULL;
    char aerr[160] = "";
    fitpipe_fitted_t *fitted = NULL;
    if (!X || !y || !rows || (s->candidates && !proposal) || (s->cv_folds >= 2 && !oof)) {
        rc = -ENOMEM;
        goto out;
    }

    /* The usable rows: finite weights and finite values in every column the objective uses. */
    size_t used = 0;
    for (size_t i = 0; i < in->n; i++) {
        const double *w = in->X + i * d;
        int ok = 1;
        for (size_t j = 0; j < d && ok; j++)
            ok = isfinite(w[j]) && w[j] >= 0;
        double v = NAN;
        if (ok && in->y) {
            v = in->y[i];
        } else if (ok) {
            const double *l = in->losses + i * (size_t)in->m;
            for (int c = 0; c < in->m && ok; c++)
                ok = !objective_uses(obj, c) || isfinite(l[c]);
            if (ok)
                v = objective_eval(obj, l);
        }
        if (!ok || !isfinite(v))
            continue;
        memcpy(X + used * d, w, d * sizeof *w);
        rows[used] = i;
        y[used++] = v;
    }
    size_t least = s->cv_folds > 2 ? (size_t)s->cv_folds : 2;
    if (used < least) {
        snprintf(err, errlen, "fitpipe: %zu usable results, need at least %zu", used, least);
        rc = -EINVAL;
        goto out;
    }

    regress_params_t rp = s->params;
    rp.threads = s->threads;
    if (s->model->kind == REGRESS_GBDT)
        rp.min_child_weight = fitpipe_min_child_weight(s, used);
    metrics_t cv = {.n = used, .spearman = NAN, .pearson = NAN, .mse = NAN, .r2 = NAN};
    double t_cv = clock_mono_s();
    if (s->cv_folds >= 2) {
        /* CV on the features: the same folds and fits as fitpipe_fit() on each training part. */
        rc = fitpipe__features(s->model, X, used, d, &feat, &F);
        if (rc == 0)
            rc = regress_cv_predict(s->model->kind, &rp, feat, y, used,
                                    fitpipe__nfeatures(s->model, d), s->cv_folds, s->seed, &cv, oof,
                                    err, errlen);
        free(F);
        F = NULL;
        if (rc < 0)
            goto out;
    }
    double t_fit = clock_mono_s();
    /* An active sweep's proposal is active_step()'s: the spec model's fit on all rows is then
     * needed only by the caller (ret_fitted) or for the top-k when active_step() fails. */
    int want_active = s->active && s->candidates > 0;
    if (!want_active || ret_fitted) {
        rc = fitpipe_fit(s->model, &rp, X, y, used, d, &fitted, err, errlen);
        if (rc < 0)
            goto out;
    }

    double t_sim = clock_mono_s();
    double pred = NAN, half = NAN, lo = NAN, hi = NAN;
    simulate_result_t sr = {.predicted = NAN};
    active_proposal_t apr = {
            .sd = NAN, .noise_sd = NAN, .interval_scale = NAN, .expected_gain = NAN};
    int active_ok = 0, next_ok = 0;
    if (want_active || in->next_k > 0) {
        /* one GP for the proposal, its gain and the next round */
        active_params_t ap;
        active_params_default(&ap);
        ap.seed = s->seed;
        ap.upper = in->upper;
        ap.pending = in->npending ? in->pending : NULL;
        ap.npending = in->npending;
        if (in->next_k > 0 && !(next = malloc(in->next_k * d * sizeof *next))) {
            rc = -ENOMEM;
            goto out;
        }
        int ar = active_step(&ap, X, y, used, d, in->prior, want_active ? proposal : NULL,
                             want_active ? &apr : NULL, in->next_k, next, in->next_seed, aerr,
                             sizeof aerr);
        if (ar == -ENOMEM) {
            rc = ar;
            goto out;
        }
        active_ok = ar == 0 && want_active;
        next_ok = ar == 0 && in->next_k > 0;
    }
    if (active_ok) {
        pred = apr.predicted;
        lo = apr.lo;
        hi = apr.hi;
    } else if (s->candidates) {
        if (!fitted) {
            rc = fitpipe_fit(s->model, &rp, X, y, used, d, &fitted, err, errlen);
            if (rc < 0)
                goto out;
        }
        rc = fitpipe__simulate(fitted, in->prior, s, proposal, &sr, err, errlen);
        if (rc == 0)
            rc = fitpipe_fitted_predict(fitted, proposal, 1, &pred);
        if (rc < 0)
            goto out;
        /* The out-of-fold RMSE is the error of predicting a run the model has not seen; at the
         * proposal (an optimum of the model, often at the edge of the data) it is a lower
         * bound. */
        half = cv.folds > 0 && isfinite(cv.mse) ? 1.96 * sqrt(cv.mse) : NAN;
        lo = pred - half;
        hi = pred + half;
    }
    double t_end = clock_mono_s();

    memset(ret, 0, sizeof *ret);
    ret->runs_used = used;
    ret->runs_skipped = in->n - used;
    ret->d = d;
    snprintf(ret->model, sizeof ret->model, "%s", s->model->name);
    ret->min_child_weight = s->model->kind == REGRESS_GBDT ? rp.min_child_weight : 0;
    ret->cv = cv;
    ret->predicted = pred;
    ret->predicted_topk = sr.predicted;
    ret->predicted_lo = lo;
    ret->predicted_hi = hi;
    ret->predicted_sd = active_ok ? apr.sd : NAN;
    ret->noise_sd = active_ok ? apr.noise_sd : NAN;
    ret->interval_scale = active_ok ? apr.interval_scale : NAN;
    ret->expected_gain = active_ok ? apr.expected_gain : NAN;
    snprintf(ret->proposal_from, sizeof ret->proposal_from, "%s", active_ok ? "active" : "topk");
    if (want_active && !active_ok)
        snprintf(ret->propose_err, sizeof ret->propose_err, "%s", aerr);
    if (next_ok) {
        ret->next = next;
        ret->nnext = in->next_k;
        next = NULL;
    } else if (in->next_k > 0) {
        snprintf(ret->next_err, sizeof ret->next_err, "%s", aerr);
    }
    ret->simulated = s->candidates && !active_ok ? sr.simulated : 0;
    ret->top_k = s->candidates && !active_ok ? sr.top_k : 0;
    ret->l1_moved = in->nhistory && proposal
                            ? fitpipe_l1(proposal, in->history + (in->nhistory - 1) * d, d)
                            : NAN;
    ret->l1_window = NAN;
    ret->verdict = proposal ? fitpipe_judge(&s->convergence, used, cv.spearman, proposal,
                                            in->history, in->nhistory, d, &ret->l1_window)
                            : FITPIPE_TOO_FEW_RUNS;
    if (proposal && s->active)
        ret->verdict = fitpipe_judge_gain(&s->convergence, used, cv.spearman, ret->expected_gain);
    ret->proposal = proposal;
    proposal = NULL;
    if (oof) {
        ret->oof_rows = rows;
        ret->oof_actual = y;
        ret->oof_predicted = oof;
        rows = NULL;
        y = NULL;
        oof = NULL;
    }
    ret->seconds_cv = t_fit - t_cv;
    ret->seconds_fit = t_sim - t_fit;
    ret->seconds_simulate = t_end - t_sim;
    ret->seconds = clock_mono_s() - t0;
    if (ret_fitted) {
        *ret_fitted = fitted;
        fitted = NULL;
    }
out:
    fitpipe_fitted_destroy(&fitted);
    objective_destroy(&obj);
    free(next);
    free(proposal);
    free(X);
    free(F);
    free(y);
    free(rows);
    free(oof);
    return rc;
}

/* A JSON number, or null where the value is not finite (JSON has no NaN). */
static json_t *fitpipe__num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

char *fitpipe_record_metrics_json(const fitpipe_record_t *rec)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "n", json_integer((json_int_t)rec->cv.n));
    json_object_set_new(o, "folds", json_integer(rec->cv.folds));
    json_object_set_new(o, "spearman", fitpipe__num(rec->cv.spearman));
    json_object_set_new(o, "pearson", fitpipe__num(rec->cv.pearson));
    json_object_set_new(o, "mse", fitpipe__num(rec->cv.mse));
    json_object_set_new(o, "r2", fitpipe__num(rec->cv.r2));
    json_object_set_new(o, "runs_skipped", json_integer((json_int_t)rec->runs_skipped));
    json_object_set_new(o, "predicted_topk", fitpipe__num(rec->predicted_topk));
    json_object_set_new(o, "predicted", fitpipe__num(rec->predicted));
    json_t *iv = json_array();
    json_array_append_new(iv, fitpipe__num(rec->predicted_lo));
    json_array_append_new(iv, fitpipe__num(rec->predicted_hi));
    json_object_set_new(o, "predicted_interval", iv);
    json_object_set_new(o, "predicted_sd", fitpipe__num(rec->predicted_sd));
    json_object_set_new(o, "noise_sd", fitpipe__num(rec->noise_sd));
    json_object_set_new(o, "interval_scale", fitpipe__num(rec->interval_scale));
    json_object_set_new(o, "expected_gain", fitpipe__num(rec->expected_gain));
    json_object_set_new(o, "proposal_from",
                        json_string(rec->proposal_from[0] ? rec->proposal_from : "topk"));
    json_object_set_new(o, "l1_window", fitpipe__num(rec->l1_window));
    if (rec->min_child_weight > 0)
        json_object_set_new(o, "min_child_weight", json_real(rec->min_child_weight));
    json_object_set_new(o, "verdict", json_string(fitpipe_verdict_name(rec->verdict)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    return s;
}

char *fitpipe_record_proposal_json(const fitpipe_record_t *rec, const char *const *names)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t j = 0; j < rec->d && rec->proposal; j++)
        json_object_set_new(o, names[j], json_real(rec->proposal[j]));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    return s;
}

/* ---- thread-pool glue ------------------------------------------------------------------------ */

struct fitpipe_job {
    uv_work_t req;
    fitpipe_settings_t settings;
    fitpipe_input_t in; /* arrays below are owned copies */
    double *X, *losses, *prior, *history, *upper, *pending;
    char **names;
    char *target;
    fitpipe_done_cb cb;
    void *data;
    int status;
    fitpipe_record_t rec;
    char err[512];
};

static void fitpipe__job_free(fitpipe_job_t *j)
{
    if (!j)
        return;
    fitpipe_record_clear(&j->rec);
    for (int c = 0; j->names && c < j->in.m; c++)
        free(j->names[c]);
    free(j->names);
    free(j->X);
    free(j->losses);
    free(j->prior);
    free(j->history);
    free(j->upper);
    free(j->pending);
    free(j->target);
    free(j);
}

static void fitpipe__work(uv_work_t *req)
{
    fitpipe_job_t *j = req->data;
    j->status = fitpipe_run(&j->in, &j->settings, &j->rec, NULL, j->err, sizeof j->err);
}

static void fitpipe__after(uv_work_t *req, int status)
{
    fitpipe_job_t *j = req->data;
    if (status == UV_ECANCELED) {
        j->status = -ECANCELED;
        snprintf(j->err, sizeof j->err, "fitpipe: cancelled");
    }
    j->cb(j, j->status, j->status == 0 ? &j->rec : NULL, j->status == 0 ? NULL : j->err, j->data);
    fitpipe__job_free(j);
}

static void *fitpipe__dup(const void *p, size_t bytes)
{
    void *q = malloc(bytes ? bytes : 1);
    if (q && bytes)
        memcpy(q, p, bytes);
    return q;
}

int fitpipe_queue(uv_loop_t *loop,
                  const fitpipe_input_t *in,
                  const fitpipe_settings_t *s,
                  fitpipe_done_cb done_cb,
                  void *data,
                  fitpipe_job_t **ret)
{
    if (!loop || !in || !s || !done_cb || in->d < 1 || in->m < 1 || !in->loss_names ||
        !in->target || !in->prior || (in->n && (!in->X || !in->losses)) ||
        (in->nhistory && !in->history) || (in->npending && !in->pending))
        return -EINVAL;
    fitpipe_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    size_t d = in->d, m = (size_t)in->m;
    j->settings = *s;
    j->in = *in;
    j->cb = done_cb;
    j->data = data;
    j->X = fitpipe__dup(in->X, in->n * d * sizeof(double));
    j->losses = fitpipe__dup(in->losses, in->n * m * sizeof(double));
    j->prior = fitpipe__dup(in->prior, d * sizeof(double));
    j->history = fitpipe__dup(in->history, in->nhistory * d * sizeof(double));
    j->upper = in->upper ? fitpipe__dup(in->upper, d * sizeof(double)) : NULL;
    j->pending = in->npending ? fitpipe__dup(in->pending, in->npending * d * sizeof(double)) : NULL;
    j->target = strdup(in->target);
    j->names = calloc(m, sizeof *j->names);
    int ok = j->X && j->losses && j->prior && j->history && j->target && j->names &&
             (!in->upper || j->upper) && (!in->npending || j->pending);
    for (size_t c = 0; ok && c < m; c++)
        ok = (j->names[c] = strdup(in->loss_names[c])) != NULL;
    if (!ok) {
        fitpipe__job_free(j);
        return -ENOMEM;
    }
    j->in.X = j->X;
    j->in.y = NULL; /* the queue takes the losses form only (see fitpipe_queue()) */
    j->in.losses = j->losses;
    j->in.prior = j->prior;
    j->in.history = in->nhistory ? j->history : NULL;
    j->in.upper = j->upper;
    j->in.pending = j->pending;
    j->in.target = j->target;
    j->in.loss_names = (const char *const *)j->names;
    j->req.data = j;
    int rc = uv_queue_work(loop, &j->req, fitpipe__work, fitpipe__after);
    if (rc < 0) {
        fitpipe__job_free(j);
        return rc;
    }
    if (ret)
        *ret = j;
    return 0;
}

int fitpipe_cancel(fitpipe_job_t *job)
{
    if (!job)
        return -EINVAL;
    return uv_cancel((uv_req_t *)&job->req) == 0 ? 0 : -EBUSY;
}
