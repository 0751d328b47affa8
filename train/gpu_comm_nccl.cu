/*
 * gpu_comm_nccl.cu: device all-reduce with NCCL (see gpu_comm.h).
 */
#include <cuda_runtime.h>
#include <errno.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "gpu_comm.h"
}

struct gpu_comm {
    ncclComm_t comm;
};

extern "C" int gpu_comm_allreduce(gpu_comm_t **comm, float *buf, size_t n, const dist_t *d)
{
    if (!*comm) {
        ncclUniqueId id;
        if (d->rank == 0 && ncclGetUniqueId(&id) != ncclSuccess)
            return -EIO;
        dist_broadcast(d, &id, sizeof id, 0);
        gpu_comm_t *c = (gpu_comm_t *)calloc(1, sizeof *c);
        if (!c)
            return -ENOMEM;
        ncclResult_t r = ncclCommInitRank(&c->comm, d->size, id, d->rank);
        if (r != ncclSuccess) {
            fprintf(stderr, "regmix-train: ncclCommInitRank: %s\n", ncclGetErrorString(r));
            free(c);
            return -EIO;
        }
        *comm = c;
    }
    ncclResult_t r = ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, (*comm)->comm, 0);
    if (r != ncclSuccess || cudaStreamSynchronize(0) != cudaSuccess) {
        fprintf(stderr, "regmix-train: ncclAllReduce: %s\n", ncclGetErrorString(r));
        return -EIO;
    }
    return 0;
}

extern "C" void gpu_comm_destroy(gpu_comm_t **comm)
{
    if (!comm || !*comm)
        return;
    ncclCommDestroy((*comm)->comm);
    free(*comm);
    *comm = NULL;
}
