#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "coord.h"
#include "dashboard.h"
#include "exporter.h"

struct exporter {
    coord_t *c;
    struct MHD_Daemon *d;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    uint64_t requests; /* answered, for regmix_http_requests_total */
};

typedef struct {
    char *buf;
    size_t len, cap;
} exporter_text_t;

static void exporter__printf(exporter_text_t *t, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void exporter__printf(exporter_text_t *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *b = realloc(t->buf, cap);
        if (!b)
            return;
        t->buf = b;
        t->cap = cap;
    }
}

static void exporter__metrics(const exporter_t *e, exporter_text_t *t)
{
    const coord_t *c = e->c;
    exporter__printf(t, "# HELP regmix_up The coordinator serves.\n# TYPE regmix_up gauge\n"
                        "regmix_up 1\n");
    int64_t runs[RUN_STATE__COUNT] = {0};
    int sweeps[SWEEP_STATE__COUNT] = {0};
    for (int i = 0; i < c->nsweeps; i++) {
        const sweep_t *sw = c->sweeps[i];
        if (sw->state >= 0 && sw->state < SWEEP_STATE__COUNT)
            sweeps[sw->state]++;
        for (int s = 1; s < RUN_STATE__COUNT; s++)
            runs[s] += sw->counts[s];
    }
    exporter__printf(t, "# HELP regmix_sweeps Sweeps by state.\n# TYPE regmix_sweeps gauge\n");
    for (int s = 1; s < SWEEP_STATE__COUNT; s++)
        exporter__printf(t, "regmix_sweeps{state=\"%s\"} %d\n", states_sweep_name((sweep_state_t)s),
                         sweeps[s]);
    exporter__printf(t, "# HELP regmix_runs Proxy runs by state.\n# TYPE regmix_runs gauge\n");
    for (int s = 1; s < RUN_STATE__COUNT; s++)
        exporter__printf(t, "regmix_runs{state=\"%s\"} %lld\n", states_run_name((run_state_t)s),
                         (long long)runs[s]);
    int workers[WORKER_STATE__COUNT] = {0};
    for (int i = 0; i < c->nworkers; i++)
        workers[coord_worker_state(c->workers[i])]++;
    exporter__printf(t, "# HELP regmix_workers Workers by state.\n# TYPE regmix_workers gauge\n");
    for (int k = 1; k < WORKER_STATE__COUNT; k++)
        exporter__printf(t, "regmix_workers{state=\"%s\"} %d\n",
                         states_worker_name((worker_state_t)k), workers[k]);
    exporter__printf(t,
                     "# HELP regmix_live_attempts Attempts leased or running.\n"
                     "# TYPE regmix_live_attempts gauge\nregmix_live_attempts %d\n",
                     attempt_table_count(c->attempts));
    exporter__printf(t,
                     "# HELP regmix_assigned_total ASSIGNs sent.\n"
                     "# TYPE regmix_assigned_total counter\nregmix_assigned_total %llu\n"
                     "# HELP regmix_results_total Results stored.\n"
                     "# TYPE regmix_results_total counter\nregmix_results_total %llu\n"
                     "# HELP regmix_fenced_total Results of stale attempts discarded.\n"
                     "# TYPE regmix_fenced_total counter\nregmix_fenced_total %llu\n"
                     "# HELP regmix_bad_input_total Malformed or misplaced messages.\n"
                     "# TYPE regmix_bad_input_total counter\nregmix_bad_input_total %llu\n",
                     (unsigned long long)c->n_assigned, (unsigned long long)c->n_results,
                     (unsigned long long)c->n_fenced, (unsigned long long)c->n_bad_input);
    exporter__printf(t,
                     "# HELP regmix_http_requests_total Requests answered on this listener "
                     "(metrics, probes, dashboard).\n"
                     "# TYPE regmix_http_requests_total counter\nregmix_http_requests_total %llu\n",
                     (unsigned long long)e->requests);
}

static const char *exporter__arg(void *ctx, const char *key)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result exporter__answer(void *cls,
                                        struct MHD_Connection *conn,
                                        const char *url,
                                        const char *method,
                                        const char *version,
                                        const char *upload_data,
                                        size_t *upload_data_size,
                                        void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)con_cls;
    exporter_t *e = cls;
    unsigned status = MHD_HTTP_OK;
    exporter_text_t t = {0};
    const char *type = "text/plain; charset=utf-8";
    if (*upload_data_size) {
        *upload_data_size = 0; /* ignore bodies */
        return MHD_YES;
    }
    e->requests++;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        exporter__printf(&t, "method not allowed\n");
    } else if (strcmp(url, "/metrics") == 0) {
        type = "text/plain; version=0.0.4; charset=utf-8";
        exporter__metrics(e, &t);
    } else if (strcmp(url, "/healthz") == 0) {
        exporter__printf(&t, "ok\n");
    } else if ((status = (unsigned)dashboard_get(e->c, url, exporter__arg, conn, &t.buf, &t.len,
                                                 &type)) == 0) {
        status = MHD_HTTP_NOT_FOUND;
        exporter__printf(&t, "not found; try /, /api/sweeps, /metrics or /healthz\n");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(t.len, t.buf ? t.buf : (char *)"",
                                                             MHD_RESPMEM_MUST_COPY);
    free(t.buf);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    /* Read-only views: never cached, never framed, never sniffed as something else. */
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void exporter__poll_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    exporter_t *e = h->data;
    MHD_run(e->d);
}

static void exporter__timer_cb(uv_timer_t *h)
{
    exporter_t *e = h->data;
    MHD_run(e->d);
}

int exporter_start(struct coord *c, const char *addr, exporter_t **ret, char *err, size_t errlen)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char host[64] = "0.0.0.0";
    const char *colon = strrchr(addr, ':');
    const char *port_s = colon ? colon + 1 : addr;
    if (colon) {
        size_t hl = (size_t)(colon - addr);
        if (hl == 0 || hl >= sizeof host) {
            snprintf(err, errlen, "--metrics %s: expected HOST:PORT", addr);
            return -EINVAL;
        }
        memcpy(host, addr, hl);
        host[hl] = '\0';
        if (strcmp(host, "*") == 0)
            snprintf(host, sizeof host, "0.0.0.0");
    }
    char *end = NULL;
    long port = strtol(port_s, &end, 10);
    if (!*port_s || *end || port < 0 || port > 65535 ||
        inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "--metrics %s: expected IPV4:PORT", addr);
        return -EINVAL;
    }
    sa.sin_port = htons((uint16_t)port);
    exporter_t *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->c = c;
    e->d = MHD_start_daemon(MHD_USE_EPOLL, (uint16_t)port, NULL, NULL, exporter__answer, e,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)16,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (!e->d) {
        snprintf(err, errlen, "--metrics %s: cannot listen", addr);
        free(e);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(e->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || uv_poll_init(c->loop, &e->poll, info->epoll_fd) < 0) {
        snprintf(err, errlen, "--metrics %s: no epoll fd", addr);
        MHD_stop_daemon(e->d);
        free(e);
        return -EIO;
    }
    e->poll.data = e;
    uv_timer_init(c->loop, &e->timer);
    e->timer.data = e;
    e->open_handles = 2;
    uv_poll_start(&e->poll, UV_READABLE, exporter__poll_cb);
    /* Connection timeouts: MHD_run also from a slow timer. */
    uv_timer_start(&e->timer, exporter__timer_cb, 1000, 1000);
    *ret = e;
    return 0;
}

static void exporter__close_cb(uv_handle_t *h)
{
    exporter_t *e = h->data;
    if (--e->open_handles == 0)
        free(e);
}

void exporter_stop(exporter_t **e_p)
{
    if (!e_p || !*e_p)
        return;
    exporter_t *e = *e_p;
    *e_p = NULL;
    uv_close((uv_handle_t *)&e->poll, exporter__close_cb);
    uv_close((uv_handle_t *)&e->timer, exporter__close_cb);
    MHD_stop_daemon(e->d); /* after uv_close: the poll no longer watches its epoll fd */
    e->d = NULL;
}
