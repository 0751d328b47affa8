/*
 * data.c: shards, mixture sampling and the validation set (see data.h).
 */
#include "data.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seqrng.h"

#define DATA_MAGIC       20240520
#define DATA_HEADER_INTS 256
#define DATA_MAX_DOMAINS 256

typedef struct data_shard {
    char *path;
    void *map;
    size_t maplen;
    const uint16_t *tok;
    size_t count;
} data_shard_t;

typedef struct data_set {
    data_shard_t *s;
    int n, cap;
    uint64_t *cum; /* cumulative windows (train) or sequences (valid) per shard */
    uint64_t total;
} data_set_t;

typedef struct data_domain {
    char *name;
    data_set_t train, valid;
    double weight;
    size_t train_tokens;
} data_domain_t;

struct data {
    int vocab, context, weights_set;
    data_domain_t dom[DATA_MAX_DOMAINS];
    int ndom;
    double cumw[DATA_MAX_DOMAINS];
};

int data_new(int vocab, data_t **ret)
{
    data_t *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->vocab = vocab;
    *ret = d;
    return 0;
}

static void data__set_free(data_set_t *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->s[i].map)
            munmap(s->s[i].map, s->s[i].maplen);
        free(s->s[i].path);
    }
    free(s->s);
    free(s->cum);
}

void data_destroy(data_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    data_t *d = *self_p;
    for (int i = 0; i < d->ndom; i++) {
        free(d->dom[i].name);
        data__set_free(&d->dom[i].train);
        data__set_free(&d->dom[i].valid);
    }
    free(d);
    *self_p = NULL;
}

static int data__find(const data_t *d, const char *name, size_t len)
{
    for (int i = 0; i < d->ndom; i++)
        if (strlen(d->dom[i].name) == len && memcmp(d->dom[i].name, name, len) == 0)
            return i;
    return -1;
}

/* Maps and checks one shard. */
static int
data__open(const char *path, int raw, int vocab, data_shard_t *ret, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -EINVAL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    size_t len = (size_t)st.st_size;
    void *map = NULL;
    if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
            close(fd);
            return -EINVAL;
        }
    }
    close(fd);
    const uint16_t *tok;
    size_t count;
    if (raw) {
        if (len % 2 != 0) {
            snprintf(err, errlen, "%s: truncated: raw uint16 shard has an odd size %zu", path, len);
            goto fail;
        }
        tok = map;
        count = len / 2;
    } else {
        const int32_t *hdr = map;
        if (len < DATA_HEADER_INTS * sizeof(int32_t)) {
            snprintf(err, errlen, "%s: truncated: %zu bytes, shorter than the 1024-byte header",
                     path, len);
            goto fail;
        }
        if (hdr[0] != DATA_MAGIC) {
            snprintf(err, errlen,
                     "%s: bad magic %d (an llm.c shard starts with %d; write NAME=raw:GLOB for "
                     "headerless uint16 arrays)",
                     path, hdr[0], DATA_MAGIC);
            goto fail;
        }
        if (hdr[1] != 1) {
            snprintf(err, errlen, "%s: unsupported shard version %d (want 1: uint16 tokens)", path,
                     hdr[1]);
            goto fail;
        }
        if (hdr[2] < 0 || DATA_HEADER_INTS * 4 + (size_t)hdr[2] * 2 > len) {
            snprintf(err, errlen, "%s: truncated: header says %d tokens, file holds %zu", path,
                     hdr[2], (len - DATA_HEADER_INTS * 4) / 2);
            goto fail;
        }
        tok = (const uint16_t *)(hdr + DATA_HEADER_INTS);
        count = (size_t)hdr[2];
    }
    for (size_t i = 0; i < count; i++)
        if (tok[i] >= vocab) {
            snprintf(err, errlen, "%s: token %u at position %zu is >= vocab %d", path, tok[i], i,
                     vocab);
            goto fail;
        }
    ret->path = strdup(path);
    ret->map = map;
    ret->maplen = len;
    ret->tok = tok;
    ret->count = count;
    return ret->path ? 0 : -ENOMEM;
fail:
    if (map)
        munmap(map, len);
    return -EINVAL;
}

int data_add(data_t *d, const char *spec, int valid, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) {
        snprintf(err, errlen, "bad data spec '%s': want NAME=GLOB or NAME=raw:GLOB", spec);
        return -EINVAL;
    }
    size_t nlen = (size_t)(eq - spec);
    const char *pat = eq + 1;
    int raw = strncmp(pat, "raw:", 4) == 0;
    if (raw)
        pat += 4;
    int di = data__find(d, spec, nlen);
    if (di < 0) {
        if (d->ndom == DATA_MAX_DOMAINS) {
            snprintf(err, errlen, "too many domains (at most %d)", DATA_MAX_DOMAINS);
            return -EINVAL;
        }
        di = d->ndom;
        d->dom[di].name = strndup(spec, nlen);
        if (!d->dom[di].name)
            return -ENOMEM;
        d->ndom++;
    }
    glob_t g;
    int grc = glob(pat, GLOB_ERR, NULL, &g);
    if (grc != 0 || g.gl_pathc == 0) {
        snprintf(err, errlen, "%s: glob for domain '%s' matches no file", pat, d->dom[di].name);
        if (grc != GLOB_NOMATCH)
            globfree(&g);
        return -ENOENT;
    }
    data_set_t *set = valid ? &d->dom[di].valid : &d->dom[di].train;
    int rc = 0;
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
        if (set->n == set->cap) {
            int cap = set->cap ? 2 * set->cap : 8;
            data_shard_t *s = realloc(set->s, cap * sizeof *s);
            if (!s) {
                rc = -ENOMEM;
                break;
            }
            set->s = s;
            set->cap = cap;
        }
        rc = data__open(g.gl_pathv[i], raw, d->vocab, &set->s[set->n], err, errlen);
        if (rc == 0) {
            if (!valid)
                d->dom[di].train_tokens += set->s[set->n].count;
            set->n++;
        }
    }
    globfree(&g);
    return rc;
}

static int
data__set_one(data_t *d, const char *name, size_t len, double w, char *err, size_t errlen)
{
    int di = data__find(d, name, len);
    if (di < 0) {
        snprintf(err, errlen, "weight for unknown domain '%.*s' (no --train/--valid names it)",
                 (int)len, name);
        return -EINVAL;
    }
    if (!(w >= 0.0) || !isfinite(w)) {
        snprintf(err, errlen, "weight for domain '%.*s' must be a finite number >= 0", (int)len,
                 name);
        return -EINVAL;
    }
    d->dom[di].weight = w;
    return 0;
}

static void data__clear_weights(data_t *d)
{
    for (int i = 0; i < d->ndom; i++)
        d->dom[i].weight = 0.0;
    d->weights_set = 1;
}

int data_set_weights(data_t *d, const char *spec, char *err, size_t errlen)
{
    data__clear_weights(d);
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p) {
            snprintf(err, errlen, "bad weights '%s': want NAME=W,NAME=W,...", spec);
            return -EINVAL;
        }
        char num[64];
        size_t nl = len - (size_t)(eq + 1 - p);
        if (nl == 0 || nl >= sizeof num) {
            snprintf(err, errlen, "bad weight in '%.*s'", (int)len, p);
            return -EINVAL;
        }
        memcpy(num, eq + 1, nl);
        num[nl] = 0;
        char *e;
        double w = strtod(num, &e);
        if (*e) {
            snprintf(err, errlen, "bad weight '%s' for domain '%.*s'", num, (int)(eq - p), p);
            return -EINVAL;
        }
        int rc = data__set_one(d, p, (size_t)(eq - p), w, err, errlen);
        if (rc < 0)
            return rc;
        p = end ? end + 1 : p + len;
    }
    return 0;
}

int data_set_weights_json(data_t *d, const char *json, char *err, size_t errlen)
{
    json_error_t je;
    json_t *obj = json_loads(json, 0, &je);
    if (!obj || !json_is_object(obj)) {
        snprintf(err, errlen, "bad --weights-json: %s", obj ? "not an object" : je.text);
        json_decref(obj);
        return -EINVAL;
    }
    data__clear_weights(d);
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(obj, k, v)
    {
        if (!json_is_number(v)) {
            snprintf(err, errlen, "weight for domain '%s' is not a number", k);
            rc = -EINVAL;
            break;
        }
        rc = data__set_one(d, k, strlen(k), json_number_value(v), err, errlen);
        if (rc < 0)
            break;
    }
    json_decref(obj);
    return rc;
}

int data_prepare(data_t *d, int context, char *err, size_t errlen)
{
    d->context = context;
    if (d->ndom == 0) {
        snprintf(err, errlen, "no domains: give --train NAME=GLOB");
        return -EINVAL;
    }
    double sum = 0.0;
    for (int i = 0; i < d->ndom; i++) {
        data_domain_t *dm = &d->dom[i];
        if (!d->weights_set)
            dm->weight = (double)dm->train_tokens;
        /* Windows of context+1 tokens: a shard of n tokens has n - context starts. */
        data_set_t *sets[2] = {&dm->train, &dm->valid};
        for (int k = 0; k < 2; k++) {
            data_set_t *s = sets[k];
            free(s->cum);
            s->cum = calloc((size_t)s->n + 1, sizeof(uint64_t));
            if (!s->cum)
                return -ENOMEM;
            uint64_t tot = 0;
            for (int j = 0; j < s->n; j++) {
                size_t c = s->s[j].count;
                uint64_t w = 0;
                if (c > (size_t)context)
                    w = k == 0 ? c - (size_t)context : (c - 1) / (size_t)context;
                tot += w;
                s->cum[j + 1] = tot;
            }
            s->total = tot;
        }
        if (dm->weight > 0.0 && dm->train.total == 0) {
            snprintf(err, errlen,
                     "domain '%s' has weight > 0 but no training shard holds %d tokens "
                     "(context + 1)",
                     dm->name, context + 1);
            return -EINVAL;
        }
        sum += dm->weight;
    }
    if (!(sum > 0.0)) {
        snprintf(err, errlen, "the mixture weights are all zero");
        return -EINVAL;
    }
    double c = 0.0;
    for (int i = 0; i < d->ndom; i++) {
        d->dom[i].weight /= sum;
        c += d->dom[i].weight;
        d->cumw[i] = c;
    }
    return 0;
}

int data_domain_count(const data_t *d)
{
    return d->ndom;
}

const char *data_domain_name(const data_t *d, int i)
{
    return d->dom[i].name;
}

double data_domain_weight(const data_t *d, int i)
{
    return d->dom[i].weight;
}

/* Index j of the shard holding item x of a set: cum[j] <= x < cum[j+1]. */
static int data__shard_of(const data_set_t *s, uint64_t x)
{
    int lo = 0, hi = s->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (s->cum[mid] <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

void data_sample(const data_t *d, uint64_t seed, uint64_t g, int32_t *out)
{
    seqrng_t r;
    seqrng_seed(&r, seed, g);
    double u = seqrng_uniform(&r) * d->cumw[d->ndom - 1];
    int di = 0;
    /* First domain whose cumulative weight exceeds u; weight-0 domains never satisfy it. */
    while (di < d->ndom - 1 && !(u < d->cumw[di] && d->dom[di].weight > 0.0))
        di++;
    while (d->dom[di].weight <= 0.0 && di > 0) /* rounding at the very top */
        di--;
    const data_set_t *s = &d->dom[di].train;
    uint64_t x = seqrng_u64(&r) % s->total;
    int j = data__shard_of(s, x);
    const uint16_t *t = s->s[j].tok + (x - s->cum[j]);
    for (int i = 0; i <= d->context; i++)
        out[i] = t[i];
}

int data_valid_count(const data_t *d, int i, int max)
{
    uint64_t n = d->dom[i].valid.total;
    return n < (uint64_t)max ? (int)n : max;
}

void data_valid_sequence(const data_t *d, int i, int k, int32_t *out)
{
    const data_set_t *s = &d->dom[i].valid;
    int j = data__shard_of(s, (uint64_t)k);
    const uint16_t *t = s->s[j].tok + (size_t)(k - s->cum[j]) * (size_t)d->context;
    for (int x = 0; x <= d->context; x++)
        out[x] = t[x];
}
