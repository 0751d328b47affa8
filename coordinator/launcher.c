/*
 * launcher.c: rendering of the target launch and the process runner (see launcher.h).
 */
#include "launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "config.h"
#include "linebuf.h"
#include "strv.h"
#include "trainargs.h"

/* ---- argv building ---------------------------------------------------------------------------- */

void launcher_argv_free(char **argv)
{
    strv_free(argv);
}

int launcher_argv_len(char *const *argv)
{
    int n = 0;
    while (argv && argv[n])
        n++;
    return n;
}

/* A growing string; oom sticks. */
typedef struct launcher__buf {
    char *s;
    size_t len, cap;
    int oom;
} launcher__buf_t;

static void buf_add(launcher__buf_t *b, const char *x, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, x, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_puts(launcher__buf_t *b, const char *x)
{
    buf_add(b, x, strlen(x));
}

__attribute__((format(printf, 2, 3))) static void
buf_printf(launcher__buf_t *b, const char *fmt, ...)
{
    char tmp[8192];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= sizeof tmp) {
        b->oom = 1;
        return;
    }
    buf_add(b, tmp, (size_t)w);
}

static char *buf_take(launcher__buf_t *b)
{
    if (b->oom || !b->s) {
        free(b->s);
        return NULL;
    }
    return b->s;
}

/* 'x' for sh, with ' as '\''. */
static void buf_shell_quote(launcher__buf_t *b, const char *x)
{
    buf_puts(b, "'");
    for (const char *p = x; *p; p++) {
        if (*p == '\'')
            buf_puts(b, "'\\''");
        else
            buf_add(b, p, 1);
    }
    buf_puts(b, "'");
}

/* A JSON string literal, which is also a YAML double-quoted scalar. */
static void buf_json_quote(launcher__buf_t *b, const char *x)
{
    json_t *s = json_string(x);
    char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    if (!q)
        b->oom = 1;
    else
        buf_puts(b, q);
    free(q);
    json_decref(s);
}

/* ---- weights ---------------------------------------------------------------------------------- */

char *launcher_weights_text(const spec_t *spec, const double *weights)
{
    launcher__buf_t b = {0};
    for (int i = 0; i < spec->ndomains; i++)
        buf_printf(&b, "%s%s=%.10g", i ? "," : "", spec->domains[i].name, weights[i]);
    return buf_take(&b);
}

char *launcher_weights_json(const spec_t *spec, const double *weights)
{
    json_t *o = json_object();
    for (int i = 0; o && i < spec->ndomains; i++)
        json_object_set_new(o, spec->domains[i].name, json_real(weights[i]));
    char *s =
            o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    return s;
}

void launcher_prior_weights(const spec_t *spec, double *ret)
{
    for (int i = 0; i < spec->ndomains; i++)
        ret[i] = spec->domains[i].prior;
}

/* ---- the trainer ------------------------------------------------------------------------------ */

/* The trainer's arguments for ctx: the target stage of the spec (trainargs.h, the same module
 * the worker uses for proxies), with the checkpoint in the work directory. */
static int
launcher__trainargs(const launcher_ctx_t *ctx, trainargs_t **ret, char *err, size_t errlen)
{
    const spec_t *spec = ctx->spec;
    if (!spec || !ctx->weights || !ctx->workdir) {
        snprintf(err, errlen, "launcher: spec, weights and workdir are required");
        return -EINVAL;
    }
    trainargs_t *t = NULL;
    int rc = trainargs_from_spec(spec, SPEC_STAGE_TARGET, ctx->weights, ctx->seed,
                                 spec->target.ranks, &t, err, errlen);
    if (rc == 0 && trainargs_set_checkpoint(t, ctx->workdir) < 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = trainargs_check(t, err, errlen);
    if (rc < 0) {
        trainargs_destroy(&t);
        return rc;
    }
    *ret = t;
    return 0;
}

int launcher_trainer_argv(
        const launcher_ctx_t *ctx, int progress_fd, char ***ret, char *err, size_t errlen)
{
    trainargs_t *t = NULL;
    if (!ret) {
        snprintf(err, errlen, "launcher: no output");
        return -EINVAL;
    }
    int rc = launcher__trainargs(ctx, &t, err, errlen);
    if (rc == 0)
        rc = trainargs_argv(t, ctx->trainer && ctx->trainer[0] ? ctx->trainer : "regmix-train",
                            progress_fd, ret, err, errlen);
    trainargs_destroy(&t);
    return rc;
}

/* The trainer options as one JSON object that `regmix-train --config` accepts (YAML ⊇ JSON). */
static char *launcher__config_json(const launcher_ctx_t *ctx, int progress_fd)
{
    char err[256];
    trainargs_t *t = NULL;
    if (launcher__trainargs(ctx, &t, err, sizeof err) < 0)
        return NULL;
    char *s = trainargs_config_json(t, progress_fd, err, sizeof err);
    trainargs_destroy(&t);
    return s;
}

/* ---- mpirun ----------------------------------------------------------------------------------- */

static int launcher__mpirun_argv(const launcher_ctx_t *ctx, char ***ret, char *err, size_t errlen)
{
    const spec_target_t *tg = &ctx->spec->target;
    char **tr = NULL;
    int rc = launcher_trainer_argv(ctx, 1, &tr, err, errlen);
    if (rc < 0)
        return rc;
    strv_t s = {0};
    strv_push(&s, ctx->mpirun && ctx->mpirun[0] ? ctx->mpirun : REGMIX_MPIRUN);
    strv_push(&s, "-np");
    strv_pushf(&s, "%d", tg->ranks > 0 ? tg->ranks : 1);
    if (tg->nhosts > 0) {
        launcher__buf_t h = {0};
        for (int i = 0; i < tg->nhosts; i++)
            buf_printf(&h, "%s%s", i ? "," : "", tg->hosts[i]);
        char *hs = buf_take(&h);
        strv_push(&s, "--host");
        strv_push(&s, hs ? hs : "");
        s.oom |= !hs;
        free(hs);
    } else if (tg->hostfile && tg->hostfile[0]) {
        strv_push(&s, "--hostfile");
        strv_push(&s, tg->hostfile);
    }
    if (ctx->as_root)
        strv_push(&s, "--allow-run-as-root");
    if (ctx->oversubscribe)
        strv_push(&s, "--oversubscribe");
    for (char **p = tr; *p; p++)
        strv_push(&s, *p);
    launcher_argv_free(tr);
    char **v = strv_take(&s);
    if (!v)
        return -ENOMEM;
    *ret = v;
    return 0;
}

/* ---- command ---------------------------------------------------------------------------------- */

static int launcher__command_argv(const launcher_ctx_t *ctx, char ***ret, char *err, size_t errlen)
{
    const spec_t *spec = ctx->spec;
    if (spec->target.ncommand < 1) {
        snprintf(err, errlen, "target.command is required for launcher: command");
        return -EINVAL;
    }
    char **tr = NULL;
    int rc = launcher_trainer_argv(ctx, 3, &tr, err, errlen);
    if (rc < 0)
        return rc;
    launcher__buf_t q = {0};
    for (char **p = tr; *p; p++) {
        if (p != tr)
            buf_puts(&q, " ");
        buf_shell_quote(&q, *p);
    }
    launcher_argv_free(tr);
    char *trainer_argv = buf_take(&q);
    char *wt = launcher_weights_text(spec, ctx->weights);
    char *wj = launcher_weights_json(spec, ctx->weights);
    char *tj = spec_train_json(spec, SPEC_STAGE_TARGET);
    char *dj = spec_domains_json(spec);
    char *cj = launcher__config_json(ctx, 3);
    char ranks[16], seed[32], ck[PATH_MAX + 16];
    snprintf(ranks, sizeof ranks, "%d", spec->target.ranks > 0 ? spec->target.ranks : 1);
    snprintf(seed, sizeof seed, "%" PRIu64, ctx->seed);
    snprintf(ck, sizeof ck, "%s/checkpoint", ctx->workdir);
    const char *keys[] = {"trainer_argv", "weights",      "weights_json", "ranks", "workdir",
                          "checkpoint",   "progress_fd",  "seed",         "sweep", "role",
                          "train_json",   "domains_json", "config_json"};
    const char *vals[] = {trainer_argv,
                          wt,
                          wj,
                          ranks,
                          ctx->workdir,
                          ck,
                          "3",
                          seed,
                          ctx->sweep_id ? ctx->sweep_id : "",
                          ctx->role ? ctx->role : "target",
                          tj,
                          dj,
                          cj};
    strv_t s = {0};
    rc = 0;
    if (!trainer_argv || !wt || !wj || !tj || !dj || !cj)
        rc = -ENOMEM;
    for (int i = 0; rc == 0 && i < spec->target.ncommand; i++) {
        char *a = child_fill(spec->target.command[i], keys, vals, 13);
        if (!a) {
            rc = -ENOMEM;
            break;
        }
        strv_push(&s, a);
        free(a);
    }
    free(trainer_argv);
    free(wt);
    free(wj);
    free(tj);
    free(dj);
    free(cj);
    char **v = strv_take(&s);
    if (rc == 0 && !v)
        rc = -ENOMEM;
    if (rc < 0) {
        launcher_argv_free(v);
        return rc;
    }
    *ret = v;
    return 0;
}

/* ---- slurm and kubernetes --------------------------------------------------------------------- */

/* A name from sweep and role: [a-z0-9-], starting with a letter, at most 63 characters (a
 * Kubernetes object name and a readable Slurm job name). */
static void launcher__job_name(const launcher_ctx_t *ctx, char *buf, size_t len)
{
    char raw[256];
    snprintf(raw, sizeof raw, "regmix-%s-%s",
             ctx->sweep_id && ctx->sweep_id[0] ? ctx->sweep_id : "sweep",
             ctx->role && ctx->role[0] ? ctx->role : "target");
    size_t o = 0;
    for (size_t i = 0; raw[i] && o + 1 < len && o < 63; i++) {
        char c = raw[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            c = '-';
        if (c == '-' && o > 0 && buf[o - 1] == '-')
            continue;
        buf[o++] = c;
    }
    while (o > 0 && buf[o - 1] == '-')
        o--;
    buf[o] = '\0';
}

char *launcher_slurm_script(const launcher_ctx_t *ctx, char *err, size_t errlen)
{
    const spec_target_t *tg = &ctx->spec->target;
    char **tr = NULL;
    if (launcher_trainer_argv(ctx, 1, &tr, err, errlen) < 0)
        return NULL;
    char name[64];
    launcher__job_name(ctx, name, sizeof name);
    launcher__buf_t b = {0};
    buf_puts(&b, "#!/bin/bash\n");
    buf_printf(&b, "#SBATCH --job-name=%s\n", name);
    buf_printf(&b, "#SBATCH --ntasks=%d\n", tg->ranks > 0 ? tg->ranks : 1);
    if (tg->nhosts > 0) {
        buf_puts(&b, "#SBATCH --nodelist=");
        for (int i = 0; i < tg->nhosts; i++)
            buf_printf(&b, "%s%s", i ? "," : "", tg->hosts[i]);
        buf_puts(&b, "\n");
    }
    buf_printf(&b, "#SBATCH --output=%s/slurm-%%j.out\n", ctx->workdir);
    buf_printf(&b, "#SBATCH --error=%s/slurm-%%j.err\n", ctx->workdir);
    buf_printf(&b, "# Rendered by regmix-coordinator: the %s run of sweep %s (docs/targets.md).\n",
               ctx->role ? ctx->role : "target", ctx->sweep_id ? ctx->sweep_id : "?");
    buf_puts(&b,
             "# Progress (JSON lines from rank 0) goes to the .out file; the checkpoint makes a\n"
             "# resubmitted job continue where it stopped. The ranks are one MPI job through\n"
             "# Slurm's PMIx plugin (Open MPI 4 links PMIx); REGMIX_SRUN_MPI in the submitting\n"
             "# environment names another (`srun --mpi=list` shows this cluster's).\n");
    buf_puts(&b, "set -euo pipefail\n");
    buf_printf(&b, "mkdir -p ");
    buf_shell_quote(&b, ctx->workdir);
    buf_puts(&b, "\nexec srun --mpi=\"${REGMIX_SRUN_MPI:-pmix}\"");
    for (char **p = tr; *p; p++) {
        buf_puts(&b, " \\\n    ");
        buf_shell_quote(&b, *p);
    }
    buf_puts(&b, "\n");
    launcher_argv_free(tr);
    char *s = buf_take(&b);
    if (!s)
        snprintf(err, errlen, "out of memory");
    return s;
}

char *launcher_mpijob_yaml(const launcher_ctx_t *ctx, char *err, size_t errlen)
{
    const spec_target_t *tg = &ctx->spec->target;
    if (!tg->image || !tg->image[0]) {
        snprintf(err, errlen, "target.image is required for launcher: kubernetes");
        return NULL;
    }
    launcher_ctx_t c2 = *ctx;
    c2.mpirun = "mpirun";
    c2.as_root = 0;
    c2.oversubscribe = 0;
    char **mv = NULL;
    if (launcher__mpirun_argv(&c2, &mv, err, errlen) < 0)
        return NULL;
    char name[64];
    launcher__job_name(ctx, name, sizeof name);
    int ranks = tg->ranks > 0 ? tg->ranks : 1;
    launcher__buf_t b = {0};
    buf_printf(&b, "# Rendered by regmix-coordinator: the %s run of sweep %s (docs/targets.md).\n",
               ctx->role ? ctx->role : "target", ctx->sweep_id ? ctx->sweep_id : "?");
    buf_puts(&b, "apiVersion: kubeflow.org/v2beta1\nkind: MPIJob\nmetadata:\n  name: ");
    buf_puts(&b, name);
    buf_puts(&b, "\n  namespace: ");
    buf_json_quote(&b, tg->namespace_ && tg->namespace_[0] ? tg->namespace_ : "default");
    buf_puts(&b, "\n  labels:\n    app.kubernetes.io/name: regmix-target\n"
                 "    app.kubernetes.io/part-of: regmix\n    regmix/role: ");
    buf_json_quote(&b, ctx->role ? ctx->role : "target");
    buf_puts(&b, "\nspec:\n  slotsPerWorker: 1\n  mpiImplementation: OpenMPI\n"
                 "  runPolicy:\n    cleanPodPolicy: Running\n    backoffLimit: 2\n"
                 "  mpiReplicaSpecs:\n    Launcher:\n      replicas: 1\n      template:\n"
                 "        spec:\n          containers:\n            - name: launcher\n"
                 "              image: ");
    buf_json_quote(&b, tg->image);
    buf_puts(&b, "\n              command:\n");
    for (char **p = mv; *p; p++) {
        buf_puts(&b, "                - ");
        buf_json_quote(&b, *p);
        buf_puts(&b, "\n");
    }
    buf_printf(&b,
               "    Worker:\n      replicas: %d\n      template:\n        spec:\n"
               "          containers:\n            - name: worker\n              image: ",
               ranks);
    buf_json_quote(&b, tg->image);
    buf_puts(&b, "\n");
    launcher_argv_free(mv);
    char *s = buf_take(&b);
    if (!s)
        snprintf(err, errlen, "out of memory");
    return s;
}

/* ---- plan ------------------------------------------------------------------------------------- */

/* Resolves a tool: `given` NULL → PATH lookup of `name`; "" → absent; else `given`. Writes the
 * program into buf and returns 1 when present. */
static int launcher__tool(const char *given, const char *name, char *buf, size_t len)
{
    if (given) {
        snprintf(buf, len, "%s", given);
        return given[0] != '\0';
    }
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    const char *p = path;
    while (*p) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0 && (size_t)snprintf(buf, len, "%.*s/%s", (int)n, p, name) < len &&
            access(buf, X_OK) == 0)
            return 1;
        p += n + (e ? 1 : 0);
    }
    return 0;
}

void launcher_plan_clear(launcher_plan_t *plan)
{
    if (!plan)
        return;
    launcher_argv_free(plan->argv);
    free(plan->workdir);
    free(plan->file_path);
    free(plan->file_text);
    free(plan->message);
    free(plan->progress_path);
    memset(plan, 0, sizeof *plan);
}

static char *launcher__strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *launcher__strf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int w = vasprintf(&s, fmt, ap);
    va_end(ap);
    return w < 0 ? NULL : s;
}

int launcher_plan_make(const launcher_ctx_t *ctx, launcher_plan_t *ret, char *err, size_t errlen)
{
    if (!ctx || !ctx->spec || !ctx->weights || !ctx->workdir || !ret) {
        snprintf(err, errlen, "launcher: spec, weights and workdir are required");
        return -EINVAL;
    }
    const spec_target_t *tg = &ctx->spec->target;
    const char *role = ctx->role ? ctx->role : "target";
    launcher_plan_t p = {.progress_fd = -1};
    int rc = 0;
    char tool[PATH_MAX];
    switch (tg->launcher) {
    case SPEC_LAUNCHER_MPIRUN:
        rc = launcher__mpirun_argv(ctx, &p.argv, err, errlen);
        p.progress_fd = 1;
        if (rc == 0)
            p.message = launcher__strf("mpirun -np %d (%s) in %s", tg->ranks,
                                       tg->nhosts                          ? "hosts"
                                       : (tg->hostfile && tg->hostfile[0]) ? "hostfile"
                                                                           : "local",
                                       ctx->workdir);
        break;
    case SPEC_LAUNCHER_COMMAND:
        rc = launcher__command_argv(ctx, &p.argv, err, errlen);
        p.progress_fd = 3;
        if (rc == 0)
            p.message = launcher__strf("command %s in %s", p.argv[0], ctx->workdir);
        break;
    case SPEC_LAUNCHER_SLURM:
    case SPEC_LAUNCHER_KUBERNETES: {
        int slurm = tg->launcher == SPEC_LAUNCHER_SLURM;
        p.file_text = slurm ? launcher_slurm_script(ctx, err, errlen)
                            : launcher_mpijob_yaml(ctx, err, errlen);
        if (!p.file_text) {
            rc = -EINVAL;
            break;
        }
        p.file_path =
                launcher__strf("%s/%s%s", ctx->workdir, role, slurm ? ".sbatch" : "-mpijob.yaml");
        launcher__job_name(ctx, p.job_name, sizeof p.job_name);
        if (!slurm)
            snprintf(p.job_namespace, sizeof p.job_namespace, "%s",
                     tg->namespace_ && tg->namespace_[0] ? tg->namespace_ : "default");
        int have = launcher__tool(slurm ? ctx->sbatch : ctx->kubectl, slurm ? "sbatch" : "kubectl",
                                  tool, sizeof tool);
        if (have) {
            strv_t s = {0};
            strv_push(&s, tool);
            if (!slurm) {
                strv_push(&s, "apply");
                strv_push(&s, "-f");
            } else {
                strv_push(&s, "--parsable"); /* prints JOBID[;CLUSTER]: the handle */
            }
            strv_push(&s, p.file_path ? p.file_path : "");
            p.argv = strv_take(&s);
            p.submits = 1;
            p.message = launcher__strf("%s %s", slurm ? "sbatch" : "kubectl apply -f", p.file_path);
        } else {
            p.message =
                    launcher__strf("%s not found on this host: rendered %s; submit it with `%s %s`",
                                   slurm ? "sbatch" : "kubectl", p.file_path,
                                   slurm ? "sbatch" : "kubectl apply -f", p.file_path);
        }
        if (!p.file_path || (have && !p.argv))
            rc = -ENOMEM;
        break;
    }
    default:
        snprintf(err, errlen, "launcher: unknown launcher %d", (int)tg->launcher);
        rc = -EINVAL;
    }
    if (rc == 0 && (!p.message || !(p.workdir = strdup(ctx->workdir))))
        rc = -ENOMEM;
    if (rc == 0 && tg->launcher != SPEC_LAUNCHER_SLURM &&
        !(p.progress_path = launcher__strf(
                  "%s/%s%s", ctx->workdir, role,
                  tg->launcher == SPEC_LAUNCHER_KUBERNETES ? "-launcher.log" : ".progress")))
        rc = -ENOMEM;
    if (rc < 0) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        launcher_plan_clear(&p);
        return rc;
    }
    *ret = p;
    return 0;
}

int launcher_plan_write(const launcher_plan_t *plan, char *err, size_t errlen)
{
    if (plan->workdir) {
        int rc = child_mkdirs(plan->workdir, 0755);
        if (rc < 0) {
            snprintf(err, errlen, "%s: %s", plan->workdir, strerror(-rc));
            return rc;
        }
    }
    if (!plan->file_path || !plan->file_text)
        return 0;
    char dir[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s", plan->file_path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = child_mkdirs(dir, 0755);
        if (rc < 0) {
            snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
            return rc;
        }
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", plan->file_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(e));
        return -e;
    }
    size_t len = strlen(plan->file_text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, plan->file_text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            snprintf(err, errlen, "%s: %s", tmp, strerror(e));
            return -e;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, plan->file_path) < 0) {
        int e = errno;
        unlink(tmp);
        snprintf(err, errlen, "%s: %s", plan->file_path, strerror(e));
        return -e;
    }
    return 0;
}

/* ---- progress files --------------------------------------------------------------------------- */

#define LAUNCHER_LINE_MAX (1u << 20) /* longer progress lines are dropped */
#define LAUNCHER_READ_MAX (4u << 20) /* bytes read from a progress file per call */

struct launcher_tail {
    char *path;
    off_t offset;
    linebuf_t *lines; /* the partial line at offset */
    launcher_outcome_t out;
};

static void launcher__outcome_clear(launcher_outcome_t *o)
{
    for (int i = 0; i < o->nlosses; i++)
        free(o->loss_names[i]);
    free(o->loss_names);
    free(o->losses);
    o->loss_names = NULL;
    o->losses = NULL;
    o->nlosses = 0;
}

static void launcher__result(launcher_outcome_t *o, json_t *losses)
{
    launcher__outcome_clear(o);
    size_t n = json_object_size(losses);
    o->has_result = 1;
    if (n == 0)
        return;
    o->loss_names = calloc(n, sizeof *o->loss_names);
    o->losses = calloc(n, sizeof *o->losses);
    if (!o->loss_names || !o->losses)
        return;
    const char *k;
    json_t *v;
    json_object_foreach(losses, k, v)
    {
        char *name = strdup(k);
        if (!name)
            break;
        o->loss_names[o->nlosses] = name;
        o->losses[o->nlosses++] = json_is_number(v) ? json_number_value(v) : NAN;
    }
}

/* One line of a progress file: JSON progress events are reported, anything else (a rank's own
 * output on mpirun's stdout) is skipped. */
/* What launcher_tail_read() hands its line callback. */
typedef struct launcher__reading {
    launcher_tail_t *t;
    launcher_line_cb cb;
    void *data;
} launcher__reading_t;

static void launcher__line(const char *s, size_t n, const char *error, void *data)
{
    const launcher__reading_t *r = data;
    launcher_tail_t *t = r->t;
    if (error)
        return;
    json_error_t je;
    json_t *o = n > 0 && s[0] == '{' ? json_loadb(s, n, 0, &je) : NULL;
    const char *ev = o ? json_string_value(json_object_get(o, "event")) : NULL;
    if (!ev) {
        json_decref(o);
        return;
    }
    t->out.progress_lines++;
    launcher_progress_t p = {.event = ev, .step = -1, .loss = NAN, .line = s};
    json_t *st = json_object_get(o, "step");
    if (json_is_integer(st))
        p.step = json_integer_value(st);
    if (strcmp(ev, "step") == 0) {
        json_t *l = json_object_get(o, "loss");
        if (json_is_number(l))
            p.loss = json_number_value(l);
    } else if (strcmp(ev, "eval") == 0 || strcmp(ev, "result") == 0) {
        json_t *ls = json_object_get(o, "losses");
        double sum = 0;
        size_t cnt = 0;
        const char *k;
        json_t *v;
        json_object_foreach(ls, k, v)
        {
            if (json_is_number(v)) {
                sum += json_number_value(v);
                cnt++;
            }
        }
        if (cnt)
            p.loss = sum / (double)cnt;
        if (strcmp(ev, "result") == 0 && json_is_object(ls))
            launcher__result(&t->out, ls);
    }
    if (r->cb)
        r->cb(&p, r->data);
    json_decref(o);
}

int launcher_tail_new(const char *path, launcher_tail_t **ret)
{
    launcher_tail_t *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path)) || linebuf_new(LAUNCHER_LINE_MAX, &t->lines) < 0) {
        if (t)
            free(t->path);
        free(t);
        return -ENOMEM;
    }
    *ret = t;
    return 0;
}

void launcher_tail_destroy(launcher_tail_t **self_p)
{
    launcher_tail_t *t = self_p ? *self_p : NULL;
    if (!t)
        return;
    launcher__outcome_clear(&t->out);
    linebuf_destroy(&t->lines);
    free(t->path);
    free(t);
    *self_p = NULL;
}

const char *launcher_tail_path(const launcher_tail_t *t)
{
    return t->path;
}

const launcher_outcome_t *launcher_tail_outcome(const launcher_tail_t *t)
{
    return &t->out;
}

int launcher_tail_read(launcher_tail_t *t, int final, launcher_line_cb cb, void *data)
{
    int fd = open(t->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size < t->offset) {
        /* the file was replaced (a fresh `kubectl logs`, a truncated log): read it again */
        t->offset = 0;
        linebuf_reset(t->lines);
    }
    launcher__reading_t r = {t, cb, data};
    uint64_t before = t->out.progress_lines;
    static __thread char chunk[65536];
    size_t total = 0;
    int rc = 0;
    while (total < LAUNCHER_READ_MAX) {
        ssize_t n = pread(fd, chunk, sizeof chunk, t->offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        t->offset += n;
        total += (size_t)n;
        linebuf_feed(t->lines, chunk, (size_t)n, launcher__line, &r);
    }
    close(fd);
    if (final) /* a last line without '\n' */
        linebuf_finish(t->lines, launcher__line, &r);
    return rc < 0 ? rc : (int)(t->out.progress_lines - before);
}

/* ---- runner ----------------------------------------------------------------------------------- */

#define LAUNCHER_TAIL_MS 200 /* how often a running launch's progress file is read */

/* The process is a child.h child (spawn, session, signals, exit); this adds the log, the
 * progress file's tail and the outcome. */
struct launcher_run {
    child_t *child; /* NULL once it has exited */
    uv_timer_t timer;
    int open_handles;
    int exited;
    int log_fd, progress_file_fd;
    launcher_tail_t *tail;
    launcher_progress_cb on_progress;
    launcher_exit_cb on_exit;
    void *data;
    launcher_outcome_t out;
    char mpi_tmp[32]; /* this launch's own Open MPI session directory base ("" if none) */
    char **envp;      /* the child's environment (environ plus OMPI_MCA_orte_tmpdir_base) */
};

static int launcher__rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static void launcher__free(launcher_run_t *r)
{
    if (r->mpi_tmp[0])
        nftw(r->mpi_tmp, launcher__rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (r->envp)
        for (char **e = r->envp; *e; e++)
            free(*e);
    free(r->envp);
    launcher_tail_destroy(&r->tail);
    if (r->log_fd >= 0)
        close(r->log_fd);
    if (r->progress_file_fd >= 0)
        close(r->progress_file_fd);
    free(r);
}

static void launcher__closed(uv_handle_t *h)
{
    launcher_run_t *r = h->data;
    if (--r->open_handles == 0)
        launcher__free(r);
}

static void launcher__progress(const launcher_progress_t *p, void *data)
{
    launcher_run_t *r = data;
    if (r->on_progress)
        r->on_progress(r, p, r->data);
}

static void launcher__tick(uv_timer_t *t)
{
    launcher_run_t *r = t->data;
    if (r->tail)
        launcher_tail_read(r->tail, 0, launcher__progress, r);
}

static void launcher__exit(child_t *c, int64_t status, int sig, void *data)
{
    (void)c;
    launcher_run_t *r = data;
    r->child = NULL; /* child.h releases it after this call */
    r->exited = 1;
    uv_timer_stop(&r->timer);
    launcher_outcome_t o = {.exit_status = status, .term_signal = sig};
    if (r->tail) {
        launcher_tail_read(r->tail, 1, launcher__progress, r);
        const launcher_outcome_t *t = launcher_tail_outcome(r->tail);
        o.has_result = t->has_result;
        o.nlosses = t->nlosses;
        o.loss_names = t->loss_names;
        o.losses = t->losses;
        o.progress_lines = t->progress_lines;
    }
    if (r->on_exit)
        r->on_exit(r, &o, r->data);
    r->on_exit = NULL;
    uv_close((uv_handle_t *)&r->timer, launcher__closed);
}

extern char **environ;

/* A copy of environ with OMPI_MCA_orte_tmpdir_base set to a new directory (written to tmp), or
 * NULL (inherit environ) when that cannot be made. */
static char **launcher__child_env(char *tmp, size_t tmplen)
{
    snprintf(tmp, tmplen, "/tmp/regmix-mpi-XXXXXX");
    if (!mkdtemp(tmp)) {
        tmp[0] = '\0';
        return NULL;
    }
    static const char key[] = "OMPI_MCA_orte_tmpdir_base=";
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 2, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], key, sizeof key - 1) == 0)
            continue;
        if (!(envp[k++] = strdup(environ[i])))
            goto fail;
    }
    if (asprintf(&envp[k], "%s%s", key, tmp) < 0) {
        envp[k] = NULL;
        goto fail;
    }
    return envp;
fail:
    for (size_t i = 0; envp[i]; i++)
        free(envp[i]);
    free(envp);
    return NULL;
}

int launcher_run_start(uv_loop_t *loop,
                       char *const *argv,
                       int progress_fd,
                       const char *progress_path,
                       const char *log_path,
                       const char *cwd,
                       launcher_progress_cb on_progress,
                       launcher_exit_cb on_exit,
                       void *data,
                       launcher_run_t **ret)
{
    if (!loop || !argv || !argv[0] || !on_exit ||
        (progress_fd != -1 && progress_fd != 1 && progress_fd != 3) ||
        (progress_fd >= 0 && !progress_path))
        return -EINVAL;
    launcher_run_t *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->log_fd = -1;
    r->progress_file_fd = -1;
    r->on_progress = on_progress;
    r->on_exit = on_exit;
    r->data = data;
    int rc = 0;
    if (log_path) {
        r->log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (r->log_fd < 0)
            rc = -errno;
    }
    if (rc == 0 && progress_fd >= 0) {
        r->progress_file_fd = open(progress_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (r->progress_file_fd < 0)
            rc = -errno;
        else
            rc = launcher_tail_new(progress_path, &r->tail);
        /* a relaunch appends to the file: report only what this process writes */
        struct stat st;
        if (rc == 0 && fstat(r->progress_file_fd, &st) == 0)
            r->tail->offset = st.st_size;
    }
    if (rc < 0) {
        launcher__free(r);
        return rc;
    }
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->open_handles = 1;

    /* Open MPI 4 keeps a session directory under one shared base (/tmp); two mpiruns started
     * together (target and baseline) race creating it and one fails in orte_init. Each launch
     * gets its own short base, removed when the run is freed. Other launchers ignore it. */
    r->envp = launcher__child_env(r->mpi_tmp, sizeof r->mpi_tmp);
    child_options_t opt = {
            .argv = argv,
            .env = r->envp,
            .cwd = cwd,
            .stdout_fd = r->log_fd,
            .stderr_fd = r->log_fd,
            .progress_fd = progress_fd,
            .progress_file = r->progress_file_fd,
            /* its own session: a signal to the coordinator's process group (a terminal's ^C)
             * does not reach it, and it outlives a coordinator that dies (follow.h); signals go
             * to the launcher alone (mpirun forwards SIGTERM to its ranks) */
            .own_group = 1,
            .signal_pid_only = 1,
    };
    rc = child_start(loop, &opt, NULL, launcher__exit, r, &r->child);
    if (rc < 0) {
        r->on_exit = NULL;
        uv_close((uv_handle_t *)&r->timer, launcher__closed);
        return rc;
    }
    if (r->tail)
        uv_timer_start(&r->timer, launcher__tick, LAUNCHER_TAIL_MS, LAUNCHER_TAIL_MS);
    if (ret)
        *ret = r;
    return 0;
}

int launcher_run_pid(const launcher_run_t *run)
{
    return run->child ? child_pid(run->child) : 0;
}

int launcher_run_kill(launcher_run_t *run, int signum)
{
    if (run->exited || !run->child)
        return -ESRCH;
    return child_signal(run->child, signum);
}
