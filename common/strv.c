/* strv: a growing NULL-terminated vector of owned strings (strv.h). */
#include "strv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strv_push(strv_t *s, const char *x)
{
    if (s->oom)
        return;
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 32;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            s->oom = 1;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(x ? x : ""))) {
        s->v[s->n] = NULL;
        s->oom = 1;
        return;
    }
    s->v[++s->n] = NULL;
}

void strv_pushf(strv_t *s, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= sizeof buf) {
        s->oom = 1;
        return;
    }
    strv_push(s, buf);
}

char **strv_take(strv_t *s)
{
    char **v = s->v;
    int bad = s->oom || !v;
    *s = (strv_t){0};
    if (bad) {
        strv_free(v);
        return NULL;
    }
    return v;
}

void strv_free(char **argv)
{
    for (char **p = argv; p && *p; p++)
        free(*p);
    free(argv);
}
