/*
 * follow: watching a launched target to its end, whatever launched it (launcher.h, docs/targets.md).
 *
 * Every launch leaves a handle that outlives the coordinator's process, stored as text in the
 * target's row so that a restarted coordinator follows the same job:
 *   pid:PID@START    a process of this host (mpirun, command): PID and its start time in clock
 *                    ticks since boot (/proc/PID/stat field 22), so a reused PID is not taken
 *                    for it;
 *   slurm:JOBID      a Slurm batch job (sbatch --parsable), polled with `scontrol show job -o`
 *                    while slurmctld knows it, then with `sacct` (slurmdbd) or `sacct
 *                    --completion` (jobcomp records);
 *   mpijob:NS/NAME   a Kubeflow MPIJob (kubeflow.org/v2beta1), polled with `kubectl get mpijob
 *                    NAME -n NS -o json`; its launcher's log (`kubectl logs job/NAME-launcher`)
 *                    carries the trainer's progress lines.
 * Each poll's answer is reduced to one phase of the target life cycle (common/states.h):
 * pending (queued, not started), running, done, failed (with a reason), cancelled.
 *
 * The parsers are pure functions over the tools' text output (tested on recorded outputs); the
 * capture runs one command in a libuv loop, collects its stdout and stderr (bounded, with a time
 * limit) and calls back once. Nothing here logs or touches the store.
 */
#ifndef REGMIX_COORD_FOLLOW_H
#define REGMIX_COORD_FOLLOW_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef enum follow_kind {
    FOLLOW_NONE = 0, /* nothing launched (yet) */
    FOLLOW_PID,
    FOLLOW_SLURM,
    FOLLOW_MPIJOB,
} follow_kind_t;

typedef struct follow_handle {
    follow_kind_t kind;
    int64_t pid;          /* FOLLOW_PID */
    uint64_t start_ticks; /* FOLLOW_PID: /proc/PID/stat starttime */
    char job_id[24];      /* FOLLOW_SLURM: decimal digits */
    char ns[64];          /* FOLLOW_MPIJOB: namespace */
    char name[64];        /* FOLLOW_MPIJOB: object name */
} follow_handle_t;

/* The handle as stored text ("" for FOLLOW_NONE). Returns 0 or -ENOSPC. */
int follow_handle_format(const follow_handle_t *h, char *buf, size_t len);

/* Parses stored text; "" or NULL is FOLLOW_NONE. Returns 0, or -EINVAL for text that is not a
 * handle (then *ret is FOLLOW_NONE). Slurm job ids are digits only, namespaces and names DNS
 * labels ([a-z0-9-], at most 63), as they reach command lines. */
int follow_handle_parse(const char *text, follow_handle_t *ret);

typedef enum follow_phase {
    FOLLOW_UNKNOWN = 0, /* the answer says nothing usable */
    FOLLOW_PENDING,
    FOLLOW_RUNNING,
    FOLLOW_DONE,
    FOLLOW_FAILED,
    FOLLOW_CANCELLED,
} follow_phase_t;

typedef struct follow_status {
    follow_phase_t phase;
    char state[32];   /* the tool's own word: RUNNING, COMPLETED, Succeeded, ... */
    char reason[256]; /* why, for failures: "FAILED, exit code 2:0 (NonZeroExitCode)" */
} follow_status_t;

/* `scontrol show job -o JOBID` (one line of Key=Value words). Returns 0, or -ENOENT when the
 * text holds no JobState (slurmctld has forgotten the job). */
int follow_slurm_scontrol(const char *text, follow_status_t *ret);

/* `sacct -n -P -X -j JOBID -o State,ExitCode` or, with --completion, the same fields: the first
 * line "STATE|EXITCODE" (State may read "CANCELLED by 0"). Returns 0 or -ENOENT (no line). */
int follow_slurm_sacct(const char *text, follow_status_t *ret);

/* `kubectl get mpijob NAME -o json`: the conditions of .status (Succeeded, Failed, Running,
 * Restarting, Suspended, Created; the last true one of the same time wins as the operator sets
 * them in order). Returns 0, or -EINVAL when the text is not an MPIJob document. */
int follow_mpijob(const char *text, size_t len, follow_status_t *ret);

/* The start time of process `pid` in clock ticks since boot. Returns 0, -ESRCH when there is no
 * such process (or it is a zombie), -EIO when /proc/PID/stat cannot be read. */
int follow_proc_start(int64_t pid, uint64_t *ret_ticks);

/* 1 when the handle's process still runs (same PID, same start time), else 0. */
int follow_proc_alive(const follow_handle_t *h);

/* ---- capture --------------------------------------------------------------------------------- */

#define FOLLOW_OUTPUT_MAX (1u << 20) /* more output is dropped (the tail is what matters less) */

/* How a captured command ended; valid during the callback. */
typedef struct follow_output {
    int64_t exit_status; /* -1 when it was killed or could not run */
    int term_signal;
    int timed_out;
    const char *out; /* stdout, NUL-terminated (at most FOLLOW_OUTPUT_MAX bytes) */
    size_t out_len;
    const char *err; /* stderr, likewise */
    size_t err_len;
} follow_output_t;

typedef void (*follow_capture_cb)(const follow_output_t *o, void *data);

/* Runs argv (argv[0] searched on PATH; stdin /dev/null) in `loop`, kills it (SIGKILL) after
 * timeout_ms, and calls cb once after it ended and its output is drained. Returns 0, or a
 * negative errno (e.g. -ENOENT: no such program) with cb never called. */
int follow_capture(
        uv_loop_t *loop, char *const *argv, int timeout_ms, follow_capture_cb cb, void *data);

#endif
