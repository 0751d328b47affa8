/*
 * test_target: coordinator/target.c and the target life cycle (transition.c, common/states.h) on
 * a real store without a daemon (coord_harness.h), with real child processes (launcher: command,
 * `sh -c`) on the harness's loop: a launch needs a fit; the row is pending, then running with a
 * pid, then done with the losses and the objective the result line reports, or failed with the
 * exit status; a second launch is refused (CONFLICT); a row found running at start without a
 * job handle to follow is failed and not relaunched; a move the life cycle does not allow is
 * refused and changes nothing.
 */
#include <unistd.h>

#include "coord_harness.h"
#include "target.h"
#include "transition.h"

#define SPEC(NAME, COMMAND)                                                                        \
    "name: " NAME "\n"                                                                             \
    "domains:\n"                                                                                   \
    "  - {name: web, tokens: 5.0e9, train: \"data/web_*.bin\"}\n"                                  \
    "  - {name: code, tokens: 2.0e9, train: \"data/code_*.bin\"}\n"                                \
    "sampling: {runs: 4, seed: 7}\n"                                                               \
    "proxy:\n"                                                                                     \
    "  trainer: synthetic\n"                                                                       \
    "  synthetic: {optimum: {web: 0.5, code: 0.5}, delay_ms: 0}\n"                                 \
    "regression: {target: web, model: linear, refit_every: 4, cv_folds: 2, simulate: 500,\n"       \
    "             top_k: 10}\n"                                                                    \
    "target:\n"                                                                                    \
    "  launch: manual\n"                                                                           \
    "  launcher: command\n"                                                                        \
    "  command: [sh, -c, '" COMMAND "']\n"

static sweep_t *g_sw;

static int fit_idle(harness_t *h)
{
    (void)h;
    return g_sw->fit_job == NULL && g_sw->nfits > 0;
}

static target_t *g_t;

static int target_ended(harness_t *h)
{
    (void)h;
    return g_t && g_t->run == NULL && states_target_final(g_t->state);
}

/* Submits, runs all 4 runs on worker 'a' and waits for the fit the target needs. */
static sweep_t *fitted(harness_t *h, const char *spec)
{
    sweep_t *sw = g_sw = h_submit(h, spec, 0);
    if (!sw)
        return NULL;
    h_hello(h, 'a', "w1", 4, 0);
    h_ready(h, 'a', 4);
    h_flush(h);
    static const char *const names[2] = {"web", "code"};
    uint64_t ids[4];
    double w[4];
    int n = h_count(h, REGMIX__ENVELOPE__BODY_ASSIGN, 'a');
    CHECK_INT_EQ(n, 4);
    for (int i = 0; i < n && i < 4; i++) {
        const Regmix__Assign *as = h_get(h, REGMIX__ENVELOPE__BODY_ASSIGN, i)->assign;
        ids[i] = as->attempt_id;
        w[i] = as->weights[0]->weight;
    }
    for (int i = 0; i < n && i < 4; i++) {
        double l[2] = {3.0 - w[i], 3.0};
        h_result(h, 'a', ids[i], names, l, 2);
    }
    CHECK(h_run_until(h, fit_idle, 10000));
    h_flush(h);
    CHECK_INT_EQ(sw->nfits, 1);
    CHECK_INT_EQ(sw->state, SWEEP_STATE_DONE);
    return sw;
}

static const Regmix__Envelope *launch(harness_t *h, const sweep_t *sw)
{
    Regmix__Envelope env;
    Regmix__LaunchRequest req = REGMIX__LAUNCH_REQUEST__INIT;
    frame_envelope_init(&env, 0);
    req.sweep_id = (char *)sw->sweep_id;
    env.body_case = REGMIX__ENVELOPE__BODY_LAUNCH;
    env.launch = &req;
    h_deliver(h, COORD_CLIENTS, 'C', &env);
    h_flush(h);
    return h->nsent ? h->sent[h->nsent - 1] : NULL;
}

/* launcher: command runs only where the operator allows commands. */
static void allow_commands(coord_config_t *cfg)
{
    cfg->allow_commands = 1;
}

static void test_launch_done(void)
{
    harness_t h;
    if (h_open(&h, allow_commands) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *sw = fitted(&h, SPEC("launch", "echo {weights_json} > {workdir}/weights; echo "
                                            "''{\"event\":\"result\",\"losses\":{\"web\":1.5,"
                                            "\"code\":2.5}}'' >&{progress_fd}"));
    if (!sw)
        goto out;
    const Regmix__Envelope *rep = launch(&h, sw);
    CHECK(rep && rep->body_case == REGMIX__ENVELOPE__BODY_LAUNCH_REPLY);
    g_t = coord_target_find(h.c, sw->id, "target");
    CHECK(g_t != NULL);
    if (!g_t || !rep || rep->body_case != REGMIX__ENVELOPE__BODY_LAUNCH_REPLY)
        goto out;
    CHECK_INT_EQ(rep->launch_reply->n_targets, 1);
    CHECK_STR_EQ(rep->launch_reply->targets[0]->state, "running");
    CHECK_INT_EQ(g_t->state, TARGET_STATE_RUNNING);
    CHECK(g_t->pid > 0);
    /* A second launch while it runs: CONFLICT, nothing spawned. */
    rep = launch(&h, sw);
    CHECK(rep && rep->body_case == REGMIX__ENVELOPE__BODY_ERROR &&
          rep->error->code == REGMIX__ERROR_CODE__ERROR_CODE_CONFLICT);
    CHECK(h_run_until(&h, target_ended, 10000));
    CHECK_INT_EQ(g_t->state, TARGET_STATE_DONE);
    CHECK(strstr(g_t->losses_json, "\"web\":1.5") != NULL);
    CHECK_NEAR(g_t->objective, 1.5, 1e-12); /* regression.target: web */
    char path[300];
    snprintf(path, sizeof path, "%s/targets/%s/target/weights", h.dir, sw->sweep_id);
    CHECK(access(path, R_OK) == 0);
    /* Done is final: never launched again, and no move back to running. */
    rep = launch(&h, sw);
    CHECK(rep && rep->body_case == REGMIX__ENVELOPE__BODY_ERROR &&
          rep->error->code == REGMIX__ERROR_CODE__ERROR_CODE_CONFLICT);
    CHECK_INT_EQ(transition_target(h.c, g_t, TARGET_STATE_RUNNING, "no"), -EINVAL);
    CHECK_INT_EQ(g_t->state, TARGET_STATE_DONE);
out:
    g_t = NULL;
    h_close(&h);
}

static int count_rows(const store_target_row_t *row, void *data)
{
    int *n = data;
    n[0]++;
    n[1] += row->state == TARGET_STATE_FAILED;
    return 0;
}

static void test_launch_failed_and_restart(void)
{
    harness_t h;
    if (h_open(&h, allow_commands) < 0) {
        CHECK(0);
        return;
    }
    sweep_t *sw = fitted(&h, SPEC("fails", "exit 3"));
    if (!sw)
        goto out;
    char err[256] = "";
    CHECK_INT_EQ(target_launch(h.c, sw, err, sizeof err), 1);
    if (err[0])
        fprintf(stderr, "launch: %s\n", err);
    g_t = coord_target_find(h.c, sw->id, "target");
    if (!g_t)
        goto out;
    CHECK(h_run_until(&h, target_ended, 10000));
    CHECK_INT_EQ(g_t->state, TARGET_STATE_FAILED);
    CHECK(g_t->detail && strstr(g_t->detail, "exit status 3") != NULL);
    /* A failed target may be launched again (by a request), and fails again. */
    CHECK_INT_EQ(target_launch(h.c, sw, err, sizeof err), 1);
    CHECK_INT_EQ(g_t->state, TARGET_STATE_RUNNING);
    CHECK(h_run_until(&h, target_ended, 10000));
    CHECK_INT_EQ(g_t->state, TARGET_STATE_FAILED);

    /* A row still running at start, with no job handle to follow: failed, not
     * relaunched. */
    store_target_row_t row = {.sweep = sw->id,
                              .role = "baseline",
                              .state = TARGET_STATE_RUNNING,
                              .launcher = "command",
                              .ranks = 1,
                              .pid = 99999,
                              .objective = NAN,
                              .loss = NAN,
                              .created_ms = 1,
                              .updated_ms = 1};
    CHECK(coord_write(h.c) == 0);
    CHECK(store_target_upsert(h.c->store, &row) == 0);
    int64_t id = sw->id;
    g_t = NULL;
    CHECK(h_reopen(&h) == 0);
    if (!h.c)
        goto out;
    CHECK(target_load(h.c) == 0);
    target_t *b = coord_target_find(h.c, id, "baseline");
    CHECK(coord_target_find(h.c, id, "target") != NULL);
    CHECK(b != NULL);
    if (b) {
        CHECK_INT_EQ(b->state, TARGET_STATE_FAILED);
        CHECK(b->detail && strstr(b->detail, "coordinator stopped") != NULL);
        CHECK(b->run == NULL);
    }
    h_flush(&h);
    int n[2] = {0, 0};
    CHECK(store_targets_foreach(h.c->store, count_rows, n) == 0);
    CHECK_INT_EQ(n[0], 2); /* target and baseline */
    CHECK_INT_EQ(n[1], 2); /* both failed, as stored */
out:
    g_t = NULL;
    h_close(&h);
}

int main(void)
{
    TEST_RUN(test_launch_done);
    TEST_RUN(test_launch_failed_and_restart);
    return test_finish();
}
