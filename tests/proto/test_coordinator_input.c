/*
 * test_coordinator_input: a real regmix-coordinator answers hostile and malformed input on both
 * endpoints with the right Error codes, never crashes, and still serves `list` afterwards.
 */
#include "coord_harness.h"
#include "test.h"

static coord_harness_t H;

/* Sends raw frames (parts[i] of len[i]; the last without SNDMORE) and returns the reply. */
static Regmix__Envelope *
raw_rpc(void *s, int nparts, const void *const *parts, const size_t *lens, int timeout_ms)
{
    for (int i = 0; i < nparts; i++)
        zmq_send(s, parts[i], lens[i], i + 1 < nparts ? ZMQ_SNDMORE : 0);
    return coord_harness_recv(s, timeout_ms);
}

static int error_code(const Regmix__Envelope *r)
{
    return r && r->body_case == REGMIX__ENVELOPE__BODY_ERROR ? (int)r->error->code : -1;
}

static void check_endpoint_garbage(const char *ep, const char *name)
{
    void *s = coord_harness_dealer(&H, ep);
    uint8_t junk[300];
    unsigned seed = 7;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)rand_r(&seed);
    junk[0] = 0xff; /* field 31, wire type 7: never a valid Envelope */
    const void *p1[] = {junk};
    size_t l1[] = {sizeof junk};
    Regmix__Envelope *r = raw_rpc(s, 1, p1, l1, 3000);
    CHECK_MSG(error_code(r) == REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE, "%s random bytes: %d",
              name, error_code(r));
    frame_free(&r);

    /* A valid envelope cut in the middle of a string field. */
    Regmix__Envelope env;
    Regmix__StatusRequest st = REGMIX__STATUS_REQUEST__INIT;
    frame_envelope_init(&env, 5);
    st.sweep_id = "a-sweep-id-that-is-long-enough-to-cut";
    env.body_case = REGMIX__ENVELOPE__BODY_STATUS;
    env.status = &st;
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(frame_pack(&env, &buf, &len) == 0);
    const void *p2[] = {buf};
    size_t l2[] = {len - 10};
    r = raw_rpc(s, 1, p2, l2, 3000);
    CHECK_MSG(error_code(r) == REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE, "%s truncated: %d", name,
              error_code(r));
    frame_free(&r);

    /* Extra frames after the envelope. */
    const void *p3[] = {buf, "x"};
    size_t l3[] = {len, 1};
    r = raw_rpc(s, 2, p3, l3, 3000);
    CHECK_MSG(error_code(r) == REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE, "%s extra frames: %d",
              name, error_code(r));
    frame_free(&r);
    free(buf);

    /* An empty frame. */
    const void *p4[] = {""};
    size_t l4[] = {0};
    r = raw_rpc(s, 1, p4, l4, 3000);
    CHECK_MSG(error_code(r) == REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE, "%s empty frame: %d",
              name, error_code(r));
    frame_free(&r);

    /* Unknown version: BAD_VERSION, answering the message id. */
    Regmix__ListRequest lr = REGMIX__LIST_REQUEST__INIT;
    frame_envelope_init(&env, 4242);
    env.version = 99;
    env.body_case = REGMIX__ENVELOPE__BODY_LIST;
    env.list = &lr;
    size_t n = regmix__envelope__get_packed_size(&env);
    buf = malloc(n);
    regmix__envelope__pack(&env, buf);
    const void *p5[] = {buf};
    size_t l5[] = {n};
    r = raw_rpc(s, 1, p5, l5, 3000);
    CHECK_MSG(error_code(r) == REGMIX__ERROR_CODE__ERROR_CODE_BAD_VERSION, "%s version: %d", name,
              error_code(r));
    CHECK(r && r->reply_to == 4242);
    frame_free(&r);
    free(buf);

    /* Version right, no body. */
    frame_envelope_init(&env, 4343);
    n = regmix__envelope__get_packed_size(&env);
    buf = malloc(n);
    regmix__envelope__pack(&env, buf);
    const void *p6[] = {buf};
    size_t l6[] = {n};
    r = raw_rpc(s, 1, p6, l6, 3000);
    CHECK_MSG(error_code(r) == REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE, "%s no body: %d", name,
              error_code(r));
    CHECK(r && r->reply_to == 4343);
    frame_free(&r);
    free(buf);
    zmq_close(s);
}

static void test_client_endpoint_garbage(void)
{
    check_endpoint_garbage(H.clients_ep, "clients");
}

static void test_worker_endpoint_garbage(void)
{
    check_endpoint_garbage(H.workers_ep, "workers");
}

static void test_oversized_frame(void)
{
    /* Over ZMQ_MAXMSGSIZE: ZeroMQ drops the connection; no reply is possible. The daemon lives. */
    void *s = coord_harness_dealer(&H, H.clients_ep);
    size_t n = FRAME_MAX_BYTES + 4096;
    uint8_t *big = calloc(1, n);
    zmq_send(s, big, n, 0);
    free(big);
    Regmix__Envelope *r = coord_harness_recv(s, 500);
    CHECK(r == NULL);
    frame_free(&r);
    zmq_close(s);
    CHECK(coord_harness_alive(&H));
    CHECK(coord_harness_list_ok(&H, 3000));
}

static void test_wrong_endpoint_bodies(void)
{
    /* A worker body on the client endpoint. */
    void *s = coord_harness_dealer(&H, H.clients_ep);
    Regmix__Envelope env;
    Regmix__Hello hello = REGMIX__HELLO__INIT;
    frame_envelope_init(&env, 0);
    hello.worker_id = "w1";
    hello.slots = 1;
    env.body_case = REGMIX__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    Regmix__Envelope *r = coord_harness_rpc(s, &env, 3000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE);
    frame_free(&r);
    /* A coordinator-only body (an ack) on the client endpoint. */
    Regmix__ResultAck ack = REGMIX__RESULT_ACK__INIT;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_RESULT_ACK;
    env.result_ack = &ack;
    r = coord_harness_rpc(s, &env, 3000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE);
    frame_free(&r);
    zmq_close(s);

    /* A client body on the worker endpoint. */
    s = coord_harness_dealer(&H, H.workers_ep);
    Regmix__ListRequest lr = REGMIX__LIST_REQUEST__INIT;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_LIST;
    env.list = &lr;
    r = coord_harness_rpc(s, &env, 3000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE);
    frame_free(&r);
    zmq_close(s);
}

static void test_worker_before_hello(void)
{
    void *s = coord_harness_dealer(&H, H.workers_ep);
    Regmix__Envelope env;
    Regmix__Ping ping = REGMIX__PING__INIT;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_PING;
    env.ping = &ping;
    Regmix__Envelope *r = coord_harness_rpc(s, &env, 3000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_UNKNOWN_WORKER);
    frame_free(&r);
    Regmix__Result res = REGMIX__RESULT__INIT;
    res.attempt_id = 77;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_RESULT;
    env.result = &res;
    r = coord_harness_rpc(s, &env, 3000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_UNKNOWN_WORKER);
    frame_free(&r);
    zmq_close(s);
}

static void test_hello_validation_and_unknown_result(void)
{
    void *s = coord_harness_dealer(&H, H.workers_ep);
    Regmix__Envelope env;
    Regmix__Hello hello = REGMIX__HELLO__INIT;
    frame_envelope_init(&env, 0);
    hello.worker_id = "bad worker id"; /* spaces are not allowed */
    hello.slots = 1;
    env.body_case = REGMIX__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    Regmix__Envelope *r = coord_harness_rpc(s, &env, 3000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    frame_free(&r);
    hello.worker_id = "w-input";
    hello.slots = 0; /* no slots */
    r = coord_harness_rpc(s, &env, 3000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    frame_free(&r);
    hello.slots = 2;
    hello.boot_id = "boot-1";
    r = coord_harness_rpc(s, &env, 3000);
    CHECK(r && r->body_case == REGMIX__ENVELOPE__BODY_WELCOME);
    if (r && r->body_case == REGMIX__ENVELOPE__BODY_WELCOME) {
        CHECK_INT_EQ(r->welcome->heartbeat_ms, 200);
        CHECK_INT_EQ(r->welcome->lease_ms, 1500);
    }
    frame_free(&r);
    /* A RESULT for an attempt that never existed: acknowledged, not accepted. */
    Regmix__Result res = REGMIX__RESULT__INIT;
    Regmix__DomainValue dv = REGMIX__DOMAIN_VALUE__INIT;
    Regmix__DomainValue *dvp = &dv;
    dv.name = "a";
    dv.value = 3.0;
    res.attempt_id = 987654;
    res.run_id = 1;
    res.n_losses = 1;
    res.losses = &dvp;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_RESULT;
    env.result = &res;
    r = coord_harness_rpc(s, &env, 3000);
    CHECK(r && r->body_case == REGMIX__ENVELOPE__BODY_RESULT_ACK);
    if (r && r->body_case == REGMIX__ENVELOPE__BODY_RESULT_ACK) {
        CHECK_INT_EQ(r->result_ack->attempt_id, 987654);
        CHECK(!r->result_ack->accepted);
    }
    frame_free(&r);
    /* FAILED for an unknown attempt: acknowledged too. */
    Regmix__Failed f = REGMIX__FAILED__INIT;
    f.attempt_id = 987655;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_FAILED;
    env.failed = &f;
    r = coord_harness_rpc(s, &env, 3000);
    CHECK(r && r->body_case == REGMIX__ENVELOPE__BODY_FAILED_ACK);
    frame_free(&r);
    /* A ping is answered with a pong. */
    Regmix__Ping ping = REGMIX__PING__INIT;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_PING;
    env.ping = &ping;
    r = coord_harness_rpc(s, &env, 3000);
    CHECK(r && r->body_case == REGMIX__ENVELOPE__BODY_PONG);
    frame_free(&r);
    zmq_close(s);
}

static void test_client_requests_errors(void)
{
    void *s = coord_harness_dealer(&H, H.clients_ep);
    Regmix__Envelope env;
    Regmix__StatusRequest st = REGMIX__STATUS_REQUEST__INIT;
    frame_envelope_init(&env, 0);
    st.sweep_id = "sw999999";
    env.body_case = REGMIX__ENVELOPE__BODY_STATUS;
    env.status = &st;
    Regmix__Envelope *r = coord_harness_rpc(s, &env, 3000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    frame_free(&r);
    Regmix__SubmitRequest sub = REGMIX__SUBMIT_REQUEST__INIT;
    sub.spec_yaml = "name: x\ndomains: [1, 2\n"; /* YAML syntax error */
    sub.spec_name = "broken.yaml";
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_SUBMIT;
    env.submit = &sub;
    r = coord_harness_rpc(s, &env, 5000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_BAD_REQUEST);
    if (r && r->body_case == REGMIX__ENVELOPE__BODY_ERROR)
        CHECK_MSG(strstr(r->error->message, "broken.yaml") != NULL, "%s", r->error->message);
    frame_free(&r);
    size_t big = (1u << 20) + 10;
    char *yaml = malloc(big + 1);
    memset(yaml, '#', big);
    yaml[big] = '\0';
    sub.spec_yaml = yaml;
    r = coord_harness_rpc(s, &env, 5000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_LIMIT);
    frame_free(&r);
    free(yaml);
    Regmix__DrainRequest dr = REGMIX__DRAIN_REQUEST__INIT;
    dr.worker_id = "nobody";
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_DRAIN_WORKER;
    env.drain_worker = &dr;
    r = coord_harness_rpc(s, &env, 3000);
    CHECK_INT_EQ(error_code(r), REGMIX__ERROR_CODE__ERROR_CODE_NOT_FOUND);
    frame_free(&r);
    zmq_close(s);
}

static void test_flood_then_serves(void)
{
    /* Many bad messages from many peers: every one answered, and the daemon keeps serving. */
    void *s = coord_harness_dealer(&H, H.clients_ep);
    int sent = 500, got = 0;
    for (int i = 0; i < sent; i++)
        zmq_send(s, "\x0a\x0b", 2, 0);
    for (int i = 0; i < sent; i++) {
        Regmix__Envelope *r = coord_harness_recv(s, 3000);
        if (!r)
            break;
        got += error_code(r) == REGMIX__ERROR_CODE__ERROR_CODE_BAD_MESSAGE;
        frame_free(&r);
    }
    CHECK_INT_EQ(got, sent);
    zmq_close(s);
    CHECK(coord_harness_alive(&H));
    CHECK(coord_harness_list_ok(&H, 3000));
}

/* Every body case of the Envelope, with random ids and empty or random fields, on both
 * endpoints (the worker one after a HELLO): each gets at most one answer and the daemon lives. */
static void test_every_body_everywhere(void)
{
    const ProtobufCMessageDescriptor *d = &regmix__envelope__descriptor;
    void *w = coord_harness_dealer(&H, H.workers_ep);
    void *cl = coord_harness_dealer(&H, H.clients_ep);
    Regmix__Envelope env;
    Regmix__Hello hello = REGMIX__HELLO__INIT;
    hello.worker_id = "w-every";
    hello.slots = 2;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    Regmix__Envelope *r = coord_harness_rpc(w, &env, 3000);
    CHECK(r && r->body_case == REGMIX__ENVELOPE__BODY_WELCOME);
    frame_free(&r);
    unsigned seed = 99;
    int sent = 0;
    for (unsigned f = 0; f < d->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[f];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE || fd->id < 10)
            continue;
        const ProtobufCMessageDescriptor *md = fd->descriptor;
        for (int rep = 0; rep < 4; rep++) {
            ProtobufCMessage *body = calloc(1, md->sizeof_message);
            md->message_init(body);
            /* Random scalars in the body's uint/int fields (ids, counts, indices). */
            for (unsigned k = 0; k < md->n_fields; k++) {
                const ProtobufCFieldDescriptor *bf = &md->fields[k];
                if (bf->label == PROTOBUF_C_LABEL_REPEATED)
                    continue;
                char *at = (char *)body + bf->offset;
                if (bf->type == PROTOBUF_C_TYPE_UINT64)
                    *(uint64_t *)at = rep == 0 ? 0 : (uint64_t)rand_r(&seed) % 50;
                else if (bf->type == PROTOBUF_C_TYPE_UINT32 || bf->type == PROTOBUF_C_TYPE_INT32)
                    *(uint32_t *)at = (uint32_t)rand_r(&seed) % (rep == 3 ? 100000u : 8u);
                else if (bf->type == PROTOBUF_C_TYPE_BOOL)
                    *(protobuf_c_boolean *)at = rep & 1;
            }
            frame_envelope_init(&env, 0);
            env.body_case = (Regmix__Envelope__BodyCase)fd->id;
            *(ProtobufCMessage **)((char *)&env + fd->offset) = body;
            coord_harness_send(w, &env);
            coord_harness_send(cl, &env);
            sent += 2;
            free(body);
        }
    }
    /* Drain whatever came back (errors, acks, pongs, replies); then the daemon still serves. */
    int got = 0;
    while ((r = coord_harness_recv(w, 300)) != NULL) {
        got++;
        frame_free(&r);
    }
    while ((r = coord_harness_recv(cl, 300)) != NULL) {
        got++;
        frame_free(&r);
    }
    CHECK_MSG(got > 0 && got <= sent, "%d answers to %d messages", got, sent);
    zmq_close(w);
    zmq_close(cl);
    CHECK(coord_harness_alive(&H));
    CHECK(coord_harness_list_ok(&H, 3000));
}

int main(void)
{
    const char *extra[] = {"--heartbeat-ms", "200", "--lease-ms", "1500", NULL};
    int r = coord_harness_start(&H, extra);
    CHECK_MSG(r == 0, "coordinator did not start: %d", r);
    if (r == 0) {
        TEST_RUN(test_client_endpoint_garbage);
        TEST_RUN(test_worker_endpoint_garbage);
        TEST_RUN(test_oversized_frame);
        TEST_RUN(test_wrong_endpoint_bodies);
        TEST_RUN(test_worker_before_hello);
        TEST_RUN(test_hello_validation_and_unknown_result);
        TEST_RUN(test_client_requests_errors);
        TEST_RUN(test_flood_then_serves);
        TEST_RUN(test_every_body_everywhere);
        CHECK(coord_harness_alive(&H));
        CHECK(coord_harness_list_ok(&H, 3000));
        CHECK_INT_EQ(coord_harness_stop(&H, SIGTERM), 0);
    }
    if (test__failures)
        coord_harness_dump_log(&H);
    coord_harness_cleanup(&H);
    return test_finish();
}
