/*
 * session: the worker endpoint (docs/protocol.md, worker session), a state machine per worker.
 *
 *   unknown  --HELLO-->  connected  (WELCOME; held attempts re-adopted or abandoned)
 *   unknown  --other-->  Error UNKNOWN_WORKER (the worker must HELLO again)
 *   connected --PING--> PONG; READY/PING give credit; STARTED, PROGRESS renew the lease
 *   connected --RESULT--> stored once, RESULT_ACK(accepted) after the commit
 *   connected --FAILED--> retry with backoff or dead, FAILED_ACK after the commit
 *   connected --silent 3 heartbeats--> lost; after the lease its attempts are requeued
 *
 * A worker id is bound to its CURVE key (with CURVE) or to its live connection and boot id
 * (without): a HELLO for a bound id from another peer gets CONFLICT and changes nothing.
 *
 * Anything a worker sends renews the leases of all its attempts. A RESULT or FAILED for an
 * attempt that is not the run's live attempt held by this worker is acknowledged with
 * accepted=false and counted zero times (fencing).
 */
#ifndef REGMIX_COORD_SESSION_H
#define REGMIX_COORD_SESSION_H

#include "coord.h"

/* zloop callback of the worker ROUTER (data is the coord_t). */
void session_on_message(zloop_watch_t *w, frame_msg_t *msg, void *data);

/* Counts one failure against `w` (a failed attempt, a lease it never started): after
 * cfg.quarantine_after in a row it gets no new jobs, also after it reconnects with a new boot
 * id. Persists the worker row. */
void session_worker_strike(coord_t *c, worker_t *w, const char *why);

#endif
