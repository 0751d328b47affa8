/*
 * kernels_cpu.c: CPU layer kernels (see kernels.h). Matrix products go to oneDNN's sgemm when the
 * build has it (it picks AVX-512, AVX2 or SSE4.1 code from cpuid at run time) or to OpenBLAS;
 * the elementwise and attention kernels go through the kern_vec_ops_t table (kernels_vec.h) that
 * kern_init() fills from cpuid. OpenMP splits rows statically, so results depend only on the
 * thread count and the instruction-set path.
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if KERN_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

#include "kernels.h"
#include "kernels_vec.h"

static int kern__gemm_mode;
static int kern__use_dnnl = -1; /* -1: not chosen yet */
static const kern_vec_ops_t *kern__ops;

/* The table in use, chosen from the environment on first use when kern_init() was not called. */
static const kern_vec_ops_t *kern__vec(void)
{
    if (!kern__ops) {
        char err[256];
        if (kern_init(NULL, err, sizeof err) < 0)
            kern_init("generic", err, sizeof err);
    }
    return kern__ops;
}

static int kern__cpu_has(const char *isa)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(isa, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("fma");
    if (strcmp(isa, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return strcmp(isa, "generic") == 0;
}

int kern_init(const char *isa, char *err, size_t errlen)
{
    static const kern_vec_ops_t *const all[] = {&kern_vec_ops_avx512, &kern_vec_ops_avx2,
                                                &kern_vec_ops_generic};
    if (!isa)
        isa = getenv("REGMIX_TRAIN_ISA");
    if (isa && strcmp(isa, "scalar") == 0)
        isa = "generic";
    const kern_vec_ops_t *pick = NULL;
    if (!isa || !*isa || strcmp(isa, "auto") == 0) {
        for (size_t i = 0; i < sizeof all / sizeof all[0] && !pick; i++)
            if (kern__cpu_has(all[i]->name))
                pick = all[i];
    } else {
        for (size_t i = 0; i < sizeof all / sizeof all[0] && !pick; i++)
            if (strcmp(isa, all[i]->name) == 0)
                pick = all[i];
        if (!pick) {
            snprintf(err, errlen, "REGMIX_TRAIN_ISA=%s: unknown (auto, avx512, avx2, generic)",
                     isa);
            return -EINVAL;
        }
        if (!kern__cpu_has(pick->name)) {
            snprintf(err, errlen, "REGMIX_TRAIN_ISA=%s: this CPU cannot run it", isa);
            return -ENOTSUP;
        }
    }
    if (kern__use_dnnl < 0) {
        const char *g = getenv("REGMIX_TRAIN_GEMM");
        if (g && *g && strcmp(g, "openblas") != 0 && strcmp(g, "onednn") != 0) {
            snprintf(err, errlen, "REGMIX_TRAIN_GEMM=%s: unknown (onednn, openblas)", g);
            return -EINVAL;
        }
#if KERN_HAVE_DNNL
        kern__use_dnnl = !(g && strcmp(g, "openblas") == 0);
        /* oneDNN takes its instruction-set cap once, before its first call: the same as ours. */
        if (kern__use_dnnl)
            dnnl_set_max_cpu_isa(strcmp(pick->name, "avx512") == 0 ? dnnl_cpu_isa_avx512_core
                                 : strcmp(pick->name, "avx2") == 0 ? dnnl_cpu_isa_avx2
                                                                   : dnnl_cpu_isa_sse41);
#else
        if (g && strcmp(g, "onednn") == 0) {
            snprintf(err, errlen, "REGMIX_TRAIN_GEMM=onednn: this build has no oneDNN");
            return -ENOTSUP;
        }
        kern__use_dnnl = 0;
#endif
    }
    kern__ops = pick;
    return 0;
}

const char *kern_isa_name(void)
{
    return kern__vec()->name;
}

const char *kern_gemm_name(void)
{
    kern__vec();
    return kern__use_dnnl ? "onednn" : "openblas";
}

void kern_set_gemm_mode(int mode, int threads)
{
    kern__gemm_mode = mode;
    openblas_set_num_threads(mode == 1 ? threads : 1);
}

/* One row range [lo, hi) of n for thread tid of nt. */
static inline void kern__split(long n, int tid, int nt, long *lo, long *hi)
{
    *lo = n * tid / nt;
    *hi = n * (tid + 1) / nt;
}

/* One single-threaded (inside a parallel region) or library-threaded product. */
static void kern__sgemm(int trans_a,
                        int trans_b,
                        int m,
                        int n,
                        int k,
                        float alpha,
                        const float *a,
                        int lda,
                        const float *b,
                        int ldb,
                        float beta,
                        float *c,
                        int ldc)
{
#if KERN_HAVE_DNNL
    if (kern__use_dnnl) {
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta,
                   c, ldc);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void kern_gemm(int trans_a,
               int trans_b,
               int m,
               int n,
               int k,
               float alpha,
               const float *a,
               int lda,
               const float *b,
               int ldb,
               float beta,
               float *c,
               int ldc)
{
    int nt = omp_get_max_threads();
    kern__vec();
    if (kern__gemm_mode == 1 || nt == 1 || omp_in_parallel() || (long)m * n * k < 32768) {
        kern__sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    /* Split the larger output dimension; each block is an independent product. */
    int split_m = m >= n;
#pragma omp parallel
    {
        int tid = omp_get_thread_num(), cnt = omp_get_num_threads();
        long lo, hi;
        kern__split(split_m ? m : n, tid, cnt, &lo, &hi);
        if (hi > lo) {
            if (split_m) {
                const float *ab = trans_a ? a + lo : a + lo * lda;
                kern__sgemm(trans_a, trans_b, (int)(hi - lo), n, k, alpha, ab, lda, b, ldb, beta,
                            c + lo * ldc, ldc);
            } else {
                const float *bb = trans_b ? b + lo * ldb : b + lo;
                kern__sgemm(trans_a, trans_b, m, (int)(hi - lo), k, alpha, a, lda, bb, ldb, beta,
                            c + lo, ldc);
            }
        }
    }
}

void kern_linear_residual(
        float *y, const float *x, const float *act, const float *w, int n, int d, int k)
{
    kern__vec();
#pragma omp parallel
    {
        long lo, hi;
        kern__split(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) {
            memcpy(y + lo * d, x + lo * d, sizeof(float) * (size_t)(hi - lo) * d);
            kern__sgemm(0, 1, (int)(hi - lo), d, k, 1.0f, act + lo * k, k, w, k, 1.0f, y + lo * d,
                        d);
        }
    }
}

/* Rows per MLP tile: the tile's h13 (rows, 2F) within about 1 MB, so it is still in L2 when
 * SwiGLU reads it and hh when the down projection does; 16 to 256 rows. */
static int kern__mlp_rows(int f)
{
    int rows = (1 << 18) / (2 * f);
    rows = rows < 16 ? 16 : rows > 256 ? 256 : rows;
    return rows;
}

void kern_mlp_forward(float *y,
                      float *h13,
                      float *hh,
                      const float *res,
                      const float *ln,
                      const float *w13,
                      const float *w2,
                      int n,
                      int d,
                      int f)
{
    const kern_vec_ops_t *ops = kern__vec();
    int rows = kern__mlp_rows(f), tiles = (n + rows - 1) / rows;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < tiles; t++) {
        long r0 = (long)t * rows;
        int rn = n - r0 < rows ? (int)(n - r0) : rows;
        kern__sgemm(0, 1, rn, 2 * f, d, 1.0f, ln + r0 * d, d, w13, d, 0.0f, h13 + r0 * 2 * f,
                    2 * f);
        ops->swiglu_forward(hh + r0 * f, h13 + r0 * 2 * f, rn, f);
        memcpy(y + r0 * d, res + r0 * d, sizeof(float) * (size_t)rn * d);
        kern__sgemm(0, 1, rn, d, f, 1.0f, hh + r0 * f, f, w2, f, 1.0f, y + r0 * d, d);
    }
}

void kern_mlp_backward_rows(float *dln,
                            float *dh13,
                            float *dh,
                            const float *dy,
                            const float *h13,
                            const float *w13,
                            const float *w2,
                            int n,
                            int d,
                            int f)
{
    const kern_vec_ops_t *ops = kern__vec();
    int rows = kern__mlp_rows(f), tiles = (n + rows - 1) / rows;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < tiles; t++) {
        long r0 = (long)t * rows;
        int rn = n - r0 < rows ? (int)(n - r0) : rows;
        kern__sgemm(0, 0, rn, f, d, 1.0f, dy + r0 * d, d, w2, f, 0.0f, dh + r0 * f, f);
        ops->swiglu_backward(dh13 + r0 * 2 * f, dh + r0 * f, h13 + r0 * 2 * f, rn, f);
        kern__sgemm(0, 0, rn, d, 2 * f, 1.0f, dh13 + r0 * 2 * f, 2 * f, w13, d, 0.0f, dln + r0 * d,
                    d);
    }
}

void kern_embed_forward(float *out, const int32_t *tokens, const float *wte, int n, int d)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        memcpy(out + (long)i * d, wte + (long)tokens[i] * d, sizeof(float) * d);
}

void kern_embed_backward(float *dwte, const float *dout, const int32_t *tokens, int n, int d)
{
#pragma omp parallel
    {
        long lo, hi;
        kern__split(d, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        for (int i = 0; i < n; i++) {
            float *dst = dwte + (long)tokens[i] * d;
            const float *src = dout + (long)i * d;
            for (long j = lo; j < hi; j++)
                dst[j] += src[j];
        }
    }
}

void kern_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int n, int d)
{
    kern__vec()->rmsnorm_forward(out, rstd, x, w, n, d);
}

void kern_rmsnorm_backward(float *dx,
                           float *dw,
                           const float *dout,
                           const float *x,
                           const float *w,
                           const float *rstd,
                           int n,
                           int d,
                           float *scratch)
{
    kern__vec()->rmsnorm_backward(dx, dw, dout, x, w, rstd, n, d, scratch);
}

void kern_rope_table(float *cos_t, float *sin_t, int t, int hd)
{
    int half = hd / 2;
    for (int p = 0; p < t; p++)
        for (int i = 0; i < half; i++) {
            double freq = pow(KERN_ROPE_BASE, -2.0 * i / hd);
            cos_t[p * half + i] = (float)cos(p * freq);
            sin_t[p * half + i] = (float)sin(p * freq);
        }
}

void kern_rope_apply(float *qkv,
                     const float *cos_t,
                     const float *sin_t,
                     int b,
                     int t,
                     int d,
                     int heads,
                     int inverse)
{
    kern__vec()->rope_apply(qkv, cos_t, sin_t, b, t, d, heads, inverse);
}

size_t kern_attention_scratch(int t, int hd)
{
    /* The widest table's size, so a buffer fits whichever path is chosen later. */
    size_t a = kern_vec_ops_avx512.attention_scratch(t, hd);
    size_t b = kern_vec_ops_avx2.attention_scratch(t, hd);
    size_t c = kern_vec_ops_generic.attention_scratch(t, hd);
    return a > b ? (a > c ? a : c) : (b > c ? b : c);
}

void kern_attention_forward(
        float *out, float *lse, const float *qkv, int b, int t, int d, int heads, float *scratch)
{
    kern__vec()->attention_forward(out, lse, qkv, b, t, d, heads, scratch);
}

void kern_attention_backward(float *dqkv,
                             const float *dout,
                             const float *qkv,
                             const float *out,
                             const float *lse,
                             int b,
                             int t,
                             int d,
                             int heads,
                             float *scratch)
{
    kern__vec()->attention_backward(dqkv, dout, qkv, out, lse, b, t, d, heads, scratch);
}

void kern_swiglu_forward(float *h, const float *h13, int n, int f)
{
    kern__vec()->swiglu_forward(h, h13, n, f);
}

void kern_swiglu_backward(float *dh13, const float *dh, const float *h13, int n, int f)
{
    kern__vec()->swiglu_backward(dh13, dh, h13, n, f);
}

void kern_lmhead_ce(float *losses,
                    float *dx,
                    float *dw,
                    const float *x,
                    const float *w,
                    const int32_t *targets,
                    int n,
                    int d,
                    int v,
                    int chunk,
                    float grad_scale,
                    float *scratch)
{
    for (int c0 = 0; c0 < n; c0 += chunk) {
        int cn = c0 + chunk <= n ? chunk : n - c0;
        float *lg = scratch; /* (cn, V) */
        kern_gemm(0, 1, cn, v, d, 1.0f, x + (long)c0 * d, d, w, d, 0.0f, lg, v);
        kern__vec()->ce_rows(lg, losses + c0, targets + c0, cn, v, grad_scale, dx != NULL);
        if (dx) {
            kern_gemm(0, 0, cn, d, v, 1.0f, lg, v, w, d, 0.0f, dx + (long)c0 * d, d);
            kern_gemm(1, 0, v, d, cn, 1.0f, lg, v, x + (long)c0 * d, d, 1.0f, dw, d);
        }
    }
}

double kern_sumsq(const float *x, long n)
{
    return kern__vec()->sumsq(x, n);
}

double kern_adamw(float *p,
                  float *g,
                  float *m,
                  float *v,
                  long n,
                  const size_t *decay_ranges,
                  int ndecay,
                  const kern_adamw_t *hp,
                  int t)
{
    float bc1 = 1.0f - powf(hp->beta1, (float)t), bc2 = 1.0f - powf(hp->beta2, (float)t);
    return kern__vec()->adamw(p, g, m, v, n, decay_ranges, ndecay, hp->lr, hp->beta1, hp->beta2,
                              hp->eps, hp->weight_decay, hp->clip, bc1, bc2);
}

void kern_exp_array(float *y, const float *x, long n)
{
    kern__vec()->exp_array(y, x, n);
}

double kern_gemm_peak_gflops(int n)
{
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float));
    float *c = malloc(nn * sizeof(float));
    double best = 0.0;
    if (a && b && c) {
        for (size_t i = 0; i < nn; i++) {
            a[i] = (float)(i % 7) * 0.01f;
            b[i] = (float)(i % 5) * 0.01f;
        }
        /* Many short products, the best kept: on shared cores, the one least disturbed. */
        for (int r = 0; r < 17; r++) {
            double t0 = omp_get_wtime();
            kern_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            double g = 2.0 * n * (double)n * n / (omp_get_wtime() - t0) / 1e9;
            if (r > 0 && g > best) /* the first call warms up */
                best = g;
        }
    }
    free(a);
    free(b);
    free(c);
    return best;
}
