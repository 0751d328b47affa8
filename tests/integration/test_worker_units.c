/*
 * test_worker_units: the worker's pure pieces without a daemon: the synthetic loss, nvidia-smi
 * CSV parsing and --gpus lists, and report files (atomic save, load, scan of a workdir, forget).
 * Placeholders are child_fill()'s (tests/unit/test_child.c).
 */
#include <sys/stat.h>
#include <unistd.h>

#include "../../worker/gpu.h"
#include "../../worker/job.h"
#include "../../worker/report.h"
#include "test.h"

static void test_synthetic_loss(void)
{
    Regmix__DomainWeight a = REGMIX__DOMAIN_WEIGHT__INIT, b = REGMIX__DOMAIN_WEIGHT__INIT;
    Regmix__DomainWeight oa = REGMIX__DOMAIN_WEIGHT__INIT, oc = REGMIX__DOMAIN_WEIGHT__INIT;
    a.domain = oa.domain = "a";
    b.domain = "b";
    oc.domain = "c";
    a.weight = 0.6;
    b.weight = 0.4;
    oa.weight = 0.5;
    oc.weight = 0.5;
    const Regmix__DomainWeight *w[] = {&a, &b}, *o[] = {&oa, &oc};
    /* (0.6-0.5)^2 + (0.4-0)^2 + (0-0.5)^2 = 0.01 + 0.16 + 0.25 */
    CHECK_NEAR(job_synthetic_loss(w, 2, o, 2), 0.42, 1e-12);
    CHECK_NEAR(job_synthetic_loss(w, 2, NULL, 0), 0.52, 1e-12);
}

static void test_gpu_parse(void)
{
    gpu_t g[4];
    const char *csv = "0, NVIDIA H200, 143771, GPU-aaaa\n1, NVIDIA H200, 143771, GPU-bbbb\n"
                      "garbage line\n";
    int n = gpu_parse_nvidia_smi(csv, g, 4);
    CHECK_INT_EQ(n, 2);
    CHECK_INT_EQ(g[1].index, 1);
    CHECK_STR_EQ(g[0].name, "NVIDIA H200");
    CHECK_INT_EQ(g[0].memory_bytes, 143771ull * 1024 * 1024);
    CHECK_STR_EQ(g[1].uuid, "GPU-bbbb");
    CHECK_INT_EQ(gpu_discover("none", g, 4), 0);
    CHECK_INT_EQ(gpu_discover("2,5", g, 4), 2);
    CHECK_INT_EQ(g[1].index, 5);
    CHECK_INT_EQ(gpu_discover("1,x", g, 4), -EINVAL);
    CHECK_INT_EQ(gpu_discover("-1", g, 4), -EINVAL);
    CHECK_INT_EQ(gpu_discover("0,1,2,3,4", g, 4), -EINVAL);
}

/*
 * "auto" finds exactly the GPUs that `nvidia-smi -L` lists, in its order and with its UUIDs
 * (asked here independently, in its other output format); none where nvidia-smi is missing or
 * fails, as on a machine without an NVIDIA driver.
 */
static void test_gpu_auto(void)
{
    char want_uuid[GPU_MAX][96];
    int want = 0;
    FILE *f = popen("nvidia-smi -L 2>/dev/null", "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) && want < GPU_MAX) {
        const char *u = strstr(line, "(UUID: ");
        if (strncmp(line, "GPU ", 4) != 0 || !u)
            continue;
        snprintf(want_uuid[want], sizeof want_uuid[want], "%.*s", (int)strcspn(u + 7, ")"), u + 7);
        want++;
    }
    if (pclose(f) != 0)
        want = 0;
    gpu_t g[GPU_MAX];
    int n = gpu_discover("auto", g, GPU_MAX);
    CHECK_INT_EQ(n, want);
    for (int i = 0; i < n && i < want; i++) {
        CHECK_STR_EQ(g[i].uuid, want_uuid[i]);
        CHECK(g[i].memory_bytes > 0);
        CHECK(g[i].name[0] != '\0');
    }
    fprintf(stderr, "# gpu_discover(\"auto\") found %d GPU(s), nvidia-smi -L lists %d\n", n, want);
}

static int scanned;
static uint64_t scanned_ids;

static void scan_cb(report_t *r, void *arg)
{
    (void)arg;
    scanned++;
    scanned_ids += r->attempt_id;
    report_clear(r);
    free(r);
}

static void test_reports(void)
{
    char tmp[] = "/tmp/regmix-report-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/sw1/5-2", tmp);
    report_t r = {0};
    r.attempt_id = 41;
    r.run_id = 5;
    r.sweep_id = strdup("sw1");
    r.dir = strdup(dir);
    r.ok = 1;
    r.tokens = 1000;
    r.seconds = 1.25;
    report_value_add(&r.losses, &r.n_losses, "web", 3.25);
    report_value_add(&r.losses, &r.n_losses, "code", 0.1 + 0.2);
    CHECK_INT_EQ(report_save(&r), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, REPORT_FILE);
    report_t back = {0};
    CHECK_INT_EQ(report_load(path, &back), 0);
    CHECK_INT_EQ(back.attempt_id, 41);
    CHECK_INT_EQ(back.run_id, 5);
    CHECK_INT_EQ(back.ok, 1);
    CHECK_INT_EQ(back.n_losses, 2);
    if (back.n_losses == 2) {
        CHECK_STR_EQ(back.losses[1].name, "code");
        CHECK(back.losses[1].value == 0.1 + 0.2); /* bit for bit through JSON */
    }
    CHECK_STR_EQ(back.dir, dir);
    report_clear(&back);

    /* A second report (failed) and a corrupt file: the scan finds two, counts one bad. */
    report_t f = {0};
    f.attempt_id = 42;
    f.run_id = 6;
    f.sweep_id = strdup("sw1");
    snprintf(dir, sizeof dir, "%s/sw1/6-1", tmp);
    f.dir = strdup(dir);
    report_set_failed(&f, 3, 0, "boom");
    CHECK_INT_EQ(report_save(&f), 0);
    snprintf(path, sizeof path, "%s/sw2", tmp);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/sw2/7-1", tmp);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/sw2/7-1/%s", tmp, REPORT_FILE);
    FILE *fp = fopen(path, "w");
    fputs("{\"attempt_id\": ", fp);
    fclose(fp);
    int bad = -1;
    CHECK_INT_EQ(report_scan(tmp, scan_cb, NULL, &bad), 2);
    CHECK_INT_EQ(bad, 1);
    CHECK_INT_EQ(scanned, 2);
    CHECK_INT_EQ(scanned_ids, 83);
    CHECK_INT_EQ(report_scan("/nonexistent/regmix", scan_cb, NULL, &bad), 0);

    report_forget(&r);
    report_forget(&f);
    snprintf(path, sizeof path, "%s/sw1", tmp);
    CHECK_MSG(access(path, F_OK) != 0, "empty job and sweep directories removed");
    report_clear(&r);
    report_clear(&f);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK_INT_EQ(system(cmd), 0);
}

static int journaled;
static uint64_t journaled_ids;

static void journal_cb(report_t *r, void *arg)
{
    (void)arg;
    journaled++;
    journaled_ids += r->attempt_id;
    CHECK(r->dir == NULL);
    if (r->attempt_id == 3) {
        CHECK_INT_EQ(r->ok, 0);
        CHECK_STR_EQ(r->reason, "synthetic failure");
    } else {
        CHECK_INT_EQ(r->n_losses, 1);
        if (r->n_losses == 1)
            CHECK(r->losses[0].value == (double)r->attempt_id / 3.0);
    }
    report_clear(r);
    free(r);
}

static void test_journal(void)
{
    char tmp[] = "/tmp/regmix-journal-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    report_journal_t *j = NULL;
    int bad = -1;
    CHECK_INT_EQ(report_journal_open(tmp, journal_cb, NULL, &j, &bad), 0);
    CHECK_INT_EQ(journaled, 0);
    for (uint64_t id = 1; id <= 4; id++) {
        report_t r = {0};
        r.attempt_id = id;
        r.run_id = 100 + id;
        r.sweep_id = strdup("sw9");
        if (id == 3) {
            report_set_failed(&r, 1, 0, "synthetic failure");
        } else {
            r.ok = 1;
            report_value_add(&r.losses, &r.n_losses, "synthetic", (double)id / 3.0);
        }
        CHECK_INT_EQ(report_journal_append(j, &r), 0);
        report_clear(&r);
    }
    CHECK_INT_EQ(report_journal_ack(j, 2, 3), 0);
    report_journal_destroy(&j);
    CHECK(j == NULL);
    /* A torn last write (the worker was killed mid-line). */
    char path[300];
    snprintf(path, sizeof path, "%s/%s", tmp, REPORT_JOURNAL_FILE);
    FILE *f = fopen(path, "a");
    fputs("{\"op\":\"report\",\"attempt_id\":5,\"run", f);
    fclose(f);
    CHECK_INT_EQ(report_journal_open(tmp, journal_cb, NULL, &j, &bad), 0);
    CHECK_INT_EQ(journaled, 3);
    CHECK_INT_EQ(journaled_ids, 1 + 3 + 4);
    CHECK_INT_EQ(bad, 1);
    report_journal_destroy(&j);
    /* The rewrite kept exactly the outstanding three: a second replay finds them, nothing bad. */
    journaled = 0;
    journaled_ids = 0;
    CHECK_INT_EQ(report_journal_open(tmp, journal_cb, NULL, &j, &bad), 0);
    CHECK_INT_EQ(journaled, 3);
    CHECK_INT_EQ(bad, 0);
    report_journal_destroy(&j);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK_INT_EQ(system(cmd), 0);
}

int main(void)
{
    TEST_RUN(test_synthetic_loss);
    TEST_RUN(test_gpu_parse);
    TEST_RUN(test_gpu_auto);
    TEST_RUN(test_reports);
    TEST_RUN(test_journal);
    return test_finish();
}
