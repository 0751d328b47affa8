/*
 * launcher: the target launch (docs/targets.md): the proposed mixture (or, for the `baseline: prior`
 * run, the token prior) trained on the spec's target config by one of four launchers, and a
 * small runner that follows a launched process in a libuv loop.
 *
 * Rendering is pure: launcher_plan_make() turns a launcher_ctx_t (spec, weights, role, work
 * directory, seed) into what to run, and touches nothing but the PATH lookup of sbatch/kubectl:
 *   - mpirun:     `mpirun -np N [--host a,b | --hostfile F] [--allow-run-as-root] [--oversubscribe]
 *                 regmix-train …`. Open MPI closes every descriptor above 2 in the ranks (measured:
 *                 `mpirun -np 2 sh -c 'echo >&3' 3>f` fails with "Bad file descriptor"), so the
 *                 trainer writes its JSON lines to stdout (--progress-fd 1; rank 0 alone reports)
 *                 and mpirun's stdout is the progress file;
 *   - command:    the spec's argv template with {placeholders} filled (child_fill(), common/child.h); the
 *                 progress file is the child's fd 3 ({progress_fd});
 *   - slurm:      an sbatch script (`srun --mpi=pmix regmix-train … --progress-fd 1`, progress
 *                 lines in the job's slurm-JOBID.out) written to WORKDIR/ROLE.sbatch and submitted
 *                 with `sbatch --parsable` when it is on PATH; otherwise the plan has no argv and
 *                 its message says how to submit;
 *   - kubernetes: a Kubeflow MPIJob (kubeflow.org/v2beta1) manifest written to WORKDIR/ROLE-mpijob.yaml
 *                 and applied with `kubectl apply -f` when kubectl is on PATH; otherwise as slurm.
 * The trainer always gets `--checkpoint WORKDIR/checkpoint --resume`, so launching the same role
 * again after a coordinator restart continues the run instead of starting over.
 *
 * The runner spawns a plan's argv with uv_spawn in its own session, appends the child's stdout and
 * stderr to a log file and its progress fd to a progress file (WORKDIR/ROLE.progress), reads the
 * JSON progress lines ({"event":"step",…}, {"event":"eval",…}, {"event":"result","losses":{…}})
 * from that file as it grows and reports them, then the exit status and the last result's
 * per-domain losses, all on the loop thread. The progress lives in a file, not a pipe, so a
 * launch outlives the coordinator that started it and the next one reads the same lines
 * (launcher_tail_t; Slurm's slurm-JOBID.out and an MPIJob launcher's log are read the same way).
 * How the coordinator follows each launcher to its end: target.h and follow.h.
 */
#ifndef REGMIX_COORD_LAUNCHER_H
#define REGMIX_COORD_LAUNCHER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "spec.h"

/* Everything a launch depends on; all borrowed. */
typedef struct launcher_ctx {
    const spec_t *spec;
    const double *weights; /* (spec->ndomains) the mixture, in domain order */
    const char *role;      /* "target" or "baseline" */
    const char *sweep_id;  /* names the Slurm job and the MPIJob */
    const char *trainer;   /* regmix-train as the launch host sees it; NULL: "regmix-train" */
    const char *mpirun;    /* NULL: the mpirun meson found (REGMIX_MPIRUN) */
    const char *workdir;   /* per-launch directory: checkpoint/, rendered files */
    uint64_t seed;         /* the trainer's --seed */
    int as_root;           /* mpirun --allow-run-as-root (set when geteuid() == 0) */
    int oversubscribe;     /* mpirun --oversubscribe */
    const char *sbatch;    /* NULL: look up "sbatch" on PATH; "": absent; else this program */
    const char *kubectl;   /* likewise for "kubectl" */
} launcher_ctx_t;

/* What to do for a launch. Owned strings; launcher_plan_clear() frees them. */
typedef struct launcher_plan {
    char **argv;     /* NULL-terminated program to spawn now; NULL when nothing can run here */
    int progress_fd; /* the child's fd for the progress pipe: 1 (mpirun), 3 (command), -1 */
    int submits;     /* the program only submits (sbatch, kubectl): exit 0 means "submitted" */
    char *workdir;   /* the launch's work directory (launcher_plan_write creates it) */
    char *file_path; /* a rendered file to write before spawning (sbatch script, MPIJob), or NULL */
    char *file_text;
    char *message;          /* one line for people: what was launched, or how to submit by hand */
    char job_name[64];      /* slurm, kubernetes: the job's name (Slurm job name, MPIJob name) */
    char job_namespace[64]; /* kubernetes: the MPIJob's namespace */
    char *progress_path; /* the progress file of an mpirun/command launch (WORKDIR/ROLE.progress),
                          * of an MPIJob (WORKDIR/ROLE-launcher.log, a copy of its launcher's log);
                          * NULL for Slurm (slurm-JOBID.out, known once submitted) */
} launcher_plan_t;

/* A NULL-terminated argv; launcher_argv_free(NULL) is a harmless no-op. */
void launcher_argv_free(char **argv);
int launcher_argv_len(char *const *argv);

/* The mixture as trainer text "name=w,name=w" (all domains, %.10g) and as a JSON object.
 * malloc'd; NULL when out of memory. */
char *launcher_weights_text(const spec_t *spec, const double *weights);
char *launcher_weights_json(const spec_t *spec, const double *weights);

/* The token prior (each domain's `prior`) into ret (spec->ndomains): the baseline's mixture. */
void launcher_prior_weights(const spec_t *spec, double *ret);

/* The regmix-train argv for ctx by common/trainargs.h (target.model, target.train, the domains'
 * --train/--valid globs, --weights-json, --seed, --checkpoint WORKDIR/checkpoint --resume,
 * --progress-fd progress_fd): the worker's proxies are built by the same module.
 * Returns 0 with *ret a new argv, -ENOTSUP for a schedule the trainer lacks (linear; message in
 * err), -EINVAL (also for a weight > 0 on a domain without a train glob, or a negative or
 * non-finite weight), -ENOMEM. */
int launcher_trainer_argv(
        const launcher_ctx_t *ctx, int progress_fd, char ***ret, char *err, size_t errlen);

/* The launch for ctx by the spec's target.launcher (see the header comment). Placeholders of the
 * command launcher: {trainer_argv} (as one argument: the trainer argv shell-quoted), {weights}
 * (name=w,…), {weights_json}, {ranks}, {workdir}, {checkpoint}, {progress_fd} (3), {seed},
 * {sweep}, {role}, {train_json} (spec_train_json of the target), {domains_json}, {config_json}
 * (the trainer options as one JSON object: regmix-train --config reads it as YAML). Returns 0,
 * -EINVAL (e.g. kubernetes without target.image; message in err), -ENOTSUP, -ENOMEM. */
int launcher_plan_make(const launcher_ctx_t *ctx, launcher_plan_t *ret, char *err, size_t errlen);

/* Creates the work directory (and its parents: the trainer creates only the last level of its
 * checkpoint directory) and writes plan->file_text to plan->file_path (mode 0644, through a
 * temporary file and rename) when there is one. Returns 0 or -errno (message in err). */
int launcher_plan_write(const launcher_plan_t *plan, char *err, size_t errlen);

/* Frees what the plan owns and zeroes it; a zeroed plan is a harmless no-op. */
void launcher_plan_clear(launcher_plan_t *plan);

/* The sbatch script and the MPIJob manifest alone (launcher_plan_make uses them). malloc'd; NULL
 * with a message in err on failure. */
char *launcher_slurm_script(const launcher_ctx_t *ctx, char *err, size_t errlen);
char *launcher_mpijob_yaml(const launcher_ctx_t *ctx, char *err, size_t errlen);

/* ---- progress files and the runner ------------------------------------------------------------ */

/* One JSON progress line. */
typedef struct launcher_progress {
    const char *event; /* "step", "eval", or whatever else the trainer sends */
    int64_t step;      /* -1 when the line has none */
    double loss;       /* step: the training loss; eval: the mean of its losses; else NAN */
    const char *line;  /* the line itself (valid during the callback) */
} launcher_progress_t;

/* What a progress file said so far, or how a run ended; valid during the callback (runner) or
 * until the next read (tail). */
typedef struct launcher_outcome {
    int64_t exit_status;
    int term_signal;
    int has_result; /* a {"event":"result"} line arrived */
    int nlosses;    /* its per-domain losses */
    char **loss_names;
    double *losses;
    uint64_t progress_lines; /* JSON lines received */
} launcher_outcome_t;

/* A progress file read as it grows: every launcher's trainer writes its JSON lines to a file
 * (mpirun's stdout, the command's fd 3, Slurm's slurm-JOBID.out, a copy of an MPIJob launcher's
 * log), so a coordinator that restarts reads the same lines again. */
typedef struct launcher_tail launcher_tail_t;
typedef void (*launcher_line_cb)(const launcher_progress_t *p, void *data);

/* A tail of `path` from its start (the file need not exist yet). Returns 0 or -ENOMEM. */
int launcher_tail_new(const char *path, launcher_tail_t **ret);
void launcher_tail_destroy(launcher_tail_t **self_p);

/* Reads what was appended since the last call (at most 4 MiB), calls cb for each JSON progress
 * line; `final` also takes a last line without its newline. A file that shrank is read again
 * from its start. Returns the number of progress lines read (0 while the file does not exist),
 * or a negative errno. */
int launcher_tail_read(launcher_tail_t *t, int final, launcher_line_cb cb, void *data);

/* The last result line's losses and the line count so far (exit fields unused). */
const launcher_outcome_t *launcher_tail_outcome(const launcher_tail_t *t);
const char *launcher_tail_path(const launcher_tail_t *t);

typedef struct launcher_run launcher_run_t;

typedef void (*launcher_progress_cb)(launcher_run_t *run, const launcher_progress_t *p, void *data);
/* Called once, after the process has exited and its progress file is read to the end; the run is
 * freed when the callback returns. */
typedef void (*launcher_exit_cb)(launcher_run_t *run, const launcher_outcome_t *o, void *data);

/* Spawns argv (argv[0] searched on PATH) in `loop` in its own session (it outlives the
 * coordinator), with cwd (NULL: inherit), stdin from /dev/null, stdout and stderr appended to
 * log_path (NULL: discarded), and the child's fd progress_fd (1 or 3; -1: none) appended to the
 * file progress_path, which the runner reads every 200 ms and at exit for on_progress and the
 * outcome (lines already in the file are not reported). Returns 0 with *ret (may be NULL) set, or
 * a negative errno (spawn failure, e.g. -ENOENT); on error no callback is ever called. */
int launcher_run_start(uv_loop_t *loop,
                       char *const *argv,
                       int progress_fd,
                       const char *progress_path,
                       const char *log_path,
                       const char *cwd,
                       launcher_progress_cb on_progress,
                       launcher_exit_cb on_exit,
                       void *data,
                       launcher_run_t **ret);

/* The child's pid. */
int launcher_run_pid(const launcher_run_t *run);

/* Sends signum to the child (mpirun forwards SIGTERM to its ranks). Returns 0 or -errno
 * (-ESRCH once it has exited). */
int launcher_run_kill(launcher_run_t *run, int signum);

#endif
