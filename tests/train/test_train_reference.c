/*
 * test_train_reference: the CPU backend against PyTorch on a tiny fixed model.
 *
 * tests/fixtures/train_reference.json was written once by tests/train/make_reference.py (PyTorch,
 * float64) from weights and tokens given by simple formulas, repeated here. The backend (float32)
 * must match the loss within 1e-4 relative, every listed gradient entry within
 * 1e-5 + 1e-3 * |value|, and the losses along three AdamW steps (with clipping and weight decay)
 * within 2e-4 relative.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "backend.h"
#include "kernels.h"
#include "model.h"
#include "test.h"

static json_t *load_fixture(void)
{
    char path[4096];
    const char *root = getenv("REGMIX_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/tests/fixtures/train_reference.json", root ? root : ".");
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fprintf(stderr, "%s: %s\n", path, e.text);
    return j;
}

static void test_reference(void)
{
    json_t *ref = load_fixture();
    CHECK(ref != NULL);
    if (!ref)
        return;
    json_t *c = json_object_get(ref, "config");
    model_config_t cfg = {
            .layers = (int)json_integer_value(json_object_get(c, "layers")),
            .heads = (int)json_integer_value(json_object_get(c, "heads")),
            .dim = (int)json_integer_value(json_object_get(c, "dim")),
            .ffn = (int)json_integer_value(json_object_get(c, "ffn")),
            .context = (int)json_integer_value(json_object_get(c, "context")),
            .vocab = (int)json_integer_value(json_object_get(c, "vocab")),
    };
    int batch = (int)json_integer_value(json_object_get(c, "batch")), T = cfg.context;
    char err[256];
    backend_t *be = NULL;
    CHECK(backend_new("cpu", &cfg, batch, 0, 1, &be, err, sizeof err) == 0);
    if (!be) {
        json_decref(ref);
        return;
    }
    size_t np = backend_param_count(be);
    CHECK_INT_EQ(np, json_integer_value(json_object_get(ref, "params")));

    /* Same formula as make_reference.py: base + 0.1 sin(0.37 k + 1), base 1 for norm weights. */
    model_layout_t lay;
    model_layout(&cfg, &lay);
    float *p = malloc(np * sizeof(float));
    for (size_t k = 0; k < np; k++)
        p[k] = (float)(0.1 * sin(0.37 * (double)k + 1.0));
    size_t norms[2 * MODEL_MAX_LAYERS + 1];
    int nn = 0;
    for (int l = 0; l < cfg.layers; l++) {
        norms[nn++] = lay.layer[l][MODEL_T_ATTN_NORM];
        norms[nn++] = lay.layer[l][MODEL_T_MLP_NORM];
    }
    norms[nn++] = lay.final_norm;
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < cfg.dim; j++)
            p[norms[i] + j] += 1.0f;
    int32_t *tok = malloc((size_t)batch * (T + 1) * sizeof(int32_t));
    for (int s = 0; s < batch; s++)
        for (int i = 0; i <= T; i++)
            tok[s * (T + 1) + i] = (7 * s + 3 * i * i + i + 1) % cfg.vocab;

    backend_set_state(be, p, NULL, NULL);
    backend_zero_grad(be);
    double losses[16], loss = 0.0;
    float gs = 1.0f / (float)(batch * T);
    backend_forward_backward(be, tok, batch, 1, gs, losses);
    for (int s = 0; s < batch; s++)
        loss += losses[s] / batch;
    double want = json_real_value(json_object_get(ref, "loss"));
    CHECK_NEAR(loss, want, 1e-4 * want);

    const float *g = backend_grads_get(be);
    size_t i;
    json_t *e;
    int checked = 0;
    json_array_foreach(json_object_get(ref, "grads"), i, e)
    {
        size_t off = (size_t)json_integer_value(json_object_get(e, "offset"));
        double v = json_real_value(json_object_get(e, "value"));
        CHECK_MSG(off < np && fabs(g[off] - v) <= 1e-5 + 1e-3 * fabs(v), "%s[%zu]: %.8g vs %.8g",
                  json_string_value(json_object_get(e, "tensor")), off, off < np ? g[off] : 0.0, v);
        checked++;
    }
    CHECK(checked >= 40);

    /* Three AdamW steps from the same start. */
    backend_adamw_t hp = {.lr = (float)json_real_value(json_object_get(ref, "lr")),
                          .beta1 = 0.9f,
                          .beta2 = 0.95f,
                          .eps = 1e-8f,
                          .weight_decay =
                                  (float)json_real_value(json_object_get(ref, "weight_decay")),
                          .clip = (float)json_real_value(json_object_get(ref, "clip"))};
    backend_set_state(be, p, NULL, NULL);
    float *zeros = calloc(np, sizeof(float));
    backend_set_state(be, NULL, zeros, zeros);
    json_array_foreach(json_object_get(ref, "step_losses"), i, e)
    {
        backend_zero_grad(be);
        backend_forward_backward(be, tok, batch, 1, gs, losses);
        double l = (losses[0] + losses[1]) / 2.0, w = json_real_value(e);
        CHECK_NEAR(l, w, 2e-4 * w);
        backend_adamw_step(be, &hp, (int)i + 1);
    }
    backend_forward_backward(be, tok, batch, 0, 0.0f, losses);
    double fin = json_real_value(json_object_get(ref, "loss_after_steps"));
    CHECK_NEAR((losses[0] + losses[1]) / 2.0, fin, 2e-4 * fin);

    free(zeros);
    free(tok);
    free(p);
    backend_destroy(&be);
    json_decref(ref);
}

int main(int argc, char **argv)
{
    /* Shared cores: let idle OpenMP threads sleep (read by libgomp at load, hence the restart). */
    (void)argc;
    const char *pre = getenv("LD_PRELOAD"); /* not under valgrind: exec would escape it */
    if (!getenv("OMP_WAIT_POLICY") && !(pre && strstr(pre, "valgrind"))) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    char err[256];
    int rc = kern_init(NULL, err, sizeof err); /* REGMIX_TRAIN_ISA: a path this CPU lacks skips */
    if (rc == -ENOTSUP) {
        test_skip(err);
        return test_finish();
    }
    CHECK_MSG(rc == 0, "%s", err);
    fprintf(stderr, "kernels: %s, matrix products: %s\n", kern_isa_name(), kern_gemm_name());
    TEST_RUN(test_reference);
    return test_finish();
}
