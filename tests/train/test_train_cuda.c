/*
 * test_train_cuda: the CUDA backend against the CPU backend on the same small model.
 *
 * Skips (exit 77, "no CUDA device") where no GPU is usable. With one: same weights, same tokens;
 * the CUDA backend multiplies in bf16 (fp32 accumulation), so the tolerances are bf16-sized:
 * loss within 2e-2 relative, the whole gradient vector within 5e-2 relative L2 error, and the
 * losses along five AdamW steps within 3e-2 relative of the CPU backend's.
 */
#include <errno.h>
#include <stdlib.h>

#include "backend.h"
#include "model.h"
#include "test.h"

static void test_cuda_matches_cpu(void)
{
    char err[512], mod[4096];
    const char *root = getenv("REGMIX_BUILD_ROOT");
    snprintf(mod, sizeof mod, "%s/train/regmix-train-cuda.so", root ? root : ".");
    setenv("REGMIX_TRAIN_CUDA_MODULE", mod, 0);
    int rc = backend_probe("cuda", err, sizeof err);
    /* A module that does not load is a build defect, not a missing GPU. */
    CHECK_MSG(rc != -ENOENT, "%s", err);
    if (rc < 0) {
        test_skip("no CUDA device");
        fprintf(stderr, "(%s)\n", err);
        return;
    }
    model_config_t cfg = {
            .layers = 2, .heads = 4, .dim = 64, .ffn = 128, .context = 64, .vocab = 300};
    int m = 3, T = cfg.context;
    backend_t *cpu = NULL, *gpu = NULL;
    CHECK(backend_new("cpu", &cfg, m, 0, 11, &cpu, err, sizeof err) == 0);
    CHECK(backend_new("cuda", &cfg, m, 0, 11, &gpu, err, sizeof err) == 0);
    if (!cpu || !gpu) {
        fprintf(stderr, "%s\n", err);
        backend_destroy(&cpu);
        backend_destroy(&gpu);
        return;
    }
    size_t np = backend_param_count(cpu);
    float *p = malloc(np * 4), *gc = malloc(np * 4);
    backend_get_state(cpu, p, NULL, NULL);
    backend_set_state(gpu, p, NULL, NULL);
    int32_t tok[3 * 65];
    for (int i = 0; i < m * (T + 1); i++)
        tok[i] = (i * 37 + i / 7) % cfg.vocab;
    double lc[3], lg[3];
    float gs = 1.0f / (m * T);
    backend_zero_grad(cpu);
    backend_zero_grad(gpu);
    backend_forward_backward(cpu, tok, m, 1, gs, lc);
    backend_forward_backward(gpu, tok, m, 1, gs, lg);
    for (int s = 0; s < m; s++)
        CHECK_NEAR(lg[s], lc[s], 2e-2 * lc[s]);
    memcpy(gc, backend_grads_get(cpu), np * 4);
    const float *gg = backend_grads_get(gpu);
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < np; i++) {
        num += (double)(gg[i] - gc[i]) * (gg[i] - gc[i]);
        den += (double)gc[i] * gc[i];
    }
    CHECK_MSG(sqrt(num / den) < 5e-2, "relative gradient error %.4f", sqrt(num / den));
    backend_adamw_t hp = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    for (int t = 1; t <= 5; t++) {
        backend_adamw_step(cpu, &hp, t);
        backend_adamw_step(gpu, &hp, t);
        backend_zero_grad(cpu);
        backend_zero_grad(gpu);
        backend_forward_backward(cpu, tok, m, 1, gs, lc);
        backend_forward_backward(gpu, tok, m, 1, gs, lg);
        CHECK_NEAR(lg[0], lc[0], 3e-2 * lc[0]);
    }
    free(p);
    free(gc);
    backend_destroy(&cpu);
    backend_destroy(&gpu);
}

int main(void)
{
    TEST_RUN(test_cuda_matches_cpu);
    return test_finish();
}
