/*
 * test_launch_mpirun: the target launch end to end (coordinator/launcher.h, docs/targets.md).
 *
 * Writes tiny byte-level llm.c shards for two domains (prose and C-like code), renders the
 * `mpirun` plan of a spec with `ranks: 2` and `baseline: prior` for a tiny model (1 layer, d 32,
 * context 32, vocab 256, 20 steps), and runs the target (the given mixture) and the baseline (the
 * token prior) at the same time through launcher_run_start() in one real libuv loop. Both must
 * exit 0 after 20 step events (rank 0 reports alone) with finite per-domain losses for both
 * domains, below the uniform ln 256 and different between the two mixtures. Launching the target
 * again in the same work directory resumes from its checkpoint: no new steps, the same losses.
 *
 * Usage: test_launch_mpirun REGMIX_TRAIN MPIRUN
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "launcher.h"
#include "spec.h"
#include "test.h"

static char tmp[] = "/tmp/regmix-launch-mpirun.XXXXXX";

/* An llm.c .bin shard: 256 int32 header (magic 20240520, version 1, token count), then uint16
 * tokens: bytes of `text` repeated until n tokens. */
static int write_shard(const char *path, const char *text, size_t n, unsigned salt)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int32_t hdr[256] = {20240520, 1, (int32_t)n};
    fwrite(hdr, sizeof hdr, 1, f);
    size_t len = strlen(text);
    for (size_t i = 0; i < n; i++) {
        /* a little variation so validation text is not a copy of the training text */
        uint16_t t = (uint8_t)text[(i + salt) % len];
        fwrite(&t, sizeof t, 1, f);
    }
    return fclose(f);
}

typedef struct seen {
    const char *name;
    int steps, exits;
    int64_t status;
    int sig;
    int nlosses;
    char names[4][16];
    double losses[4];
} seen_t;

static void on_progress(launcher_run_t *r, const launcher_progress_t *p, void *data)
{
    seen_t *s = data;
    if (strcmp(p->event, "step") == 0) {
        s->steps++;
        CHECK(isfinite(p->loss));
    }
}

static void on_exit_cb(launcher_run_t *r, const launcher_outcome_t *o, void *data)
{
    seen_t *s = data;
    s->exits++;
    s->status = o->exit_status;
    s->sig = o->term_signal;
    s->nlosses = o->nlosses;
    for (int i = 0; i < o->nlosses && i < 4; i++) {
        snprintf(s->names[i], sizeof s->names[i], "%s", o->loss_names[i]);
        s->losses[i] = o->losses[i];
    }
}

static double loss_of(const seen_t *s, const char *name)
{
    for (int i = 0; i < s->nlosses; i++)
        if (strcmp(s->names[i], name) == 0)
            return s->losses[i];
    return NAN;
}

static int launch(uv_loop_t *loop,
                  const spec_t *spec,
                  const char *train,
                  const char *mpirun,
                  const char *role,
                  const double *w,
                  seen_t *s)
{
    char wd[256], log[300], err[512];
    snprintf(wd, sizeof wd, "%s/%s", tmp, role);
    snprintf(log, sizeof log, "%s/%s.log", tmp, role);
    launcher_ctx_t c = {.spec = spec,
                        .weights = w,
                        .role = role,
                        .sweep_id = "it",
                        .trainer = train,
                        .mpirun = mpirun,
                        .workdir = wd,
                        .seed = 3,
                        .as_root = geteuid() == 0,
                        .oversubscribe = 1};
    launcher_plan_t p;
    int rc = launcher_plan_make(&c, &p, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc)
        return rc;
    CHECK_INT_EQ(p.progress_fd, 1);
    CHECK_STR_EQ(p.argv[0], mpirun);
    CHECK_STR_EQ(p.argv[2], "2");
    rc = launcher_plan_write(&p, err, sizeof err);
    CHECK(rc == 0);
    s->name = role;
    CHECK(p.progress_path != NULL);
    rc = launcher_run_start(loop, p.argv, p.progress_fd, p.progress_path, log, tmp, on_progress,
                            on_exit_cb, s, NULL);
    CHECK_MSG(rc == 0, "spawn %s: %s", p.argv[0], uv_strerror(rc));
    launcher_plan_clear(&p);
    return rc;
}

static void dump_log(const char *role)
{
    char path[300], buf[4096];
    snprintf(path, sizeof path, "%s/%s.log", tmp, role);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    fprintf(stderr, "--- %s log ---\n%s\n", role, buf);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_launch_mpirun REGMIX_TRAIN MPIRUN\n");
        return 2;
    }
    /* meson passes the trainer relative to the build directory; the launch runs in tmp */
    char train[4096];
    if (!realpath(argv[1], train)) {
        perror(argv[1]);
        return 1;
    }
    const char *mpirun = argv[2];
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("OMP_NUM_THREADS", "1", 1);
    const char *prose = "The licence grants permission to copy, modify and distribute the work, "
                        "provided that the notice above is kept in all copies of the software. ";
    const char *code = "int main(void) { for (int i = 0; i < n; i++) { x[i] = y[i] * 2; } "
                       "return 0; }\n#include <stdio.h>\nstatic int f(char *p) { return *p; }\n";
    char path[300];
    const char *doms[2] = {"prose", "code"};
    const char *texts[2] = {prose, code};
    for (int d = 0; d < 2; d++) {
        snprintf(path, sizeof path, "%s/%s_train.bin", tmp, doms[d]);
        CHECK(write_shard(path, texts[d], 40000, 0) == 0);
        snprintf(path, sizeof path, "%s/%s_val.bin", tmp, doms[d]);
        CHECK(write_shard(path, texts[d], 8000, 7) == 0);
    }
    char yaml[4096], err[512];
    snprintf(yaml, sizeof yaml,
             "name: it\n"
             "domains:\n"
             "  - {name: prose, tokens: 3, train: '%s/prose_train*.bin', valid: "
             "'%s/prose_val*.bin'}\n"
             "  - {name: code, tokens: 1, train: '%s/code_train*.bin', valid: '%s/code_val*.bin'}\n"
             "target:\n"
             "  launcher: mpirun\n"
             "  ranks: 2\n"
             "  baseline: prior\n"
             "  model: {layers: 1, heads: 2, dim: 32, ffn: 64, context: 32, vocab: 256}\n"
             "  train: {batch: 4, steps: 20, lr: 3.0e-3, warmup: 2, eval_batches: 2, threads: 1}\n",
             tmp, tmp, tmp, tmp);
    spec_t *spec = NULL;
    int rc = spec_parse_string("it.yaml", yaml, strlen(yaml), &spec, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc)
        return test_finish();
    CHECK_INT_EQ(spec->target.baseline, SPEC_BASELINE_PRIOR);

    uv_loop_t loop;
    uv_loop_init(&loop);
    double target_w[2] = {0.1, 0.9}, prior_w[2];
    launcher_prior_weights(spec, prior_w);
    CHECK_NEAR(prior_w[0], 0.75, 1e-12);
    seen_t t = {0}, b = {0};
    uint64_t t0 = uv_hrtime();
    if (launch(&loop, spec, train, mpirun, "target", target_w, &t) == 0 &&
        launch(&loop, spec, train, mpirun, "baseline", prior_w, &b) == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    fprintf(stderr, "two mpirun -np 2 launches: %.1f s\n", (double)(uv_hrtime() - t0) / 1e9);
    seen_t *runs[2] = {&t, &b};
    for (int i = 0; i < 2; i++) {
        seen_t *s = runs[i];
        CHECK_INT_EQ(s->exits, 1);
        CHECK_MSG(s->status == 0 && s->sig == 0, "%s: exit %lld signal %d", s->name ? s->name : "?",
                  (long long)s->status, s->sig);
        CHECK_INT_EQ(s->steps, 20);
        CHECK_INT_EQ(s->nlosses, 2);
        for (int d = 0; d < 2; d++) {
            double l = loss_of(s, doms[d]);
            CHECK_MSG(isfinite(l) && l > 0 && l < log(256.0), "%s %s loss %g", s->name, doms[d], l);
        }
        if (s->status != 0 || s->nlosses != 2)
            dump_log(s->name ? s->name : "target");
        fprintf(stderr, "%s: prose %.4f code %.4f\n", s->name, loss_of(s, "prose"),
                loss_of(s, "code"));
    }
    /* The target trained mostly on code: relatively better on code than the prose-heavy baseline. */
    CHECK(loss_of(&t, "code") - loss_of(&t, "prose") < loss_of(&b, "code") - loss_of(&b, "prose"));

    /* Launched again (a coordinator restart): resumes from the checkpoint, no new steps. */
    seen_t again = {0};
    if (launch(&loop, spec, train, mpirun, "target", target_w, &again) == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(again.exits, 1);
    CHECK_INT_EQ(again.status, 0);
    CHECK_MSG(again.steps == 0, "%d steps after resuming a finished run", again.steps);
    CHECK_NEAR(loss_of(&again, "prose"), loss_of(&t, "prose"), 1e-4);
    CHECK_NEAR(loss_of(&again, "code"), loss_of(&t, "code"), 1e-4);

    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    spec_destroy(&spec);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (test__failures == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return test_finish();
}
