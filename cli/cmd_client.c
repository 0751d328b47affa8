/*
 * cmd_client: the regmixctl commands that talk to a coordinator (DESIGN.md §4.4).
 *
 * Each command opens a DEALER to the client endpoint, sends one request Envelope and waits for
 * the reply whose reply_to matches, at most --timeout seconds (default 5): an unreachable
 * coordinator is a clear error and exit 1, never a hang. The DEALER is a CURVE client when keys
 * are given (curve.h); since a refused handshake looks like silence, the socket's connection
 * events then say why no reply came (nothing listening, CURVE required or not used, our key
 * refused, the handshake failed). `watch` reads WatchEvents until the
 * final one; when the stream goes quiet for a timeout it probes with a StatusRequest, so a dead
 * coordinator ends the watch with an error too.
 *
 * Output: human tables by default, one JSON document with --json (jansson). An Error reply
 * prints the coordinator's message on stderr and exits 2 for BAD_REQUEST / NOT_FOUND (the
 * user's input was wrong), 1 otherwise.
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

#include "clock.h"
#include "commands.h"
#include "frame.h"
#include "states.h"

#define CLIENT_SPEC_MAX (1024 * 1024)

typedef struct client {
    const char *endpoint;
    const curve_client_t *curve;
    const char *cmd;
    double timeout_s;
    int json;
    void *zctx;
    void *sock;
    void *mon; /* PAIR receiving the DEALER's connection events, or NULL */
    uint64_t next_id;
} client_t;

/* ---- names and JSON helpers ------------------------------------------------------------------- */

/* Sweep states print by common/states.h's table, the same words the coordinator stores. */
static const char *sweep_state_name(Regmix__SweepState s)
{
    return states_sweep_name((sweep_state_t)s);
}

static int sweep_state_final(Regmix__SweepState s)
{
    return s != REGMIX__SWEEP_STATE__SWEEP_STATE_UNSPECIFIED &&
           !states_sweep_open((sweep_state_t)s);
}

static const char *str_or(const char *s, const char *dflt)
{
    return s && *s ? s : dflt;
}

static uint32_t counts_total(const Regmix__RunCounts *c)
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
                     (int)counts_total(c));
}

static json_t *sweep_json(const Regmix__SweepInfo *s)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:i, s:I, s:I, s:i, s:b, s:i}", "sweep",
                     str_or(s->sweep_id, ""), "name", str_or(s->name, ""), "state",
                     sweep_state_name(s->state), "runs", counts_json(s->runs), "priority",
                     (int)s->priority, "created_unix_ms", (json_int_t)s->created_unix_ms,
                     "updated_unix_ms", (json_int_t)s->updated_unix_ms, "fits", (int)s->fits,
                     "converged", (int)s->converged, "converged_after_runs",
                     (int)s->converged_after_runs);
}

/* A number, or null where it is not finite (jansson refuses NaN and would drop the whole object:
 * a fit's first l1_moved, a target that has not reported yet). */
static json_t *num_json(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *weights_json(Regmix__DomainWeight **w, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, str_or(w[i]->domain, "?"), num_json(w[i]->weight));
    return o;
}

static json_t *values_json(Regmix__DomainValue **v, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, str_or(v[i]->name, "?"), num_json(v[i]->value));
    return o;
}

static json_t *metrics_json(const Regmix__Metrics *m)
{
    if (!m)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:i}", "spearman", num_json(m->spearman), "pearson",
                     num_json(m->pearson), "mse", num_json(m->mse), "r2", num_json(m->r2), "folds",
                     (int)m->folds);
}

static json_t *fit_json(const Regmix__FitInfo *f)
{
    return json_pack("{s:i, s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:I}", "fit", (int)f->fit_no,
                     "runs_used", (int)f->runs_used, "model", str_or(f->model, ""), "cv",
                     metrics_json(f->cv), "proposal", weights_json(f->proposal, f->n_proposal),
                     "predicted", num_json(f->predicted), "l1_moved", num_json(f->l1_moved),
                     "seconds", num_json(f->seconds), "created_unix_ms",
                     (json_int_t)f->created_unix_ms);
}

static json_t *target_json(const Regmix__TargetInfo *t)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:o, s:o, s:o, s:I, s:o, s:s}", "sweep",
                     str_or(t->sweep_id, ""), "role", str_or(t->role, ""), "state",
                     str_or(t->state, ""), "launcher", str_or(t->launcher, ""), "ranks",
                     (int)t->ranks, "pid", (json_int_t)t->pid, "log", str_or(t->log_path, ""),
                     "weights", weights_json(t->weights, t->n_weights), "losses",
                     values_json(t->losses, t->n_losses), "objective", num_json(t->objective),
                     "step", (json_int_t)t->step, "loss", num_json(t->loss), "detail",
                     str_or(t->detail, ""));
}

static void print_json(json_t *o)
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

/* ---- transport -------------------------------------------------------------------------------- */

static int client_open(client_t *c)
{
    c->zctx = zmq_ctx_new();
    if (!c->zctx)
        return -errno;
    c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (!c->sock)
        return -errno;
    int rc = frame_socket_setup(c->sock, 0);
    if (rc == 0)
        rc = curve_client_apply(c->curve, c->sock);
    if (rc < 0)
        return rc;
    /* Connection events, to say why a coordinator stays silent (client_why_silent); without
     * them the message is only less precise. */
    const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(c->sock, "inproc://regmixctl-monitor", events) == 0) {
        int zero = 0;
        c->mon = zmq_socket(c->zctx, ZMQ_PAIR);
        if (c->mon && (zmq_setsockopt(c->mon, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
                       zmq_connect(c->mon, "inproc://regmixctl-monitor") != 0)) {
            zmq_close(c->mon);
            c->mon = NULL;
        }
    }
    if (zmq_connect(c->sock, c->endpoint) != 0)
        return -errno;
    c->next_id = (uint64_t)clock_unix_ms() << 8;
    return 0;
}

static void client_close(client_t *c)
{
    if (c->mon) {
        zmq_socket_monitor(c->sock, NULL, 0);
        zmq_close(c->mon);
        c->mon = NULL;
    }
    if (c->sock)
        zmq_close(c->sock);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    c->sock = c->zctx = NULL;
}

/*
 * Why the coordinator stayed silent, from the connection events seen so far: a CURVE handshake
 * it refused looks like no answer at all to the request itself. Returns a static string.
 */
static const char *client_why_silent(client_t *c)
{
    static char why[256];
    int curve = c->curve && c->curve->enabled;
    int connected = 0, ok = 0, closed = 0, no_detail = 0, auth = 0, proto = 0;
    unsigned auth_status = 0, proto_err = 0;
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (!c->mon || zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        uint16_t ev = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&m) >= 6) {
            memcpy(&ev, zmq_msg_data(&m), 2);
            memcpy(&value, (const char *)zmq_msg_data(&m) + 2, 4);
        }
        int more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&m);
            more = zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&m);
            zmq_msg_close(&m);
        }
        connected |= ev == ZMQ_EVENT_CONNECTED;
        ok |= ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
        closed |= ev == ZMQ_EVENT_DISCONNECTED;
        no_detail |= ev == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
        if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            auth = 1;
            auth_status = value;
        }
        if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            proto = 1;
            proto_err = value;
        }
    }
    if (auth)
        snprintf(why, sizeof why,
                 "it refused our CURVE key (status %u): is our public key on its --curve-allow "
                 "list?",
                 auth_status);
    else if (proto && proto_err == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        snprintf(why, sizeof why, "%s",
                 curve ? "it does not use CURVE: connect without --curve-server-key and "
                         "$REGMIX_CURVE_SERVER_KEY"
                       : "it requires CURVE: give --curve-server-key and --curve-secret-key (or "
                         "$REGMIX_CURVE_SERVER_KEY and $REGMIX_CURVE_SECRET_KEY)");
    else if (proto || no_detail || (curve && connected && closed && !ok))
        snprintf(why, sizeof why, "%s",
                 curve ? "the CURVE handshake failed: is --curve-server-key its public key?"
                       : "the handshake failed: is this a regmix-coordinator's client endpoint?");
    else if (ok)
        snprintf(why, sizeof why, "connected, but no answer: is it overloaded? (see --timeout)");
    else if (c->mon && !connected)
        snprintf(why, sizeof why,
                 "nothing accepted the connection: is it running? (see "
                 "--coordinator)");
    else
        snprintf(why, sizeof why,
                 "is it running? does it require CURVE keys? see --coordinator, "
                 "--curve-server-key, --curve-secret-key, --timeout");
    return why;
}

/* Sends a request body; returns its message id (0 on failure, with a message printed). */
static uint64_t client_send(client_t *c, Regmix__Envelope *env)
{
    env->id = ++c->next_id;
    int rc = frame_send(c->sock, NULL, 0, env, ZMQ_DONTWAIT);
    if (rc < 0) {
        fprintf(stderr, "regmixctl %s: cannot send to %s: %s\n", c->cmd, c->endpoint,
                zmq_strerror(-rc));
        return 0;
    }
    return env->id;
}

/*
 * Waits up to `timeout_s` for a message answering `id` (or, when `id` is 0, any message).
 * Returns 0 and *ret_env, -ETIMEDOUT, or another -errno. Messages answering other ids are
 * dropped.
 */
static int client_wait(client_t *c, uint64_t id, double timeout_s, Regmix__Envelope **ret_env)
{
    int64_t deadline = clock_mono_ms() + (int64_t)(timeout_s * 1000.0);
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        zmq_pollitem_t pi = {c->sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&pi, 1, (long)left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            continue;
        frame_msg_t msg;
        int rc = frame_recv(c->sock, 0, ZMQ_DONTWAIT, &msg);
        if (rc == -EAGAIN)
            continue;
        if (rc < 0)
            return rc;
        if (!msg.env) {
            fprintf(stderr, "regmixctl %s: ignoring a malformed reply: %s\n", c->cmd,
                    msg.why ? msg.why : "?");
            continue;
        }
        if (id && msg.env->reply_to != id) {
            frame_free(&msg.env);
            continue;
        }
        *ret_env = msg.env;
        return 0;
    }
}

static int client_error_exit(client_t *c, const Regmix__Envelope *env)
{
    const Regmix__Error *e = env->error;
    fprintf(stderr, "regmixctl %s: %s\n", c->cmd,
            str_or(e ? e->message : NULL, "the coordinator reported an error"));
    if (e && (e->code == REGMIX__ERROR_CODE__ERROR_CODE_BAD_REQUEST ||
              e->code == REGMIX__ERROR_CODE__ERROR_CODE_NOT_FOUND))
        return 2;
    return 1;
}

/*
 * Sends `req` and waits for its reply of body `want`. Returns 0 with *ret_env, or the exit
 * status to return (1 or 2) after printing why.
 */
static int client_call(client_t *c,
                       Regmix__Envelope *req,
                       Regmix__Envelope__BodyCase want,
                       Regmix__Envelope **ret_env)
{
    uint64_t id = client_send(c, req);
    if (!id)
        return 1;
    Regmix__Envelope *env = NULL;
    int rc = client_wait(c, id, c->timeout_s, &env);
    if (rc == -ETIMEDOUT) {
        fprintf(stderr, "regmixctl %s: no reply from the coordinator at %s within %.3g s: %s\n",
                c->cmd, c->endpoint, c->timeout_s, client_why_silent(c));
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "regmixctl %s: receiving from %s failed: %s\n", c->cmd, c->endpoint,
                zmq_strerror(-rc));
        return 1;
    }
    if (env->body_case == REGMIX__ENVELOPE__BODY_ERROR) {
        int st = client_error_exit(c, env);
        frame_free(&env);
        return st;
    }
    if (env->body_case != want) {
        fprintf(stderr, "regmixctl %s: unexpected reply '%s' (wanted '%s')\n", c->cmd,
                frame_body_name(env->body_case), frame_body_name(want));
        frame_free(&env);
        return 1;
    }
    *ret_env = env;
    return 0;
}

/* ---- commands --------------------------------------------------------------------------------- */

static int do_submit(client_t *c, const char *path, int priority)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "regmixctl submit: cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }
    char *buf = malloc(CLIENT_SPEC_MAX + 1);
    size_t n = buf ? fread(buf, 1, CLIENT_SPEC_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n > CLIENT_SPEC_MAX) {
        fprintf(stderr, "regmixctl submit: %s is larger than %d bytes\n", path, CLIENT_SPEC_MAX);
        free(buf);
        return 2;
    }
    buf[n] = '\0';
    Regmix__Envelope req, *rep = NULL;
    Regmix__SubmitRequest sr = REGMIX__SUBMIT_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    sr.spec_yaml = buf;
    const char *slash = strrchr(path, '/');
    sr.spec_name = (char *)(slash ? slash + 1 : path);
    sr.priority = priority;
    req.body_case = REGMIX__ENVELOPE__BODY_SUBMIT;
    req.submit = &sr;
    int st = client_call(c, &req, REGMIX__ENVELOPE__BODY_SUBMIT_REPLY, &rep);
    free(buf);
    if (st)
        return st;
    if (c->json)
        print_json(json_pack("{s:s, s:i}", "sweep", str_or(rep->submit_reply->sweep_id, ""), "runs",
                             (int)rep->submit_reply->runs));
    else
        printf("%s\n", str_or(rep->submit_reply->sweep_id, ""));
    frame_free(&rep);
    return 0;
}

static void print_sweep_line(const Regmix__SweepInfo *s)
{
    const Regmix__RunCounts *r = s->runs;
    uint32_t total = counts_total(r);
    printf("%-24s %-20s %-10s %6u/%-6u queued=%u leased=%u running=%u failed=%u dead=%u "
           "cancelled=%u fits=%u\n",
           str_or(s->sweep_id, "-"), str_or(s->name, "-"), sweep_state_name(s->state),
           r ? r->done : 0, total, r ? r->queued : 0, r ? r->leased : 0, r ? r->running : 0,
           r ? r->failed : 0, r ? r->dead : 0, r ? r->cancelled : 0, s->fits);
}

static int do_status(client_t *c, const char *sweep)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__StatusRequest sr = REGMIX__STATUS_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    sr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_STATUS;
    req.status = &sr;
    int st = client_call(c, &req, REGMIX__ENVELOPE__BODY_STATUS_REPLY, &rep);
    if (st)
        return st;
    const Regmix__SweepInfo *s = rep->status_reply->sweep;
    if (!s) {
        fprintf(stderr, "regmixctl status: the reply has no sweep\n");
        frame_free(&rep);
        return 1;
    }
    if (c->json) {
        print_json(sweep_json(s));
    } else {
        const Regmix__RunCounts *r = s->runs;
        Regmix__RunCounts z = REGMIX__RUN_COUNTS__INIT;
        if (!r)
            r = &z;
        printf("sweep     %s\nname      %s\nstate     %s\nruns      %u: queued %u, leased %u, "
               "running %u, done %u, failed %u, dead %u, cancelled %u\nfits      %u\n",
               str_or(s->sweep_id, "-"), str_or(s->name, "-"), sweep_state_name(s->state),
               counts_total(r), r->queued, r->leased, r->running, r->done, r->failed, r->dead,
               r->cancelled, s->fits);
        if (s->converged)
            printf("converged after %u runs\n", s->converged_after_runs);
    }
    frame_free(&rep);
    return 0;
}

static int do_list(client_t *c)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__ListRequest lr = REGMIX__LIST_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    req.body_case = REGMIX__ENVELOPE__BODY_LIST;
    req.list = &lr;
    int st = client_call(c, &req, REGMIX__ENVELOPE__BODY_LIST_REPLY, &rep);
    if (st)
        return st;
    const Regmix__ListReply *l = rep->list_reply;
    if (c->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < l->n_sweeps; i++)
            json_array_append_new(a, sweep_json(l->sweeps[i]));
        print_json(json_pack("{s:o}", "sweeps", a));
    } else {
        printf("%-24s %-20s %-10s %13s\n", "SWEEP", "NAME", "STATE", "DONE/TOTAL");
        for (size_t i = 0; i < l->n_sweeps; i++)
            print_sweep_line(l->sweeps[i]);
    }
    frame_free(&rep);
    return 0;
}

static int do_cancel(client_t *c, const char *sweep, int has_run, uint64_t run)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__CancelRequest cr = REGMIX__CANCEL_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    cr.sweep_id = (char *)sweep;
    cr.has_run = has_run;
    cr.run_index = run;
    req.body_case = REGMIX__ENVELOPE__BODY_CANCEL_SWEEP;
    req.cancel_sweep = &cr;
    int st = client_call(c, &req, REGMIX__ENVELOPE__BODY_CANCEL_REPLY, &rep);
    if (st)
        return st;
    if (c->json)
        print_json(json_pack("{s:s, s:i}", "sweep", sweep, "cancelled",
                             (int)rep->cancel_reply->cancelled));
    else
        printf("cancelled %u run(s) of %s\n", rep->cancel_reply->cancelled, sweep);
    frame_free(&rep);
    return 0;
}

/* Writes one CSV field, quoted when it needs to be (RFC 4180). */
static void csv_field(FILE *f, const char *s)
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

static int do_results(client_t *c, const char *sweep)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__ResultsRequest rr = REGMIX__RESULTS_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    rr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_RESULTS;
    req.results = &rr;
    int st = client_call(c, &req, REGMIX__ENVELOPE__BODY_RESULTS_REPLY, &rep);
    if (st)
        return st;
    const Regmix__ResultsReply *r = rep->results_reply;
    if (c->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < r->n_results; i++) {
            const Regmix__RunResult *x = r->results[i];
            json_array_append_new(
                    a, json_pack("{s:I, s:i, s:s, s:o, s:o, s:o}", "run", (json_int_t)x->run_index,
                                 "attempt", (int)x->attempt_no, "worker", str_or(x->worker_id, ""),
                                 "weights", weights_json(x->weights, x->n_weights), "losses",
                                 values_json(x->losses, x->n_losses), "seconds",
                                 num_json(x->seconds)));
        }
        print_json(json_pack("{s:s, s:o}", "sweep", sweep, "results", a));
        frame_free(&rep);
        return 0;
    }
    fputs("run,attempt,worker", stdout);
    for (size_t d = 0; d < r->n_domains; d++) {
        fputc(',', stdout);
        csv_field(stdout, r->domains[d]);
    }
    for (size_t k = 0; k < r->n_loss_names; k++) {
        fputc(',', stdout);
        csv_field(stdout, r->loss_names[k]);
    }
    fputc('\n', stdout);
    for (size_t i = 0; i < r->n_results; i++) {
        const Regmix__RunResult *x = r->results[i];
        printf("%" PRIu64 ",%u,", x->run_index, x->attempt_no);
        csv_field(stdout, str_or(x->worker_id, ""));
        for (size_t d = 0; d < r->n_domains; d++) {
            double v = 0;
            for (size_t j = 0; j < x->n_weights; j++)
                if (x->weights[j]->domain && strcmp(x->weights[j]->domain, r->domains[d]) == 0)
                    v = x->weights[j]->weight;
            printf(",%.10g", v);
        }
        for (size_t k = 0; k < r->n_loss_names; k++) {
            int found = 0;
            for (size_t j = 0; j < x->n_losses && !found; j++) {
                if (x->losses[j]->name && strcmp(x->losses[j]->name, r->loss_names[k]) == 0) {
                    printf(",%.10g", x->losses[j]->value);
                    found = 1;
                }
            }
            if (!found)
                fputc(',', stdout);
        }
        fputc('\n', stdout);
    }
    frame_free(&rep);
    return 0;
}

static int do_fits(client_t *c, const char *sweep)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__FitsRequest fr = REGMIX__FITS_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    fr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_FITS;
    req.fits = &fr;
    int st = client_call(c, &req, REGMIX__ENVELOPE__BODY_FITS_REPLY, &rep);
    if (st)
        return st;
    const Regmix__FitsReply *f = rep->fits_reply;
    if (c->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < f->n_fits; i++)
            json_array_append_new(a, fit_json(f->fits[i]));
        print_json(json_pack("{s:s, s:o}", "sweep", sweep, "fits", a));
    } else {
        printf("%4s %6s %-8s %9s %9s %11s %9s %10s\n", "FIT", "RUNS", "MODEL", "SPEARMAN",
               "PEARSON", "MSE", "L1_MOVED", "PREDICTED");
        for (size_t i = 0; i < f->n_fits; i++) {
            const Regmix__FitInfo *x = f->fits[i];
            printf("%4u %6u %-8s %9.4f %9.4f %11.4g %9.4f %10.5g\n", x->fit_no, x->runs_used,
                   str_or(x->model, "-"), x->cv ? x->cv->spearman : NAN,
                   x->cv ? x->cv->pearson : NAN, x->cv ? x->cv->mse : NAN, x->l1_moved,
                   x->predicted);
        }
    }
    frame_free(&rep);
    return 0;
}

static int do_mixture(client_t *c, const char *sweep, const char *out)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__MixtureRequest mr = REGMIX__MIXTURE_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    mr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_MIXTURE;
    req.mixture = &mr;
    int st = client_call(c, &req, REGMIX__ENVELOPE__BODY_MIXTURE_REPLY, &rep);
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
        print_json(json_pack("{s:s, s:b, s:o, s:o}", "sweep", sweep, "converged", (int)m->converged,
                             "fit", fit_json(f), "prior", weights_json(m->prior, m->n_prior)));
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
            sweep, f->fit_no, f->runs_used, str_or(f->model, "?"), sweep,
            m->converged ? "true" : "false", f->fit_no, f->runs_used, str_or(f->model, "?"),
            f->predicted, f->cv ? f->cv->spearman : NAN);
    for (size_t i = 0; i < f->n_proposal; i++)
        fprintf(fo, "  %s: %.10g\n", str_or(f->proposal[i]->domain, "?"), f->proposal[i]->weight);
    int bad = 0;
    if (out) {
        bad = fclose(fo) != 0;
        if (bad)
            fprintf(stderr, "regmixctl mixture: writing %s failed\n", out);
        else if (c->json)
            print_json(json_pack("{s:s, s:s}", "sweep", sweep, "out", out));
    }
    frame_free(&rep);
    return bad;
}

static void print_targets(client_t *c, const char *sweep, Regmix__TargetInfo **t, size_t n)
{
    if (c->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, target_json(t[i]));
        print_json(json_pack("{s:s, s:o}", "sweep", sweep, "targets", a));
        return;
    }
    if (n == 0)
        printf("no target runs for %s\n", sweep);
    for (size_t i = 0; i < n; i++) {
        printf("%-8s %-10s launcher=%s ranks=%u pid=%" PRId64 " step=%" PRIu64 " loss=%.5g",
               str_or(t[i]->role, "-"), str_or(t[i]->state, "-"), str_or(t[i]->launcher, "-"),
               t[i]->ranks, t[i]->pid, t[i]->step, t[i]->loss);
        if (t[i]->log_path && *t[i]->log_path)
            printf(" log=%s", t[i]->log_path);
        if (t[i]->detail && *t[i]->detail)
            printf(" (%s)", t[i]->detail);
        putchar('\n');
    }
}

static int do_launch(client_t *c, const char *sweep, int launch)
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
    int st = client_call(c, &req,
                         launch ? REGMIX__ENVELOPE__BODY_LAUNCH_REPLY
                                : REGMIX__ENVELOPE__BODY_TARGET_REPLY,
                         &rep);
    if (st)
        return st;
    if (launch)
        print_targets(c, sweep, rep->launch_reply->targets, rep->launch_reply->n_targets);
    else
        print_targets(c, sweep, rep->target_reply->targets, rep->target_reply->n_targets);
    frame_free(&rep);
    return 0;
}

static int do_workers(client_t *c)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__WorkersRequest wr = REGMIX__WORKERS_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    req.body_case = REGMIX__ENVELOPE__BODY_WORKERS;
    req.workers = &wr;
    int st = client_call(c, &req, REGMIX__ENVELOPE__BODY_WORKERS_REPLY, &rep);
    if (st)
        return st;
    const Regmix__WorkersReply *r = rep->workers_reply;
    if (c->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < r->n_workers; i++) {
            const Regmix__WorkerInfo *x = r->workers[i];
            json_t *g = json_array();
            for (size_t j = 0; j < x->n_gpus; j++)
                json_array_append_new(g, json_pack("{s:i, s:s, s:I, s:s}", "index",
                                                   (int)x->gpus[j]->index, "name",
                                                   str_or(x->gpus[j]->name, ""), "memory_bytes",
                                                   (json_int_t)x->gpus[j]->memory_bytes, "uuid",
                                                   str_or(x->gpus[j]->uuid, "")));
            json_array_append_new(
                    a, json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:o, s:i, s:I, s:I, s:I}",
                                 "worker", str_or(x->worker_id, ""), "host", str_or(x->host, ""),
                                 "state", str_or(x->state, ""), "slots", (int)x->slots,
                                 "free_slots", (int)x->free_slots, "running", (int)x->running,
                                 "gpus", g, "consecutive_failures", (int)x->consecutive_failures,
                                 "last_seen_unix_ms", (json_int_t)x->last_seen_unix_ms, "done",
                                 (json_int_t)x->done, "failed", (json_int_t)x->failed));
        }
        print_json(json_pack("{s:o}", "workers", a));
    } else {
        printf("%-32s %-12s %5s %5s %7s %5s %8s %7s\n", "WORKER", "STATE", "SLOTS", "FREE",
               "RUNNING", "GPUS", "DONE", "FAILED");
        for (size_t i = 0; i < r->n_workers; i++) {
            const Regmix__WorkerInfo *x = r->workers[i];
            printf("%-32s %-12s %5u %5u %7u %5zu %8" PRIu64 " %7" PRIu64 "\n",
                   str_or(x->worker_id, "-"), str_or(x->state, "-"), x->slots, x->free_slots,
                   x->running, x->n_gpus, x->done, x->failed);
        }
    }
    frame_free(&rep);
    return 0;
}

static int do_drain(client_t *c, const char *worker)
{
    Regmix__Envelope req, *rep = NULL;
    Regmix__DrainRequest dr = REGMIX__DRAIN_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    dr.worker_id = (char *)worker;
    req.body_case = REGMIX__ENVELOPE__BODY_DRAIN_WORKER;
    req.drain_worker = &dr;
    int st = client_call(c, &req, REGMIX__ENVELOPE__BODY_DRAIN_REPLY, &rep);
    if (st)
        return st;
    int ok = rep->drain_reply->ok;
    if (c->json)
        print_json(json_pack("{s:s, s:b}", "worker", worker, "ok", ok));
    else
        printf("%s %s\n", worker, ok ? "draining" : "not drained");
    frame_free(&rep);
    return ok ? 0 : 1;
}

/* ---- watch ------------------------------------------------------------------------------------ */

typedef struct watch_view {
    int tty;
    int64_t start_ms;
    uint32_t start_finished; /* runs finished when the watch began (for the rate) */
    int have_start;
    int drew; /* a progress bar line is on screen */
} watch_view_t;

static void watch_show(client_t *c,
                       watch_view_t *v,
                       const Regmix__SweepInfo *s,
                       const char *kind,
                       const char *text)
{
    const Regmix__RunCounts *r = s ? s->runs : NULL;
    uint32_t total = counts_total(r);
    uint32_t fin = r ? r->done + r->dead + r->cancelled : 0;
    if (r && !v->have_start) {
        v->have_start = 1;
        v->start_ms = clock_mono_ms();
        v->start_finished = fin;
    }
    double secs = (double)(clock_mono_ms() - v->start_ms) / 1000.0;
    double rate = secs > 0.5 && fin >= v->start_finished ? (fin - v->start_finished) / secs : 0;
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s}", "kind", str_or(kind, ""), "text", str_or(text, ""));
        if (s)
            json_object_set_new(o, "sweep", sweep_json(s));
        json_object_set_new(o, "rate", json_real(rate));
        print_json(o);
        fflush(stdout);
        return;
    }
    if (!v->tty) {
        if (text && *text)
            printf("%s\n", text);
        else if (r)
            printf("%s %s: %u/%u finished (done %u, dead %u, cancelled %u, running %u, queued "
                   "%u) %.1f runs/s\n",
                   str_or(s->sweep_id, "-"), sweep_state_name(s->state), fin, total, r->done,
                   r->dead, r->cancelled, r->running + r->leased, r->queued, rate);
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

static int watch_probe(client_t *c, const char *sweep, Regmix__Envelope **ret_env)
{
    Regmix__Envelope req;
    Regmix__StatusRequest sr = REGMIX__STATUS_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    sr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_STATUS;
    req.status = &sr;
    return client_call(c, &req, REGMIX__ENVELOPE__BODY_STATUS_REPLY, ret_env);
}

static int do_watch(client_t *c, const char *sweep)
{
    watch_view_t v = {.tty = isatty(STDOUT_FILENO)};
    Regmix__Envelope req;
    Regmix__WatchRequest wr = REGMIX__WATCH_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    wr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_WATCH;
    req.watch = &wr;
    uint64_t id = client_send(c, &req);
    if (!id)
        return 1;
    int first = 1, status = 0;
    for (;;) {
        Regmix__Envelope *env = NULL;
        int rc = client_wait(c, 0, c->timeout_s, &env);
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
                watch_show(c, &v, s, "status", NULL);
            int fin = s && sweep_state_final(s->state);
            frame_free(&st);
            if (fin)
                break;
            if (first) {
                first = 0;
                id = client_send(c, &req); /* the watch request may have been lost: again */
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
            status = client_error_exit(c, env);
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
        watch_show(c, &v, ev->sweep, ev->kind, ev->text);
        int fin = ev->final || (ev->sweep && sweep_state_final(ev->sweep->state));
        frame_free(&env);
        if (fin)
            break;
    }
    if (v.tty && v.drew && !c->json)
        putchar('\n');
    return status;
}

/* ---- argument parsing ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    const char *args;
    const char *what;
} client_cmds[] = {
        {"submit", "SPEC.yaml [--priority N]", "submit a sweep; prints its id"},
        {"list", "", "list sweeps"},
        {"status", "SWEEP", "state and run counts of a sweep"},
        {"watch", "SWEEP", "follow a sweep until it ends (a progress bar on a terminal)"},
        {"cancel", "SWEEP [--run N]", "cancel a sweep, or one run of it"},
        {"results", "SWEEP [--csv]", "one CSV row per done run: run,attempt,worker,weights,losses"},
        {"fits", "SWEEP", "every refit of a sweep with its cross-validated metrics"},
        {"mixture", "SWEEP [--out FILE.yaml]", "the current proposed mixture as YAML"},
        {"launch", "SWEEP", "launch the target training now"},
        {"target", "SWEEP", "state and losses of the target runs"},
        {"workers", "", "workers known to the coordinator"},
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
        fputs("  --run N      cancel only run N (its index in the sweep)\n", f);
    if (strcmp(name, "results") == 0)
        fputs("  --csv        CSV output (the default without --json)\n", f);
    if (strcmp(name, "mixture") == 0)
        fputs("  --out FILE   write the mixture YAML to FILE\n", f);
    fprintf(f, "\nExample:\n  regmixctl --coordinator tcp://127.0.0.1:5556 %s%s\n", name,
            strcmp(name, "submit") == 0    ? " sweep.yaml"
            : strcmp(name, "list") == 0    ? " --json"
            : strcmp(name, "workers") == 0 ? ""
            : strcmp(name, "drain") == 0   ? " node17:gpu0"
            : strcmp(name, "results") == 0 ? " 1a2b3c --csv > results.csv"
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
    client_t c = {.endpoint = endpoint, .curve = curve, .cmd = argv[0], .timeout_s = 5.0};
    const char *pos[2] = {NULL, NULL};
    int npos = 0, has_run = 0, priority = 0;
    uint64_t run = 0;
    const char *out = NULL;
    const char *te = getenv("REGMIX_TIMEOUT");
    if (te && *te)
        c.timeout_s = atof(te) > 0 ? atof(te) : c.timeout_s;
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
            c.timeout_s = t;
            i++;
        } else if (strcmp(a, "--run") == 0 && strcmp(c.cmd, "cancel") == 0) {
            if (!val || parse_u64(val, &run) < 0) {
                fprintf(stderr, "regmixctl cancel: --run needs a run index\n");
                return 2;
            }
            has_run = 1;
            i++;
        } else if (strcmp(a, "--out") == 0 && strcmp(c.cmd, "mixture") == 0) {
            if (!val) {
                fprintf(stderr, "regmixctl mixture: --out needs a file\n");
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
    int rc = client_open(&c);
    if (rc < 0) {
        fprintf(stderr, "regmixctl %s: cannot connect to %s: %s\n", c.cmd, endpoint,
                zmq_strerror(-rc));
        client_close(&c);
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
        st = do_cancel(&c, pos[0], has_run, run);
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
    else
        st = do_drain(&c, pos[0]);
    client_close(&c);
    return st;
}
