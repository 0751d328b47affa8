#include "attempt.h"

#include <errno.h>
#include <stdlib.h>

struct attempt_table {
    attempt_t **buckets;
    size_t nbuckets; /* a power of two */
    int count;
};

static size_t attempt__slot(const attempt_table_t *t, int64_t id)
{
    uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 32) & (t->nbuckets - 1);
}

int attempt_table_new(attempt_table_t **ret)
{
    attempt_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->nbuckets = 256;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    if (!t->buckets) {
        free(t);
        return -ENOMEM;
    }
    *ret = t;
    return 0;
}

void attempt_table_destroy(attempt_table_t **t_p)
{
    if (!t_p || !*t_p)
        return;
    attempt_table_t *t = *t_p;
    *t_p = NULL;
    for (size_t i = 0; i < t->nbuckets; i++) {
        attempt_t *a = t->buckets[i];
        while (a) {
            attempt_t *next = a->hnext;
            free(a);
            a = next;
        }
    }
    free(t->buckets);
    free(t);
}

attempt_t *attempt_table_get(const attempt_table_t *t, int64_t id)
{
    for (attempt_t *a = t->buckets[attempt__slot(t, id)]; a; a = a->hnext)
        if (a->id == id)
            return a;
    return NULL;
}

/* Doubles the bucket array when the load passes 1; on allocation failure keeps the old one. */
static void attempt__grow(attempt_table_t *t)
{
    size_t n = t->nbuckets * 2;
    attempt_t **b = calloc(n, sizeof *b);
    if (!b)
        return;
    attempt_t **old = t->buckets;
    size_t oldn = t->nbuckets;
    t->buckets = b;
    t->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        attempt_t *a = old[i];
        while (a) {
            attempt_t *next = a->hnext;
            size_t s = attempt__slot(t, a->id);
            a->hnext = b[s];
            b[s] = a;
            a = next;
        }
    }
    free(old);
}

int attempt_table_put(attempt_table_t *t, attempt_t *a)
{
    if ((size_t)t->count >= t->nbuckets)
        attempt__grow(t);
    size_t s = attempt__slot(t, a->id);
    a->hnext = t->buckets[s];
    t->buckets[s] = a;
    t->count++;
    return 0;
}

void attempt_table_remove(attempt_table_t *t, attempt_t *a)
{
    attempt_t **pp = &t->buckets[attempt__slot(t, a->id)];
    while (*pp) {
        if (*pp == a) {
            *pp = a->hnext;
            a->hnext = NULL;
            t->count--;
            return;
        }
        pp = &(*pp)->hnext;
    }
}

int attempt_table_count(const attempt_table_t *t)
{
    return t->count;
}

int attempt_table_collect(const attempt_table_t *t, attempt_t **out, int max)
{
    int n = 0;
    for (size_t i = 0; i < t->nbuckets && n < max; i++)
        for (attempt_t *a = t->buckets[i]; a && n < max; a = a->hnext)
            out[n++] = a;
    return n;
}

void attempt_list_push(attempt_t **head, attempt_t *a)
{
    a->lprev = NULL;
    a->lnext = *head;
    if (*head)
        (*head)->lprev = a;
    *head = a;
}

void attempt_list_remove(attempt_t **head, attempt_t *a)
{
    if (a->lprev)
        a->lprev->lnext = a->lnext;
    else if (*head == a)
        *head = a->lnext;
    if (a->lnext)
        a->lnext->lprev = a->lprev;
    a->lprev = a->lnext = NULL;
}
