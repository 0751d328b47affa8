/* Unit tests of common/csv: the RFC 4180 cases, every malformed input with its file:line message,
 * numeric parsing, joins, the writer's round trip, and the paper's released files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv.h"
#include "test.h"

static char tmpdir[256];
static int tmpcount;

/* Writes `len` bytes to a new temporary file and returns its path (static buffer per call site
 * is not enough: callers copy it). */
static void write_tmp(const char *text, size_t len, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/t%03d_XXXXXX", tmpdir, tmpcount++);
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, text, len) == (ssize_t)len);
    close(fd);
}

/* Parses `text` from a temp file; returns rc, fills *ret on success and err on failure. */
static int
read_text(const char *text, csv_t **ret, char *err, size_t errlen, char *path, size_t pathlen)
{
    write_tmp(text, strlen(text), path, pathlen);
    err[0] = '\0';
    return csv_read_file(path, ret, err, errlen);
}

/* Checks that `text` fails with -EINVAL and that the message starts with "<path>:<line>:" and
 * contains `what`. */
static void check_bad(const char *text, int line, const char *what)
{
    char path[512], err[512], want[600];
    csv_t *c = NULL;
    int rc = read_text(text, &c, err, sizeof err, path, sizeof path);
    CHECK_INT_EQ(rc, -EINVAL);
    CHECK(c == NULL);
    snprintf(want, sizeof want, "%s:%d: ", path, line);
    CHECK_MSG(strncmp(err, want, strlen(want)) == 0, "want prefix '%s', got '%s'", want, err);
    CHECK_MSG(strstr(err, what) != NULL, "want '%s' in '%s'", what, err);
    csv_destroy(&c);
}

static void test_basic_and_quotes(void)
{
    const char *text = "a,b,c\n"
                       "1,\"x,y\",3\n"
                       "\"multi\nline\",\"say \"\"hi\"\"\",\n"
                       "4,5,6\n";
    char path[512], err[256];
    csv_t *c = NULL;
    CHECK_INT_EQ(read_text(text, &c, err, sizeof err, path, sizeof path), 0);
    if (!c)
        return;
    CHECK_STR_EQ(csv_name(c), path);
    CHECK_INT_EQ(csv_ncols(c), 3);
    CHECK_INT_EQ(csv_nrows(c), 3);
    CHECK_STR_EQ(csv_col_name(c, 2), "c");
    CHECK(csv_col_name(c, 3) == NULL);
    CHECK_INT_EQ(csv_col(c, "b"), 1);
    CHECK_INT_EQ(csv_col(c, "zz"), -ENOENT);
    CHECK_STR_EQ(csv_get(c, 0, 1), "x,y");
    CHECK_STR_EQ(csv_get(c, 1, 0), "multi\nline");
    CHECK_STR_EQ(csv_get(c, 1, 1), "say \"hi\"");
    CHECK_STR_EQ(csv_get(c, 1, 2), "");
    CHECK_STR_EQ(csv_get(c, 2, 2), "6");
    CHECK(csv_get(c, 3, 0) == NULL);
    CHECK_INT_EQ(csv_line(c, 0), 2);
    CHECK_INT_EQ(csv_line(c, 1), 3);
    CHECK_INT_EQ(csv_line(c, 2), 5); /* after the two-line quoted field */
    csv_destroy(&c);
    CHECK(c == NULL);
    csv_destroy(&c); /* no-op */
    csv_destroy(NULL);
}

static void test_crlf_bom_blank_lines(void)
{
    const char *text = "\xEF\xBB\xBFid,v\r\n\r\n1,2.5\r\n\n2,\"a\r\nb\"\r\n3,4";
    char path[512], err[256];
    csv_t *c = NULL;
    CHECK_INT_EQ(read_text(text, &c, err, sizeof err, path, sizeof path), 0);
    if (!c)
        return;
    CHECK_STR_EQ(csv_col_name(c, 0), "id");
    CHECK_INT_EQ(csv_nrows(c), 3);
    CHECK_STR_EQ(csv_get(c, 0, 1), "2.5");
    CHECK_STR_EQ(csv_get(c, 1, 1), "a\r\nb");
    CHECK_STR_EQ(csv_get(c, 2, 1), "4");
    CHECK_INT_EQ(csv_line(c, 0), 3);
    CHECK_INT_EQ(csv_line(c, 1), 5);
    CHECK_INT_EQ(csv_line(c, 2), 7);
    csv_destroy(&c);
}

static void test_trailing_header_comma(void)
{
    char path[512], err[256];
    csv_t *c = NULL;
    CHECK_INT_EQ(read_text("name,x,\nh,1\nd,2,\n", &c, err, sizeof err, path, sizeof path), 0);
    if (c) {
        CHECK_INT_EQ(csv_ncols(c), 2);
        CHECK_INT_EQ(csv_nrows(c), 2);
        CHECK_STR_EQ(csv_get(c, 1, 1), "2");
        csv_destroy(&c);
    }
    check_bad("name,x,\nh,1,5\n", 2, "row has 3 fields, the header has 2");
}

static void test_bad_inputs(void)
{
    check_bad("a,b\n1,2\n3\n", 3, "row has 1 fields, the header has 2");
    check_bad("a,b\n1,2,3\n", 2, "row has 3 fields");
    check_bad("a,b\n1,2\n\"open,2\n4,5\n", 3, "unterminated quoted field");
    check_bad("a,b\n\"x\"y,2\n", 2, "text after the closing quote");
    check_bad("a,b\n1,\"multi\nline\"z\n", 3, "text after the closing quote");
    check_bad("a,b\n1,x\"y\n", 2, "quote inside unquoted field");
    check_bad("a,b\n1,2\r3,4\n", 2, "carriage return without line feed");
    check_bad("a,b\n1,2\n3,4\r", 3, "carriage return without line feed");
    check_bad("a,a\n1,2\n", 1, "duplicate column name 'a'");
    check_bad("a,,b\n1,2,3\n", 1, "column 2 has an empty name");
    check_bad("", 1, "no header row");
    check_bad("\n\r\n\n", 1, "no header row");

    /* NUL bytes cannot go through strlen: write them directly. */
    char path[512], err[512], want[600];
    csv_t *c = NULL;
    static const char nul[] = "a,b\n1,2\n3,x\0y\n";
    write_tmp(nul, sizeof nul - 1, path, sizeof path);
    CHECK_INT_EQ(csv_read_file(path, &c, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:3: NUL byte in field 2", path);
    CHECK_STR_EQ(err, want);

    CHECK_INT_EQ(csv_read_file("/nonexistent/x.csv", &c, err, sizeof err), -ENOENT);
    CHECK(strstr(err, "/nonexistent/x.csv") != NULL);
    CHECK_INT_EQ(csv_read_file(tmpdir, &c, err, sizeof err), -EISDIR);
    CHECK(c == NULL);
    /* A NULL error buffer is allowed. */
    CHECK_INT_EQ(csv_read_string("s", "a\n\"", 3, &c, NULL, 0), -EINVAL);
    CHECK_INT_EQ(csv_read_string("s", "a", (size_t)CSV_MAX_BYTES + 1, &c, err, sizeof err), -EFBIG);
}

static void test_numbers(void)
{
    const char *text = "k,x\n"
                       "1,2.5\n"
                       "2, -1e-3 \n"
                       "3,abc\n"
                       "4,\n"
                       "5,nan\n"
                       "6,inf\n"
                       "7,-Infinity\n"
                       "8,1e999\n"
                       "9,1.5x\n"
                       "10,1e-320\n"
                       "99999999999999999999,0x10\n";
    char path[512], err[512], want[600];
    csv_t *c = NULL;
    CHECK_INT_EQ(read_text(text, &c, err, sizeof err, path, sizeof path), 0);
    if (!c)
        return;
    double v = -7;
    CHECK_INT_EQ(csv_get_double(c, 0, 1, &v, err, sizeof err), 0);
    CHECK(v == 2.5);
    CHECK_INT_EQ(csv_get_double(c, 1, 1, &v, err, sizeof err), 0);
    CHECK(v == -1e-3);
    CHECK_INT_EQ(csv_get_double(c, 9, 1, &v, err, sizeof err), 0); /* subnormal is finite */
    CHECK(v > 0 && v < 1e-300);
    CHECK_INT_EQ(csv_get_double(c, 10, 1, &v, err, sizeof err), 0);
    CHECK(v == 16.0);
    for (int row = 2; row <= 8; row++) {
        v = -7;
        CHECK_INT_EQ(csv_get_double(c, row, 1, &v, err, sizeof err), -EINVAL);
        CHECK(v == -7);
        snprintf(want, sizeof want, "%s:%d: column 'x': ", path, row + 2);
        CHECK_MSG(strncmp(err, want, strlen(want)) == 0, "want '%s' got '%s'", want, err);
    }
    CHECK_INT_EQ(csv_get_double(c, 2, 1, &v, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "'abc' is not a finite number") != NULL);
    CHECK_INT_EQ(csv_get_double(c, 3, 1, &v, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "empty field") != NULL);
    CHECK_INT_EQ(csv_get_double(c, 99, 1, &v, err, sizeof err), -ERANGE);

    long l = 0;
    CHECK_INT_EQ(csv_get_long(c, 9, 0, &l, err, sizeof err), 0);
    CHECK_INT_EQ(l, 10);
    CHECK_INT_EQ(csv_get_long(c, 0, 1, &l, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:2: column 'x': '2.5' is not an integer", path);
    CHECK_STR_EQ(err, want);
    CHECK_INT_EQ(csv_get_long(c, 10, 0, &l, err, sizeof err), -EINVAL); /* overflow */
    csv_destroy(&c);
}

static void test_join(void)
{
    char pa[512], pb[512], err[512], want[1200];
    csv_t *a = NULL, *b = NULL;
    CHECK_INT_EQ(read_text("index,w\n0,0.1\n1,0.2\n2,0.3\n", &a, err, sizeof err, pa, sizeof pa),
                 0);
    CHECK_INT_EQ(read_text("loss,index\n5.0,2\n4.0,0\n3.0,1\n", &b, err, sizeof err, pb, sizeof pb),
                 0);
    if (!a || !b)
        return;
    int *map = NULL;
    CHECK_INT_EQ(csv_join(a, 0, b, 1, 0, &map, err, sizeof err), 0);
    if (map) {
        CHECK_INT_EQ(map[0], 1);
        CHECK_INT_EQ(map[1], 2);
        CHECK_INT_EQ(map[2], 0);
        free(map);
        map = NULL;
    }
    CHECK_INT_EQ(csv_join(a, 0, b, 5, 0, &map, err, sizeof err), -ERANGE);
    csv_destroy(&b);

    /* A key of a missing from b. */
    CHECK_INT_EQ(read_text("loss,index\n5.0,2\n4.0,0\n", &b, err, sizeof err, pb, sizeof pb), 0);
    CHECK_INT_EQ(csv_join(a, 0, b, 1, 0, &map, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:3: key '1' (column 'index') has no match in %s", pa, pb);
    CHECK_STR_EQ(err, want);
    CHECK(map == NULL);
    csv_destroy(&b);

    /* A duplicate key in b, reported at its second occurrence. */
    CHECK_INT_EQ(read_text("loss,index\n5.0,2\n4.0,0\n3.0,1\n2.0,0\n", &b, err, sizeof err, pb,
                           sizeof pb),
                 0);
    CHECK_INT_EQ(csv_join(a, 0, b, 1, 0, &map, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:5: duplicate key '0' in column 'index' (first on line 3)", pb);
    CHECK_STR_EQ(err, want);
    /* ... and the same table as `a` is a duplicate in a. */
    CHECK_INT_EQ(csv_join(b, 1, a, 0, 0, &map, err, sizeof err), -EINVAL);
    CHECK_STR_EQ(err, want);
    csv_destroy(&b);

    /* Extra keys in b: an error unless allowed. */
    CHECK_INT_EQ(read_text("index,loss\n0,1\n1,2\n7,9\n2,3\n", &b, err, sizeof err, pb, sizeof pb),
                 0);
    CHECK_INT_EQ(csv_join(a, 0, b, 0, 0, &map, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:4: key '7' (column 'index') has no match in %s", pb, pa);
    CHECK_STR_EQ(err, want);
    CHECK_INT_EQ(csv_join(a, 0, b, 0, CSV_JOIN_ALLOW_EXTRA_B, &map, err, sizeof err), 0);
    if (map) {
        CHECK_INT_EQ(map[0], 0);
        CHECK_INT_EQ(map[2], 3);
        free(map);
    }
    csv_destroy(&a);
    csv_destroy(&b);
}

static void test_writer_round_trip(void)
{
    const char *fields[] = {"plain", "with,comma", "say \"hi\"", "multi\nline",
                            " lead", "",           NULL,         "cr\r\nlf"};
    const int n = 8;
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/written.csv", tmpdir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    const char *header[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    CHECK_INT_EQ(csv_write_row(f, header, n), 0);
    CHECK_INT_EQ(csv_write_row(f, fields, n), 0);
    CHECK_INT_EQ(csv_write_field(f, "x"), 0);
    fputs(",,,,,,,\n", f);
    fclose(f);
    csv_t *c = NULL;
    CHECK_INT_EQ(csv_read_file(path, &c, err, sizeof err), 0);
    if (!c)
        return;
    CHECK_INT_EQ(csv_nrows(c), 2);
    for (int j = 0; j < n; j++)
        CHECK_STR_EQ(csv_get(c, 0, j), fields[j] ? fields[j] : "");
    CHECK_STR_EQ(csv_get(c, 1, 0), "x");
    CHECK_INT_EQ(csv_line(c, 1), 5);
    csv_destroy(&c);

    /* Only fields that need it are quoted. */
    char *buf = NULL;
    size_t len = 0;
    f = open_memstream(&buf, &len);
    const char *row[] = {"1", "a b", "c,d"};
    CHECK_INT_EQ(csv_write_row(f, row, 3), 0);
    fclose(f);
    CHECK_STR_EQ(buf, "1,a b,\"c,d\"\n");
    free(buf);
}

static void test_paper_files(void)
{
    char err[512];
    csv_t *loss = NULL, *mix = NULL;
    /* CRLF line ends and no final line end. */
    int rc = csv_read_file(test_paper_path("test_pile_loss_1B.csv"), &loss, err, sizeof err);
    CHECK_MSG(rc == 0, "%s (the paper data is data/regmix-paper)", err);
    if (rc != 0)
        return;
    CHECK_INT_EQ(csv_read_file(test_paper_path("test_mixture_1B.csv"), &mix, err, sizeof err), 0);
    if (!loss || !mix) {
        csv_destroy(&loss);
        csv_destroy(&mix);
        return;
    }
    CHECK_INT_EQ(csv_nrows(loss), 64);
    CHECK_INT_EQ(csv_ncols(loss), 14);
    CHECK_INT_EQ(csv_line(loss, 63), 65);
    CHECK_INT_EQ(csv_nrows(mix), 64);
    CHECK_INT_EQ(csv_ncols(mix), 18);
    int lc = csv_col(loss, "metric/the_pile_pile_cc_val_loss");
    CHECK(lc > 0);
    int *map = NULL;
    CHECK_INT_EQ(csv_join(mix, csv_col(mix, "index"), loss, csv_col(loss, "index"), 0, &map, err,
                          sizeof err),
                 0);
    if (map) {
        for (int i = 0; i < 64; i++) {
            double v = 0;
            CHECK_INT_EQ(csv_get_double(loss, map[i], lc, &v, err, sizeof err), 0);
            CHECK(v > 1.0 && v < 10.0);
        }
        free(map);
    }
    /* Mixture rows sum to 1 within the 3-decimal rounding the README states. */
    for (int i = 0; i < 64; i++) {
        double s = 0, v = 0;
        for (int j = 1; j < 18; j++) {
            CHECK_INT_EQ(csv_get_double(mix, i, j, &v, err, sizeof err), 0);
            s += v;
        }
        CHECK_NEAR(s, 1.0, 0.005);
    }
    csv_destroy(&loss);
    csv_destroy(&mix);

    csv_t *cfg = NULL;
    CHECK_INT_EQ(csv_read_file(test_paper_path("config_1b_baseline_mixtures.csv"), &cfg, err,
                               sizeof err),
                 0);
    if (cfg) {
        CHECK_INT_EQ(csv_nrows(cfg), 4);
        CHECK_STR_EQ(csv_get(cfg, 3, 0), "regmix");
        csv_destroy(&cfg);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/regmix_test_csv_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    TEST_RUN(test_basic_and_quotes);
    TEST_RUN(test_crlf_bom_blank_lines);
    TEST_RUN(test_trailing_header_comma);
    TEST_RUN(test_bad_inputs);
    TEST_RUN(test_numbers);
    TEST_RUN(test_join);
    TEST_RUN(test_writer_round_trip);
    TEST_RUN(test_paper_files);
    return test_finish_tmpdir(tmpdir, "test files");
}
