/*
 * test_coordinator_metrics: `--metrics HOST:PORT` serves GET /metrics (Prometheus text whose
 * numbers follow the daemon's state), GET /healthz, and 404 elsewhere, from the loop thread,
 * while both ZeroMQ endpoints keep serving. Skipped when built without libmicrohttpd.
 */
#include "config.h"
#include "coord_harness.h"
#include "test.h"

static coord_harness_t H;
static int http_port;

/* GET `path`; returns the HTTP status and copies the body into body (NUL-terminated). */
static int http_get(const char *path, char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)http_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    static char buf[65536];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    int status = -1;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
    return status;
}

static void test_endpoints(void)
{
    static char body[65536];
    CHECK_INT_EQ(http_get("/healthz", body, sizeof body), 200);
    CHECK_STR_EQ(body, "ok\n");
    CHECK_INT_EQ(http_get("/nothing-here", body, sizeof body), 404);
    CHECK_INT_EQ(http_get("/metrics", body, sizeof body), 200);
    CHECK(strstr(body, "regmix_up 1\n") != NULL);
    CHECK(strstr(body, "regmix_runs{state=\"queued\"} 0\n") != NULL);
    CHECK(strstr(body, "regmix_bad_input_total 0\n") != NULL);
}

static void test_numbers_follow_state(void)
{
    /* One bad message and one submitted sweep of 5 runs show up in the metrics. */
    void *s = coord_harness_dealer(&H, H.clients_ep);
    zmq_send(s, "\xff", 1, 0);
    Regmix__Envelope *r = coord_harness_recv(s, 3000);
    CHECK(r && r->body_case == REGMIX__ENVELOPE__BODY_ERROR);
    frame_free(&r);
    Regmix__Envelope env;
    Regmix__SubmitRequest sub = REGMIX__SUBMIT_REQUEST__INIT;
    sub.spec_yaml = "name: m\n"
                    "domains: [{name: a, tokens: 1.0e9}, {name: b, tokens: 3.0e9}]\n"
                    "sampling: {runs: 5}\n"
                    "proxy: {trainer: synthetic}\n";
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_SUBMIT;
    env.submit = &sub;
    r = coord_harness_rpc(s, &env, 10000);
    CHECK(r && r->body_case == REGMIX__ENVELOPE__BODY_SUBMIT_REPLY);
    frame_free(&r);
    zmq_close(s);
    static char body[65536];
    CHECK_INT_EQ(http_get("/metrics", body, sizeof body), 200);
    CHECK(strstr(body, "regmix_runs{state=\"queued\"} 5\n") != NULL);
    CHECK(strstr(body, "regmix_sweeps{state=\"running\"} 1\n") != NULL);
    CHECK(strstr(body, "regmix_bad_input_total 1\n") != NULL);
    CHECK(coord_harness_list_ok(&H, 3000));
}

int main(void)
{
    http_port = coord_harness_free_port();
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", http_port);
    const char *extra[] = {"--metrics", addr, NULL};
    int r = coord_harness_start(&H, extra);
    CHECK_MSG(r == 0, "coordinator did not start: %d", r);
    if (r == 0) {
        TEST_RUN(test_endpoints);
        TEST_RUN(test_numbers_follow_state);
        CHECK_INT_EQ(coord_harness_stop(&H, SIGTERM), 0);
    }
    if (test__failures)
        coord_harness_dump_log(&H);
    coord_harness_cleanup(&H);
    return test_finish();
}
