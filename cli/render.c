/*
 * render: what regmixctl prints from a coordinator's replies (render.h).
 */
#include "render.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "states.h"

const char *render_sweep_state(Regmix__SweepState s)
{
    /* The same words the coordinator stores (common/states.h). */
    return states_sweep_name((sweep_state_t)s);
}

const char *render_str_or(const char *s, const char *dflt)
{
    return s && *s ? s : dflt;
}

uint32_t render_counts_total(const Regmix__RunCounts *c)
{
    if (!c)
        return 0;
    return c->queued + c->leased + c->running + c->done + c->failed + c->dead + c->cancelled;
}

static json_t *counts_json(const Regmix__RunCounts *c)
{
    Regmix__RunCounts z = REGMIX__RUN_COUNTS__INIT;
    if (!c)
        c = &z;
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "queued", (int)c->queued, "leased",
                     (int)c->leased, "running", (int)c->running, "done", (int)c->done, "failed",
                     (int)c->failed, "dead", (int)c->dead, "cancelled", (int)c->cancelled, "total",
                     (int)render_counts_total(c));
}

json_t *render_sweep_json(const Regmix__SweepInfo *s)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:i, s:I, s:I, s:i, s:b, s:i}", "sweep",
                     render_str_or(s->sweep_id, ""), "name", render_str_or(s->name, ""), "state",
                     render_sweep_state(s->state), "runs", counts_json(s->runs), "priority",
                     (int)s->priority, "created_unix_ms", (json_int_t)s->created_unix_ms,
                     "updated_unix_ms", (json_int_t)s->updated_unix_ms, "fits", (int)s->fits,
                     "converged", (int)s->converged, "converged_after_runs",
                     (int)s->converged_after_runs);
}

/* A number, or null where it is not finite (jansson refuses NaN and would drop the whole object:
 * a fit's first l1_moved, a target that has not reported yet). */
json_t *render_num_json(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

json_t *render_weights_json(Regmix__DomainWeight **w, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, render_str_or(w[i]->domain, "?"), render_num_json(w[i]->weight));
    return o;
}

json_t *render_values_json(Regmix__DomainValue **v, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, render_str_or(v[i]->name, "?"), render_num_json(v[i]->value));
    return o;
}

static json_t *metrics_json(const Regmix__Metrics *m)
{
    if (!m)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:i}", "spearman", render_num_json(m->spearman),
                     "pearson", render_num_json(m->pearson), "mse", render_num_json(m->mse), "r2",
                     render_num_json(m->r2), "folds", (int)m->folds);
}

/* The estimate at the proposal (issue 10), added to a fit's JSON: the 95 % interval of a run's
 * objective there ([lo, hi], or null), the verdict, and the active sweep's figures; each null
 * where the fit (or an older coordinator) did not record it. */
static void render_estimate_json(json_t *o, const Regmix__ProposalEstimate *e)
{
    double lo = e ? e->predicted_lo : NAN, hi = e ? e->predicted_hi : NAN;
    json_object_set_new(o, "predicted_interval",
                        isfinite(lo) && isfinite(hi)
                                ? json_pack("[o, o]", render_num_json(lo), render_num_json(hi))
                                : json_null());
    json_object_set_new(o, "verdict",
                        e && e->verdict && *e->verdict ? json_string(e->verdict) : json_null());
    json_object_set_new(o, "predicted_sd", render_num_json(e ? e->predicted_sd : NAN));
    json_object_set_new(o, "noise_sd", render_num_json(e ? e->noise_sd : NAN));
    json_object_set_new(o, "expected_gain", render_num_json(e ? e->expected_gain : NAN));
    json_object_set_new(o, "proposal_from",
                        e && e->proposal_from && *e->proposal_from ? json_string(e->proposal_from)
                                                                   : json_null());
}

json_t *render_fit_json(const Regmix__FitInfo *f)
{
    json_t *o = json_pack(
            "{s:i, s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:I}", "fit", (int)f->fit_no, "runs_used",
            (int)f->runs_used, "model", render_str_or(f->model, ""), "cv", metrics_json(f->cv),
            "proposal", render_weights_json(f->proposal, f->n_proposal), "predicted",
            render_num_json(f->predicted), "l1_moved", render_num_json(f->l1_moved), "seconds",
            render_num_json(f->seconds), "created_unix_ms", (json_int_t)f->created_unix_ms);
    if (o)
        render_estimate_json(o, f->estimate);
    return o;
}

/* Where `v` falls against [lo, hi]: "inside", "above", "below" ("" when one is not finite). */
static const char *render_against(double v, double lo, double hi)
{
    if (!isfinite(v) || !isfinite(lo) || !isfinite(hi))
        return "";
    return v < lo ? "below" : v > hi ? "above" : "inside";
}

void render_status(int json, const Regmix__StatusReply *r)
{
    const Regmix__SweepInfo *s = r->sweep;
    const Regmix__FitInfo *f = r->latest_fit;
    const Regmix__ProposalEstimate *e = f ? f->estimate : NULL;
    const Regmix__StatusFigures *g = r->figures;
    double lo = e ? e->predicted_lo : NAN, hi = e ? e->predicted_hi : NAN;
    double tobj = g ? g->target_objective : NAN;
    if (json) {
        json_t *o = render_sweep_json(s);
        if (!o) {
            render_print_json(NULL);
            return;
        }
        json_object_set_new(o, "latest_fit", f ? render_fit_json(f) : json_null());
        json_object_set_new(o, "l1_tol", render_num_json(g ? g->l1_tol : NAN));
        json_object_set_new(o, "gain_tol", render_num_json(g ? g->gain_tol : NAN));
        json_object_set_new(o, "target_state",
                            g && g->target_state && *g->target_state ? json_string(g->target_state)
                                                                     : json_null());
        json_object_set_new(o, "target_objective", render_num_json(tobj));
        json_object_set_new(o, "target_as_proxy", json_boolean(g && g->target_as_proxy));
        /* only a target trained as the proxies are is judged against a proxy run's interval */
        const char *where = g && g->target_as_proxy ? render_against(tobj, lo, hi) : "";
        json_object_set_new(o, "target_in_interval", *where ? json_string(where) : json_null());
        render_print_json(o);
        return;
    }
    const Regmix__RunCounts *rc = s->runs;
    Regmix__RunCounts z = REGMIX__RUN_COUNTS__INIT;
    if (!rc)
        rc = &z;
    printf("sweep     %s\nname      %s\nstate     %s\nruns      %u: queued %u, leased %u, "
           "running %u, done %u, failed %u, dead %u, cancelled %u\nfits      %u\n",
           render_str_or(s->sweep_id, "-"), render_str_or(s->name, "-"),
           render_sweep_state(s->state), render_counts_total(rc), rc->queued, rc->leased,
           rc->running, rc->done, rc->failed, rc->dead, rc->cancelled, s->fits);
    if (s->converged)
        printf("converged after %u runs\n", s->converged_after_runs);
    if (!f)
        return;
    /* One line: the prediction at the proposal, where a run there should land (95 %), the
     * verdict, and for active sweeps the expected gain of one more run against gain_tol. */
    printf("proposal  fit %u on %u runs (%s): predicted %.6g", f->fit_no, f->runs_used,
           render_str_or(f->model, "?"), f->predicted);
    if (isfinite(lo) && isfinite(hi))
        printf(", 95 %% interval of a run there [%.6g, %.6g]", lo, hi);
    if (e && (isfinite(e->predicted_sd) || isfinite(e->noise_sd)))
        printf(" (sd: model %.3g, noise %.3g)", e->predicted_sd, e->noise_sd);
    if (e && e->verdict && *e->verdict)
        printf("; verdict %s", e->verdict);
    if (e && isfinite(e->expected_gain)) {
        printf("; expected gain %.3g", e->expected_gain);
        if (g && isfinite(g->gain_tol))
            printf(" %s gain_tol %.3g", e->expected_gain < g->gain_tol ? "<" : ">=", g->gain_tol);
    }
    if (e && e->proposal_from && *e->proposal_from)
        printf("; chosen by %s", e->proposal_from);
    putchar('\n');
    if (g && g->target_state && *g->target_state) {
        printf("target    %s", g->target_state);
        if (isfinite(tobj)) {
            printf(", objective %.6g", tobj);
            const char *where = g->target_as_proxy ? render_against(tobj, lo, hi) : "";
            if (*where)
                printf(" (%s the interval of fit %u)", where, f->fit_no);
            else if (!g->target_as_proxy && isfinite(lo))
                printf(" (another model than the proxies': the interval is a proxy run's)");
        }
        putchar('\n');
    }
}

static json_t *render_target_json(const Regmix__TargetInfo *t)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:o, s:o, s:o, s:I, s:o, s:s}",
                     "job", render_str_or(t->handle, ""), "sweep", render_str_or(t->sweep_id, ""),
                     "role", render_str_or(t->role, ""), "state", render_str_or(t->state, ""),
                     "launcher", render_str_or(t->launcher, ""), "ranks", (int)t->ranks, "pid",
                     (json_int_t)t->pid, "log", render_str_or(t->log_path, ""), "weights",
                     render_weights_json(t->weights, t->n_weights), "losses",
                     render_values_json(t->losses, t->n_losses), "objective",
                     render_num_json(t->objective), "step", (json_int_t)t->step, "loss",
                     render_num_json(t->loss), "detail", render_str_or(t->detail, ""));
}

void render_print_json(json_t *o)
{
    if (!o) {
        fprintf(stderr, "regmixctl: out of memory\n");
        return;
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

/* Writes one CSV field, quoted when it needs to be (RFC 4180). */
void render_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void render_sweep_line(const Regmix__SweepInfo *s)
{
    const Regmix__RunCounts *r = s->runs;
    uint32_t total = render_counts_total(r);
    printf("%-24s %-20s %-10s %6u/%-6u queued=%u leased=%u running=%u failed=%u dead=%u "
           "cancelled=%u fits=%u\n",
           render_str_or(s->sweep_id, "-"), render_str_or(s->name, "-"),
           render_sweep_state(s->state), r ? r->done : 0, total, r ? r->queued : 0,
           r ? r->leased : 0, r ? r->running : 0, r ? r->failed : 0, r ? r->dead : 0,
           r ? r->cancelled : 0, s->fits);
}

void render_targets(int json, const char *sweep, Regmix__TargetInfo **t, size_t n)
{
    if (json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, render_target_json(t[i]));
        render_print_json(json_pack("{s:s, s:o}", "sweep", sweep, "targets", a));
        return;
    }
    if (n == 0)
        printf("no target runs for %s\n", sweep);
    for (size_t i = 0; i < n; i++) {
        printf("%-8s %-10s launcher=%s ranks=%u pid=%" PRId64 " step=%" PRIu64 " loss=%.5g",
               render_str_or(t[i]->role, "-"), render_str_or(t[i]->state, "-"),
               render_str_or(t[i]->launcher, "-"), t[i]->ranks, t[i]->pid, t[i]->step, t[i]->loss);
        if (t[i]->handle && *t[i]->handle)
            printf(" job=%s", t[i]->handle);
        if (t[i]->log_path && *t[i]->log_path)
            printf(" log=%s", t[i]->log_path);
        if (t[i]->detail && *t[i]->detail)
            printf(" (%s)", t[i]->detail);
        putchar('\n');
    }
}

void render_watch(
        render_watch_t *v, int json, const Regmix__SweepInfo *s, const char *kind, const char *text)
{
    const Regmix__RunCounts *r = s ? s->runs : NULL;
    uint32_t total = render_counts_total(r);
    uint32_t fin = r ? r->done + r->dead + r->cancelled : 0;
    if (r && !v->have_start) {
        v->have_start = 1;
        v->start_ms = clock_mono_ms();
        v->start_finished = fin;
    }
    double secs = (double)(clock_mono_ms() - v->start_ms) / 1000.0;
    double rate = secs > 0.5 && fin >= v->start_finished ? (fin - v->start_finished) / secs : 0;
    if (json) {
        json_t *o = json_pack("{s:s, s:s}", "kind", render_str_or(kind, ""), "text",
                              render_str_or(text, ""));
        if (s)
            json_object_set_new(o, "sweep", render_sweep_json(s));
        json_object_set_new(o, "rate", json_real(rate));
        render_print_json(o);
        fflush(stdout);
        return;
    }
    if (!v->tty) {
        if (text && *text)
            printf("%s\n", text);
        else if (r)
            printf("%s %s: %u/%u finished (done %u, dead %u, cancelled %u, running %u, queued "
                   "%u) %.1f runs/s\n",
                   render_str_or(s->sweep_id, "-"), render_sweep_state(s->state), fin, total,
                   r->done, r->dead, r->cancelled, r->running + r->leased, r->queued, rate);
        fflush(stdout);
        return;
    }
    /* A terminal: notable lines (failures, fits, the end; not every result) scroll above one
     * redrawn progress bar. */
    if (text && *text && kind && strcmp(kind, "status") != 0 && strcmp(kind, "result") != 0) {
        printf("\r\033[K%s\n", text);
        v->drew = 0;
    }
    if (r) {
        char bar[41];
        int width = 40, full = total ? (int)((double)fin / total * width) : 0;
        for (int i = 0; i < width; i++)
            bar[i] = i < full ? '#' : '.';
        bar[width] = '\0';
        char eta[32] = "--:--";
        if (rate > 0 && total >= fin) {
            long left = (long)((total - fin) / rate);
            snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", left / 3600, left / 60 % 60, left % 60);
        }
        printf("\r\033[K[%s] %u/%u done %u failed %u dead %u running %u  %.1f runs/s  ETA %s", bar,
               fin, total, r->done, r->failed, r->dead, r->running + r->leased, rate, eta);
        v->drew = 1;
    }
    fflush(stdout);
}
