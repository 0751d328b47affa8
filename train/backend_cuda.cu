/*
 * backend_cuda.cu: the CUDA backend (see backend.h), built when meson finds CUDA.
 *
 * Master weights, gradients and AdamW moments are fp32 in device memory. Every matrix product
 * is a cuBLAS GEMM with compute type CUBLAS_COMPUTE_32F_FAST_16BF: operands are rounded to bf16
 * and multiplied on the tensor cores with fp32 accumulation, while storage stays fp32 (so no
 * separate bf16 weight copy has to be kept in sync). Our own kernels do the rest: embedding,
 * RMSNorm, RoPE, causal softmax, SwiGLU, the chunked LM-head cross-entropy, the gradient norm
 * and AdamW. Attention uses strided-batched GEMMs over heads and keeps the probabilities of
 * every layer (L, B, H, T, T) for backward: simple, and affordable at the proxy shapes on a
 * data-centre GPU. Unlike the CPU backend, results are not bit-reproducible (atomics in the
 * embedding and norm-weight gradients).
 *
 * Runtime errors (a failed launch, a lost device) are latched in the backend; the step then
 * reports NaN losses, which the trainer treats as a failed run.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "backend.h"
#include "gpu_comm.h"
#include "model.h"
}

typedef struct cuda_backend {
    model_config_t cfg;
    model_layout_t lay;
    int mb, chunk, failed;
    size_t np;
    cublasHandle_t blas;
    gpu_comm_t *comm;
    float *params, *grads, *m, *v;
    unsigned char *decay; /* (np) 1 where weight decay applies */
    float *res, *resmid, *ln1, *ln2, *rstd1, *rstd2, *qkv, *att, *probs, *h13, *hh, *lnf, *rstdf;
    float *dres, *dln, *dqkv, *datt, *dh13, *dh, *dprobs, *logits, *losses;
    float *rope_cos, *rope_sin;
    double *norm;
    int32_t *inputs, *targets;
    /* host staging */
    float *h_grads, *h_losses;
    int32_t *h_inputs, *h_targets;
} cuda_backend_t;

#define CU_OK(b, x)                                                                                \
    do {                                                                                           \
        cudaError_t cu__e = (x);                                                                   \
        if (cu__e != cudaSuccess && !(b)->failed) {                                                \
            fprintf(stderr, "regmix-train: CUDA error %s at %s:%d\n", cudaGetErrorString(cu__e),   \
                    __FILE__, __LINE__);                                                           \
            (b)->failed = 1;                                                                       \
        }                                                                                          \
    } while (0)

#define BLAS_OK(b, x)                                                                              \
    do {                                                                                           \
        cublasStatus_t bl__s = (x);                                                                \
        if (bl__s != CUBLAS_STATUS_SUCCESS && !(b)->failed) {                                      \
            fprintf(stderr, "regmix-train: cuBLAS status %d at %s:%d\n", (int)bl__s, __FILE__,     \
                    __LINE__);                                                                     \
            (b)->failed = 1;                                                                       \
        }                                                                                          \
    } while (0)

/* ---- GEMM: row-major C (M,N) = alpha op(A) op(B) + beta C, as cblas, on cuBLAS (column
 * major) by computing C^T = op(B)^T op(A)^T. ---- */
static void cu_gemm(cuda_backend_t *b,
                    int ta,
                    int tb,
                    int m,
                    int n,
                    int k,
                    float alpha,
                    const float *A,
                    int lda,
                    const float *B,
                    int ldb,
                    float beta,
                    float *C,
                    int ldc)
{
    BLAS_OK(b, cublasGemmEx(b->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                            n, m, k, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C,
                            CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT));
}

static void cu_gemm_batched(cuda_backend_t *b,
                            int ta,
                            int tb,
                            int m,
                            int n,
                            int k,
                            float alpha,
                            const float *A,
                            int lda,
                            long long sa,
                            const float *B,
                            int ldb,
                            long long sb,
                            float beta,
                            float *C,
                            int ldc,
                            long long sc,
                            int batch)
{
    BLAS_OK(b, cublasGemmStridedBatchedEx(b->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, B,
                                          CUDA_R_32F, ldb, sb, A, CUDA_R_32F, lda, sa, &beta, C,
                                          CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F_FAST_16BF,
                                          CUBLAS_GEMM_DEFAULT));
}

/* ---- kernels ---- */
static __device__ float block_sum(float x)
{
    __shared__ float sh[32];
    for (int o = 16; o > 0; o >>= 1)
        x += __shfl_down_sync(0xffffffffu, x, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0)
        sh[warp] = x;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    x = threadIdx.x < nw ? sh[threadIdx.x] : 0.0f;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1)
            x += __shfl_down_sync(0xffffffffu, x, o);
    if (threadIdx.x == 0)
        sh[0] = x;
    __syncthreads();
    return sh[0];
}

static __device__ float block_max(float x)
{
    __shared__ float sh[32];
    for (int o = 16; o > 0; o >>= 1)
        x = fmaxf(x, __shfl_down_sync(0xffffffffu, x, o));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0)
        sh[warp] = x;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    x = threadIdx.x < nw ? sh[threadIdx.x] : -INFINITY;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1)
            x = fmaxf(x, __shfl_down_sync(0xffffffffu, x, o));
    if (threadIdx.x == 0)
        sh[0] = x;
    __syncthreads();
    return sh[0];
}

__global__ void k_embed_fwd(float *out, const int32_t *tok, const float *wte, long n, int d)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i < n * d)
        out[i] = wte[(long)tok[i / d] * d + i % d];
}

__global__ void k_embed_bwd(float *dwte, const float *dout, const int32_t *tok, long n, int d)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i < n * d)
        atomicAdd(&dwte[(long)tok[i / d] * d + i % d], dout[i]);
}

/* One block per row. */
__global__ void k_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int d)
{
    const float *xi = x + (long)blockIdx.x * d;
    float *oi = out + (long)blockIdx.x * d;
    float ss = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x)
        ss += xi[j] * xi[j];
    ss = block_sum(ss);
    float r = rsqrtf(ss / d + 1e-5f);
    if (threadIdx.x == 0)
        rstd[blockIdx.x] = r;
    for (int j = threadIdx.x; j < d; j += blockDim.x)
        oi[j] = xi[j] * r * w[j];
}

/* dx += ..., dw += ... (atomics); one block per row. */
__global__ void k_rmsnorm_bwd(float *dx,
                              float *dw,
                              const float *g,
                              const float *x,
                              const float *w,
                              const float *rstd,
                              int d)
{
    long off = (long)blockIdx.x * d;
    float r = rstd[blockIdx.x], dot = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x)
        dot += g[off + j] * w[j] * x[off + j];
    dot = block_sum(dot);
    float c = dot * r * r * r / d;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        dx[off + j] += r * g[off + j] * w[j] - c * x[off + j];
        atomicAdd(&dw[j], g[off + j] * x[off + j] * r);
    }
}

/* qkv (B*T, 3D): rotates q and k of every head; sgn -1 applies the inverse rotation. */
__global__ void
k_rope(float *qkv, const float *cs, const float *sn, long rows, int t, int d, int heads, float sgn)
{
    int hd = d / heads, half = hd / 2;
    long total = rows * 2 * heads * half;
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= total)
        return;
    int j = (int)(i % half);
    long rest = i / half;
    int h = (int)(rest % heads);
    rest /= heads;
    int part = (int)(rest % 2);
    long row = rest / 2;
    int p = (int)(row % t);
    float *v = qkv + row * 3 * d + part * d + h * hd;
    float c = cs[p * half + j], s = sn[p * half + j];
    float a = v[j], bb = v[j + half];
    v[j] = a * c - sgn * bb * s;
    v[j + half] = bb * c + sgn * a * s;
}

/* Causal softmax of each row of scores (rows of length t, row index i = row % t), in place. */
__global__ void k_softmax_causal(float *s, int t)
{
    long row = blockIdx.x;
    int i = (int)(row % t);
    float *si = s + row * t;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j <= i; j += blockDim.x)
        mx = fmaxf(mx, si[j]);
    mx = block_max(mx);
    float sum = 0.0f;
    for (int j = threadIdx.x; j <= i; j += blockDim.x)
        sum += __expf(si[j] - mx);
    sum = block_sum(sum);
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < t; j += blockDim.x)
        si[j] = j <= i ? __expf(si[j] - mx) * inv : 0.0f;
}

/* dS = P * (dP - sum_j P dP), in place in dp. */
__global__ void k_softmax_bwd(float *dp, const float *p, int t)
{
    long off = (long)blockIdx.x * t;
    float s = 0.0f;
    for (int j = threadIdx.x; j < t; j += blockDim.x)
        s += p[off + j] * dp[off + j];
    s = block_sum(s);
    for (int j = threadIdx.x; j < t; j += blockDim.x)
        dp[off + j] = p[off + j] * (dp[off + j] - s);
}

__global__ void k_swiglu_fwd(float *h, const float *h13, long n, int f)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= n * f)
        return;
    long r = i / f;
    int j = (int)(i % f);
    float a = h13[r * 2 * f + j], u = h13[r * 2 * f + f + j];
    h[i] = a / (1.0f + __expf(-a)) * u;
}

__global__ void k_swiglu_bwd(float *dh13, const float *dh, const float *h13, long n, int f)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= n * f)
        return;
    long r = i / f;
    int j = (int)(i % f);
    float a = h13[r * 2 * f + j], u = h13[r * 2 * f + f + j], g = dh[i];
    float sg = 1.0f / (1.0f + __expf(-a));
    dh13[r * 2 * f + f + j] = g * a * sg;
    dh13[r * 2 * f + j] = g * u * sg * (1.0f + a * (1.0f - sg));
}

/* One block per row of logits (v): loss = lse - logit[target]; with grad, the row becomes
 * (softmax - onehot) * scale. */
__global__ void k_ce(float *logits, float *losses, const int32_t *tg, int v, float scale, int grad)
{
    float *li = logits + (long)blockIdx.x * v;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < v; j += blockDim.x)
        mx = fmaxf(mx, li[j]);
    mx = block_max(mx);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < v; j += blockDim.x)
        sum += __expf(li[j] - mx);
    sum = block_sum(sum);
    float lse = mx + logf(sum);
    int t = tg[blockIdx.x];
    if (threadIdx.x == 0)
        losses[blockIdx.x] = lse - li[t];
    __syncthreads();
    if (grad)
        for (int j = threadIdx.x; j < v; j += blockDim.x)
            li[j] = (__expf(li[j] - lse) - (j == t ? 1.0f : 0.0f)) * scale;
}

__global__ void k_sumsq(const float *x, long n, double *out)
{
    float s = 0.0f;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n;
         i += (long)gridDim.x * blockDim.x)
        s += x[i] * x[i];
    s = block_sum(s);
    if (threadIdx.x == 0)
        atomicAdd(out, (double)s);
}

__global__ void k_adamw(float *p,
                        const float *g,
                        float *m,
                        float *v,
                        const unsigned char *decay,
                        long n,
                        float gs,
                        float lr,
                        float b1,
                        float b2,
                        float eps,
                        float wd,
                        float bc1,
                        float bc2)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float gi = g[i] * gs;
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    float mh = m[i] / bc1, vh = v[i] / bc2;
    p[i] -= lr * (mh / (sqrtf(vh) + eps) + (decay[i] ? wd : 0.0f) * p[i]);
}

static unsigned cu_blocks(long n, int threads)
{
    return (unsigned)((n + threads - 1) / threads);
}

/* ---- ops ---- */
static int cuda_probe(char *err, size_t errlen)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        snprintf(err, errlen, "no CUDA device (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return -ENODEV;
    }
    return 0;
}

static void cuda_destroy(void *impl);

static int cuda_create(const model_config_t *cfg,
                       int micro_batch,
                       int threads,
                       uint64_t seed,
                       void **ret,
                       char *err,
                       size_t errlen)
{
    (void)threads;
    int rc = model_config_check(cfg, err, errlen);
    if (rc < 0)
        return rc;
    if ((rc = cuda_probe(err, errlen)) < 0)
        return rc;
    /* Under mpirun, rank i of a host takes GPU i (modulo the GPUs it sees). */
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    lr = lr ? lr : getenv("MPI_LOCALRANKID");
    lr = lr ? lr : getenv("SLURM_LOCALID");
    int ndev = 1;
    cudaGetDeviceCount(&ndev);
    if (lr && cudaSetDevice(atoi(lr) % ndev) != cudaSuccess) {
        snprintf(err, errlen, "cannot select CUDA device %d", atoi(lr) % ndev);
        return -ENODEV;
    }
    cuda_backend_t *b = (cuda_backend_t *)calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->cfg = *cfg;
    b->mb = micro_batch;
    model_layout(cfg, &b->lay);
    b->np = b->lay.total;
    size_t L = cfg->layers, T = cfg->context, D = cfg->dim, F = cfg->ffn, V = cfg->vocab;
    size_t H = cfg->heads, N = (size_t)micro_batch * T;
    size_t chunk = ((size_t)1 << 26) / V; /* 256 MB of logits at most */
    chunk = chunk < 16 ? 16 : chunk;
    chunk = chunk > N ? N : chunk;
    b->chunk = (int)chunk;
    struct {
        void **p;
        size_t bytes;
    } bufs[] = {
            {(void **)&b->params, b->np * 4},
            {(void **)&b->grads, b->np * 4},
            {(void **)&b->m, b->np * 4},
            {(void **)&b->v, b->np * 4},
            {(void **)&b->decay, b->np},
            {(void **)&b->res, (L + 1) * N * D * 4},
            {(void **)&b->resmid, L * N * D * 4},
            {(void **)&b->ln1, L * N * D * 4},
            {(void **)&b->ln2, L * N * D * 4},
            {(void **)&b->rstd1, L * N * 4},
            {(void **)&b->rstd2, L * N * 4},
            {(void **)&b->qkv, L * N * 3 * D * 4},
            {(void **)&b->att, L * N * D * 4},
            {(void **)&b->probs, L * (size_t)micro_batch * H * T * T * 4},
            {(void **)&b->h13, L * N * 2 * F * 4},
            {(void **)&b->hh, L * N * F * 4},
            {(void **)&b->lnf, N * D * 4},
            {(void **)&b->rstdf, N * 4},
            {(void **)&b->dres, N * D * 4},
            {(void **)&b->dln, N * D * 4},
            {(void **)&b->dqkv, N * 3 * D * 4},
            {(void **)&b->datt, N * D * 4},
            {(void **)&b->dh13, N * 2 * F * 4},
            {(void **)&b->dh, N * F * 4},
            {(void **)&b->dprobs, H * T * T * 4},
            {(void **)&b->logits, chunk * V * 4},
            {(void **)&b->losses, N * 4},
            {(void **)&b->rope_cos, T * (D / H / 2) * 4},
            {(void **)&b->rope_sin, T * (D / H / 2) * 4},
            {(void **)&b->norm, sizeof(double)},
            {(void **)&b->inputs, N * 4},
            {(void **)&b->targets, N * 4},
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (cudaMalloc(bufs[i].p, bufs[i].bytes) != cudaSuccess) {
            snprintf(err, errlen, "out of GPU memory (%zu bytes for buffer %zu)", bufs[i].bytes, i);
            cuda_destroy(b);
            return -ENOMEM;
        }
    b->h_grads = (float *)malloc(b->np * 4);
    b->h_losses = (float *)malloc(N * 4);
    b->h_inputs = (int32_t *)malloc(N * 4);
    b->h_targets = (int32_t *)malloc(N * 4);
    float *host = (float *)malloc(b->np * 4);
    unsigned char *mask = (unsigned char *)calloc(b->np, 1);
    float *cs = (float *)malloc(T * (D / H / 2) * 4), *sn = (float *)malloc(T * (D / H / 2) * 4);
    if (!b->h_grads || !b->h_losses || !b->h_inputs || !b->h_targets || !host || !mask || !cs ||
        !sn || cublasCreate(&b->blas) != CUBLAS_STATUS_SUCCESS) {
        free(host);
        free(mask);
        free(cs);
        free(sn);
        snprintf(err, errlen, "out of memory or cuBLAS initialisation failed");
        cuda_destroy(b);
        return -ENOMEM;
    }
    model_init(cfg, host, seed);
    model_decay_range_t ranges[2 * MODEL_MAX_LAYERS + 2];
    int nr = model_decay_ranges(cfg, ranges, 2 * MODEL_MAX_LAYERS + 2);
    for (int r = 0; r < nr; r++)
        memset(mask + ranges[r].begin, 1, ranges[r].end - ranges[r].begin);
    int half = (int)(D / H / 2);
    for (size_t p = 0; p < T; p++)
        for (int i = 0; i < half; i++) {
            double fr = pow(10000.0, -2.0 * i / (double)(D / H));
            cs[p * half + i] = (float)cos(p * fr);
            sn[p * half + i] = (float)sin(p * fr);
        }
    CU_OK(b, cudaMemcpy(b->params, host, b->np * 4, cudaMemcpyHostToDevice));
    CU_OK(b, cudaMemcpy(b->decay, mask, b->np, cudaMemcpyHostToDevice));
    CU_OK(b, cudaMemcpy(b->rope_cos, cs, T * half * 4, cudaMemcpyHostToDevice));
    CU_OK(b, cudaMemcpy(b->rope_sin, sn, T * half * 4, cudaMemcpyHostToDevice));
    CU_OK(b, cudaMemset(b->m, 0, b->np * 4));
    CU_OK(b, cudaMemset(b->v, 0, b->np * 4));
    CU_OK(b, cudaMemset(b->grads, 0, b->np * 4));
    free(host);
    free(mask);
    free(cs);
    free(sn);
    if (b->failed) {
        snprintf(err, errlen, "CUDA initialisation failed");
        cuda_destroy(b);
        return -EIO;
    }
    *ret = b;
    return 0;
}

static void cuda_destroy(void *impl)
{
    cuda_backend_t *b = (cuda_backend_t *)impl;
    if (!b)
        return;
    void *dev[] = {b->params,   b->grads, b->m,      b->v,      b->decay,  b->res,    b->resmid,
                   b->ln1,      b->ln2,   b->rstd1,  b->rstd2,  b->qkv,    b->att,    b->probs,
                   b->h13,      b->hh,    b->lnf,    b->rstdf,  b->dres,   b->dln,    b->dqkv,
                   b->datt,     b->dh13,  b->dh,     b->dprobs, b->logits, b->losses, b->rope_cos,
                   b->rope_sin, b->norm,  b->inputs, b->targets};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i])
            cudaFree(dev[i]);
    if (b->blas)
        cublasDestroy(b->blas);
    gpu_comm_destroy(&b->comm);
    free(b->h_grads);
    free(b->h_losses);
    free(b->h_inputs);
    free(b->h_targets);
    free(b);
}

static size_t cuda_param_count(const void *impl)
{
    return ((const cuda_backend_t *)impl)->np;
}

static void cuda_set_state(void *impl, const float *params, const float *m, const float *v)
{
    cuda_backend_t *b = (cuda_backend_t *)impl;
    if (params)
        CU_OK(b, cudaMemcpy(b->params, params, b->np * 4, cudaMemcpyHostToDevice));
    if (m)
        CU_OK(b, cudaMemcpy(b->m, m, b->np * 4, cudaMemcpyHostToDevice));
    if (v)
        CU_OK(b, cudaMemcpy(b->v, v, b->np * 4, cudaMemcpyHostToDevice));
}

static void cuda_get_state(const void *impl, float *params, float *m, float *v)
{
    cuda_backend_t *b = (cuda_backend_t *)impl;
    if (params)
        CU_OK(b, cudaMemcpy(params, b->params, b->np * 4, cudaMemcpyDeviceToHost));
    if (m)
        CU_OK(b, cudaMemcpy(m, b->m, b->np * 4, cudaMemcpyDeviceToHost));
    if (v)
        CU_OK(b, cudaMemcpy(v, b->v, b->np * 4, cudaMemcpyDeviceToHost));
}

static void cuda_zero_grad(void *impl)
{
    cuda_backend_t *b = (cuda_backend_t *)impl;
    CU_OK(b, cudaMemset(b->grads, 0, b->np * 4));
}

static float *cuda_grads_get(void *impl)
{
    cuda_backend_t *b = (cuda_backend_t *)impl;
    CU_OK(b, cudaMemcpy(b->h_grads, b->grads, b->np * 4, cudaMemcpyDeviceToHost));
    return b->h_grads;
}

static void cuda_grads_put(void *impl)
{
    cuda_backend_t *b = (cuda_backend_t *)impl;
    CU_OK(b, cudaMemcpy(b->grads, b->h_grads, b->np * 4, cudaMemcpyHostToDevice));
}

/* Attention of layer l for m sequences: forward (probs saved) or backward (dqkv from datt). */
static void cuda_attention(cuda_backend_t *b, int l, int m, int backward)
{
    int T = b->cfg.context, D = b->cfg.dim, H = b->cfg.heads, hd = D / H;
    float scale = 1.0f / sqrtf((float)hd);
    long NT = (long)b->mb * T, tt = (long)T * T;
    float *qkv = b->qkv + (long)l * NT * 3 * D, *att = b->att + (long)l * NT * D;
    for (int s = 0; s < m; s++) {
        float *q = qkv + (long)s * T * 3 * D, *k = q + D, *v = q + 2 * D;
        float *p = b->probs + ((long)l * b->mb + s) * H * tt;
        if (!backward) {
            cu_gemm_batched(b, 0, 1, T, T, hd, scale, q, 3 * D, hd, k, 3 * D, hd, 0.0f, p, T, tt,
                            H);
            k_softmax_causal<<<(unsigned)(H * T), 256>>>(p, T);
            cu_gemm_batched(b, 0, 0, T, hd, T, 1.0f, p, T, tt, v, 3 * D, hd, 0.0f,
                            att + (long)s * T * D, D, hd, H);
        } else {
            const float *go = b->datt + (long)s * T * D;
            float *dq = b->dqkv + (long)s * T * 3 * D, *dk = dq + D, *dv = dq + 2 * D;
            cu_gemm_batched(b, 0, 1, T, T, hd, 1.0f, go, D, hd, v, 3 * D, hd, 0.0f, b->dprobs, T,
                            tt, H);
            cu_gemm_batched(b, 1, 0, T, hd, T, 1.0f, p, T, tt, go, D, hd, 0.0f, dv, 3 * D, hd, H);
            k_softmax_bwd<<<(unsigned)(H * T), 256>>>(b->dprobs, p, T);
            cu_gemm_batched(b, 0, 0, T, hd, T, scale, b->dprobs, T, tt, k, 3 * D, hd, 0.0f, dq,
                            3 * D, hd, H);
            cu_gemm_batched(b, 1, 0, T, hd, T, scale, b->dprobs, T, tt, q, 3 * D, hd, 0.0f, dk,
                            3 * D, hd, H);
        }
    }
}

static void cuda_forward_backward(void *impl,
                                  const int32_t *tokens,
                                  int m,
                                  int backward,
                                  float grad_scale,
                                  double *ret_losses)
{
    cuda_backend_t *b = (cuda_backend_t *)impl;
    const model_config_t *c = &b->cfg;
    const model_layout_t *lay = &b->lay;
    int T = c->context, D = c->dim, F = c->ffn, V = c->vocab, H = c->heads, L = c->layers;
    long n = (long)m * T, NDl = (long)b->mb * T * D, NT = (long)b->mb * T;
    float *p = b->params, *g = b->grads;
    const int TB = 256;

    for (int s = 0; s < m; s++)
        for (int i = 0; i < T; i++) {
            b->h_inputs[s * T + i] = tokens[(long)s * (T + 1) + i];
            b->h_targets[s * T + i] = tokens[(long)s * (T + 1) + i + 1];
        }
    CU_OK(b, cudaMemcpy(b->inputs, b->h_inputs, n * 4, cudaMemcpyHostToDevice));
    CU_OK(b, cudaMemcpy(b->targets, b->h_targets, n * 4, cudaMemcpyHostToDevice));

    k_embed_fwd<<<cu_blocks(n * D, TB), TB>>>(b->res, b->inputs, p + lay->wte, n, D);
    for (int l = 0; l < L; l++) {
        const size_t *o = lay->layer[l];
        float *x = b->res + l * NDl, *mid = b->resmid + l * NDl, *y = b->res + (l + 1) * NDl;
        float *ln1 = b->ln1 + l * NDl, *ln2 = b->ln2 + l * NDl, *att = b->att + l * NDl;
        float *qkv = b->qkv + l * 3 * NDl, *h13 = b->h13 + l * 2 * NT * F;
        float *hh = b->hh + l * NT * F;
        k_rmsnorm_fwd<<<(unsigned)n, TB>>>(ln1, b->rstd1 + l * NT, x, p + o[MODEL_T_ATTN_NORM], D);
        cu_gemm(b, 0, 1, (int)n, 3 * D, D, 1.0f, ln1, D, p + o[MODEL_T_WQKV], D, 0.0f, qkv, 3 * D);
        k_rope<<<cu_blocks(n * D, TB), TB>>>(qkv, b->rope_cos, b->rope_sin, n, T, D, H, 1.0f);
        cuda_attention(b, l, m, 0);
        CU_OK(b, cudaMemcpy(mid, x, n * D * 4, cudaMemcpyDeviceToDevice));
        cu_gemm(b, 0, 1, (int)n, D, D, 1.0f, att, D, p + o[MODEL_T_WO], D, 1.0f, mid, D);
        k_rmsnorm_fwd<<<(unsigned)n, TB>>>(ln2, b->rstd2 + l * NT, mid, p + o[MODEL_T_MLP_NORM], D);
        cu_gemm(b, 0, 1, (int)n, 2 * F, D, 1.0f, ln2, D, p + o[MODEL_T_W13], D, 0.0f, h13, 2 * F);
        k_swiglu_fwd<<<cu_blocks(n * F, TB), TB>>>(hh, h13, n, F);
        CU_OK(b, cudaMemcpy(y, mid, n * D * 4, cudaMemcpyDeviceToDevice));
        cu_gemm(b, 0, 1, (int)n, D, F, 1.0f, hh, F, p + o[MODEL_T_W2], F, 1.0f, y, D);
    }
    float *xl = b->res + L * NDl;
    k_rmsnorm_fwd<<<(unsigned)n, TB>>>(b->lnf, b->rstdf, xl, p + lay->final_norm, D);
    for (long c0 = 0; c0 < n; c0 += b->chunk) {
        int cn = (int)(c0 + b->chunk <= n ? b->chunk : n - c0);
        cu_gemm(b, 0, 1, cn, V, D, 1.0f, b->lnf + c0 * D, D, p + lay->lm_head, D, 0.0f, b->logits,
                V);
        k_ce<<<(unsigned)cn, TB>>>(b->logits, b->losses + c0, b->targets + c0, V, grad_scale,
                                   backward);
        if (backward) {
            cu_gemm(b, 0, 0, cn, D, V, 1.0f, b->logits, V, p + lay->lm_head, D, 0.0f,
                    b->dln + c0 * D, D);
            cu_gemm(b, 1, 0, V, D, cn, 1.0f, b->logits, V, b->lnf + c0 * D, D, 1.0f,
                    g + lay->lm_head, D);
        }
    }
    CU_OK(b, cudaGetLastError());
    CU_OK(b, cudaMemcpy(b->h_losses, b->losses, n * 4, cudaMemcpyDeviceToHost));
    for (int s = 0; s < m; s++) {
        double sum = 0.0;
        for (int i = 0; i < T; i++)
            sum += b->h_losses[s * T + i];
        ret_losses[s] = b->failed ? NAN : sum / T;
    }
    if (!backward)
        return;

    CU_OK(b, cudaMemset(b->dres, 0, n * D * 4));
    k_rmsnorm_bwd<<<(unsigned)n, TB>>>(b->dres, g + lay->final_norm, b->dln, xl,
                                       p + lay->final_norm, b->rstdf, D);
    for (int l = L - 1; l >= 0; l--) {
        const size_t *o = lay->layer[l];
        float *x = b->res + l * NDl, *mid = b->resmid + l * NDl;
        float *ln1 = b->ln1 + l * NDl, *ln2 = b->ln2 + l * NDl, *att = b->att + l * NDl;
        float *h13 = b->h13 + l * 2 * NT * F, *hh = b->hh + l * NT * F;
        cu_gemm(b, 0, 0, (int)n, F, D, 1.0f, b->dres, D, p + o[MODEL_T_W2], F, 0.0f, b->dh, F);
        cu_gemm(b, 1, 0, D, F, (int)n, 1.0f, b->dres, D, hh, F, 1.0f, g + o[MODEL_T_W2], F);
        k_swiglu_bwd<<<cu_blocks(n * F, TB), TB>>>(b->dh13, b->dh, h13, n, F);
        cu_gemm(b, 0, 0, (int)n, D, 2 * F, 1.0f, b->dh13, 2 * F, p + o[MODEL_T_W13], D, 0.0f,
                b->dln, D);
        cu_gemm(b, 1, 0, 2 * F, D, (int)n, 1.0f, b->dh13, 2 * F, ln2, D, 1.0f, g + o[MODEL_T_W13],
                D);
        k_rmsnorm_bwd<<<(unsigned)n, TB>>>(b->dres, g + o[MODEL_T_MLP_NORM], b->dln, mid,
                                           p + o[MODEL_T_MLP_NORM], b->rstd2 + l * NT, D);
        cu_gemm(b, 0, 0, (int)n, D, D, 1.0f, b->dres, D, p + o[MODEL_T_WO], D, 0.0f, b->datt, D);
        cu_gemm(b, 1, 0, D, D, (int)n, 1.0f, b->dres, D, att, D, 1.0f, g + o[MODEL_T_WO], D);
        cuda_attention(b, l, m, 1);
        k_rope<<<cu_blocks(n * D, TB), TB>>>(b->dqkv, b->rope_cos, b->rope_sin, n, T, D, H, -1.0f);
        cu_gemm(b, 0, 0, (int)n, D, 3 * D, 1.0f, b->dqkv, 3 * D, p + o[MODEL_T_WQKV], D, 0.0f,
                b->dln, D);
        cu_gemm(b, 1, 0, 3 * D, D, (int)n, 1.0f, b->dqkv, 3 * D, ln1, D, 1.0f, g + o[MODEL_T_WQKV],
                D);
        k_rmsnorm_bwd<<<(unsigned)n, TB>>>(b->dres, g + o[MODEL_T_ATTN_NORM], b->dln, x,
                                           p + o[MODEL_T_ATTN_NORM], b->rstd1 + l * NT, D);
    }
    k_embed_bwd<<<cu_blocks(n * D, TB), TB>>>(g + lay->wte, b->dres, b->inputs, n, D);
    CU_OK(b, cudaGetLastError());
}

static double cuda_adamw_step(void *impl, const backend_adamw_t *hp, int t)
{
    cuda_backend_t *b = (cuda_backend_t *)impl;
    double norm2 = 0.0;
    CU_OK(b, cudaMemset(b->norm, 0, sizeof(double)));
    k_sumsq<<<1024, 256>>>(b->grads, (long)b->np, b->norm);
    CU_OK(b, cudaMemcpy(&norm2, b->norm, sizeof(double), cudaMemcpyDeviceToHost));
    double norm = sqrt(norm2);
    float gs = 1.0f;
    if (hp->clip > 0.0f && norm > hp->clip)
        gs = (float)(hp->clip / (norm + 1e-6));
    float bc1 = 1.0f - powf(hp->beta1, (float)t), bc2 = 1.0f - powf(hp->beta2, (float)t);
    k_adamw<<<cu_blocks((long)b->np, 256), 256>>>(b->params, b->grads, b->m, b->v, b->decay,
                                                  (long)b->np, gs, hp->lr, hp->beta1, hp->beta2,
                                                  hp->eps, hp->weight_decay, bc1, bc2);
    CU_OK(b, cudaGetLastError());
    return b->failed ? NAN : norm;
}

static int cuda_allreduce(void *impl, const dist_t *d)
{
    cuda_backend_t *b = (cuda_backend_t *)impl;
    return gpu_comm_allreduce(&b->comm, b->grads, b->np, d);
}

extern "C" const backend_ops_t backend_cuda_ops = {
        "cuda",         cuda_probe,      cuda_create,    cuda_destroy,          cuda_param_count,
        cuda_set_state, cuda_get_state,  cuda_zero_grad, cuda_forward_backward, cuda_grads_get,
        cuda_grads_put, cuda_adamw_step, cuda_allreduce,
};
