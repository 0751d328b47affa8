/*
 * coord: the coordinator's shared state, the bottom layer every other coordinator module uses
 * (docs/coordinator.md). It calls nothing above it: not the handlers, not the daemon.
 *
 * One coord_t lives on the loop thread and owns: the store (SQLite), the sweeps (all of them, in
 * memory: few and small), the workers seen, the live attempts (leased or running; bounded by
 * workers × slots), the target launch records, and the outbox. Runs stay in SQLite. It does not
 * own sockets, handles or signals: those are the daemon's (daemon.h), which builds a coord_t with
 * coord_new() and drains its outbox; a unit test builds one the same way on a store of its own
 * and reads the outbox instead of a socket.
 *
 * Persist before send: every reply, ack and ASSIGN is packed and queued with coord_send() for an
 * endpoint (workers or clients); the daemon commits the open transaction first and only then
 * sends what was queued. Writes join the open transaction through coord_write(); a storage
 * failure is fatal (coord_fatal(): the loop stops, nothing queued is sent, the restart recovers
 * from the database).
 *
 * State changes of sweeps, runs, attempts and targets are not made here: they all go through
 * transition.h. This layer gives the records, their lookups and their memory.
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
#define COORD_WORKER_MSG_MAX  (256u * 1024u)        /* a RESULT of 1024 domains fits */
#define COORD_CLIENT_MSG_MAX  ((1u << 20) + 65536u) /* a spec of 1 MiB and its envelope */
#define COORD_SNDHWM          10000                 /* messages queued per peer */
#define COORD_RCVHWM          1000

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
    int quarantine_ms;     /* then, after this long, one attempt on probation (default 10 min) */
    int linger_ms;         /* ZMQ_LINGER at shutdown */
    int progress_every_ms; /* thinning of stored progress, per attempt */
    int target_poll_ms;    /* how often a Slurm job or MPIJob target is polled */
    int commit_window_ms;  /* group commit: at most one commit per window (0: per iteration) */
    const char *curve_secret_path; /* CURVE server secret key (Z85), NULL: plain endpoints */
    const char *curve_allow_path;  /* allowed keys on both endpoints (--curve-allow, legacy) */
    const char *curve_allow_workers_path; /* allowed worker keys, NULL: curve_allow_path */
    const char *curve_allow_clients_path; /* allowed client keys, NULL: curve_allow_path */
    int insecure;       /* bind non-loopback endpoints without CURVE allow lists */
    int sync_normal;    /* SQLite synchronous = NORMAL instead of FULL (benchmarks only) */
    int allow_commands; /* run `launcher: command` targets (the operator's choice, not a spec's) */
    const char *metrics_addr; /* HTTP /metrics and /healthz ("HOST:PORT"), NULL: none */
    const char *targets_dir;  /* work directories of target launches; NULL: DB dir/targets */
    const char *trainer;      /* regmix-train as launch hosts see it; NULL: "regmix-train" */
} coord_config_t;

/* Where a queued message goes. */
typedef enum coord_endpoint {
    COORD_WORKERS = 0,
    COORD_CLIENTS = 1,
} coord_endpoint_t;

/* One queued message: packed, waiting for the commit. */
typedef struct coord_out {
    coord_endpoint_t ep;
    uint8_t rid[FRAME_MAX_ROUTING_ID];
    size_t rlen;
    uint8_t *buf;
    size_t len;
    uint64_t attempt_id; /* the attempt an ASSIGN carries, else 0 */
} coord_out_t;

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
    int rounds_closed; /* active sweep: no more rounds will come (a refit failed to choose one; stored) */
    struct fitpipe_job *fit_job;     /* in flight, or NULL */
    struct refit_reader *fit_reader; /* its snapshot being read (refit.c), or NULL */
} sweep_t;

/* A target launch (target.h): the row of (sweep, role) in `targets`, and its process. */
typedef struct target {
    struct target *next;
    struct coord *c; /* the coordinator it belongs to (for the launcher's callbacks) */
    int64_t sweep;
    char role[16];
    target_state_t state;
    char launcher[16];
    int ranks;
    int64_t pid;
    char *log_path;
    char *weights_json;
    char *losses_json;
    char *detail;
    double objective;
    int64_t step;
    double loss;
    int64_t created_ms;
    int64_t updated_ms;
    char *handle;               /* the launched job as stored text (follow.h), "" before */
    struct launcher_run *run;   /* our own child process (launcher.h), or NULL */
    struct launcher_tail *tail; /* its progress file, read as it grows */
    int polling;                /* a poll (squeue, kubectl, ...) of it is in flight */
    int cancelling;             /* a cancel was asked for: its end is `cancelled` */
    int missing;                /* polls in a row that found no trace of the job */
    int64_t next_poll_mono;
    int64_t last_progress_mono;
    int64_t last_curve_mono; /* the last point of its loss curve (store_view.h) */
} target_t;

typedef struct worker {
    char worker_id[COORD_WORKER_ID_MAX + 1];
    char *host;
    char *boot_id;
    char *software_version;
    uint8_t rid[FRAME_MAX_ROUTING_ID];
    size_t rlen;
    char key[FRAME_KEY_LEN + 1]; /* CURVE key bound to this id by its first HELLO ("" none) */
    int connected;               /* has said HELLO on this routing id (rid valid) */
    int alive;                   /* heard from within 3 heartbeats */
    int draining;
    int quarantined;
    int64_t quarantined_mono; /* when (this process's clock); probation after cfg.quarantine_ms */
    int probation;            /* released from quarantine: one attempt at a time until a success */
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
    target_t *targets; /* target launches (target.h) */
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

    coord_out_t *out; /* the outbox, in queue order */
    int nout;
    int out_cap;
    /* Called when there is work for the loop (something queued, a scheduling pass asked for):
     * the daemon wakes its flush here. NULL: nobody to wake (a test drains the outbox itself). */
    void (*on_work)(struct coord *c);
    /* 1 when the route to a worker's connection is still open (the ROUTER would deliver to
     * it); set by the daemon. NULL: assume open. */
    int (*route_live)(struct coord *c, const uint8_t *rid, size_t rlen);
    void *owner; /* the daemon that set on_work */

    int64_t next_attempt_id;
    int64_t next_retry_ms; /* wall time of the earliest failed run's retry */
    uint64_t next_msg_id;
    int sched_dirty;
    int queue_maybe_nonempty;
    int gpu_classes[COORD_GPU_CLASSES_MAX];
    int ngpu_classes;
    int64_t last_persist_mono;
    int stopping;
    int fatal;
    int nloading;  /* submits accepted and not yet stored or refused (client.c) */
    int nsampling; /* sampling threads running (client.c) */
    struct client_submit *sample_wait, *sample_wait_tail; /* submits waiting for a sampler */
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

/* Builds the shared state on `loop` with `cfg` (copied; its strings must outlive the coord_t)
 * and takes the store (*store_p is NULLed, also on failure, where it is closed). Loads nothing:
 * the daemon loads the store's rows. Returns 0 or -ENOMEM. */
int coord_new(uv_loop_t *loop, const coord_config_t *cfg, store_t **store_p, coord_t **ret);

/* Frees the sweeps, workers, live attempts, target records and the outbox (never sent), commits
 * the open transaction unless fatal (then rolls back) and closes the store; NULL and *c_p NULL
 * are harmless no-ops; *c_p is NULLed. Target processes must have exited (target_stop_all()). */
void coord_destroy(coord_t **c_p);

/* Queues `env` (packed now; the caller keeps ownership of env) for `ep` after the next commit.
 * `attempt_id` is the attempt an ASSIGN carries (0 otherwise): if the ASSIGN cannot be delivered
 * the daemon requeues the attempt. */
void coord_send(coord_t *c,
                coord_endpoint_t ep,
                const uint8_t *rid,
                size_t rlen,
                Regmix__Envelope *env,
                uint64_t attempt_id);

/* Queues an Error reply. */
void coord_send_error(coord_t *c,
                      coord_endpoint_t ep,
                      const uint8_t *rid,
                      size_t rlen,
                      uint64_t reply_to,
                      Regmix__ErrorCode code,
                      const char *fmt,
                      ...) __attribute__((format(printf, 7, 8)));

/* Hands the outbox to the caller (a malloc'd array of *ret_n messages, NULL when empty; free
 * each buf, then the array) and starts an empty one. */
void coord_outbox_take(coord_t *c, coord_out_t **ret, int *ret_n);

/* Opens a write transaction (lazily); on failure marks the coordinator fatal. Returns 0 or
 * -errno. */
int coord_write(coord_t *c);

/* Marks a storage failure: logs, rolls back, stops the loop; main exits 1. */
void coord_fatal(coord_t *c, const char *what);

/* Logs bad input once (rate-limited) as key=value. */
void coord_log_bad(
        coord_t *c, const char *endpoint, const uint8_t *rid, size_t rlen, const char *why);

/* Handles a message that frame_recv() rejected (msg->err set) on `ep`: logs it and answers the
 * peer with BAD_VERSION or BAD_MESSAGE when it has a routing id; a socket-level error is logged
 * only. */
void coord_reject_malformed(coord_t *c, coord_endpoint_t ep, const frame_msg_t *msg);

/* Asks for a scheduling pass before the next commit. */
void coord_kick(coord_t *c);

/* ---- sweeps ---------------------------------------------------------------------------------- */

/* Lookup by "sw000001" or by name (the newest with that name); NULL when none. */
sweep_t *coord_sweep_find(coord_t *c, const char *key);
sweep_t *coord_sweep_by_id(coord_t *c, int64_t id);
/* Adds a sweep to the in-memory table (takes ownership on success: *sw_p is NULLed). Its id
 * must be larger than every id in the table. */
int coord_sweep_add(coord_t *c, sweep_t **sw_p);
/* Frees a sweep not in the table (or the table's at coord_destroy()); NULL is a no-op. */
void coord_sweep_destroy(sweep_t **sw_p);
/* Fills a SweepInfo (counts point into `counts`, which the caller provides). */
void coord_sweep_info(const sweep_t *sw, Regmix__SweepInfo *info, Regmix__RunCounts *counts);
/* Sends a WatchEvent of `kind` with `text` to every watcher of `sw`; `final` drops them. */
void coord_sweep_event(coord_t *c, sweep_t *sw, const char *kind, const char *text, int final);
/* Rebuilds the set of GPU needs of open sweeps (the scheduler's queue classes). */
void coord_gpu_classes_update(coord_t *c);

/* ---- workers --------------------------------------------------------------------------------- */

/* A new worker record in the table (empty strings, nothing connected). NULL: out of memory. */
worker_t *coord_worker_new(coord_t *c, const char *worker_id);
worker_t *coord_worker_by_rid(coord_t *c, const uint8_t *rid, size_t rlen);
worker_t *coord_worker_by_id(coord_t *c, const char *worker_id);
/* What the flags of `w` say: quarantined, draining, connected (alive) or lost. */
worker_state_t coord_worker_state(const worker_t *w);
/* Writes the workers row of `w` in the open transaction. */
void coord_worker_persist(coord_t *c, worker_t *w);
/* Forgets `w` (no connection, no live or orphaned attempts: the caller checks): deletes its row
 * in the open transaction and frees it. Returns 0 or -errno (storage failure: fatal). */
int coord_worker_forget(coord_t *c, worker_t *w);

/* ---- attempts and targets ------------------------------------------------------------------ */

/* Forgets a live attempt: removes it from its worker (freeing its GPUs and slot) or from the
 * orphans, and from the table; frees it. Store writes and counts are transition.h's. */
void coord_attempt_drop(coord_t *c, attempt_t *a);

/* A new target record of (sweep, role) in c->targets (state UNSPECIFIED). NULL: no memory. */
target_t *coord_target_new(coord_t *c, int64_t sweep, const char *role);
target_t *coord_target_find(coord_t *c, int64_t sweep, const char *role);

#endif
