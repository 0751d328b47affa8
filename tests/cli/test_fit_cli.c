/*
 * test_fit_cli: `regmixctl fit` as a user runs it (the built program, path given by meson).
 *
 * The JSON object has the documented keys (test set and CV variants), --out writes YAML, --help
 * answers, and every kind of bad input (ragged CSV, non-numeric/NaN/inf cells, a missing join key,
 * an unknown target column, a mismatched prior) exits 2 with ONE stderr line naming the file and
 * the line. Every model of the fit pipeline's table fits offline; a sweep's results file with its
 * spec (--results, --spec) takes the sweep's settings. Bad files are written to a temporary
 * directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fitpipe.h"
#include "test.h"

extern char **environ;

static const char *regmixctl;
static char tmpdir[256];

typedef struct run {
    int status; /* exit code, or -1 */
    char out[65536];
    char err[8192];
} run_t;

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
}

/* Runs regmixctl with argv (NULL-terminated, without the program) in the paper directory. */
static void run_fit(run_t *r, const char *const *args)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)regmixctl;
    argv[n++] = "fit";
    for (; *args && n < 62; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    char po[300], pe[300];
    snprintf(po, sizeof po, "%s/stdout", tmpdir);
    snprintf(pe, sizeof pe, "%s/stderr", tmpdir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, po, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    r->status = -1;
    if (posix_spawn(&pid, regmixctl, &fa, NULL, argv, environ) == 0) {
        int st;
        if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
            r->status = WEXITSTATUS(st);
    }
    posix_spawn_file_actions_destroy(&fa);
    slurp(po, r->out, sizeof r->out);
    slurp(pe, r->err, sizeof r->err);
}

static char paper[3][4096];
static const char *pp(int slot, const char *name)
{
    snprintf(paper[slot], sizeof paper[slot], "%s", test_paper_path(name));
    return paper[slot];
}

static char tpath_buf[8][512];
static const char *tpath(int slot, const char *name)
{
    snprintf(tpath_buf[slot], sizeof tpath_buf[slot], "%s/%s", tmpdir, name);
    return tpath_buf[slot];
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

static void test_help(void)
{
    run_t r;
    run_fit(&r, (const char *[]){"--help", NULL});
    CHECK_INT_EQ(r.status, 0);
    CHECK(strstr(r.out, "--mixtures") && strstr(r.out, "--simulate") && strstr(r.out, "Example"));
    run_fit(&r, (const char *[]){"--mixtures", "x.csv", NULL});
    CHECK_INT_EQ(r.status, 2);
    run_fit(&r, (const char *[]){"--bogus", NULL});
    CHECK_INT_EQ(r.status, 2);
    run_fit(&r, (const char *[]){"--mixtures", "/nonexistent/m.csv", "--losses", "l.csv",
                                 "--target", "x", NULL});
    CHECK_INT_EQ(r.status, 2);
    CHECK(strstr(r.err, "/nonexistent/m.csv") != NULL);
    run_fit(&r, (const char *[]){"--mixtures", "m.csv", "--losses", "l.csv", "--target", "x",
                                 "--top-k", "0", NULL});
    CHECK_INT_EQ(r.status, 2);
}

static json_t *get(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    CHECK_MSG(v != NULL, "missing key '%s'", k);
    return v;
}

static void test_json_test_set(void)
{
    run_t r;
    run_fit(&r, (const char *[]){"--mixtures", pp(0, "train_mixture_1m.csv"), "--losses",
                                 pp(1, "train_pile_loss_1m.csv"), "--target",
                                 "metric/the_pile_pile_cc_val_loss", "--test-mixtures",
                                 pp(2, "test_mixture_1m.csv"), "--test-losses",
                                 test_paper_path("test_pile_loss_1m.csv"), "--simulate", "20000",
                                 "--top-k", "20", "--threads", "2", "--json", NULL});
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    CHECK_MSG(j != NULL, "stdout is not one JSON object: %s", je.text);
    if (!j)
        return;
    CHECK_STR_EQ(json_string_value(get(j, "model")), "gbdt");
    CHECK_STR_EQ(json_string_value(get(j, "target")), "metric/the_pile_pile_cc_val_loss");
    CHECK_INT_EQ(json_integer_value(get(j, "train_runs")), 512);
    json_t *t = get(j, "test");
    CHECK(json_object_get(j, "cv") == NULL);
    CHECK_INT_EQ(json_integer_value(get(t, "runs")), 256);
    CHECK(json_real_value(get(t, "spearman")) >= 0.98);
    CHECK(json_real_value(get(t, "pearson")) > 0.9);
    CHECK(json_real_value(get(t, "mse")) > 0 && json_real_value(get(t, "mse")) < 0.01);
    CHECK(json_real_value(get(t, "r2")) > 0.9);
    json_t *p = get(j, "proposal");
    CHECK_INT_EQ(json_integer_value(get(p, "simulated")), 20000);
    CHECK_INT_EQ(json_integer_value(get(p, "top_k")), 20);
    CHECK(json_real_value(get(p, "predicted")) > 4.5 && json_real_value(get(p, "predicted")) < 6);
    json_t *w = get(p, "weights");
    CHECK_INT_EQ(json_object_size(w), 17);
    double sum = 0;
    const char *key;
    json_t *val;
    json_object_foreach(w, key, val) sum += json_real_value(val);
    CHECK_NEAR(sum, 1.0, 1e-9);
    json_t *s = get(j, "seconds");
    CHECK(json_is_number(get(s, "fit")) && json_is_number(get(s, "simulate")));
    json_decref(j);
    /* exactly one object and nothing else */
    CHECK(strchr(r.out, '\n') == r.out + strlen(r.out) - 1);
}

static const char *MIX = "index,a,b,c\n"
                         "1,0.2,0.3,0.5\n2,0.6,0.2,0.2\n3,0.1,0.1,0.8\n4,0.3,0.3,0.4\n"
                         "5,0.5,0.5,0.0\n6,0.0,0.4,0.6\n7,0.7,0.1,0.2\n8,0.25,0.25,0.5\n";
static const char *LOSS = "index,l_a,l_b\n"
                          "1,3.1,2.0\n2,3.5,2.1\n3,2.9,2.2\n4,3.2,2.3\n"
                          "5,3.6,2.4\n6,3.0,2.5\n7,3.7,2.6\n8,3.1,2.7\n";

static void test_json_cv_and_yaml(void)
{
    write_file(tpath(0, "mix.csv"), MIX);
    write_file(tpath(1, "loss.csv"), LOSS);
    run_t r;
    run_fit(&r, (const char *[]){"--mixtures", tpath(0, "mix.csv"), "--losses",
                                 tpath(1, "loss.csv"), "--target", "l_a=1.0,l_b=0.5", "--model",
                                 "linear", "--cv", "4", "--simulate", "5000", "--top-k", "10",
                                 "--json", "--out", tpath(2, "mix.yaml"), NULL});
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    CHECK(j != NULL);
    if (!j)
        return;
    CHECK_STR_EQ(json_string_value(get(j, "model")), "linear");
    CHECK(json_object_get(j, "test") == NULL);
    json_t *cv = get(j, "cv");
    CHECK_INT_EQ(json_integer_value(get(cv, "folds")), 4);
    CHECK_INT_EQ(json_integer_value(get(cv, "runs")), 8);
    CHECK(get(cv, "spearman") && get(cv, "pearson") && get(cv, "mse") && get(cv, "r2"));
    CHECK_INT_EQ(json_object_size(get(get(j, "proposal"), "weights")), 3);
    json_decref(j);
    char yaml[4096];
    slurp(tpath(2, "mix.yaml"), yaml, sizeof yaml);
    CHECK(yaml[0] == '#');
    CHECK(strstr(yaml, "\nmixture:\n") != NULL);
    CHECK(strstr(yaml, "\n  \"a\": ") && strstr(yaml, "\n  \"b\": ") &&
          strstr(yaml, "\n  \"c\": "));
    /* the readable table: metrics, then the proposal */
    run_fit(&r, (const char *[]){"--mixtures", tpath(0, "mix.csv"), "--losses",
                                 tpath(1, "loss.csv"), "--target", "mean", "--model", "ridge",
                                 "--cv", "2", "--simulate", "1000", "--top-k", "5", NULL});
    CHECK_INT_EQ(r.status, 0);
    CHECK(strstr(r.out, "spearman") && strstr(r.out, "proposal"));
}

/* Runs a fit expected to fail on bad input: exit 2, one stderr line naming file and line. */
static void expect_bad(const char *what,
                       const char *mix,
                       const char *loss,
                       const char *target,
                       const char *prior,
                       const char *file,
                       int line)
{
    write_file(tpath(3, "bad_mix.csv"), mix);
    write_file(tpath(4, "bad_loss.csv"), loss);
    if (prior)
        write_file(tpath(5, "bad_prior.csv"), prior);
    run_t r;
    const char *args[] = {"--mixtures",
                          tpath(3, "bad_mix.csv"),
                          "--losses",
                          tpath(4, "bad_loss.csv"),
                          "--target",
                          target,
                          "--model",
                          "linear",
                          "--simulate",
                          "100",
                          "--top-k",
                          "2",
                          prior ? "--prior" : NULL,
                          tpath(5, "bad_prior.csv"),
                          NULL};
    run_fit(&r, args);
    char want[600];
    snprintf(want, sizeof want, "%s:%d", tpath(6, file), line);
    size_t len = strlen(r.err);
    CHECK_MSG(r.status == 2, "%s: exit %d", what, r.status);
    CHECK_MSG(len > 0 && strchr(r.err, '\n') == r.err + len - 1, "%s: not one line: %s", what,
              r.err);
    CHECK_MSG(strstr(r.err, want) != NULL, "%s: '%s' not in: %s", what, want, r.err);
    CHECK_MSG(strncmp(r.err, "regmixctl fit: ", 15) == 0, "%s: %s", what, r.err);
}

static void test_bad_inputs(void)
{
    const char *prior = "domain,weight\na,0.3\nb,0.3\nc,0.4\n";
    expect_bad("ragged", "index,a,b,c\n1,0.2,0.3,0.5\n2,0.6,0.2\n", LOSS, "l_a", NULL,
               "bad_mix.csv", 3);
    expect_bad("non-numeric", "index,a,b,c\n1,0.2,0.3,0.5\n2,0.6,x,0.2\n", LOSS, "l_a", NULL,
               "bad_mix.csv", 3);
    expect_bad("nan", MIX,
               "index,l_a,l_b\n1,3.1,2\n2,nan,2\n3,1,1\n4,1,1\n5,1,1\n6,1,1\n7,1,1\n8,1,1\n", "l_a",
               NULL, "bad_loss.csv", 3);
    expect_bad("inf", MIX,
               "index,l_a,l_b\n1,3.1,2\n2,3,2\n3,1,1\n4,1,1\n5,inf,1\n6,1,1\n7,1,1\n8,1,1\n", "l_a",
               NULL, "bad_loss.csv", 6);
    expect_bad("missing key", MIX,
               "index,l_a,l_b\n1,3.1,2\n2,3,2\n3,1,1\n4,1,1\n5,1,1\n6,1,1\n7,1,1\n", "l_a", NULL,
               "bad_mix.csv", 9);
    expect_bad("no target column", MIX, LOSS, "l_zz", NULL, "bad_loss.csv", 1);
    expect_bad("no join column", "idx,a,b,c\n1,0.2,0.3,0.5\n", LOSS, "l_a", NULL, "bad_mix.csv", 1);
    expect_bad("negative weight", "index,a,b,c\n1,0.2,0.3,0.5\n2,-0.6,0.2,0.2\n", LOSS, "l_a", NULL,
               "bad_mix.csv", 3);
    expect_bad("prior: unknown domain", MIX, LOSS, "l_a", "domain,weight\na,0.3\nb,0.3\nd,0.4\n",
               "bad_prior.csv", 4);
    expect_bad("prior: missing domain", MIX, LOSS, "l_a", "domain,weight\na,0.3\nb,0.7\n",
               "bad_prior.csv", 4);
    expect_bad("prior: zero weight", MIX, LOSS, "l_a", "domain,weight\na,0.3\nb,0\nc,0.7\n",
               "bad_prior.csv", 3);
    /* the good prior passes */
    write_file(tpath(5, "bad_prior.csv"), prior);
    run_t r;
    run_fit(&r, (const char *[]){"--mixtures", tpath(0, "mix.csv"), "--losses",
                                 tpath(1, "loss.csv"), "--target", "l_a", "--model", "linear",
                                 "--prior", tpath(5, "bad_prior.csv"), "--simulate", "100",
                                 "--top-k", "2", "--json", NULL});
    CHECK_MSG(r.status == 0, "good prior: exit %d: %s", r.status, r.err);
}

/* `--model M` for every model of the pipeline's table (the spec's regression.model values), on
 * the paper's 512 training runs scored on its 256 test runs: each fits, scores with a Spearman
 * above 0.5 on the held-out runs, and proposes a mixture on the simplex. gbdt, the default, is
 * test_json_test_set's (its 1000 trees are the slow part of this suite under ASan). */
static void test_every_model(void)
{
    int n = 0;
    for (const fitpipe_model_t *m = fitpipe_models; m->name; m++, n++) {
        if (strcmp(m->name, "gbdt") == 0)
            continue;
        run_t r;
        run_fit(&r, (const char *[]){"--mixtures",      pp(0, "train_mixture_1m.csv"),
                                     "--losses",        pp(1, "train_pile_loss_1m.csv"),
                                     "--target",        "metric/the_pile_pile_cc_val_loss",
                                     "--test-mixtures", pp(2, "test_mixture_1m.csv"),
                                     "--test-losses",   test_paper_path("test_pile_loss_1m.csv"),
                                     "--model",         m->name,
                                     "--simulate",      "4000",
                                     "--top-k",         "10",
                                     "--threads",       "2",
                                     "--json",          NULL});
        CHECK_MSG(r.status == 0, "%s: exit %d: %s", m->name, r.status, r.err);
        json_t *j = json_loads(r.out, 0, NULL);
        CHECK_MSG(j != NULL, "%s: no JSON", m->name);
        if (!j)
            continue;
        CHECK_STR_EQ(json_string_value(json_object_get(j, "model")), m->name);
        double rho = json_number_value(json_object_get(json_object_get(j, "test"), "spearman"));
        CHECK_MSG(rho > 0.5, "%s: test spearman %g", m->name, rho);
        json_t *w = json_object_get(json_object_get(j, "proposal"), "weights");
        CHECK_INT_EQ(json_object_size(w), 17);
        double sum = 0, lo = 1;
        const char *k;
        json_t *v;
        json_object_foreach(w, k, v)
        {
            sum += json_number_value(v);
            lo = fmin(lo, json_number_value(v));
        }
        CHECK_MSG(fabs(sum - 1) < 1e-9 && lo >= 0, "%s: weights sum %g, min %g", m->name, sum, lo);
        printf("  %-10s test spearman %.4f\n", m->name, rho);
        json_decref(j);
    }
    CHECK(n >= 4);
    run_t r;
    run_fit(&r, (const char *[]){"--mixtures", "m.csv", "--losses", "l.csv", "--target", "x",
                                 "--model", "cubic", NULL});
    CHECK_INT_EQ(r.status, 2);
    CHECK(strstr(r.err, "'cubic'") && strstr(r.err, "quadratic"));
}

/* --results with --spec: a `regmixctl results --csv` file (loss:NAME columns) and the sweep's
 * settings; a row without the loss the target needs is skipped, as the coordinator does; a file
 * whose mixture columns are not the spec's domains is refused naming the column. */
static void test_results_input(void)
{
    write_file(tpath(0, "sweep.yaml"),
               "name: s\n"
               "domains:\n"
               "  - {name: a, tokens: 2}\n"
               "  - {name: b, tokens: 1}\n"
               "  - {name: c, tokens: 1}\n"
               "regression: {target: b, model: quadratic, cv_folds: 2, simulate: 3000, top_k: 7,"
               " seed: 3}\n");
    write_file(tpath(1, "results.csv"),
               "run,attempt,worker,a,b,c,loss:a,loss:b,loss:c,loss:synthetic\n"
               "0,1,w,0.2,0.3,0.5,1,2.1,1,9\n"
               "1,1,w,0.6,0.2,0.2,1,1.8,1,9\n"
               "2,1,w,0.1,0.1,0.8,1,2.6,1,9\n"
               "3,1,w,0.3,0.3,0.4,1,,1,9\n"
               "4,2,w,0.5,0.4,0.1,1,1.2,1,9\n"
               "5,1,w,0.3,0.6,0.1,1,0.9,1,9\n"
               "6,1,w,0.8,0.1,0.1,1,2.0,1,9\n"
               "7,1,w,0.4,0.2,0.4,1,1.9,1,9\n");
    run_t r;
    run_fit(&r, (const char *[]){"--results", tpath(1, "results.csv"), "--spec",
                                 tpath(0, "sweep.yaml"), "--json", NULL});
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    json_t *j = json_loads(r.out, 0, NULL);
    CHECK(j != NULL);
    if (j) {
        CHECK_STR_EQ(json_string_value(json_object_get(j, "model")), "quadratic");
        CHECK_STR_EQ(json_string_value(json_object_get(j, "target")), "b");
        CHECK_INT_EQ(json_integer_value(json_object_get(j, "train_runs")), 7);
        CHECK_INT_EQ(json_integer_value(json_object_get(j, "skipped_runs")), 1);
        CHECK_INT_EQ(json_integer_value(get(get(j, "cv"), "folds")), 2);
        json_t *p = get(j, "proposal");
        CHECK_INT_EQ(json_integer_value(get(p, "simulated")), 3000);
        CHECK_INT_EQ(json_integer_value(get(p, "top_k")), 7);
        json_decref(j);
    }
    /* an option given explicitly wins over the spec */
    run_fit(&r,
            (const char *[]){"--results", tpath(1, "results.csv"), "--spec", tpath(0, "sweep.yaml"),
                             "--model", "linear", "--top-k", "3", "--json", NULL});
    CHECK_MSG(r.status == 0, "exit %d: %s", r.status, r.err);
    j = json_loads(r.out, 0, NULL);
    if (j) {
        CHECK_STR_EQ(json_string_value(json_object_get(j, "model")), "linear");
        CHECK_INT_EQ(json_integer_value(get(get(j, "proposal"), "top_k")), 3);
        json_decref(j);
    }
    run_fit(&r, (const char *[]){"--results", tpath(1, "results.csv"), NULL});
    CHECK_INT_EQ(r.status, 2);
    CHECK(strstr(r.err, "--spec") != NULL);
    write_file(tpath(2, "bad_results.csv"),
               "run,attempt,worker,a,c,b,loss:b\n0,1,w,0.2,0.3,0.5,1\n");
    run_fit(&r, (const char *[]){"--results", tpath(2, "bad_results.csv"), "--spec",
                                 tpath(0, "sweep.yaml"), NULL});
    CHECK_INT_EQ(r.status, 2);
    CHECK_MSG(strstr(r.err, "bad_results.csv:1") && strstr(r.err, "'c'"), "%s", r.err);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_fit_cli PATH/TO/regmixctl\n");
        return 2;
    }
    regmixctl = argv[1];
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/test_fit_cli.XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    TEST_RUN(test_help);
    TEST_RUN(test_json_test_set);
    TEST_RUN(test_json_cv_and_yaml);
    TEST_RUN(test_bad_inputs);
    TEST_RUN(test_every_model);
    TEST_RUN(test_results_input);
    const char *files[] = {"stdout",   "stderr",      "mix.csv",      "loss.csv",
                           "mix.yaml", "bad_mix.csv", "bad_loss.csv", "bad_prior.csv"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(tpath(7, files[i]));
    rmdir(tmpdir);
    return test_finish();
}
