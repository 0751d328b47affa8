/*
 * test_dup_result: a raw DEALER in this test plays a worker against the real coordinator:
 * HELLO, WELCOME, READY, takes an ASSIGN, and sends its RESULT twice, then a RESULT for an
 * attempt that does not exist. Both copies are acknowledged (the first accepted, the second
 * not), the stale one is acknowledged and discarded, and after the coordinator stops the
 * database holds exactly one result for the run, which is done.
 *
 * usage: test_dup_result PATH/regmix-coordinator PATH/regmixctl
 */
#include <sqlite3.h>

#include "integration/wire.h"
#include "test.h"

static char tmpdir[256], dbpath[300], logpath[300], specpath[300];
static char wep[64], cep[64];
static const char *coord_bin, *ctl_bin;
static void *ctx, *dealer;
static pid_t cpid;
static char sweep_id[64];
static uint64_t attempt_id, run_id;

static void send_env(Regmix__Envelope *env)
{
    static uint64_t id;
    env->id = ++id;
    CHECK_INT_EQ(frame_send(dealer, NULL, 0, env, 0), 0);
}

static Regmix__Envelope *expect(Regmix__Envelope__BodyCase want, int timeout_ms)
{
    long long end = wire_now_ms() + timeout_ms;
    while (wire_now_ms() < end) {
        frame_msg_t m;
        if (wire_recv(dealer, 0, (int)(end - wire_now_ms()), &m) != 0)
            break;
        if (!m.env)
            continue;
        if (m.env->body_case == want)
            return m.env;
        if (m.env->body_case == REGMIX__ENVELOPE__BODY_ERROR)
            fprintf(stderr, "coordinator error: %s\n", m.env->error->message);
        frame_free(&m.env);
    }
    return NULL;
}

static void send_result(uint64_t aid, uint64_t rid, double loss)
{
    Regmix__Envelope env;
    Regmix__Result r = REGMIX__RESULT__INIT;
    Regmix__DomainValue v = REGMIX__DOMAIN_VALUE__INIT, *vp = &v;
    v.name = "synthetic";
    v.value = loss;
    r.attempt_id = aid;
    r.run_id = rid;
    r.losses = &vp;
    r.n_losses = 1;
    r.seconds = 0.01;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_RESULT;
    env.result = &r;
    send_env(&env);
}

/* Submits the spec with regmixctl; its DEALER connects as soon as the coordinator has bound (no
 * retry loop needed), and it waits at most --timeout for the reply. */
static int run_ctl_submit(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' --coordinator %s submit '%s' --timeout 10", ctl_bin, cep,
             specpath);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[128] = "";
    char *got = fgets(line, sizeof line, f);
    int st = pclose(f);
    if (!got || st != 0)
        return -1;
    line[strcspn(line, "\r\n")] = '\0';
    snprintf(sweep_id, sizeof sweep_id, "%s", line);
    return 0;
}

/* Each step returns 0, or -1 after a failed check: the steps after it depend on it. */
static int start_and_submit(void)
{
    FILE *f = fopen(specpath, "w");
    CHECK_MSG(f != NULL, "cannot write %s", specpath);
    if (!f)
        return -1;
    fputs("name: dup-result\n"
          "domains:\n  - {name: web, tokens: 1.0e9}\n  - {name: code, tokens: 1.0e9}\n"
          "sampling: {runs: 1, seed: 3}\n"
          "proxy: {trainer: synthetic, max_attempts: 3, synthetic: {delay_ms: 0}}\n"
          "regression: {target: web, model: linear, simulate: 100, top_k: 10, refit_every: 1000}\n",
          f);
    fclose(f);
    char *argv[] = {(char *)coord_bin, "--db", dbpath,       "--workers", wep, "--clients", cep,
                    "--heartbeat-ms",  "200",  "--lease-ms", "5000",      NULL};
    cpid = wire_spawn(argv, logpath);
    CHECK_MSG(cpid > 0, "coordinator not started");
    if (cpid <= 0)
        return -1;
    int rc = run_ctl_submit();
    CHECK_MSG(rc == 0 && sweep_id[0], "regmixctl submit failed");
    return rc == 0 && sweep_id[0] ? 0 : -1;
}

static int hello_assign(void)
{
    dealer = wire_socket(ctx, ZMQ_DEALER, wep, 0);
    CHECK(dealer != NULL);
    if (!dealer)
        return -1;
    Regmix__Envelope env;
    Regmix__Hello h = REGMIX__HELLO__INIT;
    frame_envelope_init(&env, 0);
    h.worker_id = "test:raw";
    h.boot_id = "0123456789abcdef0123456789abcdef";
    h.host = "test";
    h.slots = 1;
    h.software_version = "test";
    env.body_case = REGMIX__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    send_env(&env);
    Regmix__Envelope *w = expect(REGMIX__ENVELOPE__BODY_WELCOME, 5000);
    CHECK_MSG(w != NULL, "WELCOME after HELLO");
    if (!w)
        return -1;
    frame_free(&w);
    Regmix__Ready rd = REGMIX__READY__INIT;
    rd.free_slots = 1;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_READY;
    env.ready = &rd;
    send_env(&env);
    Regmix__Envelope *a = expect(REGMIX__ENVELOPE__BODY_ASSIGN, 5000);
    CHECK_MSG(a != NULL, "ASSIGN after READY(1)");
    if (!a)
        return -1;
    attempt_id = a->assign->attempt_id;
    run_id = a->assign->run_id;
    CHECK(attempt_id > 0);
    CHECK(run_id > 0);
    CHECK_STR_EQ(a->assign->sweep_id, sweep_id);
    CHECK_INT_EQ(a->assign->kind, REGMIX__JOB_KIND__JOB_KIND_SYNTHETIC);
    frame_free(&a);
    Regmix__Started st = REGMIX__STARTED__INIT;
    st.attempt_id = attempt_id;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_STARTED;
    env.started = &st;
    send_env(&env);
    return attempt_id > 0 ? 0 : -1;
}

static int result_twice(void)
{
    send_result(attempt_id, run_id, 0.5);
    send_result(attempt_id, run_id, 0.75); /* a different value: must not replace the first */
    Regmix__Envelope *a1 = expect(REGMIX__ENVELOPE__BODY_RESULT_ACK, 5000);
    Regmix__Envelope *a2 = expect(REGMIX__ENVELOPE__BODY_RESULT_ACK, 5000);
    CHECK_MSG(a1 && a2, "both copies acknowledged");
    if (a1 && a2) {
        CHECK_INT_EQ(a1->result_ack->attempt_id, attempt_id);
        CHECK_INT_EQ(a2->result_ack->attempt_id, attempt_id);
        CHECK_MSG(a1->result_ack->accepted && !a2->result_ack->accepted,
                  "first accepted, duplicate not (%d, %d)", a1->result_ack->accepted,
                  a2->result_ack->accepted);
    }
    frame_free(&a1);
    frame_free(&a2);
    /* A result for an attempt that never existed: acknowledged and discarded. */
    send_result(attempt_id + 1000, run_id, 0.1);
    Regmix__Envelope *a3 = expect(REGMIX__ENVELOPE__BODY_RESULT_ACK, 5000);
    CHECK_MSG(a3 != NULL, "stale result acknowledged");
    if (a3)
        CHECK(!a3->result_ack->accepted);
    frame_free(&a3);
    return 0;
}

static long long db_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "sql failed: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return v;
}

static int store_exact(void)
{
    kill(cpid, SIGTERM);
    int status = -1;
    CHECK_INT_EQ(wire_wait(cpid, 10000, &status), 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sqlite3 *db = NULL;
    CHECK_INT_EQ(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    CHECK_INT_EQ(db_int(db, "SELECT count(*) FROM results"), 1);
    CHECK_INT_EQ(db_int(db, "SELECT count(*) FROM runs WHERE state = 'done'"), 1);
    CHECK_INT_EQ(db_int(db, "SELECT count(*) FROM runs"), 1);
    CHECK_INT_EQ(db_int(db, "SELECT count(*) FROM attempts WHERE state IN ('leased', 'running')"),
                 0);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT losses FROM results", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *losses = (const char *)sqlite3_column_text(st, 0);
        CHECK_MSG(losses && strstr(losses, "0.5") && !strstr(losses, "0.75"),
                  "the first copy is the one stored: %s", losses ? losses : "(null)");
    } else {
        CHECK_MSG(0, "no result row");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

/* One scenario: a step that fails fails the test and ends it (the later steps depend on it). */
static void test_duplicate_result(void)
{
    if (start_and_submit() < 0 || hello_assign() < 0 || result_twice() < 0)
        return;
    store_exact();
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PATH/regmix-coordinator PATH/regmixctl\n", argv[0]);
        return 2;
    }
    coord_bin = argv[1];
    ctl_bin = argv[2];
    atexit(wire_cleanup);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regmix-dup-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    snprintf(dbpath, sizeof dbpath, "%s/regmix.db", tmpdir);
    snprintf(logpath, sizeof logpath, "%s/coordinator.log", tmpdir);
    snprintf(specpath, sizeof specpath, "%s/spec.yaml", tmpdir);
    int wp = wire_free_port(), cp = wire_free_port();
    while (cp == wp)
        cp = wire_free_port();
    snprintf(wep, sizeof wep, "tcp://127.0.0.1:%d", wp);
    snprintf(cep, sizeof cep, "tcp://127.0.0.1:%d", cp);
    ctx = zmq_ctx_new();
    TEST_RUN(test_duplicate_result);
    if (dealer)
        zmq_close(dealer);
    zmq_ctx_term(ctx);
    wire_cleanup();
    return test_finish_tmpdir(tmpdir, "coordinator log and database");
}
