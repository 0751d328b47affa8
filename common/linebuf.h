/*
 * linebuf: a bounded line splitter for a byte stream that arrives in pieces (a child's progress
 * pipe in common/child, a progress file tailed by the coordinator's launcher). Bytes are fed as
 * they come; each complete line is handed to a callback without its '\n' (a '\r' before it is
 * kept: the callers parse JSON, where it is white space), NUL-terminated after its length, with
 * any NUL bytes inside it kept (the length is the truth). A line may be split across any number
 * of feeds.
 *
 * The buffer is allocated once at the limit and never grows: a line longer than the limit is
 * dropped whole, none of it handed over, and reported instead as an error that names its length
 * and the limit. A line of exactly the limit is kept. Nothing here logs.
 */
#ifndef REGMIX_LINEBUF_H
#define REGMIX_LINEBUF_H

#include <stddef.h>

typedef struct linebuf linebuf_t;

/* One line: `line` (len bytes, NUL-terminated, borrowed for the call) and error NULL; or a line
 * longer than the limit: line NULL, len its whole length, and error a sentence naming the length
 * and the limit (borrowed for the call). */
typedef void (*linebuf_cb)(const char *line, size_t len, const char *error, void *data);

/* A splitter keeping lines of at most max bytes (max >= 1). Returns 0, -EINVAL or -ENOMEM. */
int linebuf_new(size_t max, linebuf_t **ret);

/* Frees it; NULL and *self_p == NULL are no-ops. Sets *self_p to NULL. */
void linebuf_destroy(linebuf_t **self_p);

/* Feeds n bytes: calls cb once for each line they complete, in order; a partial line is kept
 * (up to the limit) for the next feed. */
void linebuf_feed(linebuf_t *lb, const char *p, size_t n, linebuf_cb cb, void *data);

/* The end of the stream: hands over a last line that has no '\n' (or reports it over-long), then
 * starts empty. Nothing when no bytes are pending. */
void linebuf_finish(linebuf_t *lb, linebuf_cb cb, void *data);

/* Forgets any partial line (the stream starts again, e.g. a tailed file was replaced). */
void linebuf_reset(linebuf_t *lb);

/* Bytes of the partial line held (0 while dropping an over-long one). */
size_t linebuf_pending(const linebuf_t *lb);

#endif
