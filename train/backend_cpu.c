/*
 * backend_cpu.c: the CPU backend (see backend.h): fp32 everywhere, kernels.h for the arithmetic
 * (oneDNN or OpenBLAS sgemm for matrix products, run-time-chosen vector kernels and OpenMP for
 * the rest). Forward saves each layer's activations; the attention probabilities are recomputed
 * in backward from the saved log-sum-exp, so memory grows with T, not T^2. Every buffer is
 * allocated and touched in create(), so no step pays for first-touch page faults.
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "kernels.h"

/* Phase timers, on when REGMIX_TRAIN_PROFILE is set: wall seconds per phase, printed to stderr
 * as shares when the backend is destroyed (each kernel call is synchronous, so timing around it
 * is exact). */
enum {
    PH_EMBED,
    PH_NORM,
    PH_LINEAR,
    PH_ROPE,
    PH_ATTN,
    PH_SWIGLU,
    PH_MLP,
    PH_LMHEAD,
    PH_RESID,
    PH_ADAMW,
    PH_COUNT
};
static const char *const backend__phase_names[PH_COUNT] = {
        "embedding", "rmsnorm",   "linear gemm", "rope",     "attention",
        "swiglu",    "mlp tiles", "lm head+ce",  "residual", "adamw+norm+zero"};
static int backend__prof = -1;
static double backend__prof_s[PH_COUNT];

static double backend__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define PROF(ph, stmt)                                                                             \
    do {                                                                                           \
        double prof_t0_ = backend__prof ? backend__now() : 0.0;                                    \
        stmt;                                                                                      \
        if (backend__prof)                                                                         \
            backend__prof_s[ph] += backend__now() - prof_t0_;                                      \
    } while (0)

typedef struct cpu_backend {
    model_config_t cfg;
    model_layout_t lay;
    int mb, threads, chunk;
    size_t np;
    float *params, *grads, *m, *v;
    /* activations, per layer l at [l * size] */
    float *res;    /* (L+1, N, D) residual stream; res[0] = embeddings */
    float *resmid; /* (L, N, D) after the attention residual */
    float *ln1, *ln2, *rstd1, *rstd2, *qkv, *att, *lse, *h13, *hh;
    float *lnf, *rstdf;
    /* gradients of activations, reused across layers */
    float *dres, *dln, *dqkv, *datt, *dh13, *dh;
    /* scratch */
    float *norm_scratch, *att_scratch, *lm_scratch, *rope_cos, *rope_sin, *losses;
    int32_t *inputs, *targets;
    int ndecay;
    size_t decay[2 * (2 * MODEL_MAX_LAYERS + 2)]; /* [begin, end) pairs */
    int grads_zero; /* the gradients are known to be all zero (after create and AdamW) */
} cpu_backend_t;

static int cpu_probe(char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    return 0;
}

/* A zeroed buffer of n floats on 64-byte lines, every page touched now (not in the first step). */
static float *backend__alloc(size_t n, int *failed)
{
    size_t bytes = (n ? n : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (!p)
        *failed = 1;
    else
        memset(p, 0, bytes);
    return p;
}

static void cpu_destroy(void *impl);
static void cpu_forward_backward(void *impl,
                                 const int32_t *tokens,
                                 int m,
                                 int backward,
                                 float grad_scale,
                                 double *ret_losses);

/* One forward and backward of a full micro-batch of token 0, its gradients then cleared: oneDNN
 * generates its code for each product shape on first use and the OpenMP threads start, which made
 * the first training step several times slower than the others; now create() pays for it. */
static void backend__warm_up(cpu_backend_t *b)
{
    size_t n = (size_t)b->mb * (b->cfg.context + 1);
    int32_t *tok = calloc(n, sizeof(int32_t));
    double *losses = calloc((size_t)b->mb, sizeof(double));
    if (tok && losses) {
        cpu_forward_backward(b, tok, b->mb, 1, 0.0f, losses);
        memset(b->grads, 0, b->np * sizeof(float));
        b->grads_zero = 1;
        memset(backend__prof_s, 0, sizeof backend__prof_s);
    }
    free(tok);
    free(losses);
}

static int cpu_create(const model_config_t *cfg,
                      int micro_batch,
                      int threads,
                      uint64_t seed,
                      void **ret,
                      char *err,
                      size_t errlen)
{
    int rc = model_config_check(cfg, err, errlen);
    if (rc < 0)
        return rc;
    if (backend__prof < 0)
        backend__prof = getenv("REGMIX_TRAIN_PROFILE") != NULL;
    if (micro_batch < 1) {
        snprintf(err, errlen, "micro-batch must be >= 1");
        return -EINVAL;
    }
    rc = kern_init(NULL, err, errlen);
    if (rc < 0)
        return rc;
    cpu_backend_t *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    if (threads > 0)
        omp_set_num_threads(threads);
    b->cfg = *cfg;
    b->mb = micro_batch;
    b->threads = omp_get_max_threads();
    model_layout(cfg, &b->lay);
    b->np = b->lay.total;
    model_decay_range_t dr[2 * MODEL_MAX_LAYERS + 2];
    b->ndecay = model_decay_ranges(cfg, dr, 2 * MODEL_MAX_LAYERS + 2);
    for (int i = 0; i < b->ndecay; i++) {
        b->decay[2 * i] = dr[i].begin;
        b->decay[2 * i + 1] = dr[i].end;
    }
    b->grads_zero = 1;

    size_t L = (size_t)cfg->layers, T = (size_t)cfg->context, D = (size_t)cfg->dim;
    size_t F = (size_t)cfg->ffn, V = (size_t)cfg->vocab, H = (size_t)cfg->heads;
    size_t N = (size_t)micro_batch * T, nt = (size_t)b->threads;
    /* LM head chunk: about 4M logits at a time, at least 16 rows. */
    size_t chunk = ((size_t)1 << 22) / V;
    chunk = chunk < 16 ? 16 : chunk;
    chunk = chunk > N ? N : chunk;
    b->chunk = (int)chunk;

    int failed = 0;
    b->params = backend__alloc(b->np, &failed);
    b->grads = backend__alloc(b->np, &failed);
    b->m = backend__alloc(b->np, &failed);
    b->v = backend__alloc(b->np, &failed);
    b->res = backend__alloc((L + 1) * N * D, &failed);
    b->resmid = backend__alloc(L * N * D, &failed);
    b->ln1 = backend__alloc(L * N * D, &failed);
    b->ln2 = backend__alloc(L * N * D, &failed);
    b->rstd1 = backend__alloc(L * N, &failed);
    b->rstd2 = backend__alloc(L * N, &failed);
    b->qkv = backend__alloc(L * N * 3 * D, &failed);
    b->att = backend__alloc(L * N * D, &failed);
    b->lse = backend__alloc(L * (size_t)micro_batch * H * T, &failed);
    b->h13 = backend__alloc(L * N * 2 * F, &failed);
    b->hh = backend__alloc(L * N * F, &failed);
    b->lnf = backend__alloc(N * D, &failed);
    b->rstdf = backend__alloc(N, &failed);
    b->dres = backend__alloc(N * D, &failed);
    b->dln = backend__alloc(N * D, &failed);
    b->dqkv = backend__alloc(N * 3 * D, &failed);
    b->datt = backend__alloc(N * D, &failed);
    b->dh13 = backend__alloc(N * 2 * F, &failed);
    b->dh = backend__alloc(N * F, &failed);
    b->norm_scratch = backend__alloc(nt * D, &failed);
    b->att_scratch = backend__alloc(nt * kern_attention_scratch((int)T, (int)(D / H)), &failed);
    b->lm_scratch = backend__alloc(chunk * V, &failed);
    b->rope_cos = backend__alloc(T * D / H / 2, &failed);
    b->rope_sin = backend__alloc(T * D / H / 2, &failed);
    b->losses = backend__alloc(N, &failed);
    b->inputs = calloc(N, sizeof(int32_t));
    b->targets = calloc(N, sizeof(int32_t));
    if (failed || !b->inputs || !b->targets) {
        cpu_destroy(b);
        snprintf(err, errlen, "out of memory allocating the model and activations");
        return -ENOMEM;
    }
    kern_rope_table(b->rope_cos, b->rope_sin, (int)T, (int)(D / H));
    model_init(cfg, b->params, seed);
    backend__warm_up(b);
    *ret = b;
    return 0;
}

static void cpu_destroy(void *impl)
{
    cpu_backend_t *b = impl;
    if (!b)
        return;
    if (backend__prof > 0) {
        double tot = 0.0;
        for (int i = 0; i < PH_COUNT; i++)
            tot += backend__prof_s[i];
        for (int i = 0; i < PH_COUNT; i++)
            fprintf(stderr, "regmix-train: profile %-16s %6.1f%% %8.3f s\n",
                    backend__phase_names[i], 100.0 * backend__prof_s[i] / (tot > 0 ? tot : 1),
                    backend__prof_s[i]);
    }
    float *bufs[] = {
            b->params,      b->grads,      b->m,        b->v,        b->res,   b->resmid,
            b->ln1,         b->ln2,        b->rstd1,    b->rstd2,    b->qkv,   b->att,
            b->lse,         b->h13,        b->hh,       b->lnf,      b->rstdf, b->dres,
            b->dln,         b->dqkv,       b->datt,     b->dh13,     b->dh,    b->norm_scratch,
            b->att_scratch, b->lm_scratch, b->rope_cos, b->rope_sin, b->losses};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(b->inputs);
    free(b->targets);
    free(b);
}

static size_t cpu_param_count(const void *impl)
{
    const cpu_backend_t *b = impl;
    return b->np;
}

static void cpu_set_state(void *impl, const float *params, const float *m, const float *v)
{
    cpu_backend_t *b = impl;
    if (params)
        memcpy(b->params, params, b->np * sizeof(float));
    if (m)
        memcpy(b->m, m, b->np * sizeof(float));
    if (v)
        memcpy(b->v, v, b->np * sizeof(float));
}

static void cpu_get_state(const void *impl, float *params, float *m, float *v)
{
    const cpu_backend_t *b = impl;
    if (params)
        memcpy(params, b->params, b->np * sizeof(float));
    if (m)
        memcpy(m, b->m, b->np * sizeof(float));
    if (v)
        memcpy(v, b->v, b->np * sizeof(float));
}

static void cpu_zero_grad(void *impl)
{
    cpu_backend_t *b = impl;
    if (!b->grads_zero)
        PROF(PH_ADAMW, memset(b->grads, 0, b->np * sizeof(float)));
    b->grads_zero = 1;
}

static float *cpu_grads_get(void *impl)
{
    cpu_backend_t *b = impl;
    b->grads_zero = 0;
    return b->grads;
}

static void cpu_grads_put(void *impl)
{
    (void)impl;
}

static void cpu_forward_backward(void *impl,
                                 const int32_t *tokens,
                                 int m,
                                 int backward,
                                 float grad_scale,
                                 double *ret_losses)
{
    cpu_backend_t *b = impl;
    const model_config_t *c = &b->cfg;
    const model_layout_t *lay = &b->lay;
    int T = c->context, D = c->dim, F = c->ffn, V = c->vocab, H = c->heads, L = c->layers;
    int n = m * T;
    long nd = (long)n * D, NDl = (long)b->mb * T * D;
    long NT = (long)b->mb * T;
    float *p = b->params, *g = b->grads;

    for (int s = 0; s < m; s++)
        for (int i = 0; i < T; i++) {
            b->inputs[s * T + i] = tokens[(long)s * (T + 1) + i];
            b->targets[s * T + i] = tokens[(long)s * (T + 1) + i + 1];
        }

    /* ---- forward ---- */
    PROF(PH_EMBED, kern_embed_forward(b->res, b->inputs, p + lay->wte, n, D));
    for (int l = 0; l < L; l++) {
        const size_t *o = lay->layer[l];
        float *x = b->res + l * NDl, *mid = b->resmid + l * NDl, *y = b->res + (l + 1) * NDl;
        float *ln1 = b->ln1 + l * NDl, *ln2 = b->ln2 + l * NDl, *att = b->att + l * NDl;
        float *qkv = b->qkv + l * 3 * NDl, *h13 = b->h13 + l * 2 * NT * F;
        float *hh = b->hh + l * NT * F, *lse = b->lse + (long)l * b->mb * H * T;
        PROF(PH_NORM,
             kern_rmsnorm_forward(ln1, b->rstd1 + l * NT, x, p + o[MODEL_T_ATTN_NORM], n, D));
        PROF(PH_LINEAR,
             kern_gemm(0, 1, n, 3 * D, D, 1.0f, ln1, D, p + o[MODEL_T_WQKV], D, 0.0f, qkv, 3 * D));
        PROF(PH_ROPE, kern_rope_apply(qkv, b->rope_cos, b->rope_sin, m, T, D, H, 0));
        PROF(PH_ATTN, kern_attention_forward(att, lse, qkv, m, T, D, H, b->att_scratch));
        PROF(PH_LINEAR, kern_linear_residual(mid, x, att, p + o[MODEL_T_WO], n, D, D));
        PROF(PH_NORM,
             kern_rmsnorm_forward(ln2, b->rstd2 + l * NT, mid, p + o[MODEL_T_MLP_NORM], n, D));
        PROF(PH_MLP, kern_mlp_forward(y, h13, hh, mid, ln2, p + o[MODEL_T_W13], p + o[MODEL_T_W2],
                                      n, D, F));
    }
    float *xl = b->res + L * NDl;
    PROF(PH_NORM, kern_rmsnorm_forward(b->lnf, b->rstdf, xl, p + lay->final_norm, n, D));
    PROF(PH_LMHEAD, kern_lmhead_ce(b->losses, backward ? b->dln : NULL, g + lay->lm_head, b->lnf,
                                   p + lay->lm_head, b->targets, n, D, V, b->chunk, grad_scale,
                                   b->lm_scratch));
    for (int s = 0; s < m; s++) {
        double sum = 0.0;
        for (int i = 0; i < T; i++)
            sum += b->losses[s * T + i];
        ret_losses[s] = sum / T;
    }
    if (!backward)
        return;
    b->grads_zero = 0;

    /* ---- backward ---- */
    PROF(PH_RESID, memset(b->dres, 0, nd * sizeof(float)));
    PROF(PH_NORM, kern_rmsnorm_backward(b->dres, g + lay->final_norm, b->dln, xl,
                                        p + lay->final_norm, b->rstdf, n, D, b->norm_scratch));
    for (int l = L - 1; l >= 0; l--) {
        const size_t *o = lay->layer[l];
        float *x = b->res + l * NDl, *mid = b->resmid + l * NDl;
        float *ln1 = b->ln1 + l * NDl, *ln2 = b->ln2 + l * NDl, *att = b->att + l * NDl;
        float *qkv = b->qkv + l * 3 * NDl, *h13 = b->h13 + l * 2 * NT * F;
        float *hh = b->hh + l * NT * F, *lse = b->lse + (long)l * b->mb * H * T;
        /* MLP: y = mid + swiglu(ln2 W13^T) W2^T */
        PROF(PH_MLP, kern_mlp_backward_rows(b->dln, b->dh13, b->dh, b->dres, h13,
                                            p + o[MODEL_T_W13], p + o[MODEL_T_W2], n, D, F));
        PROF(PH_LINEAR,
             kern_gemm(1, 0, D, F, n, 1.0f, b->dres, D, hh, F, 1.0f, g + o[MODEL_T_W2], F));
        PROF(PH_LINEAR, kern_gemm(1, 0, 2 * F, D, n, 1.0f, b->dh13, 2 * F, ln2, D, 1.0f,
                                  g + o[MODEL_T_W13], D));
        PROF(PH_NORM, kern_rmsnorm_backward(b->dres, g + o[MODEL_T_MLP_NORM], b->dln, mid,
                                            p + o[MODEL_T_MLP_NORM], b->rstd2 + l * NT, n, D,
                                            b->norm_scratch));
        /* attention: mid = x + attn(rope(ln1 Wqkv^T)) Wo^T */
        PROF(PH_LINEAR,
             kern_gemm(0, 0, n, D, D, 1.0f, b->dres, D, p + o[MODEL_T_WO], D, 0.0f, b->datt, D));
        PROF(PH_LINEAR,
             kern_gemm(1, 0, D, D, n, 1.0f, b->dres, D, att, D, 1.0f, g + o[MODEL_T_WO], D));
        PROF(PH_ATTN,
             kern_attention_backward(b->dqkv, b->datt, qkv, att, lse, m, T, D, H, b->att_scratch));
        PROF(PH_ROPE, kern_rope_apply(b->dqkv, b->rope_cos, b->rope_sin, m, T, D, H, 1));
        PROF(PH_LINEAR, kern_gemm(0, 0, n, D, 3 * D, 1.0f, b->dqkv, 3 * D, p + o[MODEL_T_WQKV], D,
                                  0.0f, b->dln, D));
        PROF(PH_LINEAR, kern_gemm(1, 0, 3 * D, D, n, 1.0f, b->dqkv, 3 * D, ln1, D, 1.0f,
                                  g + o[MODEL_T_WQKV], D));
        PROF(PH_NORM, kern_rmsnorm_backward(b->dres, g + o[MODEL_T_ATTN_NORM], b->dln, x,
                                            p + o[MODEL_T_ATTN_NORM], b->rstd1 + l * NT, n, D,
                                            b->norm_scratch));
    }
    PROF(PH_EMBED, kern_embed_backward(g + lay->wte, b->dres, b->inputs, n, D));
}

static double cpu_adamw_step(void *impl, const backend_adamw_t *hp, int t)
{
    cpu_backend_t *b = impl;
    kern_adamw_t k = {.lr = hp->lr,
                      .beta1 = hp->beta1,
                      .beta2 = hp->beta2,
                      .eps = hp->eps,
                      .weight_decay = hp->weight_decay,
                      .clip = hp->clip};
    double norm;
    PROF(PH_ADAMW, norm = kern_adamw(b->params, b->grads, b->m, b->v, (long)b->np, b->decay,
                                     b->ndecay, &k, t));
    b->grads_zero = 1;
    return norm;
}

const backend_ops_t backend_cpu_ops = {
        .name = "cpu",
        .probe = cpu_probe,
        .create = cpu_create,
        .destroy = cpu_destroy,
        .param_count = cpu_param_count,
        .set_state = cpu_set_state,
        .get_state = cpu_get_state,
        .zero_grad = cpu_zero_grad,
        .forward_backward = cpu_forward_backward,
        .grads_get = cpu_grads_get,
        .grads_put = cpu_grads_put,
        .adamw_step = cpu_adamw_step,
};
