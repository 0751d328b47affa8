/*
 * client: regmixctl's transport to a coordinator's client endpoint (docs/protocol.md).
 *
 * A client is one DEALER (a CURVE client when keys are given, curve.h) connected to one
 * endpoint, with a connmon on it (connmon.h): a refused handshake looks like silence, so when a
 * reply is late the connection events say why. Requests are Envelopes with increasing ids;
 * replies are matched on reply_to. Nothing here waits longer than the timeout given: an
 * unreachable coordinator is a clear error, never a hang.
 *
 * Ownership: client_new() copies nothing; endpoint, curve and cmd must outlive the client.
 * Envelopes returned through ret_env belong to the caller (frame_free()). This module prints its
 * errors on stderr prefixed "regmixctl CMD:" since it serves only the command-line program.
 */
#ifndef REGMIX_CLI_CLIENT_H
#define REGMIX_CLI_CLIENT_H

#include <stdint.h>

#include "curve.h"
#include "frame.h"

typedef struct client client_t;

/*
 * Opens a DEALER to `endpoint` (keys from `curve`; `cmd` names the command in messages;
 * `timeout_s` bounds each wait of client_call()). Returns 0 and *ret, or a negative errno
 * (-EINVAL or -EPROTONOSUPPORT for a malformed endpoint).
 */
int client_new(const char *endpoint,
               const curve_client_t *curve,
               const char *cmd,
               double timeout_s,
               client_t **ret);

/* Closes the socket and frees the client; NULL or *self_p NULL is a harmless no-op. */
void client_destroy(client_t **self_p);

/* The command name and timeout given to client_new(). */
const char *client_cmd(const client_t *c);
double client_timeout(const client_t *c);

/* Sends a request (its id is set here); returns the id, or 0 after printing why it failed. */
uint64_t client_send(client_t *c, Regmix__Envelope *env);

/*
 * Waits up to `timeout_s` for a message answering `id` (or, when `id` is 0, any message).
 * Returns 0 and *ret_env, -ETIMEDOUT, or another -errno. Messages answering other ids are
 * dropped; malformed ones are reported and skipped.
 */
int client_wait(client_t *c, uint64_t id, double timeout_s, Regmix__Envelope **ret_env);

/* Prints an Error reply's message; returns the exit status it calls for: 2 for BAD_REQUEST and
 * NOT_FOUND (the user's input was wrong), else 1. */
int client_error_exit(const client_t *c, const Regmix__Envelope *env);

/*
 * Sends `req` and waits for its reply of body `want`. Returns 0 with *ret_env, or the exit
 * status to return (1 or 2) after printing why (a timeout says why the coordinator was silent).
 */
int client_call(client_t *c,
                Regmix__Envelope *req,
                Regmix__Envelope__BodyCase want,
                Regmix__Envelope **ret_env);

#endif
