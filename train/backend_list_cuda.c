/*
 * backend_list_cuda.c: the built-in backends of a build with CUDA (see backend.h); the CUDA one
 * is loaded on demand (backend_cuda_loader.c).
 */
#include "backend.h"

extern const backend_ops_t backend_cpu_ops;
extern const backend_ops_t backend_cuda_loader_ops;

const backend_ops_t *const backend_list[] = {&backend_cpu_ops, &backend_cuda_loader_ops, NULL};
