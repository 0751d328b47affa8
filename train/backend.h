/*
 * backend: one training device (CPU or CUDA) holding a model's parameters, gradients, AdamW
 * state and every activation buffer of a micro-batch.
 *
 * Exactly one implementation is linked, chosen at build time: backend_cpu.c (OpenBLAS + OpenMP)
 * or backend_cuda.cu. All buffers are allocated in backend_new(); no call after that allocates,
 * so a step's cost and memory are fixed. The caller owns the data order, the learning-rate
 * schedule and the gradient all-reduce; the backend owns the arithmetic. Parameters cross the
 * interface as host float arrays in model_layout() order (for checkpoints and tests).
 */
#ifndef REGMIX_TRAIN_BACKEND_H
#define REGMIX_TRAIN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct backend backend_t;

typedef struct backend_adamw {
    float lr, beta1, beta2, eps, weight_decay, clip;
} backend_adamw_t;

/* Name of the linked backend ("cpu" or "cuda"). */
const char *backend_name(void);

/* 0 when the backend can run here, else a negative errno and a reason in err (e.g. "no CUDA
 * device"). */
int backend_probe(char *err, size_t errlen);

/* Creates a backend for cfg with room for micro_batch sequences of cfg->context tokens;
 * threads > 0 sets the CPU thread count. Parameters start at model_init(seed).
 * Returns 0, -ENOMEM, or -EINVAL with a message in err. */
int backend_new(const model_config_t *cfg,
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

/* Clips the gradients to global norm hp->clip (when > 0), then one AdamW step (t = 1-based step
 * number for bias correction; decoupled weight decay on matrices only). Returns the norm before
 * clipping. */
double backend_adamw_step(backend_t *b, const backend_adamw_t *hp, int t);

#endif
