/*
 * backend_cuda_loader.c: the "cuda" entry of the backend list in a CUDA build (see backend.h).
 *
 * The CUDA backend lives in a module, regmix-train-cuda.so, loaded with dlopen() the first time
 * --device cuda is probed, so CPU runs never load cudart, cuBLAS and NCCL (over a gigabyte of
 * libraries whose constructors cost about a second per start). The module resolves the
 * trainer's own functions (model_*, dist_*) from the executable, which is linked with
 * export_dynamic. Where it is looked for: $REGMIX_TRAIN_CUDA_MODULE, then beside the
 * executable, then the install libdir.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

#define LOADER_MODULE "regmix-train-cuda.so"

static const backend_ops_t *loader__ops;

static const backend_ops_t *loader__try(const char *path, char *why, size_t len)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        size_t el = e ? strlen(e) : 0;
        el = el < len - 1 ? el : len - 1;
        memcpy(why, e ? e : "", el);
        why[el] = 0;
        return NULL;
    }
    const backend_ops_t *ops = dlsym(h, "backend_cuda_ops");
    if (!ops)
        snprintf(why, len, "no backend_cuda_ops in the module");
    return ops;
}

static int loader_probe(char *err, size_t errlen)
{
    if (!loader__ops) {
        char paths[3][PATH_MAX], why[512] = "not found";
        int n = 0;
        const char *env = getenv("REGMIX_TRAIN_CUDA_MODULE");
        if (env)
            snprintf(paths[n++], PATH_MAX, "%s", env);
        char exe[PATH_MAX];
        ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (l > 0) {
            exe[l] = 0;
            char *slash = strrchr(exe, '/');
            if (slash && (size_t)(slash - exe) + sizeof LOADER_MODULE + 1 < PATH_MAX) {
                memcpy(slash + 1, LOADER_MODULE, sizeof LOADER_MODULE);
                memcpy(paths[n++], exe, PATH_MAX);
            }
        }
        snprintf(paths[n++], PATH_MAX, "%s/%s", REGMIX_LIBDIR, LOADER_MODULE);
        for (int i = 0; i < n && !loader__ops; i++)
            if (access(paths[i], R_OK) == 0)
                loader__ops = loader__try(paths[i], why, sizeof why);
        if (!loader__ops) {
            snprintf(err, errlen, "cannot load the CUDA backend module %s (%s)", LOADER_MODULE,
                     why);
            return -ENOENT;
        }
    }
    return loader__ops->probe(err, errlen);
}

static int loader_create(const model_config_t *cfg,
                         int micro_batch,
                         int threads,
                         uint64_t seed,
                         void **ret_impl,
                         char *err,
                         size_t errlen)
{
    int rc = loader_probe(err, errlen);
    if (rc < 0)
        return rc;
    return loader__ops->create(cfg, micro_batch, threads, seed, ret_impl, err, errlen);
}

/* The remaining calls only happen on an object loader_create() made, so the module is loaded. */
static void loader_destroy(void *impl)
{
    loader__ops->destroy(impl);
}

static size_t loader_param_count(const void *impl)
{
    return loader__ops->param_count(impl);
}

static void loader_set_state(void *impl, const float *params, const float *m, const float *v)
{
    loader__ops->set_state(impl, params, m, v);
}

static void loader_get_state(const void *impl, float *params, float *m, float *v)
{
    loader__ops->get_state(impl, params, m, v);
}

static void loader_zero_grad(void *impl)
{
    loader__ops->zero_grad(impl);
}

static void loader_forward_backward(void *impl,
                                    const int32_t *tokens,
                                    int m,
                                    int backward,
                                    float grad_scale,
                                    double *ret_losses)
{
    loader__ops->forward_backward(impl, tokens, m, backward, grad_scale, ret_losses);
}

static float *loader_grads_get(void *impl)
{
    return loader__ops->grads_get(impl);
}

static void loader_grads_put(void *impl)
{
    loader__ops->grads_put(impl);
}

static double loader_adamw_step(void *impl, const backend_adamw_t *hp, int t)
{
    return loader__ops->adamw_step(impl, hp, t);
}

static int loader_allreduce(void *impl, const dist_t *d)
{
    return loader__ops->allreduce ? loader__ops->allreduce(impl, d) : -ENOTSUP;
}

const backend_ops_t backend_cuda_loader_ops = {
        .name = "cuda",
        .probe = loader_probe,
        .create = loader_create,
        .destroy = loader_destroy,
        .param_count = loader_param_count,
        .set_state = loader_set_state,
        .get_state = loader_get_state,
        .zero_grad = loader_zero_grad,
        .forward_backward = loader_forward_backward,
        .grads_get = loader_grads_get,
        .grads_put = loader_grads_put,
        .adamw_step = loader_adamw_step,
        .allreduce = loader_allreduce,
};
