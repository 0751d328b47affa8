/*
 * test_launcher: rendering of the target launch (coordinator/launcher.h, docs/targets.md) for the
 * four launchers, and the runner on small shell children in a real libuv loop (progress lines on
 * fd 3 and on stdout, the final losses, exit codes, signals, the log file, spawn errors).
 */
#include <errno.h>
#include <jansson.h>
#include <libfyaml.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "launcher.h"
#include "spec.h"
#include "test.h"

#define BASE_YAML                                                                                  \
    "name: sw1\n"                                                                                  \
    "domains:\n"                                                                                   \
    "  - {name: web, tokens: 3, train: '/data/web/train_*.bin', valid: '/data/web/val_*.bin'}\n"   \
    "  - {name: code, tokens: 1, train: '/data/code/train_*.bin'}\n"                               \
    "  - {name: books, tokens: 1, valid: \"/data/it's/val.bin\"}\n"                                \
    "target:\n"                                                                                    \
    "  launcher: %s\n"                                                                             \
    "  ranks: 4\n"                                                                                 \
    "%s"                                                                                           \
    "  model: {layers: 1, heads: 2, dim: 32, ffn: 64, context: 32, vocab: 256}\n"                  \
    "  train: {batch: 8, steps: 20, lr: 3.0e-3, warmup: 2, schedule: %s, eval_batches: 2}\n"

static spec_t *make_spec(const char *launcher, const char *extra, const char *schedule)
{
    char text[4096], err[512];
    snprintf(text, sizeof text, BASE_YAML, launcher, extra, schedule);
    spec_t *spec = NULL;
    int rc = spec_parse_string("t.yaml", text, strlen(text), &spec, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    return spec;
}

static const double W[3] = {0.5, 0.5, 0}; /* books has no train glob */

static launcher_ctx_t ctx_for(const spec_t *spec)
{
    return (launcher_ctx_t){.spec = spec,
                            .weights = W,
                            .role = "target",
                            .sweep_id = "SW_1.a",
                            .trainer = "/opt/regmix-train",
                            .mpirun = "/usr/bin/mpirun",
                            .workdir = "/state/targets/sw1/target",
                            .seed = 5,
                            .as_root = 1,
                            .oversubscribe = 1};
}

/* Index of the first argument equal to s, or -1. */
static int argv_find(char *const *argv, const char *s)
{
    for (int i = 0; argv && argv[i]; i++)
        if (strcmp(argv[i], s) == 0)
            return i;
    return -1;
}

/* The value after flag (the first occurrence after index `from`), or NULL. */
static const char *argv_after(char *const *argv, const char *flag)
{
    int i = argv_find(argv, flag);
    return i >= 0 ? argv[i + 1] : NULL;
}

static void test_trainer_argv(void)
{
    spec_t *spec = make_spec("mpirun", "", "cosine");
    if (!spec)
        return;
    launcher_ctx_t c = ctx_for(spec);
    char **a = NULL, err[256];
    CHECK(launcher_trainer_argv(&c, 3, &a, err, sizeof err) == 0);
    CHECK_STR_EQ(a[0], "/opt/regmix-train");
    CHECK_STR_EQ(argv_after(a, "--layers"), "1");
    CHECK_STR_EQ(argv_after(a, "--dim"), "32");
    CHECK_STR_EQ(argv_after(a, "--context"), "32");
    CHECK_STR_EQ(argv_after(a, "--vocab"), "256");
    CHECK_STR_EQ(argv_after(a, "--batch"), "8");
    CHECK_STR_EQ(argv_after(a, "--steps"), "20");
    CHECK_STR_EQ(argv_after(a, "--lr"), "0.003");
    CHECK_STR_EQ(argv_after(a, "--schedule"), "cosine");
    CHECK_INT_EQ(argv_find(a, "--micro-batch"), -1); /* spec micro_batch 0: the trainer decides */
    CHECK_STR_EQ(argv_after(a, "--weights-json"), "{\"web\":0.5,\"code\":0.5,\"books\":0.0}");
    CHECK_STR_EQ(argv_after(a, "--seed"), "5");
    CHECK_STR_EQ(argv_after(a, "--checkpoint"), "/state/targets/sw1/target/checkpoint");
    CHECK(argv_find(a, "--resume") > 0);
    CHECK_STR_EQ(argv_after(a, "--progress-fd"), "3");
    /* --train for web and code only, --valid for web and books, in domain order */
    int ntrain = 0, nvalid = 0;
    for (int i = 0; a[i]; i++) {
        if (strcmp(a[i], "--train") == 0)
            CHECK_STR_EQ(a[i + 1], ntrain++ == 0 ? "web=/data/web/train_*.bin"
                                                 : "code=/data/code/train_*.bin");
        if (strcmp(a[i], "--valid") == 0)
            CHECK_STR_EQ(a[i + 1],
                         nvalid++ == 0 ? "web=/data/web/val_*.bin" : "books=/data/it's/val.bin");
    }
    CHECK_INT_EQ(ntrain, 2);
    CHECK_INT_EQ(nvalid, 2);
    launcher_argv_free(a);

    /* weight on a domain the trainer has no data for, or a bad weight: refused before launching */
    double wb[3] = {0.5, 0.25, 0.25};
    c.weights = wb;
    CHECK_INT_EQ(launcher_trainer_argv(&c, 3, &a, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "books") != NULL);
    wb[2] = 0;
    wb[1] = NAN;
    CHECK_INT_EQ(launcher_trainer_argv(&c, 3, &a, err, sizeof err), -EINVAL);
    c.weights = W;

    /* the baseline's mixture is the token prior */
    double prior[3];
    launcher_prior_weights(spec, prior);
    CHECK_NEAR(prior[0], 0.6, 1e-12);
    CHECK_NEAR(prior[2], 0.2, 1e-12);
    char *wj = launcher_weights_json(spec, prior);
    CHECK_STR_EQ(wj, "{\"web\":0.6,\"code\":0.2,\"books\":0.2}");
    free(wj);
    spec_destroy(&spec);

    /* the trainer has no linear schedule */
    spec = make_spec("mpirun", "", "linear");
    c = ctx_for(spec);
    CHECK_INT_EQ(launcher_trainer_argv(&c, 3, &a, err, sizeof err), -ENOTSUP);
    CHECK(strstr(err, "linear") != NULL);
    spec_destroy(&spec);
}

static void test_mpirun(void)
{
    spec_t *spec = make_spec("mpirun", "  hosts: [node1, node2]\n", "constant");
    if (!spec)
        return;
    launcher_ctx_t c = ctx_for(spec);
    launcher_plan_t p;
    char err[256];
    CHECK(launcher_plan_make(&c, &p, err, sizeof err) == 0);
    char **a = p.argv;
    CHECK_STR_EQ(a[0], "/usr/bin/mpirun");
    CHECK_STR_EQ(a[1], "-np");
    CHECK_STR_EQ(a[2], "4");
    CHECK_STR_EQ(a[3], "--host");
    CHECK_STR_EQ(a[4], "node1,node2");
    CHECK_STR_EQ(a[5], "--allow-run-as-root");
    CHECK_STR_EQ(a[6], "--oversubscribe");
    CHECK_STR_EQ(a[7], "/opt/regmix-train");
    CHECK_STR_EQ(argv_after(a, "--progress-fd"), "1"); /* mpirun closes fd 3 in the ranks */
    CHECK_INT_EQ(p.progress_fd, 1);
    CHECK_INT_EQ(p.submits, 0);
    CHECK(p.file_path == NULL);
    CHECK(strstr(p.message, "mpirun -np 4") != NULL);
    launcher_plan_clear(&p);
    spec_destroy(&spec);

    spec = make_spec("mpirun", "  hostfile: /etc/hosts.mpi\n", "constant");
    c = ctx_for(spec);
    c.as_root = 0;
    c.oversubscribe = 0;
    CHECK(launcher_plan_make(&c, &p, err, sizeof err) == 0);
    CHECK_STR_EQ(p.argv[3], "--hostfile");
    CHECK_STR_EQ(p.argv[4], "/etc/hosts.mpi");
    CHECK_INT_EQ(argv_find(p.argv, "--allow-run-as-root"), -1);
    CHECK_INT_EQ(argv_find(p.argv, "--oversubscribe"), -1);
    launcher_plan_clear(&p);
    spec_destroy(&spec);
}

static void test_command(void)
{
    spec_t *spec = make_spec("command",
                             "  command: [sh, -c, '{trainer_argv}', 'n={ranks}', '{weights_json}',"
                             " '{config_json}', '{workdir}|{progress_fd}|{seed}|{role}|{sweep}',"
                             " '{unknown}']\n",
                             "constant");
    if (!spec)
        return;
    launcher_ctx_t c = ctx_for(spec);
    launcher_plan_t p;
    char err[256];
    CHECK(launcher_plan_make(&c, &p, err, sizeof err) == 0);
    CHECK_INT_EQ(launcher_argv_len(p.argv), 8);
    CHECK_STR_EQ(p.argv[0], "sh");
    CHECK(strncmp(p.argv[2], "'/opt/regmix-train' '--layers' '1'", 34) == 0);
    CHECK(strstr(p.argv[2], "'books=/data/it'\\''s/val.bin'") != NULL); /* shell-quoted */
    CHECK(strstr(p.argv[2], "'--progress-fd' '3'") != NULL);
    CHECK_STR_EQ(p.argv[3], "n=4");
    CHECK_STR_EQ(p.argv[4], "{\"web\":0.5,\"code\":0.5,\"books\":0.0}");
    json_error_t je;
    json_t *cfg = json_loads(p.argv[5], 0, &je);
    CHECK(cfg != NULL);
    CHECK_INT_EQ(json_integer_value(json_object_get(cfg, "layers")), 1);
    CHECK_NEAR(json_real_value(json_object_get(json_object_get(cfg, "weights"), "code")), 0.5, 0);
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(cfg, "train"), "web")),
                 "/data/web/train_*.bin");
    CHECK(json_is_true(json_object_get(cfg, "resume")));
    json_decref(cfg);
    CHECK_STR_EQ(p.argv[6], "/state/targets/sw1/target|3|5|target|SW_1.a");
    CHECK_STR_EQ(p.argv[7], "{unknown}");
    CHECK_INT_EQ(p.progress_fd, 3);
    launcher_plan_clear(&p);
    spec_destroy(&spec);
}

static void test_slurm(void)
{
    spec_t *spec = make_spec("slurm", "  hosts: [gpu1, gpu2]\n", "constant");
    if (!spec)
        return;
    char dir[] = "/tmp/regmix-launcher-test.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char wd[256];
    snprintf(wd, sizeof wd, "%s/targets/sw1/target", dir);
    launcher_ctx_t c = ctx_for(spec);
    c.workdir = wd;
    c.sbatch = ""; /* absent */
    launcher_plan_t p;
    char err[256];
    CHECK(launcher_plan_make(&c, &p, err, sizeof err) == 0);
    CHECK(p.argv == NULL);
    CHECK(strstr(p.file_text, "#!/bin/bash\n") == p.file_text);
    CHECK(strstr(p.file_text, "#SBATCH --ntasks=4\n") != NULL);
    CHECK(strstr(p.file_text, "#SBATCH --nodelist=gpu1,gpu2\n") != NULL);
    CHECK(strstr(p.file_text, "#SBATCH --job-name=regmix-sw-1-a-target\n") != NULL);
    CHECK(strstr(p.file_text, "exec srun") != NULL);
    CHECK(strstr(p.file_text, "'--train' \\\n    'web=/data/web/train_*.bin'") != NULL);
    CHECK(strstr(p.file_text,
                 "'--weights-json' \\\n    '{\"web\":0.5,\"code\":0.5,\"books\":0.0}'") != NULL);
    CHECK(strstr(p.file_text, "'--progress-fd' \\\n    '1'") != NULL);
    char path[300];
    snprintf(path, sizeof path, "%s/target.sbatch", wd);
    CHECK_STR_EQ(p.file_path, path);
    CHECK(strstr(p.message, "sbatch not found") != NULL);
    CHECK(strstr(p.message, path) != NULL);
    CHECK(launcher_plan_write(&p, err, sizeof err) == 0);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        char got[8192];
        size_t n = fread(got, 1, sizeof got - 1, f);
        got[n] = 0;
        CHECK_STR_EQ(got, p.file_text);
        fclose(f);
    }
    /* the script is valid shell: bash -n parses it */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "bash -n '%s'", path);
    CHECK_INT_EQ(system(cmd), 0);
    launcher_plan_clear(&p);

    c.sbatch = "/bin/true"; /* present: the plan submits */
    CHECK(launcher_plan_make(&c, &p, err, sizeof err) == 0);
    CHECK_INT_EQ(launcher_argv_len(p.argv), 3);
    CHECK_STR_EQ(p.argv[0], "/bin/true");
    CHECK_STR_EQ(p.argv[1], "--parsable"); /* the job id alone: the handle to follow */
    CHECK_STR_EQ(p.argv[2], path);
    CHECK_STR_EQ(p.job_name, "regmix-sw-1-a-target");
    CHECK_INT_EQ(p.submits, 1);
    CHECK_INT_EQ(p.progress_fd, -1);
    launcher_plan_clear(&p);
    spec_destroy(&spec);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT_EQ(system(cmd), 0);
}

static const char *yscalar(struct fy_node *root, const char *path, char *buf, size_t len)
{
    struct fy_node *n = fy_node_by_path(root, path, (size_t)-1, FYNWF_DONT_FOLLOW);
    size_t l = 0;
    const char *s = n ? fy_node_get_scalar(n, &l) : NULL;
    if (!s || l >= len)
        return "(missing)";
    memcpy(buf, s, l);
    buf[l] = 0;
    return buf;
}

static void test_kubernetes(void)
{
    spec_t *spec = make_spec("kubernetes", "  namespace: ml\n  image: 'reg.example/regmix:0.1'\n",
                             "constant");
    if (!spec)
        return;
    launcher_ctx_t c = ctx_for(spec);
    c.kubectl = "";
    launcher_plan_t p;
    char err[256], b[256];
    CHECK(launcher_plan_make(&c, &p, err, sizeof err) == 0);
    CHECK(p.argv == NULL);
    CHECK(strstr(p.message, "kubectl apply -f /state/targets/sw1/target/target-mpijob.yaml") !=
          NULL);
    struct fy_document *doc = fy_document_build_from_string(NULL, p.file_text, FY_NT);
    CHECK(doc != NULL);
    if (doc) {
        struct fy_node *root = fy_document_root(doc);
        CHECK_STR_EQ(yscalar(root, "/apiVersion", b, sizeof b), "kubeflow.org/v2beta1");
        CHECK_STR_EQ(yscalar(root, "/kind", b, sizeof b), "MPIJob");
        CHECK_STR_EQ(yscalar(root, "/metadata/name", b, sizeof b), "regmix-sw-1-a-target");
        CHECK_STR_EQ(yscalar(root, "/metadata/namespace", b, sizeof b), "ml");
        CHECK_STR_EQ(yscalar(root, "/spec/mpiReplicaSpecs/Worker/replicas", b, sizeof b), "4");
        CHECK_STR_EQ(yscalar(root, "/spec/mpiReplicaSpecs/Launcher/replicas", b, sizeof b), "1");
        struct fy_node *cmd =
                fy_node_by_path(root, "/spec/mpiReplicaSpecs/Launcher/template/spec/containers",
                                (size_t)-1, FYNWF_DONT_FOLLOW);
        struct fy_node *c0 = cmd ? fy_node_sequence_get_by_index(cmd, 0) : NULL;
        CHECK_STR_EQ(yscalar(c0, "/image", b, sizeof b), "reg.example/regmix:0.1");
        struct fy_node *argv = c0 ? fy_node_by_path(c0, "/command", (size_t)-1, 0) : NULL;
        CHECK(argv && fy_node_is_sequence(argv));
        char items[64][256];
        int n = 0;
        void *it = NULL;
        struct fy_node *e;
        while (argv && n < 64 && (e = fy_node_sequence_iterate(argv, &it)) != NULL) {
            size_t l;
            const char *s = fy_node_get_scalar(e, &l);
            snprintf(items[n++], sizeof items[0], "%.*s", (int)(s ? l : 0), s ? s : "");
        }
        CHECK(n > 10);
        CHECK_STR_EQ(items[0], "mpirun");
        CHECK_STR_EQ(items[1], "-np");
        CHECK_STR_EQ(items[2], "4");
        int w = -1, v = -1;
        for (int i = 0; i < n; i++) {
            if (strcmp(items[i], "--weights-json") == 0)
                w = i;
            if (strcmp(items[i], "books=/data/it's/val.bin") == 0)
                v = i;
        }
        CHECK(w > 0 && strcmp(items[w + 1], "{\"web\":0.5,\"code\":0.5,\"books\":0.0}") == 0);
        CHECK(v > 0);
        fy_document_destroy(doc);
    }
    launcher_plan_clear(&p);

    c.kubectl = "/usr/bin/kubectl-test";
    CHECK(launcher_plan_make(&c, &p, err, sizeof err) == 0);
    CHECK_INT_EQ(launcher_argv_len(p.argv), 4);
    CHECK_STR_EQ(p.argv[1], "apply");
    CHECK_STR_EQ(p.argv[2], "-f");
    CHECK_INT_EQ(p.submits, 1);
    launcher_plan_clear(&p);
    spec_destroy(&spec);

    spec = make_spec("kubernetes", "", "constant"); /* no image */
    c = ctx_for(spec);
    CHECK_INT_EQ(launcher_plan_make(&c, &p, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "target.image") != NULL);
    spec_destroy(&spec);
}

/* ---- runner ---------------------------------------------------------------------------------- */

typedef struct seen {
    int steps, evals, exits;
    int64_t last_step;
    double last_loss;
    int64_t status;
    int sig;
    int has_result;
    int nlosses;
    char names[8][32];
    double losses[8];
} seen_t;

static void on_progress(launcher_run_t *r, const launcher_progress_t *p, void *data)
{
    seen_t *s = data;
    if (strcmp(p->event, "step") == 0) {
        s->steps++;
        s->last_step = p->step;
        s->last_loss = p->loss;
    } else if (strcmp(p->event, "eval") == 0) {
        s->evals++;
    }
}

static void on_exit_cb(launcher_run_t *r, const launcher_outcome_t *o, void *data)
{
    seen_t *s = data;
    s->exits++;
    s->status = o->exit_status;
    s->sig = o->term_signal;
    s->has_result = o->has_result;
    s->nlosses = o->nlosses;
    for (int i = 0; i < o->nlosses && i < 8; i++) {
        snprintf(s->names[i], sizeof s->names[i], "%s", o->loss_names[i]);
        s->losses[i] = o->losses[i];
    }
}

static void test_runner(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char log[] = "/tmp/regmix-launcher-log.XXXXXX";
    int lfd = mkstemp(log);
    CHECK(lfd >= 0);
    close(lfd);
    char prog[] = "/tmp/regmix-launcher-progress.XXXXXX";
    int pfd = mkstemp(prog);
    CHECK(pfd >= 0);
    close(pfd);

    /* progress on fd 3, noise in between, a result line without a final newline, exit 3 */
    char *const a3[] = {"sh", "-c",
                        "echo '{\"event\":\"step\",\"step\":1,\"loss\":2.5}' >&3;"
                        "echo 'not json' >&3; echo 'to stderr' >&2; echo 'to stdout';"
                        "echo '{\"event\":\"eval\",\"step\":1,\"losses\":{\"a\":1,\"b\":3}}' >&3;"
                        "echo '{\"event\":\"step\",\"step\":2,\"loss\":2.25}' >&3;"
                        "printf '{\"event\":\"result\",\"losses\":{\"a\":1.5,\"b\":2}}' >&3;"
                        "exit 3",
                        NULL};
    seen_t s = {0};
    launcher_run_t *run = NULL;
    CHECK(launcher_run_start(&loop, a3, 3, prog, log, "/tmp", on_progress, on_exit_cb, &s, &run) ==
          0);
    CHECK(run && launcher_run_pid(run) > 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(s.exits, 1);
    CHECK_INT_EQ(s.steps, 2);
    CHECK_INT_EQ(s.evals, 1);
    CHECK_INT_EQ(s.last_step, 2);
    CHECK_NEAR(s.last_loss, 2.25, 0);
    CHECK_INT_EQ(s.status, 3);
    CHECK_INT_EQ(s.sig, 0);
    CHECK_INT_EQ(s.has_result, 1);
    CHECK_INT_EQ(s.nlosses, 2);
    CHECK_STR_EQ(s.names[0], "a");
    CHECK_NEAR(s.losses[0], 1.5, 0);
    CHECK_STR_EQ(s.names[1], "b");
    CHECK_NEAR(s.losses[1], 2.0, 0);
    FILE *f = fopen(log, "r");
    char text[1024] = "";
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
    }
    CHECK(strstr(text, "to stderr\n") != NULL);
    CHECK(strstr(text, "to stdout\n") != NULL);
    CHECK(strstr(text, "\"event\"") == NULL); /* progress lines are not logged */
    /* the progress file holds every line the child wrote there, JSON or not */
    f = fopen(prog, "r");
    text[0] = 0;
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
    }
    CHECK(strstr(text, "not json\n") != NULL);
    CHECK(strstr(text, "{\"event\":\"step\",\"step\":2,\"loss\":2.25}\n") != NULL);

    /* progress on stdout (the mpirun case) */
    char *const a1[] = {"sh", "-c",
                        "echo 'banner'; echo '{\"event\":\"step\",\"step\":7,\"loss\":1}';"
                        "echo '{\"event\":\"result\",\"losses\":{\"x\":0.5}}'",
                        NULL};
    memset(&s, 0, sizeof s);
    CHECK(launcher_run_start(&loop, a1, 1, prog, log, NULL, on_progress, on_exit_cb, &s, NULL) ==
          0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(s.exits, 1);
    CHECK_INT_EQ(s.status, 0);
    CHECK_INT_EQ(s.last_step, 7);
    CHECK_INT_EQ(s.nlosses, 1);
    CHECK_STR_EQ(s.names[0], "x");

    /* a signal ends it; no result */
    char *const as[] = {"sleep", "30", NULL};
    memset(&s, 0, sizeof s);
    CHECK(launcher_run_start(&loop, as, -1, NULL, NULL, NULL, on_progress, on_exit_cb, &s, &run) ==
          0);
    CHECK(launcher_run_kill(run, SIGTERM) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(s.exits, 1);
    CHECK_INT_EQ(s.sig, SIGTERM);
    CHECK_INT_EQ(s.has_result, 0);

    /* a child that leaves a grandchild holding the progress file: the exit is reported at once */
    char *const ag[] = {"sh", "-c", "sleep 5 & echo '{\"event\":\"step\",\"step\":1}' >&3", NULL};
    memset(&s, 0, sizeof s);
    uint64_t t0 = uv_hrtime();
    CHECK(launcher_run_start(&loop, ag, 3, prog, NULL, NULL, on_progress, on_exit_cb, &s, NULL) ==
          0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(s.exits, 1);
    CHECK_INT_EQ(s.steps, 1);
    CHECK((uv_hrtime() - t0) / 1000000 < 10000);

    /* spawn errors come back from start, and no callback follows */
    char *const bad[] = {"/nonexistent/regmix-train", NULL};
    memset(&s, 0, sizeof s);
    CHECK_INT_EQ(
            launcher_run_start(&loop, bad, 3, prog, NULL, NULL, on_progress, on_exit_cb, &s, NULL),
            -ENOENT);
    CHECK_INT_EQ(
            launcher_run_start(&loop, a1, 2, prog, NULL, NULL, on_progress, on_exit_cb, &s, NULL),
            -EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* a progress fd without a file to write it to */
    CHECK_INT_EQ(
            launcher_run_start(&loop, a1, 1, NULL, NULL, NULL, on_progress, on_exit_cb, &s, NULL),
            -EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(s.exits, 0);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
    unlink(log);
    unlink(prog);
}

int main(void)
{
    TEST_RUN(test_trainer_argv);
    TEST_RUN(test_mpirun);
    TEST_RUN(test_command);
    TEST_RUN(test_slurm);
    TEST_RUN(test_kubernetes);
    TEST_RUN(test_runner);
    return test_finish();
}
