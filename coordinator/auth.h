/*
 * auth: CURVE on the coordinator's endpoints and the ZAP handler that checks peers against an
 * allow list (DESIGN.md §9).
 *
 * When a secret key is configured both ROUTERs become CURVE servers (their public key derives
 * from it); a ZAP handler (a REP on inproc://zeromq.zap.01, watched on the loop thread like any
 * other socket) then answers each handshake: 200 when the client's public key is on the allow
 * list, or when no allow list is configured (encryption without client authentication), else
 * 400. Without a secret key the endpoints are plain and no handler runs. Keys are Z85 text (40
 * characters, as zmq_curve_keypair() writes them); the allow file has one public key a line,
 * blank lines and lines starting with '#' ignored.
 */
#ifndef REGMIX_COORD_AUTH_H
#define REGMIX_COORD_AUTH_H

#include <stddef.h>
#include <uv.h>

typedef struct auth auth_t;

/* Loads the keys; `secret_path` NULL means no CURVE (then *ret is NULL and 0 is returned).
 * On failure writes one line to err. */
int auth_new(
        const char *secret_path, const char *allow_path, auth_t **ret, char *err, size_t errlen);

/* Starts the ZAP handler on `zctx` (before any socket binds). Returns 0 or -errno. */
int auth_start(auth_t *a, uv_loop_t *loop, void *zctx, char *err, size_t errlen);

/* Makes `sock` a CURVE server with the configured key (before its bind). Returns 0 or -errno. */
int auth_server_socket(const auth_t *a, void *sock);

/* Handshakes allowed and denied so far. */
unsigned long auth_allowed(const auth_t *a);
unsigned long auth_denied(const auth_t *a);

/* Stops the handler (closes its socket); NULL is a harmless no-op. */
void auth_stop(auth_t *a);
/* Frees; NULL is a harmless no-op; nulls the pointer. */
void auth_destroy(auth_t **a_p);

#endif
