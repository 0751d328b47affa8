/*
 * strv: a growing NULL-terminated vector of owned strings, the argv of a child process. Used by
 * every place that builds a command line (the trainer's argv in trainargs, the launcher's mpirun,
 * sbatch and kubectl lines), so that each gets the same out-of-memory handling.
 *
 * Pushes after an allocation failure are no-ops; strv_take() then frees everything and returns
 * NULL, so a builder can push unconditionally and check once at the end. A zero-initialised
 * strv_t is empty and valid.
 */
#ifndef REGMIX_STRV_H
#define REGMIX_STRV_H

#include <stddef.h>

typedef struct strv {
    char **v; /* NULL-terminated once anything was pushed */
    size_t n, cap;
    int oom; /* an allocation failed (or a formatted string was too long) */
} strv_t;

/* Appends a copy of `x`. */
void strv_push(strv_t *s, const char *x);

/* Appends a formatted string (at most 8191 bytes; longer sets oom). */
__attribute__((format(printf, 2, 3))) void strv_pushf(strv_t *s, const char *fmt, ...);

/* Hands the vector over: the NULL-terminated argv (free with strv_free()), or NULL when an
 * allocation failed or nothing was pushed, with everything freed. `s` is empty afterwards. */
char **strv_take(strv_t *s);

/* Frees a NULL-terminated vector of strings and the strings; NULL is a harmless no-op. */
void strv_free(char **argv);

#endif
