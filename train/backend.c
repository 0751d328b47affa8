/*
 * backend.c: picks a built-in backend by name and forwards the calls to it (see backend.h).
 */
#include "backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct backend {
    const backend_ops_t *ops;
    void *impl;
};

static const backend_ops_t *backend__find(const char *device)
{
    for (int i = 0; backend_list[i]; i++)
        if (strcmp(backend_list[i]->name, device ? device : "cpu") == 0)
            return backend_list[i];
    return NULL;
}

const char *backend_names(void)
{
    static char buf[128];
    buf[0] = 0;
    for (int i = 0; backend_list[i]; i++) {
        if (i)
            strncat(buf, ", ", sizeof buf - strlen(buf) - 1);
        strncat(buf, backend_list[i]->name, sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

int backend_probe(const char *device, char *err, size_t errlen)
{
    const backend_ops_t *ops = backend__find(device);
    if (!ops) {
        snprintf(err, errlen, "backend '%s' is not built in (this build: %s)", device,
                 backend_names());
        return -ENOENT;
    }
    return ops->probe(err, errlen);
}

int backend_new(const char *device,
                const model_config_t *cfg,
                int micro_batch,
                int threads,
                uint64_t seed,
                backend_t **ret,
                char *err,
                size_t errlen)
{
    const backend_ops_t *ops = backend__find(device);
    if (!ops) {
        snprintf(err, errlen, "backend '%s' is not built in (this build: %s)", device,
                 backend_names());
        return -ENOENT;
    }
    backend_t *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->ops = ops;
    int rc = ops->create(cfg, micro_batch, threads, seed, &b->impl, err, errlen);
    if (rc < 0) {
        free(b);
        return rc;
    }
    *ret = b;
    return 0;
}

void backend_destroy(backend_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    (*self_p)->ops->destroy((*self_p)->impl);
    free(*self_p);
    *self_p = NULL;
}

size_t backend_param_count(const backend_t *b)
{
    return b->ops->param_count(b->impl);
}

void backend_set_state(backend_t *b, const float *params, const float *m, const float *v)
{
    b->ops->set_state(b->impl, params, m, v);
}

void backend_get_state(const backend_t *b, float *params, float *m, float *v)
{
    b->ops->get_state(b->impl, params, m, v);
}

void backend_zero_grad(backend_t *b)
{
    b->ops->zero_grad(b->impl);
}

void backend_forward_backward(backend_t *b,
                              const int32_t *tokens,
                              int m,
                              int backward,
                              float grad_scale,
                              double *ret_losses)
{
    b->ops->forward_backward(b->impl, tokens, m, backward, grad_scale, ret_losses);
}

float *backend_grads_get(backend_t *b)
{
    return b->ops->grads_get(b->impl);
}

void backend_grads_put(backend_t *b)
{
    b->ops->grads_put(b->impl);
}

double backend_adamw_step(backend_t *b, const backend_adamw_t *hp, int t)
{
    return b->ops->adamw_step(b->impl, hp, t);
}

int backend_allreduce(backend_t *b, const dist_t *d)
{
    return b->ops->allreduce ? b->ops->allreduce(b->impl, d) : -ENOTSUP;
}
