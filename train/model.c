/*
 * model.c: parameter layout and initialisation (see model.h).
 */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "seqrng.h"

int model_config_check(const model_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->layers < 1 || cfg->layers > MODEL_MAX_LAYERS || cfg->heads < 1 || cfg->dim < 2 ||
        cfg->ffn < 1 || cfg->context < 1 || cfg->vocab < 2 || cfg->vocab > 65536) {
        snprintf(err, errlen,
                 "bad model shape: need 1 <= layers <= %d, heads, dim, ffn, context >= 1, "
                 "2 <= vocab <= 65536",
                 MODEL_MAX_LAYERS);
        return -EINVAL;
    }
    if (cfg->dim % cfg->heads != 0 || (cfg->dim / cfg->heads) % 2 != 0) {
        snprintf(err, errlen, "bad model shape: dim %d must be heads (%d) times an even head size",
                 cfg->dim, cfg->heads);
        return -EINVAL;
    }
    return 0;
}

void model_layout(const model_config_t *cfg, model_layout_t *ret)
{
    size_t d = (size_t)cfg->dim, f = (size_t)cfg->ffn, v = (size_t)cfg->vocab, off = 0;
    ret->wte = off;
    off += v * d;
    for (int l = 0; l < cfg->layers; l++) {
        size_t *t = ret->layer[l];
        t[MODEL_T_ATTN_NORM] = off;
        off += d;
        t[MODEL_T_WQKV] = off;
        off += 3 * d * d;
        t[MODEL_T_WO] = off;
        off += d * d;
        t[MODEL_T_MLP_NORM] = off;
        off += d;
        t[MODEL_T_W13] = off;
        off += 2 * f * d;
        t[MODEL_T_W2] = off;
        off += d * f;
    }
    ret->final_norm = off;
    off += d;
    ret->lm_head = off;
    off += v * d;
    ret->total = off;
}

static void model__normal(float *p, size_t n, double std, seqrng_t *rng)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(std * seqrng_normal(rng));
}

static void model__ones(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = 1.0f;
}

void model_init(const model_config_t *cfg, float *params, uint64_t seed)
{
    model_layout_t lay;
    model_layout(cfg, &lay);
    size_t d = (size_t)cfg->dim, f = (size_t)cfg->ffn, v = (size_t)cfg->vocab;
    double std = sqrt(2.0 / (5.0 * (double)d));
    double proj_std = 1.0 / sqrt((double)d) / cfg->layers;
    seqrng_t rng;
    seqrng_seed(&rng, seed, 0x1a17);
    model__normal(params + lay.wte, v * d, std, &rng);
    for (int l = 0; l < cfg->layers; l++) {
        size_t *t = lay.layer[l];
        model__ones(params + t[MODEL_T_ATTN_NORM], d);
        model__normal(params + t[MODEL_T_WQKV], 3 * d * d, std, &rng);
        model__normal(params + t[MODEL_T_WO], d * d, proj_std, &rng);
        model__ones(params + t[MODEL_T_MLP_NORM], d);
        model__normal(params + t[MODEL_T_W13], 2 * f * d, std, &rng);
        model__normal(params + t[MODEL_T_W2], d * f, proj_std, &rng);
    }
    model__ones(params + lay.final_norm, d);
    model__normal(params + lay.lm_head, v * d, std, &rng);
}

int model_decay_ranges(const model_config_t *cfg, model_decay_range_t *ret, int cap)
{
    model_layout_t lay;
    model_layout(cfg, &lay);
    int n = 0;
    size_t d = (size_t)cfg->dim;
#define MODEL__ADD(b, e)                                                                           \
    do {                                                                                           \
        if (n < cap)                                                                               \
            ret[n] = (model_decay_range_t){(b), (e)};                                              \
        n++;                                                                                       \
    } while (0)
    /* Everything but the norm weights: [wte .. first attn_norm), then per layer the two runs of
     * matrices between norms, then lm_head. */
    MODEL__ADD(lay.wte, lay.layer[0][MODEL_T_ATTN_NORM]);
    for (int l = 0; l < cfg->layers; l++) {
        size_t *t = lay.layer[l];
        MODEL__ADD(t[MODEL_T_WQKV], t[MODEL_T_MLP_NORM]);
        size_t end = l + 1 < cfg->layers ? lay.layer[l + 1][MODEL_T_ATTN_NORM] : lay.final_norm;
        MODEL__ADD(t[MODEL_T_MLP_NORM] + d, end);
    }
    MODEL__ADD(lay.lm_head, lay.total);
#undef MODEL__ADD
    return n;
}

double model_flops_per_token(const model_config_t *cfg)
{
    double d = cfg->dim, f = cfg->ffn, v = cfg->vocab, t = cfg->context;
    /* Forward multiply-adds per token: qkv 3D^2, wo D^2, w13 2FD, w2 FD, lm head VD; attention
     * QK^T and PV: 2 * T/2 * D on average under the causal mask. Training = 3x forward, 2 FLOPs
     * per multiply-add. */
    double per_layer = 4.0 * d * d + 3.0 * f * d + t * d;
    return 6.0 * (cfg->layers * per_layer + v * d);
}
