/*
 * spec: the sweep specification, a YAML document the user submits (`regmixctl submit`,
 * `regmixctl sample`) parsed with libfyaml into a plain struct every program reads.
 *
 * The whole document is validated at parse time: unknown keys, wrong types, out-of-range numbers,
 * bad enum words, duplicate domain names, YAML aliases and syntax errors are rejected with ONE
 * message of the form `FILE:LINE:COL: KEY.PATH: problem` (1-based line and column, e.g.
 * `sweep.yaml:7:5: domains[2].tokens: must be positive`). Keys that are absent take the defaults
 * documented at each field below (docs/method.md). Hard limits: text <= SPEC_MAX_BYTES, at most
 * SPEC_MAX_DOMAINS domains, runs <= SPEC_MAX_RUNS.
 *
 * A spec_t is immutable after parsing and owns all its strings and arrays; spec_destroy()
 * releases it. Domains keep the order of the file; domain i is column i of every mixture.
 */
#ifndef REGMIX_SPEC_H
#define REGMIX_SPEC_H

#include <stddef.h>
#include <stdint.h>

#define SPEC_MAX_BYTES   (1u << 20)
#define SPEC_MAX_DOMAINS 1024
#define SPEC_MAX_RUNS    1000000
/* Most runs of an active sweep: each refit fits a Gaussian process on every result (an n x n
 * Cholesky factor: 32 MiB and ~3 s of CPU at 2048), and active search is made for budgets of tens
 * to hundreds of runs (docs/search.md); a larger budget is a random sweep's job. */
#define SPEC_MAX_ACTIVE_RUNS 2048
#define SPEC_MAX_WEIGHTS     20000000 /* runs x domains: the sweep's mixtures as doubles, 160 MB */
#define SPEC_MAX_SIMULATE    10000000 /* regression.simulate: candidates of one refit */
#define SPEC_MAX_TOP_K       100000   /* regression.top_k */
#define SPEC_NAME_MAX        64       /* sweep and domain names: [A-Za-z0-9_.-]{1,64} */
#define SPEC_GAIN_TOL        0.002    /* regression.convergence.gain_tol (docs/search.md) */

typedef enum spec_trainer {
    SPEC_TRAINER_BUILTIN,   /* regmix-train */
    SPEC_TRAINER_COMMAND,   /* proxy.command argv template */
    SPEC_TRAINER_SYNTHETIC, /* closed-form loss for tests and demos (proxy.synthetic) */
} spec_trainer_t;

typedef enum spec_schedule {
    SPEC_SCHEDULE_CONSTANT, /* warm-up then constant lr (the paper's proxies) */
    SPEC_SCHEDULE_COSINE,   /* warm-up then cosine decay to min_lr */
    SPEC_SCHEDULE_LINEAR,   /* warm-up then linear decay to min_lr */
} spec_schedule_t;

/* regression.model: an index into the fit pipeline's model table (fitpipe.h fitpipe_models[]);
 * the names below are its first entries, a model added there is accepted here by its index. */
typedef enum spec_regmodel {
    SPEC_REGMODEL_GBDT,
    SPEC_REGMODEL_LINEAR,
    SPEC_REGMODEL_RIDGE,
    SPEC_REGMODEL_QUADRATIC, /* ridge on the pairwise products w_i w_j: a quadratic surface */
    SPEC_REGMODEL_GP,        /* Gaussian process (docs/search.md) */
    SPEC_REGMODEL_LOGLINEAR, /* L = c + exp(sum t_j w_j) */
} spec_regmodel_t;

typedef enum spec_target_kind {
    SPEC_TARGET_DOMAIN,   /* one domain's validation loss: targets[0], weight 1 */
    SPEC_TARGET_MEAN,     /* the mean over all domains' losses (ntargets == 0) */
    SPEC_TARGET_WEIGHTED, /* sum of weight * loss over targets[] */
} spec_target_kind_t;

typedef enum spec_on_converge {
    SPEC_ON_CONVERGE_KEEP,   /* keep running the remaining proxies */
    SPEC_ON_CONVERGE_CANCEL, /* cancel the proxies not yet finished */
} spec_on_converge_t;

typedef enum spec_launch {
    SPEC_LAUNCH_MANUAL,
    SPEC_LAUNCH_AUTO,
} spec_launch_t;

typedef enum spec_launcher {
    SPEC_LAUNCHER_MPIRUN,
    SPEC_LAUNCHER_COMMAND,
    SPEC_LAUNCHER_SLURM,
    SPEC_LAUNCHER_KUBERNETES,
} spec_launcher_t;

typedef enum spec_baseline {
    SPEC_BASELINE_NONE,
    SPEC_BASELINE_PRIOR, /* also train the target on the token prior, for comparison */
} spec_baseline_t;

typedef struct spec_domain {
    char *name;             /* required */
    double tokens;          /* required, > 0: available training tokens */
    char *train;            /* glob of training shards, or NULL */
    char *valid;            /* glob of validation shards, or NULL */
    double bytes_per_token; /* > 0, or 0 when unknown (then no bits per byte) */
    double prior;           /* derived: tokens / sum of tokens */
} spec_domain_t;

/* Model shape; defaults are the paper's 1M proxy. */
typedef struct spec_model {
    int layers;  /* 2 */
    int heads;   /* 8; dim must be a multiple of heads */
    int dim;     /* 256 */
    int ffn;     /* 512 */
    int context; /* 2048 */
    int vocab;   /* 50432 */
} spec_model_t;

/* Training hyper-parameters; defaults are the paper's proxy recipe. */
typedef struct spec_train {
    int batch;                /* 512 sequences per step */
    int micro_batch;          /* 0 = batch (no accumulation); else divides batch */
    int steps;                /* 1000 */
    double lr;                /* 4e-4 */
    int warmup;               /* 100 steps */
    spec_schedule_t schedule; /* constant */
    double min_lr;            /* 0 */
    double weight_decay;      /* 0.1 */
    double clip;              /* 1.0; 0 = no clipping */
    int eval_batches;         /* 8 */
    int threads;              /* 0 = let the trainer decide */
} spec_train_t;

typedef enum spec_strategy {
    SPEC_STRATEGY_RANDOM, /* every run drawn up front (the paper's one-shot sweep) */
    SPEC_STRATEGY_ACTIVE, /* `initial` drawn up front, then `batch` per refit (common/active.h) */
} spec_strategy_t;

typedef struct spec_sampling {
    int runs;                 /* 512, 1..SPEC_MAX_RUNS; for active: the total budget */
    spec_strategy_t strategy; /* random */
    int initial;              /* active: runs of the first design, runs / 4 (at least 1) */
    int batch;                /* active: runs added per round, 8 (at most runs) */
    uint64_t seed;            /* 42 */
    double temperature;       /* 0.5, > 0 */
    double strength_min;      /* strengths.min 0.1, > 0 */
    double strength_max;      /* strengths.max 5.0, >= min */
    int strength_steps;       /* strengths.steps 15, >= 1 */
    double max_epochs;        /* 15, > 0 */
    double min_weight;        /* 2e-4, in [0, 1) */
    double target_tokens;     /* 0 = unknown; else the target run's token budget */
} spec_sampling_t;

typedef struct spec_synthetic {
    double *optimum; /* [ndomains]: the given weights (absent domains 0), or the prior if none */
    int optimum_given;
    double noise;     /* 0, >= 0: std-dev of Gaussian noise added to each loss */
    int delay_ms;     /* 0 */
    double fail_rate; /* 0, in [0, 1] */
} spec_synthetic_t;

typedef struct spec_proxy {
    spec_trainer_t trainer; /* builtin */
    int max_attempts;       /* 3, >= 1 */
    int gpus;               /* 0 per run */
    int timeout_s;          /* 0 = none */
    int backoff_ms;         /* 1000: base of the exponential retry backoff */
    spec_model_t model;
    spec_train_t train;
    char **command; /* [ncommand] argv template, required (non-empty) for trainer: command */
    int ncommand;
    spec_synthetic_t synthetic;
} spec_proxy_t;

typedef struct spec_convergence {
    int min_runs;        /* 32 */
    double min_spearman; /* 0.8 */
    int stable_refits;   /* 3 */
    double l1_tol;       /* 0.05 */
    double gain_tol;     /* active sweeps: expected gain of one more run, nats (0.002) */
} spec_convergence_t;

typedef struct spec_regression {
    spec_target_kind_t target_kind; /* `target`: a domain, "mean" (default), or a map */
    int ntargets;                   /* 1 for DOMAIN, 0 for MEAN, >= 1 for WEIGHTED */
    int *target_domains;            /* [ntargets] domain indices */
    double *target_weights;         /* [ntargets] (1.0 for DOMAIN) */
    spec_regmodel_t model;          /* gbdt */
    int simulate;                   /* 1000000 candidates */
    int top_k;                      /* 100, <= simulate */
    int refit_every;                /* 16 */
    int cv_folds;                   /* 5, >= 2 */
    uint64_t seed;                  /* 0 */
    spec_convergence_t convergence;
    spec_on_converge_t on_converge; /* keep */
} spec_regression_t;

typedef struct spec_target {
    spec_launch_t launch;     /* manual */
    spec_launcher_t launcher; /* mpirun */
    int ranks;                /* 1 */
    char **hosts;             /* [nhosts] */
    int nhosts;
    char *hostfile; /* "" when absent; not both hosts and hostfile */
    char **command; /* [ncommand], required (non-empty) for launcher: command */
    int ncommand;
    spec_baseline_t baseline; /* none */
    spec_model_t model;       /* defaults as proxy.model */
    spec_train_t train;       /* defaults as proxy.train */
    char *namespace_;         /* "default" (kubernetes) */
    char *image;              /* "" */
} spec_target_t;

typedef struct spec {
    char *file;   /* the name used in messages (the file name as submitted) */
    char *name;   /* required */
    int priority; /* 0 */
    spec_domain_t *domains;
    int ndomains; /* 2..SPEC_MAX_DOMAINS */
    spec_sampling_t sampling;
    spec_proxy_t proxy;
    spec_regression_t regression;
    spec_target_t target;
} spec_t;

/* Reads and parses the YAML file at `path`. On success *ret is a new spec (free with
 * spec_destroy()). Returns 0, -errno when the file cannot be read, -EFBIG over SPEC_MAX_BYTES,
 * -EINVAL for an invalid spec, -ENOMEM; on failure writes one line to err (if non-NULL). */
int spec_parse_file(const char *path, spec_t **ret, char *err, size_t errlen);

/* Parses `len` bytes of YAML text; `name` (e.g. the submitted file name) prefixes messages and
 * becomes spec->file. Same returns as spec_parse_file(). The text is not kept. */
int spec_parse_string(
        const char *name, const char *text, size_t len, spec_t **ret, char *err, size_t errlen);

/* Frees a spec and everything it owns and sets *self_p to NULL; NULL or *self_p NULL is a
 * harmless no-op. */
void spec_destroy(spec_t **self_p);

/* The defaults of a model and a train section (the paper's 1M proxy, as the YAML's). */
void spec_model_defaults(spec_model_t *m);
void spec_train_defaults(spec_train_t *t);

/* Whether the spec's target trains the proxies' model the proxies' way: the same model shape and
 * every training setting that shapes the result equal (threads and micro_batch aside, which do
 * not change what is computed). Only then is a proxy run's interval at the proposal a statement
 * about the target's objective; a larger target has a loss on its own scale. Returns 1 or 0. */
int spec_target_as_proxy(const spec_t *s);

/* Index of the domain called `name`, or -ENOENT. */
int spec_domain_index(const spec_t *spec, const char *name);

/* Which model/train pair spec_train_json() renders. */
typedef enum spec_stage {
    SPEC_STAGE_PROXY,
    SPEC_STAGE_TARGET,
} spec_stage_t;

/* Renders the stage's model and train sections as a compact JSON object
 * {"model": {"layers": 2, ...}, "train": {"batch": 512, ..., "schedule": "constant", ...}} with
 * the keys of the YAML. Returns a malloc'd string the caller frees, or NULL on allocation
 * failure. */
char *spec_train_json(const spec_t *spec, spec_stage_t stage);

/* Renders the domains' data as a compact JSON object
 * {"<domain>": {"train": GLOB, "valid": GLOB, "bytes_per_token": X}, ...} in domain order; keys
 * absent from the spec are omitted. Returns a malloc'd string the caller frees, or NULL. */
char *spec_domains_json(const spec_t *spec);

/* The YAML word of an enum value (e.g. "gbdt", "constant", "mpirun"); "?" if out of range. */
const char *spec_trainer_name(spec_trainer_t v);
const char *spec_schedule_name(spec_schedule_t v);
const char *spec_regmodel_name(spec_regmodel_t v);
const char *spec_launcher_name(spec_launcher_t v);

#endif
