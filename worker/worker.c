/*
 * worker: one regmix-worker's state and lifecycle (worker.h): make it, start it, run the loop,
 * stop on a signal, free it.
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "child.h"
#include "clock.h"
#include "errbuf.h"
#include "jobs.h"
#include "log.h"
#include "net.h"
#include "outbox.h"
#include "session.h"

int worker_new(
        uv_loop_t *loop, const worker_config_t *cfg, worker_t **ret, char *err, size_t errlen)
{
    worker_t *w = calloc(1, sizeof *w);
    if (!w) {
        errbuf_set(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = 0;
    w->loop = loop;
    w->lock_fd = -1;
    w->endpoint = cfg->endpoint;
    w->curve = cfg->curve;
    memcpy(w->gpus, cfg->gpus, sizeof w->gpus);
    w->n_gpus = cfg->n_gpus;
    w->slots = cfg->slots;
    w->backoff_ms = WORKER_BACKOFF_MIN_MS;
    w->heartbeat_ms = WORKER_DEFAULT_HB_MS;
    if (gethostname(w->host, sizeof w->host - 1) != 0)
        snprintf(w->host, sizeof w->host, "localhost");
    snprintf(w->worker_id, sizeof w->worker_id, "%.200s:%.200s", w->host, cfg->name);
    unsigned char rnd[16];
    if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0) {
        uint64_t t = (uint64_t)clock_unix_ms() ^ ((uint64_t)getpid() << 32);
        memcpy(rnd, &t, sizeof t);
        memcpy(rnd + 8, &t, sizeof t);
    }
    for (int i = 0; i < 16; i++)
        snprintf(w->boot_id + 2 * i, 3, "%02x", rnd[i]);

    /* Create the workdir (and its parents) now, so a bad path is an error at start. */
    if ((rc = child_mkdirs(cfg->workdir, 0755)) < 0) {
        errbuf_set(err, errlen, "cannot create --workdir %s: %s", cfg->workdir, strerror(-rc));
        goto fail;
    }
    /* Jobs run with their own directory as cwd: every path handed to them must be absolute. */
    char abs[PATH_MAX];
    snprintf(w->workdir, sizeof w->workdir, "%s", realpath(cfg->workdir, abs) ? abs : cfg->workdir);
    snprintf(w->trainer, sizeof w->trainer, "%s",
             strchr(cfg->trainer, '/') && realpath(cfg->trainer, abs) ? abs : cfg->trainer);
    w->jcfg.workdir = w->workdir;
    w->jcfg.trainer = w->trainer;
    w->jcfg.kill_grace_ms = cfg->kill_grace_ms;
    w->jcfg.allow_commands = cfg->allow_commands;
    /* One worker per workdir: a second one (same host, same --name) would share its results
     * and fight over its worker id. The lock goes with the process, kill -9 included. */
    char lock_path[PATH_MAX + 16];
    snprintf(lock_path, sizeof lock_path, "%s/worker.lock", w->workdir);
    w->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (w->lock_fd < 0 || flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        errbuf_set(err, errlen,
                   "%s: %s; another regmix-worker uses this --workdir (worker id %s): give each "
                   "worker on a host its own --name (or --workdir)",
                   lock_path, rc == -EBUSY ? "locked" : strerror(-rc), w->worker_id);
        goto fail;
    }
    w->jobs = calloc(w->slots, sizeof *w->jobs);
    if (!w->jobs) {
        rc = -ENOMEM;
        errbuf_set(err, errlen, "out of memory");
        goto fail;
    }
    int bad = 0;
    rc = report_scan(w->workdir, outbox_scan_cb, w, &bad);
    if (rc < 0) {
        errbuf_set(err, errlen, "cannot read --workdir %s: %s", w->workdir, strerror(-rc));
        goto fail;
    }
    if (bad)
        log_warn("reports_unreadable", "worker=%s workdir=%s count=%d", w->worker_id, w->workdir,
                 bad);
    rc = report_journal_open(w->workdir, outbox_journal_cb, w, &w->journal, &bad);
    if (rc < 0) {
        errbuf_set(err, errlen, "cannot open the outbox journal in %s: %s", w->workdir,
                   strerror(-rc));
        goto fail;
    }
    if (bad)
        log_warn("journal_lines_skipped", "worker=%s workdir=%s count=%d", w->worker_id, w->workdir,
                 bad);
    w->zctx = zmq_ctx_new();
    if (!w->zctx) {
        rc = -errno;
        errbuf_set(err, errlen, "cannot create a ZeroMQ context");
        goto fail;
    }
    *ret = w;
    return 0;

fail:
    worker_destroy(&w);
    return rc < 0 ? rc : -EIO;
}

static void worker_close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Gives up the running attempts (the coordinator requeues them when their leases pass; held
 * results stay on disk for the next start) and closes everything that keeps the loop alive. */
static void worker_stop(worker_t *w)
{
    w->stopping = 1;
    for (unsigned i = 0; w->jobs && i < w->slots; i++)
        job_destroy(&w->jobs[i]);
    w->running = 0;
    net_close(w);
    if (w->handles) {
        worker_close_handle((uv_handle_t *)&w->tick);
        worker_close_handle((uv_handle_t *)&w->flush);
        worker_close_handle((uv_handle_t *)&w->sigint);
        worker_close_handle((uv_handle_t *)&w->sigterm);
    }
}

static void worker_signal_cb(uv_signal_t *s, int signum)
{
    worker_t *w = s->data;
    if (w->stopping)
        return;
    log_info("stopping", "worker=%s signal=%d running=%u held=%u done=%llu failed=%llu",
             w->worker_id, signum, w->running, w->n_held, w->done, w->failed);
    worker_stop(w);
}

static void worker_tick_cb(uv_timer_t *t)
{
    session_tick(t->data);
}

int worker_start(worker_t *w)
{
    int rc = session_open(w);
    if (rc < 0)
        return rc;
    log_info("started",
             "worker=%s boot=%s pid=%d slots=%u gpus=%d workdir=%s trainer=%s recovered=%u "
             "curve=\"%s\"",
             w->worker_id, w->boot_id, (int)getpid(), w->slots, w->n_gpus, w->workdir, w->trainer,
             w->n_held, w->curve.enabled ? w->curve.public_ : "off");
    uv_timer_init(w->loop, &w->tick);
    uv_timer_init(w->loop, &w->flush);
    w->tick.data = w;
    w->flush.data = w;
    uv_signal_init(w->loop, &w->sigint);
    uv_signal_init(w->loop, &w->sigterm);
    w->sigint.data = w;
    w->sigterm.data = w;
    w->handles = 1;
    uv_signal_start(&w->sigint, worker_signal_cb, SIGINT);
    uv_signal_start(&w->sigterm, worker_signal_cb, SIGTERM);
    uv_timer_start(&w->tick, worker_tick_cb, WORKER_TICK_MS, WORKER_TICK_MS);
    session_hello(w);
    return 0;
}

int worker_run(worker_t *w)
{
    uv_run(w->loop, UV_RUN_DEFAULT);
    return w->exit_code;
}

void worker_quit(worker_t *w, int code)
{
    if (w->stopping)
        return;
    w->exit_code = code;
    worker_stop(w);
}

void worker_destroy(worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_t *w = *self_p;
    worker_stop(w);
    uv_run(w->loop, UV_RUN_DEFAULT); /* close callbacks of the last handles */
    if (w->zctx)
        zmq_ctx_term(w->zctx);
    outbox_clear(w);
    jobs_clear_queue(w);
    free(w->jobs);
    report_journal_destroy(&w->journal);
    if (w->lock_fd >= 0)
        close(w->lock_fd);
    free(w);
    *self_p = NULL;
}
