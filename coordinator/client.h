/*
 * client: the client endpoint (docs/protocol.md, clients): one request, one reply, except
 * `watch`, which streams WatchEvents (reply_to = the watch request's id) until the sweep ends
 * (final = true).
 *
 * submit: the spec is checked against the size limit, parsed and validated (common/spec.h), its
 * mixtures are drawn (common/sampler.h) in the libuv thread pool, then the sweep, its domains and
 * all its runs are written in one savepoint of the group transaction; the reply leaves after the
 * commit. status, list and workers answer from memory; results, fits and mixture read the store
 * (results and fits row by row, mixture the last fit with the converged flag and the token
 * prior); cancel ends runs, a sweep or its target launches through transition.h and target.h;
 * drain marks a worker draining (DRAIN to it); launch starts the target (and the prior baseline)
 * on the last fit's proposal through target.h, CONFLICT when the sweep has no fit or everything
 * is launched; target lists the launches; report is dashboard.h's sweep document. Every reply
 * is queued with coord_send() and leaves after the commit; a reply over the frame limit is
 * answered with LIMIT instead.
 *
 * Clients must connect a DEALER (no REQ delimiter frame) and send one Envelope per message.
 */
#ifndef REGMIX_COORD_CLIENT_H
#define REGMIX_COORD_CLIENT_H

#include "coord.h"

/* zloop callback of the client ROUTER (data is the coord_t). */
void client_on_message(zloop_watch_t *w, frame_msg_t *msg, void *data);

/* A client that cannot be reached any more: drop its watches. */
void client_forget_peer(coord_t *c, const uint8_t *rid, size_t rlen);

#endif
