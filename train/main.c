/*
 * main.c: regmix-train, the proxy and target trainer (docs/trainer.md).
 *
 * Reads the options, opens the shards, builds the backend, then runs `--steps` optimizer steps of
 * `--batch` sequences each (split over MPI ranks and micro-batches), with periodic evaluation and
 * checkpoints, and reports JSON lines on --progress-fd (rank 0 only). The final per-domain
 * validation losses go to the progress fd and to stdout. Exit 0 on success, 2 on bad usage or
 * input (naming the file), 1 otherwise.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "config.h"
#include "data.h"
#include "dist.h"
#include "kernels.h"
#include "model.h"
#include "options.h"
#include "tokenize.h"

static volatile sig_atomic_t main__stop;

static void main__on_signal(int sig)
{
    (void)sig;
    main__stop = 1;
}

static void main__usage(FILE *f)
{
    fprintf(f,
            "Usage: regmix-train [OPTIONS]\n"
            "       regmix-train tokenize --out DIR --name NAME FILE...   (see tokenize --help)\n"
            "Trains a Llama-style decoder (RMSNorm, RoPE, SwiGLU, untied head) on a mixture of\n"
            "token shards and reports per-domain validation cross-entropy as JSON lines.\n"
            "\nModel:\n"
            "  --layers L --heads H --dim D --ffn F --context T --vocab V   (all required)\n"
            "\nOptimisation:\n"
            "  --batch B            sequences per optimizer step, over all ranks (required)\n"
            "  --micro-batch M      sequences per forward/backward on a rank (default: the\n"
            "                       largest divisor of B/ranks with at most 16384 tokens)\n"
            "  --steps N            optimizer steps (required)\n"
            "  --lr LR              peak learning rate (default 4e-4)\n"
            "  --warmup W           linear warm-up steps (default 0)\n"
            "  --schedule S         constant or cosine after warm-up (default constant)\n"
            "  --min-lr X           end of the cosine schedule (default 0)\n"
            "  --weight-decay WD    AdamW decoupled decay on matrices (default 0.1)\n"
            "  --clip C             clip gradients to global norm C, 0 = off (default 1.0)\n"
            "\nData:\n"
            "  --train NAME=GLOB    training shards of a domain (repeat; NAME=raw:GLOB for\n"
            "                       headerless uint16 arrays, otherwise llm.c .bin shards)\n"
            "  --valid NAME=GLOB    validation shards of a domain (repeat)\n"
            "  --weights N=W,...    mixture weights, normalised; unnamed domains get 0\n"
            "                       (default: each domain's share of training tokens)\n"
            "  --weights-json J     the same as a JSON object {\"NAME\": W, ...}\n"
            "  --eval-every K       evaluate every K steps (default 0: only at the end)\n"
            "  --eval-batches E     validation sequences per domain = E * micro-batch (default "
            "8)\n"
            "\nRun:\n"
            "  --seed S             seed of the initialisation and data order (default 1)\n"
            "  --threads N          CPU threads (default: all)\n"
            "  --device cpu|cuda    backend (default cpu; this build has: %s)\n"
            "  --checkpoint DIR     write DIR/checkpoint.bin every --checkpoint-every steps\n"
            "                       (default: at evaluations), at the end and on SIGTERM\n"
            "  --checkpoint-every K checkpoint period in steps\n"
            "  --resume             continue from DIR/checkpoint.bin when it exists\n"
            "  --progress-fd FD     write JSON lines (step, eval, result events) to FD\n"
            "  --config FILE.yaml   options as a YAML mapping with the same names\n"
            "  --help, --version\n"
            "Under mpirun each rank takes its share of every global batch; gradients are\n"
            "averaged with MPI_Allreduce (NCCL for --device cuda).\n"
            "Idle OpenMP threads sleep (OMP_WAIT_POLICY=passive) unless OMP_WAIT_POLICY is set;\n"
            "on dedicated cores OMP_WAIT_POLICY=active may be slightly faster.\n"
            "Environment: REGMIX_TRAIN_ISA=auto|avx512|avx2|generic forces the CPU kernels'\n"
            "instruction set (default auto: the widest this CPU runs); REGMIX_TRAIN_GEMM=openblas\n"
            "uses OpenBLAS instead of oneDNN for matrix products; REGMIX_GEMM_THREADS=1 lets the\n"
            "library thread each matrix product instead of splitting it among OpenMP threads;\n"
            "REGMIX_TRAIN_PROFILE=1 prints each phase's share of the time at exit;\n"
            "REGMIX_TRAIN_CUDA_MODULE names the CUDA backend module (default: beside the\n"
            "executable, then the library directory).\n"
            "The result line has tokens_per_second (whole run), steady_tokens_per_second (after\n"
            "the first step, evaluations excluded), and on the CPU mfu against the sgemm peak it\n"
            "measures after training; bits_per_byte per domain when the vocabulary is bytes "
            "(256).\n"
            "\nExample:\n"
            "  regmix-train --layers 2 --heads 8 --dim 256 --ffn 512 --context 2048 --vocab "
            "50432 \\\n"
            "    --batch 512 --micro-batch 8 --steps 1000 --lr 4e-4 --warmup 100 \\\n"
            "    --train web='data/web/*_train_*.bin' --train code='data/code/*_train_*.bin' \\\n"
            "    --valid web='data/web/*_val_*.bin' --valid code='data/code/*_val_*.bin' \\\n"
            "    --weights web=0.7,code=0.3 --progress-fd 3\n",
            backend_names());
}

static double main__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double main__lr(const train_options_t *o, int step)
{
    if (o->warmup > 0 && step < o->warmup)
        return o->lr * (step + 1) / o->warmup;
    if (!o->cosine || o->steps <= o->warmup)
        return o->lr;
    double prog = (double)(step - o->warmup) / (double)(o->steps - o->warmup);
    return o->min_lr + 0.5 * (1.0 + cos(M_PI * prog)) * (o->lr - o->min_lr);
}

/* Writes one JSON line to f (takes the reference to obj). */
static void main__emit(FILE *f, json_t *obj)
{
    if (f) {
        char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9));
        if (s) {
            fprintf(f, "%s\n", s);
            fflush(f);
            free(s);
        }
    }
    json_decref(obj);
}

typedef struct main_run {
    train_options_t *o;
    dist_t *dist;
    data_t *data;
    backend_t *be;
    int mb;
    int32_t *tokens;
    double *seq_losses;
} main_run_t;

/* Mean validation loss per domain into a JSON object (domains without validation data are
 * left out). Sequences are split over ranks round-robin and summed with an all-reduce. */
static json_t *main__evaluate(main_run_t *r)
{
    int nd = data_domain_count(r->data), T = r->o->model.context;
    int max = r->o->eval_batches * r->mb;
    double sums[2 * 256] = {0};
    for (int d = 0; d < nd; d++) {
        int cnt = data_valid_count(r->data, d, max);
        int k = r->dist->rank;
        while (k < cnt) {
            int m = 0;
            for (; m < r->mb && k < cnt; m++, k += r->dist->size)
                data_valid_sequence(r->data, d, k, r->tokens + (long)m * (T + 1));
            backend_forward_backward(r->be, r->tokens, m, 0, 0.0f, r->seq_losses);
            for (int i = 0; i < m; i++)
                sums[2 * d] += r->seq_losses[i];
            sums[2 * d + 1] += m;
        }
    }
    dist_allreduce_double(r->dist, sums, 2 * (size_t)nd);
    json_t *losses = json_object();
    for (int d = 0; d < nd; d++)
        if (sums[2 * d + 1] > 0)
            json_object_set_new(losses, data_domain_name(r->data, d),
                                json_real(sums[2 * d] / sums[2 * d + 1]));
    return losses;
}

static int main__run(train_options_t *o, dist_t *dist)
{
    char err[1024] = "";
    int rc = 0, exit_code = 0;
    data_t *data = NULL;
    backend_t *be = NULL;
    FILE *progress = NULL;
    float *ck_p = NULL, *ck_m = NULL, *ck_v = NULL;
    main_run_t run = {.o = o, .dist = dist};
    int per_rank = o->batch / dist->size;
    int mb = options_micro_batch(o, dist->size);
    int accum = per_rank / mb, T = o->model.context;
    run.mb = mb;

    const char *device = o->device ? o->device : "cpu";
    rc = backend_probe(device, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "regmix-train: --device %s: %s\n", device, err);
        return rc == -ENOENT ? 2 : 1;
    }
    /* ---- data ---- */
    if (data_new(o->model.vocab, &data) < 0)
        return 1;
    for (int i = 0; i < o->ntrain && rc == 0; i++)
        rc = data_add(data, o->train[i], 0, err, sizeof err);
    for (int i = 0; i < o->nvalid && rc == 0; i++)
        rc = data_add(data, o->valid[i], 1, err, sizeof err);
    if (rc == 0 && o->weights)
        rc = data_set_weights(data, o->weights, err, sizeof err);
    if (rc == 0 && o->weights_json)
        rc = data_set_weights_json(data, o->weights_json, err, sizeof err);
    if (rc == 0)
        rc = data_prepare(data, T, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "regmix-train: %s\n", err);
        exit_code = rc == -ENOMEM ? 1 : 2;
        goto out;
    }
    run.data = data;

    /* ---- model ---- */
    rc = backend_new(device, &o->model, mb, o->threads, o->seed, &be, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "regmix-train: %s\n", err);
        exit_code = rc == -EINVAL ? 2 : 1;
        goto out;
    }
    run.be = be;
    kern_set_gemm_mode(getenv("REGMIX_GEMM_THREADS") ? 1 : 0, o->threads);
    size_t np = backend_param_count(be);
    run.tokens = malloc((size_t)mb * (T + 1) * sizeof(int32_t));
    run.seq_losses = malloc((size_t)mb * sizeof(double));
    if (!run.tokens || !run.seq_losses) {
        exit_code = 1;
        goto out;
    }
    if (dist->rank == 0 && o->progress_fd >= 0) {
        progress = o->progress_fd == 1 ? stdout : fdopen(o->progress_fd, "w");
        if (!progress) {
            fprintf(stderr, "regmix-train: --progress-fd %d: %s\n", o->progress_fd,
                    strerror(errno));
            exit_code = 2;
            goto out;
        }
    }

    /* ---- resume ---- */
    checkpoint_header_t want = {.model = o->model,
                                .batch = o->batch,
                                .seed = o->seed,
                                .params = np},
                        have = want;
    int start = 0;
    double tokens = 0.0, prior_seconds = 0.0;
    if (o->checkpoint) {
        ck_p = malloc(np * sizeof(float));
        ck_m = malloc(np * sizeof(float));
        ck_v = malloc(np * sizeof(float));
        if (!ck_p || !ck_m || !ck_v) {
            exit_code = 1;
            goto out;
        }
    }
    if (o->checkpoint && o->resume) {
        rc = checkpoint_load(o->checkpoint, &want, &have, ck_p, ck_m, ck_v, err, sizeof err);
        if (rc == 0) {
            backend_set_state(be, ck_p, ck_m, ck_v);
            start = have.step;
            tokens = have.tokens;
            prior_seconds = have.seconds;
            if (dist->rank == 0)
                fprintf(stderr, "regmix-train: resuming at step %d from %s\n", start,
                        o->checkpoint);
        } else if (rc != -ENOENT) {
            fprintf(stderr, "regmix-train: %s\n", err);
            exit_code = 2;
            goto out;
        }
    }
    int ck_every = o->checkpoint_every ? o->checkpoint_every : o->eval_every;

    /* ---- train ---- */
    backend_adamw_t hp = {.beta1 = 0.9f,
                          .beta2 = 0.95f,
                          .eps = 1e-8f,
                          .weight_decay = (float)o->weight_decay,
                          .clip = (float)o->clip};
    float grad_scale = 1.0f / ((float)o->batch * (float)T);
    double t0 = main__now(), session_tokens = 0.0;
    double first_end = 0.0, first_tokens = 0.0, eval_seconds = 0.0; /* for the steady state */
    int step = start;
    for (; step < o->steps; step++) {
        hp.lr = (float)main__lr(o, step);
        backend_zero_grad(be);
        double loss = 0.0;
        for (int k = 0; k < accum; k++) {
            uint64_t g0 =
                    (uint64_t)step * o->batch + (uint64_t)dist->rank * per_rank + (uint64_t)k * mb;
            for (int i = 0; i < mb; i++)
                data_sample(data, o->seed, g0 + i, run.tokens + (long)i * (T + 1));
            backend_forward_backward(be, run.tokens, mb, 1, grad_scale, run.seq_losses);
            for (int i = 0; i < mb; i++)
                loss += run.seq_losses[i];
        }
        if (dist->size > 1) {
            int ar = backend_allreduce(be, dist);
            if (ar == -ENOTSUP) {
                dist_allreduce_float(dist, backend_grads_get(be), np);
                backend_grads_put(be);
            } else if (ar < 0) {
                fprintf(stderr, "regmix-train: gradient all-reduce failed at step %d\n", step + 1);
                exit_code = 1;
                goto out;
            }
            dist_allreduce_double(dist, &loss, 1);
        }
        backend_adamw_step(be, &hp, step + 1);
        loss /= o->batch;
        tokens += (double)o->batch * T;
        session_tokens += (double)o->batch * T;
        double el = main__now() - t0;
        int done = step + 1;
        if (!isfinite(loss)) {
            fprintf(stderr, "regmix-train: loss is %f at step %d\n", loss, done);
            exit_code = 1;
            goto out;
        }
        main__emit(progress, json_pack("{s:s, s:i, s:f, s:f, s:f, s:f}", "event", "step", "step",
                                       done, "loss", loss, "lr", (double)hp.lr, "tokens", tokens,
                                       "tokens_per_second", session_tokens / el));
        if (step == start) {
            first_end = el;
            first_tokens = session_tokens;
        }
        if (o->eval_every && done % o->eval_every == 0 && done < o->steps) {
            double e0 = main__now();
            json_t *l = main__evaluate(&run);
            eval_seconds += main__now() - e0;
            main__emit(progress,
                       json_pack("{s:s, s:i, s:o}", "event", "eval", "step", done, "losses", l));
        }
        /* Read the flag once, so a signal that lands now is handled after the next step rather
         * than between the checkpoint and the exit; ranks agree on it so none waits alone. */
        int stop = main__stop;
        if (dist->size > 1) {
            double s = stop;
            dist_allreduce_double(dist, &s, 1);
            stop = s > 0.0;
        }
        if (o->checkpoint && (done == o->steps || stop || (ck_every && done % ck_every == 0))) {
            if (dist->rank == 0) {
                have = want;
                have.step = done;
                have.tokens = tokens;
                have.seconds = prior_seconds + el;
                backend_get_state(be, ck_p, ck_m, ck_v);
                if (checkpoint_save(o->checkpoint, &have, ck_p, ck_m, ck_v, err, sizeof err) < 0)
                    fprintf(stderr, "regmix-train: %s\n", err);
            }
        }
        if (stop) {
            if (dist->rank == 0)
                fprintf(stderr, "regmix-train: stopped by a signal after step %d\n", done);
            exit_code = 1;
            goto out;
        }
    }
    double secs = main__now() - t0;
    json_t *losses = main__evaluate(&run);
    if (dist->rank == 0) {
        json_t *res = json_pack("{s:s, s:O, s:f, s:f, s:f}", "event", "result", "losses", losses,
                                "tokens", tokens, "seconds", prior_seconds + secs,
                                "tokens_per_second", secs > 0 ? session_tokens / secs : 0.0);
        double steady_s = secs - first_end - eval_seconds;
        double steady = steady_s > 0 && session_tokens > first_tokens
                                ? (session_tokens - first_tokens) / steady_s
                                : 0.0;
        json_object_set_new(res, "steady_tokens_per_second", json_real(steady));
        if (strcmp(device, "cpu") == 0) {
            /* MFU of the steady state against this machine's sgemm peak, measured now (after
             * the run, so it costs the run nothing) with the same library and threads. */
            double peak = kern_gemm_peak_gflops(512);
            double flops = model_flops_per_token(&o->model) * steady * dist->size / 1e9;
            json_object_set_new(res, "kernels", json_string(kern_isa_name()));
            json_object_set_new(res, "gemm", json_string(kern_gemm_name()));
            json_object_set_new(res, "model_gflops", json_real(flops));
            json_object_set_new(res, "gemm_peak_gflops", json_real(peak * dist->size));
            json_object_set_new(res, "mfu", json_real(peak > 0 ? flops / (peak * dist->size) : 0));
        }
        if (o->model.vocab == 256) {
            /* Byte-level tokens: nats per token / ln 2 = bits per byte. */
            json_t *bpb = json_object();
            const char *k;
            json_t *val;
            json_object_foreach(losses, k, val)
            {
                json_object_set_new(bpb, k, json_real(json_real_value(val) / M_LN2));
            }
            json_object_set_new(res, "bits_per_byte", bpb);
        }
        if (progress != stdout)
            main__emit(stdout, json_incref(res));
        main__emit(progress, res);
    }
    json_decref(losses);
out:
    if (progress && progress != stdout)
        fclose(progress);
    free(ck_p);
    free(ck_m);
    free(ck_v);
    free(run.tokens);
    free(run.seq_losses);
    backend_destroy(&be);
    data_destroy(&data);
    return exit_code;
}

int main(int argc, char **argv)
{
    /* libgomp reads OMP_WAIT_POLICY when it loads, before main: to make idle OpenMP threads
     * sleep rather than spin by default (2-10x faster when the cores are shared, within a few
     * per cent when they are not), set it and start again. An explicit setting is kept. */
    const char *pre = getenv("LD_PRELOAD"); /* not under valgrind: exec would escape it */
    if (!getenv("OMP_WAIT_POLICY") && !(pre && strstr(pre, "valgrind"))) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    if (argc > 1 && strcmp(argv[1], "tokenize") == 0)
        return tokenize_main(argc - 1, argv + 1);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            main__usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            char err[256];
            printf("regmix-train %s (backends: %s)\n", REGMIX_VERSION, backend_names());
            if (kern_init(NULL, err, sizeof err) == 0)
                printf("cpu kernels: %s, matrix products: %s\n", kern_isa_name(), kern_gemm_name());
            else
                printf("cpu kernels: %s\n", err);
            return 0;
        }
    }
    dist_t dist;
    if (dist_init(&argc, &argv, &dist) < 0) {
        fprintf(stderr, "regmix-train: MPI initialisation failed\n");
        return 1;
    }
    train_options_t o;
    options_defaults(&o);
    char err[1024] = "";
    int rc = options_parse(&o, argc - 1, argv + 1, err, sizeof err);
    if (rc == 0)
        rc = options_check(&o, dist.size, err, sizeof err);
    int code;
    if (rc < 0) {
        if (dist.rank == 0)
            fprintf(stderr, "regmix-train: %s\n", err);
        code = 2;
    } else {
        struct sigaction sa = {.sa_handler = main__on_signal};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        code = main__run(&o, &dist);
    }
    options_free(&o);
    dist_finish(&dist, code != 0 && dist.size > 1, code);
    return code;
}
