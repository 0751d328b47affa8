/*
 * fitter.c: one refit and the convergence verdict (see fitter.h).
 */
#include "fitter.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "objective.h"
#include "rng.h"
#include "simulate.h"

void fitter_settings_from_spec(const spec_t *spec, fitter_settings_t *ret)
{
    const spec_regression_t *r = &spec->regression;
    memset(ret, 0, sizeof *ret);
    switch (r->model) {
    case SPEC_REGMODEL_LINEAR:
        ret->kind = REGRESS_LINEAR;
        break;
    case SPEC_REGMODEL_RIDGE:
        ret->kind = REGRESS_RIDGE;
        break;
    case SPEC_REGMODEL_QUADRATIC:
        ret->kind = REGRESS_RIDGE;
        ret->quadratic = 1;
        break;
    default:
        ret->kind = REGRESS_GBDT;
        break;
    }
    regress_params_default(&ret->params);
    ret->params.seed = r->seed;
    ret->small_n_gbdt = 1;
    ret->cv_folds = r->cv_folds;
    ret->seed = r->seed;
    ret->candidates = r->simulate > 0 ? (size_t)r->simulate : 1;
    ret->top_k = r->top_k;
    ret->threads = 0;
    ret->convergence = r->convergence;
}

int fitter_target_text(const spec_t *spec, char *buf, size_t len)
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

double fitter_min_child_weight(const fitter_settings_t *s, size_t n)
{
    double mcw = s->params.min_child_weight;
    if (!s->small_n_gbdt)
        return mcw;
    double cap = floor((double)n / 16.0);
    if (cap < 1)
        cap = 1;
    return mcw < cap ? mcw : cap;
}

double fitter_l1(const double *a, const double *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++)
        s += fabs(a[i] - b[i]);
    return s;
}

fitter_verdict_t fitter_judge(const spec_convergence_t *c,
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
            double l1 = fitter_l1(proposal, history + j * d, d);
            if (l1 > window)
                window = l1;
        }
    } else if (need == 0) {
        window = 0;
    }
    if (ret_l1_window)
        *ret_l1_window = window;
    if (runs < (size_t)(c->min_runs > 0 ? c->min_runs : 0))
        return FITTER_TOO_FEW_RUNS;
    if (!(spearman >= c->min_spearman))
        return FITTER_LOW_SPEARMAN;
    if (!(window < c->l1_tol))
        return FITTER_MOVING;
    return FITTER_CONVERGED;
}

const char *fitter_verdict_name(fitter_verdict_t v)
{
    switch (v) {
    case FITTER_TOO_FEW_RUNS:
        return "too_few_runs";
    case FITTER_LOW_SPEARMAN:
        return "low_spearman";
    case FITTER_MOVING:
        return "moving";
    case FITTER_CONVERGED:
        return "converged";
    }
    return "?";
}

int fitter_should_refit(int refit_every,
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

void fitter_record_clear(fitter_record_t *rec)
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
}

size_t fitter_quadratic_features(size_t d)
{
    return d * (d + 1) / 2;
}

void fitter_quadratic_expand(const double *X, size_t n, size_t d, double *out)
{
    size_t q = fitter_quadratic_features(d);
    for (size_t r = 0; r < n; r++) {
        const double *w = X + r * d;
        double *o = out + r * q;
        for (size_t i = 0; i < d; i++)
            for (size_t j = i; j < d; j++)
                *o++ = w[i] * w[j];
    }
}

/* A candidate in the top_k max-heap, ordered by (prediction, index) as simulate.h does. */
typedef struct fitter__cand {
    double pred;
    size_t idx; /* candidate number */
    size_t row; /* its weights: keep[row * d] */
} fitter__cand_t;

static int fitter__worse(const fitter__cand_t *a, const fitter__cand_t *b)
{
    return a->pred > b->pred || (a->pred == b->pred && a->idx > b->idx);
}

static void fitter__sift_down(fitter__cand_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && fitter__worse(&h[l], &h[m]))
            m = l;
        if (r < n && fitter__worse(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        fitter__cand_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void fitter__sift_up(fitter__cand_t *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!fitter__worse(&h[i], &h[p]))
            return;
        fitter__cand_t t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static int fitter__by_idx(const void *a, const void *b)
{
    size_t x = ((const fitter__cand_t *)a)->idx, y = ((const fitter__cand_t *)b)->idx;
    return x < y ? -1 : x > y;
}

#define FITTER_BLOCK 4096

/* The simulation of simulate.h for a model fitted on quadratic features: candidates drawn from
 * Dirichlet(alpha) in blocks (block b from stream rng_split(rng_seed(seed), b)), expanded,
 * predicted, and the weights of the top_k averaged into ret_weights (d). */
static int fitter__simulate_quadratic(const regress_t *model,
                                      const double *alpha,
                                      size_t d,
                                      size_t candidates,
                                      int top_k,
                                      uint64_t seed,
                                      double *ret_weights,
                                      double *ret_predicted)
{
    size_t q = fitter_quadratic_features(d), k = (size_t)top_k;
    double *W = malloc(FITTER_BLOCK * d * sizeof *W);
    double *F = malloc(FITTER_BLOCK * q * sizeof *F);
    double *P = malloc(FITTER_BLOCK * sizeof *P);
    fitter__cand_t *heap = malloc(k * sizeof *heap);
    double *keep = malloc(k * d * sizeof *keep); /* (k, d) weights of the kept candidates */
    int rc = 0;
    if (!W || !F || !P || !heap || !keep) {
        rc = -ENOMEM;
        goto out;
    }
    rng_t root;
    rng_seed(&root, seed);
    size_t nheap = 0;
    for (size_t b = 0; b * FITTER_BLOCK < candidates; b++) {
        size_t first = b * FITTER_BLOCK;
        size_t cnt = candidates - first < FITTER_BLOCK ? candidates - first : FITTER_BLOCK;
        rng_t r;
        rng_split(&root, b, &r);
        for (size_t c = 0; c < cnt; c++)
            rng_dirichlet(&r, alpha, (int)d, W + c * d);
        fitter_quadratic_expand(W, cnt, d, F);
        rc = regress_predict(model, F, cnt, P);
        if (rc < 0)
            goto out;
        for (size_t c = 0; c < cnt; c++) {
            fitter__cand_t x = {isfinite(P[c]) ? P[c] : INFINITY, first + c, nheap};
            if (nheap < k) {
                memcpy(keep + x.row * d, W + c * d, d * sizeof *W);
                heap[nheap] = x;
                fitter__sift_up(heap, nheap++);
            } else if (fitter__worse(&heap[0], &x)) {
                x.row = heap[0].row;
                memcpy(keep + x.row * d, W + c * d, d * sizeof *W);
                heap[0] = x;
                fitter__sift_down(heap, k, 0);
            }
        }
    }
    /* Average in candidate order so the sum does not depend on the heap's layout. */
    qsort(heap, nheap, sizeof *heap, fitter__by_idx);
    double psum = 0;
    memset(ret_weights, 0, d * sizeof *ret_weights);
    for (size_t i = 0; i < nheap; i++) {
        for (size_t j = 0; j < d; j++)
            ret_weights[j] += keep[heap[i].row * d + j];
        psum += heap[i].pred;
    }
    for (size_t j = 0; j < d; j++)
        ret_weights[j] /= (double)nheap;
    *ret_predicted = psum / (double)nheap;
out:
    free(W);
    free(F);
    free(P);
    free(heap);
    free(keep);
    return rc;
}

static double fitter__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int fitter_run(const fitter_input_t *in,
               const fitter_settings_t *s,
               fitter_record_t *ret,
               char *err,
               size_t errlen)
{
    double t0 = fitter__now();
    if (!in || !s || !ret || in->d < 2 || in->m < 1 || !in->X || !in->losses || !in->loss_names ||
        !in->target || !in->prior || (in->nhistory && !in->history) || s->cv_folds < 2 ||
        s->top_k < 1 || s->candidates < (size_t)s->top_k) {
        snprintf(err, errlen, "fitter: bad input or settings");
        return -EINVAL;
    }
    const size_t d = in->d;
    for (size_t j = 0; j < d; j++) {
        if (!(in->prior[j] > 0) || !isfinite(in->prior[j])) {
            snprintf(err, errlen, "fitter: prior[%zu] must be finite and > 0", j);
            return -EINVAL;
        }
    }
    objective_t *obj = NULL;
    int rc = objective_parse(in->target, in->loss_names, in->m, &obj, err, errlen);
    if (rc < 0)
        return rc;

    double *X = malloc((in->n ? in->n : 1) * d * sizeof *X), *F = NULL;
    double *y = malloc((in->n ? in->n : 1) * sizeof *y);
    double *proposal = calloc(d, sizeof *proposal);
    size_t *rows = malloc((in->n ? in->n : 1) * sizeof *rows);
    double *oof = malloc((in->n ? in->n : 1) * sizeof *oof);
    regress_t *model = NULL;
    if (!X || !y || !proposal || !rows || !oof) {
        rc = -ENOMEM;
        goto out;
    }

    /* The usable rows: finite weights and finite values in every column the objective uses. */
    size_t used = 0;
    for (size_t i = 0; i < in->n; i++) {
        const double *w = in->X + i * d, *l = in->losses + i * (size_t)in->m;
        int ok = 1;
        for (size_t j = 0; j < d && ok; j++)
            ok = isfinite(w[j]) && w[j] >= 0;
        for (int c = 0; c < in->m && ok; c++)
            ok = !objective_uses(obj, c) || isfinite(l[c]);
        if (!ok)
            continue;
        double v = objective_eval(obj, l);
        if (!isfinite(v))
            continue;
        memcpy(X + used * d, w, d * sizeof *w);
        rows[used] = i;
        y[used++] = v;
    }
    size_t least = s->cv_folds > 2 ? (size_t)s->cv_folds : 2;
    if (used < least) {
        snprintf(err, errlen, "fitter: %zu usable results, need at least %zu", used, least);
        rc = -EINVAL;
        goto out;
    }

    regress_params_t rp = s->params;
    rp.threads = s->threads;
    if (s->kind == REGRESS_GBDT)
        rp.min_child_weight = fitter_min_child_weight(s, used);
    /* Quadratic: the model sees the d(d+1)/2 products w_i w_j (the w_i and the constant are
     * spanned by them on the simplex), so a linear fit is a full quadratic surface. */
    int quad = s->quadratic && s->kind != REGRESS_GBDT;
    size_t nf = quad ? fitter_quadratic_features(d) : d;
    if (quad) {
        if (d > FITTER_QUADRATIC_MAX_D) {
            snprintf(err, errlen, "fitter: quadratic features need at most %d domains, got %zu",
                     FITTER_QUADRATIC_MAX_D, d);
            rc = -EINVAL;
            goto out;
        }
        if (!(F = malloc(used * nf * sizeof *F))) {
            rc = -ENOMEM;
            goto out;
        }
        fitter_quadratic_expand(X, used, d, F);
    }
    const double *feat = quad ? F : X;
    metrics_t cv;
    rc = regress_cv_predict(s->kind, &rp, feat, y, used, nf, s->cv_folds, s->seed, &cv, oof, err,
                            errlen);
    if (rc < 0)
        goto out;
    rc = regress_fit(s->kind, &rp, feat, y, used, nf, &model, err, errlen);
    if (rc < 0)
        goto out;

    double pred = NAN, pred_topk = NAN;
    if (quad) {
        rc = fitter__simulate_quadratic(model, in->prior, d, s->candidates, s->top_k, s->seed,
                                        proposal, &pred_topk);
        if (rc < 0)
            goto out;
        double pf[FITTER_QUADRATIC_MAX_D * (FITTER_QUADRATIC_MAX_D + 1) / 2];
        fitter_quadratic_expand(proposal, 1, d, pf);
        rc = regress_predict(model, pf, 1, &pred);
    } else {
        simulate_params_t sp;
        simulate_params_default(&sp);
        sp.candidates = s->candidates;
        sp.top_k = s->top_k;
        sp.seed = s->seed;
        sp.threads = s->threads;
        simulate_result_t sr;
        rc = simulate_run(model, in->prior, d, &sp, proposal, &sr, err, errlen);
        if (rc < 0)
            goto out;
        pred_topk = sr.predicted;
        rc = regress_predict(model, proposal, 1, &pred);
    }
    if (rc < 0)
        goto out;

    memset(ret, 0, sizeof *ret);
    ret->runs_used = used;
    ret->runs_skipped = in->n - used;
    ret->d = d;
    snprintf(ret->model, sizeof ret->model, "%s%s", quad ? "quadratic_" : "",
             regress_kind_name(s->kind));
    ret->min_child_weight = s->kind == REGRESS_GBDT ? rp.min_child_weight : 0;
    ret->cv = cv;
    ret->predicted = pred;
    ret->predicted_topk = pred_topk;
    ret->l1_moved =
            in->nhistory ? fitter_l1(proposal, in->history + (in->nhistory - 1) * d, d) : NAN;
    ret->verdict = fitter_judge(&s->convergence, used, cv.spearman, proposal, in->history,
                                in->nhistory, d, &ret->l1_window);
    ret->proposal = proposal;
    proposal = NULL;
    ret->oof_rows = rows;
    ret->oof_actual = y;
    ret->oof_predicted = oof;
    rows = NULL;
    y = NULL;
    oof = NULL;
    ret->seconds = fitter__now() - t0;
out:
    regress_destroy(&model);
    objective_destroy(&obj);
    free(proposal);
    free(X);
    free(F);
    free(y);
    free(rows);
    free(oof);
    return rc;
}

/* A JSON number, or null where the value is not finite (JSON has no NaN). */
static json_t *fitter__num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

char *fitter_record_metrics_json(const fitter_record_t *rec)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "n", json_integer((json_int_t)rec->cv.n));
    json_object_set_new(o, "folds", json_integer(rec->cv.folds));
    json_object_set_new(o, "spearman", fitter__num(rec->cv.spearman));
    json_object_set_new(o, "pearson", fitter__num(rec->cv.pearson));
    json_object_set_new(o, "mse", fitter__num(rec->cv.mse));
    json_object_set_new(o, "r2", fitter__num(rec->cv.r2));
    json_object_set_new(o, "runs_skipped", json_integer((json_int_t)rec->runs_skipped));
    json_object_set_new(o, "predicted_topk", fitter__num(rec->predicted_topk));
    json_object_set_new(o, "l1_window", fitter__num(rec->l1_window));
    if (rec->min_child_weight > 0)
        json_object_set_new(o, "min_child_weight", json_real(rec->min_child_weight));
    json_object_set_new(o, "verdict", json_string(fitter_verdict_name(rec->verdict)));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    return s;
}

char *fitter_record_proposal_json(const fitter_record_t *rec, const char *const *names)
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

struct fitter_job {
    uv_work_t req;
    fitter_settings_t settings;
    fitter_input_t in; /* arrays below are owned copies */
    double *X, *losses, *prior, *history;
    char **names;
    char *target;
    fitter_done_cb cb;
    void *data;
    int status;
    fitter_record_t rec;
    char err[512];
};

static void fitter__job_free(fitter_job_t *j)
{
    if (!j)
        return;
    fitter_record_clear(&j->rec);
    for (int c = 0; j->names && c < j->in.m; c++)
        free(j->names[c]);
    free(j->names);
    free(j->X);
    free(j->losses);
    free(j->prior);
    free(j->history);
    free(j->target);
    free(j);
}

static void fitter__work(uv_work_t *req)
{
    fitter_job_t *j = req->data;
    j->status = fitter_run(&j->in, &j->settings, &j->rec, j->err, sizeof j->err);
}

static void fitter__after(uv_work_t *req, int status)
{
    fitter_job_t *j = req->data;
    if (status == UV_ECANCELED) {
        j->status = -ECANCELED;
        snprintf(j->err, sizeof j->err, "fitter: cancelled");
    }
    j->cb(j, j->status, j->status == 0 ? &j->rec : NULL, j->status == 0 ? NULL : j->err, j->data);
    fitter__job_free(j);
}

static void *fitter__dup(const void *p, size_t bytes)
{
    void *q = malloc(bytes ? bytes : 1);
    if (q && bytes)
        memcpy(q, p, bytes);
    return q;
}

int fitter_queue(uv_loop_t *loop,
                 const fitter_input_t *in,
                 const fitter_settings_t *s,
                 fitter_done_cb done_cb,
                 void *data,
                 fitter_job_t **ret)
{
    if (!loop || !in || !s || !done_cb || in->d < 1 || in->m < 1 || !in->loss_names ||
        !in->target || !in->prior || (in->n && (!in->X || !in->losses)) ||
        (in->nhistory && !in->history))
        return -EINVAL;
    fitter_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    size_t d = in->d, m = (size_t)in->m;
    j->settings = *s;
    j->in = *in;
    j->cb = done_cb;
    j->data = data;
    j->X = fitter__dup(in->X, in->n * d * sizeof(double));
    j->losses = fitter__dup(in->losses, in->n * m * sizeof(double));
    j->prior = fitter__dup(in->prior, d * sizeof(double));
    j->history = fitter__dup(in->history, in->nhistory * d * sizeof(double));
    j->target = strdup(in->target);
    j->names = calloc(m, sizeof *j->names);
    int ok = j->X && j->losses && j->prior && j->history && j->target && j->names;
    for (size_t c = 0; ok && c < m; c++)
        ok = (j->names[c] = strdup(in->loss_names[c])) != NULL;
    if (!ok) {
        fitter__job_free(j);
        return -ENOMEM;
    }
    j->in.X = j->X;
    j->in.losses = j->losses;
    j->in.prior = j->prior;
    j->in.history = in->nhistory ? j->history : NULL;
    j->in.target = j->target;
    j->in.loss_names = (const char *const *)j->names;
    j->req.data = j;
    int rc = uv_queue_work(loop, &j->req, fitter__work, fitter__after);
    if (rc < 0) {
        fitter__job_free(j);
        return rc;
    }
    if (ret)
        *ret = j;
    return 0;
}

int fitter_cancel(fitter_job_t *job)
{
    if (!job)
        return -EINVAL;
    return uv_cancel((uv_req_t *)&job->req) == 0 ? 0 : -EBUSY;
}
