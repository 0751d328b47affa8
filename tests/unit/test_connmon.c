/*
 * test_connmon: common/connmon on real ZeroMQ sockets over loopback TCP, one case per verdict:
 * nothing listening, a plain server that does not answer, a CURVE server and a plain client (and
 * the reverse), a wrong server key (the server hangs up), and a key the server's ZAP handler
 * refuses (status 400). Each case polls the verdict until it is the expected one (a deadline of
 * 5 s; the client reconnects every 100 ms, so one handshake that loses a race is retried).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "connmon.h"
#include "test.h"

/* libzmq's CurveZMQ test vectors (tests/test_security_curve.cpp). */
static const char SERVER_PUBLIC[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
static const char SERVER_SECRET[] = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";
static const char CLIENT_PUBLIC[] = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
static const char CLIENT_SECRET[] = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";

static void *ctx;
static void *zap; /* REP on the ZAP endpoint while a case needs it: refuses every key */

/* Answers pending ZAP requests with 400 (frames: version, request id, domain, address,
 * identity, mechanism, credentials...). */
static void zap_serve(void)
{
    while (zap) {
        char version[8] = "", request_id[256];
        int rid = 0, more = 1, frame = 0;
        if (zmq_poll(&(zmq_pollitem_t){zap, 0, ZMQ_POLLIN, 0}, 1, 0) <= 0)
            return;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, zap, 0) < 0)
                return;
            if (frame == 0)
                snprintf(version, sizeof version, "%.*s", (int)zmq_msg_size(&m),
                         (const char *)zmq_msg_data(&m));
            if (frame == 1) {
                rid = (int)zmq_msg_size(&m) < (int)sizeof request_id ? (int)zmq_msg_size(&m) : 0;
                memcpy(request_id, zmq_msg_data(&m), (size_t)rid);
            }
            more = zmq_msg_more(&m);
            zmq_msg_close(&m);
            frame++;
        }
        zmq_send(zap, version, strlen(version), ZMQ_SNDMORE);
        zmq_send(zap, request_id, (size_t)rid, ZMQ_SNDMORE);
        zmq_send(zap, "400", 3, ZMQ_SNDMORE);
        zmq_send(zap, "not on the list", 15, ZMQ_SNDMORE);
        zmq_send(zap, "", 0, ZMQ_SNDMORE);
        zmq_send(zap, "", 0, 0);
    }
}

typedef struct test_case {
    int curve;         /* a CURVE server with SERVER_SECRET */
    int listen;        /* 0: nothing bound at the endpoint */
    const char *trust; /* client side: the server key the client believes in (NULL: plain) */
} case_t;

/* Runs one case; returns the first verdict equal to `want`, or the last one seen. */
static connmon_problem_t run_case(const case_t *k, connmon_problem_t want, uint32_t *ret_value)
{
    void *srv = NULL;
    char ep[64] = "tcp://127.0.0.1:1"; /* nothing listens on port 1 */
    if (k->listen) {
        srv = zmq_socket(ctx, ZMQ_ROUTER);
        int one = 1, zero = 0;
        zmq_setsockopt(srv, ZMQ_LINGER, &zero, sizeof zero);
        if (k->curve) {
            zmq_setsockopt(srv, ZMQ_CURVE_SERVER, &one, sizeof one);
            zmq_setsockopt(srv, ZMQ_CURVE_SECRETKEY, SERVER_SECRET, 40);
        }
        CHECK_INT_EQ(zmq_bind(srv, "tcp://127.0.0.1:*"), 0);
        size_t len = sizeof ep;
        zmq_getsockopt(srv, ZMQ_LAST_ENDPOINT, ep, &len);
    }
    void *cli = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, ivl = 50;
    zmq_setsockopt(cli, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(cli, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    if (k->trust) {
        zmq_setsockopt(cli, ZMQ_CURVE_SERVERKEY, k->trust, 40);
        zmq_setsockopt(cli, ZMQ_CURVE_PUBLICKEY, CLIENT_PUBLIC, 40);
        zmq_setsockopt(cli, ZMQ_CURVE_SECRETKEY, CLIENT_SECRET, 40);
    }
    connmon_t *m = NULL;
    CHECK_INT_EQ(connmon_new(ctx, cli, k->trust != NULL, &m), 0);
    CHECK(connmon_socket(m) != NULL);
    CHECK_INT_EQ(zmq_connect(cli, ep), 0);
    connmon_problem_t got = CONNMON_NONE;
    int64_t end = clock_mono_ms() + 5000;
    while (clock_mono_ms() < end) {
        zap_serve();
        zmq_pollitem_t pi = {connmon_socket(m), 0, ZMQ_POLLIN, 0};
        zmq_poll(&pi, 1, 20);
        got = connmon_verdict(m, ret_value);
        if (got == want)
            break;
    }
    connmon_destroy(&m);
    CHECK(m == NULL);
    zmq_close(cli);
    if (srv)
        zmq_close(srv);
    return got;
}

static void test_verdicts(void)
{
    static const struct {
        case_t k;
        connmon_problem_t want;
        const char *name;
    } cases[] = {
            {{0, 0, NULL}, CONNMON_UNREACHABLE, "nothing listening"},
            {{0, 1, NULL}, CONNMON_SILENT, "plain server, no answer"},
            {{1, 1, NULL}, CONNMON_CURVE_REQUIRED, "CURVE server, plain client"},
            {{0, 1, SERVER_PUBLIC}, CONNMON_CURVE_UNUSED, "plain server, CURVE client"},
            {{1, 1, CLIENT_PUBLIC}, CONNMON_HANGUP, "CURVE server, wrong server key"},
            {{1, 1, SERVER_PUBLIC}, CONNMON_SILENT, "CURVE handshake done, no answer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint32_t v = 0;
        connmon_problem_t got = run_case(&cases[i].k, cases[i].want, &v);
        CHECK_MSG(got == cases[i].want, "%s: verdict %d, want %d", cases[i].name, got,
                  cases[i].want);
    }
}

static void test_key_refused(void)
{
    zap = zmq_socket(ctx, ZMQ_REP);
    CHECK_INT_EQ(zmq_bind(zap, "inproc://zeromq.zap.01"), 0);
    uint32_t v = 0;
    case_t k = {1, 1, SERVER_PUBLIC};
    CHECK_INT_EQ(run_case(&k, CONNMON_KEY_REFUSED, &v), CONNMON_KEY_REFUSED);
    CHECK_INT_EQ(v, 400);
    char buf[256];
    connmon_why(CONNMON_KEY_REFUSED, 1, v, buf, sizeof buf);
    CHECK_MSG(strstr(buf, "refused our CURVE key (status 400)") && strstr(buf, "--curve-allow"),
              "%s", buf);
    zmq_close(zap);
    zap = NULL;
}

static void test_texts_and_null(void)
{
    char buf[256];
    for (int p = CONNMON_NONE; p <= CONNMON_UNREACHABLE; p++) {
        for (int curve = 0; curve <= 1; curve++) {
            buf[0] = '\0';
            CHECK(connmon_why((connmon_problem_t)p, curve, 0, buf, sizeof buf) == buf);
            CHECK_MSG(strlen(buf) > 20, "problem %d: '%s'", p, buf);
        }
    }
    connmon_why(CONNMON_HANGUP, 1, 0, buf, 8); /* truncated, still terminated */
    CHECK_INT_EQ(strlen(buf), 7);
    connmon_destroy(NULL);
    connmon_t *m = NULL;
    connmon_destroy(&m);
    CHECK_INT_EQ(connmon_verdict(NULL, NULL), CONNMON_NONE);
    CHECK_INT_EQ(connmon_read(NULL, NULL), -EAGAIN);
}

int main(void)
{
    ctx = zmq_ctx_new();
    TEST_RUN(test_texts_and_null);
    TEST_RUN(test_verdicts);
    TEST_RUN(test_key_refused);
    zmq_ctx_term(ctx);
    return test_finish();
}
