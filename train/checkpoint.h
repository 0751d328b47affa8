/*
 * checkpoint: the trainer's resumable state in one file, DIR/checkpoint.bin.
 *
 * The file holds a header (model shape, step, seed, global batch, tokens so far) and the
 * parameters and AdamW moments as raw floats in model_layout() order. It is written to a
 * temporary name, synced and renamed, so a kill at any moment leaves the previous checkpoint or
 * the new one, never a torn file. Data order needs no state: it is a function of the seed and the
 * step (data.h).
 */
#ifndef REGMIX_TRAIN_CHECKPOINT_H
#define REGMIX_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct checkpoint_header {
    model_config_t model;
    int32_t step, batch;
    uint64_t seed;
    uint64_t params;
    double tokens, seconds;
} checkpoint_header_t;

/* Writes the checkpoint (creating dir if needed). Returns 0 or a negative errno with a message. */
int checkpoint_save(const char *dir,
                    const checkpoint_header_t *h,
                    const float *params,
                    const float *m,
                    const float *v,
                    char *err,
                    size_t errlen);

/* Reads the checkpoint into the caller's arrays of want->params floats. Returns -ENOENT when dir
 * holds none, -EINVAL (with a message) when it does not match want's shape, seed or batch;
 * ret_h gets the stored header. */
int checkpoint_load(const char *dir,
                    const checkpoint_header_t *want,
                    checkpoint_header_t *ret_h,
                    float *params,
                    float *m,
                    float *v,
                    char *err,
                    size_t errlen);

#endif
