/*
 * store_view: what the dashboard and the report read from the store beyond the daemon's own
 * tables (docs/dashboard.md), and the two small writes that feed them: the latest fit's
 * out-of-fold predictions per sweep (fit_oof, one row per sweep, replaced by each refit) and the
 * target runs' loss curves (target_progress, one row per persisted progress line, as thinned as
 * the targets row itself).
 *
 * Every read is bounded by its caller's limit (pages of results and runs, thinned curves), so a
 * request costs the loop thread the same on a 10⁶-run sweep as on a small one. Statements are
 * prepared per call: these run a few times a second at most (a page open, a refit, a target's
 * progress every progress_every_ms), never per job. Writes join the open group transaction
 * (the caller has called coord_write()). Errors are negative errno values; strings handed to
 * callbacks are valid only during the callback.
 */
#ifndef REGMIX_COORD_STORE_VIEW_H
#define REGMIX_COORD_STORE_VIEW_H

#include <stdint.h>

#include "store.h"

/* Replaces the sweep's out-of-fold record with `json` (fit number fit_no). */
int store_view_oof_set(store_t *s, int64_t sweep, int fit_no, const char *json);
/* The sweep's out-of-fold record as a malloc'd string in *ret (NULL when none). Returns 0. */
int store_view_oof_get(store_t *s, int64_t sweep, char **ret);

/* Appends one point of the (sweep, role) target run's loss curve. */
int store_view_target_point(
        store_t *s, int64_t sweep, const char *role, int64_t step, double loss, int64_t now_ms);
/* Calls cb for at most about `max` points of the curve by step, evenly thinned (the last point
 * always included). */
typedef int (*store_view_point_cb)(int64_t step, double loss, void *data);
int store_view_target_curve(
        store_t *s, int64_t sweep, const char *role, int max, store_view_point_cb cb, void *data);

/* One result, for pages of them; id is the cursor (results rowid, increasing). */
typedef struct store_view_result {
    int64_t id;
    int run_idx;
    int attempt_no;
    const char *worker;
    const double *weights;
    int nweights;
    const char *losses_json;
    double seconds;
} store_view_result_t;
typedef int (*store_view_result_cb)(const store_view_result_t *row, void *data);
/* Up to `limit` results of the sweep with id > after, by id. Returns how many, or -errno. */
int store_view_results_page(
        store_t *s, int64_t sweep, int64_t after, int limit, store_view_result_cb cb, void *data);

/* One run for the runs table: its state, attempts so far, last worker and losses when done. */
typedef struct store_view_run {
    int idx;
    const char *state;
    int attempts;
    const char *worker; /* of its latest attempt, "" if none */
    const double *weights;
    int nweights;
    const char *losses_json; /* NULL unless it has a result */
} store_view_run_t;
typedef int (*store_view_run_cb)(const store_view_run_t *row, void *data);
/* Up to `limit` runs of the sweep with idx >= offset, by idx. Returns how many, or -errno. */
int store_view_runs_page(
        store_t *s, int64_t sweep, int offset, int limit, store_view_run_cb cb, void *data);

#endif
