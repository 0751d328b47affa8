/*
 * worker: the state of one regmix-worker daemon and its lifecycle (docs/protocol.md).
 *
 * One libuv loop drives everything: a DEALER socket watched through zloop (net.c), the session
 * with the coordinator (session.c), the slots and the local queue of attempts (jobs.c, each
 * attempt a job.c), the reports kept until acknowledged (outbox.c), a tick timer for
 * heartbeats, resends and reconnects, and signal handlers that only set the loop on its way out.
 * main.c parses the options and calls worker_new(), worker_start(), worker_run() and
 * worker_destroy().
 *
 * The modules share this struct and call downwards only:
 *     main -> worker (lifecycle) -> session -> jobs -> outbox -> net
 * (net's receive callback is handed to it by session; nothing calls up).
 * All of it runs on the loop thread.
 */
#ifndef REGMIX_WORKER_WORKER_H
#define REGMIX_WORKER_WORKER_H

#include <stdint.h>
#include <uv.h>

#include "connmon.h"
#include "curve.h"
#include "gpu.h"
#include "job.h"
#include "report.h"
#include "zloop.h"

#define WORKER_TICK_MS        50
#define WORKER_DEFAULT_HB_MS  1000
#define WORKER_BACKOFF_MIN_MS 250
#define WORKER_BACKOFF_MAX_MS 2000
#define WORKER_MAX_SLOTS      4096
#define WORKER_MAX_QUEUE      65536

typedef struct held held_t;     /* a report until acknowledged (outbox.h) */
typedef struct queued queued_t; /* an assignment beyond the slots (jobs.h) */

/* What main decided; borrowed by worker_new() (strings must outlive the worker). */
typedef struct worker_config {
    const char *endpoint; /* the coordinator's worker endpoint */
    curve_client_t curve; /* CURVE keys for every socket opened (copied) */
    const char *name;     /* the id is HOST:NAME */
    gpu_t gpus[GPU_MAX];  /* offered GPUs (copied) */
    int n_gpus;
    unsigned slots;      /* attempts at once, 1..WORKER_MAX_SLOTS */
    const char *workdir; /* created if missing (and its parent) */
    const char *trainer; /* regmix-train: a path or a name on PATH */
    int kill_grace_ms;   /* SIGTERM to SIGKILL when cancelling */
    int allow_commands;  /* run COMMAND jobs (--allow-commands); else they fail at once */
} worker_config_t;

typedef struct worker {
    uv_loop_t *loop;
    const char *endpoint;
    curve_client_t curve;
    char worker_id[512];
    char host[256];
    char boot_id[33];
    unsigned slots;
    gpu_t gpus[GPU_MAX];
    int n_gpus;
    job_config_t jcfg;
    char workdir[4096]; /* absolute: jobs run with their own directory as cwd */
    char trainer[4096];

    void *zctx;
    void *sock;
    zloop_watch_t *watch;
    connmon_t *mon; /* the socket's connection events (net.c), or NULL */
    zloop_watch_t *mon_watch;
    unsigned hs_logged; /* handshake problems logged since the last WELCOME (bits) */
    uint64_t msg_id;

    int welcomed;
    int ever_welcomed; /* by this process: a CONFLICT before it means the id is someone else's */
    int exit_code;     /* what worker_run() returns */
    int lock_fd;       /* workdir/worker.lock, held (flock) for the worker's life */
    int draining;
    int stopping;
    uint32_t heartbeat_ms;
    uint32_t lease_ms;
    int64_t last_rx_ms;
    int64_t last_tick_ms; /* session_tick()'s last run: a longer gap is this process's stall */
    int64_t last_ping_ms;
    int64_t hello_ms;
    int64_t backoff_ms;

    job_t **jobs; /* running, slots entries, NULL where free */
    unsigned running;
    queued_t *queue, *queue_tail;
    unsigned queued;
    held_t *held;
    unsigned n_held;
    unsigned n_journaled; /* held reports that live in the journal */
    report_journal_t *journal;

    uv_timer_t tick;
    uv_timer_t flush; /* READY, at most once per loop iteration */
    int ready_dirty;
    int journal_unsynced; /* reports appended to the journal and not yet fdatasync'd nor sent */
    uv_signal_t sigint, sigterm;
    int handles; /* the timers and signals above are initialised */
    unsigned long long done, failed;
} worker_t;

/*
 * Makes a worker on `loop`: creates the workdir, recovers the reports not yet acknowledged
 * (job directories and the outbox journal). Returns 0 and *ret, or a negative errno with one
 * line naming what failed in `err`.
 */
int worker_new(
        uv_loop_t *loop, const worker_config_t *cfg, worker_t **ret, char *err, size_t errlen);

/* Opens the socket, starts the tick timer and the signal handlers, sends HELLO. Returns 0 or a
 * negative errno (a malformed endpoint: -EINVAL, -EPROTONOSUPPORT). */
int worker_start(worker_t *w);

/* Runs the loop until SIGINT or SIGTERM (or worker_quit()) has stopped the worker; returns
 * the exit status for main (0, or what worker_quit() set). */
int worker_run(worker_t *w);

/* Stops the worker from inside the loop with exit status `code` (e.g. 2: its id belongs to
 * another worker); worker_run() returns it. */
void worker_quit(worker_t *w, int code);

/* Frees the worker (held reports stay on disk for the next start); NULL or *self_p NULL is a
 * harmless no-op. *self_p is NULL afterwards. */
void worker_destroy(worker_t **self_p);

#endif
