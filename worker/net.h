/*
 * net: the worker's DEALER to the coordinator (the bottom of the worker's modules, worker.h).
 *
 * One socket at a time in w->sock, watched through zloop, with a connmon (connmon.h) on it: a
 * refused CURVE handshake looks like silence, so each kind of failure (key refused, CURVE
 * required or not used, a wrong server key) is logged once until the next WELCOME clears
 * w->hs_logged.
 */
#ifndef REGMIX_WORKER_NET_H
#define REGMIX_WORKER_NET_H

#include "worker.h"

/* Sends one Envelope (its id set here) without blocking. Returns 0 or a negative errno
 * (-ENOTCONN without a socket); a failure is logged. */
int net_send(worker_t *w, Regmix__Envelope *env);

/* Opens and connects a new socket; `cb` gets every message received on it. Returns 0 or a
 * negative errno (no socket then). */
int net_open(worker_t *w, zloop_recv_cb cb);

/* Closes the socket and its monitor; without a socket a harmless no-op. */
void net_close(worker_t *w);

#endif
