/*
 * fitdata: the table a RegMix fit learns from: each run's mixture weights joined with its losses.
 *
 * A mixtures CSV holds a key column (default `index`) and one weight column per domain; a losses
 * CSV holds the same key and loss columns. Rows are matched on the key's text (csv_join); every
 * mixture row needs a loss row, extra loss rows are ignored. Weights must be finite and >= 0;
 * each row is renormalised to sum to 1 (the released data rounds to 3 decimals, so rows sum to
 * 0.996..1.003). The target y is an objective (objective.h) over the loss columns; only the loss
 * columns it uses must hold numbers. Every error names the file, the line and the problem.
 *
 * A fitdata_t owns all of its arrays and strings.
 */
#ifndef REGMIX_FITDATA_H
#define REGMIX_FITDATA_H

#include <stddef.h>

typedef struct fitdata {
    size_t n;       /* runs */
    size_t d;       /* domains */
    char **domains; /* (d) mixture column names, in file order or the order asked for */
    double *X;      /* (n, d) row-major, rows summing to 1 */
    double *y;      /* (n) target of each run; NULL from fitdata_load_results() */
    char *target;   /* the objective's canonical text; NULL from fitdata_load_results() */
    int m;          /* loss columns of fitdata_load_results(); 0 otherwise */
    double *losses; /* (n, m) row-major, NAN where a run has no such loss; or NULL */
} fitdata_t;

/* Loads and joins `mixtures` and `losses` on column `key` (NULL: "index") with target `target`
 * (objective_parse syntax over the loss columns other than the key). When `domains` is non-NULL
 * the mixture file must have exactly those d columns (any order) and X follows that order;
 * otherwise the domains are the mixture columns except the key, in file order. On success *ret is
 * a new table the caller frees with fitdata_destroy(). Returns 0, -EINVAL (message in err, naming
 * file and line), -errno from reading, -ENOMEM. */
int fitdata_load(const char *mixtures,
                 const char *losses,
                 const char *key,
                 const char *target,
                 const char *const *domains,
                 size_t d,
                 fitdata_t **ret,
                 char *err,
                 size_t errlen);

/* Loads a `regmixctl results --csv` file: a header `run,attempt,worker`, the mixture columns,
 * then the loss columns "loss:NAME"; one row per done run, in the coordinator's order. The d
 * mixture columns must be `domains` in that order; the m losses `loss_names` are taken (in that
 * order) from the columns after them named "loss:NAME", an empty field or a missing column read
 * as NAN. Weights are used as written (not renormalised: the coordinator fits the stored
 * weights) and must be finite and >= 0. On success *ret is a new table with X and losses (y and
 * target NULL). Returns 0, -EINVAL (message naming file and line), -errno, -ENOMEM. */
int fitdata_load_results(const char *path,
                         const char *const *domains,
                         size_t d,
                         const char *const *loss_names,
                         int m,
                         fitdata_t **ret,
                         char *err,
                         size_t errlen);

/* Frees the table and sets *self_p to NULL; NULL or *self_p == NULL is a harmless no-op. */
void fitdata_destroy(fitdata_t **self_p);

/* Reads a prior CSV with columns `domain,weight` into ret_alpha[0..d) in the order of domains:
 * every domain exactly once, nothing else, weights finite and > 0. Returns 0, -EINVAL (message
 * naming file and line), -errno, -ENOMEM. */
int fitdata_load_prior(const char *path,
                       const char *const *domains,
                       size_t d,
                       double *ret_alpha,
                       char *err,
                       size_t errlen);

#endif
