/*
 * backend_list_cuda.c: the built-in backends of a build with CUDA (see backend.h).
 */
#include "backend.h"

extern const backend_ops_t backend_cpu_ops;
extern const backend_ops_t backend_cuda_ops;

const backend_ops_t *const backend_list[] = {&backend_cpu_ops, &backend_cuda_ops, NULL};
