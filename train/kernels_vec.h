/*
 * kernels_vec: the elementwise and attention kernels of kernels.h for one instruction set.
 *
 * kernels_vec.c is compiled three times with different target flags (train/meson.build): once
 * for AVX-512 (F, DQ, BW, VL + FMA, 512-bit vectors), once for AVX2 + FMA, once for the
 * baseline of the build target (generic: SSE2 on x86-64, whatever the target has elsewhere).
 * Each compilation defines one kern_vec_ops_t; kernels_cpu.c picks one at run time from cpuid
 * (kern_init) and calls through it, so one binary runs on any x86-64 and uses the widest vectors
 * the CPU has. Nothing here is built with -march=native. The kernels use GCC vector extensions
 * (vector width KV_W = 16, 8 or 4 floats) and loops the compiler vectorises; exp is the
 * polynomial documented at kv_exp() in kernels_vec.c. Contracts (shapes, accumulate or
 * overwrite) are those of the matching functions in kernels.h.
 */
#ifndef REGMIX_TRAIN_KERNELS_VEC_H
#define REGMIX_TRAIN_KERNELS_VEC_H

#include <stddef.h>
#include <stdint.h>

typedef struct kern_vec_ops {
    const char *name; /* "avx512", "avx2", "generic" */
    int width;        /* floats per vector */
    void (*rmsnorm_forward)(float *out, float *rstd, const float *x, const float *w, int n, int d);
    void (*rmsnorm_backward)(float *dx,
                             float *dw,
                             const float *dout,
                             const float *x,
                             const float *w,
                             const float *rstd,
                             int n,
                             int d,
                             float *scratch);
    void (*rope_apply)(float *qkv,
                       const float *cos_t,
                       const float *sin_t,
                       int b,
                       int t,
                       int d,
                       int heads,
                       int inverse);
    size_t (*attention_scratch)(int t, int hd);
    void (*attention_forward)(float *out,
                              float *lse,
                              const float *qkv,
                              int b,
                              int t,
                              int d,
                              int heads,
                              float *scratch);
    void (*attention_backward)(float *dqkv,
                               const float *dout,
                               const float *qkv,
                               const float *out,
                               const float *lse,
                               int b,
                               int t,
                               int d,
                               int heads,
                               float *scratch);
    void (*swiglu_forward)(float *h, const float *h13, int n, int f);
    void (*swiglu_backward)(float *dh13, const float *dh, const float *h13, int n, int f);
    /* Cross-entropy over logits lg (n,V) in place: losses[i] = lse_i - lg[i, tg_i]; with
     * want_grad, lg becomes grad_scale * (softmax - onehot). */
    void (*ce_rows)(float *lg,
                    float *losses,
                    const int32_t *targets,
                    int n,
                    int v,
                    float grad_scale,
                    int want_grad);
    double (*sumsq)(const float *x, long n);
    /* One AdamW step over all n parameters in one parallel region: the global norm of g (scaled
     * by 1), clipping, the update (weight decay wd on the ranges [dr[2k], dr[2k+1]) only), and
     * g zeroed. Returns the norm before clipping. */
    double (*adamw)(float *p,
                    float *g,
                    float *m,
                    float *v,
                    long n,
                    const size_t *decay_ranges,
                    int ndecay,
                    float lr,
                    float beta1,
                    float beta2,
                    float eps,
                    float wd,
                    float clip,
                    float bc1,
                    float bc2);
    /* y (n) = kv_exp(x): the vector exp, exposed for its error test. */
    void (*exp_array)(float *y, const float *x, long n);
} kern_vec_ops_t;

extern const kern_vec_ops_t kern_vec_ops_avx512;
extern const kern_vec_ops_t kern_vec_ops_avx2;
extern const kern_vec_ops_t kern_vec_ops_generic;

#endif
