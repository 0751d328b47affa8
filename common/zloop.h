/*
 * zloop: ZeroMQ sockets inside a libuv loop (docs/protocol.md), the pattern flux-core uses.
 *
 * ZMQ_FD is edge-triggered and only says "look at ZMQ_EVENTS"; any ZeroMQ call on the socket
 * (a send included) may consume the edge while leaving messages queued. So a watch reads
 * ZMQ_EVENTS only from a prepare/check pair: in prepare, when input is already pending it starts
 * an idle handle (the loop then polls with a zero timeout), else it waits on the fd (the fd
 * watch stays started: toggling it would cost an epoll_ctl per iteration); in check it
 * drains the socket with ZMQ_DONTWAIT until nothing is left (or a batch limit; the next prepare
 * sees the rest), calling the callback once per message. Callbacks may send on any socket,
 * this one included: the next prepare re-reads ZMQ_EVENTS, so no wake-up is lost.
 *
 * Rules for the caller: all ZeroMQ calls on the loop thread; never send from a uv_prepare_t
 * callback of your own (a send there may consume an edge after this watch's prepare ran).
 *
 * Ownership: the watch borrows the socket (the caller closes it after zloop_watch_close()); the
 * watch's memory is freed in the close callbacks of its libuv handles, so the loop must run once
 * more after zloop_watch_close() (uv_run until no handles, as usual at shutdown).
 */
#ifndef REGMIX_ZLOOP_H
#define REGMIX_ZLOOP_H

#include <uv.h>

#include "frame.h"

typedef struct zloop_watch zloop_watch_t;

/*
 * Called once per received message. `msg->err` is 0 and `msg->env` set for a valid Envelope;
 * otherwise the message was malformed (see msg->err, msg->why, msg->routing_id) or, with
 * msg->env NULL and msg->bytes 0 and a ZeroMQ errno, receiving failed and the watch stopped.
 * The callback may take msg->env (set it to NULL); whatever is left is freed after it returns.
 * It may call zloop_watch_close() on its own watch; no further callbacks follow then.
 */
typedef void (*zloop_recv_cb)(zloop_watch_t *w, frame_msg_t *msg, void *data);

/*
 * Starts watching `zsock` (a ROUTER when `is_router`, else a DEALER-like socket) on `loop`.
 * Returns 0 and *ret, or a negative errno (the callback is never called then).
 */
int zloop_watch_new(uv_loop_t *loop,
                    void *zsock,
                    int is_router,
                    zloop_recv_cb cb,
                    void *data,
                    zloop_watch_t **ret);

/*
 * Called while `zsock` has input, from the check phase; it must receive exactly one whole
 * message with ZMQ_DONTWAIT (for sockets that do not carry Envelopes, e.g. the ZAP handler's
 * REP). Same threading and closing rules as zloop_recv_cb.
 */
typedef void (*zloop_ready_cb)(zloop_watch_t *w, void *zsock, void *data);

/* Like zloop_watch_new(), for a socket read by the caller: `cb` per pending message. */
int zloop_watch_new_raw(
        uv_loop_t *loop, void *zsock, zloop_ready_cb cb, void *data, zloop_watch_t **ret);

/* Messages handled by this watch so far (valid and malformed). */
unsigned long long zloop_watch_count(const zloop_watch_t *w);

/* Sets how many messages one check phase drains at most (default 1024; 0 keeps it). */
void zloop_watch_set_batch(zloop_watch_t *w, unsigned batch);

/*
 * Stops the watch and closes its handles; memory is freed in their close callbacks. NULL and
 * an already-closed watch are harmless no-ops; nulls the caller's pointer.
 */
void zloop_watch_close(zloop_watch_t **w_p);

#endif
