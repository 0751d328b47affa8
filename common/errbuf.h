/*
 * errbuf: the one way common/ reports a failure's detail. Library functions return a negative
 * errno and, where the user needs to know what and where (file, line, key), also write one line
 * into a caller-owned buffer `err` of `errlen` bytes. A NULL buffer or a zero length means the
 * caller does not want the text: a harmless no-op.
 */
#ifndef REGMIX_ERRBUF_H
#define REGMIX_ERRBUF_H

#include <stddef.h>

/* Formats one message into err (truncated to errlen - 1 characters, always terminated). */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
