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
    } else {
        msg->err = frame_unpack(zmq_msg_data(&part), msg->bytes, 0, &msg->env, &msg->id, &msg->why);
    }
    zmq_msg_close(&part);
    return 0;
}
