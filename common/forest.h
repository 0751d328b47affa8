/*
 * forest: a fast evaluator of a trained XGBoost tree ensemble (regression, one output), for the
 * simulation's hot path: a million candidate mixtures through a thousand trees.
 *
 * forest_from_xgboost_json() reads the model JSON of XGBoosterSaveModelToBuffer() into flat node
 * arrays. Prediction is the model's own rule, bit for bit in its decisions: each feature value is
 * rounded to float as XGBoost's DMatrix does, goes left when x < split_condition (float), and a
 * missing value (NaN) follows the node's default direction; the output is base_score plus the
 * leaf values of every tree, summed in tree order (in double; XGBoost sums in float, so outputs
 * agree within float rounding, about 1e-7 relative).
 *
 * Speed comes from three choices. (1) Thresholds of a hist-trained model take few distinct values
 * per feature, so each candidate is first "binned": x becomes the count of that feature's
 * thresholds <= x (uint16), and `x < threshold_j` becomes `bin <= j`, an integer compare on two
 * bytes. (2) Children are stored side by side, leaves point to themselves, and each tree is walked
 * for exactly its depth: next = left + (bin > j), with no data-dependent branch to mispredict.
 * (3) Trees are applied to a block of candidates at a time (the block and the tree stay in cache),
 * and forest_accumulate() works on any tree range, so a caller that only wants the lowest
 * predictions can stop early for candidates whose bounds (forest_bound_rest()) rule them out.
 *
 * A forest_t is immutable after construction: every predicting function may run concurrently from
 * many threads on disjoint outputs.
 */
#ifndef REGMIX_FOREST_H
#define REGMIX_FOREST_H

#include <stddef.h>
#include <stdint.h>

typedef struct forest forest_t;

/* Builds a forest from `len` bytes of XGBoost model JSON (the {"learner": ...} document of
 * XGBoosterSaveModelToBuffer with {"format": "json"}): gbtree booster, one output, numeric splits.
 * On success *ret is a new forest the caller frees with forest_destroy(). Returns 0, -EINVAL for
 * a document it cannot use (message in err), -E2BIG if a feature has more than 65534 distinct
 * thresholds, -ENOMEM. */
int forest_from_xgboost_json(
        const char *json, size_t len, forest_t **ret, char *err, size_t errlen);

/* Frees the forest and sets *self_p to NULL; NULL or *self_p == NULL is a harmless no-op. */
void forest_destroy(forest_t **self_p);

/* Number of trees. */
int forest_ntrees(const forest_t *f);

/* Number of input features the model was trained with (the width of a row). */
int forest_nfeatures(const forest_t *f);

/* The model's base score (its prediction before any tree). */
double forest_base_score(const forest_t *f);

/* Predicts rows X[0..n) (n, d) row-major, d >= forest_nfeatures() (extra columns are ignored),
 * into out[0..n). Uses OpenMP over blocks of rows with up to `threads` threads (<= 0: the OpenMP
 * default). Rows with a NaN take the exact per-node path. Returns 0 or -EINVAL (d too small). */
int forest_predict(
        const forest_t *f, const double *X, size_t n, size_t d, double *out, int threads);

/* Bins rows X[0..n) (n, d) into ret_bins (n, forest_nfeatures()) for forest_accumulate(). NaN is
 * not representable: returns -EINVAL (ret_bins partly written) if a value is NaN, else 0. */
int forest_bin(const forest_t *f, const double *X, size_t n, size_t d, uint16_t *ret_bins);

/* For each of the n binned rows, adds the leaves of trees [tree_begin, tree_end) to acc[i]
 * (acc starts at forest_base_score()). Row i is bins + rows[i] * nfeatures when `rows` is non-NULL,
 * else bins + i * nfeatures. Single-threaded: callers parallelise over blocks. */
void forest_accumulate(const forest_t *f,
                       const uint16_t *bins,
                       const uint32_t *rows,
                       size_t n,
                       int tree_begin,
                       int tree_end,
                       double *acc);

/* Bounds on what trees [tree_begin, ntrees) can still add: the sums of their smallest and of their
 * largest leaf values. */
void forest_bound_rest(const forest_t *f, int tree_begin, double *ret_min, double *ret_max);

/* Per-candidate bounds on what the trees after a set of cut points can still add. For each cut
 * point c, each feature j and each bin v of that feature, the table holds the sums over trees
 * [c, ntrees) of the smallest and largest leaf a row can reach when only its bin of feature j is
 * known (other features unconstrained); a row's bound is the tightest over its features. Much
 * tighter than forest_bound_rest() for rows far from the optimum, at 2 * nfeatures lookups. */
typedef struct forest_bounds forest_bounds_t;

/* Builds the table for the n cut points tree_begin[0..n) (each in 0..ntrees). Returns 0, -E2BIG
 * if the features have more than 65536 bins in all (use forest_bound_rest() then), -EINVAL,
 * -ENOMEM. The forest must outlive the table. */
int forest_bounds_new(const forest_t *f, const int *tree_begin, int n, forest_bounds_t **ret);

/* Frees the table and sets *self_p to NULL; NULL or *self_p == NULL is a harmless no-op. */
void forest_bounds_destroy(forest_bounds_t **self_p);

/* Bounds on what trees [tree_begin[cut], ntrees) add for the binned row b (forest_bin()). */
void forest_bounds_row(
        const forest_bounds_t *fb, int cut, const uint16_t *b, double *ret_min, double *ret_max);

#endif
