#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *log__prog = "regmix";
static log_level_t log__min = LOG_LEVEL_INFO;

void log_init(const char *prog, log_level_t min_level)
{
    log__prog = prog;
    log__min = min_level;
}

int log_level_parse(const char *s, log_level_t *ret_level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *ret_level = (log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_emit(log_level_t level, const char *event, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < log__min)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[4096];
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s prog=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), names[level], log__prog, event);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line - 2 && fmt && *fmt) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m < (int)(sizeof line - (size_t)n - 1) ? m : (int)(sizeof line - (size_t)n - 2);
    }
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    /* One write per line so lines from several processes sharing stderr do not interleave. */
    fwrite(line, 1, (size_t)n, stderr);
    fflush(stderr);
}

const char *log_quote(const char *s, char *buf, unsigned size)
{
    if (size == 0)
        return buf;
    int plain = *s != '\0';
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c == 0x7f)
            plain = 0;
    }
    unsigned o = 0;
    if (plain) {
        while (*s && o + 1 < size)
            buf[o++] = *s++;
        buf[o] = '\0';
        return buf;
    }
    if (o + 1 < size)
        buf[o++] = '"';
    for (; *s && o + 3 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < ' ' || c == 0x7f) {
            buf[o++] = '\\';
            buf[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : '?';
        } else {
            buf[o++] = (char)c;
        }
    }
    if (o + 1 < size)
        buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
