/*
 * auth: CURVE on the coordinator's endpoints, the ZAP handler that checks peers against an
 * allow list per endpoint, and the protected-mode check at start (docs/protocol.md, transport).
 *
 * When a secret key is configured both ROUTERs become CURVE servers (their public key derives
 * from it), each in its own ZAP domain ("workers", "clients"), so a worker's key is not a
 * client's key. A ZAP handler (a REP on inproc://zeromq.zap.01, watched on the loop thread like
 * any other socket) answers each handshake: 200 when the peer's public key is on that domain's
 * allow list, or when the domain has no allow list (encryption without authentication; refused
 * at start on a non-loopback endpoint unless --insecure), else 400. The ZAP user id of an
 * allowed peer is its public key (Z85), which frame_recv() hands to the message handlers, so a
 * worker id can be bound to the key that first said HELLO for it. Without a secret key the
 * endpoints are plain and no handler runs. Keys are Z85 text (40 characters, as
 * zmq_curve_keypair() writes them); an allow file has one public key a line, blank lines and
 * lines starting with '#' ignored.
 */
#ifndef REGMIX_COORD_AUTH_H
#define REGMIX_COORD_AUTH_H

#include <stddef.h>
#include <uv.h>

typedef struct auth auth_t;

#define AUTH_DOMAIN_WORKERS "workers"
#define AUTH_DOMAIN_CLIENTS "clients"

/* Loads the keys; `secret_path` NULL means no CURVE (then *ret is NULL and 0 is returned).
 * `allow_workers` / `allow_clients` (either NULL: any CURVE peer on that endpoint) are the allow
 * files of the two endpoints. On failure writes one line to err. */
int auth_new(const char *secret_path,
             const char *allow_workers,
             const char *allow_clients,
             auth_t **ret,
             char *err,
             size_t errlen);

/* 1 when `endpoint` can only be reached from this machine: ipc://, inproc://, or tcp:// on
 * 127.0.0.0/8, ::1, localhost or the loopback interface "lo". */
int auth_endpoint_is_local(const char *endpoint);

/* Protected mode: an endpoint that other machines can reach must be a CURVE server with an
 * allow list for its domain. Returns 0 when `endpoint` (of `domain`, "workers" or "clients") is
 * allowed as configured, else -EPERM with one line in err naming the options that fix it. */
int auth_check_endpoint(
        const auth_t *a, const char *domain, const char *endpoint, char *err, size_t errlen);

/* Starts the ZAP handler on `zctx` (before any socket binds). Returns 0 or -errno. */
int auth_start(auth_t *a, uv_loop_t *loop, void *zctx, char *err, size_t errlen);

/* Makes `sock` a CURVE server with the configured key in ZAP domain `domain` (before its
 * bind). Returns 0 or -errno. */
int auth_server_socket(const auth_t *a, void *sock, const char *domain);

/* Handshakes allowed and denied so far. */
unsigned long auth_allowed(const auth_t *a);
unsigned long auth_denied(const auth_t *a);

/* Stops the handler (closes its socket); NULL is a harmless no-op. */
void auth_stop(auth_t *a);
/* Frees; NULL is a harmless no-op; nulls the pointer. */
void auth_destroy(auth_t **a_p);

#endif
