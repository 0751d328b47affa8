/*
 * objective: the regression target as a function of a run's validation losses (docs/method.md).
 *
 * The target is a weighted sum of loss columns: one column (weight 1), several with weights
 * (`a=1.0,b=0.5`, DESIGN's `target: {pile_cc: 1.0}`), or `mean`, every column with weight
 * 1/ncols. An objective is bound to an ordered list of column names when it is made; it then maps
 * a row of losses in that order to one number. It owns a copy of everything it needs.
 */
#ifndef REGMIX_OBJECTIVE_H
#define REGMIX_OBJECTIVE_H

#include <stddef.h>

typedef struct objective objective_t;

/* Parses `spec` against the loss columns names[0..ncols): a spec equal to a column name selects
 * that column; "mean" averages all columns; otherwise a comma-separated list of name=weight with
 * finite weights, each name a column, none twice. On success *ret is a new objective the caller
 * frees with objective_destroy(). Returns 0, -EINVAL (message in err naming the bad part, e.g. an
 * unknown column), -ENOMEM. */
int objective_parse(const char *spec,
                    const char *const *names,
                    int ncols,
                    objective_t **ret,
                    char *err,
                    size_t errlen);

/* Same from parallel arrays of term names and weights (n terms). */
int objective_from_terms(const char *const *term_names,
                         const double *term_weights,
                         int nterms,
                         const char *const *names,
                         int ncols,
                         objective_t **ret,
                         char *err,
                         size_t errlen);

/* The target of one row of losses (ncols values in the column order given at creation). */
double objective_eval(const objective_t *o, const double *losses);

/* Weight of column `col` (0 for columns the objective does not use). */
double objective_weight(const objective_t *o, int col);

/* Whether column `col` enters the objective (weight != 0): only those need to be valid numbers. */
int objective_uses(const objective_t *o, int col);

/* The canonical text of the objective: the column name for a single column with weight 1, else
 * "name=w,name=w" over the used columns ("mean" stays "mean"). Owned by the objective. */
const char *objective_text(const objective_t *o);

/* Frees the objective and sets *self_p to NULL; NULL or *self_p == NULL is a harmless no-op. */
void objective_destroy(objective_t **self_p);

#endif
