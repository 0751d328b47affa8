/*
 * model: shape, parameter layout and initialisation of the trainer's Llama-style decoder.
 *
 * The model is token embedding; L blocks of (RMSNorm -> causal multi-head attention with RoPE ->
 * residual; RMSNorm -> SwiGLU MLP -> residual); final RMSNorm; untied LM head; no biases
 * (docs/method.md). All parameters live in one float array; model_layout() gives each tensor's
 * offset so backends, checkpoints and the PyTorch reference agree on one order:
 *   wte (V,D); per layer: attn_norm (D), wqkv (3D,D), wo (D,D), mlp_norm (D), w13 (2F,D),
 *   w2 (D,F); final_norm (D); lm_head (V,D).
 * wqkv stacks the q, k and v projections (rows 0..D-1 are q); w13 stacks the SwiGLU gate W1 and
 * up-projection W3 (gate first).
 */
#ifndef REGMIX_TRAIN_MODEL_H
#define REGMIX_TRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct model_config {
    int layers, heads, dim, ffn, context, vocab;
} model_config_t;

enum {
    MODEL_T_ATTN_NORM,
    MODEL_T_WQKV,
    MODEL_T_WO,
    MODEL_T_MLP_NORM,
    MODEL_T_W13,
    MODEL_T_W2,
    MODEL_T_PER_LAYER
};

/* Offsets (in floats) of every tensor in the flat parameter array. */
typedef struct model_layout {
    size_t wte;
    size_t layer[64][MODEL_T_PER_LAYER];
    size_t final_norm;
    size_t lm_head;
    size_t total;
} model_layout_t;

#define MODEL_MAX_LAYERS 64

/* Checks the shape (positive sizes, dim divisible by heads, even head size, layers <= 64);
 * returns 0 or -EINVAL with a message in err. */
int model_config_check(const model_config_t *cfg, char *err, size_t errlen);

/* Fills the layout of cfg (which must pass model_config_check). */
void model_layout(const model_config_t *cfg, model_layout_t *ret_layout);

/* Initialises params as TinyLlama / lit-gpt: every matrix normal(0, sqrt(2/(5D))), the residual
 * output projections (wo, w2) normal(0, 1/(sqrt(D) * L)), norm weights 1. Deterministic in seed. */
void model_init(const model_config_t *cfg, float *params, uint64_t seed);

/* Whether the float at offset i is in a matrix (gets weight decay) rather than a norm weight. */
typedef struct model_decay_range {
    size_t begin, end;
} model_decay_range_t;

/* Writes up to cap ranges [begin, end) of decayed (matrix) parameters; returns the count. */
int model_decay_ranges(const model_config_t *cfg, model_decay_range_t *ret, int cap);

/* Training FLOPs per token (forward + backward = 3x forward; matrix products and attention). */
double model_flops_per_token(const model_config_t *cfg);

#endif
