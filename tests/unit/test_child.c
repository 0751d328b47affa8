/*
 * test_child: the child-process helper both daemons start trainers with (common/child.h), on real
 * processes (/bin/sh) in a real libuv loop: the progress pipe read as lines (JSON objects parsed,
 * other text passed as is, a last line without newline, an over-long line dropped and counted),
 * stdout and stderr on the caller's files, the end reported once after exit and the pipe's end
 * (and not held up by a grandchild keeping the pipe), SIGTERM then SIGKILL for a child that
 * ignores SIGTERM, no callback after a failed spawn or child_close(); placeholders; mkdir -p.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "child.h"
#include "clock.h"
#include "test.h"

static char tmp[256];

typedef struct rec {
    int lines, objects, ends;
    uint64_t dropped;  /* child_dropped_lines() at the last line */
    char text[8][128]; /* the first lines */
    int64_t status;
    int sig;
    int64_t end_ms;
} rec_t;

static void on_line(child_t *c, const char *line, size_t len, json_t *obj, void *data)
{
    rec_t *r = data;
    if (r->lines < 8)
        snprintf(r->text[r->lines], sizeof r->text[0], "%.*s", (int)len, line);
    r->lines++;
    r->dropped = child_dropped_lines(c);
    if (obj) {
        CHECK(json_is_object(obj));
        r->objects++;
    }
}

static void on_end(child_t *c, int64_t status, int sig, void *data)
{
    CHECK(c != NULL);
    rec_t *r = data;
    r->ends++;
    r->status = status;
    r->sig = sig;
    r->end_ms = clock_mono_ms();
}

static char *sh[] = {"/bin/sh", "-c", NULL, NULL};

static int start(uv_loop_t *loop, const char *script, child_options_t *o, rec_t *r, child_t **c)
{
    sh[2] = (char *)script;
    o->argv = sh;
    return child_start(loop, o, on_line, on_end, r, c);
}

static void slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void test_lines_and_logs(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char out[300], err[300], buf[256];
    snprintf(out, sizeof out, "%s/out.log", tmp);
    snprintf(err, sizeof err, "%s/err.log", tmp);
    int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int efd = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    rec_t r = {0};
    child_options_t o = {.stdout_fd = ofd, .stderr_fd = efd, .progress_fd = 3, .cwd = tmp};
    child_t *c = NULL;
    CHECK(start(&loop,
                "echo hello; echo oops >&2; echo '{\"step\": 1}' >&3; echo 'plain text' >&3;"
                " echo '[1,2]' >&3; printf '{\"event\":\"result\"}' >&3; exit 3",
                &o, &r, &c) == 0);
    CHECK(c && child_pid(c) > 0);
    close(ofd);
    close(efd);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(r.ends, 1);
    CHECK_INT_EQ(r.status, 3);
    CHECK_INT_EQ(r.sig, 0);
    CHECK_INT_EQ(r.lines, 4);
    CHECK_INT_EQ(r.objects, 2); /* a JSON array is not an object */
    CHECK_STR_EQ(r.text[0], "{\"step\": 1}");
    CHECK_STR_EQ(r.text[1], "plain text");
    CHECK_STR_EQ(r.text[3], "{\"event\":\"result\"}"); /* no newline at the end */
    slurp(out, buf, sizeof buf);
    CHECK_STR_EQ(buf, "hello\n");
    slurp(err, buf, sizeof buf);
    CHECK_STR_EQ(buf, "oops\n");
    CHECK_INT_EQ(uv_loop_close(&loop), 0); /* every handle closed */
}

static void test_long_line_dropped(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    child_options_t o = {.stdout_fd = -1, .stderr_fd = -1, .progress_fd = 3, .line_max = 16};
    child_t *c = NULL;
    CHECK(start(&loop, "echo short >&3; echo 0123456789abcdefghij >&3; echo after >&3", &o, &r,
                &c) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(r.lines, 2);
    CHECK_STR_EQ(r.text[0], "short");
    CHECK_STR_EQ(r.text[1], "after");
    CHECK_INT_EQ(r.dropped, 1);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

/* progress_file: the child's progress descriptor is the caller's file (the launcher tails it);
 * no pipe, no line callbacks, the end right after the exit; signal_pid_only spares the group. */
static void test_progress_file(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char path[300], buf[256];
    snprintf(path, sizeof path, "%s/progress.jsonl", tmp);
    int pfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    rec_t r = {0};
    child_options_t o = {.stdout_fd = -1,
                         .stderr_fd = -1,
                         .progress_fd = 3,
                         .progress_file = pfd,
                         .own_group = 1,
                         .signal_pid_only = 1};
    child_t *c = NULL;
    CHECK(start(&loop, "echo '{\"step\": 1}' >&3; exit 0", &o, &r, &c) == 0);
    close(pfd);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(r.ends, 1);
    CHECK_INT_EQ(r.status, 0);
    CHECK_INT_EQ(r.lines, 0);
    slurp(path, buf, sizeof buf);
    CHECK_STR_EQ(buf, "{\"step\": 1}\n");
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

/* A grandchild that keeps the pipe open does not hold the end back beyond eof_wait_ms. */
static void test_grandchild_holds_pipe(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    child_options_t o = {.stdout_fd = -1, .stderr_fd = -1, .progress_fd = 3, .eof_wait_ms = 200};
    child_t *c = NULL;
    int64_t t0 = clock_mono_ms();
    CHECK(start(&loop, "echo one >&3; sleep 3 & exit 0", &o, &r, &c) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(r.ends, 1);
    CHECK_INT_EQ(r.status, 0);
    CHECK_MSG(r.end_ms - t0 < 2500, "end after %lld ms", (long long)(r.end_ms - t0));
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

/* child_stop(): SIGTERM, and SIGKILL after the grace period for a child that ignores it; with
 * own_group the signals reach the shell's children too. */
static void test_stop(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    child_options_t o = {.stdout_fd = -1,
                         .stderr_fd = -1,
                         .progress_fd = 3,
                         .own_group = 1,
                         .kill_grace_ms = 200};
    child_t *c = NULL;
    CHECK(start(&loop, "trap '' TERM; echo ready >&3; sleep 20 & wait; sleep 20", &o, &r, &c) == 0);
    while (r.lines == 0 && !r.ends)
        uv_run(&loop, UV_RUN_ONCE); /* the trap is set once "ready" arrives */
    int64_t t0 = clock_mono_ms();
    child_stop(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(r.ends, 1);
    CHECK_INT_EQ(r.sig, SIGKILL);
    CHECK_MSG(r.end_ms - t0 >= 150 && r.end_ms - t0 < 5000, "killed after %lld ms",
              (long long)(r.end_ms - t0));
    CHECK_INT_EQ(uv_loop_close(&loop), 0);

    /* a child that honours SIGTERM ends by it at once */
    uv_loop_init(&loop);
    rec_t r2 = {0};
    o.kill_grace_ms = 10000;
    CHECK(start(&loop, "echo ready >&3; exec sleep 20", &o, &r2, &c) == 0);
    while (r2.lines == 0 && !r2.ends)
        uv_run(&loop, UV_RUN_ONCE);
    t0 = clock_mono_ms();
    child_stop(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(r2.sig, SIGTERM);
    CHECK(r2.end_ms - t0 < 5000);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

/* A spawn that fails returns the error and never calls back; child_close() on a running child
 * kills it without a callback; both leave no handle open. */
static void test_failures_and_close(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    char *bad[] = {"/nonexistent/trainer", NULL};
    child_options_t o = {.argv = bad, .stdout_fd = -1, .stderr_fd = -1, .progress_fd = 3};
    child_t *c = NULL;
    CHECK_INT_EQ(child_start(&loop, &o, on_line, on_end, &r, &c), -ENOENT);
    CHECK(c == NULL);
    o.progress_fd = 2; /* stderr cannot be the pipe */
    CHECK_INT_EQ(child_start(&loop, &o, on_line, on_end, &r, &c), -EINVAL);
    o.progress_fd = 3;
    CHECK(start(&loop, "exec sleep 20", &o, &r, &c) == 0);
    int pid = child_pid(c);
    child_close(&c);
    CHECK(c == NULL);
    child_close(&c); /* a harmless no-op */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT_EQ(r.ends, 0);
    CHECK_INT_EQ(r.lines, 0);
    CHECK_MSG(kill(pid, 0) != 0, "child %d still alive", pid);
    CHECK_INT_EQ(uv_loop_close(&loop), 0);
}

static void test_fill(void)
{
    const char *keys[] = {"run", "seed", "result", "bb"};
    const char *vals[] = {"12", "777", "/w/r.json", "two"};
    char *s = child_fill("--run={run} {seed}{seed} {result} {unknown} {", keys, vals, 3);
    CHECK_STR_EQ(s, "--run=12 777777 /w/r.json {unknown} {");
    free(s);
    s = child_fill("x{run}y{bb}{c}{run", keys, vals, 4);
    CHECK_STR_EQ(s, "x12ytwo{c}{run");
    free(s);
    s = child_fill("", keys, vals, 3);
    CHECK_STR_EQ(s, "");
    free(s);
    s = child_fill("{run}", keys, vals, 0);
    CHECK_STR_EQ(s, "{run}");
    free(s);
}

static void test_mkdirs(void)
{
    char d[400], f[400];
    snprintf(d, sizeof d, "%s/a/b/c", tmp);
    CHECK_INT_EQ(child_mkdirs(d, 0755), 0);
    CHECK_INT_EQ(child_mkdirs(d, 0755), 0); /* exists: fine */
    struct stat st;
    CHECK(stat(d, &st) == 0 && S_ISDIR(st.st_mode));
    snprintf(f, sizeof f, "%s/a/file", tmp);
    FILE *fp = fopen(f, "w");
    if (fp)
        fclose(fp);
    CHECK_INT_EQ(child_mkdirs(f, 0755), -ENOTDIR);
    snprintf(d, sizeof d, "%s/a/file/x", tmp);
    CHECK_INT_EQ(child_mkdirs(d, 0755), -ENOTDIR);
    CHECK_INT_EQ(child_mkdirs("", 0755), -EINVAL);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s/test_child.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    TEST_RUN(test_lines_and_logs);
    TEST_RUN(test_long_line_dropped);
    TEST_RUN(test_grandchild_holds_pipe);
    TEST_RUN(test_progress_file);
    TEST_RUN(test_stop);
    TEST_RUN(test_failures_and_close);
    TEST_RUN(test_fill);
    TEST_RUN(test_mkdirs);
    return test_finish_tmpdir(tmp, "logs");
}
