/*
 * log: structured `key=value` lines on stderr for the daemons and tools, one line per event, so
 * journald and log collectors can filter them. Library code in common/ never calls this: it
 * returns errors and the program decides what to log (docs/style.md).
 *
 *     log_info("attempt_started", "attempt=%llu run=%llu worker=%s", ...);
 *
 * prints `ts=2026-11-28T14:00:00.123Z level=info prog=regmix-coordinator event=attempt_started
 * attempt=... run=...`. Values with spaces are the caller's job to quote (log_quote helps).
 */
#ifndef REGMIX_LOG_H
#define REGMIX_LOG_H

#include <stdarg.h>

typedef enum { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR } log_level_t;

/* Sets the program name printed as prog= and the lowest level printed (default info). */
void log_init(const char *prog, log_level_t min_level);

/* Parses "debug", "info", "warn", "error"; returns -EINVAL for anything else. */
int log_level_parse(const char *s, log_level_t *ret_level);

void log_emit(log_level_t level, const char *event, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define log_debug(event, ...) log_emit(LOG_LEVEL_DEBUG, event, __VA_ARGS__)
#define log_info(event, ...)  log_emit(LOG_LEVEL_INFO, event, __VA_ARGS__)
#define log_warn(event, ...)  log_emit(LOG_LEVEL_WARN, event, __VA_ARGS__)
#define log_error(event, ...) log_emit(LOG_LEVEL_ERROR, event, __VA_ARGS__)

/*
 * Writes `s` into `buf` as a log value: unchanged when it has no space, quote, backslash or
 * control character, else double-quoted with escapes; truncated to fit. Returns buf.
 */
const char *log_quote(const char *s, char *buf, unsigned size);

#endif
