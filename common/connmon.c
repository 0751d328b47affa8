/*
 * connmon: a socket's connection events turned into one verdict (connmon.h). The events come
 * from zmq_socket_monitor() over a PAIR on an inproc endpoint with a name never used before in
 * this process (a counter: a name made from the connmon's address was reused by the next connmon
 * at the same address before libzmq had released the old endpoint, and the bind failed with
 * EADDRINUSE); each event is two frames: [event u16, value u32][endpoint].
 */
#include "connmon.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct connmon {
    void *sock; /* the watched socket (borrowed) */
    void *pair; /* receives its events (owned) */
    int curve;
    int connected; /* the current connection is up */
    int handshook; /* ... and its handshake succeeded */
    int failed;    /* ... and a handshake failure was reported for it */
    int ever_connected, ever_handshook;
    unsigned hangups; /* connections in a row closed during the handshake, unexplained */
    connmon_problem_t worst;
    uint32_t worst_value;
};

static atomic_ulong connmon__seq;

int connmon_new(void *zctx, void *sock, int curve, connmon_t **ret)
{
    connmon_t *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->sock = sock;
    m->curve = curve;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://regmix-connmon-%lu",
             (unsigned long)atomic_fetch_add(&connmon__seq, 1));
    const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    int rc = 0, zero = 0;
    if (zmq_socket_monitor(sock, ep, events) != 0) {
        rc = -errno;
        free(m);
        return rc;
    }
    m->pair = zmq_socket(zctx, ZMQ_PAIR);
    if (!m->pair || zmq_setsockopt(m->pair, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(m->pair, ep) != 0) {
        rc = -errno;
        connmon_destroy(&m);
        return rc < 0 ? rc : -EIO;
    }
    *ret = m;
    return 0;
}

void connmon_destroy(connmon_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    connmon_t *m = *self_p;
    zmq_socket_monitor(m->sock, NULL, 0);
    if (m->pair)
        zmq_close(m->pair);
    free(m);
    *self_p = NULL;
}

void *connmon_socket(connmon_t *m)
{
    return m ? m->pair : NULL;
}

static connmon_problem_t connmon__note(connmon_t *m, connmon_problem_t p, uint32_t value)
{
    if (p != CONNMON_NONE && (m->worst == CONNMON_NONE || p < m->worst)) {
        m->worst = p;
        m->worst_value = value;
    }
    return p;
}

int connmon_read(connmon_t *m, uint32_t *ret_value)
{
    if (!m)
        return -EAGAIN;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, m->pair, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&msg);
        return e == EAGAIN || e == EINTR ? -EAGAIN : -e;
    }
    uint16_t ev = 0;
    uint32_t value = 0;
    if (zmq_msg_size(&msg) >= 6) {
        memcpy(&ev, zmq_msg_data(&msg), 2);
        memcpy(&value, (const char *)zmq_msg_data(&msg) + 2, 4);
    }
    int more = zmq_msg_more(&msg);
    zmq_msg_close(&msg);
    while (more) { /* the endpoint frame */
        zmq_msg_init(&msg);
        more = zmq_msg_recv(&msg, m->pair, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&msg);
        zmq_msg_close(&msg);
    }
    if (ret_value)
        *ret_value = value;
    switch (ev) {
    case ZMQ_EVENT_CONNECTED:
        m->connected = m->ever_connected = 1;
        m->handshook = m->failed = 0;
        return CONNMON_NONE;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        m->handshook = m->ever_handshook = 1;
        m->hangups = 0;
        return CONNMON_NONE;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        m->failed = 1;
        return connmon__note(m, CONNMON_KEY_REFUSED, value);
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        m->failed = 1;
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            return connmon__note(m, m->curve ? CONNMON_CURVE_UNUSED : CONNMON_CURVE_REQUIRED,
                                 value);
        return connmon__note(m, CONNMON_HANDSHAKE, value);
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        /* Any broken transport during a handshake: a problem only when nothing better explains
         * the silence (the verdict), never worth a line on its own; a hang-up that follows still
         * counts as one. A server that requires CURVE often hangs up on a plain client before
         * the client has read the greeting that would say so: then this is all we see. */
        connmon__note(m, CONNMON_HANDSHAKE, value);
        return CONNMON_NONE;
    case ZMQ_EVENT_DISCONNECTED: {
        /* A CURVE server that cannot open our HELLO (a wrong server key) just hangs up, every
         * time; once could be a server going away, twice in a row is a problem. */
        int hangup = m->curve && m->connected && !m->handshook && !m->failed;
        m->connected = m->handshook = m->failed = 0;
        if (hangup && ++m->hangups >= 2)
            return connmon__note(m, CONNMON_HANGUP, value);
        return CONNMON_NONE;
    }
    default:
        return CONNMON_NONE;
    }
}

connmon_problem_t connmon_verdict(connmon_t *m, uint32_t *ret_value)
{
    if (ret_value)
        *ret_value = 0;
    if (!m)
        return CONNMON_NONE;
    while (connmon_read(m, NULL) != -EAGAIN)
        ;
    if (ret_value)
        *ret_value = m->worst_value;
    if (m->worst != CONNMON_NONE && m->worst != CONNMON_HANDSHAKE)
        return m->worst;
    if (m->hangups > 0)
        return CONNMON_HANGUP;
    if (m->worst == CONNMON_HANDSHAKE)
        return CONNMON_HANDSHAKE;
    if (m->ever_handshook)
        return CONNMON_SILENT;
    if (!m->ever_connected)
        return CONNMON_UNREACHABLE;
    return CONNMON_NONE;
}

const char *connmon_why(connmon_problem_t p, int curve, uint32_t value, char *buf, size_t size)
{
    switch (p) {
    case CONNMON_KEY_REFUSED:
        snprintf(buf, size,
                 "the coordinator refused our CURVE key (status %u): is our public key on its "
                 "--curve-allow list?",
                 (unsigned)value);
        break;
    case CONNMON_CURVE_UNUSED:
        snprintf(buf, size,
                 "the coordinator does not use CURVE: connect without "
                 "--curve-server-key and $REGMIX_CURVE_SERVER_KEY");
        break;
    case CONNMON_CURVE_REQUIRED:
        snprintf(buf, size,
                 "the coordinator requires CURVE: give --curve-server-key and "
                 "--curve-secret-key (or $REGMIX_CURVE_SERVER_KEY and "
                 "$REGMIX_CURVE_SECRET_KEY)");
        break;
    case CONNMON_HANDSHAKE:
        snprintf(buf, size, "%s",
                 curve ? "the CURVE handshake failed: is --curve-server-key the coordinator's "
                         "public key?"
                       : "the coordinator closed the connection during the handshake: if it "
                         "requires CURVE, give --curve-server-key and --curve-secret-key; else "
                         "is this a regmix-coordinator's endpoint?");
        break;
    case CONNMON_HANGUP:
        snprintf(buf, size,
                 "the connection closed during the CURVE handshake: is "
                 "--curve-server-key the coordinator's public key?");
        break;
    case CONNMON_SILENT:
        snprintf(buf, size, "connected, but no answer: is the coordinator overloaded?");
        break;
    case CONNMON_UNREACHABLE:
        snprintf(buf, size,
                 "nothing accepted the connection: is the coordinator running, and "
                 "is this its endpoint?");
        break;
    default:
        snprintf(buf, size, "is the coordinator running? does it require CURVE keys?");
        break;
    }
    return buf;
}
