/*
 * states: the life cycles of sweeps, runs, attempts, targets and workers as enums, with the one
 * table of their names (the words stored in SQLite, shown by regmixctl and /metrics) and the
 * transitions each allows.
 *
 * In memory every state is one of these enums; a name appears only at a boundary: a store row
 * (coordinator/store.c), a reply string (TargetInfo.state, WorkerInfo.state), a log line, the
 * CLI's output. Run and sweep values equal the protocol's RunState and SweepState (a cast
 * converts; states.c checks it at compile time).
 *
 *   run:     queued -> leased -> running -> done | failed | dead | cancelled | queued;
 *            failed (waiting for its retry) -> queued | cancelled; queued -> cancelled
 *   sweep:   running -> converged | done | failed | cancelled; converged -> cancelled;
 *            done -> converged (its last refit converged after every run finished)
 *   attempt: leased -> running -> done | failed | lost | cancelled (leased may end directly)
 *   target:  pending -> running | failed | cancelled; running -> done | failed | cancelled;
 *            failed | cancelled -> pending (relaunch). One life cycle for every launcher:
 *            pending is "committed, submitted, or queued by Slurm/Kubernetes", running is "the
 *            job runs" (coordinator/target.h)
 *   worker:  connected | lost | draining | quarantined (derived flags, not a stored machine)
 *
 * Nothing here allocates; the names are static strings.
 */
#ifndef REGMIX_STATES_H
#define REGMIX_STATES_H

typedef enum run_state {
    RUN_STATE_UNSPECIFIED = 0,
    RUN_STATE_QUEUED = 1,
    RUN_STATE_LEASED = 2,
    RUN_STATE_RUNNING = 3,
    RUN_STATE_DONE = 4,
    RUN_STATE_FAILED = 5, /* waiting for a retry (next_try_at) */
    RUN_STATE_DEAD = 6,   /* its attempts are spent */
    RUN_STATE_CANCELLED = 7,
    RUN_STATE__COUNT
} run_state_t;

typedef enum sweep_state {
    SWEEP_STATE_UNSPECIFIED = 0,
    SWEEP_STATE_RUNNING = 1,
    SWEEP_STATE_CONVERGED = 2,
    SWEEP_STATE_DONE = 3,
    SWEEP_STATE_CANCELLED = 4,
    SWEEP_STATE_FAILED = 5,
    SWEEP_STATE__COUNT
} sweep_state_t;

typedef enum attempt_state {
    ATTEMPT_STATE_UNSPECIFIED = 0,
    ATTEMPT_STATE_LEASED,
    ATTEMPT_STATE_RUNNING,
    ATTEMPT_STATE_DONE,
    ATTEMPT_STATE_FAILED,
    ATTEMPT_STATE_LOST, /* its lease passed or its worker lost it */
    ATTEMPT_STATE_CANCELLED,
    ATTEMPT_STATE__COUNT
} attempt_state_t;

typedef enum target_state {
    TARGET_STATE_UNSPECIFIED = 0,
    TARGET_STATE_PENDING, /* row committed; submitted or queued, not started yet */
    TARGET_STATE_RUNNING, /* the job runs (our child, a Slurm job, an MPIJob) */
    TARGET_STATE_DONE,
    TARGET_STATE_FAILED,
    TARGET_STATE_CANCELLED,
    TARGET_STATE__COUNT
} target_state_t;

typedef enum worker_state {
    WORKER_STATE_UNSPECIFIED = 0,
    WORKER_STATE_CONNECTED,
    WORKER_STATE_LOST,
    WORKER_STATE_DRAINING,
    WORKER_STATE_QUARANTINED,
    WORKER_STATE__COUNT
} worker_state_t;

/* The name of a state ("queued", ...); "unspecified" for a value out of range. */
const char *states_run_name(run_state_t s);
const char *states_sweep_name(sweep_state_t s);
const char *states_attempt_name(attempt_state_t s);
const char *states_target_name(target_state_t s);
const char *states_worker_name(worker_state_t s);

/* Parses a name; returns the state, or 0 (UNSPECIFIED) for NULL or an unknown word. */
run_state_t states_run_parse(const char *name);
sweep_state_t states_sweep_parse(const char *name);
attempt_state_t states_attempt_parse(const char *name);
target_state_t states_target_parse(const char *name);
worker_state_t states_worker_parse(const char *name);

/* 1 when the life cycle above allows from -> to, else 0. */
int states_run_allowed(run_state_t from, run_state_t to);
int states_sweep_allowed(sweep_state_t from, sweep_state_t to);
int states_attempt_allowed(attempt_state_t from, attempt_state_t to);
int states_target_allowed(target_state_t from, target_state_t to);

/* A run that can still finish (queued, leased, running, or failed waiting for a retry). */
int states_run_open(run_state_t s);
/* A run held by a live attempt (leased or running). */
int states_run_live(run_state_t s);
/* A sweep that still hands out runs (running or converged). */
int states_sweep_open(sweep_state_t s);
/* A target that is launched and must not be launched again on its own (pending, running,
 * done). */
int states_target_launched(target_state_t s);
/* A target whose life cycle ended (done, failed, cancelled). */
int states_target_final(target_state_t s);

#endif
