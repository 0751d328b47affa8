/*
 * net: the worker's DEALER to the coordinator (net.h).
 */
#include "net.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <zmq.h>

#include "log.h"

int net_send(worker_t *w, Regmix__Envelope *env)
{
    if (!w->sock)
        return -ENOTCONN;
    env->id = ++w->msg_id;
    int rc = frame_send(w->sock, NULL, 0, env, ZMQ_DONTWAIT);
    if (rc < 0)
        log_warn("send_failed", "worker=%s body=%s err=\"%s\"", w->worker_id,
                 frame_body_name(env->body_case), strerror(-rc));
    return rc;
}

/* Logs a handshake problem once until the next WELCOME. */
static void net_log_handshake(worker_t *w, connmon_problem_t p, uint32_t value)
{
    unsigned bit = 1u << p;
    if (w->hs_logged & bit)
        return;
    w->hs_logged |= bit;
    char why[256];
    log_error("handshake_failed", "worker=%s endpoint=%s curve=\"%s\" value=%u why=\"%s\"",
              w->worker_id, w->endpoint, w->curve.enabled ? w->curve.public_ : "off", value,
              connmon_why(p, w->curve.enabled, value, why, sizeof why));
}

/* One event of the DEALER's monitor. */
static void net_monitor_cb(zloop_watch_t *wt, void *s, void *data)
{
    (void)wt;
    (void)s;
    worker_t *w = data;
    uint32_t value = 0;
    int p = connmon_read(w->mon, &value);
    if (p > 0)
        net_log_handshake(w, (connmon_problem_t)p, value);
}

static void net_close_monitor(worker_t *w)
{
    zloop_watch_close(&w->mon_watch);
    connmon_destroy(&w->mon);
}

/* Watches the handshakes of w->sock (before its connect); failing that only costs the logs. */
static void net_open_monitor(worker_t *w)
{
    if (connmon_new(w->zctx, w->sock, w->curve.enabled, &w->mon) < 0)
        return;
    if (zloop_watch_new_raw(w->loop, connmon_socket(w->mon), net_monitor_cb, w, &w->mon_watch) < 0)
        net_close_monitor(w);
}

int net_open(worker_t *w, zloop_recv_cb cb)
{
    w->sock = zmq_socket(w->zctx, ZMQ_DEALER);
    if (!w->sock)
        return -errno;
    int rc = frame_socket_setup(w->sock, 200);
    int hwm = 100000, ivl = 100, ivl_max = 1000;
    if (rc == 0 && (zmq_setsockopt(w->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
                    zmq_setsockopt(w->sock, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
                    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) != 0 ||
                    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max) != 0))
        rc = -errno;
    if (rc == 0)
        rc = curve_client_apply(&w->curve, w->sock);
    if (rc == 0)
        net_open_monitor(w);
    if (rc == 0 && zmq_connect(w->sock, w->endpoint) != 0)
        rc = -errno;
    if (rc == 0)
        rc = zloop_watch_new(w->loop, w->sock, 0, cb, w, &w->watch);
    if (rc < 0) {
        net_close_monitor(w);
        zmq_close(w->sock);
        w->sock = NULL;
    }
    return rc;
}

void net_close(worker_t *w)
{
    net_close_monitor(w);
    zloop_watch_close(&w->watch);
    if (w->sock) {
        zmq_close(w->sock);
        w->sock = NULL;
    }
}
