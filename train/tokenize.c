/*
 * tokenize.c: the byte-level tokenizer subcommand (see tokenize.h).
 */
#include "tokenize.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seqrng.h"
#include "slurp.h"

#define TOKENIZE_MAGIC         20240520
#define TOKENIZE_MAX_DOC_BYTES ((size_t)1 << 30) /* one document, read whole */

static void tokenize__usage(FILE *f)
{
    fprintf(f, "Usage: regmix-train tokenize --out DIR --name NAME [--valid-fraction F] [--seed S] "
               "FILE...\n"
               "Writes byte-level (vocab 256) llm.c shards DIR/NAME_train.bin and DIR/NAME_val.bin "
               "from text files.\n"
               "Each FILE is one document; whole documents go to validation when a hash of their\n"
               "content and the seed falls under F (default 0.1); with two or more documents each\n"
               "side gets at least one.\n"
               "  --out DIR            output directory (must exist)\n"
               "  --name NAME          domain name used in the file names\n"
               "  --valid-fraction F   share of documents for validation, 0..1 (default 0.1)\n"
               "  --seed S             hash seed of the split (default 0)\n"
               "Example: regmix-train tokenize --out /tmp/shards --name licenses "
               "/usr/share/common-licenses/*\n");
}

static uint64_t tokenize__hash(const unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return seqrng_mix(h);
}

typedef struct tokenize_doc {
    unsigned char *bytes;
    size_t n;
    uint64_t hash;
    int valid;
} tokenize_doc_t;

static int
tokenize__write(const char *path, tokenize_doc_t *docs, int ndocs, int valid, long long *ret_count)
{
    long long count = 0;
    for (int i = 0; i < ndocs; i++)
        if (docs[i].valid == valid)
            count += (long long)docs[i].n;
    if (count > INT32_MAX) {
        fprintf(stderr, "regmix-train tokenize: %s: more than 2^31 tokens\n", path);
        return -EFBIG;
    }
    FILE *f = fopen(path, "wbe");
    if (!f) {
        fprintf(stderr, "regmix-train tokenize: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    int32_t hdr[256] = {TOKENIZE_MAGIC, 1, (int32_t)count};
    int ok = fwrite(hdr, sizeof hdr, 1, f) == 1;
    uint16_t buf[4096];
    for (int i = 0; i < ndocs && ok; i++) {
        if (docs[i].valid != valid)
            continue;
        for (size_t off = 0; off < docs[i].n && ok; off += 4096) {
            size_t c = docs[i].n - off < 4096 ? docs[i].n - off : 4096;
            for (size_t j = 0; j < c; j++)
                buf[j] = docs[i].bytes[off + j];
            ok = fwrite(buf, sizeof(uint16_t), c, f) == c;
        }
    }
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "regmix-train tokenize: %s: write failed\n", path);
        return -EIO;
    }
    *ret_count = count;
    return 0;
}

int tokenize_main(int argc, char **argv)
{
    const char *out = NULL, *name = NULL;
    double frac = 0.1;
    uint64_t seed = 0;
    int first = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            tokenize__usage(stdout);
            return 0;
        }
        if (strncmp(argv[i], "--", 2) != 0) {
            first = i;
            break;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "regmix-train tokenize: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--out") == 0) {
            out = v;
        } else if (strcmp(argv[i - 1], "--name") == 0) {
            name = v;
        } else if (strcmp(argv[i - 1], "--valid-fraction") == 0) {
            char *e;
            frac = strtod(v, &e);
            if (*e || !(frac >= 0.0 && frac <= 1.0)) {
                fprintf(stderr, "regmix-train tokenize: --valid-fraction wants 0..1\n");
                return 2;
            }
        } else if (strcmp(argv[i - 1], "--seed") == 0) {
            seed = strtoull(v, NULL, 10);
        } else {
            fprintf(stderr, "regmix-train tokenize: unknown option %s (see --help)\n", argv[i - 1]);
            return 2;
        }
    }
    if (!out || !name || first >= argc) {
        fprintf(stderr, "regmix-train tokenize: need --out, --name and files (see --help)\n");
        return 2;
    }
    int ndocs = argc - first, rc = 0;
    tokenize_doc_t *docs = calloc((size_t)ndocs, sizeof *docs);
    if (!docs)
        return 1;
    for (int i = 0; i < ndocs && rc == 0; i++) {
        const char *path = argv[first + i];
        char *text = NULL;
        size_t n = 0;
        int e = slurp_file(path, TOKENIZE_MAX_DOC_BYTES, &text, &n);
        if (e < 0) {
            char why[PATH_MAX + 64];
            slurp_error(why, sizeof why, path, TOKENIZE_MAX_DOC_BYTES, e);
            fprintf(stderr, "regmix-train tokenize: %s\n", why);
            rc = e == -ENOMEM ? 1 : 2;
            break;
        }
        unsigned char *b = (unsigned char *)text;
        docs[i] = (tokenize_doc_t){b, n, tokenize__hash(b, n, seed), 0};
        docs[i].valid = (double)(docs[i].hash >> 11) * 0x1.0p-53 < frac;
    }
    if (rc == 0 && ndocs >= 2 && frac > 0.0 && frac < 1.0) {
        /* Keep both sides non-empty: move the extreme-hash document across if one is empty. */
        int nval = 0, lo = 0, hi = 0;
        for (int i = 0; i < ndocs; i++) {
            nval += docs[i].valid;
            if (docs[i].hash < docs[lo].hash)
                lo = i;
            if (docs[i].hash > docs[hi].hash)
                hi = i;
        }
        if (nval == 0)
            docs[lo].valid = 1;
        else if (nval == ndocs)
            docs[hi].valid = 0;
    }
    long long ntrain = 0, nvalid = 0;
    char path[4096];
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/%s_train.bin", out, name);
        if (tokenize__write(path, docs, ndocs, 0, &ntrain) < 0)
            rc = 1;
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/%s_val.bin", out, name);
        if (tokenize__write(path, docs, ndocs, 1, &nvalid) < 0)
            rc = 1;
    }
    if (rc == 0)
        printf("{\"documents\": %d, \"train_tokens\": %lld, \"valid_tokens\": %lld}\n", ndocs,
               ntrain, nvalid);
    for (int i = 0; i < ndocs; i++)
        free(docs[i].bytes);
    free(docs);
    return rc;
}
