/*
 * session: the worker's side of the worker protocol (docs/protocol.md).
 *
 *   CONNECTING  --HELLO-->  (coordinator)  --WELCOME-->  SERVING
 *   SERVING: PING every heartbeat_ms; READY(free slots) after WELCOME and whenever a slot frees;
 *            ASSIGN starts a job (beyond the slots, it waits in a local queue);
 *            every outcome is sent until RESULT_ACK / FAILED_ACK (resent on a timer and after a
 *            reconnect) and kept on disk until then (outbox.h).
 *   Nothing heard for 3 heartbeat intervals, an UNKNOWN_WORKER error, or a broken socket:
 *            close the socket, open a new one, HELLO again (backoff 250 ms doubling to 2 s while
 *            no WELCOME comes). HELLO lists the attempts still running, queued or holding
 *            results, so a restarted coordinator re-adopts them; WELCOME.abandon_attempt_ids
 *            stops those it no longer wants.
 * The client decides how often to heartbeat, the server decides when it has expired: the
 * coordinator's WELCOME sets the interval, and it alone expires leases.
 */
#ifndef REGMIX_WORKER_SESSION_H
#define REGMIX_WORKER_SESSION_H

#include "worker.h"

/* Opens the socket (net.h) with the session's receive callback. Returns 0 or a negative errno. */
int session_open(worker_t *w);

/* Sends HELLO: this worker, its GPUs and every attempt it still holds. */
void session_hello(worker_t *w);

/* Closes the socket and opens a new one, then HELLO (`why` for the log). */
void session_reconnect(worker_t *w, const char *why);

/* Every WORKER_TICK_MS: reconnects when due, PING, resends unacknowledged reports. */
void session_tick(worker_t *w);

#endif
