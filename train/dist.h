/*
 * dist: data-parallel process group of the trainer (MPI, or a single process).
 *
 * One implementation is linked, chosen at build time: dist_mpi.c when meson finds MPI,
 * dist_none.c otherwise. Under dist_mpi.c, MPI is initialised only when the process was started
 * by mpirun (Open MPI's or PMI's environment variables); a plain start is one rank of one.
 */
#ifndef REGMIX_TRAIN_DIST_H
#define REGMIX_TRAIN_DIST_H

#include <stddef.h>

typedef struct dist {
    int rank, size, active;
} dist_t;

/* Joins the process group (a no-op group of one without mpirun). Returns 0 or -EIO. */
int dist_init(int *argc, char ***argv, dist_t *ret);

/* Sums buf (n floats / doubles) over all ranks, in place; every rank gets the same sum. */
void dist_allreduce_float(const dist_t *d, float *buf, size_t n);
void dist_allreduce_double(const dist_t *d, double *buf, size_t n);

/* Copies n bytes at buf from rank root to every rank. */
void dist_broadcast(const dist_t *d, void *buf, size_t n, int root);

/* Leaves the group; abort = 1 stops every rank (after an error on one). */
void dist_finish(dist_t *d, int abort, int code);

#endif
