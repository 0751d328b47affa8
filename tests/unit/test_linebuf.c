/*
 * test_linebuf: common/linebuf.c, the bounded line splitter under common/child's progress pipe and
 * the launcher's progress-file tail: lines split across feeds (down to one byte a feed), empty
 * lines, CR kept before LF, NUL bytes inside a line, a line of exactly the limit and one over
 * (reported with its length and the limit, the next line intact), a last line without '\n', reset.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linebuf.h"
#include "test.h"

#define GOT_MAX 16

/* What the callback saw, in order. */
typedef struct got {
    int n;
    char *line[GOT_MAX]; /* copies (NULL for an over-long line) */
    size_t len[GOT_MAX];
    char *error[GOT_MAX];
    int terminated[GOT_MAX]; /* the line was NUL-terminated after len */
} got_t;

static void on_line(const char *line, size_t len, const char *error, void *data)
{
    got_t *g = data;
    CHECK(g->n < GOT_MAX);
    if (g->n >= GOT_MAX)
        return;
    CHECK((line == NULL) == (error != NULL));
    g->len[g->n] = len;
    if (line) {
        g->line[g->n] = malloc(len + 1);
        memcpy(g->line[g->n], line, len + 1);
        g->terminated[g->n] = line[len] == '\0';
    }
    if (error)
        g->error[g->n] = strdup(error);
    g->n++;
}

static void got_clear(got_t *g)
{
    for (int i = 0; i < g->n; i++) {
        free(g->line[i]);
        free(g->error[i]);
    }
    memset(g, 0, sizeof *g);
}

static void feed_str(linebuf_t *lb, const char *s, got_t *g)
{
    linebuf_feed(lb, s, strlen(s), on_line, g);
}

static void test_new_bad(void)
{
    linebuf_t *lb = NULL;
    CHECK_INT_EQ(linebuf_new(0, &lb), -EINVAL);
    CHECK(lb == NULL);
    linebuf_destroy(&lb); /* NULL: no-op */
    linebuf_destroy(NULL);
}

static void test_lines_and_partials(void)
{
    linebuf_t *lb = NULL;
    CHECK_INT_EQ(linebuf_new(64, &lb), 0);
    got_t g = {0};
    feed_str(lb, "one\ntw", &g);
    CHECK_INT_EQ(g.n, 1);
    CHECK_STR_EQ(g.line[0], "one");
    CHECK_INT_EQ(linebuf_pending(lb), 2);
    feed_str(lb, "o", &g);
    CHECK_INT_EQ(g.n, 1);
    feed_str(lb, "\n\n\nthree\n", &g); /* two empty lines between */
    CHECK_INT_EQ(g.n, 5);
    CHECK_STR_EQ(g.line[1], "two");
    CHECK_INT_EQ(g.len[2], 0);
    CHECK_STR_EQ(g.line[2], "");
    CHECK_INT_EQ(g.len[3], 0);
    CHECK_STR_EQ(g.line[4], "three");
    for (int i = 0; i < g.n; i++)
        CHECK(g.terminated[i] && g.error[i] == NULL);
    CHECK_INT_EQ(linebuf_pending(lb), 0);
    linebuf_finish(lb, on_line, &g); /* nothing pending: nothing handed over */
    CHECK_INT_EQ(g.n, 5);
    got_clear(&g);

    /* one byte a feed gives the same lines */
    const char *text = "{\"event\":\"step\",\"step\":1}\n\nlast";
    for (const char *p = text; *p; p++)
        linebuf_feed(lb, p, 1, on_line, &g);
    CHECK_INT_EQ(g.n, 2);
    CHECK_STR_EQ(g.line[0], "{\"event\":\"step\",\"step\":1}");
    CHECK_INT_EQ(g.len[1], 0);
    CHECK_INT_EQ(linebuf_pending(lb), 4);
    linebuf_finish(lb, on_line, &g); /* the last line has no '\n' */
    CHECK_INT_EQ(g.n, 3);
    CHECK_STR_EQ(g.line[2], "last");
    CHECK_INT_EQ(linebuf_pending(lb), 0);
    got_clear(&g);
    linebuf_destroy(&lb);
    CHECK(lb == NULL);
}

static void test_crlf_and_nul(void)
{
    linebuf_t *lb = NULL;
    CHECK_INT_EQ(linebuf_new(16, &lb), 0);
    got_t g = {0};
    feed_str(lb, "dos\r\n\r\n", &g); /* the '\r' is the line's: only '\n' ends a line */
    CHECK_INT_EQ(g.n, 2);
    CHECK_INT_EQ(g.len[0], 4);
    CHECK_STR_EQ(g.line[0], "dos\r");
    CHECK_INT_EQ(g.len[1], 1);
    CHECK_STR_EQ(g.line[1], "\r");
    got_clear(&g);

    const char nul[] = {'a', '\0', 'b', '\n', '\0', '\n'};
    linebuf_feed(lb, nul, sizeof nul, on_line, &g);
    CHECK_INT_EQ(g.n, 2);
    CHECK_INT_EQ(g.len[0], 3);
    CHECK(g.line[0] && memcmp(g.line[0], "a\0b", 4) == 0);
    CHECK_INT_EQ(g.len[1], 1);
    CHECK(g.line[1] && g.line[1][0] == '\0' && g.terminated[1]);
    got_clear(&g);
    linebuf_destroy(&lb);
}

static void test_limit(void)
{
    enum { MAX = 10 };
    linebuf_t *lb = NULL;
    CHECK_INT_EQ(linebuf_new(MAX, &lb), 0);
    got_t g = {0};
    /* exactly the limit, in two feeds: kept */
    feed_str(lb, "01234", &g);
    feed_str(lb, "56789\n", &g);
    CHECK_INT_EQ(g.n, 1);
    CHECK_STR_EQ(g.line[0], "0123456789");
    CHECK(g.error[0] == NULL);
    /* one over, the overflow in a later feed: dropped whole, reported with length and limit */
    feed_str(lb, "0123456789", &g);
    CHECK_INT_EQ(linebuf_pending(lb), MAX);
    feed_str(lb, "X", &g);
    CHECK_INT_EQ(linebuf_pending(lb), 0); /* nothing kept once over */
    CHECK_INT_EQ(g.n, 1);
    feed_str(lb, "\nnext\n", &g);
    CHECK_INT_EQ(g.n, 3);
    CHECK(g.line[1] == NULL);
    CHECK_INT_EQ(g.len[1], MAX + 1);
    CHECK_STR_EQ(g.error[1], "line of 11 bytes is longer than the limit of 10");
    CHECK_STR_EQ(g.line[2], "next"); /* the line after is whole */
    got_clear(&g);

    /* a long line in many feeds: its whole length is counted, the buffer never grows */
    char big[1000];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 50; i++)
        linebuf_feed(lb, big, sizeof big, on_line, &g);
    CHECK_INT_EQ(g.n, 0);
    CHECK_INT_EQ(linebuf_pending(lb), 0);
    feed_str(lb, "\n", &g);
    CHECK_INT_EQ(g.n, 1);
    CHECK_INT_EQ(g.len[0], 50000);
    CHECK_STR_EQ(g.error[0], "line of 50000 bytes is longer than the limit of 10");
    got_clear(&g);

    /* an over-long last line without '\n' is reported at the end, not handed over */
    feed_str(lb, "abcdefghijkl", &g);
    linebuf_finish(lb, on_line, &g);
    CHECK_INT_EQ(g.n, 1);
    CHECK(g.line[0] == NULL && g.error[0] != NULL);
    CHECK_INT_EQ(g.len[0], 12);
    feed_str(lb, "ok\n", &g); /* and the splitter starts afresh */
    CHECK_INT_EQ(g.n, 2);
    CHECK_STR_EQ(g.line[1], "ok");
    got_clear(&g);
    linebuf_destroy(&lb);
}

static void test_reset(void)
{
    linebuf_t *lb = NULL;
    CHECK_INT_EQ(linebuf_new(8, &lb), 0);
    got_t g = {0};
    feed_str(lb, "half", &g);
    linebuf_reset(lb); /* e.g. the tailed file was replaced */
    feed_str(lb, "new\n", &g);
    CHECK_INT_EQ(g.n, 1);
    CHECK_STR_EQ(g.line[0], "new");
    feed_str(lb, "123456789", &g); /* over the limit, then reset: no report */
    linebuf_reset(lb);
    feed_str(lb, "a\n", &g);
    CHECK_INT_EQ(g.n, 2);
    CHECK_STR_EQ(g.line[1], "a");
    linebuf_feed(lb, "b\n", 2, NULL, NULL); /* no callback: lines are consumed */
    CHECK_INT_EQ(linebuf_pending(lb), 0);
    got_clear(&g);
    linebuf_destroy(&lb);
}

int main(void)
{
    TEST_RUN(test_new_bad);
    TEST_RUN(test_lines_and_partials);
    TEST_RUN(test_crlf_and_nul);
    TEST_RUN(test_limit);
    TEST_RUN(test_reset);
    return test_finish();
}
