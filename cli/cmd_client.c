/*
 * cmd_client: the regmixctl commands that talk to a coordinator (docs/protocol.md): argument
 * parsing, one request per command and what it prints. The transport is client.c (one DEALER,
 * replies within --timeout, why a coordinator stays silent); the tables, CSV and JSON are
 * render.c.
 *
 * `watch` reads WatchEvents until the final one; when the stream goes quiet for a timeout it
 * probes with a StatusRequest, so a dead coordinator ends the watch with an error too.
 *
 * An Error reply prints the coordinator's message on stderr and exits 2 for BAD_REQUEST /
 * NOT_FOUND (the user's input was wrong), 1 otherwise.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "client.h"
#include "commands.h"
#include "render.h"
#include "slurp.h"
#include "states.h"

#define CLIENT_SPEC_MAX (1024 * 1024)

/* One command's context: its name, the output mode, the transport. */
typedef struct ctl {
    const char *cmd;
    int json;
    client_t *client;
} ctl_t;

static int sweep_state_final(Regmix__SweepState s)
{
    return s != REGMIX__SWEEP_STATE__SWEEP_STATE_UNSPECIFIED &&
           !states_sweep_open((sweep_state_t)s);
}

static int do_submit(ctl_t *c, const char *path, int priority)
{
    char *buf = NULL;
    size_t n = 0;
    int rc = slurp_file(path, CLIENT_SPEC_MAX, &buf, &n);
    if (rc == -EFBIG)
        fprintf(stderr, "regmixctl submit: %s is larger than %d bytes\n", path, CLIENT_SPEC_MAX);
    else if (rc < 0)
        fprintf(stderr, "regmixctl submit: cannot read %s: %s\n", path, strerror(-rc));
    if (rc < 0)
        return rc == -ENOMEM ? 1 : 2;
    Regmix__Envelope req, *rep = NULL;
    Regmix__SubmitRequest sr = REGMIX__SUBMIT_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    sr.spec_yaml = buf;
    const char *slash = strrchr(path, '/');
    sr.spec_name = (char *)(slash ? slash + 1 : path);
    sr.priority = priority;
    req.body_case = REGMIX__ENVELOPE__BODY_SUBMIT;
    req.submit = &sr;
    int st = client_call(c->client, &req, REGMIX__ENVELOPE__BODY_SUBMIT_REPLY, &rep);
    free(buf);
    if (st)
        return st;
    if (c->json)
        render_print_json(json_pack("{s:s, s:i}", "sweep",
                                    render_str_or(rep->submit_reply->sweep_id, ""), "runs",
                                    (int)rep->submit_reply->runs));
    else
        printf("%s\n", render_str_or(rep->submit_reply->sweep_id, ""));
    frame_free(&rep);
    return 0;
}

static int do_status(ctl_t *c, const char *sweep)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__StatusRequest sr = REGMIX__STATUS_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    sr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_STATUS;
    req.status = &sr;
    int st = client_call(c->client, &req, REGMIX__ENVELOPE__BODY_STATUS_REPLY, &rep);
    if (st)
        return st;
    const Regmix__SweepInfo *s = rep->status_reply->sweep;
    if (!s) {
        fprintf(stderr, "regmixctl status: the reply has no sweep\n");
        frame_free(&rep);
        return 1;
    }
    render_status(c->json, rep->status_reply);
    frame_free(&rep);
    return 0;
}

static int do_list(ctl_t *c)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__ListRequest lr = REGMIX__LIST_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    req.body_case = REGMIX__ENVELOPE__BODY_LIST;
    req.list = &lr;
    int st = client_call(c->client, &req, REGMIX__ENVELOPE__BODY_LIST_REPLY, &rep);
    if (st)
        return st;
    const Regmix__ListReply *l = rep->list_reply;
    if (c->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < l->n_sweeps; i++)
            json_array_append_new(a, render_sweep_json(l->sweeps[i]));
        render_print_json(json_pack("{s:o}", "sweeps", a));
    } else {
        printf("%-24s %-20s %-10s %13s\n", "SWEEP", "NAME", "STATE", "DONE/TOTAL");
        for (size_t i = 0; i < l->n_sweeps; i++)
            render_sweep_line(l->sweeps[i]);
    }
    frame_free(&rep);
    return 0;
}

static int client_usage_error(const char *cmd, const char *what)
{
    fprintf(stderr, "regmixctl %s: %s exclude each other\n", cmd, what);
    return 2;
}

static int do_cancel(ctl_t *c, const char *sweep, int has_run, uint64_t run, int target)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__CancelRequest cr = REGMIX__CANCEL_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    cr.sweep_id = (char *)sweep;
    cr.has_run = has_run;
    cr.run_index = run;
    cr.target = target;
    req.body_case = REGMIX__ENVELOPE__BODY_CANCEL_SWEEP;
    req.cancel_sweep = &cr;
    int st = client_call(c->client, &req, REGMIX__ENVELOPE__BODY_CANCEL_REPLY, &rep);
    if (st)
        return st;
    if (c->json)
        render_print_json(json_pack("{s:s, s:i}", "sweep", sweep, "cancelled",
                                    (int)rep->cancel_reply->cancelled));
    else
        printf("cancelled %u %s of %s\n", rep->cancel_reply->cancelled,
               target ? "target launch(es)" : "run(s) and target launch(es)", sweep);
    frame_free(&rep);
    return 0;
}

/* Asks for the page after `after` (has_after 0: the first). */
static int
results_page(ctl_t *c, const char *sweep, int has_after, uint64_t after, Regmix__Envelope **rep)
{
    Regmix__Envelope req;
    Regmix__ResultsRequest rr = REGMIX__RESULTS_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    rr.sweep_id = (char *)sweep;
    rr.has_after = has_after;
    rr.after_run_index = after;
    req.body_case = REGMIX__ENVELOPE__BODY_RESULTS;
    req.results = &rr;
    return client_call(c->client, &req, REGMIX__ENVELOPE__BODY_RESULTS_REPLY, rep);
}

/* Streams every page: the CSV (or the JSON array) is written as the pages come, so memory does
 * not grow with the sweep. The loss columns are those of the first page (a sweep's runs report
 * the same losses); a later row without one of them leaves its cell empty. */
static int do_results(ctl_t *c, const char *sweep)
{
    Regmix__Envelope *rep = NULL, *first = NULL;
    int st = results_page(c, sweep, 0, 0, &rep);
    if (st)
        return st;
    first = rep;
    const Regmix__ResultsReply *h = first->results_reply;
    if (c->json) {
        fputs("{\"sweep\": ", stdout);
        json_t *js = json_string(sweep);
        json_dumpf(js, stdout, JSON_ENCODE_ANY);
        json_decref(js);
        fputs(", \"results\": [", stdout);
    } else {
        fputs("run,attempt,worker", stdout);
        for (size_t d = 0; d < h->n_domains; d++) {
            fputc(',', stdout);
            render_csv_field(stdout, h->domains[d]);
        }
        /* Loss columns are "loss:NAME": a trainer reports a loss per domain, and a column name
         * must not repeat (csv.h rejects duplicate names). */
        for (size_t k = 0; k < h->n_loss_names; k++) {
            char name[512];
            snprintf(name, sizeof name, "loss:%s", h->loss_names[k]);
            fputc(',', stdout);
            render_csv_field(stdout, name);
        }
        fputc('\n', stdout);
    }
    size_t nrows = 0;
    for (;;) {
        const Regmix__ResultsReply *r = rep->results_reply;
        for (size_t i = 0; i < r->n_results; i++, nrows++) {
            const Regmix__RunResult *x = r->results[i];
            if (c->json) {
                json_t *o = json_pack("{s:I, s:i, s:s, s:o, s:o, s:o}", "run",
                                      (json_int_t)x->run_index, "attempt", (int)x->attempt_no,
                                      "worker", render_str_or(x->worker_id, ""), "weights",
                                      render_weights_json(x->weights, x->n_weights), "losses",
                                      render_values_json(x->losses, x->n_losses), "seconds",
                                      render_num_json(x->seconds));
                if (nrows)
                    fputs(", ", stdout);
                json_dumpf(o, stdout, JSON_COMPACT);
                json_decref(o);
                continue;
            }
            printf("%" PRIu64 ",%u,", x->run_index, x->attempt_no);
            render_csv_field(stdout, render_str_or(x->worker_id, ""));
            for (size_t d = 0; d < h->n_domains; d++) {
                double v = 0;
                for (size_t j = 0; j < x->n_weights; j++)
                    if (x->weights[j]->domain && strcmp(x->weights[j]->domain, h->domains[d]) == 0)
                        v = x->weights[j]->weight;
                printf(",%.17g", v);
            }
            for (size_t k = 0; k < h->n_loss_names; k++) {
                int found = 0;
                for (size_t j = 0; j < x->n_losses && !found; j++) {
                    if (x->losses[j]->name && strcmp(x->losses[j]->name, h->loss_names[k]) == 0) {
                        printf(",%.17g", x->losses[j]->value);
                        found = 1;
                    }
                }
                if (!found)
                    fputc(',', stdout);
            }
            fputc('\n', stdout);
        }
        if (!r->more || r->n_results == 0)
            break;
        uint64_t last = r->results[r->n_results - 1]->run_index;
        if (rep != first)
            frame_free(&rep);
        rep = NULL;
        st = results_page(c, sweep, 1, last, &rep);
        if (st) {
            fflush(stdout);
            frame_free(&first);
            return st;
        }
    }
    if (c->json)
        fputs("]}\n", stdout);
    if (rep != first)
        frame_free(&rep);
    frame_free(&first);
    return 0;
}

static int do_fits(ctl_t *c, const char *sweep)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__FitsRequest fr = REGMIX__FITS_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    fr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_FITS;
    req.fits = &fr;
    int st = client_call(c->client, &req, REGMIX__ENVELOPE__BODY_FITS_REPLY, &rep);
    if (st)
        return st;
    const Regmix__FitsReply *f = rep->fits_reply;
    if (c->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < f->n_fits; i++)
            json_array_append_new(a, render_fit_json(f->fits[i]));
        render_print_json(json_pack("{s:s, s:o}", "sweep", sweep, "fits", a));
    } else {
        printf("%4s %6s %-8s %9s %9s %11s %9s %10s %10s %10s %9s %-12s\n", "FIT", "RUNS", "MODEL",
               "SPEARMAN", "PEARSON", "MSE", "L1_MOVED", "PREDICTED", "LO95", "HI95", "GAIN",
               "VERDICT");
        for (size_t i = 0; i < f->n_fits; i++) {
            const Regmix__FitInfo *x = f->fits[i];
            const Regmix__ProposalEstimate *e = x->estimate;
            printf("%4u %6u %-8s %9.4f %9.4f %11.4g %9.4f %10.5g %10.5g %10.5g %9.3g %-12s\n",
                   x->fit_no, x->runs_used, render_str_or(x->model, "-"),
                   x->cv ? x->cv->spearman : NAN, x->cv ? x->cv->pearson : NAN,
                   x->cv ? x->cv->mse : NAN, x->l1_moved, x->predicted, e ? e->predicted_lo : NAN,
                   e ? e->predicted_hi : NAN, e ? e->expected_gain : NAN,
                   render_str_or(e ? e->verdict : NULL, "-"));
        }
    }
    frame_free(&rep);
    return 0;
}

static int do_mixture(ctl_t *c, const char *sweep, const char *out)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__MixtureRequest mr = REGMIX__MIXTURE_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    mr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_MIXTURE;
    req.mixture = &mr;
    int st = client_call(c->client, &req, REGMIX__ENVELOPE__BODY_MIXTURE_REPLY, &rep);
    if (st)
        return st;
    const Regmix__MixtureReply *m = rep->mixture_reply;
    if (!m->has_fit || !m->fit) {
        fprintf(stderr, "regmixctl mixture: sweep %s has no fit yet\n", sweep);
        frame_free(&rep);
        return 1;
    }
    const Regmix__FitInfo *f = m->fit;
    if (c->json && !out) {
        render_print_json(json_pack("{s:s, s:b, s:o, s:o}", "sweep", sweep, "converged",
                                    (int)m->converged, "fit", render_fit_json(f), "prior",
                                    render_weights_json(m->prior, m->n_prior)));
        frame_free(&rep);
        return 0;
    }
    FILE *fo = stdout;
    if (out) {
        fo = fopen(out, "w");
        if (!fo) {
            fprintf(stderr, "regmixctl mixture: cannot write %s: %s\n", out, strerror(errno));
            frame_free(&rep);
            return 1;
        }
    }
    fprintf(fo,
            "# proposed mixture of sweep %s (fit %u on %u runs, model %s)\n"
            "sweep: %s\nconverged: %s\nfit: %u\nruns_used: %u\nmodel: %s\npredicted: %.10g\n"
            "spearman: %.6g\nmixture:\n",
            sweep, f->fit_no, f->runs_used, render_str_or(f->model, "?"), sweep,
            m->converged ? "true" : "false", f->fit_no, f->runs_used, render_str_or(f->model, "?"),
            f->predicted, f->cv ? f->cv->spearman : NAN);
    /* The estimate at the proposal (issue 10), where the fit recorded it: after `mixture:`, so
     * the lines above keep their places for whoever reads them by position. */
    const Regmix__ProposalEstimate *e = f->estimate;
    for (size_t i = 0; i < f->n_proposal; i++)
        fprintf(fo, "  %s: %.10g\n", render_str_or(f->proposal[i]->domain, "?"),
                f->proposal[i]->weight);
    if (e && isfinite(e->predicted_lo) && isfinite(e->predicted_hi))
        fprintf(fo,
                "# 95 %% interval of the objective of one run at this mixture\n"
                "predicted_interval: [%.10g, %.10g]\n",
                e->predicted_lo, e->predicted_hi);
    if (e && e->verdict && *e->verdict)
        fprintf(fo, "verdict: %s\n", e->verdict);
    if (e && isfinite(e->expected_gain))
        fprintf(fo, "expected_gain: %.10g\n", e->expected_gain);
    int bad = 0;
    if (out) {
        bad = fclose(fo) != 0;
        if (bad)
            fprintf(stderr, "regmixctl mixture: writing %s failed\n", out);
        else if (c->json)
            render_print_json(json_pack("{s:s, s:s}", "sweep", sweep, "out", out));
    }
    frame_free(&rep);
    return bad;
}

static int do_launch(ctl_t *c, const char *sweep, int launch)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__LaunchRequest lr = REGMIX__LAUNCH_REQUEST__INIT;
    Regmix__TargetRequest tr = REGMIX__TARGET_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    if (launch) {
        lr.sweep_id = (char *)sweep;
        req.body_case = REGMIX__ENVELOPE__BODY_LAUNCH;
        req.launch = &lr;
    } else {
        tr.sweep_id = (char *)sweep;
        req.body_case = REGMIX__ENVELOPE__BODY_TARGET;
        req.target = &tr;
    }
    int st = client_call(c->client, &req,
                         launch ? REGMIX__ENVELOPE__BODY_LAUNCH_REPLY
                                : REGMIX__ENVELOPE__BODY_TARGET_REPLY,
                         &rep);
    if (st)
        return st;
    if (launch)
        render_targets(c->json, sweep, rep->launch_reply->targets, rep->launch_reply->n_targets);
    else
        render_targets(c->json, sweep, rep->target_reply->targets, rep->target_reply->n_targets);
    frame_free(&rep);
    return 0;
}

static int do_workers(ctl_t *c)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__WorkersRequest wr = REGMIX__WORKERS_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    req.body_case = REGMIX__ENVELOPE__BODY_WORKERS;
    req.workers = &wr;
    int st = client_call(c->client, &req, REGMIX__ENVELOPE__BODY_WORKERS_REPLY, &rep);
    if (st)
        return st;
    const Regmix__WorkersReply *r = rep->workers_reply;
    if (c->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < r->n_workers; i++) {
            const Regmix__WorkerInfo *x = r->workers[i];
            json_t *g = json_array();
            for (size_t j = 0; j < x->n_gpus; j++)
                json_array_append_new(
                        g, json_pack("{s:i, s:s, s:I, s:s}", "index", (int)x->gpus[j]->index,
                                     "name", render_str_or(x->gpus[j]->name, ""), "memory_bytes",
                                     (json_int_t)x->gpus[j]->memory_bytes, "uuid",
                                     render_str_or(x->gpus[j]->uuid, "")));
            json_array_append_new(
                    a,
                    json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:o, s:i, s:I, s:I, s:I}", "worker",
                              render_str_or(x->worker_id, ""), "host", render_str_or(x->host, ""),
                              "state", render_str_or(x->state, ""), "slots", (int)x->slots,
                              "free_slots", (int)x->free_slots, "running", (int)x->running, "gpus",
                              g, "consecutive_failures", (int)x->consecutive_failures,
                              "last_seen_unix_ms", (json_int_t)x->last_seen_unix_ms, "done",
                              (json_int_t)x->done, "failed", (json_int_t)x->failed));
        }
        render_print_json(json_pack("{s:o}", "workers", a));
    } else {
        printf("%-32s %-12s %5s %5s %7s %5s %8s %7s\n", "WORKER", "STATE", "SLOTS", "FREE",
               "RUNNING", "GPUS", "DONE", "FAILED");
        for (size_t i = 0; i < r->n_workers; i++) {
            const Regmix__WorkerInfo *x = r->workers[i];
            printf("%-32s %-12s %5u %5u %7u %5zu %8" PRIu64 " %7" PRIu64 "\n",
                   render_str_or(x->worker_id, "-"), render_str_or(x->state, "-"), x->slots,
                   x->free_slots, x->running, x->n_gpus, x->done, x->failed);
        }
    }
    frame_free(&rep);
    return 0;
}

static int do_drain(ctl_t *c, const char *worker)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__DrainRequest dr = REGMIX__DRAIN_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    dr.worker_id = (char *)worker;
    req.body_case = REGMIX__ENVELOPE__BODY_DRAIN_WORKER;
    req.drain_worker = &dr;
    int st = client_call(c->client, &req, REGMIX__ENVELOPE__BODY_DRAIN_REPLY, &rep);
    if (st)
        return st;
    int ok = rep->drain_reply->ok;
    if (c->json)
        render_print_json(json_pack("{s:s, s:b}", "worker", worker, "ok", ok));
    else
        printf("%s %s\n", worker, ok ? "draining" : "not drained");
    frame_free(&rep);
    return ok ? 0 : 1;
}
static int watch_probe(ctl_t *c, const char *sweep, Regmix__Envelope **ret_env)
{
    Regmix__Envelope req;
    Regmix__StatusRequest sr = REGMIX__STATUS_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    sr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_STATUS;
    req.status = &sr;
    return client_call(c->client, &req, REGMIX__ENVELOPE__BODY_STATUS_REPLY, ret_env);
}

static int do_watch(ctl_t *c, const char *sweep)
{
    render_watch_t v = {.tty = isatty(STDOUT_FILENO)};
    Regmix__Envelope req;
    Regmix__WatchRequest wr = REGMIX__WATCH_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    wr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_WATCH;
    req.watch = &wr;
    uint64_t id = client_send(c->client, &req);
    if (!id)
        return 1;
    int first = 1, status = 0;
    for (;;) {
        Regmix__Envelope *env = NULL;
        int rc = client_wait(c->client, 0, client_timeout(c->client), &env);
        if (rc == -ETIMEDOUT) {
            /* Quiet: is the coordinator still there, and is the sweep still going? */
            Regmix__Envelope *st = NULL;
            int e = watch_probe(c, sweep, &st);
            if (e) {
                status = e;
                break;
            }
            const Regmix__SweepInfo *s = st->status_reply->sweep;
            if (s)
                render_watch(&v, c->json, s, "status", NULL);
            int fin = s && sweep_state_final(s->state);
            frame_free(&st);
            if (fin)
                break;
            if (first) {
                first = 0;
                id = client_send(c->client, &req); /* the watch request may have been lost: again */
                if (!id)
                    return 1;
            }
            continue;
        }
        if (rc < 0) {
            fprintf(stderr, "regmixctl watch: receiving failed: %s\n", zmq_strerror(-rc));
            status = 1;
            break;
        }
        if (env->body_case == REGMIX__ENVELOPE__BODY_ERROR) {
            status = client_error_exit(c->client, env);
            frame_free(&env);
            break;
        }
        if (env->body_case == REGMIX__ENVELOPE__BODY_STATUS_REPLY) {
            frame_free(&env); /* a late answer to a probe */
            continue;
        }
        if (env->body_case != REGMIX__ENVELOPE__BODY_WATCH_EVENT) {
            frame_free(&env);
            continue;
        }
        first = 0;
        const Regmix__WatchEvent *ev = env->watch_event;
        render_watch(&v, c->json, ev->sweep, ev->kind, ev->text);
        int fin = ev->final || (ev->sweep && sweep_state_final(ev->sweep->state));
        frame_free(&env);
        if (fin)
            break;
    }
    if (v.tty && v.drew && !c->json)
        putchar('\n');
    return status;
}
static const struct {
    const char *name;
    const char *args;
    const char *what;
} client_cmds[] = {
        {"submit", "SPEC.yaml [--priority N]", "submit a sweep; prints its id"},
        {"list", "", "list sweeps"},
        {"status", "SWEEP",
         "state and run counts of a sweep, and its latest proposal: the predicted objective with "
         "the 95 % interval of a run there, the verdict, the expected gain of one more run"},
        {"watch", "SWEEP", "follow a sweep until it ends (a progress bar on a terminal)"},
        {"cancel", "SWEEP [--run N | --target]",
         "cancel a sweep (its runs and target launches), one run, or only its target launches"},
        {"results", "SWEEP [--csv]",
         "one CSV row per done run: run,attempt,worker,weights,loss:NAME..."},
        {"fits", "SWEEP",
         "every refit of a sweep with its cross-validated metrics, predicted objective and its "
         "95 % interval (LO95, HI95), expected gain and verdict"},
        {"mixture", "SWEEP [--out FILE.yaml]", "the current proposed mixture as YAML"},
        {"launch", "SWEEP", "launch the target training now"},
        {"target", "SWEEP", "state and losses of the target runs"},
        {"workers", "", "workers known to the coordinator"},
        {"report", "SWEEP --out FILE.html",
         "write the sweep's plots and numbers as one self-contained HTML file"},
        {"drain", "WORKER", "give a worker no new jobs"},
};

static void client_usage(FILE *f, int idx)
{
    const char *what = client_cmds[idx].what;
    fprintf(f, "usage: regmixctl [--coordinator ENDPOINT] %s %s [--json] [--timeout S]\n\n%c%s.\n",
            client_cmds[idx].name, client_cmds[idx].args, toupper((unsigned char)what[0]),
            what + 1);
    fputs("\nOptions:\n"
          "  --json       print one JSON document (watch: one JSON object per event line)\n"
          "  --timeout S  seconds to wait for the coordinator's reply (default 5)\n"
          "  -h, --help   show this help\n",
          f);
    const char *name = client_cmds[idx].name;
    if (strcmp(name, "submit") == 0)
        fputs("  --priority N  higher runs first (default 0)\n", f);
    if (strcmp(name, "cancel") == 0)
        fputs("  --run N      cancel only run N (its index in the sweep)\n"
              "  --target     cancel only the target launches (scancel of the Slurm job,\n"
              "               kubectl delete of the MPIJob, SIGTERM to mpirun or the command)\n",
              f);
    if (strcmp(name, "results") == 0)
        fputs("  --csv        CSV output (the default without --json)\n", f);
    if (strcmp(name, "mixture") == 0)
        fputs("  --out FILE   write the mixture YAML to FILE\n", f);
    if (strcmp(name, "report") == 0)
        fputs("  --out FILE   the HTML file to write (required; replaced atomically); it names\n"
              "               no external URL and opens from disk offline (docs/dashboard.md)\n",
              f);
    fprintf(f, "\nExample:\n  regmixctl --coordinator tcp://127.0.0.1:5556 %s%s\n", name,
            strcmp(name, "submit") == 0    ? " sweep.yaml"
            : strcmp(name, "list") == 0    ? " --json"
            : strcmp(name, "workers") == 0 ? ""
            : strcmp(name, "drain") == 0   ? " node17:gpu0"
            : strcmp(name, "results") == 0 ? " 1a2b3c --csv > results.csv"
            : strcmp(name, "report") == 0  ? " 1a2b3c --out report.html"
                                           : " 1a2b3c");
}

static int parse_u64(const char *s, uint64_t *ret)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-')
        return -EINVAL;
    *ret = v;
    return 0;
}

int cmd_client(const char *endpoint, const curve_client_t *curve, int argc, char **argv)
{
    int idx = -1;
    for (size_t i = 0; i < sizeof client_cmds / sizeof *client_cmds; i++)
        if (strcmp(argv[0], client_cmds[i].name) == 0)
            idx = (int)i;
    if (idx < 0) {
        fprintf(stderr, "regmixctl: unknown command '%s' (see regmixctl --help)\n", argv[0]);
        return 2;
    }
    ctl_t c = {.cmd = argv[0]};
    double timeout_s = 5.0;
    const char *pos[2] = {NULL, NULL};
    int npos = 0, has_run = 0, priority = 0, cancel_target = 0;
    uint64_t run = 0;
    const char *out = NULL;
    const char *te = getenv("REGMIX_TIMEOUT");
    if (te && *te)
        timeout_s = atof(te) > 0 ? atof(te) : timeout_s;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            client_usage(stdout, idx);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            c.json = 1;
        } else if (strcmp(a, "--csv") == 0 && strcmp(c.cmd, "results") == 0) {
            c.json = 0;
        } else if (strcmp(a, "--timeout") == 0) {
            char *end = NULL;
            double t = val ? strtod(val, &end) : 0;
            if (!val || *end || !(t > 0) || t > 86400) {
                fprintf(stderr, "regmixctl %s: --timeout needs seconds in (0, 86400]\n", c.cmd);
                return 2;
            }
            timeout_s = t;
            i++;
        } else if (strcmp(a, "--run") == 0 && strcmp(c.cmd, "cancel") == 0) {
            if (!val || parse_u64(val, &run) < 0) {
                fprintf(stderr, "regmixctl cancel: --run needs a run index\n");
                return 2;
            }
            has_run = 1;
            i++;
        } else if (strcmp(a, "--target") == 0 && strcmp(c.cmd, "cancel") == 0) {
            cancel_target = 1;
        } else if (strcmp(a, "--out") == 0 &&
                   (strcmp(c.cmd, "mixture") == 0 || strcmp(c.cmd, "report") == 0)) {
            if (!val) {
                fprintf(stderr, "regmixctl %s: --out needs a file\n", c.cmd);
                return 2;
            }
            out = val;
            i++;
        } else if (strcmp(a, "--priority") == 0 && strcmp(c.cmd, "submit") == 0) {
            char *end = NULL;
            long p = val ? strtol(val, &end, 10) : 0;
            if (!val || *end || p < -1000000 || p > 1000000) {
                fprintf(stderr, "regmixctl submit: --priority needs an integer\n");
                return 2;
            }
            priority = (int)p;
            i++;
        } else if (strncmp(a, "--curve-", 8) == 0 || strncmp(a, "--coordinator", 13) == 0) {
            fprintf(stderr,
                    "regmixctl %s: %s is an option of regmixctl itself: put it before the "
                    "command (regmixctl %s ... %s)\n",
                    c.cmd, a, a, c.cmd);
            return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "regmixctl %s: unknown option '%s' (see regmixctl %s --help)\n", c.cmd,
                    a, c.cmd);
            return 2;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "regmixctl %s: unexpected argument '%s'\n", c.cmd, a);
            return 2;
        }
    }
    int need = strcmp(c.cmd, "list") == 0 || strcmp(c.cmd, "workers") == 0 ? 0 : 1;
    if (npos != need) {
        fprintf(stderr, "regmixctl %s: %s\n", c.cmd,
                npos < need ? "missing argument" : "too many arguments");
        client_usage(stderr, idx);
        return 2;
    }
    if (strcmp(c.cmd, "report") == 0 && !out) {
        fprintf(stderr, "regmixctl report: --out FILE.html is required\n");
        client_usage(stderr, idx);
        return 2;
    }
    int rc = client_new(endpoint, curve, c.cmd, timeout_s, &c.client);
    if (rc < 0) {
        fprintf(stderr, "regmixctl %s: cannot connect to %s: %s\n", c.cmd, endpoint,
                zmq_strerror(-rc));
        return rc == -EINVAL || rc == -EPROTONOSUPPORT ? 2 : 1;
    }
    int st;
    if (strcmp(c.cmd, "submit") == 0)
        st = do_submit(&c, pos[0], priority);
    else if (strcmp(c.cmd, "list") == 0)
        st = do_list(&c);
    else if (strcmp(c.cmd, "status") == 0)
        st = do_status(&c, pos[0]);
    else if (strcmp(c.cmd, "watch") == 0)
        st = do_watch(&c, pos[0]);
    else if (strcmp(c.cmd, "cancel") == 0)
        st = has_run && cancel_target ? client_usage_error("cancel", "--run and --target")
                                      : do_cancel(&c, pos[0], has_run, run, cancel_target);
    else if (strcmp(c.cmd, "results") == 0)
        st = do_results(&c, pos[0]);
    else if (strcmp(c.cmd, "fits") == 0)
        st = do_fits(&c, pos[0]);
    else if (strcmp(c.cmd, "mixture") == 0)
        st = do_mixture(&c, pos[0], out);
    else if (strcmp(c.cmd, "launch") == 0)
        st = do_launch(&c, pos[0], 1);
    else if (strcmp(c.cmd, "target") == 0)
        st = do_launch(&c, pos[0], 0);
    else if (strcmp(c.cmd, "workers") == 0)
        st = do_workers(&c);
    else if (strcmp(c.cmd, "report") == 0)
        st = cmd_report_sweep(c.client, pos[0], out);
    else
        st = do_drain(&c, pos[0]);
    client_destroy(&c.client);
    return st;
}