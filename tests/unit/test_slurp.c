/*
 * test_slurp: common/slurp.c on real files in a temporary folder: sizes at and around the limit,
 * an empty file, a directory, a missing file, and a FIFO (read until EOF, not st_size); the
 * wording of each failure (slurp_error).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slurp.h"
#include "test.h"

static char dir[] = "/tmp/regmix-slurp-XXXXXX";

static const char *write_file(const char *name, size_t size)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    for (size_t i = 0; f && i < size; i++)
        fputc('a' + (int)(i % 26), f);
    if (f)
        fclose(f);
    return path;
}

static void test_sizes(void)
{
    char *d = NULL;
    size_t n = 99;
    CHECK_INT_EQ(slurp_file(write_file("empty", 0), 10, &d, &n), 0);
    CHECK_INT_EQ(n, 0);
    CHECK(d && d[0] == '\0');
    free(d);
    d = NULL;
    CHECK_INT_EQ(slurp_file(write_file("ten", 10), 10, &d, &n), 0);
    CHECK_INT_EQ(n, 10);
    CHECK_STR_EQ(d, "abcdefghij");
    free(d);
    d = NULL;
    n = 7;
    CHECK_INT_EQ(slurp_file(write_file("eleven", 11), 10, &d, &n), -EFBIG);
    CHECK(d == NULL && n == 7); /* outputs untouched on failure */
    /* Larger than the first guess (st_size) and the 4 KiB start: the buffer grows. */
    CHECK_INT_EQ(slurp_file(write_file("big", 100000), 1 << 20, &d, &n), 0);
    CHECK_INT_EQ(n, 100000);
    CHECK(d && d[99999] == 'a' + 99999 % 26 && d[100000] == '\0');
    free(d);
    d = NULL;
    CHECK_INT_EQ(slurp_file(dir, 10, &d, &n), -EISDIR);
    CHECK_INT_EQ(slurp_file("/nonexistent/regmix", 10, &d, &n), -ENOENT);
    CHECK(d == NULL);
}

/* A FIFO has st_size 0: the reader must go on to EOF, and still stop at the limit. */
static void test_fifo(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/fifo", dir);
    CHECK_INT_EQ(mkfifo(path, 0600), 0);
    for (int over = 0; over <= 1; over++) {
        size_t size = over ? 9000 : 5000;
        pid_t pid = fork();
        if (pid == 0) {
            FILE *f = fopen(path, "w");
            for (size_t i = 0; f && i < size; i++)
                fputc('x', f);
            _exit(f && fclose(f) == 0 ? 0 : 1);
        }
        char *d = NULL;
        size_t n = 0;
        int rc = slurp_file(path, 8192, &d, &n);
        int st = 0;
        /* Over the limit the reader stops early: the writer may get SIGPIPE. */
        waitpid(pid, &st, 0);
        if (over) {
            CHECK_INT_EQ(rc, -EFBIG);
        } else {
            CHECK_INT_EQ(rc, 0);
            CHECK_INT_EQ(n, 5000);
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        free(d);
    }
}

/* The one wording of a read failure, as spec_parse_file() and csv_read_file() report it. */
static void test_error(void)
{
    char err[256];
    char *d = NULL;
    size_t n = 0;
    const char *path = write_file("eleven", 11);
    int rc = slurp_file(path, 10, &d, &n);
    CHECK_INT_EQ(rc, -EFBIG);
    slurp_error(err, sizeof err, path, 10, rc);
    char want[600];
    snprintf(want, sizeof want, "%s: larger than the limit of 10 bytes", path);
    CHECK_STR_EQ(err, want);
    slurp_error(err, sizeof err, dir, 10, slurp_file(dir, 10, &d, &n));
    snprintf(want, sizeof want, "%s: is a directory", dir);
    CHECK_STR_EQ(err, want);
    slurp_error(err, sizeof err, "/nonexistent/regmix", 10,
                slurp_file("/nonexistent/regmix", 10, &d, &n));
    CHECK_STR_EQ(err, "/nonexistent/regmix: No such file or directory");
    slurp_error(NULL, 0, "/x", 10, -ENOENT); /* no buffer: a no-op */
    CHECK(d == NULL);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    TEST_RUN(test_sizes);
    TEST_RUN(test_fifo);
    TEST_RUN(test_error);
    return test_finish_tmpdir(dir, "test files");
}
