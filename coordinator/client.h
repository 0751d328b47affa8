/*
 * client: the client endpoint (DESIGN.md §4.4), one request → one reply, except `watch`, which
 * streams WatchEvents (reply_to = the watch request's id) until the sweep ends (final = true).
 *
 * submit: the spec is checked against the size limit, parsed and validated (common/spec.h), its
 * mixtures are drawn (common/sampler.h) in the libuv thread pool, then the sweep, its domains and
 * all its runs are written in one savepoint of the group transaction; the reply leaves after the
 * commit. fits, mixture, launch and target answer Error BAD_REQUEST "not implemented yet" until
 * the fitter and the launcher land.
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
