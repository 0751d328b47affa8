/*
 * trainargs.c: regmix-train's argv and config from a spec or an assignment (see trainargs.h).
 */
#include "trainargs.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "strv.h"

void trainargs_destroy(trainargs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    trainargs_t *t = *self_p;
    for (int i = 0; t->domains && i < t->ndomains; i++) {
        free(t->domains[i].name);
        free(t->domains[i].train);
        free(t->domains[i].valid);
    }
    free(t->domains);
    free(t->checkpoint);
    free(t);
    *self_p = NULL;
}

void trainargs_argv_free(char **argv)
{
    strv_free(argv);
}

/* strdup of a non-empty string, NULL for NULL or "" (*oom set when the copy fails). */
static char *trainargs__dup(const char *s, int *oom)
{
    if (!s || !*s)
        return NULL;
    char *c = strdup(s);
    if (!c)
        *oom = 1;
    return c;
}

static trainargs_t *trainargs__new(int ndomains)
{
    trainargs_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ranks = 1;
    t->ndomains = ndomains;
    t->domains = calloc(ndomains > 0 ? (size_t)ndomains : 1, sizeof *t->domains);
    if (!t->domains) {
        free(t);
        return NULL;
    }
    spec_model_defaults(&t->model);
    spec_train_defaults(&t->train);
    return t;
}

int trainargs_from_spec(const spec_t *spec,
                        spec_stage_t stage,
                        const double *weights,
                        uint64_t seed,
                        int ranks,
                        trainargs_t **ret,
                        char *err,
                        size_t errlen)
{
    if (!spec || !weights || !ret) {
        errbuf_set(err, errlen, "trainargs: spec and weights are required");
        return -EINVAL;
    }
    trainargs_t *t = trainargs__new(spec->ndomains);
    if (!t)
        return -ENOMEM;
    t->model = stage == SPEC_STAGE_TARGET ? spec->target.model : spec->proxy.model;
    t->train = stage == SPEC_STAGE_TARGET ? spec->target.train : spec->proxy.train;
    t->ranks = ranks > 0 ? ranks : 1;
    t->seed = seed;
    int oom = 0;
    for (int i = 0; i < spec->ndomains; i++) {
        t->domains[i].name = trainargs__dup(spec->domains[i].name, &oom);
        t->domains[i].train = trainargs__dup(spec->domains[i].train, &oom);
        t->domains[i].valid = trainargs__dup(spec->domains[i].valid, &oom);
        t->domains[i].weight = weights[i];
    }
    if (oom) {
        trainargs_destroy(&t);
        return -ENOMEM;
    }
    *ret = t;
    return 0;
}

/* One key of the train JSON: where it goes and what it is. */
typedef struct trainargs__key {
    const char *group; /* "model" or "train" */
    const char *key;
    char type;     /* 'i' int, 'd' double, 's' schedule */
    size_t offset; /* in spec_model_t or spec_train_t */
} trainargs__key_t;

#define TA_M(k, f)                                                                                 \
    {                                                                                              \
        "model", k, 'i', offsetof(spec_model_t, f)                                                 \
    }
#define TA_TI(k, f)                                                                                \
    {                                                                                              \
        "train", k, 'i', offsetof(spec_train_t, f)                                                 \
    }
#define TA_TD(k, f)                                                                                \
    {                                                                                              \
        "train", k, 'd', offsetof(spec_train_t, f)                                                 \
    }

static const trainargs__key_t trainargs__keys[] = {
        TA_M("layers", layers),    TA_M("heads", heads),
        TA_M("dim", dim),          TA_M("ffn", ffn),
        TA_M("context", context),  TA_M("vocab", vocab),
        TA_TI("batch", batch),     TA_TI("micro_batch", micro_batch),
        TA_TI("steps", steps),     TA_TD("lr", lr),
        TA_TI("warmup", warmup),   {"train", "schedule", 's', offsetof(spec_train_t, schedule)},
        TA_TD("min_lr", min_lr),   TA_TD("weight_decay", weight_decay),
        TA_TD("clip", clip),       TA_TI("eval_batches", eval_batches),
        TA_TI("threads", threads),
};

static int trainargs__group(json_t *g, const char *group, void *base, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(g, k, v)
    {
        const trainargs__key_t *key = NULL;
        for (size_t i = 0; i < sizeof trainargs__keys / sizeof *trainargs__keys; i++)
            if (strcmp(trainargs__keys[i].group, group) == 0 &&
                strcmp(trainargs__keys[i].key, k) == 0)
                key = &trainargs__keys[i];
        if (!key) {
            errbuf_set(err, errlen, "train_args_json: %s.%.100s is not a regmix-train setting",
                       group, k);
            return -EINVAL;
        }
        char *at = (char *)base + key->offset;
        if (key->type == 'i' && json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
            json_integer_value(v) <= INT32_MAX) {
            *(int *)at = (int)json_integer_value(v);
        } else if (key->type == 'd' && json_is_number(v) && isfinite(json_number_value(v))) {
            *(double *)at = json_number_value(v);
        } else if (key->type == 's' && json_is_string(v)) {
            int found = 0;
            for (int s = SPEC_SCHEDULE_CONSTANT; s <= SPEC_SCHEDULE_LINEAR && !found; s++)
                if (strcmp(spec_schedule_name((spec_schedule_t)s), json_string_value(v)) == 0) {
                    *(spec_schedule_t *)at = (spec_schedule_t)s;
                    found = 1;
                }
            if (!found) {
                errbuf_set(err, errlen, "train_args_json: %s.%s: unknown schedule '%.100s'", group,
                           k, json_string_value(v));
                return -EINVAL;
            }
        } else {
            errbuf_set(err, errlen, "train_args_json: %s.%s must be %s", group, k,
                       key->type == 'i'   ? "an integer"
                       : key->type == 'd' ? "a finite number"
                                          : "a schedule name");
            return -EINVAL;
        }
    }
    return 0;
}

int trainargs_from_json(const char *train_json,
                        const char *domains_json,
                        const char *const *names,
                        const double *weights,
                        size_t nweights,
                        uint64_t seed,
                        trainargs_t **ret,
                        char *err,
                        size_t errlen)
{
    json_error_t je;
    json_t *tj = train_json && *train_json ? json_loads(train_json, 0, &je) : json_object();
    json_t *dj = domains_json && *domains_json ? json_loads(domains_json, 0, &je) : NULL;
    trainargs_t *t = NULL;
    int rc = 0;
    if (!json_is_object(tj)) {
        errbuf_set(err, errlen, "train_args_json is not a JSON object");
        rc = -EINVAL;
        goto out;
    }
    if (!json_is_object(dj)) {
        errbuf_set(err, errlen, "data_json is not a JSON object of domains");
        rc = -EINVAL;
        goto out;
    }
    if (!(t = trainargs__new((int)json_object_size(dj)))) {
        rc = -ENOMEM;
        goto out;
    }
    t->seed = seed;
    const char *k;
    json_t *v;
    json_object_foreach(tj, k, v)
    {
        if (rc == 0 && strcmp(k, "model") == 0 && json_is_object(v))
            rc = trainargs__group(v, "model", &t->model, err, errlen);
        else if (rc == 0 && strcmp(k, "train") == 0 && json_is_object(v))
            rc = trainargs__group(v, "train", &t->train, err, errlen);
        else if (rc == 0) {
            errbuf_set(err, errlen, "train_args_json: '%.100s' is not \"model\" or \"train\"", k);
            rc = -EINVAL;
        }
    }
    int i = 0, oom = 0;
    json_object_foreach(dj, k, v)
    {
        json_t *tr = json_object_get(v, "train"), *va = json_object_get(v, "valid");
        if (rc == 0 &&
            (!json_is_object(v) || (tr && !json_is_string(tr)) || (va && !json_is_string(va)))) {
            errbuf_set(err, errlen, "data_json: domain '%.100s' needs string train/valid globs", k);
            rc = -EINVAL;
        }
        t->domains[i].name = trainargs__dup(k, &oom);
        t->domains[i].train = trainargs__dup(json_string_value(tr), &oom);
        t->domains[i].valid = trainargs__dup(json_string_value(va), &oom);
        i++;
    }
    for (size_t w = 0; rc == 0 && w < nweights; w++) {
        int hit = -1;
        for (int d = 0; d < t->ndomains && hit < 0; d++)
            if (t->domains[d].name && names[w] && strcmp(t->domains[d].name, names[w]) == 0)
                hit = d;
        if (hit < 0) {
            errbuf_set(err, errlen, "weight for '%.100s', a domain data_json does not name",
                       names[w] ? names[w] : "(null)");
            rc = -EINVAL;
        } else {
            t->domains[hit].weight = weights[w];
        }
    }
    if (rc == 0 && oom)
        rc = -ENOMEM;
out:
    json_decref(tj);
    json_decref(dj);
    if (rc < 0)
        trainargs_destroy(&t);
    else
        *ret = t;
    return rc;
}

int trainargs_set_checkpoint(trainargs_t *t, const char *dir)
{
    free(t->checkpoint);
    t->checkpoint = NULL;
    if (!dir)
        return 0;
    size_t n = strlen(dir) + sizeof "/checkpoint";
    if (!(t->checkpoint = malloc(n)))
        return -ENOMEM;
    snprintf(t->checkpoint, n, "%s/checkpoint", dir);
    return 0;
}

int trainargs_check(const trainargs_t *t, char *err, size_t errlen)
{
    if (t->train.schedule != SPEC_SCHEDULE_CONSTANT && t->train.schedule != SPEC_SCHEDULE_COSINE) {
        errbuf_set(err, errlen, "train.schedule: regmix-train has no '%s' schedule",
                   spec_schedule_name(t->train.schedule));
        return -ENOTSUP;
    }
    for (int i = 0; i < t->ndomains; i++) {
        const trainargs_domain_t *d = &t->domains[i];
        /* the trainer refuses this too, but only once it runs, maybe on another machine */
        if (!(d->weight >= 0) || !isfinite(d->weight) || (d->weight > 0 && !d->train)) {
            errbuf_set(err, errlen, "domains[%d] (%s): weight %g %s", i, d->name, d->weight,
                       d->weight > 0 ? "but no train glob" : "is not a valid weight");
            return -EINVAL;
        }
    }
    return 0;
}

/* The shortest of %.15g, %.16g, %.17g that reads back to v (0.003, not 0.0030000000000000001). */
static void trainargs__num(char *buf, size_t len, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* The micro-batch flag's value, or 0 when the trainer's default (batch / ranks) applies. */
static int trainargs__micro_batch(const trainargs_t *t)
{
    int ranks = t->ranks > 0 ? t->ranks : 1;
    if (t->train.micro_batch > 0 && (long)t->train.micro_batch * ranks <= t->train.batch)
        return t->train.micro_batch;
    return 0;
}

char *trainargs_weights_json(const trainargs_t *t)
{
    json_t *o = json_object();
    for (int i = 0; o && i < t->ndomains; i++)
        json_object_set_new(o, t->domains[i].name, json_real(t->domains[i].weight));
    char *s =
            o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    return s;
}

static void trainargs__int(strv_t *s, const char *flag, long v)
{
    char b[32];
    snprintf(b, sizeof b, "%ld", v);
    strv_push(s, flag);
    strv_push(s, b);
}

static void trainargs__dbl(strv_t *s, const char *flag, double v)
{
    char b[40];
    trainargs__num(b, sizeof b, v);
    strv_push(s, flag);
    strv_push(s, b);
}

static void trainargs__glob(strv_t *s, const char *flag, const char *name, const char *g)
{
    size_t n = strlen(name) + strlen(g) + 2;
    char *b = malloc(n);
    if (!b) {
        s->oom = 1;
        return;
    }
    snprintf(b, n, "%s=%s", name, g);
    strv_push(s, flag);
    strv_push(s, b);
    free(b);
}

int trainargs_argv(const trainargs_t *t,
                   const char *trainer,
                   int progress_fd,
                   char ***ret,
                   char *err,
                   size_t errlen)
{
    int rc = trainargs_check(t, err, errlen);
    if (rc < 0)
        return rc;
    char *wj = trainargs_weights_json(t);
    if (!wj)
        return -ENOMEM;
    const spec_model_t *m = &t->model;
    const spec_train_t *tr = &t->train;
    strv_t s = {0};
    strv_push(&s, trainer && *trainer ? trainer : "regmix-train");
    trainargs__int(&s, "--layers", m->layers);
    trainargs__int(&s, "--heads", m->heads);
    trainargs__int(&s, "--dim", m->dim);
    trainargs__int(&s, "--ffn", m->ffn);
    trainargs__int(&s, "--context", m->context);
    trainargs__int(&s, "--vocab", m->vocab);
    trainargs__int(&s, "--batch", tr->batch);
    if (trainargs__micro_batch(t) > 0)
        trainargs__int(&s, "--micro-batch", trainargs__micro_batch(t));
    trainargs__int(&s, "--steps", tr->steps);
    trainargs__dbl(&s, "--lr", tr->lr);
    trainargs__int(&s, "--warmup", tr->warmup);
    strv_push(&s, "--schedule");
    strv_push(&s, spec_schedule_name(tr->schedule));
    trainargs__dbl(&s, "--min-lr", tr->min_lr);
    trainargs__dbl(&s, "--weight-decay", tr->weight_decay);
    trainargs__dbl(&s, "--clip", tr->clip);
    trainargs__int(&s, "--eval-batches", tr->eval_batches);
    if (tr->threads > 0)
        trainargs__int(&s, "--threads", tr->threads);
    for (int i = 0; i < t->ndomains; i++)
        if (t->domains[i].train)
            trainargs__glob(&s, "--train", t->domains[i].name, t->domains[i].train);
    for (int i = 0; i < t->ndomains; i++)
        if (t->domains[i].valid)
            trainargs__glob(&s, "--valid", t->domains[i].name, t->domains[i].valid);
    strv_push(&s, "--weights-json");
    strv_push(&s, wj);
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, t->seed);
    strv_push(&s, "--seed");
    strv_push(&s, seed);
    if (t->checkpoint) {
        strv_push(&s, "--checkpoint");
        strv_push(&s, t->checkpoint);
        strv_push(&s, "--resume");
    }
    if (progress_fd >= 0)
        trainargs__int(&s, "--progress-fd", progress_fd);
    free(wj);
    char **v = strv_take(&s);
    if (!v)
        return -ENOMEM;
    *ret = v;
    return 0;
}

char *trainargs_config_json(const trainargs_t *t, int progress_fd, char *err, size_t errlen)
{
    if (trainargs_check(t, err, errlen) < 0)
        return NULL;
    const spec_model_t *m = &t->model;
    const spec_train_t *tr = &t->train;
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "layers", json_integer(m->layers));
    json_object_set_new(o, "heads", json_integer(m->heads));
    json_object_set_new(o, "dim", json_integer(m->dim));
    json_object_set_new(o, "ffn", json_integer(m->ffn));
    json_object_set_new(o, "context", json_integer(m->context));
    json_object_set_new(o, "vocab", json_integer(m->vocab));
    json_object_set_new(o, "batch", json_integer(tr->batch));
    if (trainargs__micro_batch(t) > 0)
        json_object_set_new(o, "micro-batch", json_integer(trainargs__micro_batch(t)));
    json_object_set_new(o, "steps", json_integer(tr->steps));
    json_object_set_new(o, "lr", json_real(tr->lr));
    json_object_set_new(o, "warmup", json_integer(tr->warmup));
    json_object_set_new(o, "schedule", json_string(spec_schedule_name(tr->schedule)));
    json_object_set_new(o, "min-lr", json_real(tr->min_lr));
    json_object_set_new(o, "weight-decay", json_real(tr->weight_decay));
    json_object_set_new(o, "clip", json_real(tr->clip));
    json_object_set_new(o, "eval-batches", json_integer(tr->eval_batches));
    if (tr->threads > 0)
        json_object_set_new(o, "threads", json_integer(tr->threads));
    json_t *trn = json_object(), *va = json_object(), *w = json_object();
    for (int i = 0; i < t->ndomains; i++) {
        const trainargs_domain_t *d = &t->domains[i];
        if (d->train)
            json_object_set_new(trn, d->name, json_string(d->train));
        if (d->valid)
            json_object_set_new(va, d->name, json_string(d->valid));
        json_object_set_new(w, d->name, json_real(d->weight));
    }
    json_object_set_new(o, "train", trn);
    json_object_set_new(o, "valid", va);
    json_object_set_new(o, "weights", w);
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, t->seed);
    json_object_set_new(o, "seed", json_string(seed));
    if (t->checkpoint) {
        json_object_set_new(o, "checkpoint", json_string(t->checkpoint));
        json_object_set_new(o, "resume", json_true());
    }
    if (progress_fd >= 0)
        json_object_set_new(o, "progress-fd", json_integer(progress_fd));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    return s;
}
