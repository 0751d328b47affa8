/* spec: the sweep spec YAML (libfyaml) into a validated spec_t, and its JSON renderings (see
 * spec.h). Parsing is table driven: each YAML mapping has a table of its keys with a type, an
 * offset into the struct it fills, and bounds; cross-field checks run once the whole document
 * is read, with positions looked up by path so every message names file:line:col. */
#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "fitpipe.h"
#include "slurp.h"

/* Parse state: the first error wins and stops the parse. */
typedef struct pctx {
    const char *file;
    char *err;
    size_t errlen;
    struct fy_node *root;
    struct fy_node *at;           /* key whose value is being parsed: the position of last resort */
    struct fy_node *target_node;  /* regression.target, resolved once domains are known */
    struct fy_node *optimum_node; /* proxy.synthetic.optimum, likewise */
    int rc;
} pctx_t;

static bool node_pos(struct fy_node *n, int *line, int *col)
{
    for (int depth = 0; n && depth < 64; depth++) {
        if (fy_node_is_scalar(n)) {
            struct fy_token *t = fy_node_get_scalar_token(n);
            const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
            if (!m)
                return false;
            *line = m->line + 1;
            *col = m->column + 1;
            return true;
        }
        void *it = NULL;
        if (fy_node_is_mapping(n)) {
            struct fy_node_pair *pr = fy_node_mapping_iterate(n, &it);
            n = pr ? fy_node_pair_key(pr) : NULL;
        } else if (fy_node_is_sequence(n)) {
            n = fy_node_sequence_iterate(n, &it);
        } else {
            return false;
        }
    }
    return false;
}

static int fail(pctx_t *p, struct fy_node *n, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Records the error "FILE:LINE:COL: PATH: message" (position of n, else of the current key). */
static int fail(pctx_t *p, struct fy_node *n, const char *path, const char *fmt, ...)
{
    if (p->rc < 0)
        return p->rc;
    p->rc = -EINVAL;
    if (!p->err || p->errlen == 0)
        return p->rc;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = 0, col = 0;
    if (node_pos(n, &line, &col) || node_pos(p->at, &line, &col) || node_pos(p->root, &line, &col))
        snprintf(p->err, p->errlen, "%s:%d:%d: %s: %s", p->file, line, col,
                 path && *path ? path : "(document)", msg);
    else
        snprintf(p->err, p->errlen, "%s:1:1: %s: %s", p->file, path && *path ? path : "(document)",
                 msg);
    return p->rc;
}

static int oom(pctx_t *p)
{
    if (p->rc < 0)
        return p->rc;
    p->rc = -ENOMEM;
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "%s: out of memory", p->file);
    return p->rc;
}

static const char *node_kind(struct fy_node *v)
{
    if (!v)
        return "nothing";
    if (fy_node_is_mapping(v))
        return "a mapping";
    if (fy_node_is_sequence(v))
        return "a sequence";
    return "a scalar";
}

/* Where to point for a value of the wrong kind: a scalar's own position, else its key's (a block
 * collection's first item is not where the mistake is). */
static struct fy_node *where(pctx_t *p, struct fy_node *v)
{
    return v && fy_node_is_scalar(v) ? v : p->at;
}

static bool is_null(struct fy_node *v, const char *s, size_t len)
{
    if (fy_node_get_style(v) != FYNS_PLAIN)
        return false;
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

/* The text of a scalar value into buf; `what` names the expected type in messages. Rejects
 * non-scalars, aliases and null. */
static int scalar(pctx_t *p,
                  struct fy_node *v,
                  const char *path,
                  const char *what,
                  char *buf,
                  size_t bufsz,
                  bool *quoted)
{
    if (!v || !fy_node_is_scalar(v))
        return fail(p, where(p, v), path, "must be %s, not %s", what, node_kind(v));
    if (fy_node_get_style(v) == FYNS_ALIAS)
        return fail(p, v, path, "YAML aliases are not supported");
    size_t len = 0;
    const char *s = fy_node_get_scalar(v, &len);
    if (!s)
        s = "";
    if (is_null(v, s, len))
        return fail(p, v, path, "must be %s, not null", what);
    if (len >= bufsz)
        return fail(p, v, path, "value longer than %zu bytes", bufsz - 1);
    if (memchr(s, '\0', len))
        return fail(p, v, path, "NUL byte in value");
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (quoted)
        *quoted = fy_node_get_style(v) != FYNS_PLAIN;
    return 0;
}

/* Largest string value (paths, globs, argv words). */
#define SPEC_STR_MAX 4096

static int get_str(pctx_t *p, struct fy_node *v, const char *path, char **out)
{
    char buf[SPEC_STR_MAX + 1];
    int rc = scalar(p, v, path, "a string", buf, sizeof buf, NULL);
    if (rc < 0)
        return rc;
    char *s = strdup(buf);
    if (!s)
        return oom(p);
    free(*out);
    *out = s;
    return 0;
}

/* Bounds of a number: [lo, hi], or (lo, hi] with lo_excl. */
typedef struct bounds {
    double lo, hi;
    bool lo_excl;
} bounds_t;

static int check_bounds(pctx_t *p, struct fy_node *v, const char *path, double x, bounds_t b)
{
    /* %.15g prints integral bounds without a fraction. */
    char lo[64], hi[64];
    snprintf(lo, sizeof lo, "%.15g", b.lo);
    snprintf(hi, sizeof hi, "%.15g", b.hi);
    if (b.lo_excl && !(x > b.lo))
        return b.lo == 0 ? fail(p, v, path, "must be positive")
                         : fail(p, v, path, "must be greater than %s", lo);
    if (!b.lo_excl && !(x >= b.lo))
        return b.lo == 0 ? fail(p, v, path, "must not be negative")
                         : fail(p, v, path, "must be at least %s", lo);
    if (!(x <= b.hi))
        return fail(p, v, path, "must be at most %s", hi);
    return 0;
}

static int
parse_number(pctx_t *p, struct fy_node *v, const char *path, const char *what, double *out)
{
    char buf[128];
    bool quoted = false;
    int rc = scalar(p, v, path, what, buf, sizeof buf, &quoted);
    if (rc < 0)
        return rc;
    if (quoted)
        return fail(p, v, path, "must be %s, not a quoted string", what);
    char *end;
    errno = 0;
    double x = strtod(buf, &end);
    if (end == buf || *end)
        return fail(p, v, path, "must be %s, got '%s'", what, buf);
    if (!isfinite(x) || (errno == ERANGE && fabs(x) > 1.0))
        return fail(p, v, path, "must be a finite number, got '%s'", buf);
    *out = x;
    return 0;
}

static int get_double(pctx_t *p, struct fy_node *v, const char *path, bounds_t b, double *out)
{
    double x;
    int rc = parse_number(p, v, path, "a number", &x);
    if (rc < 0)
        return rc;
    rc = check_bounds(p, v, path, x, b);
    if (rc < 0)
        return rc;
    *out = x;
    return 0;
}

static int get_int(pctx_t *p, struct fy_node *v, const char *path, bounds_t b, int *out)
{
    double x;
    int rc = parse_number(p, v, path, "an integer", &x);
    if (rc < 0)
        return rc;
    if (x != floor(x))
        return fail(p, v, path, "must be an integer, got %g", x);
    rc = check_bounds(p, v, path, x, b);
    if (rc < 0)
        return rc;
    *out = (int)x;
    return 0;
}

static int get_u64(pctx_t *p, struct fy_node *v, const char *path, uint64_t *out)
{
    char buf[64];
    bool quoted = false;
    int rc = scalar(p, v, path, "a non-negative integer", buf, sizeof buf, &quoted);
    if (rc < 0)
        return rc;
    if (quoted)
        return fail(p, v, path, "must be a non-negative integer, not a quoted string");
    char *end;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (!isdigit((unsigned char)buf[0]) || *end || errno == ERANGE)
        return fail(p, v, path, "must be an integer in 0..18446744073709551615, got '%s'", buf);
    *out = (uint64_t)x;
    return 0;
}

static int
get_enum(pctx_t *p, struct fy_node *v, const char *path, const char *const *words, int *out)
{
    char buf[64];
    int rc = scalar(p, v, path, "a word", buf, sizeof buf, NULL);
    if (rc < 0)
        return rc;
    char list[256] = "";
    for (int i = 0; words[i]; i++) {
        if (strcmp(words[i], buf) == 0) {
            *out = i;
            return 0;
        }
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", words[i]);
    }
    return fail(p, v, path, "must be one of %s, got '%s'", list, buf);
}

#define SPEC_LIST_MAX 1024

static int get_str_list(pctx_t *p, struct fy_node *v, const char *path, char ***out, int *n)
{
    if (!v || !fy_node_is_sequence(v))
        return fail(p, where(p, v), path, "must be a sequence of strings, not %s", node_kind(v));
    int count = fy_node_sequence_item_count(v);
    if (count > SPEC_LIST_MAX)
        return fail(p, v, path, "more than %d items", SPEC_LIST_MAX);
    char **list = calloc((size_t)count + 1, sizeof *list);
    if (!list)
        return oom(p);
    void *it = NULL;
    struct fy_node *item;
    int i = 0;
    while ((item = fy_node_sequence_iterate(v, &it)) && i < count) {
        char sub[256];
        snprintf(sub, sizeof sub, "%s[%d]", path, i);
        struct fy_node *saved = p->at;
        p->at = item; /* a wrong-kind item is reported at the item, not at the list's key */
        int rc = get_str(p, item, sub, &list[i]);
        p->at = saved;
        if (rc < 0) {
            for (int j = 0; j <= i; j++)
                free(list[j]);
            free(list);
            return p->rc;
        }
        i++;
    }
    for (int j = 0; j < *n; j++)
        free((*out)[j]);
    free(*out);
    *out = list;
    *n = i;
    return 0;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > SPEC_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

/* ---- tables ------------------------------------------------------------------------------- */

typedef enum ftype {
    FT_INT,
    FT_U64,
    FT_DBL,
    FT_STR,
    FT_NAME, /* a string matching [A-Za-z0-9_.-]{1,64} */
    FT_ENUM,
    FT_STRLIST, /* char ** at off, int count at off2 */
    FT_SUB,     /* a nested mapping described by sub, filling the struct at off */
    FT_FN,      /* custom handler */
} ftype_t;

typedef struct field field_t;
typedef int (*field_fn)(pctx_t *p, struct fy_node *v, const char *path, void *obj);

struct field {
    const char *key;
    ftype_t type;
    size_t off, off2;
    bounds_t b;
    const char *const *words;
    const field_t *sub;
    field_fn fn;
};

#define INF HUGE_VAL
#define POS(hi_)                                                                                   \
    {                                                                                              \
        0, hi_, true                                                                               \
    }
#define NONNEG(hi_)                                                                                \
    {                                                                                              \
        0, hi_, false                                                                              \
    }
#define RANGE(lo_, hi_)                                                                            \
    {                                                                                              \
        lo_, hi_, false                                                                            \
    }

static int parse_map(pctx_t *p,
                     struct fy_node *m,
                     const char *path,
                     const field_t *fields,
                     void *obj,
                     unsigned *seen);

static int parse_field(pctx_t *p, const field_t *f, struct fy_node *v, const char *path, void *obj)
{
    char *base = obj;
    switch (f->type) {
    case FT_INT:
        return get_int(p, v, path, f->b, (int *)(base + f->off));
    case FT_U64:
        return get_u64(p, v, path, (uint64_t *)(base + f->off));
    case FT_DBL:
        return get_double(p, v, path, f->b, (double *)(base + f->off));
    case FT_STR:
        return get_str(p, v, path, (char **)(base + f->off));
    case FT_NAME: {
        int rc = get_str(p, v, path, (char **)(base + f->off));
        if (rc < 0)
            return rc;
        if (!valid_name(*(char **)(base + f->off)))
            return fail(p, v, path, "must match [A-Za-z0-9_.-]{1,%d}", SPEC_NAME_MAX);
        return 0;
    }
    case FT_ENUM: {
        int x;
        int rc = get_enum(p, v, path, f->words, &x);
        if (rc == 0)
            memcpy(base + f->off, &x, sizeof x); /* every spec enum is int-sized */
        return rc;
    }
    case FT_STRLIST:
        return get_str_list(p, v, path, (char ***)(base + f->off), (int *)(base + f->off2));
    case FT_SUB:
        return parse_map(p, v, path, f->sub, base + f->off, NULL);
    case FT_FN:
        return f->fn(p, v, path, obj);
    }
    return fail(p, v, path, "internal error: unknown field type");
}

/* Fills obj from mapping m by the table; *seen (if non-NULL) gets bit i for fields[i] present. */
static int parse_map(pctx_t *p,
                     struct fy_node *m,
                     const char *path,
                     const field_t *fields,
                     void *obj,
                     unsigned *seen)
{
    if (!m || !fy_node_is_mapping(m))
        return fail(p, where(p, m), path, "must be a mapping, not %s", node_kind(m));
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(m, &it))) {
        struct fy_node *k = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        char key[128];
        if (scalar(p, k, path, "a key", key, sizeof key, NULL) < 0)
            return p->rc;
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
        int i = 0;
        while (fields[i].key && strcmp(fields[i].key, key) != 0)
            i++;
        if (!fields[i].key)
            return fail(p, k, sub, "unknown key");
        struct fy_node *saved = p->at;
        p->at = k;
        int rc = parse_field(p, &fields[i], v, sub, obj);
        p->at = saved;
        if (rc < 0)
            return rc;
        if (seen)
            *seen |= 1u << i;
    }
    return 0;
}

static const char *const trainer_words[] = {"builtin", "command", "synthetic", NULL};
static const char *const schedule_words[] = {"constant", "cosine", "linear", NULL};
/* regression.model: the fit pipeline's model table (fitpipe.h). */
#define regmodel_words fitpipe_model_words
static const char *const on_converge_words[] = {"keep", "cancel", NULL};
static const char *const strategy_words[] = {"random", "active", NULL};
static const char *const launch_words[] = {"manual", "auto", NULL};
static const char *const launcher_words[] = {"mpirun", "command", "slurm", "kubernetes", NULL};
static const char *const baseline_words[] = {"none", "prior", NULL};

#define F_INT(s, k, m, b_)                                                                         \
    {                                                                                              \
        .key = k, .type = FT_INT, .off = offsetof(s, m), .b = b_                                   \
    }
#define F_DBL(s, k, m, b_)                                                                         \
    {                                                                                              \
        .key = k, .type = FT_DBL, .off = offsetof(s, m), .b = b_                                   \
    }
#define F_U64(s, k, m)                                                                             \
    {                                                                                              \
        .key = k, .type = FT_U64, .off = offsetof(s, m)                                            \
    }
#define F_STR(s, k, m)                                                                             \
    {                                                                                              \
        .key = k, .type = FT_STR, .off = offsetof(s, m)                                            \
    }
#define F_ENUM(s, k, m, w)                                                                         \
    {                                                                                              \
        .key = k, .type = FT_ENUM, .off = offsetof(s, m), .words = w                               \
    }
#define F_SUB(s, k, m, t)                                                                          \
    {                                                                                              \
        .key = k, .type = FT_SUB, .off = offsetof(s, m), .sub = t                                  \
    }
#define F_LIST(s, k, m, n)                                                                         \
    {                                                                                              \
        .key = k, .type = FT_STRLIST, .off = offsetof(s, m), .off2 = offsetof(s, n)                \
    }
#define F_FN(k, f)                                                                                 \
    {                                                                                              \
        .key = k, .type = FT_FN, .fn = f                                                           \
    }

static const field_t model_fields[] = {
        F_INT(spec_model_t, "layers", layers, RANGE(1, 1024)),
        F_INT(spec_model_t, "heads", heads, RANGE(1, 1024)),
        F_INT(spec_model_t, "dim", dim, RANGE(1, 1 << 20)),
        F_INT(spec_model_t, "ffn", ffn, RANGE(1, 1 << 22)),
        F_INT(spec_model_t, "context", context, RANGE(1, 1 << 22)),
        F_INT(spec_model_t, "vocab", vocab, RANGE(1, 1 << 24)),
        {0},
};

static const field_t train_fields[] = {
        F_INT(spec_train_t, "batch", batch, RANGE(1, 1 << 24)),
        F_INT(spec_train_t, "micro_batch", micro_batch, NONNEG(1 << 24)),
        F_INT(spec_train_t, "steps", steps, RANGE(1, 1e9)),
        F_DBL(spec_train_t, "lr", lr, POS(INF)),
        F_INT(spec_train_t, "warmup", warmup, NONNEG(1e9)),
        F_ENUM(spec_train_t, "schedule", schedule, schedule_words),
        F_DBL(spec_train_t, "min_lr", min_lr, NONNEG(INF)),
        F_DBL(spec_train_t, "weight_decay", weight_decay, NONNEG(INF)),
        F_DBL(spec_train_t, "clip", clip, NONNEG(INF)),
        F_INT(spec_train_t, "eval_batches", eval_batches, RANGE(1, 1 << 20)),
        F_INT(spec_train_t, "threads", threads, NONNEG(4096)),
        {0},
};

static const field_t strengths_fields[] = {
        F_DBL(spec_sampling_t, "min", strength_min, POS(INF)),
        F_DBL(spec_sampling_t, "max", strength_max, POS(INF)),
        F_INT(spec_sampling_t, "steps", strength_steps, RANGE(1, 10000)),
        {0},
};

static int strengths_fn(pctx_t *p, struct fy_node *v, const char *path, void *obj)
{
    return parse_map(p, v, path, strengths_fields, obj, NULL);
}

static const field_t sampling_fields[] = {
        F_INT(spec_sampling_t, "runs", runs, RANGE(1, SPEC_MAX_RUNS)),
        F_ENUM(spec_sampling_t, "strategy", strategy, strategy_words),
        F_INT(spec_sampling_t, "initial", initial, RANGE(1, SPEC_MAX_RUNS)),
        F_INT(spec_sampling_t, "batch", batch, RANGE(1, SPEC_MAX_RUNS)),
        F_U64(spec_sampling_t, "seed", seed),
        F_DBL(spec_sampling_t, "temperature", temperature, POS(INF)),
        F_FN("strengths", strengths_fn),
        F_DBL(spec_sampling_t, "max_epochs", max_epochs, POS(INF)),
        {.key = "min_weight",
         .type = FT_DBL,
         .off = offsetof(spec_sampling_t, min_weight),
         .b = {0, 0.5, false}},
        F_DBL(spec_sampling_t, "target_tokens", target_tokens, NONNEG(INF)),
        {0},
};

static int optimum_fn(pctx_t *p, struct fy_node *v, const char *path, void *obj)
{
    if (!v || !fy_node_is_mapping(v))
        return fail(p, where(p, v), path, "must be a mapping of domain names to weights, not %s",
                    node_kind(v));
    p->optimum_node = v; /* checked once the domains are known */
    return 0;
}

static const field_t synthetic_fields[] = {
        F_FN("optimum", optimum_fn),
        F_DBL(spec_synthetic_t, "noise", noise, NONNEG(INF)),
        F_INT(spec_synthetic_t, "delay_ms", delay_ms, NONNEG(86400000)),
        F_DBL(spec_synthetic_t, "fail_rate", fail_rate, RANGE(0, 1)),
        {0},
};

static const field_t proxy_fields[] = {
        F_ENUM(spec_proxy_t, "trainer", trainer, trainer_words),
        F_INT(spec_proxy_t, "max_attempts", max_attempts, RANGE(1, 100)),
        F_INT(spec_proxy_t, "gpus", gpus, NONNEG(1024)),
        F_INT(spec_proxy_t, "timeout_s", timeout_s, NONNEG(1e9)),
        F_INT(spec_proxy_t, "backoff_ms", backoff_ms, NONNEG(86400000)),
        F_SUB(spec_proxy_t, "model", model, model_fields),
        F_SUB(spec_proxy_t, "train", train, train_fields),
        F_LIST(spec_proxy_t, "command", command, ncommand),
        F_SUB(spec_proxy_t, "synthetic", synthetic, synthetic_fields),
        {0},
};

static const field_t convergence_fields[] = {
        F_INT(spec_convergence_t, "min_runs", min_runs, RANGE(1, SPEC_MAX_RUNS)),
        F_DBL(spec_convergence_t, "min_spearman", min_spearman, RANGE(-1, 1)),
        F_INT(spec_convergence_t, "stable_refits", stable_refits, RANGE(1, 1000000)),
        F_DBL(spec_convergence_t, "l1_tol", l1_tol, NONNEG(2)),
        F_DBL(spec_convergence_t, "gain_tol", gain_tol, NONNEG(INF)),
        {0},
};

static int target_fn(pctx_t *p, struct fy_node *v, const char *path, void *obj)
{
    if (!v || (!fy_node_is_scalar(v) && !fy_node_is_mapping(v)))
        return fail(p, where(p, v), path,
                    "must be a domain name, \"mean\", or a mapping of domain names "
                    "to weights, not %s",
                    node_kind(v));
    p->target_node = v; /* resolved once the domains are known */
    return 0;
}

static const field_t regression_fields[] = {
        F_FN("target", target_fn),
        F_ENUM(spec_regression_t, "model", model, regmodel_words),
        F_INT(spec_regression_t, "simulate", simulate, RANGE(1, SPEC_MAX_SIMULATE)),
        F_INT(spec_regression_t, "top_k", top_k, RANGE(1, SPEC_MAX_TOP_K)),
        F_INT(spec_regression_t, "refit_every", refit_every, RANGE(1, SPEC_MAX_RUNS)),
        F_INT(spec_regression_t, "cv_folds", cv_folds, RANGE(2, 1000)),
        F_U64(spec_regression_t, "seed", seed),
        F_SUB(spec_regression_t, "convergence", convergence, convergence_fields),
        F_ENUM(spec_regression_t, "on_converge", on_converge, on_converge_words),
        {0},
};

static const field_t target_fields[] = {
        F_ENUM(spec_target_t, "launch", launch, launch_words),
        F_ENUM(spec_target_t, "launcher", launcher, launcher_words),
        F_INT(spec_target_t, "ranks", ranks, RANGE(1, 1 << 20)),
        F_LIST(spec_target_t, "hosts", hosts, nhosts),
        F_STR(spec_target_t, "hostfile", hostfile),
        F_LIST(spec_target_t, "command", command, ncommand),
        F_ENUM(spec_target_t, "baseline", baseline, baseline_words),
        F_SUB(spec_target_t, "model", model, model_fields),
        F_SUB(spec_target_t, "train", train, train_fields),
        F_STR(spec_target_t, "namespace", namespace_),
        F_STR(spec_target_t, "image", image),
        {0},
};

static const field_t domain_fields[] = {
        {.key = "name", .type = FT_NAME, .off = offsetof(spec_domain_t, name)},
        F_DBL(spec_domain_t, "tokens", tokens, POS(INF)),
        F_STR(spec_domain_t, "train", train),
        F_STR(spec_domain_t, "valid", valid),
        F_DBL(spec_domain_t, "bytes_per_token", bytes_per_token, POS(INF)),
        {0},
};

static int domains_fn(pctx_t *p, struct fy_node *v, const char *path, void *obj)
{
    spec_t *s = obj;
    if (!v || !fy_node_is_sequence(v))
        return fail(p, where(p, v), path, "must be a sequence of domains, not %s", node_kind(v));
    int n = fy_node_sequence_item_count(v);
    /* Point at the `domains` key: the first item's position would suggest that item is wrong. */
    if (n < 2)
        return fail(p, p->at, path, "at least 2 domains are required, got %d", n);
    if (n > SPEC_MAX_DOMAINS)
        return fail(p, p->at, path, "more than %d domains (%d)", SPEC_MAX_DOMAINS, n);
    s->domains = calloc((size_t)n, sizeof *s->domains);
    if (!s->domains)
        return oom(p);
    void *it = NULL;
    struct fy_node *item;
    int i = 0;
    while ((item = fy_node_sequence_iterate(v, &it)) && i < n) {
        char sub[64];
        snprintf(sub, sizeof sub, "%s[%d]", path, i);
        spec_domain_t *d = &s->domains[i];
        s->ndomains = ++i; /* so spec_destroy() sees what this item allocated */
        unsigned seen = 0;
        if (parse_map(p, item, sub, domain_fields, d, &seen) < 0)
            return p->rc;
        if (!(seen & 1u))
            return fail(p, item, sub, "required key 'name' missing");
        if (!(seen & 2u))
            return fail(p, item, sub, "required key 'tokens' missing");
        for (int j = 0; j < i - 1; j++) {
            if (strcmp(s->domains[j].name, d->name) == 0) {
                char np[80];
                snprintf(np, sizeof np, "%s.name", sub);
                struct fy_node *nn = fy_node_by_path(item, "/name", (size_t)-1, FYNWF_DONT_FOLLOW);
                return fail(p, nn, np, "duplicate domain name '%s' (also domains[%d])", d->name, j);
            }
        }
    }
    return 0;
}

static int name_fn(pctx_t *p, struct fy_node *v, const char *path, void *obj)
{
    static const field_t f = {.key = "name", .type = FT_NAME, .off = offsetof(spec_t, name)};
    return parse_field(p, &f, v, path, obj);
}

static const field_t root_fields[] = {
        F_FN("name", name_fn),
        {.key = "priority",
         .type = FT_INT,
         .off = offsetof(spec_t, priority),
         .b = {-1e6, 1e6, false}},
        F_FN("domains", domains_fn),
        F_SUB(spec_t, "sampling", sampling, sampling_fields),
        F_SUB(spec_t, "proxy", proxy, proxy_fields),
        F_SUB(spec_t, "regression", regression, regression_fields),
        F_SUB(spec_t, "target", target, target_fields),
        {0},
};

/* ---- defaults, cross-field checks ----------------------------------------------------------- */

void spec_model_defaults(spec_model_t *m)
{
    *m = (spec_model_t){
            .layers = 2, .heads = 8, .dim = 256, .ffn = 512, .context = 2048, .vocab = 50432};
}

int spec_target_as_proxy(const spec_t *s)
{
    const spec_model_t *pm = &s->proxy.model, *tm = &s->target.model;
    const spec_train_t *pt = &s->proxy.train, *tt = &s->target.train;
    return pm->layers == tm->layers && pm->heads == tm->heads && pm->dim == tm->dim &&
           pm->ffn == tm->ffn && pm->context == tm->context && pm->vocab == tm->vocab &&
           pt->batch == tt->batch && pt->steps == tt->steps && pt->lr == tt->lr &&
           pt->warmup == tt->warmup && pt->schedule == tt->schedule && pt->min_lr == tt->min_lr &&
           pt->weight_decay == tt->weight_decay && pt->clip == tt->clip &&
           pt->eval_batches == tt->eval_batches;
}

void spec_train_defaults(spec_train_t *t)
{
    *t = (spec_train_t){.batch = 512,
                        .micro_batch = 0,
                        .steps = 1000,
                        .lr = 4.0e-4,
                        .warmup = 100,
                        .schedule = SPEC_SCHEDULE_CONSTANT,
                        .min_lr = 0,
                        .weight_decay = 0.1,
                        .clip = 1.0,
                        .eval_batches = 8,
                        .threads = 0};
}

static int set_defaults(spec_t *s)
{
    s->priority = 0;
    s->sampling = (spec_sampling_t){.runs = 512,
                                    .seed = 42,
                                    .temperature = 0.5,
                                    .strength_min = 0.1,
                                    .strength_max = 5.0,
                                    .strength_steps = 15,
                                    .max_epochs = 15,
                                    .min_weight = 2.0e-4,
                                    .target_tokens = 0,
                                    .strategy = SPEC_STRATEGY_RANDOM,
                                    .initial = 0,
                                    .batch = 0};
    s->proxy.trainer = SPEC_TRAINER_BUILTIN;
    s->proxy.max_attempts = 3;
    s->proxy.gpus = 0;
    s->proxy.timeout_s = 0;
    s->proxy.backoff_ms = 1000;
    spec_model_defaults(&s->proxy.model);
    spec_train_defaults(&s->proxy.train);
    s->regression.target_kind = SPEC_TARGET_MEAN;
    s->regression.model = SPEC_REGMODEL_GBDT;
    s->regression.simulate = 1000000;
    s->regression.top_k = 100;
    s->regression.refit_every = 16;
    s->regression.cv_folds = 5;
    s->regression.seed = 0;
    s->regression.convergence = (spec_convergence_t){.min_runs = 32,
                                                     .min_spearman = 0.8,
                                                     .stable_refits = 3,
                                                     .l1_tol = 0.05,
                                                     .gain_tol = SPEC_GAIN_TOL};
    s->regression.on_converge = SPEC_ON_CONVERGE_KEEP;
    s->target.launch = SPEC_LAUNCH_MANUAL;
    s->target.launcher = SPEC_LAUNCHER_MPIRUN;
    s->target.ranks = 1;
    s->target.baseline = SPEC_BASELINE_NONE;
    spec_model_defaults(&s->target.model);
    spec_train_defaults(&s->target.train);
    s->target.hostfile = strdup("");
    s->target.namespace_ = strdup("default");
    s->target.image = strdup("");
    return s->target.hostfile && s->target.namespace_ && s->target.image ? 0 : -ENOMEM;
}

/* The value at a "/a/b" path for the position of a cross-field error: the value itself when it
 * has a position, else its key (an empty sequence has none); NULL when the key is absent. */
static struct fy_node *node_at(pctx_t *p, const char *ypath)
{
    const char *slash = strrchr(ypath, '/');
    struct fy_node *parent =
            slash == ypath
                    ? p->root
                    : fy_node_by_path(p->root, ypath, (size_t)(slash - ypath), FYNWF_DONT_FOLLOW);
    if (!parent || !fy_node_is_mapping(parent))
        return NULL;
    const char *want = slash + 1;
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(parent, &it))) {
        struct fy_node *k = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
        size_t len = 0;
        const char *ks = k && fy_node_is_scalar(k) ? fy_node_get_scalar(k, &len) : NULL;
        if (!ks || len != strlen(want) || memcmp(ks, want, len) != 0)
            continue;
        int line, col;
        return v && node_pos(v, &line, &col) ? v : k;
    }
    return NULL;
}

/* The first of the paths that exists, for an error about a value that may be defaulted. */
static struct fy_node *node_at2(pctx_t *p, const char *a, const char *b)
{
    struct fy_node *n = node_at(p, a);
    return n ? n : node_at(p, b);
}

static int domain_of(pctx_t *p, const spec_t *s, struct fy_node *v, const char *path, int *ret)
{
    char buf[SPEC_NAME_MAX * 4];
    if (scalar(p, v, path, "a domain name", buf, sizeof buf, NULL) < 0)
        return p->rc;
    int i = spec_domain_index(s, buf);
    if (i < 0)
        return fail(p, v, path, "'%s' is not a domain of this spec", buf);
    *ret = i;
    return 0;
}

static int resolve_target(pctx_t *p, spec_t *s)
{
    spec_regression_t *r = &s->regression;
    struct fy_node *v = p->target_node;
    if (!v)
        return 0; /* default: mean */
    if (fy_node_is_scalar(v)) {
        size_t len = 0;
        const char *t = fy_node_get_scalar(v, &len);
        if (t && len == 4 && memcmp(t, "mean", 4) == 0) {
            r->target_kind = SPEC_TARGET_MEAN;
            return 0;
        }
        r->target_domains = calloc(1, sizeof *r->target_domains);
        r->target_weights = calloc(1, sizeof *r->target_weights);
        if (!r->target_domains || !r->target_weights)
            return oom(p);
        if (domain_of(p, s, v, "regression.target", &r->target_domains[0]) < 0)
            return p->rc;
        r->target_weights[0] = 1.0;
        r->ntargets = 1;
        r->target_kind = SPEC_TARGET_DOMAIN;
        return 0;
    }
    int n = fy_node_mapping_item_count(v);
    if (n < 1)
        return fail(p, v, "regression.target", "the mapping of weights is empty");
    r->target_domains = calloc((size_t)n, sizeof *r->target_domains);
    r->target_weights = calloc((size_t)n, sizeof *r->target_weights);
    if (!r->target_domains || !r->target_weights)
        return oom(p);
    void *it = NULL;
    struct fy_node_pair *pr;
    int i = 0;
    while ((pr = fy_node_mapping_iterate(v, &it)) && i < n) {
        char key[SPEC_NAME_MAX * 4], path[SPEC_NAME_MAX * 4 + 32];
        if (scalar(p, fy_node_pair_key(pr), "regression.target", "a domain name", key, sizeof key,
                   NULL) < 0)
            return p->rc;
        snprintf(path, sizeof path, "regression.target.%s", key);
        if (domain_of(p, s, fy_node_pair_key(pr), path, &r->target_domains[i]) < 0)
            return p->rc;
        if (get_double(p, fy_node_pair_value(pr), path, (bounds_t)POS(INF), &r->target_weights[i]) <
            0)
            return p->rc;
        i++;
    }
    r->ntargets = i;
    r->target_kind = SPEC_TARGET_WEIGHTED;
    return 0;
}

static int resolve_optimum(pctx_t *p, spec_t *s)
{
    spec_synthetic_t *y = &s->proxy.synthetic;
    y->optimum = calloc((size_t)s->ndomains, sizeof *y->optimum);
    if (!y->optimum)
        return oom(p);
    struct fy_node *v = p->optimum_node;
    if (!v) {
        for (int i = 0; i < s->ndomains; i++)
            y->optimum[i] = s->domains[i].prior;
        return 0;
    }
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(v, &it))) {
        char key[SPEC_NAME_MAX * 4], path[SPEC_NAME_MAX * 4 + 40];
        if (scalar(p, fy_node_pair_key(pr), "proxy.synthetic.optimum", "a domain name", key,
                   sizeof key, NULL) < 0)
            return p->rc;
        snprintf(path, sizeof path, "proxy.synthetic.optimum.%s", key);
        int d;
        if (domain_of(p, s, fy_node_pair_key(pr), path, &d) < 0)
            return p->rc;
        if (get_double(p, fy_node_pair_value(pr), path, (bounds_t)NONNEG(INF), &y->optimum[d]) < 0)
            return p->rc;
    }
    y->optimum_given = 1;
    return 0;
}

static int check_stage(pctx_t *p, const char *sect, const spec_model_t *m, const spec_train_t *t)
{
    char a[64], b[64], path[64];
    if (m->dim % m->heads != 0) {
        snprintf(a, sizeof a, "/%s/model/dim", sect);
        snprintf(b, sizeof b, "/%s/model/heads", sect);
        snprintf(path, sizeof path, "%s.model.dim", sect);
        return fail(p, node_at2(p, a, b), path, "must be a multiple of heads (%d), got %d",
                    m->heads, m->dim);
    }
    if (t->micro_batch > 0 && t->batch % t->micro_batch != 0) {
        snprintf(a, sizeof a, "/%s/train/micro_batch", sect);
        snprintf(path, sizeof path, "%s.train.micro_batch", sect);
        return fail(p, node_at(p, a), path, "must divide batch (%d), got %d", t->batch,
                    t->micro_batch);
    }
    return 0;
}

/* Strings that end up in a rendered script or manifest (an sbatch file, an MPIJob, an mpirun
 * argv) match a strict pattern, so a spec cannot smuggle a line, a quote or an option into one.
 * host: [A-Za-z0-9._-]+ with an optional :SLOTS; path: [A-Za-z0-9._/+-]+ not starting with '-';
 * namespace: a DNS-1123 label; image: an OCI reference's characters, not starting with '-'. */
typedef enum { PAT_HOST, PAT_PATH, PAT_NAMESPACE, PAT_IMAGE } pattern_t;

static bool matches(const char *s, pattern_t pat)
{
    size_t n = strlen(s), colon = 0;
    if (n == 0 || n > (pat == PAT_NAMESPACE ? 63u : 253u) || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool ok = isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
        switch (pat) {
        case PAT_HOST:
            if (ch == ':' && !colon && i > 0) {
                colon = i;
                ok = true;
            } else if (colon && !isdigit(ch)) {
                ok = false;
            }
            break;
        case PAT_PATH:
            ok = ok || ch == '/' || ch == '+';
            break;
        case PAT_NAMESPACE:
            ok = islower(ch) || isdigit(ch) || (ch == '-' && i + 1 < n);
            break;
        case PAT_IMAGE:
            ok = ok || ch == '/' || ch == ':' || ch == '@';
            break;
        }
        if (!ok)
            return false;
    }
    return !(pat == PAT_HOST && colon && colon == n - 1);
}

static int check_strings(pctx_t *p, const spec_t *s)
{
    char ypath[64], kpath[64];
    for (int i = 0; i < s->target.nhosts; i++) {
        if (!matches(s->target.hosts[i], PAT_HOST)) {
            snprintf(ypath, sizeof ypath, "/target/hosts/%d", i);
            snprintf(kpath, sizeof kpath, "target.hosts[%d]", i);
            return fail(p, node_at2(p, ypath, "/target/hosts"), kpath,
                        "must be a host name ([A-Za-z0-9._-], optional :SLOTS)");
        }
    }
    if (s->target.hostfile[0] && !matches(s->target.hostfile, PAT_PATH))
        return fail(p, node_at(p, "/target/hostfile"), "target.hostfile",
                    "must be a path of [A-Za-z0-9._/+-] not starting with '-'");
    if (!matches(s->target.namespace_, PAT_NAMESPACE))
        return fail(p, node_at(p, "/target/namespace"), "target.namespace",
                    "must be a Kubernetes namespace name ([a-z0-9-], at most 63)");
    if (s->target.image[0] && !matches(s->target.image, PAT_IMAGE))
        return fail(p, node_at(p, "/target/image"), "target.image",
                    "must be an image reference ([A-Za-z0-9._/:@-]) not starting with '-'");
    return 0;
}

static int check_all(pctx_t *p, spec_t *s, unsigned seen)
{
    if (!(seen & 1u))
        return fail(p, p->root, "name", "required key missing");
    if (!(seen & 4u))
        return fail(p, p->root, "domains", "required key missing");
    double total = 0;
    for (int i = 0; i < s->ndomains; i++)
        total += s->domains[i].tokens;
    if (!isfinite(total))
        return fail(p, node_at(p, "/domains"), "domains", "total tokens overflow");
    for (int i = 0; i < s->ndomains; i++)
        s->domains[i].prior = s->domains[i].tokens / total;

    const spec_sampling_t *sm = &s->sampling;
    if (sm->strength_max < sm->strength_min)
        return fail(p, node_at2(p, "/sampling/strengths/max", "/sampling/strengths/min"),
                    "sampling.strengths.max", "must be at least strengths.min (%g), got %g",
                    sm->strength_min, sm->strength_max);
    if (sm->initial > sm->runs)
        return fail(p, node_at2(p, "/sampling/initial", "/sampling/runs"), "sampling.initial",
                    "must be at most runs (%d), got %d", sm->runs, sm->initial);
    if (sm->batch > sm->runs)
        return fail(p, node_at2(p, "/sampling/batch", "/sampling/runs"), "sampling.batch",
                    "must be at most runs (%d), got %d", sm->runs, sm->batch);
    if (sm->strategy != SPEC_STRATEGY_ACTIVE && node_at2(p, "/sampling/initial", "/sampling/batch"))
        return fail(p, node_at2(p, "/sampling/initial", "/sampling/batch"), "sampling.strategy",
                    "initial and batch need strategy: active");
    /* An active sweep's first refit (and so its first round) needs max(cv_folds, 2) results:
     * the default first design has at least that many runs, a given one must. */
    int least = s->regression.cv_folds > 2 ? s->regression.cv_folds : 2;
    if (sm->initial == 0)
        s->sampling.initial = sm->runs / 4 > least ? sm->runs / 4 : least;
    if (sm->initial > sm->runs)
        s->sampling.initial = sm->runs;
    if (sm->strategy == SPEC_STRATEGY_ACTIVE && sm->initial < least)
        return fail(p, node_at2(p, "/sampling/initial", "/sampling/runs"), "sampling.initial",
                    "must be at least max(regression.cv_folds, 2) = %d with strategy: active "
                    "(the first refit needs that many results), got %d",
                    least, sm->initial);
    if (sm->strategy == SPEC_STRATEGY_ACTIVE && sm->runs > SPEC_MAX_ACTIVE_RUNS)
        return fail(p, node_at2(p, "/sampling/runs", "/sampling/strategy"), "sampling.runs",
                    "must be at most %d with strategy: active (each refit fits a Gaussian "
                    "process on every result), got %d",
                    SPEC_MAX_ACTIVE_RUNS, sm->runs);
    if (sm->batch == 0)
        s->sampling.batch = sm->runs < 8 ? sm->runs : 8;
    if (check_stage(p, "proxy", &s->proxy.model, &s->proxy.train) < 0 ||
        check_stage(p, "target", &s->target.model, &s->target.train) < 0)
        return p->rc;
    if (s->proxy.trainer == SPEC_TRAINER_COMMAND && s->proxy.ncommand == 0)
        return fail(p, node_at2(p, "/proxy/command", "/proxy/trainer"), "proxy.command",
                    "a non-empty argv list is required when trainer is command");
    if (s->regression.top_k > s->regression.simulate)
        return fail(p, node_at2(p, "/regression/top_k", "/regression/simulate"), "regression.top_k",
                    "must be at most simulate (%d), got %d", s->regression.simulate,
                    s->regression.top_k);
    if (s->target.launcher == SPEC_LAUNCHER_COMMAND && s->target.ncommand == 0)
        return fail(p, node_at2(p, "/target/command", "/target/launcher"), "target.command",
                    "a non-empty argv list is required when launcher is command");
    if (s->target.nhosts > 0 && s->target.hostfile[0])
        return fail(p, node_at(p, "/target/hostfile"), "target.hostfile",
                    "give either hosts or hostfile, not both");
    if ((double)s->sampling.runs * s->ndomains > SPEC_MAX_WEIGHTS)
        return fail(p, node_at2(p, "/sampling/runs", "/domains"), "sampling.runs",
                    "runs x domains must be at most %d, got %d x %d", SPEC_MAX_WEIGHTS,
                    s->sampling.runs, s->ndomains);
    if (check_strings(p, s) < 0)
        return p->rc;
    if (resolve_target(p, s) < 0 || resolve_optimum(p, s) < 0)
        return p->rc;
    return 0;
}

/* ---- entry points ------------------------------------------------------------------------- */

void spec_destroy(spec_t **self_p)
{
    spec_t *s = self_p ? *self_p : NULL;
    if (!s)
        return;
    *self_p = NULL;
    free(s->file);
    free(s->name);
    for (int i = 0; i < s->ndomains; i++) {
        free(s->domains[i].name);
        free(s->domains[i].train);
        free(s->domains[i].valid);
    }
    free(s->domains);
    for (int i = 0; i < s->proxy.ncommand; i++)
        free(s->proxy.command[i]);
    free(s->proxy.command);
    free(s->proxy.synthetic.optimum);
    free(s->regression.target_domains);
    free(s->regression.target_weights);
    for (int i = 0; i < s->target.nhosts; i++)
        free(s->target.hosts[i]);
    free(s->target.hosts);
    for (int i = 0; i < s->target.ncommand; i++)
        free(s->target.command[i]);
    free(s->target.command);
    free(s->target.hostfile);
    free(s->target.namespace_);
    free(s->target.image);
    free(s);
}

/*
 * The offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or -1 when all of `text` is. A spec must be
 * UTF-8 (YAML 1.2 allows no other encoding without a BOM), and libfyaml 0.7.12 loops forever on a
 * malformed sequence in a directive line ("%#\xc4"), so nothing else reaches it.
 */
static long spec__utf8_invalid(const unsigned char *t, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = t[i];
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return (long)i;
        }
        if (i + n >= len) /* truncated */
            return (long)i;
        if (t[i + 1] < lo || t[i + 1] > hi)
            return (long)i;
        for (size_t k = 2; k <= n; k++)
            if (t[i + k] < 0x80 || t[i + k] > 0xbf)
                return (long)i;
        i += n + 1;
    }
    return -1;
}

int spec_parse_string(
        const char *name, const char *text, size_t len, spec_t **ret, char *err, size_t errlen)
{
    if (!name)
        name = "(spec)";
    if (len > SPEC_MAX_BYTES) {
        errbuf_set(err, errlen, "%s: spec is %zu bytes, more than the limit %u", name, len,
                   SPEC_MAX_BYTES);
        return -EFBIG;
    }
    if (memchr(text, '\0', len)) {
        errbuf_set(err, errlen, "%s: NUL byte in spec", name);
        return -EINVAL;
    }
    long bad = spec__utf8_invalid((const unsigned char *)text, len);
    if (bad >= 0) {
        int line = 1, col = 1;
        for (long i = 0; i < bad; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
                col++;
            }
        }
        errbuf_set(err, errlen, "%s:%d:%d: not UTF-8 (byte 0x%02x)", name, line, col,
                   (unsigned char)text[bad]);
        return -EINVAL;
    }
    pctx_t p = {.file = name, .err = err, .errlen = errlen};
    spec_t *s = calloc(1, sizeof *s);
    struct fy_diag *diag = NULL;
    struct fy_document *doc = NULL;
    if (!s || set_defaults(s) < 0 || !(s->file = strdup(name))) {
        oom(&p);
        goto out;
    }
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    if (!diag) {
        oom(&p);
        goto out;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_JSON_NONE,
                               .diag = diag};
    doc = fy_document_build_from_string(&cfg, text, len);
    if (!doc) {
        void *it = NULL;
        struct fy_diag_error *e = fy_diag_errors_iterate(diag, &it);
        if (e)
            errbuf_set(err, errlen, "%s:%d:%d: YAML syntax: %s", name, e->line, e->column,
                       e->msg ? e->msg : "error");
        else
            errbuf_set(err, errlen, "%s:1:1: empty document", name);
        p.rc = -EINVAL;
        goto out;
    }
    p.root = fy_document_root(doc);
    if (!p.root) {
        errbuf_set(err, errlen, "%s:1:1: empty document", name);
        p.rc = -EINVAL;
        goto out;
    }
    unsigned seen = 0;
    if (parse_map(&p, p.root, "", root_fields, s, &seen) < 0)
        goto out;
    if (check_all(&p, s, seen) < 0)
        goto out;
    *ret = s;
    s = NULL;
out:
    fy_document_destroy(doc);
    if (diag)
        fy_diag_destroy(diag);
    spec_destroy(&s);
    return p.rc;
}

int spec_parse_file(const char *path, spec_t **ret, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = slurp_file(path, SPEC_MAX_BYTES, &text, &len);
    if (rc < 0) {
        slurp_error(err, errlen, path, SPEC_MAX_BYTES, rc);
        return rc;
    }
    rc = spec_parse_string(path, text, len, ret, err, errlen);
    free(text);
    return rc;
}

int spec_domain_index(const spec_t *spec, const char *name)
{
    for (int i = 0; i < spec->ndomains; i++)
        if (strcmp(spec->domains[i].name, name) == 0)
            return i;
    return -ENOENT;
}

static const char *word(const char *const *words, int n, int v)
{
    return v >= 0 && v < n ? words[v] : "?";
}

const char *spec_trainer_name(spec_trainer_t v)
{
    return word(trainer_words, 3, (int)v);
}

const char *spec_schedule_name(spec_schedule_t v)
{
    return word(schedule_words, 3, (int)v);
}

const char *spec_regmodel_name(spec_regmodel_t v)
{
    int n = 0;
    while (regmodel_words[n])
        n++;
    return word(regmodel_words, n, (int)v);
}

const char *spec_launcher_name(spec_launcher_t v)
{
    return word(launcher_words, 4, (int)v);
}

/* json_object_set_new that remembers a failure instead of checking each call. */
static void jset(json_t *o, const char *k, json_t *v, bool *ok)
{
    if (!v || json_object_set_new(o, k, v) < 0)
        *ok = false;
}

char *spec_train_json(const spec_t *spec, spec_stage_t stage)
{
    const spec_model_t *m = stage == SPEC_STAGE_TARGET ? &spec->target.model : &spec->proxy.model;
    const spec_train_t *t = stage == SPEC_STAGE_TARGET ? &spec->target.train : &spec->proxy.train;
    bool ok = true;
    json_t *root = json_object(), *jm = json_object(), *jt = json_object();
    if (!root || !jm || !jt) {
        json_decref(root);
        json_decref(jm);
        json_decref(jt);
        return NULL;
    }
    jset(jm, "layers", json_integer(m->layers), &ok);
    jset(jm, "heads", json_integer(m->heads), &ok);
    jset(jm, "dim", json_integer(m->dim), &ok);
    jset(jm, "ffn", json_integer(m->ffn), &ok);
    jset(jm, "context", json_integer(m->context), &ok);
    jset(jm, "vocab", json_integer(m->vocab), &ok);
    jset(jt, "batch", json_integer(t->batch), &ok);
    /* 0 means "the trainer decides" for these two: leave them out rather than pass a 0 the
     * trainer would reject as a flag value. */
    if (t->micro_batch > 0)
        jset(jt, "micro_batch", json_integer(t->micro_batch), &ok);
    jset(jt, "steps", json_integer(t->steps), &ok);
    jset(jt, "lr", json_real(t->lr), &ok);
    jset(jt, "warmup", json_integer(t->warmup), &ok);
    jset(jt, "schedule", json_string(spec_schedule_name(t->schedule)), &ok);
    jset(jt, "min_lr", json_real(t->min_lr), &ok);
    jset(jt, "weight_decay", json_real(t->weight_decay), &ok);
    jset(jt, "clip", json_real(t->clip), &ok);
    jset(jt, "eval_batches", json_integer(t->eval_batches), &ok);
    if (t->threads > 0)
        jset(jt, "threads", json_integer(t->threads), &ok);
    jset(root, "model", jm, &ok);
    jset(root, "train", jt, &ok);
    char *out = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return out;
}

char *spec_domains_json(const spec_t *spec)
{
    bool ok = true;
    json_t *root = json_object();
    if (!root)
        return NULL;
    for (int i = 0; i < spec->ndomains && ok; i++) {
        const spec_domain_t *d = &spec->domains[i];
        json_t *o = json_object();
        if (!o) {
            ok = false;
            break;
        }
        if (d->train)
            jset(o, "train", json_string(d->train), &ok);
        if (d->valid)
            jset(o, "valid", json_string(d->valid), &ok);
        if (d->bytes_per_token > 0)
            jset(o, "bytes_per_token", json_real(d->bytes_per_token), &ok);
        jset(root, d->name, o, &ok);
    }
    char *out = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return out;
}
