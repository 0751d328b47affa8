/*
 * job: one attempt running on this worker (docs/protocol.md), from ASSIGN to a report.
 *
 * Three kinds (Assign.kind): BUILTIN spawns regmix-train with flags built from the assignment by
 * common/trainargs.h (the coordinator's launcher uses the same module) and reads its JSON lines on
 * a pipe (--progress-fd 3); COMMAND spawns any argv after filling the placeholders (child_fill()) {run} {attempt} {seed} {weights_json} {workdir} {result} and reads the result
 * file it writes; SYNTHETIC runs no process: after delay_ms it reports
 * `synthetic = Σ_i (w_i − optimum_i)² + N(0, noise²)` (also as each domain's loss, so that
 * regression.target applies as to a trainer's losses) or fails with probability fail_rate, drawn
 * from the assignment's seed (the failure also from the attempt number, so a retry may pass).
 *
 * Every job started with job_start() ends with exactly one call of the done callback: with
 * job->report filled (RESULT or FAILED; saved to the job directory, except a synthetic job's,
 * which has no directory: report->dir is NULL and the owner journals it) or, after job_cancel(), with
 * job->cancelled set and no report to send. Progress lines arrive through the progress callback
 * (thinned to a few per second). Each process job runs in its own directory
 * `<workdir>/<sweep>/<run>-<attempt>/` with stdout.log and stderr.log of its process.
 *
 * Ownership: the worker owns the job; after the done callback it takes job->report with
 * report_move() and calls job_destroy(), which closes the libuv handles; the memory is freed in
 * their close callbacks.
 */
#ifndef REGMIX_WORKER_JOB_H
#define REGMIX_WORKER_JOB_H

#include <stdint.h>
#include <uv.h>

#include "regmix.pb-c.h"
#include "report.h"

typedef struct job job_t;

typedef struct job_config {
    const char *workdir;
    const char *trainer; /* regmix-train path (BUILTIN) */
    int kill_grace_ms;   /* SIGTERM → SIGKILL */
    int allow_commands;  /* run COMMAND jobs (the operator's --allow-commands); else they fail */
} job_config_t;

typedef void (*job_progress_cb)(job_t *job, const Regmix__Progress *p, void *data);
typedef void (*job_done_cb)(job_t *job, void *data);

struct job {
    /* Read-only for the owner. */
    uint64_t attempt_id;
    uint64_t run_id;
    char *sweep_id;
    uint32_t attempt_no;
    Regmix__JobKind kind;
    char *dir;
    int pid;       /* of the child process, 0 for SYNTHETIC */
    int cancelled; /* job_cancel() was called */
    int finished;  /* the done callback ran */
    report_t report;
    void *user; /* the owner's pointer */
    struct job_private *priv;
};

/*
 * Starts an attempt described by `a` (borrowed; everything needed is copied). Returns 0 and
 * *ret (the done callback follows later, even when spawning fails: that becomes a FAILED
 * report), or -ENOMEM / -EINVAL for an assignment that cannot even be represented (no callback
 * then).
 */
int job_start(uv_loop_t *loop,
              const job_config_t *cfg,
              const Regmix__Assign *a,
              job_progress_cb progress_cb,
              job_done_cb done_cb,
              void *data,
              job_t **ret);

/* Stops the attempt: SIGTERM to its process, SIGKILL after the grace period; a synthetic job
 * stops at once. The done callback follows with job->cancelled set. No-op once finished. */
void job_cancel(job_t *job);

/* Closes the job's handles and frees it (in their close callbacks). If the done callback has not
 * run, the child is killed and no callback follows. NULL is a harmless no-op. */
void job_destroy(job_t **job_p);

/* Synthetic loss of a mixture (exposed for tests): Σ_i (w_i − optimum_i)² over the union of
 * names (a missing weight or optimum counts as 0). */
double job_synthetic_loss(const Regmix__DomainWeight *const *w,
                          size_t n_w,
                          const Regmix__DomainWeight *const *opt,
                          size_t n_opt);

#endif
