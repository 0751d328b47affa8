/*
 * store: the coordinator's SQLite database (docs/store.md), one file in WAL mode that only the
 * coordinator opens (an flock on the file keeps a second coordinator out).
 *
 * The schema is created and upgraded by numbered migrations at open (PRAGMA user_version); every
 * statement is prepared once at open and only ever run with bound parameters, so nothing from the
 * network reaches SQL text. Writes are grouped: store_begin() opens a transaction if none is open
 * (a no-op otherwise), and the caller commits once per loop iteration (group commit) with
 * store_commit(); nothing is acknowledged to a peer before that commit returns 0.
 *
 * States are enums here (common/states.h) and words in the database (the names of states.h's
 * table: queued, leased, ...); this file is the only place that converts between the two.
 *
 * Weights are stored as a BLOB of native doubles in domain order; losses as a JSON object.
 * All functions return 0 (or a count) or a negative errno (-EIO for an SQLite failure, whose text
 * store_errmsg() gives). Strings handed to callbacks are only valid during the callback.
 */
#ifndef REGMIX_COORD_STORE_H
#define REGMIX_COORD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "states.h"

#define STORE_SCHEMA_VERSION 5

typedef struct store store_t;

/* Opens (creating if needed) and migrates the database at `path`. On failure writes one line to
 * err. -EBUSY when another process holds the database. */
int store_open(const char *path, store_t **ret, char *err, size_t errlen);

/* synchronous = FULL (1, the default of store_open()) or NORMAL (0: a commit survives a process
 * kill, not an OS crash; for measuring what FULL costs). Returns 0 or -EIO. */
int store_set_synchronous(store_t *s, int full);

/* Commits an open transaction (best effort), finalizes statements, closes; NULL is a no-op. */
void store_close(store_t **s_p);

/* The last SQLite error text of this connection. */
const char *store_errmsg(store_t *s);

/* The connection, for store_view.c (the dashboard's reads, prepared per call). */
struct sqlite3;
struct sqlite3 *store__db(store_t *s);

/* The row loop every query of store.c and store_view.c shares: steps `st` (its parameters bound
 * by the caller) for at most `max` rows (< 0: all), hands each to row(st, data) (NULL: just
 * count) and resets `st`. Returns the number of rows read, the first negative value row()
 * returned, or -EIO. */
struct sqlite3_stmt;
typedef int (*store__row_fn)(struct sqlite3_stmt *st, void *data);
int store__rows(struct sqlite3_stmt *st, int max, store__row_fn row, void *data);

/* A TEXT column, "" for NULL. */
const char *store__text(struct sqlite3_stmt *st, int col);

/* PRAGMA user_version as found after migrations. */
int store_schema_version(store_t *s);

/* Opens a write transaction unless one is open. */
int store_begin(store_t *s);
/* Commits the open transaction, if any. */
int store_commit(store_t *s);
/* Rolls back the open transaction, if any. */
void store_rollback(store_t *s);
int store_in_txn(const store_t *s);
/* A nested unit (one submit) inside the group transaction: begin, release or roll back. */
int store_savepoint(store_t *s);
int store_savepoint_release(store_t *s);
void store_savepoint_rollback(store_t *s);

/* ---- sweeps and domains --------------------------------------------------------------------- */

typedef struct store_sweep_row {
    int64_t id; /* rowid */
    const char *sweep_id;
    const char *name;
    const char *spec_yaml;
    const char *spec_name;
    sweep_state_t state; /* ignored by store_sweep_insert when loading is set */
    int loading;         /* insert: stored as 'loading' (store_sweep_loaded() ends it), see below */
    int priority;
    int gpus;
    int max_attempts;
    int backoff_ms;
    const void *job;
    size_t job_len; /* a packed Regmix__Assign with the sweep-wide fields */
    int ndomains;
    int nruns;
    int64_t created_ms;
    int64_t updated_ms;
    int converged_after_runs;
    int rounds_closed; /* read only: an active sweep's rounds are closed (store_sweep_close_rounds) */
} store_sweep_row_t;

/* Inserts a sweep (row->id and row->sweep_id ignored); the sweep id is derived from the rowid
 * ("sw000001") and written to ret_sweep_id (size >= 32). */
int store_sweep_insert(store_t *s,
                       const store_sweep_row_t *row,
                       int64_t *ret_id,
                       char *ret_sweep_id);
int store_sweep_set_state(store_t *s, int64_t id, sweep_state_t state, int64_t now_ms);
/* A big sweep's runs go in over many transactions (client.c): its row says 'loading' until the
 * last chunk is in, and store_sweep_loaded() (in the same transaction as that chunk) makes it
 * 'running'. A 'loading' sweep is never loaded at start: store_sweeps_drop_loading() deletes it
 * with its domains and runs (never scheduled: no attempts or results refer to them), so a
 * coordinator killed mid-insert has the whole sweep or none. */
int store_sweep_loaded(store_t *s, int64_t id, int64_t now_ms);
/* Drops 'loading' sweep `id`, or every one when id is 0. */
int store_sweeps_drop_loading(store_t *s, int64_t id, int *ret_dropped);
typedef int (*store_sweep_cb)(const store_sweep_row_t *row, void *data);
int store_sweeps_foreach(store_t *s, store_sweep_cb cb, void *data);

int store_domain_insert(
        store_t *s, int64_t sweep, int idx, const char *name, double tokens, double prior);
typedef int (*store_domain_cb)(int idx, const char *name, double tokens, double prior, void *data);
int store_domains_foreach(store_t *s, int64_t sweep, store_domain_cb cb, void *data);

/* ---- runs ------------------------------------------------------------------------------------ */

int store_run_insert(store_t *s,
                     int64_t sweep,
                     int idx,
                     uint64_t seed,
                     const double *w,
                     int n,
                     int priority,
                     int gpus,
                     int64_t now_ms);

/* Calls cb for every (sweep, state, count) group; used once at start. */
typedef int (*store_count_cb)(int64_t sweep, run_state_t state, int64_t count, void *data);
int store_run_counts(store_t *s, store_count_cb cb, void *data);

typedef struct store_queued {
    int64_t run;
    int64_t sweep;
    int idx;
    int attempts; /* attempts spent so far */
    int priority;
    uint64_t seed;
} store_queued_t;

/* Up to `max` queued runs that need exactly `gpus` GPUs, highest priority first, then FIFO.
 * Returns how many were written to out. */
int store_queue_fetch(store_t *s, int gpus, int max, store_queued_t *out);

/* Loads a run's weights (n doubles) into w; returns how many were stored or -ENOENT. */
int store_run_weights(store_t *s, int64_t run, double *w, int n);

/* The weights (d each, row-major into w: room for max rows) of up to `max` runs of `sweep` that
 * can still finish (queued, leased, running, failed), by index: an active round's pending runs.
 * Returns how many rows were written, or a negative errno. */
int store_runs_open_weights(store_t *s, int64_t sweep, int d, int max, double *w);

/* Claims a queued run for `attempt` (state queued -> leased, attempts + 1). Returns 1 when this
 * call claimed it, 0 when the run was not queued any more. */
int store_run_claim(store_t *s, int64_t run, int64_t attempt, int64_t now_ms);

/* Moves the run whose live attempt is `attempt` from one of the live states to `state`; returns
 * 1 when it changed, 0 when it was not live with that attempt (fenced). next_try_at only for
 * "failed". */
int store_run_finish(store_t *s,
                     int64_t run,
                     int64_t attempt,
                     run_state_t state,
                     int64_t next_try_at,
                     int64_t now_ms);
/* leased -> running for the live attempt; returns 1 or 0. */
int store_run_started(store_t *s, int64_t run, int64_t attempt, int64_t now_ms);

/* Sets all runs of `sweep` in state `from` to `to`; returns the count changed. */
int store_runs_move(store_t *s, int64_t sweep, run_state_t from, run_state_t to, int64_t now_ms);

/* A run of a sweep by index: its rowid, state and live attempt (0 if none). -ENOENT when
 * absent. */
int store_run_lookup(store_t *s,
                     int64_t sweep,
                     int idx,
                     int64_t *ret_run,
                     run_state_t *ret_state,
                     int64_t *ret_live);
/* Sets one run's state unconditionally from `from` (returns 1 or 0). */
int store_run_set_state(store_t *s, int64_t run, run_state_t from, run_state_t to, int64_t now_ms);

/* Moves failed runs whose retry time has come back to queued; cb per run moved. Returns count. */
typedef void (*store_retry_cb)(int64_t sweep, void *data);
int store_runs_retry_due(store_t *s, int64_t now_ms, store_retry_cb cb, void *data);
/* Earliest next_try_at among failed runs, or INT64_MAX. */
int64_t store_runs_next_retry(store_t *s);

/* ---- attempts -------------------------------------------------------------------------------- */

/* Largest attempt id ever used (0 for none). */
int64_t store_attempt_max_id(store_t *s);
int store_attempt_insert(store_t *s,
                         int64_t id,
                         int64_t run,
                         int attempt_no,
                         const char *worker,
                         const char *gpu_indices,
                         int64_t now_ms,
                         int64_t lease_deadline_ms);
int store_attempt_set_state(store_t *s, int64_t id, attempt_state_t state, int64_t now_ms);
int store_attempt_started(store_t *s, int64_t id, int64_t now_ms);
int store_attempt_failed(store_t *s,
                         int64_t id,
                         attempt_state_t state,
                         int exit_code,
                         int sig,
                         const char *reason,
                         int64_t now_ms);

typedef struct store_attempt_row {
    int64_t id;
    int64_t run;
    int64_t sweep;
    int run_idx;
    int attempt_no;
    const char *worker;
    attempt_state_t state;
    const char *gpu_indices;
} store_attempt_row_t;
typedef int (*store_attempt_cb)(const store_attempt_row_t *row, void *data);
/* Every attempt in state leased or running (used at start to re-adopt). */
int store_attempts_live(store_t *s, store_attempt_cb cb, void *data);

/* ---- results and progress ---------------------------------------------------------------------- */

/* Inserts the result of (run, attempt). Returns 1 stored, 0 when that pair already has one. */
int store_result_insert(store_t *s,
                        int64_t run,
                        int64_t attempt,
                        int64_t sweep,
                        const char *worker,
                        const char *losses_json,
                        const char *bpb_json,
                        uint64_t tokens,
                        double seconds,
                        int64_t now_ms);

typedef struct store_result_row {
    int run_idx;
    int attempt_no;
    const char *worker;
    const double *weights;
    int nweights;
    const char *losses_json;
    double seconds;
} store_result_row_t;
typedef int (*store_result_cb)(const store_result_row_t *row, void *data);
/* The results of runs after_idx < idx <= last_idx, in idx order: a range costs its runs (the
 * runs(sweep, idx) index drives it), however many results the sweep has (refit.c reads its
 * snapshot a range per loop iteration). */
int store_results_range(store_t *s,
                        int64_t sweep,
                        int64_t after_idx,
                        int64_t last_idx,
                        store_result_cb cb,
                        void *data);
/* One page of the results: runs with idx > after_idx (-1: from the first), in idx order, at
 * most `limit` (the runs(sweep, idx) index drives it: a page costs its rows, not the sweep's).
 * Returns the rows passed to cb, or -errno. */
int store_results_page(
        store_t *s, int64_t sweep, int64_t after_idx, int limit, store_result_cb cb, void *data);
int store_results_count(store_t *s, int64_t sweep);

int store_progress_insert(store_t *s,
                          int64_t attempt,
                          uint64_t step,
                          double loss,
                          double lr,
                          uint64_t tokens,
                          double tps,
                          int64_t now_ms);

/* ---- fits ------------------------------------------------------------------------------------ */

typedef struct store_fit_row {
    int64_t sweep;
    int fit_no;
    int runs_used;
    const char *model;
    const char *metrics_json;  /* fitpipe_record_metrics_json() */
    const char *proposal_json; /* {"domain": weight, ...} in domain order */
    double predicted;
    double l1_moved; /* NAN for the first fit (stored as NULL) */
    double seconds;
    int64_t created_ms;
} store_fit_row_t;

int store_fit_insert(store_t *s, const store_fit_row_t *row);
typedef int (*store_fit_cb)(const store_fit_row_t *row, void *data);
/* The fits of `sweep` by fit number. */
int store_fits_foreach(store_t *s, int64_t sweep, store_fit_cb cb, void *data);
/* The same for the fits numbered above `after` only (the dashboard reads the latest ones). */
int store_fits_after(store_t *s, int64_t sweep, int after, store_fit_cb cb, void *data);
/* Marks a sweep converged after `runs` results. */
int store_sweep_converged(store_t *s, int64_t id, int runs, int64_t now_ms);
/* An active sweep's round added runs (in the transaction that stores them and the fit that
 * chose them): its run count is now nruns. */
int store_sweep_set_nruns(store_t *s, int64_t id, int nruns, int64_t now_ms);
/* An active sweep gets no more rounds (a refit failed to choose one): it may end when its runs
 * have. */
int store_sweep_close_rounds(store_t *s, int64_t id, int64_t now_ms);

/* ---- targets --------------------------------------------------------------------------------- */

typedef struct store_target_row {
    int64_t sweep;
    const char *role; /* "target" or "baseline" */
    target_state_t state;
    const char *launcher;
    int ranks;
    int64_t pid;
    const char *log_path;
    const char *weights_json;
    const char *losses_json;
    double objective; /* NAN: none (NULL) */
    int64_t step;
    double loss; /* NAN: none */
    const char *detail;
    int64_t created_ms;
    int64_t updated_ms;
    const char *handle; /* the launched job (follow.h); "" before it was launched */
} store_target_row_t;

/* Inserts or replaces the row of (sweep, role). */
int store_target_upsert(store_t *s, const store_target_row_t *row);
typedef int (*store_target_cb)(const store_target_row_t *row, void *data);
int store_targets_foreach(store_t *s, store_target_cb cb, void *data);

/* ---- workers --------------------------------------------------------------------------------- */

typedef struct store_worker_row {
    const char *worker_id;
    const char *host;
    const char *boot_id;
    const char *gpus_json;
    worker_state_t state;
    const char *software_version;
    int slots;
    int consecutive_failures;
    int64_t last_seen_ms;
    int64_t done;
    int64_t failed;
} store_worker_row_t;
int store_worker_upsert(store_t *s, const store_worker_row_t *row, int64_t now_ms);
/* Deletes a worker's row (the worker limit forgets long-gone workers). Returns 0 or -errno. */
int store_worker_delete(store_t *s, const char *worker_id);
typedef int (*store_worker_cb)(const store_worker_row_t *row, void *data);
int store_workers_foreach(store_t *s, store_worker_cb cb, void *data);

#endif
