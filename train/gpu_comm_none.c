/*
 * gpu_comm_none.c: no device all-reduce in this build (see gpu_comm.h).
 */
#include <errno.h>

#include "gpu_comm.h"

int gpu_comm_allreduce(gpu_comm_t **comm, float *buf, size_t n, const dist_t *d)
{
    (void)comm;
    (void)buf;
    (void)n;
    (void)d;
    return -ENOTSUP;
}

void gpu_comm_destroy(gpu_comm_t **comm)
{
    if (comm)
        *comm = NULL;
}
