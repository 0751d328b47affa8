/*
 * transition: every state change of a sweep, run, attempt or target goes through here
 * (life cycles and names: common/states.h; layers: docs/coordinator.md).
 *
 * Each function makes one change whole: it writes the rows in the open transaction (through
 * coord_write(), so the change commits before anything queued about it is sent), moves the
 * in-memory state and the sweep's run counts, logs it once with the object's id, and tells the
 * sweep's watchers. A sweep or target change the life cycle does not allow is refused (logged,
 * -EINVAL), never made (a target row read back from the database can be in any state); run and
 * attempt changes are chosen here from the live states, so an illegal one is a programmer's
 * mistake (assert). A storage failure marks the coordinator fatal (coord_fatal()) and returns
 * -EIO.
 *
 * "An attempt ends" exists once (transition_attempt_end()); done, failed, lost and cancelled are
 * its four callers. Sweeps end here too: when a count move leaves a sweep with nothing that can
 * still finish, it becomes done (or failed: no run done) or stays converged, and its watchers get
 * the final `end` event.
 *
 * This layer sits on coord.h and the store; it calls nothing above it (no handler, no daemon).
 */
#ifndef REGMIX_COORD_TRANSITION_H
#define REGMIX_COORD_TRANSITION_H

#include "coord.h"

/* ---- sweeps ---------------------------------------------------------------------------------- */

/* Moves `n` runs of `sw` from one state to another in the in-memory counts (the rows moved
 * already) and asks for a scheduling pass when runs became queued. Does not end the sweep. */
void transition_sweep_count(coord_t *c, sweep_t *sw, run_state_t from, run_state_t to, int64_t n);

/* Ends `sw` when it is open and nothing of it can still finish: done, failed, or converged
 * (a converged sweep stays converged); stores it and sends the final `end` event. */
void transition_sweep_check_end(coord_t *c, sweep_t *sw);

/* The sweep converged after `runs` results (its fit number is sw->nfits): stored, `converged`
 * event. Allowed from running and from done. Returns 0, -EINVAL or -EIO. */
int transition_sweep_converged(coord_t *c, sweep_t *sw, int runs);

/* Cancels every run of `sw` that can still finish (queued and failed rows, live attempts with
 * CANCEL to their workers); the sweep's own state is unchanged. Returns how many. */
uint32_t transition_sweep_cancel_runs(coord_t *c, sweep_t *sw, const char *why);

/* Cancels the open sweep `sw` and its runs (final `end` event). Returns how many runs were
 * cancelled (>= 0), -EINVAL when the sweep is not open, or -EIO. */
int transition_sweep_cancel(coord_t *c, sweep_t *sw, const char *why);

/* Whether `sw` is an active sweep that still waits for a round (sampling.strategy active, fewer
 * runs than its budget, running, rounds not closed): it does not end when its runs do. */
int transition_sweep_awaits_round(const sweep_t *sw);

/* An active round: stores the k mixtures `w` (k, d) as runs sw->nruns .. sw->nruns + k - 1
 * (queued, seeds from sampling.seed and the index) and the sweep's new run count, in the open
 * transaction (the refit's fit row commits with them: a round is added exactly once); `round`
 * event. Returns 0 or -EIO. */
int transition_sweep_add_runs(coord_t *c, sweep_t *sw, const double *w, int k, int fit_no);

/* Closes the rounds of the active sweep `sw` (a refit failed to choose one), durably: no round
 * will come, so it ends when its runs have, also after a restart. Returns 0 or -EIO. */
int transition_sweep_close_rounds(coord_t *c, sweep_t *sw);

/* ---- runs ------------------------------------------------------------------------------------ */

/* Cancels run `idx` of `sw`: queued or failed rows directly, a live one through its attempt.
 * Returns 1 cancelled, 0 when it was live but its attempt is gone, -ENOENT when there is no such
 * run, -EINVAL when it already finished (its state in *ret_state), or -EIO. */
int transition_run_cancel(coord_t *c, sweep_t *sw, int idx, run_state_t *ret_state);

/* Failed runs whose retry time (wall clock `now_ms`) has come go back to queued. */
void transition_runs_retry(coord_t *c, int64_t now_ms);

/* ---- attempts -------------------------------------------------------------------------------- */

/* Claims queued run `q` of `sw` for worker `w`: run queued -> leased, a new attempt row (leased,
 * GPUs `gpu_mask` of w->gpu_index, listed in `gpu_indices` "0,2"), a live attempt in memory on
 * w's list. Returns 0 with *ret set, -EAGAIN when the run was not queued any more, or -EIO. */
int transition_attempt_lease(coord_t *c,
                             worker_t *w,
                             sweep_t *sw,
                             const store_queued_t *q,
                             uint64_t gpu_mask,
                             const char *gpu_indices,
                             attempt_t **ret);

/* STARTED: attempt and run leased -> running. */
void transition_attempt_started(coord_t *c, attempt_t *a);

/* How an attempt ends; see transition_attempt_end(). */
typedef struct transition_end {
    attempt_state_t attempt; /* DONE, FAILED, LOST or CANCELLED */
    run_state_t run;         /* where its run goes */
    int64_t next_try_ms;     /* RUN_STATE_FAILED: when it is retried */
    int exit_code;           /* FAILED: as the worker reported it */
    int term_signal;
    const char *reason;
    /* DONE: the result row, stored only when the run was live with this attempt */
    const char *losses_json;
    const char *bpb_json;
    uint64_t tokens;
    double seconds;
    /* the watch event sent before the sweep may end (NULL kind: none) */
    const char *event_kind;
    const char *event_text;
} transition_end_t;

/* Ends the live attempt `a`: its row, its run's row (only when the run's live attempt is `a`:
 * fencing in the store), the sweep's counts, the event, the sweep's end; `a` is freed on return
 * unless the storage failed (-EIO, `a` kept: the coordinator stops). Returns 1 when the run moved,
 * 0 when the store fenced it, or -EIO. */
int transition_attempt_end(coord_t *c, attempt_t *a, const transition_end_t *e);

/* A RESULT for `a`: run done, the result stored, `result` event. Returns 1 accepted, 0 fenced,
 * or < 0. */
int transition_attempt_done(coord_t *c,
                            attempt_t *a,
                            const char *losses_json,
                            const char *bpb_json,
                            uint64_t tokens,
                            double seconds);

/* A failure of `a` (FAILED, or a result that cannot be stored): the run is retried after
 * proxy.backoff_ms · 2^(attempt_no − 1) (failed until then; queued at once without backoff)
 * while attempts are left, else dead; `failed` event. Returns as transition_attempt_end(). */
int transition_attempt_failed(
        coord_t *c, attempt_t *a, int exit_code, int term_signal, const char *reason);

/* The lease passed or the worker lost `a`: attempt lost, run queued again (dead when its
 * attempts are spent). */
void transition_attempt_lost(coord_t *c, attempt_t *a, const char *why);

/* Cancels `a`: run cancelled, CANCEL to its worker when connected. */
void transition_attempt_cancel(coord_t *c, attempt_t *a, const char *why);

/* ---- targets --------------------------------------------------------------------------------- */

/* Moves target `t` to `to` with `detail` (NULL: keep it) and writes its row. Returns 0, -EINVAL
 * (refused: logged, nothing changed) or -EIO. */
int transition_target(coord_t *c, target_t *t, target_state_t to, const char *detail);

/* Writes the row of `t` as it is (progress: step, loss), without a state change. */
void transition_target_save(coord_t *c, target_t *t);

#endif
