/*
 * connmon: why a ZeroMQ client socket gets no answer, from its connection events.
 *
 * A server that refuses a CURVE handshake does not answer at all, so a request times out the
 * same way whether nothing is listening, the server requires CURVE (or does not use it), it
 * refused our key, or we hold the wrong server key. The socket's monitor events tell these
 * apart. regmix-worker and regmixctl both watch them through one connmon: the worker reads each
 * event from its loop and logs a problem once; regmixctl reads what came when a reply is late
 * and prints the verdict.
 *
 * One connmon watches one socket: create it after the socket's options and before its connect.
 * It owns the PAIR socket that receives the events (connmon_socket(), to poll or watch); the
 * watched socket stays the caller's and must outlive the connmon (connmon_destroy() stops the
 * monitor on it). Nothing here prints or logs; the sentences name the regmix options a user
 * would change.
 */
#ifndef REGMIX_CONNMON_H
#define REGMIX_CONNMON_H

#include <stddef.h>
#include <stdint.h>

typedef struct connmon connmon_t;

/* What the events say, worst first where several apply. */
typedef enum {
    CONNMON_NONE = 0,       /* nothing wrong seen */
    CONNMON_KEY_REFUSED,    /* the server refused our CURVE key (its ZAP status is the value) */
    CONNMON_CURVE_UNUSED,   /* we use CURVE, the server does not */
    CONNMON_CURVE_REQUIRED, /* the server requires CURVE, we do not use it */
    CONNMON_HANDSHAKE,      /* another handshake failure (protocol error, no detail) */
    CONNMON_HANGUP,         /* CURVE: the server hung up during the handshake (a wrong key) */
    CONNMON_SILENT,         /* the handshake succeeded, yet no answer (verdict only) */
    CONNMON_UNREACHABLE,    /* nothing accepted the connection (verdict only) */
} connmon_problem_t;

/*
 * Starts monitoring `sock` (a client socket of context `zctx`, not yet connected); `curve` says
 * whether the socket is a CURVE client, which changes what a hang-up means. Returns 0 and *ret,
 * or a negative errno (the socket then works unmonitored: only the messages are less precise).
 */
int connmon_new(void *zctx, void *sock, int curve, connmon_t **ret);

/* Stops the monitor and frees the connmon; NULL or *self_p NULL is a harmless no-op. *self_p is
 * NULL afterwards. */
void connmon_destroy(connmon_t **self_p);

/* The PAIR socket the events arrive on (owned by the connmon), for zmq_poll or a zloop watch. */
void *connmon_socket(connmon_t *m);

/*
 * Reads one pending event without blocking and updates the state. Returns the problem this
 * event reveals (CONNMON_NONE for most events; CONNMON_HANGUP only on the second hang-up in a
 * row, since one could be a server going away), with its value in *ret_value when not NULL, or
 * -EAGAIN when no event is pending.
 */
int connmon_read(connmon_t *m, uint32_t *ret_value);

/*
 * Reads every pending event, then says why no answer came: the worst problem seen, else
 * CONNMON_HANGUP after one hang-up during a CURVE handshake, CONNMON_SILENT once a handshake
 * succeeded, CONNMON_UNREACHABLE when no connection was ever accepted, or CONNMON_NONE when the
 * events say nothing (a connection up, its handshake still pending). *ret_value as above.
 * A NULL m (no monitor) gives CONNMON_NONE.
 */
connmon_problem_t connmon_verdict(connmon_t *m, uint32_t *ret_value);

/* One sentence on `p` for a user (what is wrong, which option to check), into buf (size bytes,
 * always terminated); `value` is the event's value (the ZAP status of a refused key). Returns
 * buf. CONNMON_NONE gives a generic hint. */
const char *connmon_why(connmon_problem_t p, int curve, uint32_t value, char *buf, size_t size);

#endif
