/*
 * kernels: the CPU layer kernels of the trainer's Llama-style decoder, forward and backward.
 *
 * Each kernel is a plain function over caller-owned float buffers (shapes in the comments, row
 * major, N = micro-batch * context rows); nothing here allocates, logs or keeps state, except
 * scratch the caller passes in. Matrix products go through kern_gemm(), which splits the output
 * among OpenMP threads and calls a single-threaded sgemm on each block (oneDNN's when the build
 * has it, else OpenBLAS's), so the result for a given thread count is deterministic. The other
 * kernels run the instruction-set path kern_init() picked from cpuid (AVX-512, AVX2 or the
 * generic build; kernels_vec.h). Backward kernels *accumulate* into parameter gradients
 * (dweight +=) and *overwrite* activation gradients unless the comment says otherwise, so gradient
 * accumulation over micro-batches needs no copies. Reductions over rows are done per thread and
 * summed in thread order, never with atomics.
 *
 * Conventions shared with tests/train/make_reference.py: RMSNorm eps 1e-5, RoPE base 10000 with
 * the "rotate half" pairing (i, i + hd/2), SwiGLU h = silu(x W1^T) * (x W3^T) with W1 and W3
 * stacked as one (2F, D) matrix (W1 first), attention scale 1/sqrt(hd).
 */
#ifndef REGMIX_TRAIN_KERNELS_H
#define REGMIX_TRAIN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define KERN_RMS_EPS   1e-5f
#define KERN_ROPE_BASE 10000.0

/* Picks the instruction-set path: isa "avx512", "avx2", "generic" ("scalar" is the same) or
 * "auto"/NULL/"" for the widest this CPU runs; NULL reads REGMIX_TRAIN_ISA. The matrix-product
 * library is oneDNN (capped at the same instruction set) unless REGMIX_TRAIN_GEMM=openblas.
 * Call before any kernel (the first kernel call does it when nobody did). Returns 0, -EINVAL
 * for an unknown name or -ENOTSUP for a path this CPU (or build) lacks, with a message in err. */
int kern_init(const char *isa, char *err, size_t errlen);

/* The path in use ("avx512", "avx2", "generic") and the matrix-product library ("onednn",
 * "openblas"). */
const char *kern_isa_name(void);
const char *kern_gemm_name(void);

/* Selects how kern_gemm uses threads: 0 = split among OpenMP threads, each calling sgemm with
 * one OpenBLAS thread (default); 1 = one call, OpenBLAS threads. Set once at start-up. */
void kern_set_gemm_mode(int mode, int threads);

/* C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C, row major, as cblas_sgemm. */
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
               int ldc);

/* y (N,D) = x + act (N,K) W^T with W (D,K): the residual add and the product in one parallel
 * region (each thread copies its rows of x, then accumulates its block onto them). */
void kern_linear_residual(
        float *y, const float *x, const float *act, const float *w, int n, int d, int k);

/* The SwiGLU MLP forward in row tiles that fit L2, one parallel region: h13 (N,2F) = ln (N,D)
 * W13^T, hh (N,F) = swiglu(h13), y (N,D) = res + hh W2^T (W13 (2F,D), W2 (D,F)). */
void kern_mlp_forward(float *y,
                      float *h13,
                      float *hh,
                      const float *res,
                      const float *ln,
                      const float *w13,
                      const float *w2,
                      int n,
                      int d,
                      int f);

/* The row-local part of the MLP backward in the same tiles: dh (N,F) = dy W2, dh13 (N,2F) from
 * SwiGLU's backward, dln (N,D) = dh13 W13, all overwritten. The weight gradients (sums over
 * rows) are separate products. */
void kern_mlp_backward_rows(float *dln,
                            float *dh13,
                            float *dh,
                            const float *dy,
                            const float *h13,
                            const float *w13,
                            const float *w2,
                            int n,
                            int d,
                            int f);

/* out (N,D) = wte[tokens[n]] */
void kern_embed_forward(float *out, const int32_t *tokens, const float *wte, int n, int d);
/* dwte (V,D) += scatter of dout (N,D) by tokens; deterministic (threads own columns). */
void kern_embed_backward(float *dwte, const float *dout, const int32_t *tokens, int n, int d);

/* out (N,D) = x * rstd * w; rstd (N) saved for backward. out may not alias x. */
void kern_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int n, int d);
/* dx (N,D) += ...; dw (D) += ... ; scratch: threads * d floats. */
void kern_rmsnorm_backward(float *dx,
                           float *dw,
                           const float *dout,
                           const float *x,
                           const float *w,
                           const float *rstd,
                           int n,
                           int d,
                           float *scratch);

/* Fills cos/sin tables (T, hd/2). */
void kern_rope_table(float *cos_t, float *sin_t, int t, int hd);
/* Rotates the q and k parts of qkv (B,T,3D) in place; inverse = 1 rotates back (the backward of
 * a rotation is its inverse applied to the gradient). */
void kern_rope_apply(float *qkv,
                     const float *cos_t,
                     const float *sin_t,
                     int b,
                     int t,
                     int d,
                     int heads,
                     int inverse);

/* Floats of attention scratch per thread for context t and head size hd (any path). */
size_t kern_attention_scratch(int t, int hd);

/* Causal attention, flash-style: only the output and each row's log-sum-exp are kept; tiles of
 * a few query rows never compute a key block past their last row. qkv (B,T,3D) after RoPE;
 * out (B,T,D); lse (B,H,T) saved for backward; scratch: threads * kern_attention_scratch(). */
void kern_attention_forward(
        float *out, float *lse, const float *qkv, int b, int t, int d, int heads, float *scratch);
/* dqkv (B,T,3D) overwritten from dout (B,T,D), recomputing the probabilities from lse;
 * scratch as the forward. */
void kern_attention_backward(float *dqkv,
                             const float *dout,
                             const float *qkv,
                             const float *out,
                             const float *lse,
                             int b,
                             int t,
                             int d,
                             int heads,
                             float *scratch);

/* h (N,F) = silu(h13[:, :F]) * h13[:, F:], h13 (N,2F). */
void kern_swiglu_forward(float *h, const float *h13, int n, int f);
/* dh13 (N,2F) overwritten. */
void kern_swiglu_backward(float *dh13, const float *dh, const float *h13, int n, int f);

/* Fused LM head and cross-entropy over rows in chunks of `chunk` rows, never holding more than
 * chunk * V logits (scratch: chunk * V floats). x (N,D), w (V,D), targets (N).
 * Writes per-row losses (N). With dx != NULL also overwrites dx (N,D) and accumulates dw (V,D)
 * for the loss  grad_scale * sum(row losses). */
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
                    float *scratch);

/* Sum of squares of x (n), deterministic for a thread count. */
double kern_sumsq(const float *x, long n);

typedef struct kern_adamw {
    float lr, beta1, beta2, eps, weight_decay, clip;
} kern_adamw_t;

/* One AdamW step over p, g, m, v (n) in one parallel region: the global norm of g, clipping to
 * hp->clip (when > 0), the update with bias correction for step t (1-based), decoupled weight
 * decay on the ranges [decay_ranges[2k], decay_ranges[2k+1]) (k < ndecay, sorted) only, and g
 * set to zero. Returns the norm before clipping. */
double kern_adamw(float *p,
                  float *g,
                  float *m,
                  float *v,
                  long n,
                  const size_t *decay_ranges,
                  int ndecay,
                  const kern_adamw_t *hp,
                  int t);

/* sgemm GFLOP/s of kern_gemm on an n x n x n product with the current threads (best of 16, after
 * a warm-up); allocates and frees 3 n^2 floats. 0 when the memory is not there. */
double kern_gemm_peak_gflops(int n);

/* y (n) = exp(x) by the vector polynomial the kernels use (for its error test). */
void kern_exp_array(float *y, const float *x, long n);

#endif
