/*
 * kernels_cpu.c: CPU layer kernels (see kernels.h). Matrix products use OpenBLAS sgemm; the rest
 * is OpenMP over rows with a static split, so results depend only on the thread count.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels.h"

#define KERN_MAX_THREADS 256
#define ATT_BLOCK        128

static int kern__gemm_mode;

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
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    int nt = omp_get_max_threads();
    if (kern__gemm_mode == 1 || nt == 1 || omp_in_parallel() || (long)m * n * k < 32768) {
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    /* Split the larger output dimension; each block is an independent sgemm. */
    int split_m = m >= n;
#pragma omp parallel
    {
        int tid = omp_get_thread_num(), cnt = omp_get_num_threads();
        long lo, hi;
        kern__split(split_m ? m : n, tid, cnt, &lo, &hi);
        if (hi > lo) {
            if (split_m) {
                const float *ab = trans_a ? a + lo : a + lo * lda;
                cblas_sgemm(CblasRowMajor, ta, tb, (int)(hi - lo), n, k, alpha, ab, lda, b, ldb,
                            beta, c + lo * ldc, ldc);
            } else {
                const float *bb = trans_b ? b + lo * ldb : b + lo;
                cblas_sgemm(CblasRowMajor, ta, tb, m, (int)(hi - lo), k, alpha, a, lda, bb, ldb,
                            beta, c + lo, ldc);
            }
        }
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
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (long)i * d;
        float *oi = out + (long)i * d;
        float ss = 0.0f;
        for (int j = 0; j < d; j++)
            ss += xi[j] * xi[j];
        float r = 1.0f / sqrtf(ss / d + KERN_RMS_EPS);
        rstd[i] = r;
        for (int j = 0; j < d; j++)
            oi[j] = xi[j] * r * w[j];
    }
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
    int used = 1;
#pragma omp parallel
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
        used = nt;
        float *part = scratch + (long)tid * d;
        memset(part, 0, sizeof(float) * d);
        long lo, hi;
        kern__split(n, tid, nt, &lo, &hi);
        for (long i = lo; i < hi; i++) {
            const float *xi = x + i * d, *gi = dout + i * d;
            float *dxi = dx + i * d;
            float r = rstd[i], dot = 0.0f;
            for (int j = 0; j < d; j++) {
                dot += gi[j] * w[j] * xi[j];
                part[j] += gi[j] * xi[j] * r;
            }
            float c = dot * r * r * r / d;
            for (int j = 0; j < d; j++)
                dxi[j] += r * gi[j] * w[j] - c * xi[j];
        }
    }
    for (int t = 0; t < used; t++)
        for (int j = 0; j < d; j++)
            dw[j] += scratch[(long)t * d + j];
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
    int hd = d / heads, half = hd / 2;
    float sgn = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static)
    for (long row = 0; row < (long)b * t; row++) {
        int p = (int)(row % t);
        const float *c = cos_t + (long)p * half, *s = sin_t + (long)p * half;
        for (int part = 0; part < 2; part++) /* q, then k */
            for (int h = 0; h < heads; h++) {
                float *v = qkv + row * 3 * d + part * d + h * hd;
                for (int i = 0; i < half; i++) {
                    float a = v[i], bb = v[i + half];
                    v[i] = a * c[i] - sgn * bb * s[i];
                    v[i + half] = bb * c[i] + sgn * a * s[i];
                }
            }
    }
}

/* Row blocks for the causal products: rows [r0, r1) only see columns [0, r1). */
static inline int kern__att_block(int t)
{
    return t < ATT_BLOCK ? t : ATT_BLOCK;
}

void kern_attention_forward(
        float *out, float *lse, const float *qkv, int b, int t, int d, int heads, float *scratch)
{
    int hd = d / heads, blk = kern__att_block(t);
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < b * heads; bh++) {
        int bi = bh / heads, h = bh % heads;
        float *s = scratch + (long)omp_get_thread_num() * 2 * blk * t;
        const float *q = qkv + (long)bi * t * 3 * d + h * hd;
        const float *k = q + d, *v = q + 2 * d;
        float *o = out + (long)bi * t * d + h * hd;
        float *l = lse + (long)bh * t;
        for (int r0 = 0; r0 < t; r0 += blk) {
            int r1 = r0 + blk < t ? r0 + blk : t, rb = r1 - r0;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rb, r1, hd, scale,
                        q + (long)r0 * 3 * d, 3 * d, k, 3 * d, 0.0f, s, r1);
            for (int i = 0; i < rb; i++) {
                float *si = s + (long)i * r1;
                int last = r0 + i; /* inclusive */
                float mx = -INFINITY;
                for (int j = 0; j <= last; j++)
                    mx = si[j] > mx ? si[j] : mx;
                float sum = 0.0f;
                for (int j = 0; j <= last; j++) {
                    si[j] = expf(si[j] - mx);
                    sum += si[j];
                }
                float inv = 1.0f / sum;
                for (int j = 0; j <= last; j++)
                    si[j] *= inv;
                for (int j = last + 1; j < r1; j++)
                    si[j] = 0.0f;
                l[r0 + i] = mx + logf(sum);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rb, hd, r1, 1.0f, s, r1, v,
                        3 * d, 0.0f, o + (long)r0 * d, d);
        }
    }
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
    int hd = d / heads, blk = kern__att_block(t);
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < b * heads; bh++) {
        int bi = bh / heads, h = bh % heads;
        float *p = scratch + (long)omp_get_thread_num() * 2 * blk * t;
        float *dp = p + (long)blk * t;
        long base = (long)bi * t * 3 * d + h * hd;
        const float *q = qkv + base, *k = q + d, *v = q + 2 * d;
        float *dq = dqkv + base, *dk = dq + d, *dv = dq + 2 * d;
        const float *o = out + (long)bi * t * d + h * hd;
        const float *go = dout + (long)bi * t * d + h * hd;
        const float *l = lse + (long)bh * t;
        for (int i = 0; i < t; i++) {
            memset(dk + (long)i * 3 * d, 0, sizeof(float) * hd);
            memset(dv + (long)i * 3 * d, 0, sizeof(float) * hd);
        }
        for (int r0 = 0; r0 < t; r0 += blk) {
            int r1 = r0 + blk < t ? r0 + blk : t, rb = r1 - r0;
            /* Recompute P from the saved log-sum-exp instead of storing (B,H,T,T). */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rb, r1, hd, scale,
                        q + (long)r0 * 3 * d, 3 * d, k, 3 * d, 0.0f, p, r1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rb, r1, hd, 1.0f,
                        go + (long)r0 * d, d, v, 3 * d, 0.0f, dp, r1);
            for (int i = 0; i < rb; i++) {
                int last = r0 + i;
                float *pi = p + (long)i * r1, *dpi = dp + (long)i * r1;
                const float *oi = o + (long)last * d, *goi = go + (long)last * d;
                float di = 0.0f;
                for (int j = 0; j < hd; j++)
                    di += oi[j] * goi[j];
                float li = l[last];
                for (int j = 0; j <= last; j++) {
                    pi[j] = expf(pi[j] - li);
                    dpi[j] = pi[j] * (dpi[j] - di);
                }
                for (int j = last + 1; j < r1; j++)
                    pi[j] = dpi[j] = 0.0f;
            }
            /* dQ rows of this block; dK, dV accumulate over blocks. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rb, hd, r1, scale, dp, r1, k,
                        3 * d, 0.0f, dq + (long)r0 * 3 * d, 3 * d);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, rb, scale, dp, r1,
                        q + (long)r0 * 3 * d, 3 * d, 1.0f, dk, 3 * d);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, rb, 1.0f, p, r1,
                        go + (long)r0 * d, d, 1.0f, dv, 3 * d);
        }
    }
}

void kern_swiglu_forward(float *h, const float *h13, int n, int f)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *a = h13 + (long)i * 2 * f, *u = a + f;
        float *hi = h + (long)i * f;
        for (int j = 0; j < f; j++)
            hi[j] = a[j] / (1.0f + expf(-a[j])) * u[j];
    }
}

void kern_swiglu_backward(float *dh13, const float *dh, const float *h13, int n, int f)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *a = h13 + (long)i * 2 * f, *u = a + f, *g = dh + (long)i * f;
        float *da = dh13 + (long)i * 2 * f, *du = da + f;
        for (int j = 0; j < f; j++) {
            float sg = 1.0f / (1.0f + expf(-a[j]));
            float silu = a[j] * sg;
            du[j] = g[j] * silu;
            da[j] = g[j] * u[j] * sg * (1.0f + a[j] * (1.0f - sg));
        }
    }
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
#pragma omp parallel for schedule(static)
        for (int i = 0; i < cn; i++) {
            float *li = lg + (long)i * v;
            float mx = -INFINITY;
            for (int j = 0; j < v; j++)
                mx = li[j] > mx ? li[j] : mx;
            float sum = 0.0f;
            for (int j = 0; j < v; j++)
                sum += expf(li[j] - mx);
            float lse = mx + logf(sum);
            int tg = targets[c0 + i];
            losses[c0 + i] = lse - li[tg];
            if (dx) {
                for (int j = 0; j < v; j++)
                    li[j] = expf(li[j] - lse) * grad_scale;
                li[tg] -= grad_scale;
            }
        }
        if (dx) {
            kern_gemm(0, 0, cn, d, v, 1.0f, lg, v, w, d, 0.0f, dx + (long)c0 * d, d);
            kern_gemm(1, 0, v, d, cn, 1.0f, lg, v, x + (long)c0 * d, d, 1.0f, dw, d);
        }
    }
}

double kern_sumsq(const float *x, long n)
{
    double part[KERN_MAX_THREADS] = {0};
    int used = 1;
#pragma omp parallel num_threads(omp_get_max_threads() < KERN_MAX_THREADS ? omp_get_max_threads()  \
                                                                          : KERN_MAX_THREADS)
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
        used = nt;
        long lo, hi;
        kern__split(n, tid, nt, &lo, &hi);
        double s = 0.0;
        for (long i = lo; i < hi; i++)
            s += (double)x[i] * x[i];
        part[tid] = s;
    }
    double total = 0.0;
    for (int t = 0; t < used; t++)
        total += part[t];
    return total;
}
