#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

void frame_envelope_init(Regmix__Envelope *env, uint64_t id)
{
    regmix__envelope__init(env);
    env->version = FRAME_VERSION;
    env->id = id;
}

int frame_pack(const Regmix__Envelope *env, uint8_t **ret_buf, size_t *ret_len)
{
    if (env->body_case == REGMIX__ENVELOPE__BODY__NOT_SET)
        return -EINVAL;
    size_t n = regmix__envelope__get_packed_size(env);
    if (n > FRAME_MAX_BYTES)
        return -EMSGSIZE;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    regmix__envelope__pack(env, buf);
    *ret_buf = buf;
    *ret_len = n;
    return 0;
}

/*
 * protobuf-c accepts a field tag of 0 (invalid on the wire: field numbers start at 1) as an
 * unknown field and re-emits it in a form it cannot decode again. Such input is malformed: find it
 * anywhere in the decoded tree so it is rejected like any other undecodable frame.
 */
static int frame__has_bad_unknown(const ProtobufCMessage *m, int depth)
{
    if (depth > 32)
        return 1;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (v[k] && frame__has_bad_unknown(v[k], depth + 1))
                    return 1;
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
            if (which != f->id)
                continue;
        }
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + f->offset);
        if (sub && frame__has_bad_unknown(sub, depth + 1))
            return 1;
    }
    return 0;
}

/* Reads a varint at *p (< end). Returns 0 or -1 when truncated or longer than 10 bytes. */
static int frame__varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *ret = v;
            return 0;
        }
    }
    return -1;
}

/* Entries of a packed repeated scalar field of `len` bytes at p. */
static uint64_t frame__packed_count(ProtobufCType type, const uint8_t *p, uint64_t len)
{
    switch (type) {
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return len / 8;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return len / 4;
    default: {
        uint64_t n = 0; /* varints: one per byte without the continuation bit */
        for (uint64_t i = 0; i < len; i++)
            n += !(p[i] & 0x80);
        return n;
    }
    }
}

typedef struct frame__budget {
    size_t max_repeated; /* per repeated field of one message */
    size_t elements;     /* repeated entries left in the whole envelope */
    uint64_t id;         /* the Envelope's message id (field 2), for an error reply */
} frame__budget_t;

/* Walks the wire encoding of one message of type `d` without allocating: every repeated field
 * holds at most max_repeated entries and the envelope at most FRAME_MAX_ELEMENTS in all, so
 * protobuf-c's unpack (which allocates per entry) is bounded before it runs. */
static int frame__walk(const ProtobufCMessageDescriptor *d,
                       const uint8_t *p,
                       const uint8_t *end,
                       int depth,
                       frame__budget_t *b,
                       const char **why)
{
    unsigned counts[128] = {0};
    if (depth > 32) {
        *why = "message nested too deep";
        return -1;
    }
    while (p < end) {
        uint64_t key, len = 0;
        if (frame__varint(&p, end, &key) < 0)
            return -1;
        unsigned wt = (unsigned)(key & 7);
        uint64_t num = key >> 3;
        const uint8_t *payload = p;
        switch (wt) {
        case 0:
            if (frame__varint(&p, end, &len) < 0)
                return -1;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 2:
            if (frame__varint(&p, end, &len) < 0 || len > (uint64_t)(end - p))
                return -1;
            payload = p;
            p += len;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        default:
            return -1; /* groups and reserved wire types: protobuf-c rejects them too */
        }
        if (depth == 0 && num == 2 && wt == 0)
            b->id = len; /* Envelope.id: a varint, read into len above */
        const ProtobufCFieldDescriptor *f =
                num <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)num)
                                  : NULL;
        if (!f)
            continue; /* unknown field: kept by protobuf-c as bytes, one allocation */
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            uint64_t n = 1;
            if (wt == 2 && f->type != PROTOBUF_C_TYPE_MESSAGE &&
                f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES)
                n = frame__packed_count(f->type, payload, len);
            size_t idx = (size_t)(f - d->fields);
            uint64_t have = idx < 128 ? counts[idx] : 0;
            if (have + n > b->max_repeated || n > b->elements) {
                *why = "a repeated field has more entries than the limit";
                return -1;
            }
            if (idx < 128)
                counts[idx] = (unsigned)(have + n);
            b->elements -= (size_t)n;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && wt == 2 &&
            frame__walk(f->descriptor, payload, payload + len, depth + 1, b, why) < 0)
            return -1;
    }
    return 0;
}

int frame_check_counts(
        const void *data, size_t len, size_t max_repeated, uint64_t *ret_id, const char **ret_why)
{
    frame__budget_t b = {max_repeated ? max_repeated : FRAME_MAX_REPEATED, FRAME_MAX_ELEMENTS, 0};
    const char *why = "frame does not decode as an Envelope";
    if (frame__walk(&regmix__envelope__descriptor, data, (const uint8_t *)data + len, 0, &b, &why) <
        0) {
        *ret_why = why;
        if (ret_id)
            *ret_id = b.id;
        return -EBADMSG;
    }
    return 0;
}

int frame_unpack(const void *data,
                 size_t len,
                 size_t max_len,
                 Regmix__Envelope **ret_env,
                 uint64_t *ret_id,
                 const char **ret_why)
{
    if (max_len == 0)
        max_len = FRAME_MAX_BYTES;
    if (len > max_len) {
        *ret_why = "frame larger than the size limit";
        return -EMSGSIZE;
    }
    Regmix__Envelope *env = regmix__envelope__unpack(NULL, len, data);
    if (env && frame__has_bad_unknown(&env->base, 0)) {
        regmix__envelope__free_unpacked(env, NULL);
        env = NULL;
    }
    if (!env) {
        *ret_why = "frame does not decode as an Envelope";
        return -EBADMSG;
    }
    if (ret_id)
        *ret_id = env->id;
    if (env->version != FRAME_VERSION) {
        regmix__envelope__free_unpacked(env, NULL);
        *ret_why = "unsupported protocol version";
        return -EPROTONOSUPPORT;
    }
    if (env->body_case == REGMIX__ENVELOPE__BODY__NOT_SET) {
        regmix__envelope__free_unpacked(env, NULL);
        *ret_why = "envelope has no (known) body";
        return -ENOMSG;
    }
    *ret_env = env;
    return 0;
}

void frame_free(Regmix__Envelope **env_p)
{
    if (!env_p || !*env_p)
        return;
    regmix__envelope__free_unpacked(*env_p, NULL);
    *env_p = NULL;
}

const char *frame_body_name(Regmix__Envelope__BodyCase c)
{
    if (c == REGMIX__ENVELOPE__BODY__NOT_SET)
        return "none";
    const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(&regmix__envelope__descriptor, (unsigned)c);
    return f ? f->name : "unknown";
}

int frame_socket_limit(void *sock, size_t max_bytes, int sndhwm, int rcvhwm)
{
    int64_t maxmsg = (int64_t)max_bytes + FRAME_MAX_ROUTING_ID;
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        zmq_setsockopt(sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) != 0 ||
        zmq_setsockopt(sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm) != 0)
        return -errno;
    return 0;
}

int frame_socket_setup(void *sock, int linger_ms)
{
    int64_t maxmsg = FRAME_MAX_BYTES + FRAME_MAX_ROUTING_ID;
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0)
        return -errno;
    if (zmq_setsockopt(sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms) != 0)
        return -errno;
    int type = 0;
    size_t tl = sizeof type;
    if (zmq_getsockopt(sock, ZMQ_TYPE, &type, &tl) != 0)
        return -errno;
    if (type == ZMQ_ROUTER) {
        int one = 1;
        if (zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0)
            return -errno;
    }
    return 0;
}

int frame_send(void *sock,
               const void *routing_id,
               size_t routing_len,
               const Regmix__Envelope *env,
               int flags)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = frame_pack(env, &buf, &len);
    if (r < 0)
        return r;
    if (routing_id) {
        if (zmq_send(sock, routing_id, routing_len, flags | ZMQ_SNDMORE) < 0) {
            r = -errno;
            free(buf);
            return r;
        }
    }
    r = zmq_send(sock, buf, len, flags) < 0 ? -errno : 0;
    free(buf);
    return r;
}

/* Discards the remaining parts of a multi-part message. */
static void frame__drain_more(void *sock)
{
    int more = 1;
    size_t ml = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml) == 0 && more) {
        zmq_msg_t junk;
        zmq_msg_init(&junk);
        if (zmq_msg_recv(&junk, sock, 0) < 0) {
            zmq_msg_close(&junk);
            return;
        }
        zmq_msg_close(&junk);
    }
}

int frame_recv(void *sock, int is_router, int flags, frame_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, sock, flags) < 0) {
        int e = errno;
        zmq_msg_close(&part);
        return -e;
    }
    if (is_router) {
        size_t n = zmq_msg_size(&part);
        if (n > FRAME_MAX_ROUTING_ID)
            n = FRAME_MAX_ROUTING_ID;
        memcpy(msg->routing_id, zmq_msg_data(&part), n);
        msg->routing_len = n;
        int more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        if (!more) {
            msg->err = -EBADMSG;
            msg->why = "message has a routing id and no envelope";
            return 0;
        }
        zmq_msg_init(&part);
        /* The rest of a multi-part message is already queued: this never blocks. */
        if (zmq_msg_recv(&part, sock, 0) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            msg->err = -e;
            msg->why = "receiving the envelope frame failed";
            return 0;
        }
    }
    int extra = zmq_msg_more(&part);
    msg->bytes = zmq_msg_size(&part);
    if (extra) {
        frame__drain_more(sock);
        msg->err = -EBADMSG;
        msg->why = "message has more frames than one envelope";
    } else if (msg->bytes == 0) {
        msg->err = -EBADMSG;
        msg->why = "empty envelope frame";
    } else if (is_router && (msg->err = frame_check_counts(zmq_msg_data(&part), msg->bytes, 0,
                                                           &msg->id, &msg->why))) {
        /* A ROUTER hears untrusted peers: bound what decoding allocates before decoding. */
    } else {
        msg->err = frame_unpack(zmq_msg_data(&part), msg->bytes, 0, &msg->env, &msg->id, &msg->why);
    }
    if (is_router) {
        /* With CURVE, the ZAP handler's user id is the peer's public key (coordinator/auth.c). */
        const char *uid = zmq_msg_gets(&part, "User-Id");
        if (uid && strlen(uid) < sizeof msg->peer_key)
            memcpy(msg->peer_key, uid, strlen(uid) + 1);
    }
    zmq_msg_close(&part);
    return 0;
}
