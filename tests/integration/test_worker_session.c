/*
 * test_worker_session: the real regmix-worker against a ROUTER in this test that plays the
 * coordinator (docs/protocol.md): HELLO/WELCOME/READY, synthetic and command jobs with their
 * exact results, failures with the reason, results kept on disk until RESULT_ACK and resent by
 * a worker restarted after kill -9, CANCEL, reconnect when the coordinator goes silent, garbage
 * frames survived, and a clean exit on SIGTERM.
 *
 * usage: test_worker_session PATH/regmix-worker
 */
#include <sys/stat.h>

#include "integration/wire.h"
#include "test.h"

static const char *worker_bin;
static char tmpdir[256], workdir[300], logpath[300], trainer[300];
static void *ctx, *router;
static char endpoint[256];
static uint8_t peer[256];
static size_t peer_len;
static int pong = 1;
static unsigned last_ready = 9999;
static int n_hello;

static void send_env(Regmix__Envelope *env)
{
    static uint64_t id;
    env->id = ++id;
    CHECK_INT_EQ(frame_send(router, peer, peer_len, env, 0), 0);
}

/* Receives until a message of body `want` arrives (answering PINGs, noting READYs); returns it
 * or NULL after timeout_ms. */
static Regmix__Envelope *expect(Regmix__Envelope__BodyCase want, int timeout_ms)
{
    long long end = wire_now_ms() + timeout_ms;
    while (wire_now_ms() < end) {
        frame_msg_t m;
        if (wire_recv(router, 1, (int)(end - wire_now_ms()), &m) != 0)
            break;
        if (!m.env)
            continue;
        memcpy(peer, m.routing_id, m.routing_len);
        peer_len = m.routing_len;
        Regmix__Envelope *env = m.env;
        if (env->body_case == REGMIX__ENVELOPE__BODY_HELLO)
            n_hello++;
        if (env->body_case == REGMIX__ENVELOPE__BODY_READY)
            last_ready = env->ready->free_slots;
        if (env->body_case == REGMIX__ENVELOPE__BODY_PING && pong) {
            Regmix__Envelope r;
            Regmix__Pong p = REGMIX__PONG__INIT;
            frame_envelope_init(&r, 0);
            r.body_case = REGMIX__ENVELOPE__BODY_PONG;
            r.pong = &p;
            r.reply_to = env->id;
            send_env(&r);
        }
        if (env->body_case == want)
            return env;
        frame_free(&env);
    }
    return NULL;
}

static pid_t start_worker(void)
{
    char *argv[] = {(char *)worker_bin,
                    "--coordinator",
                    endpoint,
                    "--slots",
                    "2",
                    "--gpus",
                    "none",
                    "--workdir",
                    workdir,
                    "--name",
                    "t1",
                    "--log-level",
                    "debug",
                    "--kill-grace-ms",
                    "500",
                    "--trainer",
                    trainer,
                    "--allow-commands",
                    NULL};
    return wire_spawn(argv, logpath);
}

static void welcome(uint32_t hb_ms)
{
    Regmix__Envelope env;
    Regmix__Welcome w = REGMIX__WELCOME__INIT;
    frame_envelope_init(&env, 0);
    w.heartbeat_ms = hb_ms;
    w.lease_ms = 5000;
    w.coordinator_id = "test";
    env.body_case = REGMIX__ENVELOPE__BODY_WELCOME;
    env.welcome = &w;
    send_env(&env);
}

static void
assign_synthetic(uint64_t attempt, uint64_t run, uint64_t seed, uint32_t delay_ms, double fail_rate)
{
    Regmix__Envelope env;
    Regmix__Assign a = REGMIX__ASSIGN__INIT;
    Regmix__SyntheticJob s = REGMIX__SYNTHETIC_JOB__INIT;
    Regmix__DomainWeight w[2] = {REGMIX__DOMAIN_WEIGHT__INIT, REGMIX__DOMAIN_WEIGHT__INIT};
    Regmix__DomainWeight o[2] = {REGMIX__DOMAIN_WEIGHT__INIT, REGMIX__DOMAIN_WEIGHT__INIT};
    Regmix__DomainWeight *wp[2] = {&w[0], &w[1]}, *op[2] = {&o[0], &o[1]};
    w[0].domain = o[0].domain = "a";
    w[1].domain = o[1].domain = "b";
    w[0].weight = 0.25;
    w[1].weight = 0.75;
    o[0].weight = 0.5;
    o[1].weight = 0.5;
    s.optimum = op;
    s.n_optimum = 2;
    s.delay_ms = delay_ms;
    s.fail_rate = fail_rate;
    a.attempt_id = attempt;
    a.run_id = run;
    a.sweep_id = "sw1";
    a.attempt_no = 1;
    a.seed = seed;
    a.weights = wp;
    a.n_weights = 2;
    a.kind = REGMIX__JOB_KIND__JOB_KIND_SYNTHETIC;
    a.synthetic = &s;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_ASSIGN;
    env.assign = &a;
    send_env(&env);
}

static void assign_command(uint64_t attempt, uint64_t run, uint64_t seed, const char *script)
{
    Regmix__Envelope env;
    Regmix__Assign a = REGMIX__ASSIGN__INIT;
    Regmix__DomainWeight w = REGMIX__DOMAIN_WEIGHT__INIT, *wp = &w;
    char *argv[] = {"/bin/sh", "-c",     (char *)script, "job",
                    "{run}",   "{seed}", "{result}",     "{weights_json}"};
    w.domain = "web";
    w.weight = 1.0;
    a.attempt_id = attempt;
    a.run_id = run;
    a.sweep_id = "sw1";
    a.attempt_no = 2;
    a.seed = seed;
    a.weights = &wp;
    a.n_weights = 1;
    a.kind = REGMIX__JOB_KIND__JOB_KIND_COMMAND;
    a.argv = argv;
    a.n_argv = 8;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_ASSIGN;
    env.assign = &a;
    send_env(&env);
}

/* BUILTIN with a stand-in trainer (a script) that records its argv and reports on fd 3. */
static void assign_builtin(uint64_t attempt, uint64_t run, const char *train_json)
{
    Regmix__Envelope env;
    Regmix__Assign a = REGMIX__ASSIGN__INIT;
    Regmix__DomainWeight w = REGMIX__DOMAIN_WEIGHT__INIT, *wp = &w;
    uint32_t gpus[] = {3, 1};
    w.domain = "web";
    w.weight = 1.0;
    a.attempt_id = attempt;
    a.run_id = run;
    a.sweep_id = "sw1";
    a.attempt_no = 1;
    a.seed = 9;
    a.weights = &wp;
    a.n_weights = 1;
    a.kind = REGMIX__JOB_KIND__JOB_KIND_BUILTIN;
    a.train_args_json = (char *)train_json;
    a.data_json = "{\"web\": {\"train\": \"/d/web/t*.bin\", \"valid\": \"/d/web/v*.bin\", "
                  "\"bytes_per_token\": 4.2}}";
    a.gpu_indices = gpus;
    a.n_gpu_indices = 2;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_ASSIGN;
    env.assign = &a;
    send_env(&env);
}

static void ack(uint64_t attempt, int failed)
{
    Regmix__Envelope env;
    Regmix__ResultAck ra = REGMIX__RESULT_ACK__INIT;
    Regmix__FailedAck fa = REGMIX__FAILED_ACK__INIT;
    frame_envelope_init(&env, 0);
    if (failed) {
        fa.attempt_id = attempt;
        env.body_case = REGMIX__ENVELOPE__BODY_FAILED_ACK;
        env.failed_ack = &fa;
    } else {
        ra.attempt_id = attempt;
        ra.accepted = 1;
        env.body_case = REGMIX__ENVELOPE__BODY_RESULT_ACK;
        env.result_ack = &ra;
    }
    send_env(&env);
}

/* Waits ms as the coordinator must while the test looks at files: answering PINGs. A fake
 * coordinator that only slept would be one the worker leaves after 3 heartbeats (300 ms here),
 * reconnecting from a new socket, and the next message to the old one fails (EHOSTUNREACH). */
static void serve(int ms)
{
    Regmix__Envelope *x = expect(REGMIX__ENVELOPE__BODY__NOT_SET, ms);
    frame_free(&x);
}

static int file_exists_within(const char *path, int want, int timeout_ms)
{
    long long end = wire_now_ms() + timeout_ms;
    do {
        if ((access(path, F_OK) == 0) == want)
            return 1;
        serve(20);
    } while (wire_now_ms() < end);
    return 0;
}

static int file_contains(const char *path, const char *needle)
{
    char buf[65536];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static pid_t wpid;

static void test_hello_welcome_ready(void)
{
    wpid = start_worker();
    CHECK(wpid > 0);
    Regmix__Envelope *h = expect(REGMIX__ENVELOPE__BODY_HELLO, 5000);
    CHECK(h != NULL);
    if (!h)
        return;
    const char *wid = h->hello->worker_id;
    CHECK(strlen(wid) > 3 && strcmp(wid + strlen(wid) - 3, ":t1") == 0);
    CHECK_INT_EQ(h->hello->slots, 2);
    CHECK_INT_EQ(h->hello->n_attempts, 0);
    CHECK_INT_EQ(strlen(h->hello->boot_id), 32);
    CHECK_INT_EQ(h->hello->n_gpus, 0);
    frame_free(&h);
    welcome(100);
    Regmix__Envelope *r = expect(REGMIX__ENVELOPE__BODY_READY, 2000);
    CHECK(r != NULL);
    if (r)
        CHECK_INT_EQ(r->ready->free_slots, 2);
    frame_free(&r);
    /* PINGs come at the heartbeat interval with the free slots. */
    long long t0 = wire_now_ms();
    Regmix__Envelope *p1 = expect(REGMIX__ENVELOPE__BODY_PING, 1000);
    Regmix__Envelope *p2 = expect(REGMIX__ENVELOPE__BODY_PING, 1000);
    CHECK(p1 && p2);
    CHECK(wire_now_ms() - t0 < 600);
    if (p2)
        CHECK_INT_EQ(p2->ping->free_slots, 2);
    frame_free(&p1);
    frame_free(&p2);
}

static void test_synthetic_result_and_ack(void)
{
    assign_synthetic(11, 1, 42, 0, 0.0);
    Regmix__Envelope *r = expect(REGMIX__ENVELOPE__BODY_RESULT, 3000);
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK_INT_EQ(r->result->attempt_id, 11);
    CHECK_INT_EQ(r->result->run_id, 1);
    /* `synthetic`, then the same value as each domain's loss (worker/job.h) */
    CHECK_INT_EQ(r->result->n_losses, 3);
    if (r->result->n_losses == 3) {
        static const char *const want[3] = {"synthetic", "a", "b"};
        for (int i = 0; i < 3; i++) {
            CHECK_STR_EQ(r->result->losses[i]->name, want[i]);
            /* (0.25-0.5)^2 + (0.75-0.5)^2 with zero noise, exactly up to rounding */
            CHECK_NEAR(r->result->losses[i]->value, 0.125, 1e-12);
        }
    }
    frame_free(&r);
    /* Synthetic reports live in the outbox journal until acknowledged. */
    char path[512];
    snprintf(path, sizeof path, "%s/outbox.jsonl", workdir);
    CHECK_MSG(file_contains(path, "\"attempt_id\":11,"), "unacknowledged result journaled");
    CHECK_MSG(!file_contains(path, "\"op\":\"ack\""), "no ack line before the ack");
    /* Not acknowledged: it is sent again (resend interval max(2 hb, 1 s)). */
    Regmix__Envelope *again = expect(REGMIX__ENVELOPE__BODY_RESULT, 3000);
    CHECK(again != NULL);
    if (again)
        CHECK_INT_EQ(again->result->attempt_id, 11);
    frame_free(&again);
    ack(11, 0);
    long long end = wire_now_ms() + 2000;
    while (!file_contains(path, "\"op\":\"ack\"") && wire_now_ms() < end)
        serve(20);
    CHECK_MSG(file_contains(path, "{\"op\":\"ack\",\"attempt_id\":11}"), "ack journaled");
    Regmix__Envelope *none = expect(REGMIX__ENVELOPE__BODY_RESULT, 1300);
    CHECK_MSG(none == NULL, "no resend after the ack");
    frame_free(&none);
}

static void test_synthetic_noise_and_failure(void)
{
    /* Same seed, same noise draw: deterministic; fail_rate 1 always fails. */
    assign_synthetic(12, 2, 7, 0, 1.0);
    Regmix__Envelope *f = expect(REGMIX__ENVELOPE__BODY_FAILED, 3000);
    CHECK(f != NULL);
    if (f) {
        CHECK_INT_EQ(f->failed->attempt_id, 12);
        CHECK(strstr(f->failed->reason, "synthetic") != NULL);
    }
    frame_free(&f);
    ack(12, 1);
}

static void test_command_job(void)
{
    /* The script checks placeholders against the environment, writes progress on fd 3 and the
     * result file; the loss is the seed so the test can check it came through. */
    const char *script = "set -e; test \"$1\" = \"$REGMIX_RUN\"; test \"$2\" = \"$REGMIX_SEED\"; "
                         "test \"$3\" = \"$REGMIX_RESULT\"; test \"$4\" = \"$REGMIX_WEIGHTS\"; "
                         "test \"$CUDA_VISIBLE_DEVICES\" = \"\"; "
                         "echo '{\"step\": 5, \"loss\": 2.5}' >&$REGMIX_PROGRESS_FD; "
                         "printf '{\"losses\": {\"web\": %s, \"code\": 1.5}}' \"$2\" > \"$3\"";
    assign_command(13, 3, 77, script);
    Regmix__Envelope *s = expect(REGMIX__ENVELOPE__BODY_STARTED, 3000);
    CHECK(s != NULL);
    if (s)
        CHECK(s->started->pid > 0);
    frame_free(&s);
    Regmix__Envelope *r = expect(REGMIX__ENVELOPE__BODY_RESULT, 5000);
    CHECK(r != NULL);
    if (r) {
        CHECK_INT_EQ(r->result->attempt_id, 13);
        CHECK_INT_EQ(r->result->n_losses, 2);
        for (size_t i = 0; i < r->result->n_losses; i++) {
            if (strcmp(r->result->losses[i]->name, "web") == 0)
                CHECK_NEAR(r->result->losses[i]->value, 77.0, 0);
            else
                CHECK_NEAR(r->result->losses[i]->value, 1.5, 0);
        }
    }
    frame_free(&r);
    ack(13, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/sw1/3-2/stdout.log", workdir);
    CHECK_MSG(file_exists_within(path, 1, 1000), "job directory with its logs: %s", path);
}

static void test_builtin_job(void)
{
    assign_builtin(31, 21,
                   "{\"model\": {\"layers\": 2, \"heads\": 4}, \"train\": {\"batch\": 8, "
                   "\"micro_batch\": 4, \"lr\": 0.0004, \"schedule\": \"cosine\"}}");
    Regmix__Envelope *r = expect(REGMIX__ENVELOPE__BODY_RESULT, 5000);
    CHECK(r != NULL);
    if (r) {
        CHECK_INT_EQ(r->result->attempt_id, 31);
        CHECK_INT_EQ(r->result->tokens, 1000);
        CHECK_NEAR(r->result->seconds, 2.0, 0);
        CHECK_INT_EQ(r->result->n_losses, 1);
        if (r->result->n_losses == 1)
            CHECK_NEAR(r->result->losses[0]->value, 3.5, 0);
    }
    frame_free(&r);
    ack(31, 0);
    char path[512], args[2048] = "";
    snprintf(path, sizeof path, "%s/sw1/21-1/args.txt", workdir);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "the trainer ran in its job directory: %s", path);
    if (f) {
        if (!fgets(args, sizeof args, f))
            args[0] = '\0';
        fclose(f);
    }
    static const char *want[] = {"--layers 2 ",
                                 "--heads 4 ",
                                 "--batch 8 ",
                                 "--micro-batch 4 ",
                                 "--lr 0.0004 ",
                                 "--schedule cosine ",
                                 "--train web=/d/web/t*.bin ",
                                 "--valid web=/d/web/v*.bin ",
                                 "--weights-json {\"web\":1.0} ",
                                 "--seed 9 ",
                                 "--progress-fd 3 ",
                                 "CUDA=3,1"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CHECK_MSG(strstr(args, want[i]) != NULL, "'%s' in trainer args: %s", want[i], args);
    CHECK_MSG(strstr(args, "bytes") == NULL, "no flag from bytes_per_token: %s", args);

    /* A trainer that ends well but says no result (the stand-in does so for 7 layers) is a
     * failure with that reason. */
    assign_builtin(32, 22, "{\"model\": {\"layers\": 7}}");
    Regmix__Envelope *fl = expect(REGMIX__ENVELOPE__BODY_FAILED, 5000);
    CHECK(fl != NULL);
    if (fl)
        CHECK_MSG(strstr(fl->failed->reason, "without a result") != NULL, "reason: %s",
                  fl->failed->reason);
    frame_free(&fl);
    ack(32, 1);
}

static void test_command_failures(void)
{
    assign_command(14, 4, 1, "echo first >&2; echo 'boom: bad input' >&2; exit 3");
    Regmix__Envelope *f = expect(REGMIX__ENVELOPE__BODY_FAILED, 5000);
    CHECK(f != NULL);
    if (f) {
        CHECK_INT_EQ(f->failed->attempt_id, 14);
        CHECK_INT_EQ(f->failed->exit_code, 3);
        CHECK_STR_EQ(f->failed->reason, "boom: bad input");
    }
    frame_free(&f);
    ack(14, 1);
    assign_command(15, 5, 1, "echo 'not json' > \"$3\"");
    f = expect(REGMIX__ENVELOPE__BODY_FAILED, 5000);
    CHECK(f != NULL);
    if (f)
        CHECK_MSG(strstr(f->failed->reason, "invalid result file") != NULL, "reason: %s",
                  f->failed->reason);
    frame_free(&f);
    ack(15, 1);
    assign_command(16, 6, 1, "true");
    f = expect(REGMIX__ENVELOPE__BODY_FAILED, 5000);
    CHECK(f != NULL);
    if (f)
        CHECK_MSG(strstr(f->failed->reason, "no result file") != NULL, "reason: %s",
                  f->failed->reason);
    frame_free(&f);
    ack(16, 1);
}

static void test_cancel(void)
{
    /* A long command in its own process group: the cancel reaches the sleep too. */
    assign_command(17, 7, 1, "sleep 30 & wait");
    Regmix__Envelope *s = expect(REGMIX__ENVELOPE__BODY_STARTED, 3000);
    CHECK(s != NULL);
    frame_free(&s);
    assign_synthetic(18, 8, 1, 60000, 0.0);
    s = expect(REGMIX__ENVELOPE__BODY_STARTED, 3000);
    CHECK(s != NULL);
    frame_free(&s);
    Regmix__Envelope env;
    Regmix__Cancel c = REGMIX__CANCEL__INIT;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_CANCEL;
    env.cancel = &c;
    c.attempt_id = 17;
    send_env(&env);
    c.attempt_id = 18;
    send_env(&env);
    last_ready = 9999;
    long long end = wire_now_ms() + 3000;
    while (last_ready != 2 && wire_now_ms() < end) {
        Regmix__Envelope *x = expect(REGMIX__ENVELOPE__BODY_RESULT, 100);
        CHECK_MSG(x == NULL, "a cancelled attempt reports nothing");
        frame_free(&x);
    }
    CHECK_INT_EQ(last_ready, 2);
}

static void test_cancel_escalates_to_sigkill(void)
{
    /* A job that ignores SIGTERM is killed after the grace period (--kill-grace-ms 500). */
    assign_command(22, 12, 1, "trap '' TERM; touch trapped; sleep 30 & wait; sleep 30");
    Regmix__Envelope *s = expect(REGMIX__ENVELOPE__BODY_STARTED, 3000);
    CHECK(s != NULL);
    int pid = s ? (int)s->started->pid : 0;
    frame_free(&s);
    /* Cancel once the shell has installed its trap: it says so by a file in its job directory. */
    char trapped[512];
    snprintf(trapped, sizeof trapped, "%s/sw1/12-2/trapped", workdir);
    CHECK_MSG(file_exists_within(trapped, 1, 3000), "the job never installed its trap: %s",
              trapped);
    Regmix__Envelope env;
    Regmix__Cancel c = REGMIX__CANCEL__INIT;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_CANCEL;
    env.cancel = &c;
    c.attempt_id = 22;
    long long t0 = wire_now_ms();
    send_env(&env);
    last_ready = 9999;
    while (last_ready != 2 && wire_now_ms() < t0 + 4000) {
        Regmix__Envelope *x = expect(REGMIX__ENVELOPE__BODY_RESULT, 50);
        frame_free(&x);
    }
    long long took = wire_now_ms() - t0;
    CHECK_INT_EQ(last_ready, 2);
    CHECK_MSG(took >= 400 && took < 3000, "freed after the grace period: %lld ms", took);
    CHECK_MSG(pid > 0 && kill(pid, 0) != 0, "process %d is gone", pid);
}

static void test_garbage_survived(void)
{
    /* Junk bytes, an envelope of the wrong version, and a coordinator-bound body. */
    zmq_send(router, peer, peer_len, ZMQ_SNDMORE);
    zmq_send(router, "\xff\x01junk", 6, 0);
    Regmix__Envelope env;
    Regmix__SubmitRequest sr = REGMIX__SUBMIT_REQUEST__INIT;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_SUBMIT;
    env.submit = &sr;
    send_env(&env);
    assign_synthetic(19, 9, 3, 0, 0.0);
    Regmix__Envelope *r = expect(REGMIX__ENVELOPE__BODY_RESULT, 3000);
    CHECK_MSG(r != NULL, "the worker still works after garbage");
    frame_free(&r);
    ack(19, 0);
}

static void test_restart_resends_unacked(void)
{
    assign_synthetic(20, 10, 5, 0, 0.0);
    Regmix__Envelope *r = expect(REGMIX__ENVELOPE__BODY_RESULT, 3000);
    CHECK(r != NULL);
    frame_free(&r);
    wire_kill9(wpid);
    n_hello = 0;
    wpid = start_worker();
    Regmix__Envelope *h = expect(REGMIX__ENVELOPE__BODY_HELLO, 5000);
    CHECK(h != NULL);
    if (h) {
        CHECK_INT_EQ(h->hello->n_attempts, 1);
        if (h->hello->n_attempts == 1) {
            CHECK_INT_EQ(h->hello->attempts[0]->attempt_id, 20);
            CHECK_INT_EQ(h->hello->attempts[0]->run_id, 10);
            CHECK(h->hello->attempts[0]->finished);
        }
    }
    frame_free(&h);
    welcome(100);
    r = expect(REGMIX__ENVELOPE__BODY_RESULT, 3000);
    CHECK_MSG(r != NULL, "the restarted worker resends the unacknowledged result");
    if (r)
        CHECK_INT_EQ(r->result->attempt_id, 20);
    frame_free(&r);
    ack(20, 0);
}

static void test_abandon_on_welcome(void)
{
    /* A result held across a restart that the coordinator no longer wants: dropped, not sent. */
    assign_synthetic(21, 11, 5, 0, 0.0);
    Regmix__Envelope *r = expect(REGMIX__ENVELOPE__BODY_RESULT, 3000);
    CHECK(r != NULL);
    frame_free(&r);
    wire_kill9(wpid);
    wpid = start_worker();
    Regmix__Envelope *h = expect(REGMIX__ENVELOPE__BODY_HELLO, 5000);
    CHECK(h != NULL);
    frame_free(&h);
    Regmix__Envelope env;
    Regmix__Welcome w = REGMIX__WELCOME__INIT;
    uint64_t ab[] = {21};
    frame_envelope_init(&env, 0);
    w.heartbeat_ms = 100;
    w.lease_ms = 5000;
    w.abandon_attempt_ids = ab;
    w.n_abandon_attempt_ids = 1;
    env.body_case = REGMIX__ENVELOPE__BODY_WELCOME;
    env.welcome = &w;
    send_env(&env);
    r = expect(REGMIX__ENVELOPE__BODY_RESULT, 1500);
    CHECK_MSG(r == NULL, "an abandoned attempt's result is not sent");
    frame_free(&r);
    char path[512];
    snprintf(path, sizeof path, "%s/outbox.jsonl", workdir);
    CHECK_MSG(file_contains(path, "{\"op\":\"ack\",\"attempt_id\":21}"),
              "abandoned result marked done in the journal");
}

static void test_reconnect_when_silent(void)
{
    /* Stop answering PINGs: after 3 heartbeats the worker opens a new socket and says HELLO. */
    pong = 0;
    n_hello = 0;
    uint8_t old[256];
    size_t old_len = peer_len;
    memcpy(old, peer, peer_len);
    Regmix__Envelope *h = expect(REGMIX__ENVELOPE__BODY_HELLO, 3000);
    CHECK_MSG(h != NULL, "HELLO again after the coordinator went silent");
    CHECK(peer_len != old_len || memcmp(peer, old, old_len) != 0);
    frame_free(&h);
    pong = 1;
    welcome(100);
    Regmix__Envelope *r = expect(REGMIX__ENVELOPE__BODY_READY, 2000);
    CHECK(r != NULL);
    frame_free(&r);
}

static void test_sigterm_exits(void)
{
    kill(wpid, SIGTERM);
    int st = -1;
    CHECK_INT_EQ(wire_wait(wpid, 5000, &st), 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_usage_errors(void)
{
    char *a1[] = {(char *)worker_bin, "--slots", "0", "--coordinator", "tcp://127.0.0.1:1", NULL};
    char *a2[] = {(char *)worker_bin, NULL};
    char *a3[] = {(char *)worker_bin, "--version", NULL};
    int st = -1;
    pid_t p = wire_spawn(a1, logpath);
    CHECK_INT_EQ(wire_wait(p, 5000, &st), 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    unsetenv("REGMIX_WORKER_ENDPOINT");
    p = wire_spawn(a2, logpath);
    CHECK_INT_EQ(wire_wait(p, 5000, &st), 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    p = wire_spawn(a3, logpath);
    CHECK_INT_EQ(wire_wait(p, 5000, &st), 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/regmix-worker\n", argv[0]);
        return 2;
    }
    worker_bin = argv[1];
    atexit(wire_cleanup);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regmix-wsess-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    snprintf(workdir, sizeof workdir, "%s/work", tmpdir);
    snprintf(logpath, sizeof logpath, "%s/worker.log", tmpdir);
    snprintf(trainer, sizeof trainer, "%s/fake-train.sh", tmpdir);
    FILE *tf = fopen(trainer, "w");
    if (!tf)
        return 1;
    fputs("#!/bin/sh\n"
          "echo \"$* CUDA=$CUDA_VISIBLE_DEVICES\" > args.txt\n"
          "echo '{\"step\": 1, \"loss\": 5.0}' >&3\n"
          "case \"$*\" in *'--layers 7 '*) exit 0;; esac\n"
          "echo '{\"event\": \"result\", \"losses\": {\"web\": 3.5}, \"tokens\": 1000, "
          "\"seconds\": 2.0}' >&3\n",
          tf);
    fclose(tf);
    chmod(trainer, 0755);
    ctx = zmq_ctx_new();
    router = wire_socket(ctx, ZMQ_ROUTER, endpoint, sizeof endpoint);
    if (!router)
        return 1;
    TEST_RUN(test_usage_errors);
    TEST_RUN(test_hello_welcome_ready);
    TEST_RUN(test_synthetic_result_and_ack);
    TEST_RUN(test_synthetic_noise_and_failure);
    TEST_RUN(test_command_job);
    TEST_RUN(test_builtin_job);
    TEST_RUN(test_command_failures);
    TEST_RUN(test_cancel);
    TEST_RUN(test_cancel_escalates_to_sigkill);
    TEST_RUN(test_garbage_survived);
    TEST_RUN(test_restart_resends_unacked);
    TEST_RUN(test_abandon_on_welcome);
    TEST_RUN(test_reconnect_when_silent);
    TEST_RUN(test_sigterm_exits);
    wire_cleanup();
    zmq_close(router);
    zmq_ctx_term(ctx);
    return test_finish_tmpdir(tmpdir, "worker log and workdir");
}
