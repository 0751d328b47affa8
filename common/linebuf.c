/*
 * linebuf.c: a bounded line splitter (see linebuf.h).
 */
#include "linebuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct linebuf {
    char *s;     /* (max + 1): the partial line and its terminator */
    size_t len;  /* bytes held in s */
    size_t max;  /* longest line kept */
    size_t over; /* > 0: inside an over-long line, this many bytes of it seen so far */
    char why[96];
};

int linebuf_new(size_t max, linebuf_t **ret)
{
    if (max == 0 || max == (size_t)-1 || !ret)
        return -EINVAL;
    linebuf_t *lb = calloc(1, sizeof *lb);
    if (!lb || !(lb->s = malloc(max + 1))) {
        free(lb);
        return -ENOMEM;
    }
    lb->max = max;
    *ret = lb;
    return 0;
}

void linebuf_destroy(linebuf_t **self_p)
{
    linebuf_t *lb = self_p ? *self_p : NULL;
    if (!lb)
        return;
    free(lb->s);
    free(lb);
    *self_p = NULL;
}

/* The line held (or the over-long one) is complete: hand it over and start the next. */
static void linebuf__emit(linebuf_t *lb, linebuf_cb cb, void *data)
{
    if (lb->over > 0) {
        snprintf(lb->why, sizeof lb->why, "line of %zu bytes is longer than the limit of %zu",
                 lb->over, lb->max);
        if (cb)
            cb(NULL, lb->over, lb->why, data);
    } else {
        lb->s[lb->len] = '\0';
        if (cb)
            cb(lb->s, lb->len, NULL, data);
    }
    lb->len = 0;
    lb->over = 0;
}

void linebuf_feed(linebuf_t *lb, const char *p, size_t n, linebuf_cb cb, void *data)
{
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t k = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (lb->over > 0) {
            lb->over += k;
        } else if (lb->len + k > lb->max) {
            lb->over = lb->len + k; /* from here on only counted */
            lb->len = 0;
        } else {
            memcpy(lb->s + lb->len, p, k);
            lb->len += k;
        }
        if (!nl)
            break;
        linebuf__emit(lb, cb, data);
        p = nl + 1;
    }
}

void linebuf_finish(linebuf_t *lb, linebuf_cb cb, void *data)
{
    if (lb->len > 0 || lb->over > 0)
        linebuf__emit(lb, cb, data);
}

void linebuf_reset(linebuf_t *lb)
{
    lb->len = 0;
    lb->over = 0;
}

size_t linebuf_pending(const linebuf_t *lb)
{
    return lb->len;
}
