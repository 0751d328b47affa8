/*
 * child: one child process on a libuv loop, as both daemons start trainers: spawn with stdout and
 * stderr on caller-given files, a progress pipe on one of its descriptors read as lines (each
 * handed over parsed when it is a JSON object), SIGTERM then SIGKILL after a grace period, and the
 * end reported once, after both the exit and the pipe's end (or a bounded wait for it: a
 * grandchild may hold the pipe open). Or, for a launch followed through files (the coordinator's
 * launcher), the progress descriptor is a file the caller tails. Also the two small helpers every
 * launch needs: placeholder expansion and mkdir -p. The worker's jobs and the coordinator's
 * launches both start their processes here.
 *
 * Rules: the line buffer is bounded (common/linebuf: an over-long line, the last one too, is
 * dropped whole, counted in child_dropped_lines()); a callback-taking child_start() that fails never calls back; the memory
 * of a child is freed in its handles' close callbacks, after child_close() or the end callback.
 * All calls on the loop thread.
 */
#ifndef REGMIX_CHILD_H
#define REGMIX_CHILD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct child child_t;

typedef struct child_options {
    char *const *argv; /* argv[0] is the program (a path, or looked up in PATH) */
    char *const *env;  /* NULL: this process's environment */
    const char *cwd;   /* NULL: this process's */
    int stdout_fd;     /* the child's stdout, -1: /dev/null; stays the caller's to close */
    int stderr_fd;     /* likewise for stderr */
    int progress_fd;   /* the child's descriptor that is the pipe: -1 none, 1 (its stdout), >= 3 */
    int progress_file; /* > 0: progress_fd is this file of the caller's instead of a pipe (the
                        * caller reads it; no line callbacks; the end follows the exit) */
    size_t line_max;   /* longest line kept (0: 64 KiB) */
    int eof_wait_ms;   /* after the exit, wait at most this long for the pipe's end (0: 1000) */
    int own_group;     /* a new session and process group: the child outlives this process's
                        * group (a terminal's ^C), and signals reach the child's children too */
    int signal_pid_only; /* with own_group: signals go to the child alone (mpirun forwards) */
    int kill_grace_ms;   /* child_stop(): SIGKILL this long after SIGTERM (0: 5000) */
} child_options_t;

/* One line from the progress pipe, without its newline: `obj` is the line parsed when it is a
 * JSON object (borrowed for the call), else NULL. */
typedef void (*child_line_cb)(child_t *c, const char *line, size_t len, json_t *obj, void *data);

/* The end: exit status and terminating signal (0 if none); called once, then the child is
 * released (do not use it after the call returns, nor call child_close() on it). */
typedef void (*child_end_cb)(child_t *c, int64_t exit_status, int term_signal, void *data);

/* Spawns the child. Returns 0 and sets *ret (may be NULL); the end callback follows. Returns
 * -EINVAL (bad options) or libuv's error (-ENOENT: no such program, ...) and never calls back. */
int child_start(uv_loop_t *loop,
                const child_options_t *o,
                child_line_cb on_line,
                child_end_cb on_end,
                void *data,
                child_t **ret);

/* The child's pid. */
int child_pid(const child_t *c);

/* Sends signum to the child (its group with own_group). 0, -ESRCH when it has exited. */
int child_signal(child_t *c, int signum);

/* SIGTERM now, SIGKILL after kill_grace_ms if it still runs. The end callback follows. */
void child_stop(child_t *c);

/* Lines dropped for being longer than line_max. */
uint64_t child_dropped_lines(const child_t *c);

/* Detaches: no more callbacks; a child still running is killed (SIGKILL); the memory goes in the
 * close callbacks. Sets *c_p to NULL; NULL is a harmless no-op. Not from inside a callback of the
 * same child. */
void child_close(child_t **c_p);

/* Replaces each {key} of tmpl with vals[i] where keys[i] is key; other braces stay as they are.
 * Returns a malloc'd string or NULL (memory). */
char *child_fill(const char *tmpl, const char *const *keys, const char *const *vals, size_t n);

/* mkdir -p: creates dir and its missing parents with mode. Returns 0, -errno, -ENAMETOOLONG. */
int child_mkdirs(const char *dir, mode_t mode);

#endif
