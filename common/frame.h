/*
 * frame: one protobuf Envelope per ZeroMQ message (docs/protocol.md).
 *
 * Packing and unpacking are pure functions over buffers; sending and receiving wrap a ZeroMQ
 * socket. A message on a ROUTER is [routing id][envelope]; on a DEALER just [envelope]. Anything
 * else (more frames, an empty frame, bytes that do not decode, an unknown version, an Envelope
 * with no body, a frame over the size limit) is rejected with a reason, never a crash.
 *
 * Ownership: frame_unpack() returns an Envelope the caller frees with frame_free(); frame_pack()
 * returns a malloc'd buffer the caller frees with free().
 */
#ifndef REGMIX_FRAME_H
#define REGMIX_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "regmix.pb-c.h"

#define FRAME_VERSION        1u
#define FRAME_MAX_BYTES      (16u * 1024u * 1024u) /* default ZMQ_MAXMSGSIZE of every socket */
#define FRAME_MAX_ROUTING_ID 255u
#define FRAME_MAX_REPEATED   4096u  /* entries of one repeated field a ROUTER accepts */
#define FRAME_MAX_ELEMENTS   65536u /* repeated entries in one envelope a ROUTER accepts */
#define FRAME_KEY_LEN        40     /* a Z85 CURVE public key */

/* Sets up `env` as an empty Envelope of the current version with message id `id`. */
void frame_envelope_init(Regmix__Envelope *env, uint64_t id);

/*
 * Serialises `env` into a new buffer. Returns 0, -EINVAL when the envelope has no body, or
 * -EMSGSIZE when it would exceed FRAME_MAX_BYTES, or -ENOMEM.
 */
int frame_pack(const Regmix__Envelope *env, uint8_t **ret_buf, size_t *ret_len);

/*
 * Decodes and validates one Envelope from `data`. `max_len` of 0 means FRAME_MAX_BYTES.
 * Returns 0 and *ret_env, or a negative errno with *ret_why (static text) and *ret_env untouched:
 * -EMSGSIZE too large, -EBADMSG undecodable, -EPROTONOSUPPORT unknown version, -ENOMSG no body.
 * On -EPROTONOSUPPORT and -ENOMSG, *ret_id holds the message id so the caller can answer.
 */
int frame_unpack(const void *data,
                 size_t len,
                 size_t max_len,
                 Regmix__Envelope **ret_env,
                 uint64_t *ret_id,
                 const char **ret_why);

/*
 * Walks the wire encoding of an Envelope in `data` without decoding it (nothing is allocated):
 * no repeated field of any message holds more than `max_repeated` entries (0 means
 * FRAME_MAX_REPEATED) and the whole envelope at most FRAME_MAX_ELEMENTS, so what
 * frame_unpack() will allocate is bounded. Returns 0, or -EBADMSG with *ret_why (static text)
 * for too many entries or a malformed encoding, and *ret_id (may be NULL) the envelope's message
 * id when it came before the problem (else 0), so the sender can be answered.
 */
int frame_check_counts(
        const void *data, size_t len, size_t max_repeated, uint64_t *ret_id, const char **ret_why);

/* Frees an Envelope from frame_unpack(); NULL is a harmless no-op; nulls the pointer. */
void frame_free(Regmix__Envelope **env_p);

/* Name of a body case ("hello", "assign", …) for logs; "none" or "unknown" otherwise. */
const char *frame_body_name(Regmix__Envelope__BodyCase c);

/*
 * Sets the options every regmix socket gets: ZMQ_MAXMSGSIZE, a bounded ZMQ_LINGER (ms), and on
 * ROUTER sockets ZMQ_ROUTER_MANDATORY. Returns 0 or -errno.
 */
int frame_socket_setup(void *sock, int linger_ms);

/*
 * Sets a socket's per-endpoint limits: ZMQ_MAXMSGSIZE (`max_bytes` of envelope; a peer that
 * sends more is disconnected) and the send and receive high-water marks (messages per peer).
 * Returns 0 or -errno.
 */
int frame_socket_limit(void *sock, size_t max_bytes, int sndhwm, int rcvhwm);

/*
 * Sends `env` (with the routing id first when `routing_id` is not NULL). `flags` are ZeroMQ's
 * (ZMQ_DONTWAIT). Returns 0 or -errno: -EHOSTUNREACH when a ROUTER has no such peer, -EAGAIN.
 */
int frame_send(void *sock,
               const void *routing_id,
               size_t routing_len,
               const Regmix__Envelope *env,
               int flags);

/* One received message: the routing id (ROUTER only) and the decoded Envelope. */
typedef struct frame_msg {
    uint8_t routing_id[FRAME_MAX_ROUTING_ID];
    size_t routing_len;
    Regmix__Envelope *env;            /* NULL when rejected; see err/why */
    uint64_t id;                      /* message id, when known, for an error reply */
    int err;                          /* 0, or the negative errno of the rejection */
    const char *why;                  /* static text of the rejection */
    size_t bytes;                     /* size of the envelope frame */
    char peer_key[FRAME_KEY_LEN + 1]; /* ROUTER with CURVE: the peer's public key (Z85); "" */
} frame_msg_t;

/*
 * Receives one whole message from `sock` (a ROUTER when `is_router`; a ROUTER's envelopes pass
 * frame_check_counts() before they are decoded, and msg->peer_key is filled from CURVE). Returns 0 when a message
 * was consumed (check msg->err: a malformed message is consumed and reported, not returned as a
 * failure), -EAGAIN when nothing is pending with ZMQ_DONTWAIT, or another -errno from ZeroMQ.
 * The caller frees msg->env with frame_free().
 */
int frame_recv(void *sock, int is_router, int flags, frame_msg_t *msg);

#endif
