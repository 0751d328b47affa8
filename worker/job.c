#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "rng.h"
#include "trainargs.h"

extern char **environ;

#define JOB_PROGRESS_FD     3
#define JOB_LINE_MAX        (64 * 1024)
#define JOB_PROGRESS_MIN_MS 250  /* thinning of progress lines */
#define JOB_EOF_WAIT_MS     1000 /* after exit, wait this long for the progress pipe to close */
#define JOB_COMMAND_RESULT  "command-result.json"

struct job_private {
    uv_loop_t *loop;
    job_config_t cfg;
    job_progress_cb progress_cb;
    job_done_cb done_cb;
    void *data;
    Regmix__Assign *a; /* owned copy of the assignment */

    child_t *child;   /* the process (child.h): spawned and not ended, else NULL */
    uv_timer_t timer; /* synthetic delay, or the delivery of a failure or cancel */
    int handles;      /* open libuv handles (the timer) */
    int exited;
    int64_t exit_status;
    int term_signal;
    int destroyed;
    char *spawn_error; /* pending FAILED reason when spawning failed */

    json_t *result; /* the trainer's last {"event":"result"} object */
    int64_t last_progress_ms;
    int64_t started_ms;
};

/* ---- small helpers ---------------------------------------------------------------------------- */

double job_synthetic_loss(const Regmix__DomainWeight *const *w,
                          size_t n_w,
                          const Regmix__DomainWeight *const *opt,
                          size_t n_opt)
{
    double sum = 0;
    for (size_t i = 0; i < n_w; i++) {
        double o = 0;
        for (size_t j = 0; j < n_opt; j++)
            if (strcmp(w[i]->domain, opt[j]->domain) == 0)
                o = opt[j]->weight;
        sum += (w[i]->weight - o) * (w[i]->weight - o);
    }
    for (size_t j = 0; j < n_opt; j++) {
        int seen = 0;
        for (size_t i = 0; i < n_w && !seen; i++)
            seen = strcmp(w[i]->domain, opt[j]->domain) == 0;
        if (!seen)
            sum += opt[j]->weight * opt[j]->weight;
    }
    return sum;
}

/* A file-system-safe copy of a sweep id: [A-Za-z0-9._-], anything else becomes '_'. */
static void job__safe_name(const char *s, char *buf, size_t size)
{
    size_t i = 0;
    for (; s[i] && i + 1 < size; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || (c == '.' && i > 0);
        buf[i] = ok ? c : '_';
    }
    buf[i] = '\0';
    if (i == 0)
        snprintf(buf, size, "sweep");
}

static char *job__weights_json(const Regmix__Assign *a)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < a->n_weights; i++)
        json_object_set_new(o, a->weights[i]->domain, json_real(a->weights[i]->weight));
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    return s;
}

/* The last non-empty line of a log file (at most its last 4 KiB), or "" in a static buffer. */
static const char *job__last_line(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return buf;
    char tail[4096];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)sizeof tail - 1 ? end - (off_t)sizeof tail + 1 : 0;
    ssize_t n = pread(fd, tail, sizeof tail - 1, start);
    close(fd);
    if (n <= 0)
        return buf;
    tail[n] = '\0';
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r' || tail[n - 1] == ' '))
        tail[--n] = '\0';
    char *nl = strrchr(tail, '\n');
    const char *src = nl ? nl + 1 : tail;
    size_t len = strlen(src) < size - 1 ? strlen(src) : size - 1;
    memcpy(buf, src, len);
    buf[len] = '\0';
    return buf;
}

/* ---- lifecycle -------------------------------------------------------------------------------- */

static void job__free(job_t *job)
{
    struct job_private *p = job->priv;
    if (p->a)
        regmix__assign__free_unpacked(p->a, NULL);
    json_decref(p->result);
    free(p->spawn_error);
    free(p);
    report_clear(&job->report);
    free(job->sweep_id);
    free(job->dir);
    free(job);
}

static void job__close_cb(uv_handle_t *h)
{
    job_t *job = h->data;
    if (--job->priv->handles == 0 && job->priv->destroyed)
        job__free(job);
}

static void job__close(job_t *job, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, job__close_cb);
}

/* Builds the report from what the job left and calls the done callback once. */
static void job__finish(job_t *job)
{
    struct job_private *p = job->priv;
    if (job->finished || p->destroyed)
        return;
    job->finished = 1;
    uv_timer_stop(&p->timer);
    report_t *r = &job->report;
    r->attempt_id = job->attempt_id;
    r->run_id = job->run_id;
    r->sweep_id = strdup(job->sweep_id);
    r->dir = strdup(job->dir);
    r->seconds = (double)(clock_mono_ms() - p->started_ms) / 1000.0;
    if (job->cancelled) {
        p->done_cb(job, p->data);
        return;
    }
    char path[4200], line[1024];
    snprintf(path, sizeof path, "%s/stderr.log", job->dir);
    if (p->spawn_error) {
        report_set_failed(r, 127, 0, p->spawn_error);
    } else if (p->term_signal) {
        char why[1200];
        const char *last = job__last_line(path, line, sizeof line);
        snprintf(why, sizeof why, "killed by signal %d%s%s", p->term_signal, *last ? ": " : "",
                 last);
        report_set_failed(r, -1, p->term_signal, why);
    } else if (p->exit_status != 0) {
        char why[1200];
        const char *last = job__last_line(path, line, sizeof line);
        if (*last)
            snprintf(why, sizeof why, "%s", last);
        else
            snprintf(why, sizeof why, "exit status %" PRId64, p->exit_status);
        report_set_failed(r, (int)p->exit_status, 0, why);
    } else {
        json_t *res = NULL;
        char why[600] = "";
        if (job->kind == REGMIX__JOB_KIND__JOB_KIND_BUILTIN) {
            res = json_incref(p->result);
            if (!res)
                snprintf(why, sizeof why, "trainer exited without a result line");
        } else {
            json_error_t jerr;
            snprintf(path, sizeof path, "%s/%s", job->dir, JOB_COMMAND_RESULT);
            res = json_load_file(path, 0, &jerr);
            if (!res)
                snprintf(why, sizeof why, "%s: %.400s",
                         access(path, F_OK) == 0 ? "invalid result file" : "no result file",
                         access(path, F_OK) == 0 ? jerr.text : path);
        }
        json_t *losses = res ? json_object_get(res, "losses") : NULL;
        if (res && !*why && (!json_is_object(losses) || json_object_size(losses) == 0))
            snprintf(why, sizeof why, "result has no \"losses\" object");
        const char *k;
        json_t *v;
        if (!*why) {
            json_object_foreach(losses, k, v)
            {
                if (!json_is_number(v) || !isfinite(json_number_value(v))) {
                    snprintf(why, sizeof why, "loss '%.200s' is not a finite number", k);
                    break;
                }
                report_value_add(&r->losses, &r->n_losses, k, json_number_value(v));
            }
        }
        json_t *bpb = res ? json_object_get(res, "bits_per_byte") : NULL;
        if (!*why && json_is_object(bpb)) {
            json_object_foreach(bpb, k, v)
            {
                if (json_is_number(v))
                    report_value_add(&r->bits_per_byte, &r->n_bits_per_byte, k,
                                     json_number_value(v));
            }
        }
        if (*why) {
            report_set_failed(r, 0, 0, why);
        } else {
            r->ok = 1;
            json_t *t = json_object_get(res, "tokens");
            if (json_is_number(t))
                r->tokens = (uint64_t)json_number_value(t);
            json_t *s = json_object_get(res, "seconds");
            if (json_is_number(s))
                r->seconds = json_number_value(s);
        }
        json_decref(res);
    }
    report_save(r); /* a failure to persist leaves the report in memory: the worker logs it */
    p->done_cb(job, p->data);
}

/* ---- progress pipe ---------------------------------------------------------------------------- */

static double job__num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* One JSON line of the progress pipe (child.h): the result, or progress to pass on. */
static void job__line(child_t *c, const char *s, size_t len, json_t *o, void *data)
{
    (void)c;
    (void)s;
    (void)len;
    job_t *job = data;
    struct job_private *p = job->priv;
    if (!o)
        return;
    const char *ev = json_string_value(json_object_get(o, "event"));
    if (ev && strcmp(ev, "result") == 0) {
        json_decref(p->result);
        p->result = json_incref(o);
        return;
    }
    json_t *evl = json_object_get(o, "eval_losses");
    if (!evl && ev && strcmp(ev, "eval") == 0)
        evl = json_object_get(o, "losses");
    int64_t now = clock_mono_ms();
    if (json_object_get(o, "step") && p->progress_cb &&
        (json_is_object(evl) || now - p->last_progress_ms >= JOB_PROGRESS_MIN_MS)) {
        p->last_progress_ms = now;
        Regmix__Progress pr = REGMIX__PROGRESS__INIT;
        pr.attempt_id = job->attempt_id;
        pr.step = (uint64_t)job__num(o, "step");
        pr.loss = job__num(o, "loss");
        pr.lr = job__num(o, "lr");
        pr.tokens = (uint64_t)job__num(o, "tokens");
        pr.tokens_per_second = job__num(o, "tokens_per_second");
        if (pr.tokens_per_second == 0)
            pr.tokens_per_second = job__num(o, "tok_per_s");
        size_t n = json_is_object(evl) ? json_object_size(evl) : 0;
        Regmix__DomainValue vals[64], *ptrs[64];
        const char *k;
        json_t *v;
        if (n) {
            json_object_foreach(evl, k, v)
            {
                if (pr.n_eval_losses >= 64 || !json_is_number(v))
                    continue;
                regmix__domain_value__init(&vals[pr.n_eval_losses]);
                vals[pr.n_eval_losses].name = (char *)k;
                vals[pr.n_eval_losses].value = json_number_value(v);
                ptrs[pr.n_eval_losses] = &vals[pr.n_eval_losses];
                pr.n_eval_losses++;
            }
            pr.eval_losses = ptrs;
        }
        p->progress_cb(job, &pr, p->data);
    }
}

/* ---- processes -------------------------------------------------------------------------------- */

static void job__timer_finish_cb(uv_timer_t *t)
{
    job__finish(t->data);
}

/* The process has exited and its pipe is drained (child.h): the report follows. */
static void job__end(child_t *c, int64_t status, int sig, void *data)
{
    (void)c;
    job_t *job = data;
    struct job_private *p = job->priv;
    p->child = NULL; /* child.h releases it after this call */
    p->exited = 1;
    p->exit_status = status;
    p->term_signal = sig;
    job__finish(job);
}

/* Appends `s` (copied) to a NULL-terminated vector being built. */
static int job__push(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 2) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    nv[*n] = s ? strdup(s) : NULL;
    if (s && !nv[*n])
        return -ENOMEM;
    nv[++*n] = NULL;
    return 0;
}

static void job__strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* regmix-train's argv for the assignment by common/trainargs.h, the module the coordinator's
 * launcher uses too: train_args_json and data_json are the spec's renderings, the weights and the
 * seed the run's; the progress pipe is fd 3. */
static int job__builtin_argv(job_t *job, char ***ret, char *why, size_t why_len)
{
    const Regmix__Assign *a = job->priv->a;
    const char **names = calloc(a->n_weights ? a->n_weights : 1, sizeof *names);
    double *w = calloc(a->n_weights ? a->n_weights : 1, sizeof *w);
    trainargs_t *t = NULL;
    int rc = names && w ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < a->n_weights; i++) {
        names[i] = a->weights[i]->domain;
        w[i] = a->weights[i]->weight;
    }
    if (rc == 0)
        rc = trainargs_from_json(a->train_args_json, a->data_json, names, w, a->n_weights, a->seed,
                                 &t, why, why_len);
    if (rc == 0)
        rc = trainargs_argv(t, job->priv->cfg.trainer, JOB_PROGRESS_FD, ret, why, why_len);
    trainargs_destroy(&t);
    free(names);
    free(w);
    return rc;
}

static int job__command_argv(job_t *job, char ***ret, size_t *n, char *why, size_t why_len)
{
    const Regmix__Assign *a = job->priv->a;
    if (!job->priv->cfg.allow_commands) {
        snprintf(why, why_len,
                 "command jobs are off on this worker (its operator starts it with "
                 "--allow-commands to run them)");
        return -EPERM;
    }
    if (a->n_argv == 0 || !a->argv[0][0]) {
        snprintf(why, why_len, "command job has an empty argv");
        return -EINVAL;
    }
    char run[32], attempt[32], seed[32], result[4200];
    snprintf(run, sizeof run, "%" PRIu64, a->run_id);
    snprintf(attempt, sizeof attempt, "%u", a->attempt_no);
    snprintf(seed, sizeof seed, "%" PRIu64, a->seed);
    snprintf(result, sizeof result, "%s/%s", job->dir, JOB_COMMAND_RESULT);
    char *wj = job__weights_json(a);
    const char *keys[] = {"run", "attempt", "seed", "weights_json", "workdir", "result", "sweep"};
    const char *vals[] = {run, attempt, seed, wj ? wj : "{}", job->dir, result, job->sweep_id};
    int rc = 0;
    for (size_t i = 0; i < a->n_argv && rc == 0; i++) {
        char *s = child_fill(a->argv[i], keys, vals, 7);
        rc = s ? job__push(ret, n, s) : -ENOMEM;
        free(s);
    }
    free(wj);
    return rc;
}

/* The worker's environment variables a job inherits: the basics a program needs, thread and
 * GPU library settings, sanitizer options. Nothing else (credentials, CREDENTIALS_DIRECTORY,
 * tokens, REGMIX_* of the worker) reaches a job: its environment is built, not inherited. */
static const char *const job__env_pass[] = {
        "PATH=",
        "HOME=",
        "USER=",
        "LOGNAME=",
        "SHELL=",
        "LANG=",
        "LC_",
        "TZ=",
        "TMPDIR=",
        "TERM=",
        "LD_LIBRARY_PATH=",
        "OMP_",
        "OPENBLAS_",
        "MKL_",
        "CUDA_",
        "NCCL_",
        "ASAN_OPTIONS=",
        "UBSAN_OPTIONS=",
        "LSAN_OPTIONS=",
        "MALLOC_PERTURB_=",
};

static int job__env_passes(const char *e)
{
    if (strncmp(e, "CUDA_VISIBLE_DEVICES=", 21) == 0)
        return 0; /* ours */
    for (size_t i = 0; i < sizeof job__env_pass / sizeof job__env_pass[0]; i++)
        if (strncmp(e, job__env_pass[i], strlen(job__env_pass[i])) == 0)
            return 1;
    return 0;
}

/* The passed part of environ, plus ours. */
static int job__env(job_t *job, char ***ret, size_t *n)
{
    const Regmix__Assign *a = job->priv->a;
    char *wj = job__weights_json(a);
    char buf[8][4400];
    snprintf(buf[0], sizeof buf[0], "REGMIX_RUN=%" PRIu64, a->run_id);
    snprintf(buf[1], sizeof buf[1], "REGMIX_ATTEMPT=%u", a->attempt_no);
    snprintf(buf[2], sizeof buf[2], "REGMIX_SEED=%" PRIu64, a->seed);
    snprintf(buf[3], sizeof buf[3], "REGMIX_RESULT=%s/%s", job->dir, JOB_COMMAND_RESULT);
    snprintf(buf[4], sizeof buf[4], "REGMIX_PROGRESS_FD=%d", JOB_PROGRESS_FD);
    snprintf(buf[5], sizeof buf[5], "REGMIX_WORKDIR=%s", job->dir);
    snprintf(buf[6], sizeof buf[6], "REGMIX_SWEEP=%s", job->sweep_id);
    int len = snprintf(buf[7], sizeof buf[7], "CUDA_VISIBLE_DEVICES=");
    for (size_t i = 0; i < a->n_gpu_indices && len < 4000; i++)
        len += snprintf(buf[7] + len, sizeof buf[7] - (size_t)len, "%s%u", i ? "," : "",
                        a->gpu_indices[i]);
    int rc = 0;
    for (char **e = environ; e && *e && rc == 0; e++)
        if (job__env_passes(*e))
            rc = job__push(ret, n, *e);
    for (int i = 0; i < 8 && rc == 0; i++)
        rc = job__push(ret, n, buf[i]);
    if (rc == 0) {
        char *w = malloc(strlen(wj ? wj : "{}") + 16);
        if (!w)
            rc = -ENOMEM;
        else {
            sprintf(w, "REGMIX_WEIGHTS=%s", wj ? wj : "{}");
            rc = job__push(ret, n, w);
            free(w);
        }
    }
    free(wj);
    return rc;
}

/* Spawns the job's process (child.h: its own process group, so a cancel reaches the children
 * of a shell script too; the progress pipe on fd 3); on failure sets p->spawn_error (delivered as
 * FAILED). */
static void job__spawn(job_t *job)
{
    struct job_private *p = job->priv;
    char why[512] = "", **argv = NULL, **env = NULL;
    size_t argc = 0, envc = 0;
    int rc = job->kind == REGMIX__JOB_KIND__JOB_KIND_BUILTIN
                     ? job__builtin_argv(job, &argv, why, sizeof why)
                     : job__command_argv(job, &argv, &argc, why, sizeof why);
    if (rc == 0)
        rc = job__env(job, &env, &envc);
    int out_fd = -1, err_fd = -1;
    if (rc == 0) {
        char path[4200];
        snprintf(path, sizeof path, "%s/stdout.log", job->dir);
        out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        snprintf(path, sizeof path, "%s/stderr.log", job->dir);
        err_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd < 0 || err_fd < 0) {
            rc = -errno;
            snprintf(why, sizeof why, "cannot open logs in %s: %s", job->dir, strerror(errno));
        }
    }
    if (rc == 0) {
        child_options_t o = {
                .argv = argv,
                .env = env,
                .cwd = job->dir,
                .stdout_fd = out_fd,
                .stderr_fd = err_fd,
                .progress_fd = JOB_PROGRESS_FD,
                .line_max = JOB_LINE_MAX,
                .eof_wait_ms = JOB_EOF_WAIT_MS,
                .own_group = 1,
                .kill_grace_ms = p->cfg.kill_grace_ms,
        };
        rc = child_start(p->loop, &o, job__line, job__end, job, &p->child);
        if (rc == 0)
            job->pid = child_pid(p->child);
        else
            snprintf(why, sizeof why, "cannot start %s: %s", argv[0], uv_strerror(rc));
    }
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0)
        close(err_fd);
    job__strv_free(argv);
    job__strv_free(env);
    if (rc != 0) {
        p->spawn_error = strdup(*why ? why : strerror(-rc));
        uv_timer_start(&p->timer, job__timer_finish_cb, 0, 0);
    }
}

/* ---- synthetic -------------------------------------------------------------------------------- */

static void job__synthetic_cb(uv_timer_t *t)
{
    job_t *job = t->data;
    struct job_private *p = job->priv;
    const Regmix__Assign *a = p->a;
    const Regmix__SyntheticJob *s = a->synthetic;
    /* The noise is a property of the run (its seed), so a retry reports the same loss; a
     * failure is a property of the attempt, so a retry may succeed. */
    rng_t rng, frng;
    rng_seed(&rng, a->seed ^ 0x5eed5eed5eed5eedULL);
    rng_seed(&frng, a->seed ^ ((uint64_t)a->attempt_no * 0x9e3779b97f4a7c15ULL));
    double fail_rate = s ? s->fail_rate : 0;
    double u = rng_uniform(&frng);
    double noise = s ? s->noise : 0;
    double z = rng_normal(&rng);
    job->finished = 1;
    report_t *r = &job->report;
    r->attempt_id = job->attempt_id;
    r->run_id = job->run_id;
    r->sweep_id = strdup(job->sweep_id);
    r->seconds = (double)(clock_mono_ms() - p->started_ms) / 1000.0;
    if (u < fail_rate) {
        report_set_failed(r, 1, 0, "synthetic failure (fail_rate)");
    } else {
        /* Reflected at 0: a loss is never negative (as a cross-entropy; the coordinator
         * refuses negative losses), and the bowl's minimum is unchanged. */
        double loss = fabs(
                job_synthetic_loss((const Regmix__DomainWeight *const *)a->weights, a->n_weights,
                                   s ? (const Regmix__DomainWeight *const *)s->optimum : NULL,
                                   s ? s->n_optimum : 0) +
                noise * z);
        r->ok = 1;
        report_value_add(&r->losses, &r->n_losses, "synthetic", loss);
        /* The same value as each domain's loss, as a trainer reports them: any
         * regression.target over the domains (a domain, mean, weights summing to 1) is then the
         * synthetic bowl, and the fit pipeline treats a synthetic sweep like any other. */
        for (size_t i = 0; i < a->n_weights; i++)
            if (a->weights[i] && a->weights[i]->domain)
                report_value_add(&r->losses, &r->n_losses, a->weights[i]->domain, loss);
    }
    /* No directory: the worker keeps synthetic reports in its outbox journal (report.h). */
    p->done_cb(job, p->data);
}

/* ---- public ----------------------------------------------------------------------------------- */

int job_start(uv_loop_t *loop,
              const job_config_t *cfg,
              const Regmix__Assign *a,
              job_progress_cb progress_cb,
              job_done_cb done_cb,
              void *data,
              job_t **ret)
{
    if (!a || a->attempt_id == 0 || !done_cb)
        return -EINVAL;
    job_t *job = calloc(1, sizeof *job);
    struct job_private *p = calloc(1, sizeof *p);
    if (!job || !p) {
        free(job);
        free(p);
        return -ENOMEM;
    }
    job->priv = p;
    p->loop = loop;
    p->cfg = *cfg;
    p->progress_cb = progress_cb;
    p->done_cb = done_cb;
    p->data = data;
    p->started_ms = clock_mono_ms();
    /* An owned deep copy of the assignment, through its own wire form. */
    size_t len = regmix__assign__get_packed_size(a);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) {
        regmix__assign__pack(a, buf);
        p->a = regmix__assign__unpack(NULL, len, buf);
        free(buf);
    }
    char safe[256], dir[4096];
    job__safe_name(a->sweep_id ? a->sweep_id : "", safe, sizeof safe);
    snprintf(dir, sizeof dir, "%s/%s/%" PRIu64 "-%u", cfg->workdir, safe, a->run_id, a->attempt_no);
    job->attempt_id = a->attempt_id;
    job->run_id = a->run_id;
    job->attempt_no = a->attempt_no;
    job->kind = a->kind;
    job->sweep_id = strdup(a->sweep_id ? a->sweep_id : "");
    job->dir = strdup(dir);
    if (!p->a || !job->sweep_id || !job->dir) {
        p->destroyed = 1;
        job__free(job);
        return -ENOMEM;
    }
    uv_timer_init(loop, &p->timer);
    p->timer.data = job;
    p->handles = 1;

    switch (a->kind) {
    case REGMIX__JOB_KIND__JOB_KIND_SYNTHETIC:
        uv_timer_start(&p->timer, job__synthetic_cb, a->synthetic ? a->synthetic->delay_ms : 0, 0);
        break;
    case REGMIX__JOB_KIND__JOB_KIND_BUILTIN:
    case REGMIX__JOB_KIND__JOB_KIND_COMMAND: {
        int mrc = child_mkdirs(dir, 0755);
        if (mrc < 0) {
            char why[4400];
            snprintf(why, sizeof why, "cannot create job directory %s: %s", dir, strerror(-mrc));
            p->spawn_error = strdup(why);
            uv_timer_start(&p->timer, job__timer_finish_cb, 0, 0);
        } else {
            job__spawn(job);
        }
        break;
    }
    default:
        p->spawn_error = strdup("unknown job kind");
        uv_timer_start(&p->timer, job__timer_finish_cb, 0, 0);
        break;
    }
    *ret = job;
    return 0;
}

void job_cancel(job_t *job)
{
    if (!job || job->finished || job->cancelled)
        return;
    struct job_private *p = job->priv;
    job->cancelled = 1;
    if (p->child) {
        child_stop(p->child); /* SIGTERM to the group, SIGKILL after the grace period */
    } else {
        uv_timer_stop(&p->timer);
        uv_timer_start(&p->timer, job__timer_finish_cb, 0, 0);
    }
}

void job_destroy(job_t **job_p)
{
    job_t *job = job_p ? *job_p : NULL;
    if (!job)
        return;
    *job_p = NULL;
    struct job_private *p = job->priv;
    child_close(&p->child); /* a running process is killed; no callback follows */
    p->destroyed = 1;
    uv_timer_stop(&p->timer);
    job__close(job, (uv_handle_t *)&p->timer);
}
