/*
 * gpu: which GPUs this worker offers (docs/protocol.md, HELLO.gpus).
 *
 * `auto` asks nvidia-smi (--query-gpu=index,name,memory.total,uuid) when it is on PATH and
 * offers none otherwise; `none` offers none; a list "0,1,3" offers those indices as they are
 * (names unknown). A job gets its GPUs through CUDA_VISIBLE_DEVICES (see job.c).
 *
 * Ownership: gpu_discover() fills a caller-owned array of gpu_t; gpu_list_free() frees it.
 */
#ifndef REGMIX_WORKER_GPU_H
#define REGMIX_WORKER_GPU_H

#include <stddef.h>
#include <stdint.h>

#define GPU_MAX 64

typedef struct gpu {
    uint32_t index;
    char name[128];
    uint64_t memory_bytes;
    char uuid[96];
} gpu_t;

/*
 * Discovers GPUs per `spec` ("auto", "none" or a comma-separated list of indices). Blocks
 * while nvidia-smi runs (call it before the loop starts). Returns the count (0..GPU_MAX) written
 * to out[], or -EINVAL for a malformed spec.
 */
int gpu_discover(const char *spec, gpu_t *out, size_t max);

/* Parses nvidia-smi's CSV (noheader, nounits) lines into out[]; exposed for tests. Returns the
 * count. */
int gpu_parse_nvidia_smi(const char *text, gpu_t *out, size_t max);

#endif
