#include "refit.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fitpipe.h"
#include "log.h"
#include "store_view.h"
#include "target.h"
#include "transition.h"

typedef struct refit_ctx {
    coord_t *c;
    sweep_t *sw;
    int64_t results; /* results in the snapshot */
    int *runs;       /* (nruns) run index of each snapshot row, for the out-of-fold record */
    int64_t nruns;
    int round_at; /* active round asked for: the sweep's run count then, else -1 */
} refit_ctx_t;

typedef struct {
    sweep_t *sw;
    size_t n, cap;
    size_t m;                 /* loss columns: the domains' losses */
    const char *const *names; /* (m) */
    double *X;                /* (n, d) */
    double *losses;           /* (n, m): losses by name, NAN where missing */
    int *runs;                /* (n) run indices */
    int err;
} refit_snap_t;

static int refit__row(const store_result_row_t *row, void *data)
{
    refit_snap_t *s = data;
    size_t d = (size_t)s->sw->ndomains, m = s->m;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        double *X = realloc(s->X, cap * d * sizeof *X);
        if (X)
            s->X = X;
        double *L = realloc(s->losses, cap * m * sizeof *L);
        if (L)
            s->losses = L;
        int *R = realloc(s->runs, cap * sizeof *R);
        if (R)
            s->runs = R;
        if (!X || !L || !R)
            return -ENOMEM;
        s->cap = cap;
    }
    double *x = s->X + s->n * d, *l = s->losses + s->n * m;
    s->runs[s->n] = row->run_idx;
    for (size_t i = 0; i < d; i++)
        x[i] = (int)i < row->nweights ? row->weights[i] : 0.0;
    for (size_t i = 0; i < m; i++)
        l[i] = NAN;
    json_t *o = json_loads(row->losses_json, 0, NULL);
    const char *key;
    json_t *v;
    if (json_is_object(o)) {
        json_object_foreach(o, key, v)
        {
            for (size_t i = 0; i < m; i++)
                if (strcmp(s->names[i], key) == 0 && json_is_number(v))
                    l[i] = json_number_value(v);
        }
    }
    json_decref(o);
    s->n++;
    return 0;
}

static void refit__event(coord_t *c, sweep_t *sw, const char *kind, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void refit__event(coord_t *c, sweep_t *sw, const char *kind, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    coord_sweep_event(c, sw, kind, text, 0);
}

/* No round will come for the active sweep `sw` (asked for at run count round_at >= 0): it may
 * end now like any other sweep. */
static void refit__close_rounds(coord_t *c, sweep_t *sw, int round_at, const char *why)
{
    if (round_at < 0 || !transition_sweep_awaits_round(sw))
        return;
    char q[300];
    log_warn("round_failed", "sweep=%s runs=%d why=%s", sw->sweep_id, sw->nruns,
             log_quote(why, q, sizeof q));
    if (transition_sweep_close_rounds(c, sw) < 0)
        return;
    transition_sweep_check_end(c, sw);
}

/* Most points of the stored out-of-fold record (evenly thinned beyond). */
#define REFIT_OOF_MAX 5000

/* Stores the fit's out-of-fold predictions, for the dashboard (store_view.h, docs/dashboard.md):
 * {"fit_no", "runs": [run index], "actual": [objective], "predicted": [out of fold]}. */
static int refit__store_oof(
        coord_t *c, sweep_t *sw, const fitpipe_record_t *rec, const int *runs, int64_t nruns)
{
    json_t *o = json_object(), *r = json_array(), *a = json_array(), *p = json_array();
    size_t n = rec->runs_used,
           step = n > REFIT_OOF_MAX ? (n + REFIT_OOF_MAX - 1) / REFIT_OOF_MAX : 1;
    for (size_t i = 0; rec->oof_rows && i < n; i += step) {
        size_t row = rec->oof_rows[i];
        json_array_append_new(r, json_integer(runs && (int64_t)row < nruns ? runs[row] : -1));
        json_array_append_new(a, json_real(rec->oof_actual[i]));
        json_array_append_new(p, isfinite(rec->oof_predicted[i]) ? json_real(rec->oof_predicted[i])
                                                                 : json_null());
    }
    json_object_set_new(o, "fit_no", json_integer(sw->nfits));
    json_object_set_new(o, "runs", r);
    json_object_set_new(o, "actual", a);
    json_object_set_new(o, "predicted", p);
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(o);
    int rc = text ? store_view_oof_set(c->store, sw->id, sw->nfits, text) : -ENOMEM;
    free(text);
    return rc;
}

static void refit__done(
        fitpipe_job_t *job, int status, const fitpipe_record_t *rec, const char *err, void *data)
{
    (void)job;
    refit_ctx_t *x = data;
    coord_t *c = x->c;
    sweep_t *sw = x->sw;
    int64_t results = x->results;
    int *runs = x->runs;
    int64_t nruns = x->nruns;
    int round_at = x->round_at;
    free(x);
    sw->fit_job = NULL;
    if (c->stopping || c->fatal || status == -ECANCELED) {
        free(runs);
        return;
    }
    sw->results_at_last_fit = results;
    /* A converged sweep's proposal is final: the target was (or will be) trained on the fit
     * that converged, and `status`, `mixture` and the dashboard show that fit. A refit that was
     * under way when the sweep converged is dropped. */
    if (sw->converged_after_runs > 0) {
        log_info("fit_dropped", "sweep=%s results=%lld why=\"the sweep converged meanwhile\"",
                 sw->sweep_id, (long long)results);
        free(runs);
        return;
    }
    if (status < 0) {
        char q[300];
        log_warn("fit_failed", "sweep=%s results=%lld error=%d why=%s", sw->sweep_id,
                 (long long)results, status, log_quote(err ? err : "", q, sizeof q));
        free(runs);
        refit__close_rounds(c, sw, round_at, "the refit failed");
        return;
    }
    if (coord_write(c) < 0) {
        free(runs);
        return;
    }
    size_t d = (size_t)sw->ndomains;
    char *metrics = fitpipe_record_metrics_json(rec);
    char *proposal = fitpipe_record_proposal_json(rec, (const char *const *)sw->domains);
    double *h = realloc(sw->history, (size_t)(sw->nfits + 1) * d * sizeof *h);
    if (!metrics || !proposal || !h || rec->d != d) {
        free(metrics);
        free(proposal);
        if (h)
            sw->history = h;
        log_error("fit_dropped", "sweep=%s why=\"out of memory or bad record\"", sw->sweep_id);
        free(runs);
        return;
    }
    sw->history = h;
    int64_t now = clock_unix_ms();
    store_fit_row_t row = {
            .sweep = sw->id,
            .fit_no = sw->nfits + 1,
            .runs_used = (int)rec->runs_used,
            .model = rec->model,
            .metrics_json = metrics,
            .proposal_json = proposal,
            .predicted = rec->predicted,
            .l1_moved = rec->l1_moved,
            .seconds = rec->seconds,
            .created_ms = now,
    };
    int r = store_fit_insert(c->store, &row);
    free(metrics);
    free(proposal);
    if (r < 0) {
        free(runs);
        coord_fatal(c, "fit_insert");
        return;
    }
    memcpy(sw->history + (size_t)sw->nfits * d, rec->proposal, d * sizeof(double));
    sw->nfits++;
    /* The active round, in the transaction of the fit row that chose it (exactly once): only
     * when nothing else added runs meanwhile and the sweep goes on. */
    if (round_at >= 0 && round_at == sw->nruns && rec->verdict != FITPIPE_CONVERGED &&
        transition_sweep_awaits_round(sw)) {
        if (rec->next && rec->nnext > 0) {
            if (transition_sweep_add_runs(c, sw, rec->next, (int)rec->nnext, sw->nfits) < 0) {
                free(runs);
                return;
            }
        } else {
            free(runs);
            runs = NULL;
            refit__close_rounds(c, sw, round_at, rec->next_err[0] ? rec->next_err : "no mixtures");
            if (c->fatal)
                return;
        }
    }
    r = refit__store_oof(c, sw, rec, runs, nruns);
    free(runs);
    if (r == -EIO) {
        coord_fatal(c, "fit_oof");
        return;
    }
    if (rec->propose_err[0]) {
        char q[300];
        log_warn("active_proposal_failed", "sweep=%s fit=%d why=%s (the top-k proposes)",
                 sw->sweep_id, sw->nfits, log_quote(rec->propose_err, q, sizeof q));
    }
    log_info("fit",
             "sweep=%s fit=%d runs=%zu model=%s spearman=%.4f l1_moved=%.4f proposal_from=%s "
             "expected_gain=%.6g verdict=%s seconds=%.3f",
             sw->sweep_id, sw->nfits, rec->runs_used, rec->model, rec->cv.spearman, rec->l1_moved,
             rec->proposal_from, rec->expected_gain, fitpipe_verdict_name(rec->verdict),
             rec->seconds);
    if (isfinite(rec->expected_gain))
        refit__event(c, sw, "fit", "fit %d: %zu runs, %s, spearman %.3f, gain %.4g: %s", sw->nfits,
                     rec->runs_used, rec->model, rec->cv.spearman, rec->expected_gain,
                     fitpipe_verdict_name(rec->verdict));
    else
        refit__event(c, sw, "fit", "fit %d: %zu runs, %s, spearman %.3f, moved %.4f: %s", sw->nfits,
                     rec->runs_used, rec->model, rec->cv.spearman, rec->l1_moved,
                     fitpipe_verdict_name(rec->verdict));
    /* A sweep whose runs all finished before its last refit may still converge on it. */
    if (rec->verdict == FITPIPE_CONVERGED &&
        (sw->state == SWEEP_STATE_RUNNING || sw->state == SWEEP_STATE_DONE)) {
        if (transition_sweep_converged(c, sw, (int)rec->runs_used) < 0)
            return;
        if (sw->spec && sw->spec->regression.on_converge == SPEC_ON_CONVERGE_CANCEL) {
            uint32_t n = transition_sweep_cancel_runs(c, sw, "sweep converged");
            log_info("runs_cancelled_on_converge", "sweep=%s runs=%u", sw->sweep_id, n);
        }
        if (sw->spec && sw->spec->target.launch == SPEC_LAUNCH_AUTO) {
            char lerr[512] = "";
            int lr = target_launch(c, sw, lerr, sizeof lerr);
            if (lr < 0 && lr != -EALREADY) {
                char q[600];
                log_warn("launch_failed", "sweep=%s error=%d why=%s", sw->sweep_id, lr,
                         log_quote(lerr, q, sizeof q));
            }
        }
        transition_sweep_check_end(c, sw);
    }
    /* Results that arrived while this refit ran (the sweep's last one included) may call for
     * the next refit now. */
    refit_maybe(c, sw);
    coord_kick(c);
}

/* Runs whose results the snapshot reads per loop iteration: a refit of a 10^6-run sweep takes
 * many short turns instead of one long read on the loop thread. */
#define REFIT_RUNS_PER_TURN 5000

/* The snapshot being read, a range of runs per loop iteration (idle handle). Results that
 * arrive meanwhile for runs not yet read are included; the fit counts the results it was
 * started for (x->results), so the next refit comes as before. */
typedef struct refit_reader {
    uv_idle_t idle;
    coord_t *c;
    sweep_t *sw;
    refit_snap_t snap;
    int64_t results; /* the sweep's results when the refit was called for */
    int64_t after;   /* last run index read */
} refit_reader_t;

static void refit__reader_closed(uv_handle_t *h)
{
    refit_reader_t *rd = h->data;
    free(rd->snap.X);
    free(rd->snap.losses);
    free(rd->snap.runs);
    free(rd);
}

/* Runs of `sw` that can still finish. */
static int64_t refit__open_runs(const sweep_t *sw)
{
    return sw->counts[RUN_STATE_QUEUED] + sw->counts[RUN_STATE_LEASED] +
           sw->counts[RUN_STATE_RUNNING] + sw->counts[RUN_STATE_FAILED];
}

/* Whether an active sweep asks for its next round now: it waits for one, and its open runs have
 * fallen to half a batch (0 included: the round after runs that ended without a result), with
 * enough results for a refit when some are still open. The round is conditioned on the open
 * runs (GP-BUCB's pending points), so workers need not idle at a round's tail. */
static int refit__round_due(const sweep_t *sw)
{
    if (!transition_sweep_awaits_round(sw))
        return 0;
    int64_t open = refit__open_runs(sw);
    int least = sw->spec->regression.cv_folds > 2 ? sw->spec->regression.cv_folds : 2;
    return open == 0 ||
           (open <= sw->spec->sampling.batch / 2 && sw->counts[RUN_STATE_DONE] >= (int64_t)least);
}

/* Most open runs a round is conditioned on (a round is asked for at half a batch at most). */
#define REFIT_MAX_PENDING 4096

/* The snapshot is read: queues the fit pipeline on it (libuv's thread pool). */
static void refit__start(coord_t *c, sweep_t *sw, refit_snap_t *snap, int64_t results)
{
    const spec_t *spec = sw->spec;
    refit_ctx_t *x = calloc(1, sizeof *x);
    double *prior = calloc((size_t)sw->ndomains, sizeof *prior), *pending = NULL;
    char target[1024];
    int r = 0;
    if (!x || !prior || fitpipe_target_text(spec, target, sizeof target) < 0) {
        log_warn("fit_not_started", "sweep=%s why=\"memory or target\"", sw->sweep_id);
        sw->results_at_last_fit = results;
        goto out;
    }
    for (int i = 0; i < sw->ndomains; i++)
        prior[i] = spec->domains[i].prior;
    fitpipe_input_t in = {
            .n = snap->n,
            .d = (size_t)sw->ndomains,
            .X = snap->X,
            .m = (int)snap->m,
            .loss_names = snap->names,
            .losses = snap->losses,
            .target = target,
            .prior = prior,
            .nhistory = (size_t)sw->nfits,
            .history = sw->history,
    };
    /* An active sweep's candidates (its proposal's and its rounds') keep the sampler's epoch
     * bound (docs/method.md); one whose runs have all ended asks for its next round with this
     * fit. */
    double upper[SPEC_MAX_DOMAINS];
    x->round_at = -1;
    if (spec->sampling.strategy == SPEC_STRATEGY_ACTIVE) {
        double su = 0;
        for (int i = 0; i < sw->ndomains; i++)
            su += (upper[i] =
                           fmin(1.0, spec->sampling.target_tokens > 0
                                             ? spec->sampling.max_epochs * spec->domains[i].tokens /
                                                       spec->sampling.target_tokens
                                             : spec->sampling.max_epochs * prior[i]));
        in.upper = su > 1 ? upper : NULL;
    }
    if (refit__round_due(sw)) {
        int left = spec->sampling.runs - sw->nruns;
        in.next_k = (size_t)(left < spec->sampling.batch ? left : spec->sampling.batch);
        in.next_seed = spec->sampling.seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(sw->nfits + 1));
        x->round_at = sw->nruns;
        int64_t open = refit__open_runs(sw);
        if (open > REFIT_MAX_PENDING)
            open = REFIT_MAX_PENDING;
        if (open > 0 && (pending = malloc((size_t)open * (size_t)sw->ndomains * sizeof *pending))) {
            int np = store_runs_open_weights(c->store, sw->id, sw->ndomains, (int)open, pending);
            if (np > 0) {
                in.pending = pending;
                in.npending = (size_t)np;
            }
        }
    }
    fitpipe_settings_t settings;
    fitpipe_settings_from_spec(spec, &settings);
    x->c = c;
    x->sw = sw;
    x->results = results;
    x->runs = snap->runs;
    x->nruns = (int64_t)snap->n;
    fitpipe_job_t *job = NULL;
    r = fitpipe_queue(c->loop, &in, &settings, refit__done, x, &job);
    if (r < 0) {
        log_warn("fit_not_started", "sweep=%s error=%d", sw->sweep_id, r);
        sw->results_at_last_fit = results;
        goto out;
    }
    x = NULL; /* refit__done frees it and the run indices */
    snap->runs = NULL;
    sw->fit_job = job;
out:
    free(x);
    free(prior);
    free(pending);
}

static void refit__read(uv_idle_t *h)
{
    refit_reader_t *rd = h->data;
    coord_t *c = rd->c;
    sweep_t *sw = rd->sw;
    if (c->stopping || c->fatal) {
        sw->fit_reader = NULL;
        uv_close((uv_handle_t *)h, refit__reader_closed);
        return;
    }
    int64_t last = rd->after + REFIT_RUNS_PER_TURN;
    int r = store_results_range(c->store, sw->id, rd->after, last, refit__row, &rd->snap);
    if (r < 0) {
        log_warn("fit_not_started", "sweep=%s why=\"snapshot: %s\"", sw->sweep_id,
                 r == -ENOMEM ? "out of memory" : store_errmsg(c->store));
        sw->results_at_last_fit = rd->results;
    } else if (last < sw->nruns) {
        rd->after = last;
        return;
    } else {
        refit__start(c, sw, &rd->snap, rd->results);
    }
    sw->fit_reader = NULL;
    uv_close((uv_handle_t *)h, refit__reader_closed);
}

void refit_maybe(coord_t *c, sweep_t *sw)
{
    /* No refit after convergence: the converged fit's proposal is the sweep's (see refit__done). */
    if (!sw->spec || sw->fit_job || sw->fit_reader || c->stopping || c->fatal ||
        sw->converged_after_runs > 0)
        return;
    const spec_t *spec = sw->spec;
    int64_t results = sw->counts[RUN_STATE_DONE];
    /* The sweep's last result: what can still finish is queued, leased, running or failed. */
    int64_t total = results + sw->counts[RUN_STATE_QUEUED] + sw->counts[RUN_STATE_LEASED] +
                    sw->counts[RUN_STATE_RUNNING] + sw->counts[RUN_STATE_FAILED];
    /* An active sweep whose open runs fell to half a batch (or none) needs a refit even when its
     * results were all fitted (a restart after a round that could not be chosen, or fewer
     * results than the folds): it chooses the round, or closes the rounds. */
    int round_due = refit__round_due(sw);
    if (!round_due &&
        !fitpipe_should_refit(spec->regression.refit_every, spec->regression.cv_folds,
                              (size_t)results, (size_t)sw->results_at_last_fit, (size_t)total, 0))
        return;
    refit_reader_t *rd = calloc(1, sizeof *rd);
    if (!rd) {
        log_warn("fit_not_started", "sweep=%s why=\"out of memory\"", sw->sweep_id);
        sw->results_at_last_fit = results;
        return;
    }
    /* The loss columns are the domains' losses, whatever the trainer (a synthetic job reports
     * one per domain too); the objective is regression.target over them. */
    rd->snap = (refit_snap_t){
            .sw = sw, .m = (size_t)sw->ndomains, .names = (const char *const *)sw->domains};
    rd->c = c;
    rd->sw = sw;
    rd->results = results;
    rd->after = -1;
    rd->idle.data = rd;
    uv_idle_init(c->loop, &rd->idle);
    uv_idle_start(&rd->idle, refit__read);
    sw->fit_reader = rd;
}

typedef struct {
    sweep_t *sw;
    int err;
} refit_load_t;

static int refit__load_fit(const store_fit_row_t *row, void *data)
{
    refit_load_t *l = data;
    sweep_t *sw = l->sw;
    size_t d = (size_t)sw->ndomains;
    double *h = realloc(sw->history, (size_t)(sw->nfits + 1) * d * sizeof *h);
    if (!h)
        return -ENOMEM;
    sw->history = h;
    double *p = h + (size_t)sw->nfits * d;
    json_t *o = json_loads(row->proposal_json, 0, NULL);
    for (size_t i = 0; i < d; i++) {
        json_t *v = json_is_object(o) ? json_object_get(o, sw->domains[i]) : NULL;
        p[i] = json_is_number(v) ? json_number_value(v) : 0.0;
    }
    json_decref(o);
    sw->nfits++;
    json_t *m = json_loads(row->metrics_json, 0, NULL);
    json_t *n = json_is_object(m) ? json_object_get(m, "n") : NULL;
    sw->results_at_last_fit = json_is_integer(n) ? json_integer_value(n) : row->runs_used;
    json_decref(m);
    return 0;
}

int refit_load(coord_t *c, sweep_t *sw)
{
    refit_load_t l = {.sw = sw};
    return store_fits_foreach(c->store, sw->id, refit__load_fit, &l);
}

void refit_cancel_all(coord_t *c)
{
    for (int i = 0; i < c->nsweeps; i++)
        if (c->sweeps[i]->fit_job)
            fitpipe_cancel(c->sweeps[i]->fit_job);
}
