/*
 * options: regmix-train's settings, from flags or a YAML file with the same names.
 *
 * options_set() is the one place a setting is parsed and checked, so `--lr 4e-4` on the command
 * line and `lr: 4e-4` in a --config file behave alike. The struct owns its strings; free them
 * with options_free().
 */
#ifndef REGMIX_TRAIN_OPTIONS_H
#define REGMIX_TRAIN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct train_options {
    model_config_t model;
    int batch, micro_batch, steps, warmup, cosine;
    int eval_every, eval_batches, threads, progress_fd, resume, checkpoint_every;
    double lr, min_lr, weight_decay, clip;
    uint64_t seed;
    char *device, *checkpoint, *weights, *weights_json;
    char **train, **valid;
    int ntrain, nvalid;
} train_options_t;

/* Fills the defaults (no shape, steps or data: those are required). */
void options_defaults(train_options_t *o);

/* Sets option `name` (without the leading dashes) from text. Returns 0, or -EINVAL with a message
 * (unknown name, bad number) in err. Boolean options take "true"/"false"/"1"/"0"/"". */
int options_set(train_options_t *o, const char *name, const char *value, char *err, size_t errlen);

/* Reads a YAML mapping of option names to values; train/valid may be a list of NAME=GLOB or a
 * mapping NAME: GLOB; weights may be a mapping NAME: W. Errors name the file. */
int options_load_yaml(train_options_t *o, const char *path, char *err, size_t errlen);

/* Parses argv (after the program name): --name value, --name=value, --config FILE (applied where
 * it appears, so later flags override it). Returns 0 or -EINVAL with a message. */
int options_parse(train_options_t *o, int argc, char **argv, char *err, size_t errlen);

/* Checks that required settings are present and consistent for `ranks` processes. */
int options_check(const train_options_t *o, int ranks, char *err, size_t errlen);

/* Sequences per forward/backward on one of `ranks` ranks: --micro-batch when given, else the
 * largest divisor of the per-rank batch whose activations hold at most 16384 tokens. */
int options_micro_batch(const train_options_t *o, int ranks);

void options_free(train_options_t *o);

#endif
