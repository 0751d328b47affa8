/*
 * trainargs: the one way to turn (spec, weights, seed) into regmix-train's command line and
 * config, for both daemons. The coordinator's launcher builds one from the spec
 * (trainargs_from_spec(), the target stage); the worker builds one from an assignment, whose
 * train_args_json and data_json are the spec's own renderings (spec_train_json(),
 * spec_domains_json()), with trainargs_from_json(). Both then render it with trainargs_argv() or
 * trainargs_config_json(), so a flag is spelled, formatted and checked in one place.
 *
 * Rules, in one place: every model and train setting is passed (the spec's defaults fill what the
 * JSON leaves out); --micro-batch only when it is > 0 and ranks * micro_batch <= batch (else the
 * trainer's default, batch / ranks); --threads only when > 0; --train and --valid NAME=GLOB in
 * domain order for the domains that have one; the weights as --weights-json, exactly (%.17g);
 * the seed; --checkpoint DIR/checkpoint --resume when a checkpoint directory is set; numbers as
 * the shortest text that reads back to the same double. Checked before anything starts: every
 * weight finite and >= 0, a domain with weight > 0 has a train glob, the schedule is one
 * regmix-train has (constant, cosine).
 *
 * A trainargs_t owns copies of everything it holds.
 */
#ifndef REGMIX_TRAINARGS_H
#define REGMIX_TRAINARGS_H

#include <stddef.h>
#include <stdint.h>

#include "spec.h"

typedef struct trainargs_domain {
    char *name;
    char *train;   /* glob, or NULL */
    char *valid;   /* glob, or NULL */
    double weight; /* the mixture weight */
} trainargs_domain_t;

typedef struct trainargs {
    spec_model_t model;
    spec_train_t train;
    int ranks; /* processes sharing the global batch (1 for a proxy) */
    int ndomains;
    trainargs_domain_t *domains; /* (ndomains) in domain order */
    uint64_t seed;
    char *checkpoint; /* DIR/checkpoint with --resume, or NULL: none */
} trainargs_t;

/* From the spec's `stage` (proxy or target) with the mixture weights (spec->ndomains, domain
 * order), the seed and the rank count. On success *ret is new (trainargs_destroy()). Returns 0,
 * -EINVAL (message in err), -ENOMEM. */
int trainargs_from_spec(const spec_t *spec,
                        spec_stage_t stage,
                        const double *weights,
                        uint64_t seed,
                        int ranks,
                        trainargs_t **ret,
                        char *err,
                        size_t errlen);

/* From an assignment: train_json as spec_train_json() renders it ({"model": {...}, "train":
 * {...}}, keys as in the YAML; absent keys take the spec's defaults, an unknown key is an error),
 * domains_json as spec_domains_json() does ({"NAME": {"train": GLOB, "valid": GLOB, ...}}; the
 * domain order), and the weights by name (names[i] has weights[i]; a domain without a weight has
 * 0, a weight for an unknown domain is an error). Returns 0, -EINVAL (message in err naming the
 * key), -ENOMEM. */
int trainargs_from_json(const char *train_json,
                        const char *domains_json,
                        const char *const *names,
                        const double *weights,
                        size_t nweights,
                        uint64_t seed,
                        trainargs_t **ret,
                        char *err,
                        size_t errlen);

/* Sets the checkpoint to DIR/checkpoint (resumed if present); NULL clears it. 0 or -ENOMEM. */
int trainargs_set_checkpoint(trainargs_t *t, const char *dir);

/* The checks of the header comment. Returns 0, -EINVAL (a weight), -ENOTSUP (the schedule),
 * with the message in err. */
int trainargs_check(const trainargs_t *t, char *err, size_t errlen);

/* The weights as a JSON object {"NAME": W, ...} in domain order (%.17g). malloc'd, NULL: memory. */
char *trainargs_weights_json(const trainargs_t *t);

/* regmix-train's argv: `trainer` (argv[0]), the flags of the header comment and, when
 * progress_fd >= 0, --progress-fd. On success *ret is a NULL-terminated vector the caller frees
 * with trainargs_argv_free(). Returns 0, trainargs_check()'s errors, -ENOMEM. */
int trainargs_argv(const trainargs_t *t,
                   const char *trainer,
                   int progress_fd,
                   char ***ret,
                   char *err,
                   size_t errlen);

/* The same settings as one JSON object `regmix-train --config` reads (YAML ⊇ JSON): flag names
 * as keys, "train"/"valid"/"weights" as objects by domain. malloc'd; NULL with err set. */
char *trainargs_config_json(const trainargs_t *t, int progress_fd, char *err, size_t errlen);

/* Frees a vector from trainargs_argv(); NULL is a harmless no-op. */
void trainargs_argv_free(char **argv);

/* Frees t and sets *self_p to NULL; NULL or *self_p == NULL is a harmless no-op. */
void trainargs_destroy(trainargs_t **self_p);

#endif
