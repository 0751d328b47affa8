/*
 * child.c: a child process with a progress pipe on a libuv loop (see child.h).
 */
#include "child.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "linebuf.h"

#define CHILD_LINE_MAX_DEFAULT (64 * 1024)
#define CHILD_EOF_WAIT_DEFAULT 1000
#define CHILD_GRACE_DEFAULT    5000

struct child {
    uv_process_t proc;
    uv_pipe_t pipe;
    uv_timer_t eof_timer;  /* after the exit, the bounded wait for the pipe's end */
    uv_timer_t kill_timer; /* SIGTERM -> SIGKILL */
    int handles;           /* open handles; the memory goes with the last */
    int has_pipe, pipe_done, exited, ended, detached, own_group, signal_pid_only;
    int64_t exit_status;
    int term_signal;
    int eof_wait_ms, kill_grace_ms;
    child_line_cb on_line;
    child_end_cb on_end;
    void *data;
    linebuf_t *lines; /* the progress pipe's partial line */
    uint64_t dropped;
};

static void child__closed(uv_handle_t *h)
{
    child_t *c = h->data;
    if (--c->handles == 0) {
        linebuf_destroy(&c->lines);
        free(c);
    }
}

static void child__close(child_t *c, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, child__closed);
}

static void child__close_all(child_t *c)
{
    child__close(c, (uv_handle_t *)&c->proc);
    child__close(c, (uv_handle_t *)&c->eof_timer);
    child__close(c, (uv_handle_t *)&c->kill_timer);
    if (c->has_pipe)
        child__close(c, (uv_handle_t *)&c->pipe);
}

static void child__emit(const char *s, size_t n, const char *error, void *data)
{
    child_t *c = data;
    if (error) {
        c->dropped++;
        return;
    }
    if (c->detached || !c->on_line)
        return;
    json_t *o = n > 0 && s[0] == '{' ? json_loadb(s, n, 0, NULL) : NULL;
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    c->on_line(c, s, n, o, c->data);
    json_decref(o);
}

/* Both the exit and the pipe's end have happened: report once, then release. */
static void child__maybe_end(child_t *c)
{
    if (!c->exited || !c->pipe_done || c->ended)
        return;
    c->ended = 1;
    if (c->lines) /* a last line without a newline */
        linebuf_finish(c->lines, child__emit, c);
    if (!c->detached && c->on_end)
        c->on_end(c, c->exit_status, c->term_signal, c->data);
    child__close_all(c);
}

static void child__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static __thread char chunk[65536];
    buf->base = chunk;
    buf->len = sizeof chunk;
}

static void child__read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    child_t *c = s->data;
    if (nread < 0) {
        uv_read_stop(s);
        c->pipe_done = 1;
        uv_timer_stop(&c->eof_timer);
        child__maybe_end(c);
        return;
    }
    linebuf_feed(c->lines, buf->base, (size_t)nread, child__emit, c);
}

static void child__eof_timeout(uv_timer_t *t)
{
    child_t *c = t->data;
    if (c->pipe_done)
        return;
    uv_read_stop((uv_stream_t *)&c->pipe);
    c->pipe_done = 1;
    child__maybe_end(c);
}

static void child__exit(uv_process_t *p, int64_t status, int sig)
{
    child_t *c = p->data;
    c->exited = 1;
    c->exit_status = status;
    c->term_signal = sig;
    uv_timer_stop(&c->kill_timer);
    if (c->detached) {
        c->ended = 1;
        child__close_all(c);
        return;
    }
    if (!c->pipe_done)
        uv_timer_start(&c->eof_timer, child__eof_timeout, (uint64_t)c->eof_wait_ms, 0);
    child__maybe_end(c);
}

int child_start(uv_loop_t *loop,
                const child_options_t *o,
                child_line_cb on_line,
                child_end_cb on_end,
                void *data,
                child_t **ret)
{
    if (!loop || !o || !o->argv || !o->argv[0] || !on_end ||
        (o->progress_fd != -1 && o->progress_fd != 1 && (o->progress_fd < 3 || o->progress_fd > 9)))
        return -EINVAL;
    child_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->eof_wait_ms = o->eof_wait_ms > 0 ? o->eof_wait_ms : CHILD_EOF_WAIT_DEFAULT;
    c->kill_grace_ms = o->kill_grace_ms > 0 ? o->kill_grace_ms : CHILD_GRACE_DEFAULT;
    c->own_group = o->own_group;
    c->signal_pid_only = o->signal_pid_only;
    c->on_line = on_line;
    c->on_end = on_end;
    c->data = data;
    c->has_pipe = o->progress_fd >= 0 && o->progress_file <= 0;
    c->pipe_done = !c->has_pipe;
    if (c->has_pipe &&
        linebuf_new(o->line_max ? o->line_max : CHILD_LINE_MAX_DEFAULT, &c->lines) < 0) {
        free(c);
        return -ENOMEM;
    }
    uv_timer_init(loop, &c->eof_timer);
    uv_timer_init(loop, &c->kill_timer);
    c->eof_timer.data = c->kill_timer.data = c->proc.data = c;
    c->handles = 2;
    if (c->has_pipe) {
        uv_pipe_init(loop, &c->pipe, 0);
        c->pipe.data = c;
        c->handles++;
    }
    uv_stdio_container_t io[10];
    int nio = o->progress_fd >= 3 ? o->progress_fd + 1 : 3;
    for (int i = 0; i < nio; i++)
        io[i].flags = UV_IGNORE;
    if (o->stdout_fd >= 0) {
        io[1].flags = UV_INHERIT_FD;
        io[1].data.fd = o->stdout_fd;
    }
    if (o->stderr_fd >= 0) {
        io[2].flags = UV_INHERIT_FD;
        io[2].data.fd = o->stderr_fd;
    }
    if (c->has_pipe) {
        io[o->progress_fd].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        io[o->progress_fd].data.stream = (uv_stream_t *)&c->pipe;
    } else if (o->progress_fd >= 0) {
        io[o->progress_fd].flags = UV_INHERIT_FD;
        io[o->progress_fd].data.fd = o->progress_file;
    }
    uv_process_options_t opt = {
            .exit_cb = child__exit,
            .file = o->argv[0],
            .args = (char **)o->argv,
            .env = (char **)o->env,
            .cwd = o->cwd,
            .stdio_count = nio,
            .stdio = io,
            /* setsid(): the child leads a new group, so a stop reaches a script's children */
            .flags = o->own_group ? UV_PROCESS_DETACHED : 0,
    };
    int rc = uv_spawn(loop, &c->proc, &opt);
    c->handles++; /* the process handle must be closed even when spawning failed */
    if (rc < 0) {
        c->detached = 1;
        c->ended = 1;
        child__close_all(c);
        return rc;
    }
    if (c->has_pipe && uv_read_start((uv_stream_t *)&c->pipe, child__alloc, child__read) != 0) {
        c->pipe_done = 1;
        child__close(c, (uv_handle_t *)&c->pipe);
    }
    if (ret)
        *ret = c;
    return 0;
}

int child_pid(const child_t *c)
{
    return c->proc.pid;
}

int child_signal(child_t *c, int signum)
{
    if (c->exited)
        return -ESRCH;
    if (c->own_group && !c->signal_pid_only)
        return kill(-c->proc.pid, signum) == 0 ? 0 : -errno;
    return uv_process_kill(&c->proc, signum);
}

static void child__kill(uv_timer_t *t)
{
    child_t *c = t->data;
    child_signal(c, SIGKILL);
}

void child_stop(child_t *c)
{
    if (!c || c->exited)
        return;
    child_signal(c, SIGTERM);
    if (!uv_is_active((uv_handle_t *)&c->kill_timer))
        uv_timer_start(&c->kill_timer, child__kill, (uint64_t)c->kill_grace_ms, 0);
}

uint64_t child_dropped_lines(const child_t *c)
{
    return c->dropped;
}

void child_close(child_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    child_t *c = *c_p;
    *c_p = NULL;
    if (c->detached)
        return;
    c->detached = 1;
    if (c->ended)
        return; /* closing already */
    if (!c->exited) {
        /* reaped in child__exit, which closes the handles */
        child_signal(c, SIGKILL);
        if (c->has_pipe && !c->pipe_done) {
            uv_read_stop((uv_stream_t *)&c->pipe);
            c->pipe_done = 1;
        }
        return;
    }
    c->ended = 1;
    child__close_all(c);
}

char *child_fill(const char *tmpl, const char *const *keys, const char *const *vals, size_t n)
{
    size_t cap = strlen(tmpl) + 1, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = tmpl; *p;) {
        const char *rep = NULL;
        size_t skip = 1;
        if (*p == '{') {
            const char *close = strchr(p + 1, '}');
            for (size_t i = 0; close && i < n; i++) {
                size_t kl = strlen(keys[i]);
                if ((size_t)(close - p - 1) == kl && strncmp(p + 1, keys[i], kl) == 0) {
                    rep = vals[i];
                    skip = kl + 2;
                    break;
                }
            }
        }
        size_t add = rep ? strlen(rep) : 1;
        if (len + add + 1 > cap) {
            cap = (len + add + 1) * 2;
            char *nb = realloc(out, cap);
            if (!nb) {
                free(out);
                return NULL;
            }
            out = nb;
        }
        if (rep)
            memcpy(out + len, rep, add);
        else
            out[len] = *p;
        len += add;
        p += skip;
    }
    out[len] = '\0';
    return out;
}

int child_mkdirs(const char *dir, mode_t mode)
{
    char tmp[PATH_MAX];
    if (!dir || !*dir)
        return -EINVAL;
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(tmp, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}
