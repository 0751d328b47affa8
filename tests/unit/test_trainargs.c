/*
 * test_trainargs: regmix-train's command line and config from one module (common/trainargs.h).
 * The worker's path (the assignment's spec_train_json + spec_domains_json + weights) gives exactly
 * the argv of the spec's own path; every flag and rule (micro-batch against ranks, threads,
 * checkpoint, exact weights, shortest numbers) is spelled out; bad input is refused with a message
 * naming the key; the config JSON holds the same settings.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "test.h"
#include "trainargs.h"

static const char *yaml =
        "name: t\n"
        "domains:\n"
        "  - {name: web, tokens: 3, train: '/d/web/t_*.bin', valid: '/d/web/v.bin'}\n"
        "  - {name: code, tokens: 1, train: '/d/code/t_*.bin'}\n"
        "  - {name: books, tokens: 1, valid: '/d/books/v.bin'}\n"
        "proxy:\n"
        "  model: {layers: 1, heads: 2, dim: 32, ffn: 64, context: 16, vocab: 256}\n"
        "  train: {batch: 8, micro_batch: 4, steps: 20, lr: 0.003, warmup: 2,\n"
        "          schedule: cosine, min_lr: 0.0003, threads: 2}\n"
        "target:\n"
        "  ranks: 4\n"
        "  train: {batch: 8, micro_batch: 4}\n";

static spec_t *load(const char *text)
{
    spec_t *s = NULL;
    char err[512];
    int rc = spec_parse_string("t.yaml", text, strlen(text), &s, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    return s;
}

static int argv_find(char *const *argv, const char *s)
{
    for (int i = 0; argv && argv[i]; i++)
        if (strcmp(argv[i], s) == 0)
            return i;
    return -1;
}

static const char *after(char *const *argv, const char *flag)
{
    int i = argv_find(argv, flag);
    return i >= 0 ? argv[i + 1] : NULL;
}

static const double W[3] = {0.7, 0.3, 0};

static void test_from_spec(void)
{
    spec_t *spec = load(yaml);
    if (!spec)
        return;
    trainargs_t *t = NULL;
    char err[256], **a = NULL;
    CHECK(trainargs_from_spec(spec, SPEC_STAGE_PROXY, W, 17, 1, &t, err, sizeof err) == 0);
    CHECK(trainargs_argv(t, "/opt/regmix-train", 3, &a, err, sizeof err) == 0);
    static const char *const want[] = {
            "/opt/regmix-train",
            "--layers",
            "1",
            "--heads",
            "2",
            "--dim",
            "32",
            "--ffn",
            "64",
            "--context",
            "16",
            "--vocab",
            "256",
            "--batch",
            "8",
            "--micro-batch",
            "4",
            "--steps",
            "20",
            "--lr",
            "0.003",
            "--warmup",
            "2",
            "--schedule",
            "cosine",
            "--min-lr",
            "0.0003",
            "--weight-decay",
            "0.1",
            "--clip",
            "1",
            "--eval-batches",
            "8",
            "--threads",
            "2",
            "--train",
            "web=/d/web/t_*.bin",
            "--train",
            "code=/d/code/t_*.bin",
            "--valid",
            "web=/d/web/v.bin",
            "--valid",
            "books=/d/books/v.bin",
            "--weights-json",
            "{\"web\":0.69999999999999996,\"code\":0.29999999999999999,\"books\":0.0}",
            "--seed",
            "17",
            "--progress-fd",
            "3",
            NULL};
    int n = 0;
    for (; a && a[n] && want[n]; n++)
        CHECK_STR_EQ(a[n], want[n]);
    CHECK(a && !a[n] && !want[n]);
    trainargs_argv_free(a);
    trainargs_destroy(&t);

    /* the target: 4 ranks x micro 4 > batch 8, so the trainer's default; a checkpoint to resume */
    CHECK(trainargs_from_spec(spec, SPEC_STAGE_TARGET, W, 5, spec->target.ranks, &t, err,
                              sizeof err) == 0);
    CHECK(trainargs_set_checkpoint(t, "/state/sw1") == 0);
    CHECK(trainargs_argv(t, NULL, -1, &a, err, sizeof err) == 0);
    CHECK_STR_EQ(a[0], "regmix-train");
    CHECK_INT_EQ(argv_find(a, "--micro-batch"), -1);
    CHECK_INT_EQ(argv_find(a, "--progress-fd"), -1);
    CHECK_INT_EQ(argv_find(a, "--threads"), -1); /* target.train.threads 0: the trainer decides */
    CHECK_STR_EQ(after(a, "--checkpoint"), "/state/sw1/checkpoint");
    CHECK(argv_find(a, "--resume") > 0);
    CHECK_STR_EQ(after(a, "--layers"), "2"); /* target.model: the defaults */
    trainargs_argv_free(a);
    t->ranks = 2; /* 2 x 4 <= 8 */
    CHECK(trainargs_argv(t, NULL, 1, &a, err, sizeof err) == 0);
    CHECK_STR_EQ(after(a, "--micro-batch"), "4");
    CHECK_STR_EQ(after(a, "--progress-fd"), "1");
    trainargs_argv_free(a);

    /* the config: the same settings as one JSON object */
    char *cfg = trainargs_config_json(t, 3, err, sizeof err);
    json_t *o = cfg ? json_loads(cfg, 0, NULL) : NULL;
    CHECK(o != NULL);
    CHECK_INT_EQ(json_integer_value(json_object_get(o, "micro-batch")), 4);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "checkpoint")), "/state/sw1/checkpoint");
    CHECK(json_is_true(json_object_get(o, "resume")));
    CHECK_STR_EQ(json_string_value(json_object_get(o, "seed")), "5");
    CHECK_NEAR(json_real_value(json_object_get(json_object_get(o, "weights"), "web")), 0.7, 0);
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(o, "train"), "code")),
                 "/d/code/t_*.bin");
    CHECK(json_object_get(json_object_get(o, "train"), "books") == NULL);
    CHECK_INT_EQ(json_integer_value(json_object_get(o, "progress-fd")), 3);
    json_decref(o);
    free(cfg);
    trainargs_destroy(&t);
    trainargs_destroy(&t); /* a harmless no-op */
    spec_destroy(&spec);
}

/* The worker's path: what the coordinator puts in an assignment gives the same argv. */
static void test_worker_path_equals_spec_path(void)
{
    spec_t *spec = load(yaml);
    if (!spec)
        return;
    char *tj = spec_train_json(spec, SPEC_STAGE_PROXY), *dj = spec_domains_json(spec);
    const char *names[] = {"books", "web", "code"}; /* any order: matched by name */
    const double w[] = {0, 0.7, 0.3};
    trainargs_t *a = NULL, *b = NULL;
    char err[256], **va = NULL, **vb = NULL;
    CHECK(trainargs_from_spec(spec, SPEC_STAGE_PROXY, W, 99, 1, &a, err, sizeof err) == 0);
    CHECK_MSG(trainargs_from_json(tj, dj, names, w, 3, 99, &b, err, sizeof err) == 0, "%s", err);
    CHECK(a && b && trainargs_argv(a, "rt", 3, &va, err, sizeof err) == 0 &&
          trainargs_argv(b, "rt", 3, &vb, err, sizeof err) == 0);
    int n = 0;
    for (; va && vb && va[n] && vb[n]; n++)
        CHECK_STR_EQ(va[n], vb[n]);
    CHECK(va && vb && !va[n] && !vb[n] && n > 40);
    trainargs_argv_free(va);
    trainargs_argv_free(vb);
    trainargs_destroy(&a);
    trainargs_destroy(&b);

    /* a domain without a weight has 0; absent keys take the spec's defaults */
    CHECK(trainargs_from_json("{\"model\": {\"layers\": 3}}", dj, names + 1, w + 1, 1, 1, &b, err,
                              sizeof err) == 0);
    CHECK(b && trainargs_argv(b, "rt", 3, &vb, err, sizeof err) == 0);
    CHECK_STR_EQ(after(vb, "--layers"), "3");
    CHECK_STR_EQ(after(vb, "--dim"), "256");
    CHECK_STR_EQ(after(vb, "--weights-json"), "{\"web\":0.69999999999999996,\"code\":0.0,"
                                              "\"books\":0.0}");
    trainargs_argv_free(vb);
    trainargs_destroy(&b);
    free(tj);
    free(dj);
    spec_destroy(&spec);
}

static void expect_json_error(const char *tj, const char *dj, const char *word)
{
    const char *names[] = {"web"};
    const double w[] = {1};
    trainargs_t *t = NULL;
    char err[256] = "";
    CHECK_INT_EQ(trainargs_from_json(tj, dj, names, w, 1, 1, &t, err, sizeof err), -EINVAL);
    CHECK(t == NULL);
    CHECK_MSG(strstr(err, word) != NULL, "'%s' not in: %s", word, err);
}

static void test_bad_input(void)
{
    const char *dj = "{\"web\": {\"train\": \"/d/w*.bin\"}}";
    expect_json_error("{\"train\": {\"no_result\": true}}", dj, "no_result");
    expect_json_error("{\"model\": {\"layers\": \"two\"}}", dj, "layers");
    expect_json_error("{\"model\": {\"layers\": 2.5}}", dj, "layers");
    expect_json_error("{\"train\": {\"schedule\": \"exp\"}}", dj, "exp");
    expect_json_error("{\"optimizer\": {}}", dj, "optimizer");
    expect_json_error("[1]", dj, "train_args_json");
    expect_json_error("{}", "{\"code\": {\"train\": \"/d/c*.bin\"}}", "web");
    expect_json_error("{}", "{\"web\": {\"train\": 3}}", "web");
    expect_json_error("{}", "nope", "data_json");

    spec_t *spec = load(yaml);
    if (!spec)
        return;
    trainargs_t *t = NULL;
    char err[256], **a = NULL;
    double w[3] = {0.5, 0.25, 0.25}; /* books has no train glob */
    CHECK(trainargs_from_spec(spec, SPEC_STAGE_PROXY, w, 1, 1, &t, err, sizeof err) == 0);
    CHECK_INT_EQ(trainargs_argv(t, NULL, 3, &a, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "books") && strstr(err, "no train glob"));
    CHECK(trainargs_config_json(t, 3, err, sizeof err) == NULL);
    t->domains[2].weight = 0;
    t->domains[1].weight = NAN;
    CHECK_INT_EQ(trainargs_check(t, err, sizeof err), -EINVAL);
    t->domains[1].weight = 0.5;
    CHECK_INT_EQ(trainargs_check(t, err, sizeof err), 0);
    t->train.schedule = SPEC_SCHEDULE_LINEAR;
    CHECK_INT_EQ(trainargs_argv(t, NULL, 3, &a, err, sizeof err), -ENOTSUP);
    CHECK(strstr(err, "linear") != NULL);
    trainargs_destroy(&t);
    spec_destroy(&spec);
}

int main(void)
{
    TEST_RUN(test_from_spec);
    TEST_RUN(test_worker_path_equals_spec_path);
    TEST_RUN(test_bad_input);
    return test_finish();
}
