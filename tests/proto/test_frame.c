/*
 * test_frame: the Envelope framing of common/frame.h. Round trips of every kind of message, then
 * hostile input: every truncation of a valid frame, random bytes, oversized frames, unknown
 * versions, empty bodies, and malformed multi-part messages over real ZeroMQ sockets. None may
 * crash; each must be rejected with its reason.
 */
#include <errno.h>
#include <stdint.h>
#include <zmq.h>

#include "frame.h"
#include "test.h"

static Regmix__Envelope *round_trip(const Regmix__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_INT_EQ(frame_pack(env, &buf, &len), 0);
    Regmix__Envelope *out = NULL;
    uint64_t id = 0;
    const char *why = NULL;
    int r = frame_unpack(buf, len, 0, &out, &id, &why);
    CHECK_MSG(r == 0, "unpack failed: %s", why ? why : "?");
    free(buf);
    return out;
}

static void test_round_trip_hello(void)
{
    Regmix__Envelope env;
    frame_envelope_init(&env, 42);
    Regmix__Hello hello = REGMIX__HELLO__INIT;
    hello.worker_id = "host-a:w0";
    hello.boot_id = "b00t";
    hello.host = "host-a";
    hello.slots = 8;
    Regmix__GpuInfo g0 = REGMIX__GPU_INFO__INIT, g1 = REGMIX__GPU_INFO__INIT;
    g0.index = 0;
    g0.name = "H200";
    g0.memory_bytes = 141ull << 30;
    g1.index = 1;
    g1.name = "H200";
    Regmix__GpuInfo *gpus[] = {&g0, &g1};
    hello.n_gpus = 2;
    hello.gpus = gpus;
    Regmix__HeldAttempt h = REGMIX__HELD_ATTEMPT__INIT;
    h.attempt_id = 7;
    h.run_id = 3;
    h.finished = 1;
    Regmix__HeldAttempt *held[] = {&h};
    hello.n_attempts = 1;
    hello.attempts = held;
    env.body_case = REGMIX__ENVELOPE__BODY_HELLO;
    env.hello = &hello;

    Regmix__Envelope *out = round_trip(&env);
    CHECK(out != NULL);
    if (!out)
        return;
    CHECK_INT_EQ(out->id, 42);
    CHECK_INT_EQ(out->version, FRAME_VERSION);
    CHECK_INT_EQ(out->body_case, REGMIX__ENVELOPE__BODY_HELLO);
    CHECK_STR_EQ(out->hello->worker_id, "host-a:w0");
    CHECK_INT_EQ(out->hello->slots, 8);
    CHECK_INT_EQ(out->hello->n_gpus, 2);
    CHECK_INT_EQ(out->hello->gpus[0]->memory_bytes, 141ull << 30);
    CHECK_INT_EQ(out->hello->n_attempts, 1);
    CHECK_INT_EQ(out->hello->attempts[0]->attempt_id, 7);
    CHECK(out->hello->attempts[0]->finished);
    CHECK_STR_EQ(frame_body_name(out->body_case), "hello");
    frame_free(&out);
    CHECK(out == NULL);
}

static void test_round_trip_assign_result(void)
{
    Regmix__DomainWeight w[3];
    Regmix__DomainWeight *wp[3];
    const char *names[] = {"pile_cc", "github", "arxiv"};
    const double vals[] = {0.5, 0.25, 0.25};
    for (int i = 0; i < 3; i++) {
        regmix__domain_weight__init(&w[i]);
        w[i].domain = (char *)names[i];
        w[i].weight = vals[i];
        wp[i] = &w[i];
    }
    Regmix__Envelope env;
    frame_envelope_init(&env, 1);
    Regmix__Assign a = REGMIX__ASSIGN__INIT;
    a.attempt_id = 99;
    a.run_id = 12;
    a.sweep_id = "s1";
    a.attempt_no = 2;
    a.seed = 0xdeadbeefcafeull;
    a.n_weights = 3;
    a.weights = wp;
    a.kind = REGMIX__JOB_KIND__JOB_KIND_SYNTHETIC;
    Regmix__SyntheticJob syn = REGMIX__SYNTHETIC_JOB__INIT;
    syn.noise = 0.01;
    syn.fail_rate = 0.3;
    a.synthetic = &syn;
    env.body_case = REGMIX__ENVELOPE__BODY_ASSIGN;
    env.assign = &a;
    Regmix__Envelope *out = round_trip(&env);
    CHECK(out && out->assign);
    if (out && out->assign) {
        CHECK_INT_EQ(out->assign->seed, 0xdeadbeefcafeull);
        CHECK_INT_EQ(out->assign->n_weights, 3);
        CHECK_STR_EQ(out->assign->weights[1]->domain, "github");
        CHECK_NEAR(out->assign->weights[1]->weight, 0.25, 0.0);
        CHECK_NEAR(out->assign->synthetic->fail_rate, 0.3, 0.0);
        CHECK_INT_EQ(out->assign->kind, REGMIX__JOB_KIND__JOB_KIND_SYNTHETIC);
    }
    frame_free(&out);

    Regmix__DomainValue lv = REGMIX__DOMAIN_VALUE__INIT;
    lv.name = "pile_cc";
    lv.value = 3.25;
    Regmix__DomainValue *lvp[] = {&lv};
    Regmix__Result res = REGMIX__RESULT__INIT;
    res.attempt_id = 99;
    res.run_id = 12;
    res.n_losses = 1;
    res.losses = lvp;
    res.tokens = 1ull << 30;
    frame_envelope_init(&env, 2);
    env.reply_to = 1;
    env.body_case = REGMIX__ENVELOPE__BODY_RESULT;
    env.result = &res;
    out = round_trip(&env);
    CHECK(out && out->result);
    if (out && out->result) {
        CHECK_INT_EQ(out->reply_to, 1);
        CHECK_NEAR(out->result->losses[0]->value, 3.25, 0.0);
        CHECK_INT_EQ(out->result->tokens, 1ull << 30);
    }
    frame_free(&out);
}

/* Every body case of the oneof packs and unpacks with its own case intact. */
static void test_round_trip_every_body(void)
{
    const ProtobufCMessageDescriptor *d = &regmix__envelope__descriptor;
    int bodies = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        bodies++;
        const ProtobufCMessageDescriptor *md = f->descriptor;
        ProtobufCMessage *sub = calloc(1, md->sizeof_message);
        md->message_init(sub);
        Regmix__Envelope env;
        frame_envelope_init(&env, 1000 + i);
        env.body_case = (Regmix__Envelope__BodyCase)f->id;
        /* All body members share the oneof's union storage at the field's offset. */
        *(ProtobufCMessage **)((char *)&env + f->offset) = sub;
        Regmix__Envelope *out = round_trip(&env);
        CHECK_MSG(out && (unsigned)out->body_case == f->id, "body %s", f->name);
        CHECK_STR_EQ(frame_body_name(env.body_case), f->name);
        frame_free(&out);
        free(sub);
    }
    CHECK_MSG(bodies >= 39, "only %d bodies", bodies);
}

static void test_rejects(void)
{
    Regmix__Envelope env;
    frame_envelope_init(&env, 5);
    uint8_t *buf;
    size_t len;
    CHECK_INT_EQ(frame_pack(&env, &buf, &len), -EINVAL); /* no body */

    Regmix__Ping ping = REGMIX__PING__INIT;
    ping.free_slots = 3;
    uint64_t ids[] = {1, 2, 3, 4, 5, 6, 7, 8};
    ping.n_running_attempt_ids = 8;
    ping.running_attempt_ids = ids;
    env.body_case = REGMIX__ENVELOPE__BODY_PING;
    env.ping = &ping;
    CHECK_INT_EQ(frame_pack(&env, &buf, &len), 0);

    Regmix__Envelope *out = NULL;
    uint64_t id = 0;
    const char *why = NULL;
    /* Every strict prefix is either rejected or decodes to something valid: never a crash. */
    int rejected = 0;
    for (size_t cut = 0; cut < len; cut++) {
        int r = frame_unpack(buf, cut, 0, &out, &id, &why);
        if (r == 0)
            frame_free(&out);
        else
            rejected++;
    }
    CHECK(rejected > 0);
    /* Oversized by the caller's limit. */
    CHECK_INT_EQ(frame_unpack(buf, len, len - 1, &out, &id, &why), -EMSGSIZE);
    CHECK(out == NULL);
    free(buf);

    /* Unknown version: rejected, but the id is reported so the peer can be answered. */
    frame_envelope_init(&env, 77);
    env.version = 9;
    env.body_case = REGMIX__ENVELOPE__BODY_PING;
    env.ping = &ping;
    CHECK_INT_EQ(frame_pack(&env, &buf, &len), 0);
    id = 0;
    CHECK_INT_EQ(frame_unpack(buf, len, 0, &out, &id, &why), -EPROTONOSUPPORT);
    CHECK_INT_EQ(id, 77);
    free(buf);

    /* Version 1 with a body field number this build does not know: no body. */
    uint8_t unknown_body[] = {0x08, 0x01, 0x10, 0x2a, 0xfa, 0x3e, 0x00}; /* field 999, len 0 */
    CHECK_INT_EQ(frame_unpack(unknown_body, sizeof unknown_body, 0, &out, &id, &why), -ENOMSG);
    CHECK_INT_EQ(id, 42);

    /* Random bytes: rejected or harmlessly decoded; run many seeds. */
    uint64_t s = 0x9e3779b97f4a7c15ull;
    uint8_t junk[512];
    rejected = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(s % sizeof junk) + 1;
        for (size_t k = 0; k < n; k++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            junk[k] = (uint8_t)s;
        }
        if (frame_unpack(junk, n, 0, &out, &id, &why) == 0)
            frame_free(&out);
        else
            rejected++;
    }
    /* Nearly all random byte strings are not valid envelopes of version 1 with a body. */
    CHECK_MSG(rejected > 20000 * 9 / 10, "rejected %d of 20000+", rejected);
}

static void test_sockets(void)
{
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    CHECK_INT_EQ(frame_socket_setup(router, 0), 0);
    CHECK_INT_EQ(frame_socket_setup(dealer, 0), 0);
    int rcvtimeo = 2000;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo);
    CHECK_INT_EQ(zmq_bind(router, "inproc://frame-test"), 0);
    CHECK_INT_EQ(zmq_connect(dealer, "inproc://frame-test"), 0);

    Regmix__Envelope env;
    frame_envelope_init(&env, 11);
    Regmix__Ready ready = REGMIX__READY__INIT;
    ready.free_slots = 4;
    env.body_case = REGMIX__ENVELOPE__BODY_READY;
    env.ready = &ready;
    CHECK_INT_EQ(frame_send(dealer, NULL, 0, &env, 0), 0);

    frame_msg_t msg;
    CHECK_INT_EQ(frame_recv(router, 1, 0, &msg), 0);
    CHECK_INT_EQ(msg.err, 0);
    CHECK(msg.env && msg.env->ready && msg.env->ready->free_slots == 4);
    CHECK(msg.routing_len > 0);
    frame_free(&msg.env);

    /* Reply through the routing id. */
    Regmix__Pong pong = REGMIX__PONG__INIT;
    frame_envelope_init(&env, 12);
    env.reply_to = 11;
    env.body_case = REGMIX__ENVELOPE__BODY_PONG;
    env.pong = &pong;
    CHECK_INT_EQ(frame_send(router, msg.routing_id, msg.routing_len, &env, 0), 0);
    frame_msg_t back;
    CHECK_INT_EQ(frame_recv(dealer, 0, 0, &back), 0);
    CHECK(back.env && back.env->body_case == REGMIX__ENVELOPE__BODY_PONG);
    frame_free(&back.env);

    /* An unknown peer: ROUTER_MANDATORY makes it an error, not a silent loss. */
    CHECK_INT_EQ(frame_send(router, "nobody", 6, &env, ZMQ_DONTWAIT), -EHOSTUNREACH);

    /* Extra frames, an empty frame and garbage are consumed and reported. */
    zmq_send(dealer, "a", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "b", 1, 0);
    CHECK_INT_EQ(frame_recv(router, 1, 0, &msg), 0);
    CHECK_INT_EQ(msg.err, -EBADMSG);
    CHECK(msg.env == NULL);
    zmq_send(dealer, "", 0, 0);
    CHECK_INT_EQ(frame_recv(router, 1, 0, &msg), 0);
    CHECK_INT_EQ(msg.err, -EBADMSG);
    zmq_send(dealer, "\xff\xff\xff\xff", 4, 0);
    CHECK_INT_EQ(frame_recv(router, 1, 0, &msg), 0);
    CHECK(msg.err < 0);
    /* The socket still works after all of it. */
    frame_envelope_init(&env, 13);
    env.body_case = REGMIX__ENVELOPE__BODY_READY;
    env.ready = &ready;
    CHECK_INT_EQ(frame_send(dealer, NULL, 0, &env, 0), 0);
    CHECK_INT_EQ(frame_recv(router, 1, 0, &msg), 0);
    CHECK_INT_EQ(msg.err, 0);
    CHECK(msg.env && msg.env->id == 13);
    frame_free(&msg.env);
    /* Nothing pending: -EAGAIN with DONTWAIT. */
    CHECK_INT_EQ(frame_recv(router, 1, ZMQ_DONTWAIT, &msg), -EAGAIN);

    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
}

int main(void)
{
    TEST_RUN(test_round_trip_hello);
    TEST_RUN(test_round_trip_assign_result);
    TEST_RUN(test_round_trip_every_body);
    TEST_RUN(test_rejects);
    TEST_RUN(test_sockets);
    return test_finish();
}
