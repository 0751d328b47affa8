/*
 * gpu_comm: all-reduce of device buffers between the ranks of a dist_t group, for the CUDA
 * backend: NCCL (gpu_comm_nccl.cu) when meson finds it, else nothing (gpu_comm_none.c), in
 * which case the trainer falls back to copying gradients to the host for MPI_Allreduce.
 * The communicator is created on first use (its id is broadcast from rank 0 over the group)
 * and owned by the caller's handle.
 */
#ifndef REGMIX_TRAIN_GPU_COMM_H
#define REGMIX_TRAIN_GPU_COMM_H

#include <stddef.h>

#include "dist.h"

typedef struct gpu_comm gpu_comm_t;

/* Sums the n device floats at buf over all ranks, in place, creating *comm on first use.
 * Returns 0, -ENOTSUP (no NCCL in this build) or -EIO. */
int gpu_comm_allreduce(gpu_comm_t **comm, float *buf, size_t n, const dist_t *d);

/* Frees the communicator; accepts NULL and nulls the caller's pointer. */
void gpu_comm_destroy(gpu_comm_t **comm);

#endif
