/*
 * backend_list_cpu.c: the built-in backends of a build without CUDA (see backend.h).
 */
#include "backend.h"

extern const backend_ops_t backend_cpu_ops;

const backend_ops_t *const backend_list[] = {&backend_cpu_ops, NULL};
