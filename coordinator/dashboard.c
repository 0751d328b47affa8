#include "dashboard.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fitpipe.h"
#include "store_view.h"
#include "webui.h"

#define DASHBOARD_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))

static json_t *dashboard__num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *dashboard__weights(const double *w, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        double v;
        memcpy(&v, (const char *)w + (size_t)i * sizeof v, sizeof v); /* blob: maybe unaligned */
        json_array_append_new(a, dashboard__num(v));
    }
    return a;
}

/* A stored JSON text as a value; an object when it does not parse. */
static json_t *dashboard__parsed(const char *text)
{
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    return o ? o : json_object();
}

static json_t *dashboard__summary(const sweep_t *sw, int64_t now)
{
    json_t *runs = json_object();
    int64_t total = 0;
    for (int s = 1; s < RUN_STATE__COUNT; s++) {
        json_object_set_new(runs, states_run_name((run_state_t)s), json_integer(sw->counts[s]));
        total += sw->counts[s];
    }
    json_object_set_new(runs, "total", json_integer(total));
    int64_t done = sw->counts[RUN_STATE_DONE];
    int64_t left = sw->counts[RUN_STATE_QUEUED] + sw->counts[RUN_STATE_LEASED] +
                   sw->counts[RUN_STATE_RUNNING] + sw->counts[RUN_STATE_FAILED];
    int ended =
            left == 0 || (sw->state != SWEEP_STATE_RUNNING && sw->state != SWEEP_STATE_CONVERGED);
    /* The mean rate over the sweep's life (until it ended), and the time left at that rate. */
    double secs = (double)((ended ? sw->updated_ms : now) - sw->created_ms) / 1000.0;
    double rate = secs > 0 ? (double)done / secs : NAN;
    double eta = left == 0 ? 0 : rate > 0 ? (double)left / rate : NAN;
    return json_pack("{s:s, s:s, s:s, s:o, s:i, s:b, s:i, s:I, s:I, s:o, s:o}", "sweep_id",
                     sw->sweep_id, "name", sw->name ? sw->name : "", "state",
                     states_sweep_name(sw->state), "runs", runs, "fits", sw->nfits, "converged",
                     sw->converged_after_runs > 0, "converged_after_runs", sw->converged_after_runs,
                     "created_ms", (json_int_t)sw->created_ms, "updated_ms",
                     (json_int_t)sw->updated_ms, "rate_per_s", dashboard__num(rate), "eta_s",
                     dashboard__num(ended ? 0 : eta));
}

typedef struct {
    json_t *arr;
    const sweep_t *sw;
} dashboard_fits_t;

static int dashboard__fit(const store_fit_row_t *row, void *data)
{
    dashboard_fits_t *f = data;
    json_t *m = dashboard__parsed(row->metrics_json);
    json_t *p = dashboard__parsed(row->proposal_json);
    json_t *prop = json_array();
    for (int i = 0; i < f->sw->ndomains; i++) {
        json_t *v = json_object_get(p, f->sw->domains[i]);
        json_array_append_new(prop,
                              json_is_number(v) ? json_real(json_number_value(v)) : json_null());
    }
    json_t *o = json_pack("{s:i, s:i, s:s, s:o, s:o, s:o, s:I}", "fit_no", row->fit_no, "runs_used",
                          row->runs_used, "model", row->model, "predicted",
                          dashboard__num(row->predicted), "l1_moved", dashboard__num(row->l1_moved),
                          "proposal", prop, "created_ms", (json_int_t)row->created_ms);
    /* The active sweep's keys (predicted_sd, noise_sd, expected_gain) are null on other fits. */
    const char *keys[] = {"spearman",  "pearson",      "r2",       "mse",
                          "l1_window", "predicted_sd", "noise_sd", "expected_gain"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        json_t *v = json_object_get(m, keys[k]);
        json_object_set(o, keys[k], json_is_number(v) ? v : json_null());
    }
    /* [lo, hi]: the 95 % interval of a run's objective at the proposal; null when either end is
     * missing (a fit without out-of-fold error, a fit older than the interval). */
    json_t *iv = json_object_get(m, "predicted_interval");
    json_t *lo = json_array_get(iv, 0), *hi = json_array_get(iv, 1);
    json_object_set_new(o, "predicted_interval",
                        json_is_array(iv) && json_is_number(lo) && json_is_number(hi)
                                ? json_pack("[O, O]", lo, hi)
                                : json_null());
    json_t *verdict = json_object_get(m, "verdict");
    json_object_set_new(o, "verdict",
                        json_string(json_is_string(verdict) ? json_string_value(verdict) : ""));
    json_t *from = json_object_get(m, "proposal_from");
    json_object_set_new(o, "proposal_from",
                        json_is_string(from) ? json_string(json_string_value(from)) : json_null());
    json_decref(m);
    json_decref(p);
    json_array_append_new(f->arr, o);
    return 0;
}

static int dashboard__domain(int idx, const char *name, double tokens, double prior, void *data)
{
    (void)idx;
    json_array_append_new(data, json_pack("{s:s, s:o, s:o}", "name", name, "tokens",
                                          dashboard__num(tokens), "prior", dashboard__num(prior)));
    return 0;
}

static int dashboard__point(int64_t step, double loss, void *data)
{
    json_array_append_new(data, json_pack("[I, o]", (json_int_t)step, dashboard__num(loss)));
    return 0;
}

typedef struct {
    coord_t *c;
    const sweep_t *sw;
    json_t *arr;
    int err;
} dashboard_targets_t;

static int dashboard__target(const store_target_row_t *row, void *data)
{
    dashboard_targets_t *t = data;
    if (row->sweep != t->sw->id)
        return 0;
    json_t *curve = json_array();
    int r = store_view_target_curve(t->c->store, row->sweep, row->role, DASHBOARD_MAX_CURVE,
                                    dashboard__point, curve);
    if (r < 0) {
        json_decref(curve);
        return r;
    }
    json_array_append_new(t->arr,
                          json_pack("{s:s, s:s, s:s, s:i, s:I, s:o, s:o, s:o, s:o, s:s, s:o}",
                                    "role", row->role, "state", states_target_name(row->state),
                                    "launcher", row->launcher, "ranks", row->ranks, "step",
                                    (json_int_t)row->step, "loss", dashboard__num(row->loss),
                                    "objective", dashboard__num(row->objective), "weights",
                                    dashboard__parsed(row->weights_json), "losses",
                                    dashboard__parsed(row->losses_json), "detail",
                                    row->detail ? row->detail : "", "curve", curve));
    return 0;
}

static json_t *dashboard__doc(coord_t *c, sweep_t *sw)
{
    json_t *doc = json_object(), *domains = json_array(), *fits = json_array();
    json_t *targets = json_array();
    json_object_set_new(doc, "sweep", dashboard__summary(sw, clock_unix_ms()));
    json_object_set_new(doc, "domains", domains);
    json_object_set_new(doc, "fits", fits);
    json_object_set_new(doc, "targets", targets);
    char objective[1024] = "synthetic";
    if (sw->spec && sw->spec->proxy.trainer != SPEC_TRAINER_SYNTHETIC &&
        fitpipe_target_text(sw->spec, objective, sizeof objective) < 0)
        snprintf(objective, sizeof objective, "?");
    json_object_set_new(doc, "objective", json_string(objective));
    json_object_set_new(doc, "l1_tol",
                        sw->spec ? dashboard__num(sw->spec->regression.convergence.l1_tol)
                                 : json_null());
    json_object_set_new(doc, "gain_tol",
                        sw->spec && sw->spec->sampling.strategy == SPEC_STRATEGY_ACTIVE
                                ? dashboard__num(sw->spec->regression.convergence.gain_tol)
                                : json_null());
    dashboard_fits_t f = {.arr = fits, .sw = sw};
    dashboard_targets_t t = {.c = c, .sw = sw, .arr = targets};
    char *oof = NULL;
    if (store_domains_foreach(c->store, sw->id, dashboard__domain, domains) < 0 ||
        store_fits_after(c->store, sw->id, sw->nfits - DASHBOARD_MAX_FITS, dashboard__fit, &f) <
                0 ||
        store_targets_foreach(c->store, dashboard__target, &t) < 0 ||
        store_view_oof_get(c->store, sw->id, &oof) < 0) {
        json_decref(doc);
        return NULL;
    }
    json_object_set_new(doc, "oof", oof ? dashboard__parsed(oof) : json_null());
    free(oof);
    return doc;
}

char *dashboard_sweep_json(coord_t *c, sweep_t *sw)
{
    json_t *doc = dashboard__doc(c, sw);
    char *s = doc ? json_dumps(doc, DASHBOARD_JSON_FLAGS) : NULL;
    json_decref(doc);
    return s;
}

static int dashboard__result(const store_view_result_t *row, void *data)
{
    json_array_append_new(data, json_pack("{s:I, s:i, s:i, s:s, s:o, s:o, s:o}", "id",
                                          (json_int_t)row->id, "idx", row->run_idx, "attempt",
                                          row->attempt_no, "worker", row->worker, "w",
                                          dashboard__weights(row->weights, row->nweights), "loss",
                                          dashboard__parsed(row->losses_json), "seconds",
                                          dashboard__num(row->seconds)));
    return 0;
}

static int dashboard__run(const store_view_run_t *row, void *data)
{
    json_array_append_new(
            data, json_pack("{s:i, s:s, s:i, s:s, s:o, s:o}", "idx", row->idx, "state", row->state,
                            "attempts", row->attempts, "worker", row->worker, "w",
                            dashboard__weights(row->weights, row->nweights), "loss",
                            row->losses_json ? dashboard__parsed(row->losses_json) : json_null()));
    return 0;
}

/* A non-negative integer query argument, `dflt` when absent; -1 when malformed. */
static long long dashboard__arg(dashboard_arg_fn arg, void *ctx, const char *key, long long dflt)
{
    const char *v = arg ? arg(ctx, key) : NULL;
    if (!v)
        return dflt;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < 0)
        return -1;
    return n;
}

static json_t *dashboard__workers(coord_t *c)
{
    json_t *arr = json_array();
    for (int i = 0; i < c->nworkers; i++) {
        const worker_t *w = c->workers[i];
        json_t *running = json_array();
        for (const attempt_t *a = w->attempts; a; a = a->lnext)
            json_array_append_new(running,
                                  json_pack("{s:I, s:s, s:i, s:i, s:b}", "attempt",
                                            (json_int_t)a->id, "sweep_id",
                                            a->sweep ? a->sweep->sweep_id : "", "run", a->run_idx,
                                            "attempt_no", a->attempt_no, "started", a->running));
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:s, s:i, s:o, s:I, s:I, s:I, s:i}",
                                        "worker_id", w->worker_id, "host", w->host ? w->host : "",
                                        "state", states_worker_name(coord_worker_state(w)), "slots",
                                        w->slots, "running", running, "done", (json_int_t)w->done,
                                        "failed", (json_int_t)w->failed, "last_seen_ms",
                                        (json_int_t)w->last_seen_ms, "gpus", w->ngpus));
    }
    return json_pack("{s:o}", "workers", arr);
}

static int dashboard__reply(json_t *o, int status, char **ret_body, size_t *ret_len)
{
    if (!o)
        return 500;
    char *s = json_dumps(o, DASHBOARD_JSON_FLAGS);
    json_decref(o);
    if (!s)
        return 500;
    *ret_body = s;
    *ret_len = strlen(s);
    return status;
}

static int dashboard__error(int status, const char *why, char **ret_body, size_t *ret_len)
{
    return dashboard__reply(json_pack("{s:s}", "error", why), status, ret_body, ret_len);
}

int dashboard_get(coord_t *c,
                  const char *url,
                  dashboard_arg_fn arg,
                  void *ctx,
                  char **ret_body,
                  size_t *ret_len,
                  const char **ret_type)
{
    *ret_type = "application/json";
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) {
        *ret_type = "text/html; charset=utf-8";
        *ret_body = webui_dashboard_page(ret_len);
        return *ret_body ? 200 : 500;
    }
    if (strncmp(url, "/api/", 5) != 0)
        return 0;
    const char *p = url + 5;
    if (strcmp(p, "workers") == 0)
        return dashboard__reply(dashboard__workers(c), 200, ret_body, ret_len);
    if (strcmp(p, "sweeps") == 0) {
        json_t *arr = json_array();
        int64_t now = clock_unix_ms();
        int first = c->nsweeps > DASHBOARD_MAX_SWEEPS ? c->nsweeps - DASHBOARD_MAX_SWEEPS : 0;
        for (int i = first; i < c->nsweeps; i++)
            json_array_append_new(arr, dashboard__summary(c->sweeps[i], now));
        return dashboard__reply(json_pack("{s:o, s:i}", "sweeps", arr, "total", c->nsweeps), 200,
                                ret_body, ret_len);
    }
    if (strncmp(p, "sweeps/", 7) != 0)
        return dashboard__error(404, "no such endpoint; see docs/dashboard.md", ret_body, ret_len);
    p += 7;
    char key[64];
    size_t klen = strcspn(p, "/");
    if (klen == 0 || klen >= sizeof key)
        return dashboard__error(404, "no such sweep", ret_body, ret_len);
    memcpy(key, p, klen);
    key[klen] = '\0';
    const char *rest = p + klen;
    sweep_t *sw = coord_sweep_find(c, key);
    if (!sw)
        return dashboard__error(404, "no such sweep", ret_body, ret_len);
    if (*rest == '\0') {
        json_t *doc = dashboard__doc(c, sw);
        return doc ? dashboard__reply(doc, 200, ret_body, ret_len)
                   : dashboard__error(500, "store", ret_body, ret_len);
    }
    if (strcmp(rest, "/results") == 0) {
        long long after = dashboard__arg(arg, ctx, "after", 0);
        long long limit = dashboard__arg(arg, ctx, "limit", 500);
        if (after < 0 || limit < 1)
            return dashboard__error(400, "after and limit are integers >= 0 and >= 1", ret_body,
                                    ret_len);
        long long cap = DASHBOARD_PAGE_VALUES / (sw->ndomains + 8);
        if (cap > DASHBOARD_RESULTS_LIMIT)
            cap = DASHBOARD_RESULTS_LIMIT;
        if (limit > cap)
            limit = cap;
        json_t *arr = json_array();
        int n = store_view_results_page(c->store, sw->id, after, (int)limit, dashboard__result,
                                        arr);
        if (n < 0) {
            json_decref(arr);
            return dashboard__error(500, "store", ret_body, ret_len);
        }
        json_t *last = n > 0 ? json_object_get(json_array_get(arr, (size_t)n - 1), "id") : NULL;
        return dashboard__reply(json_pack("{s:o, s:o, s:b, s:I}", "results", arr, "next",
                                          last ? json_incref(last) : json_null(), "more",
                                          n == limit, "limit", (json_int_t)limit),
                                200, ret_body, ret_len);
    }
    if (strcmp(rest, "/runs") == 0) {
        long long offset = dashboard__arg(arg, ctx, "offset", 0);
        long long limit = dashboard__arg(arg, ctx, "limit", 50);
        if (offset < 0 || limit < 1 || offset > INT32_MAX)
            return dashboard__error(400, "offset and limit are integers >= 0 and >= 1", ret_body,
                                    ret_len);
        if (limit > DASHBOARD_RUNS_LIMIT)
            limit = DASHBOARD_RUNS_LIMIT;
        json_t *arr = json_array();
        int n = store_view_runs_page(c->store, sw->id, (int)offset, (int)limit, dashboard__run,
                                     arr);
        if (n < 0) {
            json_decref(arr);
            return dashboard__error(500, "store", ret_body, ret_len);
        }
        return dashboard__reply(json_pack("{s:o, s:I, s:I, s:i}", "runs", arr, "offset",
                                          (json_int_t)offset, "limit", (json_int_t)limit, "total",
                                          sw->nruns),
                                200, ret_body, ret_len);
    }
    return dashboard__error(404, "no such endpoint; see docs/dashboard.md", ret_body, ret_len);
}
