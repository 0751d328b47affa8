/*
 * client: regmixctl's DEALER to a coordinator (client.h).
 */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "connmon.h"

struct client {
    const char *endpoint;
    const curve_client_t *curve;
    const char *cmd;
    double timeout_s;
    void *zctx;
    void *sock;
    connmon_t *mon; /* the DEALER's connection events, or NULL */
    uint64_t next_id;
};

int client_new(const char *endpoint,
               const curve_client_t *curve,
               const char *cmd,
               double timeout_s,
               client_t **ret)
{
    client_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->endpoint = endpoint;
    c->curve = curve;
    c->cmd = cmd;
    c->timeout_s = timeout_s;
    int rc = 0;
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        rc = -errno;
        goto fail;
    }
    c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (!c->sock) {
        rc = -errno;
        goto fail;
    }
    rc = frame_socket_setup(c->sock, 0);
    if (rc == 0)
        rc = curve_client_apply(c->curve, c->sock);
    if (rc < 0)
        goto fail;
    /* Without the monitor the messages are only less precise. */
    (void)connmon_new(c->zctx, c->sock, c->curve && c->curve->enabled, &c->mon);
    if (zmq_connect(c->sock, c->endpoint) != 0) {
        rc = -errno;
        goto fail;
    }
    c->next_id = (uint64_t)clock_unix_ms() << 8;
    *ret = c;
    return 0;

fail:
    client_destroy(&c);
    return rc < 0 ? rc : -EIO;
}

void client_destroy(client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    client_t *c = *self_p;
    connmon_destroy(&c->mon);
    if (c->sock)
        zmq_close(c->sock);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    free(c);
    *self_p = NULL;
}

const char *client_cmd(const client_t *c)
{
    return c->cmd;
}

double client_timeout(const client_t *c)
{
    return c->timeout_s;
}

/* Why the coordinator stayed silent, from the connection events seen so far, into buf. */
static const char *client_why_silent(client_t *c, char *buf, size_t size)
{
    int curve = c->curve && c->curve->enabled;
    uint32_t value = 0;
    connmon_problem_t p = connmon_verdict(c->mon, &value);
    if (!c->mon)
        snprintf(buf, size,
                 "is it running? does it require CURVE keys? see --coordinator, "
                 "--curve-server-key, --curve-secret-key, --timeout");
    else
        connmon_why(p, curve, value, buf, size);
    if (p == CONNMON_SILENT && strlen(buf) + 16 < size)
        strcat(buf, " (see --timeout)");
    if (p == CONNMON_UNREACHABLE && strlen(buf) + 20 < size)
        strcat(buf, " (see --coordinator)");
    return buf;
}

uint64_t client_send(client_t *c, Regmix__Envelope *env)
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
int client_wait(client_t *c, uint64_t id, double timeout_s, Regmix__Envelope **ret_env)
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

int client_error_exit(const client_t *c, const Regmix__Envelope *env)
{
    const Regmix__Error *e = env->error;
    fprintf(stderr, "regmixctl %s: %s\n", c->cmd,
            e && e->message && *e->message ? e->message : "the coordinator reported an error");
    if (e && (e->code == REGMIX__ERROR_CODE__ERROR_CODE_BAD_REQUEST ||
              e->code == REGMIX__ERROR_CODE__ERROR_CODE_NOT_FOUND))
        return 2;
    return 1;
}

/*
 * Sends `req` and waits for its reply of body `want`. Returns 0 with *ret_env, or the exit
 * status to return (1 or 2) after printing why.
 */
int client_call(client_t *c,
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
        char why[256];
        fprintf(stderr, "regmixctl %s: no reply from the coordinator at %s within %.3g s: %s\n",
                c->cmd, c->endpoint, c->timeout_s, client_why_silent(c, why, sizeof why));
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
