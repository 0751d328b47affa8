/*
 * curve: CURVE key files and the client side of CURVE on ZeroMQ sockets (docs/protocol.md), shared
 * by the coordinator (its secret key and allow list, coordinator/auth.c), regmix-worker and
 * regmixctl (the server's public key and the client's own key pair).
 *
 * A key is Z85 text, 40 characters, as zmq_curve_keypair() writes it. A key file holds it on its
 * first line that is neither blank nor a '#' comment; leading blanks and anything after the key
 * (a blank, then text) are ignored. An allow list is many such lines (coordinator/auth.c).
 *
 * A client's keys live in a curve_client_t the caller owns (no heap). The client's public key is
 * derived from its secret key; with only the server's key, a fresh key pair is made for the
 * process (encryption without client authentication: enough when the server has no allow list).
 * Functions return 0 or a negative errno and, where a file is involved, write one line naming it
 * into `err` (errlen bytes). Nothing here prints.
 */
#ifndef REGMIX_CURVE_H
#define REGMIX_CURVE_H

#include <stddef.h>

#define CURVE_KEY_Z85_LEN 40

typedef struct curve_client {
    int enabled; /* 0: plain sockets, curve_client_apply() does nothing */
    char server_public[CURVE_KEY_Z85_LEN + 1];
    char public_[CURVE_KEY_Z85_LEN + 1];
    char secret[CURVE_KEY_Z85_LEN + 1];
} curve_client_t;

/* Reads the first 40-character Z85 word of `line` (after blanks) into out; it must decode.
 * Returns 0 or -EINVAL. */
int curve_key_parse(const char *line, char out[CURVE_KEY_Z85_LEN + 1]);

/* Reads the key of a key file (first line that is not blank or a comment). `what` names the key
 * in the error ("CURVE secret key"). Returns 0, -EINVAL for a malformed file or -errno. */
int curve_key_read(const char *path,
                   const char *what,
                   char out[CURVE_KEY_Z85_LEN + 1],
                   char *err,
                   size_t errlen);

/* Fills *c from the server's public key file and the client's secret key file (either NULL).
 * Both NULL: CURVE off (c->enabled = 0). A secret key without the server's key is -EINVAL (a
 * CURVE client must know its server). Returns 0, -EINVAL (bad usage or file) or -errno. */
int curve_client_load(curve_client_t *c,
                      const char *server_key_path,
                      const char *secret_key_path,
                      char *err,
                      size_t errlen);

/* Makes `sock` a CURVE client of c's server (before its connect); a disabled c is a no-op.
 * Returns 0 or -errno. */
int curve_client_apply(const curve_client_t *c, void *sock);

/* Writes a fresh key pair: PREFIX.key (the secret key, mode 0600) and PREFIX.pub (the public
 * key, mode 0644), one key and a newline each; existing files are kept (-EEXIST) unless
 * `overwrite`. Copies the public key into public_out (may be NULL). Returns 0 or -errno. */
int curve_keypair_write(const char *prefix,
                        int overwrite,
                        char public_out[CURVE_KEY_Z85_LEN + 1],
                        char *err,
                        size_t errlen);

#endif
