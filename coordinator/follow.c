/*
 * follow.c: handles, the Slurm / Kubernetes / process answers, and the command capture (see
 * follow.h).
 */
#include "follow.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- handles ---------------------------------------------------------------------------------- */

static int follow__digits(const char *s, size_t n)
{
    if (n == 0 || n >= 20)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* A DNS label: [a-z0-9-], 1..63, starting and ending with an alphanumeric. */
static int follow__label(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

int follow_handle_format(const follow_handle_t *h, char *buf, size_t len)
{
    int w;
    switch (h->kind) {
    case FOLLOW_PID:
        w = snprintf(buf, len, "pid:%" PRId64 "@%" PRIu64, h->pid, h->start_ticks);
        break;
    case FOLLOW_SLURM:
        w = snprintf(buf, len, "slurm:%s", h->job_id);
        break;
    case FOLLOW_MPIJOB:
        w = snprintf(buf, len, "mpijob:%s/%s", h->ns, h->name);
        break;
    default:
        w = snprintf(buf, len, "%s", "");
    }
    return w < 0 || (size_t)w >= len ? -ENOSPC : 0;
}

int follow_handle_parse(const char *text, follow_handle_t *ret)
{
    follow_handle_t h = {.kind = FOLLOW_NONE};
    *ret = h;
    if (!text || !text[0])
        return 0;
    if (strncmp(text, "pid:", 4) == 0) {
        const char *p = text + 4, *at = strchr(p, '@');
        if (!at || !follow__digits(p, (size_t)(at - p)) || !follow__digits(at + 1, strlen(at + 1)))
            return -EINVAL;
        h.kind = FOLLOW_PID;
        h.pid = strtoll(p, NULL, 10);
        h.start_ticks = strtoull(at + 1, NULL, 10);
        if (h.pid <= 0)
            return -EINVAL;
    } else if (strncmp(text, "slurm:", 6) == 0) {
        const char *p = text + 6;
        if (!follow__digits(p, strlen(p)))
            return -EINVAL;
        h.kind = FOLLOW_SLURM;
        snprintf(h.job_id, sizeof h.job_id, "%s", p);
    } else if (strncmp(text, "mpijob:", 7) == 0) {
        const char *p = text + 7, *sl = strchr(p, '/');
        if (!sl || !follow__label(p, (size_t)(sl - p)) || !follow__label(sl + 1, strlen(sl + 1)))
            return -EINVAL;
        h.kind = FOLLOW_MPIJOB;
        snprintf(h.ns, sizeof h.ns, "%.*s", (int)(sl - p), p);
        snprintf(h.name, sizeof h.name, "%s", sl + 1);
    } else {
        return -EINVAL;
    }
    *ret = h;
    return 0;
}

/* ---- Slurm ------------------------------------------------------------------------------------ */

/* The phase of a Slurm job state word (squeue/scontrol/sacct spell them alike). */
static follow_phase_t follow__slurm_phase(const char *st)
{
    static const struct {
        const char *word;
        follow_phase_t phase;
    } map[] = {
            {"PENDING", FOLLOW_PENDING},      {"CONFIGURING", FOLLOW_PENDING},
            {"REQUEUED", FOLLOW_PENDING},     {"REQUEUE_HOLD", FOLLOW_PENDING},
            {"REQUEUE_FED", FOLLOW_PENDING},  {"RESV_DEL_HOLD", FOLLOW_PENDING},
            {"RUNNING", FOLLOW_RUNNING},      {"COMPLETING", FOLLOW_RUNNING},
            {"SUSPENDED", FOLLOW_RUNNING},    {"RESIZING", FOLLOW_RUNNING},
            {"SIGNALING", FOLLOW_RUNNING},    {"STAGE_OUT", FOLLOW_RUNNING},
            {"STOPPED", FOLLOW_RUNNING},      {"COMPLETED", FOLLOW_DONE},
            {"CANCELLED", FOLLOW_CANCELLED},  {"FAILED", FOLLOW_FAILED},
            {"TIMEOUT", FOLLOW_FAILED},       {"NODE_FAIL", FOLLOW_FAILED},
            {"OUT_OF_MEMORY", FOLLOW_FAILED}, {"BOOT_FAIL", FOLLOW_FAILED},
            {"DEADLINE", FOLLOW_FAILED},      {"PREEMPTED", FOLLOW_FAILED},
            {"REVOKED", FOLLOW_FAILED},       {"SPECIAL_EXIT", FOLLOW_FAILED},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(st, map[i].word) == 0)
            return map[i].phase;
    return FOLLOW_UNKNOWN;
}

/* The value of KEY= in a line of space-separated Key=Value words, into buf. */
static int follow__kv(const char *text, const char *key, char *buf, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = text; (p = strstr(p, key)) != NULL; p += kl) {
        if ((p != text && !isspace((unsigned char)p[-1])) || p[kl] != '=')
            continue;
        const char *v = p + kl + 1;
        size_t n = strcspn(v, " \t\r\n");
        snprintf(buf, len, "%.*s", (int)n, v);
        return 0;
    }
    return -ENOENT;
}

static void follow__slurm_finish(follow_status_t *s, const char *exit_code, const char *reason)
{
    s->phase = follow__slurm_phase(s->state);
    s->reason[0] = '\0';
    if (s->phase == FOLLOW_FAILED || s->phase == FOLLOW_CANCELLED || s->phase == FOLLOW_UNKNOWN)
        snprintf(s->reason, sizeof s->reason, "Slurm job %s%s%s%s%s%s", s->state,
                 exit_code && exit_code[0] ? ", exit code " : "", exit_code ? exit_code : "",
                 reason && reason[0] && strcmp(reason, "None") != 0 ? " (" : "",
                 reason && reason[0] && strcmp(reason, "None") != 0 ? reason : "",
                 reason && reason[0] && strcmp(reason, "None") != 0 ? ")" : "");
}

int follow_slurm_scontrol(const char *text, follow_status_t *ret)
{
    follow_status_t s = {0};
    char reason[128] = "", code[32] = "";
    if (!text || follow__kv(text, "JobState", s.state, sizeof s.state) < 0)
        return -ENOENT;
    follow__kv(text, "Reason", reason, sizeof reason);
    follow__kv(text, "ExitCode", code, sizeof code);
    follow__slurm_finish(&s, code, reason);
    *ret = s;
    return 0;
}

int follow_slurm_sacct(const char *text, follow_status_t *ret)
{
    follow_status_t s = {0};
    if (!text)
        return -ENOENT;
    const char *p = text;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    size_t n = strcspn(p, "\r\n");
    if (n == 0)
        return -ENOENT;
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)n, p);
    char *bar = strchr(line, '|');
    char *code = bar ? bar + 1 : NULL;
    if (bar)
        *bar = '\0';
    if (code) {
        char *bar2 = strchr(code, '|');
        if (bar2)
            *bar2 = '\0';
    }
    /* "CANCELLED by 0": the word is the state */
    size_t wl = strcspn(line, " ");
    snprintf(s.state, sizeof s.state, "%.*s", (int)wl, line);
    if (!s.state[0])
        return -ENOENT;
    follow__slurm_finish(&s, code, line[wl] ? line + wl + 1 : NULL);
    *ret = s;
    return 0;
}

/* ---- Kubernetes ------------------------------------------------------------------------------- */

int follow_mpijob(const char *text, size_t len, follow_status_t *ret)
{
    json_error_t je;
    json_t *o = text ? json_loadb(text, len, 0, &je) : NULL;
    if (!json_is_object(o) || !json_is_string(json_object_get(o, "kind")) ||
        strcmp(json_string_value(json_object_get(o, "kind")), "MPIJob") != 0) {
        json_decref(o);
        return -EINVAL;
    }
    follow_status_t s = {.phase = FOLLOW_PENDING};
    snprintf(s.state, sizeof s.state, "Pending");
    json_t *conds = json_object_get(json_object_get(o, "status"), "conditions");
    const char *message = NULL, *reason = NULL;
    int succeeded = 0, failed = 0, running = 0, suspended = 0, restarting = 0;
    size_t i;
    json_t *cnd;
    json_array_foreach(conds, i, cnd)
    {
        const char *type = json_string_value(json_object_get(cnd, "type"));
        const char *status = json_string_value(json_object_get(cnd, "status"));
        if (!type || !status || strcmp(status, "True") != 0)
            continue;
        if (strcmp(type, "Succeeded") == 0)
            succeeded = 1;
        else if (strcmp(type, "Failed") == 0) {
            failed = 1;
            message = json_string_value(json_object_get(cnd, "message"));
            reason = json_string_value(json_object_get(cnd, "reason"));
        } else if (strcmp(type, "Running") == 0)
            running = 1;
        else if (strcmp(type, "Suspended") == 0)
            suspended = 1;
        else if (strcmp(type, "Restarting") == 0)
            restarting = 1;
    }
    if (succeeded) {
        s.phase = FOLLOW_DONE;
        snprintf(s.state, sizeof s.state, "Succeeded");
    } else if (failed) {
        s.phase = FOLLOW_FAILED;
        snprintf(s.state, sizeof s.state, "Failed");
        snprintf(s.reason, sizeof s.reason, "MPIJob failed%s%s%s%s", reason ? " (" : "",
                 reason ? reason : "", reason ? ")" : "", message ? ": " : "");
        if (message) {
            size_t l = strlen(s.reason);
            snprintf(s.reason + l, sizeof s.reason - l, "%s", message);
        }
    } else if (suspended) {
        snprintf(s.state, sizeof s.state, "Suspended");
    } else if (running || restarting) {
        s.phase = FOLLOW_RUNNING;
        snprintf(s.state, sizeof s.state, "%s", running ? "Running" : "Restarting");
    }
    json_decref(o);
    *ret = s;
    return 0;
}

/* ---- processes -------------------------------------------------------------------------------- */

int follow_proc_start(int64_t pid, uint64_t *ret_ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -EIO;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields after the last
     * ')' are space-separated, state is field 3 and starttime field 22. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -EIO;
    p++;
    char state = 0;
    uint64_t start = 0;
    int field = 2;
    for (char *tok = strtok(p, " "); tok; tok = strtok(NULL, " ")) {
        field++;
        if (field == 3)
            state = tok[0];
        if (field == 22) {
            start = strtoull(tok, NULL, 10);
            break;
        }
    }
    if (field != 22)
        return -EIO;
    if (state == 'Z' || state == 'X')
        return -ESRCH;
    *ret_ticks = start;
    return 0;
}

int follow_proc_alive(const follow_handle_t *h)
{
    uint64_t t;
    return h->kind == FOLLOW_PID && follow_proc_start(h->pid, &t) == 0 && t == h->start_ticks;
}

/* ---- capture ---------------------------------------------------------------------------------- */

typedef struct follow__cap {
    uv_process_t proc;
    uv_pipe_t pipe[2]; /* stdout, stderr */
    uv_timer_t timer;
    int open_handles;
    int pipes_done, exited, timed_out;
    int64_t status;
    int sig;
    char *buf[2];
    size_t len[2];
    follow_capture_cb cb;
    void *data;
} follow__cap_t;

static void follow__closed(uv_handle_t *h)
{
    follow__cap_t *c = h->data;
    if (--c->open_handles == 0) {
        free(c->buf[0]);
        free(c->buf[1]);
        free(c);
    }
}

static void follow__finish(follow__cap_t *c)
{
    if (!c->exited || c->pipes_done < 2 || !c->cb)
        return;
    follow_output_t o = {
            .exit_status = c->timed_out ? -1 : c->status,
            .term_signal = c->sig,
            .timed_out = c->timed_out,
            .out = c->buf[0] ? c->buf[0] : "",
            .out_len = c->len[0],
            .err = c->buf[1] ? c->buf[1] : "",
            .err_len = c->len[1],
    };
    follow_capture_cb cb = c->cb;
    c->cb = NULL;
    cb(&o, c->data);
    uv_close((uv_handle_t *)&c->proc, follow__closed);
    uv_close((uv_handle_t *)&c->timer, follow__closed);
    for (int i = 0; i < 2; i++)
        if (!uv_is_closing((uv_handle_t *)&c->pipe[i]))
            uv_close((uv_handle_t *)&c->pipe[i], follow__closed);
}

static void follow__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static __thread char chunk[65536];
    buf->base = chunk;
    buf->len = sizeof chunk;
}

static void follow__read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    follow__cap_t *c = s->data;
    int i = s == (uv_stream_t *)&c->pipe[0] ? 0 : 1;
    if (nread < 0) {
        uv_read_stop(s);
        c->pipes_done++;
        follow__finish(c);
        return;
    }
    size_t room = FOLLOW_OUTPUT_MAX - c->len[i];
    size_t n = (size_t)nread < room ? (size_t)nread : room;
    if (n == 0)
        return;
    char *b = realloc(c->buf[i], c->len[i] + n + 1);
    if (!b)
        return;
    memcpy(b + c->len[i], buf->base, n);
    c->len[i] += n;
    b[c->len[i]] = '\0';
    c->buf[i] = b;
}

static void follow__exit(uv_process_t *p, int64_t status, int sig)
{
    follow__cap_t *c = p->data;
    c->exited = 1;
    c->status = status;
    c->sig = sig;
    uv_timer_stop(&c->timer);
    follow__finish(c);
}

static void follow__timeout(uv_timer_t *t)
{
    follow__cap_t *c = t->data;
    if (c->exited)
        return;
    c->timed_out = 1;
    uv_process_kill(&c->proc, SIGKILL);
}

int follow_capture(
        uv_loop_t *loop, char *const *argv, int timeout_ms, follow_capture_cb cb, void *data)
{
    if (!loop || !argv || !argv[0] || !cb)
        return -EINVAL;
    follow__cap_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->cb = cb;
    c->data = data;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 3;
    for (int i = 0; i < 2; i++) {
        uv_pipe_init(loop, &c->pipe[i], 0);
        c->pipe[i].data = c;
    }
    uv_stdio_container_t io[3];
    io[0].flags = UV_IGNORE;
    for (int i = 0; i < 2; i++) {
        io[i + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        io[i + 1].data.stream = (uv_stream_t *)&c->pipe[i];
    }
    uv_process_options_t opt = {
            .exit_cb = follow__exit,
            .file = argv[0],
            .args = (char **)argv,
            .stdio_count = 3,
            .stdio = io,
    };
    c->proc.data = c;
    int rc = uv_spawn(loop, &c->proc, &opt);
    c->open_handles++;
    if (rc < 0) {
        /* libuv: the process handle must be closed even when spawning failed. */
        c->cb = NULL;
        uv_close((uv_handle_t *)&c->proc, follow__closed);
        uv_close((uv_handle_t *)&c->timer, follow__closed);
        for (int i = 0; i < 2; i++)
            uv_close((uv_handle_t *)&c->pipe[i], follow__closed);
        return rc;
    }
    for (int i = 0; i < 2; i++)
        uv_read_start((uv_stream_t *)&c->pipe[i], follow__alloc, follow__read);
    uv_timer_start(&c->timer, follow__timeout, (uint64_t)(timeout_ms > 0 ? timeout_ms : 30000), 0);
    return 0;
}
