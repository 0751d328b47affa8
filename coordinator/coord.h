/*
 * coord: the coordinator daemon's state and the pieces every module shares (DESIGN.md §4–5).
 *
 * One coord_t lives on the loop thread and owns: the store (SQLite), the two ROUTER sockets and
 * their zloop watches, the sweeps (all of them, in memory: few and small), the workers seen, and
 * the live attempts (leased or running; bounded by workers × slots). Runs stay in SQLite.
 *
 * Group commit and "persist before send": every reply, ack and ASSIGN is packed and queued with
 * coord_send(); a uv_check handle runs once per loop iteration: it runs the scheduler if needed,
 * commits the open transaction, and only then sends what was queued. An idle handle is started
 * while anything is queued, so the loop never blocks with work pending. Under load the commit
 * happens at most once per commit window (default 2 ms, a timer closes it), so one WAL write
 * covers many messages; an idle coordinator commits at once. A failed commit is fatal:
 * the loop stops and main exits 1; what was queued is never sent, and the supervisor's restart
 * recovers from the database (nothing acknowledged was lost).
 */
#ifndef REGMIX_COORD_H
#define REGMIX_COORD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "attempt.h"
#include "frame.h"
#include "spec.h"
#include "states.h"
#include "store.h"
#include "zloop.h"

#define COORD_WORKER_ID_MAX   128
#define COORD_MAX_GPUS        64
#define COORD_MAX_SLOTS       1024
#define COORD_MAX_HELD        4096
#define COORD_MAX_WATCHERS    64 /* per sweep */
#define COORD_GPU_CLASSES_MAX 16

typedef struct coord_config {
    const char *db_path;
    const char *workers_ep;
    const char *clients_ep;
    int heartbeat_ms; /* the worker pings this often (WELCOME) */
    int lease_ms;     /* an attempt's lease, renewed by anything the worker sends */
    int max_workers;  /* distinct worker ids */
    int max_sweeps;   /* sweeps in state running */
    size_t max_spec_bytes;
    int quarantine_after;  /* consecutive failed attempts of a worker */
    int linger_ms;         /* ZMQ_LINGER at shutdown */
    int progress_every_ms; /* thinning of stored progress, per attempt */
    int commit_window_ms;  /* group commit: at most one commit per window (0: per iteration) */
    const char *curve_secret_path; /* CURVE server secret key (Z85), NULL: plain endpoints */
    const char *curve_allow_path;  /* allowed client public keys, NULL: any CURVE client */
    const char *metrics_addr;      /* HTTP /metrics and /healthz ("HOST:PORT"), NULL: none */
    const char *targets_dir;       /* work directories of target launches; NULL: DB dir/targets */
    const char *trainer;           /* regmix-train as launch hosts see it; NULL: "regmix-train" */
} coord_config_t;

typedef struct coord_watcher {
    uint8_t rid[FRAME_MAX_ROUTING_ID];
    size_t rlen;
    uint64_t req_id;
} coord_watcher_t;

typedef struct sweep {
    int64_t id; /* rowid in sweeps */
    char sweep_id[32];
    char *name;
    sweep_state_t state;
    int priority;
    int gpus;
    int max_attempts;
    int backoff_ms;
    int ndomains;
    char **domains;
    Regmix__Assign *job; /* the sweep-wide part of every ASSIGN */
    int nruns;
    int64_t counts[RUN_STATE__COUNT]; /* runs per state */
    int64_t created_ms;
    int64_t updated_ms;
    int converged_after_runs;
    coord_watcher_t *watchers;
    int nwatchers;
    spec_t *spec; /* the parsed spec (owned); NULL if the stored text no longer parses */
    /* refits (refit.h) */
    int nfits;
    double *history; /* (nfits, ndomains) proposals, oldest first */
    int64_t results_at_last_fit;
    struct fitter_job *fit_job; /* in flight, or NULL */
} sweep_t;

typedef struct worker {
    char worker_id[COORD_WORKER_ID_MAX + 1];
    char *host;
    char *boot_id;
    char *software_version;
    uint8_t rid[FRAME_MAX_ROUTING_ID];
    size_t rlen;
    int connected; /* has said HELLO on this routing id (rid valid) */
    int alive;     /* heard from within 3 heartbeats */
    int draining;
    int quarantined;
    int slots;
    int ngpus;
    uint32_t gpu_index[COORD_MAX_GPUS];
    uint64_t gpu_used; /* bit i: gpu_index[i] is given to an attempt */
    char *gpus_json;
    int ready_free; /* free slots in the last READY or PING */
    int assigned_since_ready;
    int outstanding;     /* live attempts on this worker */
    attempt_t *attempts; /* list of them (attempt.wnext) */
    int consecutive_failures;
    int64_t done;
    int64_t failed;
    int64_t last_seen_mono;
    int64_t last_seen_ms;
    int dirty; /* the workers row needs writing */
} worker_t;

typedef struct coord {
    uv_loop_t *loop;
    coord_config_t cfg;
    store_t *store;
    void *zctx;
    void *wsock; /* ROUTER for workers */
    void *csock; /* ROUTER for clients */
    zloop_watch_t *wwatch;
    zloop_watch_t *cwatch;
    struct auth *auth;         /* NULL without CURVE */
    struct exporter *exporter; /* NULL without --metrics */
    struct target *targets;    /* target launches (target.h) */
    char targets_dir[1024];

    sweep_t **sweeps; /* by ascending id */
    int nsweeps;
    int sweeps_cap;
    worker_t **workers;
    int nworkers;
    int workers_cap;
    attempt_table_t *attempts; /* live attempts by id */
    attempt_t *orphans;        /* live attempts whose worker has not said HELLO since start */
    int64_t orphan_deadline_mono;

    struct coord_out *out;
    int nout;
    int out_cap;
    uv_check_t flush_check;
    uv_idle_t flush_idle;
    uv_timer_t flush_timer;
    int64_t last_flush_mono;
    uv_timer_t tick;
    uv_signal_t sigterm;
    uv_signal_t sigint;

    int64_t next_attempt_id;
    int64_t next_retry_ms; /* wall time of the earliest failed run's retry */
    uint64_t next_msg_id;
    int sched_dirty;
    int queue_maybe_nonempty;
    int gpu_classes[COORD_GPU_CLASSES_MAX];
    int ngpu_classes;
    int64_t last_persist_mono;
    int64_t last_tick_mono;
    int stopping;
    int fatal;
    char coordinator_id[48];

    /* counters for logs and tests */
    uint64_t n_assigned;
    uint64_t n_results;
    uint64_t n_fenced;
    uint64_t n_bad_input;
    int64_t bad_log_window_mono;
    int bad_log_count;
} coord_t;

/* Fills the defaults of every option. */
void coord_config_defaults(coord_config_t *cfg);

/* Opens the store, loads state, binds the sockets, starts the watches, timers and signals.
 * On failure writes one line to err; the caller still calls coord_destroy(). */
int coord_init(coord_t *c, uv_loop_t *loop, const coord_config_t *cfg, char *err, size_t errlen);

/* Starts a graceful stop: finish the open transaction, close sockets (bounded linger), close
 * handles; the loop then ends. */
void coord_stop(coord_t *c);

/* Frees what coord_init() built (after the loop ended). */
void coord_destroy(coord_t *c);

/* Queues `env` (packed now; the caller keeps ownership of env) for sending after the next
 * commit. `attempt_id` is the attempt an ASSIGN carries (0 otherwise): if the ASSIGN cannot be
 * delivered the attempt is requeued. */
void coord_send(coord_t *c,
                void *sock,
                const uint8_t *rid,
                size_t rlen,
                Regmix__Envelope *env,
                uint64_t attempt_id);

/* Queues an Error reply. */
void coord_send_error(coord_t *c,
                      void *sock,
                      const uint8_t *rid,
                      size_t rlen,
                      uint64_t reply_to,
                      Regmix__ErrorCode code,
                      const char *fmt,
                      ...) __attribute__((format(printf, 7, 8)));

/* Opens a write transaction (lazily); on failure marks the coordinator fatal. Returns 0 or
 * -errno. */
int coord_write(coord_t *c);

/* Marks a storage failure: logs, stops the loop; main exits 1. */
void coord_fatal(coord_t *c, const char *what);

/* Logs bad input once (rate-limited) as key=value. */
void coord_log_bad(
        coord_t *c, const char *endpoint, const uint8_t *rid, size_t rlen, const char *why);

/* Handles a message that frame_recv() rejected (msg->err set) on `endpoint` ("workers",
 * "clients"): logs it and answers the peer with BAD_VERSION or BAD_MESSAGE when it has a routing
 * id; a socket-level error is logged only. */
void coord_reject_malformed(coord_t *c, void *sock, const char *endpoint, const frame_msg_t *msg);

/* Sweeps: lookup by "sw000001" or by name (the newest with that name). */
sweep_t *coord_sweep_find(coord_t *c, const char *key);
sweep_t *coord_sweep_by_id(coord_t *c, int64_t id);
/* Moves `n` runs of `sw` from one state to another in the in-memory counts and, when the sweep
 * has nothing left to do, ends it (store write and final watch events). */
void coord_sweep_count(coord_t *c, sweep_t *sw, run_state_t from, run_state_t to, int64_t n);
/* The two halves of coord_sweep_count(), for callers that send an event in between. */
void coord_sweep_count_only(coord_t *c, sweep_t *sw, run_state_t from, run_state_t to, int64_t n);
void coord_sweep_check_end(coord_t *c, sweep_t *sw);
/* Fills a SweepInfo (counts point into `counts`, which the caller provides). */
void coord_sweep_info(const sweep_t *sw, Regmix__SweepInfo *info, Regmix__RunCounts *counts);
/* Sends a WatchEvent of `kind` with `text` to every watcher of `sw`. */
void coord_sweep_event(coord_t *c, sweep_t *sw, const char *kind, const char *text, int final);
/* Cancels every run of `sw` not yet finished (queued and failed in the store, live attempts with
 * CANCEL to their workers); the sweep's own state is the caller's. Returns how many. */
uint32_t coord_sweep_cancel_runs(coord_t *c, sweep_t *sw, const char *why);
/* Adds a sweep to the in-memory table (takes ownership). */
int coord_sweep_add(coord_t *c, sweep_t *sw);
void coord_sweep_free(sweep_t *sw);
/* Rebuilds the set of GPU needs of running sweeps (the scheduler's queue classes). */
void coord_gpu_classes_update(coord_t *c);

/* Workers. */
worker_t *coord_worker_by_rid(coord_t *c, const uint8_t *rid, size_t rlen);
worker_t *coord_worker_by_id(coord_t *c, const char *worker_id);
/* What the flags of `w` say: quarantined, draining, connected (alive) or lost. */
worker_state_t coord_worker_state(const worker_t *w);
void coord_worker_persist(coord_t *c, worker_t *w);

/* Ends a live attempt: removes it from its worker (freeing its GPUs and slot) or from the
 * orphans, and from the table; frees it. Store writes are the caller's. */
void coord_attempt_drop(coord_t *c, attempt_t *a);

/* The attempt's lease passed or its worker lost it: attempt -> lost, run -> queued (or dead when
 * its attempts are spent). */
void coord_attempt_lost(coord_t *c, attempt_t *a, const char *why);

/* Cancels a live attempt (run -> cancelled, CANCEL to its worker). */
void coord_attempt_cancel(coord_t *c, attempt_t *a, const char *why);

/* Asks for a scheduling pass before the next commit. */
void coord_kick(coord_t *c);

#endif
