/*
 * kernels_vec.c: the elementwise and attention kernels for one instruction set (kernels_vec.h).
 * KERN_VEC_ISA names the compilation (avx512, avx2, generic); the target flags come from meson.
 * OpenMP splits rows statically, so a result depends only on the thread count and the path.
 */
#include "kernels_vec.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels.h"

#if defined(__AVX512F__)
#define KV_W 16
#elif defined(__AVX2__)
#define KV_W 8
#else
#define KV_W 4
#endif

#define KV_CAT2(a, b) a##b
#define KV_CAT(a, b)  KV_CAT2(a, b)
#define KV_OPS        KV_CAT(kern_vec_ops_, KERN_VEC_ISA)
#define KV_STR2(a)    #a
#define KV_STR(a)     KV_STR2(a)

#define KV_MAX_THREADS 256
#define KV_ROWS        4 /* query rows per attention tile */

typedef float kv_f __attribute__((vector_size(KV_W * 4)));
typedef int32_t kv_i __attribute__((vector_size(KV_W * 4)));

static inline kv_f kv_load(const float *p)
{
    kv_f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void kv_store(float *p, kv_f v)
{
    memcpy(p, &v, sizeof v);
}

/* The first n (< KV_W) lanes, the rest zero. */
static inline kv_f kv_load_part(const float *p, int n)
{
    float tmp[KV_W] = {0};
    memcpy(tmp, p, sizeof(float) * (size_t)n);
    return kv_load(tmp);
}

static inline void kv_store_part(float *p, kv_f v, int n)
{
    float tmp[KV_W];
    kv_store(tmp, v);
    memcpy(p, tmp, sizeof(float) * (size_t)n);
}

static inline kv_f kv_set1(float x)
{
    return (kv_f){0} + x;
}

/* m ? a : b lane by lane (m from a vector comparison: all ones or zero). */
static inline kv_f kv_select(kv_i m, kv_f a, kv_f b)
{
    return (kv_f)(((kv_i)a & m) | ((kv_i)b & ~m));
}

static inline float kv_hsum(kv_f v)
{
    float s = 0.0f;
    for (int i = 0; i < KV_W; i++)
        s += v[i];
    return s;
}

/*
 * exp(x) for float lanes: Cephes expf (S. L. Moshier, Cephes Math Library, expf.c): n =
 * round(x / ln 2), r = x - n ln 2 with ln 2 split in two (0.693359375 + -2.12194440e-4, exact
 * first part), exp(r) on |r| <= ln 2 / 2 by a degree-7 polynomial (Cephes' minimax
 * coefficients), then scaled by 2^n through the exponent bits. Cephes gives a peak relative
 * error of 1.7e-7 (about 2 ulp); test_train_grad measures the worst relative error of this
 * implementation against double exp on 2^20 points of [-87, 88] and checks it is below 3e-7.
 * Inputs are clamped to [-87.33, 88]: below, the result is 0 (exp underflows to denormals
 * there); above, about 1.65e38 (no caller needs more: softmax arguments are <= 0, and SiLU's
 * exp(-a) only feeds 1 / (1 + exp(-a))).
 */
static inline kv_f kv_exp(kv_f x)
{
    const float lo = -87.336544f, hi = 88.0f;
    kv_i under = x < lo;
    kv_f xc = kv_select(x < lo, kv_set1(lo), x);
    xc = kv_select(xc > hi, kv_set1(hi), xc);
    kv_f fx = xc * 1.44269504088896341f;
    fx = fx + kv_select(fx < 0.0f, kv_set1(-0.5f), kv_set1(0.5f));
    kv_i n = __builtin_convertvector(fx, kv_i); /* truncation: rounds to nearest */
    kv_f nf = __builtin_convertvector(n, kv_f);
    kv_f r = xc - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    kv_f r2 = r * r;
    kv_f p = 1.9875691500e-4f * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    kv_f scale = (kv_f)((n + 127) << 23);
    return kv_select(under, kv_set1(0.0f), p * scale);
}

static inline void kv__split(long n, int tid, int nt, long *lo, long *hi)
{
    *lo = n * tid / nt;
    *hi = n * (tid + 1) / nt;
}

static void kv_exp_array(float *y, const float *x, long n)
{
    long i = 0;
    for (; i + KV_W <= n; i += KV_W)
        kv_store(y + i, kv_exp(kv_load(x + i)));
    if (i < n)
        kv_store_part(y + i, kv_exp(kv_load_part(x + i, (int)(n - i))), (int)(n - i));
}

/* ---- RMSNorm ---- */

static void
kv_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int n, int d)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *restrict xi = x + (long)i * d;
        float *restrict oi = out + (long)i * d;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < d; j++)
            ss += xi[j] * xi[j];
        float r = 1.0f / sqrtf(ss / d + KERN_RMS_EPS);
        rstd[i] = r;
#pragma omp simd
        for (int j = 0; j < d; j++)
            oi[j] = xi[j] * r * w[j];
    }
}

static void kv_rmsnorm_backward(float *dx,
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
        float *restrict part = scratch + (long)tid * d;
        memset(part, 0, sizeof(float) * d);
        long lo, hi;
        kv__split(n, tid, nt, &lo, &hi);
        for (long i = lo; i < hi; i++) {
            const float *restrict xi = x + i * d, *restrict gi = dout + i * d;
            float *restrict dxi = dx + i * d;
            float r = rstd[i], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < d; j++) {
                dot += gi[j] * w[j] * xi[j];
                part[j] += gi[j] * xi[j] * r;
            }
            float c = dot * r * r * r / d;
#pragma omp simd
            for (int j = 0; j < d; j++)
                dxi[j] += r * gi[j] * w[j] - c * xi[j];
        }
    }
    for (int t = 0; t < used; t++)
#pragma omp simd
        for (int j = 0; j < d; j++)
            dw[j] += scratch[(long)t * d + j];
}

/* ---- RoPE ---- */

static void kv_rope_apply(float *qkv,
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
        const float *restrict c = cos_t + (long)p * half, *restrict s = sin_t + (long)p * half;
        for (int part = 0; part < 2; part++) /* q, then k */
            for (int h = 0; h < heads; h++) {
                float *restrict v = qkv + row * 3 * d + part * d + h * hd;
#pragma omp simd
                for (int i = 0; i < half; i++) {
                    float a = v[i], bb = v[i + half];
                    v[i] = a * c[i] - sgn * bb * s[i];
                    v[i + half] = bb * c[i] + sgn * a * s[i];
                }
            }
    }
}

/* ---- causal attention ----
 *
 * One (sequence, head) at a time per thread, flash-style: the forward keeps only the output
 * and each row's log-sum-exp; the backward recomputes the probabilities from them. Query rows go
 * in tiles of KV_ROWS; a tile computes the scores of key blocks of KV_W columns up to its last
 * row only, so nothing above the diagonal is computed beyond the rounding to a vector (at T 256
 * about 7 % over the causal half). Scores, softmax and the P V product of a tile stay in a
 * KV_ROWS x T buffer in L1. The head's K and V are first copied into contiguous (and for the
 * score products, transposed) scratch so every inner loop is a unit-stride vector loop. */

static inline int kv_round(int x, int to)
{
    return (x + to - 1) / to * to;
}

typedef struct kv_att_dims {
    int t, hd, tp, tq, hdp; /* tp: T rounded to KV_W; tq: T rounded to KV_ROWS; hdp: hd to KV_W */
} kv_att_dims_t;

static kv_att_dims_t kv_att_dims(int t, int hd)
{
    kv_att_dims_t a = {t, hd, kv_round(t, KV_W), kv_round(t, KV_ROWS), kv_round(hd, KV_W)};
    return a;
}

/* Floats of scratch per thread: kt, vt (hd, tp); qc, doc (tq, hdp); kc, dkc, dvc (tp, hdp);
 * s, dp (KV_ROWS, tp); dd (tq). */
static size_t kv_attention_scratch(int t, int hd)
{
    kv_att_dims_t a = kv_att_dims(t, hd);
    return (size_t)2 * a.hd * a.tp + (size_t)2 * a.tq * a.hdp + (size_t)3 * a.tp * a.hdp +
           (size_t)2 * KV_ROWS * a.tp + (size_t)a.tq + 64;
}

/* s (KV_ROWS, tp) [:, 0:nj) = a (rows i0.., hdp) . bt (hd, tp) */
static inline void kv_att_scores(float *restrict s,
                                 const float *restrict a,
                                 const float *restrict bt,
                                 int nj,
                                 int hd,
                                 int hdp,
                                 int tp)
{
    for (int j0 = 0; j0 < nj; j0 += KV_W) {
        kv_f acc[KV_ROWS];
        for (int r = 0; r < KV_ROWS; r++)
            acc[r] = kv_set1(0.0f);
        for (int c = 0; c < hd; c++) {
            kv_f kb = kv_load(bt + (long)c * tp + j0);
            for (int r = 0; r < KV_ROWS; r++)
                acc[r] += a[(long)r * hdp + c] * kb;
        }
        for (int r = 0; r < KV_ROWS; r++)
            kv_store(s + (long)r * tp + j0, acc[r]);
    }
}

/* out rows (KV_ROWS, hd of stride ldo) = alpha * p (KV_ROWS, tp)[:, 0:nj) . m (nj, hdp) */
static inline void kv_att_pm(float *restrict out,
                             long ldo,
                             int nrows,
                             const float *restrict p,
                             const float *restrict m,
                             int nj,
                             int hd,
                             int hdp,
                             int tp,
                             float alpha)
{
    for (int c0 = 0; c0 < hdp; c0 += KV_W) {
        kv_f acc[KV_ROWS];
        for (int r = 0; r < KV_ROWS; r++)
            acc[r] = kv_set1(0.0f);
        for (int j = 0; j < nj; j++) {
            kv_f mv = kv_load(m + (long)j * hdp + c0);
            for (int r = 0; r < KV_ROWS; r++)
                acc[r] += p[(long)r * tp + j] * mv;
        }
        int w = hd - c0 < KV_W ? hd - c0 : KV_W;
        for (int r = 0; r < nrows; r++) {
            if (w == KV_W)
                kv_store(out + r * ldo + c0, acc[r] * alpha);
            else
                kv_store_part(out + r * ldo + c0, acc[r] * alpha, w);
        }
    }
}

/* acc (nj, hdp) += p^T (KV_ROWS, tp)[:, 0:nj) . m (KV_ROWS, hdp) */
static inline void kv_att_ptm(float *restrict acc,
                              const float *restrict p,
                              const float *restrict m,
                              int nj,
                              int hdp,
                              int tp)
{
    for (int c0 = 0; c0 < hdp; c0 += KV_W) {
        kv_f mv[KV_ROWS];
        for (int r = 0; r < KV_ROWS; r++)
            mv[r] = kv_load(m + (long)r * hdp + c0);
        for (int j = 0; j < nj; j++) {
            kv_f a = kv_load(acc + (long)j * hdp + c0);
            for (int r = 0; r < KV_ROWS; r++)
                a += p[(long)r * tp + j] * mv[r];
            kv_store(acc + (long)j * hdp + c0, a);
        }
    }
}

/* Copies one head's rows (T, hd) of stride ld into (rows, hdp) with zero padding, times alpha. */
static void kv_att_rows(float *restrict dst,
                        const float *restrict src,
                        long ld,
                        int t,
                        int rows,
                        int hd,
                        int hdp,
                        float alpha)
{
    for (int j = 0; j < t; j++) {
        float *restrict dj = dst + (long)j * hdp;
        const float *restrict sj = src + j * ld;
#pragma omp simd
        for (int c = 0; c < hd; c++)
            dj[c] = sj[c] * alpha;
        for (int c = hd; c < hdp; c++)
            dj[c] = 0.0f;
    }
    if (rows > t)
        memset(dst + (long)t * hdp, 0, sizeof(float) * (size_t)(rows - t) * hdp);
}

/* Copies one head's rows (T, hd) of stride ld into the transpose (hd, tp), zero padded. Reads
 * rows in order (the writes go to hd lines at once, which stay in L1). */
static void
kv_att_cols(float *restrict dst, const float *restrict src, long ld, int t, int hd, int tp)
{
    for (int j = 0; j < t; j++)
        for (int c = 0; c < hd; c++)
            dst[(long)c * tp + j] = src[j * ld + c];
    for (int c = 0; c < hd; c++)
        for (int j = t; j < tp; j++)
            dst[(long)c * tp + j] = 0.0f;
}

static void kv_attention_forward(
        float *out, float *lse, const float *qkv, int b, int t, int d, int heads, float *scratch)
{
    int hd = d / heads;
    kv_att_dims_t a = kv_att_dims(t, hd);
    float scale = 1.0f / sqrtf((float)hd);
    size_t per = kv_attention_scratch(t, hd);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < b * heads; bh++) {
        int bi = bh / heads, h = bh % heads;
        float *kt = scratch + (size_t)omp_get_thread_num() * per;
        float *qc = kt + (size_t)2 * hd * a.tp, *vc = qc + (size_t)2 * a.tq * a.hdp;
        float *s = vc + (size_t)3 * a.tp * a.hdp;
        const float *q = qkv + (long)bi * t * 3 * d + h * hd, *k = q + d, *v = q + 2 * d;
        float *o = out + (long)bi * t * d + h * hd;
        float *l = lse + (long)bh * t;
        kv_att_cols(kt, k, 3L * d, t, hd, a.tp);
        kv_att_rows(qc, q, 3L * d, t, a.tq, hd, a.hdp, scale);
        kv_att_rows(vc, v, 3L * d, t, a.tp, hd, a.hdp, 1.0f);
        for (int i0 = 0; i0 < t; i0 += KV_ROWS) {
            int rn = t - i0 < KV_ROWS ? t - i0 : KV_ROWS;
            int nj = kv_round(i0 + rn, KV_W);
            kv_att_scores(s, qc + (long)i0 * a.hdp, kt, nj, hd, a.hdp, a.tp);
            for (int r = 0; r < KV_ROWS; r++) {
                float *sr = s + (long)r * a.tp;
                int last = i0 + r; /* inclusive */
                if (r >= rn) {
                    memset(sr, 0, sizeof(float) * nj);
                    continue;
                }
                kv_i iota;
                for (int z = 0; z < KV_W; z++)
                    iota[z] = z;
                kv_f mxv = kv_set1(-INFINITY);
                for (int j0 = 0; j0 < nj; j0 += KV_W) {
                    kv_f x = kv_select(iota + j0 <= last, kv_load(sr + j0), kv_set1(-INFINITY));
                    mxv = kv_select(x > mxv, x, mxv);
                }
                float mx = mxv[0];
                for (int z = 1; z < KV_W; z++)
                    mx = mxv[z] > mx ? mxv[z] : mx;
                kv_f sum = kv_set1(0.0f);
                for (int j0 = 0; j0 < nj; j0 += KV_W) {
                    kv_f e = kv_exp(kv_load(sr + j0) - mx);
                    e = kv_select(iota + j0 <= last, e, kv_set1(0.0f));
                    sum += e;
                    kv_store(sr + j0, e);
                }
                float tot = kv_hsum(sum), inv = 1.0f / tot;
                for (int j = 0; j < nj; j++)
                    sr[j] *= inv;
                l[last] = mx + logf(tot);
            }
            kv_att_pm(o + (long)i0 * d, d, rn, s, vc, nj, hd, a.hdp, a.tp, 1.0f);
        }
    }
}

static void kv_attention_backward(float *dqkv,
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
    int hd = d / heads;
    kv_att_dims_t a = kv_att_dims(t, hd);
    float scale = 1.0f / sqrtf((float)hd);
    size_t per = kv_attention_scratch(t, hd);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < b * heads; bh++) {
        int bi = bh / heads, h = bh % heads;
        float *kt = scratch + (size_t)omp_get_thread_num() * per;
        float *vt = kt + (size_t)hd * a.tp;
        float *qc = vt + (size_t)hd * a.tp, *doc = qc + (size_t)a.tq * a.hdp;
        float *kc = doc + (size_t)a.tq * a.hdp, *dkc = kc + (size_t)a.tp * a.hdp;
        float *dvc = dkc + (size_t)a.tp * a.hdp;
        float *s = dvc + (size_t)a.tp * a.hdp, *dp = s + (size_t)KV_ROWS * a.tp;
        float *dd = dp + (size_t)KV_ROWS * a.tp;
        long base = (long)bi * t * 3 * d + h * hd;
        const float *q = qkv + base, *k = q + d, *v = q + 2 * d;
        float *dq = dqkv + base, *dk = dq + d, *dv = dq + 2 * d;
        const float *o = out + (long)bi * t * d + h * hd;
        const float *go = dout + (long)bi * t * d + h * hd;
        const float *l = lse + (long)bh * t;
        kv_att_cols(kt, k, 3L * d, t, hd, a.tp);
        kv_att_cols(vt, v, 3L * d, t, hd, a.tp);
        kv_att_rows(qc, q, 3L * d, t, a.tq, hd, a.hdp, scale);
        kv_att_rows(doc, go, d, t, a.tq, hd, a.hdp, 1.0f);
        kv_att_rows(kc, k, 3L * d, t, a.tp, hd, a.hdp, 1.0f);
        memset(dkc, 0, sizeof(float) * 2 * a.tp * a.hdp);
        for (int i = 0; i < a.tq; i++) {
            float di = 0.0f;
            if (i < t)
                for (int c = 0; c < hd; c++)
                    di += o[(long)i * d + c] * go[(long)i * d + c];
            dd[i] = di;
        }
        kv_i iota;
        for (int z = 0; z < KV_W; z++)
            iota[z] = z;
        for (int i0 = 0; i0 < t; i0 += KV_ROWS) {
            int rn = t - i0 < KV_ROWS ? t - i0 : KV_ROWS;
            int nj = kv_round(i0 + rn, KV_W);
            kv_att_scores(s, qc + (long)i0 * a.hdp, kt, nj, hd, a.hdp, a.tp);
            kv_att_scores(dp, doc + (long)i0 * a.hdp, vt, nj, hd, a.hdp, a.tp);
            for (int r = 0; r < KV_ROWS; r++) {
                float *sr = s + (long)r * a.tp, *dpr = dp + (long)r * a.tp;
                int last = i0 + r;
                if (r >= rn) {
                    memset(sr, 0, sizeof(float) * nj);
                    memset(dpr, 0, sizeof(float) * nj);
                    continue;
                }
                float li = l[last], di = dd[last];
                for (int j0 = 0; j0 < nj; j0 += KV_W) {
                    kv_f p = kv_exp(kv_load(sr + j0) - li);
                    p = kv_select(iota + j0 <= last, p, kv_set1(0.0f));
                    kv_store(sr + j0, p);
                    kv_store(dpr + j0, p * (kv_load(dpr + j0) - di));
                }
            }
            /* dQ rows of this tile; dK, dV rows 0..nj accumulate over tiles. */
            kv_att_pm(dq + (long)i0 * 3 * d, 3L * d, rn, dp, kc, nj, hd, a.hdp, a.tp, scale);
            kv_att_ptm(dkc, dp, qc + (long)i0 * a.hdp, nj, a.hdp, a.tp);
            kv_att_ptm(dvc, s, doc + (long)i0 * a.hdp, nj, a.hdp, a.tp);
        }
        for (int j = 0; j < t; j++) {
            memcpy(dk + (long)j * 3 * d, dkc + (long)j * a.hdp, sizeof(float) * hd);
            memcpy(dv + (long)j * 3 * d, dvc + (long)j * a.hdp, sizeof(float) * hd);
        }
    }
}

/* ---- SwiGLU ---- */

static void kv_swiglu_forward(float *h, const float *h13, int n, int f)
{
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int i = 0; i < n; i++) {
        const float *a = h13 + (long)i * 2 * f, *u = a + f;
        float *hi = h + (long)i * f;
        int j = 0;
        for (; j + KV_W <= f; j += KV_W) {
            kv_f av = kv_load(a + j);
            kv_store(hi + j, av / (1.0f + kv_exp(-av)) * kv_load(u + j));
        }
        if (j < f) {
            int w = f - j;
            kv_f av = kv_load_part(a + j, w);
            kv_store_part(hi + j, av / (1.0f + kv_exp(-av)) * kv_load_part(u + j, w), w);
        }
    }
}

static void kv_swiglu_backward(float *dh13, const float *dh, const float *h13, int n, int f)
{
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int i = 0; i < n; i++) {
        const float *a = h13 + (long)i * 2 * f, *u = a + f, *g = dh + (long)i * f;
        float *da = dh13 + (long)i * 2 * f, *du = da + f;
        for (int j = 0; j < f; j += KV_W) {
            int w = f - j < KV_W ? f - j : KV_W;
            kv_f av = w == KV_W ? kv_load(a + j) : kv_load_part(a + j, w);
            kv_f uv = w == KV_W ? kv_load(u + j) : kv_load_part(u + j, w);
            kv_f gv = w == KV_W ? kv_load(g + j) : kv_load_part(g + j, w);
            kv_f sg = 1.0f / (1.0f + kv_exp(-av));
            kv_f duv = gv * av * sg;
            kv_f dav = gv * uv * sg * (1.0f + av * (1.0f - sg));
            if (w == KV_W) {
                kv_store(du + j, duv);
                kv_store(da + j, dav);
            } else {
                kv_store_part(du + j, duv, w);
                kv_store_part(da + j, dav, w);
            }
        }
    }
}

/* ---- cross-entropy rows ---- */

static void kv_ce_rows(float *lg,
                       float *losses,
                       const int32_t *targets,
                       int n,
                       int v,
                       float grad_scale,
                       int want_grad)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *restrict li = lg + (long)i * v;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < v; j++)
            mx = li[j] > mx ? li[j] : mx;
        kv_f sum = kv_set1(0.0f);
        int j = 0;
        for (; j + KV_W <= v; j += KV_W)
            sum += kv_exp(kv_load(li + j) - mx);
        float tot = kv_hsum(sum);
        for (; j < v; j++)
            tot += kv_exp(kv_set1(li[j] - mx))[0];
        float lse = mx + logf(tot);
        int tg = targets[i];
        losses[i] = lse - li[tg];
        if (want_grad) {
            j = 0;
            for (; j + KV_W <= v; j += KV_W)
                kv_store(li + j, kv_exp(kv_load(li + j) - lse) * grad_scale);
            for (; j < v; j++)
                li[j] = kv_exp(kv_set1(li[j] - lse))[0] * grad_scale;
            li[tg] -= grad_scale;
        }
    }
}

/* ---- optimizer ---- */

static double kv_sumsq(const float *x, long n)
{
    double part[KV_MAX_THREADS] = {0};
    int used = 1;
    int want = omp_get_max_threads() < KV_MAX_THREADS ? omp_get_max_threads() : KV_MAX_THREADS;
#pragma omp parallel num_threads(want)
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
        used = nt;
        long lo, hi;
        kv__split(n, tid, nt, &lo, &hi);
        double s = 0.0;
        /* float partial sums over blocks of 1024, summed in double */
        for (long b0 = lo; b0 < hi; b0 += 1024) {
            long b1 = b0 + 1024 < hi ? b0 + 1024 : hi;
            float fs = 0.0f;
#pragma omp simd reduction(+ : fs)
            for (long i = b0; i < b1; i++)
                fs += x[i] * x[i];
            s += fs;
        }
        part[tid] = s;
    }
    double total = 0.0;
    for (int t = 0; t < used; t++)
        total += part[t];
    return total;
}

static inline void kv_adamw_range(float *restrict p,
                                  float *restrict g,
                                  float *restrict m,
                                  float *restrict v,
                                  long lo,
                                  long hi,
                                  float gs,
                                  float lr,
                                  float b1,
                                  float b2,
                                  float eps,
                                  float wd,
                                  float ibc1,
                                  float ibc2)
{
#pragma omp simd
    for (long i = lo; i < hi; i++) {
        float gi = g[i] * gs;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (mi * ibc1 / (sqrtf(vi * ibc2) + eps) + wd * p[i]);
        g[i] = 0.0f;
    }
}

static double kv_adamw(float *p,
                       float *g,
                       float *m,
                       float *v,
                       long n,
                       const size_t *dr,
                       int ndecay,
                       float lr,
                       float beta1,
                       float beta2,
                       float eps,
                       float wd,
                       float clip,
                       float bc1,
                       float bc2)
{
    double part[KV_MAX_THREADS] = {0}, norm = 0.0;
    int want = omp_get_max_threads() < KV_MAX_THREADS ? omp_get_max_threads() : KV_MAX_THREADS;
    float ibc1 = 1.0f / bc1, ibc2 = 1.0f / bc2;
#pragma omp parallel num_threads(want)
    {
        int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        long lo, hi;
        kv__split(n, tid, nt, &lo, &hi);
        double s = 0.0;
        for (long b0 = lo; b0 < hi; b0 += 1024) {
            long b1 = b0 + 1024 < hi ? b0 + 1024 : hi;
            float fs = 0.0f;
#pragma omp simd reduction(+ : fs)
            for (long i = b0; i < b1; i++)
                fs += g[i] * g[i];
            s += fs;
        }
        part[tid] = s;
#pragma omp barrier
#pragma omp single
        {
            double tot = 0.0;
            for (int t = 0; t < nt; t++)
                tot += part[t];
            norm = sqrt(tot);
        } /* implicit barrier: every thread sees norm */
        float gs = 1.0f;
        if (clip > 0.0f && norm > clip)
            gs = (float)(clip / (norm + 1e-6));
        /* Walk this thread's slice [lo, hi) through the alternating undecayed / decayed runs. */
        long at = lo;
        for (int r = 0; r <= ndecay && at < hi; r++) {
            long dlo = r < ndecay ? (long)dr[2 * r] : n, dhi = r < ndecay ? (long)dr[2 * r + 1] : n;
            long e = dlo < hi ? dlo : hi;
            if (at < e) {
                kv_adamw_range(p, g, m, v, at, e, gs, lr, beta1, beta2, eps, 0.0f, ibc1, ibc2);
                at = e;
            }
            e = dhi < hi ? dhi : hi;
            if (at < e) {
                kv_adamw_range(p, g, m, v, at, e, gs, lr, beta1, beta2, eps, wd, ibc1, ibc2);
                at = e;
            }
        }
    }
    return norm;
}

const kern_vec_ops_t KV_OPS = {
        .name = KV_STR(KERN_VEC_ISA),
        .width = KV_W,
        .rmsnorm_forward = kv_rmsnorm_forward,
        .rmsnorm_backward = kv_rmsnorm_backward,
        .rope_apply = kv_rope_apply,
        .attention_scratch = kv_attention_scratch,
        .attention_forward = kv_attention_forward,
        .attention_backward = kv_attention_backward,
        .swiglu_forward = kv_swiglu_forward,
        .swiglu_backward = kv_swiglu_backward,
        .ce_rows = kv_ce_rows,
        .sumsq = kv_sumsq,
        .adamw = kv_adamw,
        .exp_array = kv_exp_array,
};
