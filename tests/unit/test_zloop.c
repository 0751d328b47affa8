/*
 * test_zloop: ZeroMQ sockets in a libuv loop lose no wake-ups (common/zloop.h).
 *
 * - a burst of messages queued before the loop runs is delivered in full;
 * - an echo server that replies from inside its callback, driven by a client that sends the next
 *   message from inside its own callback (the sends consume ZMQ_FD edges), delivers every one;
 * - another thread sends bursts over tcp loopback with random pauses: all arrive;
 * - malformed messages reach the callback with an error and the watch keeps serving;
 * - a watch closed from inside its callback gets no further callbacks and is freed.
 */
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>
#include <zmq.h>

#include "frame.h"
#include "test.h"
#include "zloop.h"

static void *ctx;

static void stop_timer_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static int send_env_id(void *sock, const void *rid, size_t rlen, uint64_t id)
{
    Regmix__Envelope env;
    Regmix__Ping ping = REGMIX__PING__INIT;
    frame_envelope_init(&env, id);
    env.body_case = REGMIX__ENVELOPE__BODY_PING;
    env.ping = &ping;
    return frame_send(sock, rid, rlen, &env, 0);
}

/* Runs `loop` until a callback calls uv_stop or `ms` pass; returns 1 when it timed out. */
static int run_with_deadline(uv_loop_t *loop, int ms, int *done)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, stop_timer_cb, (uint64_t)ms, 0);
    while (!*done) {
        uv_run(loop, UV_RUN_ONCE);
        if (!uv_is_active((uv_handle_t *)&t))
            break;
    }
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return !*done;
}

static void drain_closes(uv_loop_t *loop)
{
    for (int i = 0; i < 10; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

/* ---- burst queued before the loop starts ------------------------------------------------- */

typedef struct {
    int received;
    int want;
    uint64_t next_id;
    int in_order;
    int done;
} burst_t;

static void burst_cb(zloop_watch_t *w, frame_msg_t *msg, void *data)
{
    (void)w;
    burst_t *b = data;
    if (msg->err == 0 && msg->env->id == b->next_id)
        b->next_id++;
    else
        b->in_order = 0;
    if (++b->received == b->want)
        b->done = 1;
}

static void test_burst_before_loop(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    CHECK(frame_socket_setup(router, 0) == 0);
    CHECK(frame_socket_setup(dealer, 0) == 0);
    int unlimited = 0; /* the whole burst is queued before anyone reads */
    zmq_setsockopt(router, ZMQ_RCVHWM, &unlimited, sizeof unlimited);
    zmq_setsockopt(dealer, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
    CHECK(zmq_bind(router, "inproc://burst") == 0);
    CHECK(zmq_connect(dealer, "inproc://burst") == 0);
    burst_t b = {.want = 20000, .next_id = 1, .in_order = 1};
    int send_failures = 0;
    for (int i = 1; i <= b.want; i++)
        send_failures += send_env_id(dealer, NULL, 0, (uint64_t)i) != 0;
    CHECK_INT_EQ(send_failures, 0);
    zloop_watch_t *w = NULL;
    CHECK(zloop_watch_new(&loop, router, 1, burst_cb, &b, &w) == 0);
    zloop_watch_set_batch(w, 100); /* force several check phases through the idle path */
    int timed_out = run_with_deadline(&loop, 10000, &b.done);
    CHECK(!timed_out);
    CHECK_INT_EQ(b.received, b.want);
    CHECK(b.in_order);
    CHECK_INT_EQ(zloop_watch_count(w), b.want);
    zloop_watch_close(&w);
    CHECK(w == NULL);
    zloop_watch_close(&w); /* NULL: harmless */
    drain_closes(&loop);
    zmq_close(dealer);
    zmq_close(router);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

/* ---- echo: sends from inside callbacks --------------------------------------------------- */

typedef struct {
    void *router;
    void *dealer;
    int echoed;
    int replies;
    int sent;
    int want;
    int window; /* messages in flight */
    int done;
    int bad;
} echo_t;

static void echo_server_cb(zloop_watch_t *w, frame_msg_t *msg, void *data)
{
    (void)w;
    echo_t *e = data;
    if (msg->err) {
        e->bad++;
        return;
    }
    if (send_env_id(e->router, msg->routing_id, msg->routing_len, msg->env->id) == 0)
        e->echoed++;
}

static void echo_client_cb(zloop_watch_t *w, frame_msg_t *msg, void *data)
{
    (void)w;
    echo_t *e = data;
    if (msg->err) {
        e->bad++;
        return;
    }
    e->replies++;
    /* Each reply releases one more request, sent from inside the callback. */
    if (e->sent < e->want && send_env_id(e->dealer, NULL, 0, (uint64_t)e->sent + 1) == 0)
        e->sent++;
    if (e->replies == e->want)
        e->done = 1;
}

static void run_echo(const char *endpoint, int want, int window)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    echo_t e = {.want = want, .window = window};
    e.router = zmq_socket(ctx, ZMQ_ROUTER);
    e.dealer = zmq_socket(ctx, ZMQ_DEALER);
    frame_socket_setup(e.router, 0);
    frame_socket_setup(e.dealer, 0);
    CHECK(zmq_bind(e.router, endpoint) == 0);
    char ep[256];
    size_t eplen = sizeof ep;
    zmq_getsockopt(e.router, ZMQ_LAST_ENDPOINT, ep, &eplen);
    CHECK(zmq_connect(e.dealer, ep) == 0);
    zloop_watch_t *ws = NULL, *wc = NULL;
    CHECK(zloop_watch_new(&loop, e.router, 1, echo_server_cb, &e, &ws) == 0);
    CHECK(zloop_watch_new(&loop, e.dealer, 0, echo_client_cb, &e, &wc) == 0);
    for (int i = 0; i < window && e.sent < want; i++)
        if (send_env_id(e.dealer, NULL, 0, (uint64_t)e.sent + 1) == 0)
            e.sent++;
    int timed_out = run_with_deadline(&loop, 20000, &e.done);
    CHECK_MSG(!timed_out, "%s: %d of %d replies (echoed %d)", endpoint, e.replies, want, e.echoed);
    CHECK_INT_EQ(e.replies, want);
    CHECK_INT_EQ(e.echoed, want);
    CHECK_INT_EQ(e.bad, 0);
    zloop_watch_close(&ws);
    zloop_watch_close(&wc);
    drain_closes(&loop);
    zmq_close(e.dealer);
    zmq_close(e.router);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

static void test_echo_inproc_window1(void)
{
    run_echo("inproc://echo1", 5000, 1);
}

static void test_echo_inproc_window64(void)
{
    run_echo("inproc://echo64", 20000, 64);
}

static void test_echo_tcp(void)
{
    run_echo("tcp://127.0.0.1:*", 10000, 32);
}

/* ---- another thread sends in bursts with pauses ------------------------------------------ */

typedef struct {
    char endpoint[256];
    int total;
} sender_arg_t;

static void *sender_main(void *p)
{
    sender_arg_t *a = p;
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    frame_socket_setup(d, 1000);
    zmq_connect(d, a->endpoint);
    unsigned seed = 12345;
    int sent = 0;
    while (sent < a->total) {
        int burst = 1 + (int)(rand_r(&seed) % 200);
        for (int i = 0; i < burst && sent < a->total; i++)
            if (send_env_id(d, NULL, 0, (uint64_t)sent + 1) == 0)
                sent++;
        struct timespec ts = {0, (long)(rand_r(&seed) % 3) * 300000L};
        nanosleep(&ts, NULL);
    }
    zmq_close(d); /* linger 1 s delivers what is queued */
    return NULL;
}

static void test_thread_bursts_tcp(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    frame_socket_setup(router, 0);
    CHECK(zmq_bind(router, "tcp://127.0.0.1:*") == 0);
    sender_arg_t a = {.total = 20000};
    size_t len = sizeof a.endpoint;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, a.endpoint, &len);
    burst_t b = {.want = a.total, .next_id = 1, .in_order = 1};
    zloop_watch_t *w = NULL;
    CHECK(zloop_watch_new(&loop, router, 1, burst_cb, &b, &w) == 0);
    pthread_t th;
    pthread_create(&th, NULL, sender_main, &a);
    int timed_out = run_with_deadline(&loop, 20000, &b.done);
    pthread_join(th, NULL);
    CHECK_MSG(!timed_out, "received %d of %d", b.received, b.want);
    CHECK_INT_EQ(b.received, b.want);
    CHECK(b.in_order);
    zloop_watch_close(&w);
    drain_closes(&loop);
    zmq_close(router);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

/* ---- malformed messages and closing from inside the callback ------------------------------- */

typedef struct {
    int errs;
    int oks;
    int after_close;
    int closed;
    int done;
    zloop_watch_t *w;
} bad_t;

static void bad_cb(zloop_watch_t *w, frame_msg_t *msg, void *data)
{
    bad_t *b = data;
    if (b->closed) {
        b->after_close++;
        return;
    }
    if (msg->err)
        b->errs++;
    else
        b->oks++;
    if (b->errs + b->oks == 5) {
        CHECK(w == b->w);
        zloop_watch_close(&b->w);
        b->closed = 1;
        b->done = 1;
    }
}

static void test_malformed_and_close_in_cb(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    frame_socket_setup(router, 0);
    frame_socket_setup(dealer, 0);
    CHECK(zmq_bind(router, "inproc://bad") == 0);
    CHECK(zmq_connect(dealer, "inproc://bad") == 0);
    zmq_send(dealer, "\xff\xff\xff garbage", 12, 0); /* does not decode */
    zmq_send(dealer, "", 0, 0);                      /* empty frame */
    zmq_send(dealer, "a", 1, ZMQ_SNDMORE);           /* extra frames */
    zmq_send(dealer, "b", 1, 0);                     /* … */
    CHECK(send_env_id(dealer, NULL, 0, 7) == 0);     /* valid */
    CHECK(send_env_id(dealer, NULL, 0, 8) == 0);     /* valid, after close: never seen */
    CHECK(send_env_id(dealer, NULL, 0, 9) == 0);     /* valid, after close: never seen */
    bad_t b = {0};
    CHECK(zloop_watch_new(&loop, router, 1, bad_cb, &b, &b.w) == 0);
    zmq_send(dealer, "\x08\x02", 2, 0); /* version 2: unknown version */
    int timed_out = run_with_deadline(&loop, 5000, &b.done);
    CHECK(!timed_out);
    CHECK_INT_EQ(b.errs, 3);
    CHECK_INT_EQ(b.oks, 2);
    CHECK_INT_EQ(b.after_close, 0);
    drain_closes(&loop);
    zmq_close(dealer);
    zmq_close(router);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

/* ---- raw mode: the callback reads whole multi-part messages itself ------------------------ */

typedef struct {
    int messages;
    int frames;
    int want;
    int done;
} raw_t;

static void raw_cb(zloop_watch_t *w, void *sock, void *data)
{
    (void)w;
    raw_t *r = data;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        r->frames++;
    }
    if (++r->messages == r->want)
        r->done = 1;
}

static void test_raw_multipart(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int unlimited = 0;
    zmq_setsockopt(router, ZMQ_RCVHWM, &unlimited, sizeof unlimited);
    zmq_setsockopt(dealer, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
    CHECK(zmq_bind(router, "inproc://raw") == 0);
    CHECK(zmq_connect(dealer, "inproc://raw") == 0);
    raw_t r = {.want = 3000};
    zloop_watch_t *w = NULL;
    CHECK(zloop_watch_new_raw(&loop, router, raw_cb, &r, &w) == 0);
    for (int i = 0; i < r.want; i++) {
        zmq_send(dealer, "a", 1, ZMQ_SNDMORE);
        zmq_send(dealer, "bc", 2, 0);
    }
    CHECK(!run_with_deadline(&loop, 10000, &r.done));
    CHECK_INT_EQ(r.messages, r.want);
    CHECK_INT_EQ(r.frames, 3 * r.want); /* routing id + 2 */
    zloop_watch_close(&w);
    drain_closes(&loop);
    zmq_close(dealer);
    zmq_close(router);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

static void test_bad_args(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    zloop_watch_t *w = NULL;
    CHECK(zloop_watch_new(&loop, NULL, 1, bad_cb, NULL, &w) == -EINVAL);
    CHECK(w == NULL);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
    ctx = zmq_ctx_new();
    TEST_RUN(test_burst_before_loop);
    TEST_RUN(test_echo_inproc_window1);
    TEST_RUN(test_echo_inproc_window64);
    TEST_RUN(test_echo_tcp);
    TEST_RUN(test_thread_bursts_tcp);
    TEST_RUN(test_malformed_and_close_in_cb);
    TEST_RUN(test_raw_multipart);
    TEST_RUN(test_bad_args);
    zmq_ctx_term(ctx);
    return test_finish();
}
