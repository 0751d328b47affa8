/*
 * dist_mpi.c: the MPI process group (see dist.h). Gradients are summed with MPI_Allreduce in
 * chunks that fit an int count.
 */
#include <errno.h>
#include <mpi.h>
#include <stdlib.h>

#include "dist.h"

#define DIST_CHUNK (1 << 28)

static int dist__under_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int dist_init(int *argc, char ***argv, dist_t *ret)
{
    *ret = (dist_t){0, 1, 0};
    if (!dist__under_mpirun())
        return 0;
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
        return -EIO;
    ret->active = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &ret->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ret->size);
    return 0;
}

void dist_allreduce_float(const dist_t *d, float *buf, size_t n)
{
    if (!d->active || d->size == 1)
        return;
    for (size_t off = 0; off < n; off += DIST_CHUNK) {
        size_t c = n - off < DIST_CHUNK ? n - off : DIST_CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

void dist_allreduce_double(const dist_t *d, double *buf, size_t n)
{
    if (!d->active || d->size == 1)
        return;
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void dist_broadcast(const dist_t *d, void *buf, size_t n, int root)
{
    if (!d->active || d->size == 1)
        return;
    MPI_Bcast(buf, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
}

void dist_finish(dist_t *d, int abort, int code)
{
    if (!d->active)
        return;
    if (abort)
        MPI_Abort(MPI_COMM_WORLD, code);
    else
        MPI_Finalize();
    d->active = 0;
}
