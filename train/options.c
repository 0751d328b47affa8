/*
 * options.c: flags and YAML for regmix-train (see options.h).
 */
#include "options.h"

#include <errno.h>
#include <libfyaml.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void options_defaults(train_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->warmup = 0;
    o->eval_batches = 8;
    o->progress_fd = -1;
    o->weight_decay = 0.1;
    o->clip = 1.0;
    o->seed = 1;
    o->lr = 4e-4;
    o->min_lr = 0.0;
}

static int options__int(const char *name, const char *v, int lo, int *ret, char *err, size_t errlen)
{
    char *e;
    errno = 0;
    long x = strtol(v, &e, 10);
    if (errno || e == v || *e || x < lo || x > INT_MAX) {
        snprintf(err, errlen, "--%s: want an integer >= %d, got '%s'", name, lo, v);
        return -EINVAL;
    }
    *ret = (int)x;
    return 0;
}

static int options__double(const char *name, const char *v, double *ret, char *err, size_t errlen)
{
    char *e;
    errno = 0;
    double x = strtod(v, &e);
    if (errno || e == v || *e || !(x >= 0.0)) {
        snprintf(err, errlen, "--%s: want a number >= 0, got '%s'", name, v);
        return -EINVAL;
    }
    *ret = x;
    return 0;
}

static int options__str(char **dst, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return -ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

static int options__push(char ***list, int *n, const char *v)
{
    char **l = realloc(*list, (size_t)(*n + 1) * sizeof *l);
    if (!l)
        return -ENOMEM;
    *list = l;
    l[*n] = strdup(v);
    if (!l[*n])
        return -ENOMEM;
    (*n)++;
    return 0;
}

int options_set(train_options_t *o, const char *name, const char *v, char *err, size_t errlen)
{
    struct {
        const char *name;
        int *ip;
        int lo;
    } ints[] = {
            {"layers", &o->model.layers, 1},
            {"heads", &o->model.heads, 1},
            {"dim", &o->model.dim, 2},
            {"ffn", &o->model.ffn, 1},
            {"context", &o->model.context, 1},
            {"vocab", &o->model.vocab, 2},
            {"batch", &o->batch, 1},
            {"micro-batch", &o->micro_batch, 1},
            {"steps", &o->steps, 1},
            {"warmup", &o->warmup, 0},
            {"eval-every", &o->eval_every, 0},
            {"eval-batches", &o->eval_batches, 0},
            {"threads", &o->threads, 0},
            {"progress-fd", &o->progress_fd, 0},
            {"checkpoint-every", &o->checkpoint_every, 0},
    };
    struct {
        const char *name;
        double *dp;
    } dbls[] = {
            {"lr", &o->lr},
            {"min-lr", &o->min_lr},
            {"weight-decay", &o->weight_decay},
            {"clip", &o->clip},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strcmp(name, ints[i].name) == 0)
            return options__int(name, v, ints[i].lo, ints[i].ip, err, errlen);
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++)
        if (strcmp(name, dbls[i].name) == 0)
            return options__double(name, v, dbls[i].dp, err, errlen);
    if (strcmp(name, "seed") == 0) {
        char *e;
        errno = 0;
        unsigned long long s = strtoull(v, &e, 10);
        if (errno || e == v || *e || v[0] == '-') {
            snprintf(err, errlen, "--seed: want an unsigned integer, got '%s'", v);
            return -EINVAL;
        }
        o->seed = s;
        return 0;
    }
    if (strcmp(name, "schedule") == 0) {
        if (strcmp(v, "constant") != 0 && strcmp(v, "cosine") != 0) {
            snprintf(err, errlen, "--schedule: want constant or cosine, got '%s'", v);
            return -EINVAL;
        }
        o->cosine = strcmp(v, "cosine") == 0;
        return 0;
    }
    if (strcmp(name, "resume") == 0) {
        o->resume = !(strcmp(v, "false") == 0 || strcmp(v, "0") == 0);
        return 0;
    }
    if (strcmp(name, "device") == 0) {
        if (strcmp(v, "cpu") != 0 && strcmp(v, "cuda") != 0) {
            snprintf(err, errlen, "--device: want cpu or cuda, got '%s'", v);
            return -EINVAL;
        }
        return options__str(&o->device, v);
    }
    if (strcmp(name, "checkpoint") == 0)
        return options__str(&o->checkpoint, v);
    if (strcmp(name, "weights") == 0)
        return options__str(&o->weights, v);
    if (strcmp(name, "weights-json") == 0)
        return options__str(&o->weights_json, v);
    if (strcmp(name, "train") == 0)
        return options__push(&o->train, &o->ntrain, v);
    if (strcmp(name, "valid") == 0)
        return options__push(&o->valid, &o->nvalid, v);
    snprintf(err, errlen, "unknown option '%s' (see --help)", name);
    return -EINVAL;
}

/* Scalar text of a node (NUL-terminated copy in buf), or NULL when not a scalar. */
static const char *options__scalar(struct fy_node *n, char *buf, size_t len)
{
    size_t l;
    const char *s = n && fy_node_get_type(n) == FYNT_SCALAR ? fy_node_get_scalar(n, &l) : NULL;
    if (!s || l >= len)
        return NULL;
    memcpy(buf, s, l);
    buf[l] = 0;
    return buf;
}

int options_load_yaml(train_options_t *o, const char *path, char *err, size_t errlen)
{
    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET};
    struct fy_document *doc = fy_document_build_from_file(&cfg, path);
    if (!doc) {
        snprintf(err, errlen, "%s: cannot read or parse the YAML file", path);
        return -EINVAL;
    }
    int rc = 0;
    struct fy_node *root = fy_document_root(doc);
    if (!root || fy_node_get_type(root) != FYNT_MAPPING) {
        snprintf(err, errlen, "%s: the top level must be a mapping of option names", path);
        rc = -EINVAL;
        goto out;
    }
    void *it = NULL;
    struct fy_node_pair *pair;
    char key[128], val[4096], sub[512], item[4096 + 600];
    while (rc == 0 && (pair = fy_node_mapping_iterate(root, &it)) != NULL) {
        struct fy_node *kn = fy_node_pair_key(pair), *vn = fy_node_pair_value(pair);
        if (!options__scalar(kn, key, sizeof key)) {
            snprintf(err, errlen, "%s: keys must be option names", path);
            rc = -EINVAL;
            break;
        }
        enum fy_node_type t = vn ? fy_node_get_type(vn) : FYNT_SCALAR;
        if (t == FYNT_SCALAR) {
            rc = options_set(o, key, vn ? options__scalar(vn, val, sizeof val) : "", err, errlen);
        } else if (t == FYNT_SEQUENCE) {
            void *it2 = NULL;
            struct fy_node *e;
            while (rc == 0 && (e = fy_node_sequence_iterate(vn, &it2)) != NULL) {
                if (!options__scalar(e, val, sizeof val)) {
                    snprintf(err, errlen, "%s: '%s' items must be scalars", path, key);
                    rc = -EINVAL;
                } else {
                    rc = options_set(o, key, val, err, errlen);
                }
            }
        } else {
            /* NAME: VALUE pairs: one option each for train/valid, one joined list for weights. */
            void *it2 = NULL;
            struct fy_node_pair *p2;
            char joined[8192] = "";
            while (rc == 0 && (p2 = fy_node_mapping_iterate(vn, &it2)) != NULL) {
                if (!options__scalar(fy_node_pair_key(p2), sub, sizeof sub) ||
                    !options__scalar(fy_node_pair_value(p2), val, sizeof val)) {
                    snprintf(err, errlen, "%s: '%s' must map names to scalars", path, key);
                    rc = -EINVAL;
                    break;
                }
                snprintf(item, sizeof item, "%s=%s", sub, val);
                if (strcmp(key, "weights") == 0) {
                    if (joined[0])
                        strncat(joined, ",", sizeof joined - strlen(joined) - 1);
                    strncat(joined, item, sizeof joined - strlen(joined) - 1);
                } else {
                    rc = options_set(o, key, item, err, errlen);
                }
            }
            if (rc == 0 && strcmp(key, "weights") == 0)
                rc = options_set(o, key, joined, err, errlen);
        }
        if (rc < 0 && !strstr(err, path)) {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%s: %s", path, err);
            snprintf(err, errlen, "%s", tmp);
        }
    }
out:
    fy_document_destroy(doc);
    return rc;
}

int options_parse(train_options_t *o, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
            return -EINVAL;
        }
        char name[128];
        const char *val;
        const char *eq = strchr(a + 2, '=');
        if (eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a - 2), a + 2);
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a + 2);
            if (strcmp(name, "resume") == 0) {
                val = "true";
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                snprintf(err, errlen, "--%s needs a value", name);
                return -EINVAL;
            }
        }
        int rc = strcmp(name, "config") == 0 ? options_load_yaml(o, val, err, errlen)
                                             : options_set(o, name, val, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int options_check(const train_options_t *o, int ranks, char *err, size_t errlen)
{
    const model_config_t *m = &o->model;
    if (!m->layers || !m->heads || !m->dim || !m->ffn || !m->context || !m->vocab) {
        snprintf(err, errlen, "need --layers, --heads, --dim, --ffn, --context and --vocab");
        return -EINVAL;
    }
    int rc = model_config_check(m, err, errlen);
    if (rc < 0)
        return rc;
    if (!o->batch || !o->steps) {
        snprintf(err, errlen, "need --batch and --steps");
        return -EINVAL;
    }
    if (o->ntrain == 0) {
        snprintf(err, errlen, "need at least one --train NAME=GLOB");
        return -EINVAL;
    }
    if (o->batch % ranks != 0) {
        snprintf(err, errlen, "--batch %d must be divisible by the %d ranks", o->batch, ranks);
        return -EINVAL;
    }
    int per = o->batch / ranks, mb = options_micro_batch(o, ranks);
    if (per % mb != 0) {
        snprintf(err, errlen, "--batch per rank (%d) must be a multiple of --micro-batch %d", per,
                 mb);
        return -EINVAL;
    }
    if (o->weights && o->weights_json) {
        snprintf(err, errlen, "give --weights or --weights-json, not both");
        return -EINVAL;
    }
    return 0;
}

int options_micro_batch(const train_options_t *o, int ranks)
{
    int per = o->batch / ranks;
    if (o->micro_batch)
        return o->micro_batch;
    int mb = 1;
    for (int d = 1; d <= per; d++)
        if (per % d == 0 && (long)d * o->model.context <= 16384)
            mb = d;
    return mb;
}

void options_free(train_options_t *o)
{
    for (int i = 0; i < o->ntrain; i++)
        free(o->train[i]);
    for (int i = 0; i < o->nvalid; i++)
        free(o->valid[i]);
    free(o->train);
    free(o->valid);
    free(o->device);
    free(o->checkpoint);
    free(o->weights);
    free(o->weights_json);
    memset(o, 0, sizeof *o);
}
