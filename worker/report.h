/*
 * report: the outcome of one attempt (a RESULT with losses, or a FAILED with a reason) as the
 * worker keeps it until the coordinator acknowledges it (docs/protocol.md).
 *
 * A report lives in memory in the worker's outbox and on disk as `result.json` in the attempt's
 * job directory, written atomically (temporary file + rename) before the first send, so a worker
 * that is killed and restarted finds every unacknowledged outcome again with report_scan() and
 * resends it. Once acknowledged, report_forget() removes the file (and the directory when the
 * job left nothing else in it).
 *
 * Synthetic jobs run thousands a second and have no directory: their reports go to the worker's
 * outbox journal instead (`<workdir>/outbox.jsonl`, one JSON line per report and one per
 * acknowledgement, appended with a single write each), because creating and removing a directory
 * per job costs more than the job (on ext4 with discard, freeing blocks waits for the device).
 * report_journal_open() replays it at start (reports without an ack line are handed back) and
 * rewrites it with only those; it is truncated whenever nothing in it is outstanding and it has
 * grown past a bound. Both forms survive kill -9 of the worker (the data is in the page cache
 * once write(2) returns); neither is fsync'd, as a power loss only costs recomputing an attempt.
 *
 * Ownership: a report_t owns its strings and arrays; report_clear() frees them and leaves an
 * empty report. report_move() transfers everything from one report to another.
 */
#ifndef REGMIX_WORKER_REPORT_H
#define REGMIX_WORKER_REPORT_H

#include <stddef.h>
#include <stdint.h>

#define REPORT_FILE "result.json"

typedef struct report_value {
    char *name;
    double value;
} report_value_t;

typedef struct report {
    uint64_t attempt_id;
    uint64_t run_id;
    char *sweep_id;
    char *dir; /* job directory holding REPORT_FILE */
    int ok;    /* 1: RESULT with losses; 0: FAILED with exit_code/signal/reason */
    report_value_t *losses;
    size_t n_losses;
    report_value_t *bits_per_byte;
    size_t n_bits_per_byte;
    uint64_t tokens;
    double seconds;
    int exit_code; /* -1 when killed by a signal */
    int signal;
    char *reason;
} report_t;

/* Appends one named value to a value array (*vals, *n); the name is copied. Returns 0 or
 * -ENOMEM. */
int report_value_add(report_value_t **vals, size_t *n, const char *name, double value);

/* Sets the FAILED fields (ok = 0) with a copy of `reason`. Returns 0 or -ENOMEM. */
int report_set_failed(report_t *r, int exit_code, int signal, const char *reason);

/* Writes `r` as REPORT_FILE in r->dir (created when missing) through a temporary file and
 * rename(2). Returns 0 or a negative errno. */
int report_save(const report_t *r);

/* Reads a report from `path` (a REPORT_FILE). Returns 0 and fills *ret (which the caller clears),
 * or -errno / -EBADMSG for an unreadable or malformed file, with *ret untouched. */
int report_load(const char *path, report_t *ret);

/* Walks `workdir`/<sweep>/<job>/REPORT_FILE and calls `cb` for each report loaded (the callback
 * takes ownership of the report). Malformed files are skipped and counted in *ret_bad.
 * Returns the number of reports found, or a negative errno when workdir cannot be read (a
 * missing workdir is 0). */
int report_scan(const char *workdir, void (*cb)(report_t *r, void *arg), void *arg, int *ret_bad);

/* Removes r->dir/REPORT_FILE, then r->dir and its sweep directory when they are empty. */
void report_forget(const report_t *r);

typedef struct report_journal report_journal_t;

#define REPORT_JOURNAL_FILE "outbox.jsonl"

/*
 * Opens (creating) `workdir`/REPORT_JOURNAL_FILE, calls `cb` for every report in it without an
 * ack line (the callback takes ownership), and rewrites the file with only those. Malformed lines
 * (a torn last write) are skipped and counted in *ret_bad. Returns 0 and *ret, or -errno.
 */
int report_journal_open(const char *workdir,
                        void (*cb)(report_t *r, void *arg),
                        void *arg,
                        report_journal_t **ret,
                        int *ret_bad);

/* Appends a report (r->dir is not used). Returns 0 or -errno. */
/* Makes what was appended so far durable (fdatasync); the caller syncs once for a batch of
 * appends before sending any of them. Returns 0 or -errno. */
int report_journal_sync(report_journal_t *j);

int report_journal_append(report_journal_t *j, const report_t *r);

/* Appends the acknowledgement of `attempt_id`; when `outstanding` (reports in the journal still
 * unacknowledged after this one) is 0 and the file is large, truncates it. Returns 0 or -errno. */
int report_journal_ack(report_journal_t *j, uint64_t attempt_id, unsigned outstanding);

/* Closes the journal file and frees the journal; NULL or *self_p NULL is a harmless no-op.
 * *self_p is NULL afterwards. */
void report_journal_destroy(report_journal_t **self_p);

/* Moves the contents of `from` into `to` (which must be empty); `from` becomes empty. */
void report_move(report_t *to, report_t *from);

/* Frees everything the report owns; leaves it zeroed. */
void report_clear(report_t *r);

#endif
