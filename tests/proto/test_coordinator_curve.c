/*
 * test_coordinator_curve: with --curve-secret-key and --curve-allow, both endpoints of a real
 * coordinator serve only CURVE clients whose public key is on the allow list (docs/protocol.md):
 * an allowed client gets answers on both endpoints; a client with another key pair, and a plain
 * (non-CURVE) client, get nothing; the daemon keeps serving. A bad key file stops the start.
 */
#include "coord_harness.h"
#include "test.h"

static coord_harness_t H;
static char srv_pub[41], srv_sec[41], cli_pub[41], cli_sec[41], bad_pub[41], bad_sec[41];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int worker_hello_ok(void)
{
    void *w = coord_harness_dealer(&H, H.workers_ep);
    Regmix__Envelope env;
    Regmix__Hello h = REGMIX__HELLO__INIT;
    h.worker_id = "w-curve";
    h.slots = 1;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    Regmix__Envelope *r = coord_harness_rpc(w, &env, 2000);
    int ok = r && r->body_case == REGMIX__ENVELOPE__BODY_WELCOME;
    frame_free(&r);
    zmq_close(w);
    return ok;
}

static void test_allowed_client(void)
{
    H.curve_client_pub = cli_pub;
    H.curve_client_sec = cli_sec;
    CHECK(coord_harness_list_ok(&H, 3000));
    CHECK(worker_hello_ok());
}

static void test_other_key_refused(void)
{
    H.curve_client_pub = bad_pub;
    H.curve_client_sec = bad_sec;
    CHECK(!coord_harness_list_ok(&H, 700));
    CHECK(!worker_hello_ok());
}

static void test_plain_client_refused(void)
{
    const char *saved = H.curve_server_pub;
    H.curve_server_pub = NULL;
    CHECK(!coord_harness_list_ok(&H, 700));
    H.curve_server_pub = saved;
    H.curve_client_pub = cli_pub;
    H.curve_client_sec = cli_sec;
    CHECK(coord_harness_alive(&H));
    CHECK(coord_harness_list_ok(&H, 3000));
}

int main(void)
{
    CHECK(zmq_curve_keypair(srv_pub, srv_sec) == 0);
    CHECK(zmq_curve_keypair(cli_pub, cli_sec) == 0);
    CHECK(zmq_curve_keypair(bad_pub, bad_sec) == 0);
    snprintf(H.dir, sizeof H.dir, "/tmp/regmix-curve-test-XXXXXX");
    if (!mkdtemp(H.dir))
        return 1;
    snprintf(H.db, sizeof H.db, "%s/regmix.db", H.dir);
    snprintf(H.workers_ep, sizeof H.workers_ep, "tcp://127.0.0.1:%d", coord_harness_free_port());
    snprintf(H.clients_ep, sizeof H.clients_ep, "tcp://127.0.0.1:%d", coord_harness_free_port());
    H.zctx = zmq_ctx_new();
    char key[300], allow[300], badkey[300], text[200];
    snprintf(key, sizeof key, "%s/server.key", H.dir);
    snprintf(allow, sizeof allow, "%s/allowed", H.dir);
    snprintf(badkey, sizeof badkey, "%s/bad.key", H.dir);
    snprintf(text, sizeof text, "%s\n", srv_sec);
    write_file(key, text);
    snprintf(text, sizeof text, "# regmixctl of alice\n\n%s\n", cli_pub);
    write_file(allow, text);
    write_file(badkey, "not a key\n");

    /* A bad key file: the coordinator refuses to start (exit 1). */
    const char *bad[] = {"--curve-secret-key", badkey, NULL};
    H.curve_server_pub = srv_pub;
    H.curve_client_pub = cli_pub;
    H.curve_client_sec = cli_sec;
    CHECK(coord_harness_start(&H, bad) < 0);
    int st = 0;
    if (H.pid > 0)
        waitpid(H.pid, &st, 0);
    H.pid = 0;

    const char *extra[] = {"--curve-secret-key", key, "--curve-allow", allow, NULL};
    int r = coord_harness_start(&H, extra);
    CHECK_MSG(r == 0, "coordinator did not start: %d", r);
    if (r == 0) {
        TEST_RUN(test_allowed_client);
        TEST_RUN(test_other_key_refused);
        TEST_RUN(test_plain_client_refused);
        CHECK_INT_EQ(coord_harness_stop(&H, SIGTERM), 0);
    }
    if (test__failures)
        coord_harness_dump_log(&H);
    coord_harness_cleanup(&H);
    return test_finish();
}
