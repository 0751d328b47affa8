/*
 * fitter: one refit of a sweep's regression (DESIGN.md §3.4-3.6), as a pure function over a
 * snapshot of the results, and the convergence verdict that follows from it.
 *
 * fitter_run() takes the done runs' mixture weights (n, d), their losses (n, m) by column name,
 * the objective (objective.h syntax over the loss names: a name, `mean`, or `a=1,b=0.5`), the
 * regression settings, the Dirichlet concentration of the simulation (the token prior) and the
 * proposals of the previous refits. It scores the model by k-fold cross-validation (out-of-fold
 * Spearman, Pearson, MSE, R²), fits it on all usable runs, simulates candidates and averages the
 * top_k (simulate.h): that average is the proposal. It touches no loop, socket or database and
 * keeps no state, so it runs in libuv's thread pool; the result is a function of the inputs and
 * settings.seed alone (XGBoost's hist method, the k-fold split and the simulation are seeded and
 * thread-count independent).
 *
 * Convergence (§3.6) holds when all of: runs used >= min_runs; out-of-fold Spearman >=
 * min_spearman; and the proposal is within l1_tol (L1) of each of the previous stable_refits
 * proposals, i.e. it has not moved by l1_tol or more over the last stable_refits refits, so a slow
 * drift (each step small) is caught as well as a jump. Before stable_refits earlier proposals exist
 * the sweep is still "moving".
 *
 * Hook-up in the coordinator's loop (the loop owns the store; this module owns nothing of it):
 *   1. after a RESULT is stored, call fitter_should_refit(refit_every, cv_folds, results_now,
 *      results_at_last_fit, total_runs, fit_in_flight); when it says yes,
 *   2. read the sweep's done results (weights in domain order, per-domain losses in domain order,
 *      NAN where a domain is missing) and the proposals of its earlier fits (oldest first) into a
 *      fitter_input_t (borrowed arrays are fine: fitter_queue() copies them before returning),
 *      fill a fitter_settings_t with fitter_settings_from_spec(), the target text with
 *      fitter_target_text(), the prior with each spec domain's `prior`;
 *   3. fitter_queue(loop, &in, &settings, done_cb, sweep, &job) runs fitter_run() in the thread
 *      pool and calls done_cb on the loop thread with the record (or an error): store it as fit
 *      number fit_no in `fits` (fitter_record_metrics_json() and fitter_record_proposal_json()
 *      render the metrics and proposal columns), and when rec->verdict == FITTER_CONVERGED mark
 *      the sweep converged (converged_after_runs = rec->runs_used), apply on_converge and, with
 *      `launch: auto`, start the target (launcher.h);
 *   4. at shutdown, fitter_cancel(job) a queued refit; done_cb still runs once, with -ECANCELED
 *      when the work had not started, so keep the loop running until it has.
 */
#ifndef REGMIX_COORD_FITTER_H
#define REGMIX_COORD_FITTER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "metrics.h"
#include "regress.h"
#include "spec.h"

/* Everything that decides a refit besides the data. */
typedef struct fitter_settings {
    regress_kind_t kind; /* regression.model */
    regress_params_t
            params;    /* model parameters (regress.h defaults, see fitter_settings_from_spec) */
    int small_n_gbdt;  /* gbdt: scale min_child_weight down for few runs (see fitter_run) */
    int quadratic;     /* linear/ridge: fit on the products w_i w_j (a quadratic surface) */
    int cv_folds;      /* regression.cv_folds, >= 2 */
    uint64_t seed;     /* regression.seed: the CV split, XGBoost and the simulation */
    size_t candidates; /* regression.simulate */
    int top_k;         /* regression.top_k */
    int threads;       /* <= 0: all cores */
    spec_convergence_t convergence;
} fitter_settings_t;

/* A snapshot of a sweep's results; every array is borrowed by fitter_run() and copied by
 * fitter_queue(). */
typedef struct fitter_input {
    size_t n;                      /* done runs */
    size_t d;                      /* domains (mixture columns), >= 2 */
    const double *X;               /* (n, d) mixture weights, row-major */
    int m;                         /* loss columns, >= 1 */
    const char *const *loss_names; /* (m) column names (the domains' names for per-domain losses) */
    const double *losses;          /* (n, m) row-major; NAN where a run has no such loss */
    const char *target;            /* objective over loss_names (objective_parse syntax) */
    const double *prior;           /* (d) Dirichlet concentration of the simulation, each > 0 */
    size_t nhistory;               /* proposals of the earlier refits */
    const double *history;         /* (nhistory, d) row-major, oldest first; NULL if none */
} fitter_input_t;

typedef enum fitter_verdict {
    FITTER_TOO_FEW_RUNS = 0, /* runs used < min_runs */
    FITTER_LOW_SPEARMAN = 1, /* out-of-fold Spearman < min_spearman (or undefined) */
    FITTER_MOVING = 2,       /* the proposal moved >= l1_tol within the last stable_refits refits */
    FITTER_CONVERGED = 3,
} fitter_verdict_t;

/* The outcome of one refit. proposal is owned by the record (fitter_record_clear() frees it). */
typedef struct fitter_record {
    size_t runs_used;        /* rows whose weights and used losses are all finite */
    size_t runs_skipped;     /* rows left out (a NAN or infinite value the objective needs) */
    size_t d;                /* length of proposal */
    char model[24];          /* "gbdt", "linear", "ridge", "quadratic_ridge", "quadratic_linear" */
    double min_child_weight; /* gbdt: the value used (after small-n scaling); 0 otherwise */
    metrics_t cv;            /* out-of-fold metrics, cv.folds = k */
    double *proposal;        /* (d) the averaged top_k mixture, sums to 1 */
    double predicted;        /* the model's prediction at the proposal itself */
    double predicted_topk;   /* mean prediction of the top_k candidates */
    double l1_moved;         /* L1 from the previous proposal; NAN for the first refit */
    double l1_window;        /* max L1 to the last stable_refits proposals; NAN if fewer exist */
    double seconds;          /* wall time of the refit */
    fitter_verdict_t verdict;
    /* (runs_used) the out-of-fold predictions behind cv: oof_rows[i] is the input row,
     * oof_actual[i] its objective, oof_predicted[i] the prediction of the fold model that did
     * not see it. Owned by the record. */
    size_t *oof_rows;
    double *oof_actual;
    double *oof_predicted;
} fitter_record_t;

/* Most domains for quadratic features (d(d+1)/2 of them: 2080 at 64). */
#define FITTER_QUADRATIC_MAX_D 64

/* Number of quadratic features of d domains, d(d+1)/2. */
size_t fitter_quadratic_features(size_t d);

/* Writes the products X[r][i] * X[r][j] (i <= j, row-major over i then j) of each row of X (n, d)
 * to out (n, d(d+1)/2). */
void fitter_quadratic_expand(const double *X, size_t n, size_t d, double *out);

/* Fills *ret from the spec's regression section (model, cv_folds, seed, simulate, top_k,
 * convergence) with regress.h's default model parameters and small_n_gbdt on; `model: quadratic`
 * is ridge on the pairwise products (quadratic on). Measured on a synthetic bowl with 6 domains
 * (tests/unit/test_fitter.c): quadratic ridge ranks at out-of-fold rho 0.99 from 24 runs and
 * converges to within 0.03 (L1) of the optimum at 64; linear/ridge on the raw weights propose a
 * corner; gbdt with the paper's settings needs hundreds of runs (0.25 from the optimum at 128
 * runs, 0.07 at 512, where quadratic ridge is at 0.03 and 0.01). */
void fitter_settings_from_spec(const spec_t *spec, fitter_settings_t *ret);

/* Writes the spec's regression.target as objective_parse text over the domain names into buf
 * ("pile_cc", "mean", or "a=1,b=0.5"). Returns 0, -ENOSPC when len is too small, -EINVAL. */
int fitter_target_text(const spec_t *spec, char *buf, size_t len);

/* The min_child_weight fitter_run() uses for gbdt on n rows: with small_n_gbdt, min(configured,
 * max(1, n / 16)) so that trees can split at all with few runs (the paper's 20 is made for 512
 * runs); otherwise the configured value. */
double fitter_min_child_weight(const fitter_settings_t *s, size_t n);

/* One refit (see the header comment). On success fills *ret (free its proposal with
 * fitter_record_clear()) and returns 0. Returns -EINVAL for bad input or fewer usable runs than
 * max(cv_folds, 2) (message in err), -EIO when XGBoost fails, -ENOMEM. *ret is untouched on
 * failure. Thread-safe: it shares nothing between calls. */
int fitter_run(const fitter_input_t *in,
               const fitter_settings_t *s,
               fitter_record_t *ret,
               char *err,
               size_t errlen);

/* The verdict of §3.6 for a refit that used `runs` results, scored `spearman` out of fold, and
 * proposed `proposal` (d) after the proposals history (nhistory, d; oldest first). Writes the
 * max L1 distance to the last stable_refits proposals to *ret_l1_window (NAN when fewer exist)
 * if non-NULL. The first unmet condition in the order of fitter_verdict_t is returned. */
fitter_verdict_t fitter_judge(const spec_convergence_t *c,
                              size_t runs,
                              double spearman,
                              const double *proposal,
                              const double *history,
                              size_t nhistory,
                              size_t d,
                              double *ret_l1_window);

/* "too_few_runs", "low_spearman", "moving", "converged". */
const char *fitter_verdict_name(fitter_verdict_t v);

/* Whether the loop should start a refit now: none in flight, at least max(cv_folds, 2) results,
 * and either refit_every new results since the last refit (results_at_last_fit is 0 before the
 * first) or the sweep's last result (results == total_runs) not fitted yet. */
int fitter_should_refit(int refit_every,
                        int cv_folds,
                        size_t results,
                        size_t results_at_last_fit,
                        size_t total_runs,
                        int in_flight);

/* L1 distance of two d-vectors. */
double fitter_l1(const double *a, const double *b, size_t d);

/* Frees the record's proposal and out-of-fold arrays; a zeroed or cleared record is a harmless
 * no-op. */
void fitter_record_clear(fitter_record_t *rec);

/* The record's metrics as compact JSON {"n":..,"folds":..,"spearman":..,"pearson":..,"mse":..,
 * "r2":..,"runs_skipped":..,"predicted_topk":..,"l1_window":..,"verdict":"..",..} (NAN as null),
 * and its proposal as {"<domain>": weight, ...} in domain order (names: rec->d of them).
 * malloc'd strings the caller frees; NULL when out of memory. */
char *fitter_record_metrics_json(const fitter_record_t *rec);
char *fitter_record_proposal_json(const fitter_record_t *rec, const char *const *names);

/* ---- thread-pool glue ------------------------------------------------------------------------ */

typedef struct fitter_job fitter_job_t;

/* Called once on the loop thread when a queued refit ends. status is 0 (rec filled; the record
 * is freed after the callback returns, so copy what you keep), a fitter_run() error (message in
 * err), or -ECANCELED. */
typedef void (*fitter_done_cb)(
        fitter_job_t *job, int status, const fitter_record_t *rec, const char *err, void *data);

/* Copies the input and settings, queues fitter_run() with uv_queue_work on `loop`, and sets *ret
 * (may be NULL) to the job, valid until done_cb returns. Returns 0, -EINVAL, -ENOMEM, or libuv's
 * error; on error done_cb is never called. */
int fitter_queue(uv_loop_t *loop,
                 const fitter_input_t *in,
                 const fitter_settings_t *s,
                 fitter_done_cb done_cb,
                 void *data,
                 fitter_job_t **ret);

/* Asks libuv to drop a job that has not started; returns 0 when it will be dropped (done_cb then
 * gets -ECANCELED) or -EBUSY when it is already running or done. */
int fitter_cancel(fitter_job_t *job);

#endif
