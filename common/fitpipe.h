/*
 * fitpipe: the one RegMix fit pipeline (docs/method.md) that both the coordinator's refits and
 * `regmixctl fit` run: the usable rows of a results table, the objective, the regression model,
 * k-fold cross-validation, the simulation and its top-k average (simulate.h, the one top-k), and
 * the convergence verdict. Given the same rows, settings and seed, the daemon and the CLI propose
 * the same mixture.
 *
 * Models are entries of one table, fitpipe_models[] (fitpipe.c): a name (spec `regression.model`,
 * `regmixctl fit --model`), a regression kind (regress.h) and an optional feature map from the
 * mixture weights to the regression's inputs; `quadratic` is ridge on the products w_i w_j. A new
 * model is one more entry (and, for a new regression family, a new regress_kind_t); spec.c accepts
 * exactly the names of this table (fitpipe_model_words), and spec_regmodel_t is an index into it.
 *
 * fitpipe_run() takes the runs' mixture weights (n, d), their losses (n, m) by column name and the
 * objective (objective.h syntax over the loss names: a name, `mean`, or `a=1,b=0.5`), or the
 * targets y directly, the settings, the Dirichlet concentration of the simulation (the token
 * prior) and the proposals of the previous refits. It keeps the rows whose weights and used losses
 * are finite, scores the model by k-fold cross-validation (out-of-fold Spearman, Pearson, MSE,
 * R²), fits it on all usable rows, simulates candidates and averages the top_k: that average is
 * the proposal. It touches no loop, socket or database and keeps no state, so it runs in libuv's
 * thread pool; the result is a function of the inputs and settings.seed alone (XGBoost's hist
 * method, the k-fold split and the simulation are seeded and thread-count independent).
 *
 * Convergence (§3.6) holds when all of: runs used >= min_runs; out-of-fold Spearman >=
 * min_spearman; and the proposal is within l1_tol (L1) of each of the previous stable_refits
 * proposals, i.e. it has not moved by l1_tol or more over the last stable_refits refits, so a slow
 * drift (each step small) is caught as well as a jump. Before stable_refits earlier proposals exist
 * the sweep is still "moving".
 *
 * An active sweep (settings.active, docs/search.md) proposes instead by active_step() (active.h:
 * the GP, the refined candidate search, the trust radius, the caps in.upper), seeded by
 * settings.seed, and skips the top-k simulation; the record's interval is then the GP's interval
 * of a run at the proposal, and it carries the expected gain of one more run. Its verdict is
 * too_few_runs, low_spearman (the spec model's out-of-fold Spearman, as above), then "exploring"
 * while the expected gain is at least gain_tol (or unknown), else converged; the L1 window is
 * reported but does not decide. When active_step() fails the proposal falls back to the top-k
 * (proposal_from "topk", why in propose_err) and the verdict is "exploring". The same fitted GP
 * chooses the next round (in.next_k > 0), so a refit fits the surrogate once.
 *
 * Hook-up in the coordinator's loop (the loop owns the store; this module owns nothing of it):
 *   1. after a RESULT is stored, call fitpipe_should_refit(refit_every, cv_folds, results_now,
 *      results_at_last_fit, total_runs, fit_in_flight); when it says yes,
 *   2. read the sweep's done results (weights in domain order, the per-domain losses in domain
 *      order, NAN where a loss is missing) and the proposals of its earlier fits (oldest first)
 *      into a fitpipe_input_t (borrowed arrays are fine: fitpipe_queue() copies them), fill a
 *      fitpipe_settings_t with fitpipe_settings_from_spec(), the target text with
 *      fitpipe_target_text(), the prior with each spec domain's `prior`;
 *   3. fitpipe_queue(loop, &in, &settings, done_cb, sweep, &job) runs fitpipe_run() in the thread
 *      pool and calls done_cb on the loop thread with the record (or an error): store it as fit
 *      number fit_no in `fits` (fitpipe_record_metrics_json() and fitpipe_record_proposal_json()
 *      render the metrics and proposal columns), and when rec->verdict == FITPIPE_CONVERGED mark
 *      the sweep converged (converged_after_runs = rec->runs_used), apply on_converge and, with
 *      `launch: auto`, start the target (launcher.h);
 *   4. at shutdown, fitpipe_cancel(job) a queued refit; done_cb still runs once, with -ECANCELED
 *      when the work had not started, so keep the loop running until it has.
 * `regmixctl fit` fills the same input from CSV files (fitdata.h) and calls fitpipe_run().
 */
#ifndef REGMIX_FITPIPE_H
#define REGMIX_FITPIPE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "metrics.h"
#include "regress.h"
#include "spec.h"

/* ---- the model table ------------------------------------------------------------------------- */

/* A model the pipeline can fit: a regression over a feature map of the mixture weights. */
typedef struct fitpipe_model {
    const char *name;    /* spec regression.model and `regmixctl fit --model` */
    const char *about;   /* one line for --help */
    regress_kind_t kind; /* the regression fitted on the features */
    size_t max_d;        /* most domains the feature map allows; 0: no limit */
    /* Number of features of d domains; NULL: the d weights themselves. */
    size_t (*nfeatures)(size_t d);
    /* Writes the features of each row of X (n, d) to out (n, nfeatures(d)); NULL: the weights. */
    void (*featurize)(const double *X, size_t n, size_t d, double *out);
} fitpipe_model_t;

/* The models, terminated by an entry whose name is NULL; entry i is spec_regmodel_t i. */
extern const fitpipe_model_t fitpipe_models[];

/* The models' names in table order, NULL-terminated (spec.c's words for regression.model). */
extern const char *const fitpipe_model_words[];

/* The model named `name`, or NULL. */
const fitpipe_model_t *fitpipe_model_find(const char *name);

/* Most domains for quadratic features (d(d+1)/2 of them: 2080 at 64). */
#define FITPIPE_QUADRATIC_MAX_D 64

/* Number of quadratic features of d domains, d(d+1)/2. */
size_t fitpipe_quadratic_features(size_t d);

/* Writes the products X[r][i] * X[r][j] (i <= j, row-major over i then j) of each row of X (n, d)
 * to out (n, d(d+1)/2). */
void fitpipe_quadratic_expand(const double *X, size_t n, size_t d, double *out);

/* ---- a fitted model over mixtures ------------------------------------------------------------ */

/* A fitted model with its feature map; immutable, so it predicts from many threads at once. */
typedef struct fitpipe_fitted fitpipe_fitted_t;

/* Fits `model` with params on the mixtures X (n, d) and targets y (n). On success *ret is a new
 * model the caller frees with fitpipe_fitted_destroy(). Returns 0, -EINVAL (message in err), -EIO
 * (XGBoost), -ENOMEM. */
int fitpipe_fit(const fitpipe_model_t *model,
                const regress_params_t *params,
                const double *X,
                const double *y,
                size_t n,
                size_t d,
                fitpipe_fitted_t **ret,
                char *err,
                size_t errlen);

/* Predicts the mixtures X (n, d) into out (n). Returns 0 or -ENOMEM. Thread-safe. */
int fitpipe_fitted_predict(const fitpipe_fitted_t *f, const double *X, size_t n, double *out);

/* Frees the model and sets *self_p to NULL; NULL or *self_p == NULL is a harmless no-op. */
void fitpipe_fitted_destroy(fitpipe_fitted_t **self_p);

/* ---- one fit --------------------------------------------------------------------------------- */

/* Everything that decides a fit besides the data. */
typedef struct fitpipe_settings {
    const fitpipe_model_t *model; /* an entry of fitpipe_models */
    regress_params_t params;      /* model parameters (regress.h defaults) */
    int small_n_gbdt;             /* gbdt: scale min_child_weight down for few runs */
    int cv_folds;                 /* 0: no cross-validation; else >= 2 */
    uint64_t seed;                /* the CV split, XGBoost and the simulation */
    size_t candidates;            /* simulated candidates; 0: no proposal */
    int top_k;                    /* candidates averaged, 1..candidates */
    int threads;                  /* <= 0: all cores */
    spec_convergence_t convergence;
    int active; /* 1: an active sweep's proposal and verdict (see the header comment) */
} fitpipe_settings_t;

/* The spec's defaults with model gbdt: regress.h's model parameters, small_n_gbdt on, 5 folds,
 * seed 0, 1,000,000 candidates, top 100, all cores, the spec's convergence defaults. */
void fitpipe_settings_default(fitpipe_settings_t *ret);

/* A snapshot of a sweep's results; every array is borrowed by fitpipe_run() and copied by
 * fitpipe_queue(). Give either losses, loss_names and target, or y. */
typedef struct fitpipe_input {
    size_t n;                      /* runs */
    size_t d;                      /* domains (mixture columns), >= 2 */
    const double *X;               /* (n, d) mixture weights, row-major */
    int m;                         /* loss columns */
    const char *const *loss_names; /* (m) column names */
    const double *losses;          /* (n, m) row-major; NAN where a run has no such loss */
    const char *target;            /* objective over loss_names (objective_parse syntax) */
    const double *y;               /* (n) the targets themselves, or NULL: use the objective */
    const double *prior;           /* (d) Dirichlet concentration of the simulation, each > 0 */
    size_t nhistory;               /* proposals of the earlier refits */
    const double *history;         /* (nhistory, d) row-major, oldest first; NULL if none */
    /* active sweeps: the caps of every candidate (active_params_t.upper: the epoch bound), and
     * the next round, chosen by the fit's GP (active_step()) */
    const double *upper;   /* (d) caps of the weights, or NULL */
    size_t next_k;         /* > 0: also the next next_k mixtures to run (active_next()) */
    uint64_t next_seed;    /* active_params_t.seed of the round */
    size_t npending;       /* runs of the sweep still open (no result yet): the round is */
    const double *pending; /* conditioned on them (active_params_t.pending); (npending, d) */
} fitpipe_input_t;

typedef enum fitpipe_verdict {
    FITPIPE_TOO_FEW_RUNS = 0, /* runs used < min_runs */
    FITPIPE_LOW_SPEARMAN = 1, /* out-of-fold Spearman < min_spearman (or undefined) */
    FITPIPE_MOVING = 2, /* the proposal moved >= l1_tol within the last stable_refits refits */
    FITPIPE_CONVERGED = 3,
    FITPIPE_EXPLORING = 4, /* active: expected gain of one more run >= gain_tol (or unknown) */
} fitpipe_verdict_t;

/* The outcome of one refit. proposal is owned by the record (fitpipe_record_clear() frees it). */
typedef struct fitpipe_record {
    size_t runs_used;        /* rows whose weights and used losses are all finite */
    size_t runs_skipped;     /* rows left out (a NAN or infinite value the objective needs) */
    size_t d;                /* length of proposal */
    char model[24];          /* the model's table name: "gbdt", "linear", "ridge", "quadratic" */
    double min_child_weight; /* gbdt: the value used (after small-n scaling); 0 otherwise */
    metrics_t cv;            /* out-of-fold metrics, cv.folds = k (0: no CV, metrics NAN) */
    double *proposal;        /* (d) the averaged top_k mixture, sums to 1; NULL: no simulation */
    double predicted;        /* the model's prediction at the proposal itself */
    double predicted_topk;   /* mean prediction of the top_k candidates */
    double predicted_lo;     /* 95 % interval of a run's objective at the proposal: predicted -+ */
    double predicted_hi;     /* 1.96 x the out-of-fold RMSE (NAN without CV or a proposal); active:
                                active_proposal_t lo, hi (1.96 sqrt(sd^2 + noise_sd^2) x
                                interval_scale) */
    double predicted_sd;     /* active: the posterior sd of the objective there; else NAN */
    double noise_sd;         /* active: sd of one run's noise (the GP's); else NAN */
    double interval_scale;   /* active: active_proposal_t.interval_scale (>= 1); else NAN */
    double expected_gain;    /* active: of one more run (active.h); else NAN */
    char proposal_from[8];   /* "active" (active_step()) or "topk" (the simulation) */
    char propose_err[160];   /* active with proposal_from "topk": why active_step() failed */
    double l1_moved;         /* L1 from the previous proposal; NAN for the first refit */
    double l1_window;        /* max L1 to the last stable_refits proposals; NAN if fewer exist */
    size_t simulated;        /* candidates simulated */
    int top_k;               /* candidates averaged */
    double seconds;          /* wall time of the refit */
    double seconds_fit;      /* of which the fit on all rows */
    double seconds_cv;       /* the cross-validation */
    double seconds_simulate; /* the simulation */
    fitpipe_verdict_t verdict; /* FITPIPE_TOO_FEW_RUNS when nothing was simulated */
    /* (runs_used) the out-of-fold predictions behind cv: oof_rows[i] is the input row,
     * oof_actual[i] its objective, oof_predicted[i] the prediction of the fold model that did
     * not see it. Owned by the record; NULL without cross-validation. */
    size_t *oof_rows;
    double *oof_actual;
    double *oof_predicted;
    /* fitpipe_queue() with next_k > 0: the next mixtures (nnext, d) row-major, or NULL when the
     * round could not be computed (why in next_err); owned by the record */
    double *next;
    size_t nnext;
    char next_err[160];
} fitpipe_record_t;

/* Fills *ret from the spec's regression section (model, cv_folds, seed, simulate, top_k,
 * convergence) with regress.h's default model parameters and small_n_gbdt on; `model: quadratic`
 * is ridge on the pairwise products. Measured on a synthetic bowl with 6 domains
 * (tests/unit/test_fitpipe.c): quadratic ridge ranks at out-of-fold rho 0.99 from 24 runs and
 * converges to within 0.03 (L1) of the optimum at 64; linear/ridge on the raw weights propose a
 * corner; gbdt with the paper's settings needs hundreds of runs (0.25 from the optimum at 128
 * runs, 0.07 at 512, where quadratic ridge is at 0.03 and 0.01). */
void fitpipe_settings_from_spec(const spec_t *spec, fitpipe_settings_t *ret);

/* Writes the spec's regression.target as objective_parse text over the domain names into buf
 * ("pile_cc", "mean", or "a=1,b=0.5"). Returns 0, -ENOSPC when len is too small, -EINVAL. */
int fitpipe_target_text(const spec_t *spec, char *buf, size_t len);

/* The min_child_weight fitpipe_run() uses for gbdt on n rows: with small_n_gbdt, min(configured,
 * max(1, n / 16)) so that trees can split at all with few runs (the paper's 20 is made for 512
 * runs); otherwise the configured value. */
double fitpipe_min_child_weight(const fitpipe_settings_t *s, size_t n);

/* One fit (see the header comment). On success fills *ret (free its proposal with
 * fitpipe_record_clear()), sets *ret_fitted (when non-NULL) to the model fitted on all usable rows
 * (the caller frees it with fitpipe_fitted_destroy()), and returns 0. Returns -EINVAL for bad
 * input or fewer usable runs than max(cv_folds, 2) (message in err), -EIO when XGBoost fails,
 * -ENOMEM. The outputs are untouched on failure. Thread-safe: it shares nothing between calls. */
int fitpipe_run(const fitpipe_input_t *in,
                const fitpipe_settings_t *s,
                fitpipe_record_t *ret,
                fitpipe_fitted_t **ret_fitted,
                char *err,
                size_t errlen);

/* The verdict of §3.6 for a refit that used `runs` results, scored `spearman` out of fold, and
 * proposed `proposal` (d) after the proposals history (nhistory, d; oldest first). Writes the
 * max L1 distance to the last stable_refits proposals to *ret_l1_window (NAN when fewer exist)
 * if non-NULL. The first unmet condition in the order of fitpipe_verdict_t is returned. */
fitpipe_verdict_t fitpipe_judge(const spec_convergence_t *c,
                                size_t runs,
                                double spearman,
                                const double *proposal,
                                const double *history,
                                size_t nhistory,
                                size_t d,
                                double *ret_l1_window);

/* The verdict of an active sweep: too_few_runs, low_spearman as fitpipe_judge(), then
 * FITPIPE_EXPLORING unless expected_gain < gain_tol (NAN: exploring), else converged. */
fitpipe_verdict_t
fitpipe_judge_gain(const spec_convergence_t *c, size_t runs, double spearman, double expected_gain);

/* "too_few_runs", "low_spearman", "moving", "converged", "exploring". */
const char *fitpipe_verdict_name(fitpipe_verdict_t v);

/* Whether the loop should start a refit now: none in flight, at least max(cv_folds, 2) results,
 * and either refit_every new results since the last refit (results_at_last_fit is 0 before the
 * first) or the sweep's last result (results == total_runs) not fitted yet. */
int fitpipe_should_refit(int refit_every,
                         int cv_folds,
                         size_t results,
                         size_t results_at_last_fit,
                         size_t total_runs,
                         int in_flight);

/* L1 distance of two d-vectors. */
double fitpipe_l1(const double *a, const double *b, size_t d);

/* Frees the record's proposal and out-of-fold arrays; a zeroed or cleared record is a harmless
 * no-op. */
void fitpipe_record_clear(fitpipe_record_t *rec);

/* The record's metrics as compact JSON {"n":..,"folds":..,"spearman":..,"pearson":..,"mse":..,
 * "r2":..,"runs_skipped":..,"predicted_topk":..,"predicted":..,"predicted_interval":[lo,hi],
 * "predicted_sd":..,"noise_sd":..,"interval_scale":..,"expected_gain":..,"proposal_from":"active"|"topk",
 * "l1_window":..,"verdict":"..",..} (NAN as null),
 * and its proposal as {"<domain>": weight, ...} in domain order (names: rec->d of them).
 * malloc'd strings the caller frees; NULL when out of memory. */
char *fitpipe_record_metrics_json(const fitpipe_record_t *rec);
char *fitpipe_record_proposal_json(const fitpipe_record_t *rec, const char *const *names);

/* ---- thread-pool glue ------------------------------------------------------------------------ */

typedef struct fitpipe_job fitpipe_job_t;

/* Called once on the loop thread when a queued refit ends. status is 0 (rec filled; the record
 * is freed after the callback returns, so copy what you keep), a fitpipe_run() error (message in
 * err), or -ECANCELED. */
typedef void (*fitpipe_done_cb)(
        fitpipe_job_t *job, int status, const fitpipe_record_t *rec, const char *err, void *data);

/* Copies the input (its losses, loss_names and target; y is not used) and settings, queues
 * fitpipe_run() with uv_queue_work on `loop`, and sets *ret
 * (may be NULL) to the job, valid until done_cb returns. Returns 0, -EINVAL, -ENOMEM, or libuv's
 * error; on error done_cb is never called. */
int fitpipe_queue(uv_loop_t *loop,
                  const fitpipe_input_t *in,
                  const fitpipe_settings_t *s,
                  fitpipe_done_cb done_cb,
                  void *data,
                  fitpipe_job_t **ret);

/* Asks libuv to drop a job that has not started; returns 0 when it will be dropped (done_cb then
 * gets -ECANCELED) or -EBUSY when it is already running or done. */
int fitpipe_cancel(fitpipe_job_t *job);

#endif
