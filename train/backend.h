/*
 * backend: one training device (CPU or CUDA) holding a model's parameters, gradients, AdamW
 * state and every activation buffer of a micro-batch.
 *
 * Implementations are separate files behind backend_ops_t: backend_cpu.c (OpenBLAS + OpenMP),
 * always built, and backend_cuda.cu, built when meson finds CUDA; the list of those linked is
 * chosen at build time (backend_list_cpu.c or backend_list_cuda.c), and backend_new() picks one
 * by name. All buffers are allocated in backend_new(); no call after that allocates,
 * so a step's cost and memory are fixed. The caller owns the data order, the learning-rate
 * schedule and the gradient all-reduce; the backend owns the arithmetic. Parameters cross the
 * interface as host float arrays in model_layout() order (for checkpoints and tests).
 */
#ifndef REGMIX_TRAIN_BACKEND_H
#define REGMIX_TRAIN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "model.h"

typedef struct backend backend_t;

typedef struct backend_adamw {
    float lr, beta1, beta2, eps, weight_decay, clip;
} backend_adamw_t;

/* The operations one implementation provides (impl is its private state). */
typedef struct backend_ops {
    const char *name;
    int (*probe)(char *err, size_t errlen);
    int (*create)(const model_config_t *cfg,
                  int micro_batch,
                  int threads,
                  uint64_t seed,
                  void **ret_impl,
                  char *err,
                  size_t errlen);
    void (*destroy)(void *impl);
    size_t (*param_count)(const void *impl);
    void (*set_state)(void *impl, const float *params, const float *m, const float *v);
    void (*get_state)(const void *impl, float *params, float *m, float *v);
    void (*zero_grad)(void *impl);
    void (*forward_backward)(void *impl,
                             const int32_t *tokens,
                             int m,
                             int backward,
                             float grad_scale,
                             double *ret_losses);
    float *(*grads_get)(void *impl);
    void (*grads_put)(void *impl);
    double (*adamw_step)(void *impl, const backend_adamw_t *hp, int t);
    /* Optional: sums the gradients over the group on the device (NULL: not supported). */
    int (*allreduce)(void *impl, const dist_t *d);
} backend_ops_t;

/* The backends built in, NULL-terminated (backend_list_*.c). */
extern const backend_ops_t *const backend_list[];

/* Names of the built-in backends, e.g. "cpu" or "cpu, cuda". */
const char *backend_names(void);

/* 0 when backend `device` is built in and can run here; else -ENOENT (not built in) or another
 * negative errno, with a reason in err (e.g. "no CUDA device"). */
int backend_probe(const char *device, char *err, size_t errlen);

/* Creates backend `device` ("cpu", "cuda") for cfg with room for micro_batch sequences of
 * cfg->context tokens; threads > 0 sets the CPU thread count. Parameters start at
 * model_init(seed). Returns 0, -ENOENT (no such backend here), -ENOMEM, or -EINVAL with a
 * message in err. */
int backend_new(const char *device,
                const model_config_t *cfg,
                int micro_batch,
                int threads,
                uint64_t seed,
                backend_t **ret,
                char *err,
                size_t errlen);

/* Frees everything; accepts NULL and nulls the caller's pointer. */
void backend_destroy(backend_t **self_p);

/* Number of parameters (floats). */
size_t backend_param_count(const backend_t *b);

/* Copies parameters / AdamW moments in or out (host arrays of backend_param_count() floats;
 * m and v may be NULL to skip them). */
void backend_set_state(backend_t *b, const float *params, const float *m, const float *v);
void backend_get_state(const backend_t *b, float *params, float *m, float *v);

/* Zeroes the gradient accumulators. */
void backend_zero_grad(backend_t *b);

/* Runs m <= micro_batch sequences, tokens (m, context+1): inputs are the first context tokens,
 * targets the last. Writes each sequence's mean cross-entropy to ret_losses (m). With backward,
 * also accumulates into the gradients d(grad_scale * sum of all token losses)/d(params). */
void backend_forward_backward(backend_t *b,
                              const int32_t *tokens,
                              int m,
                              int backward,
                              float grad_scale,
                              double *ret_losses);

/* Host view of the gradient accumulators (for the all-reduce between ranks); after changing it
 * call backend_grads_put(). */
float *backend_grads_get(backend_t *b);
void backend_grads_put(backend_t *b);

/* Sums the gradients over the ranks of d on the device (NCCL). Returns 0, or -ENOTSUP when the
 * backend has no device all-reduce: the caller then all-reduces backend_grads_get()'s host view
 * and calls backend_grads_put(). */
int backend_allreduce(backend_t *b, const dist_t *d);

/* Clips the gradients to global norm hp->clip (when > 0), then one AdamW step (t = 1-based step
 * number for bias correction; decoupled weight decay on matrices only). Returns the norm before
 * clipping. */
double backend_adamw_step(backend_t *b, const backend_adamw_t *hp, int t);

#endif
