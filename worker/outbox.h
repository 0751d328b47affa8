/*
 * outbox: the worker's reports (RESULT or FAILED) kept until the coordinator acknowledges them.
 *
 * A report lives on disk until its ack (report.h): in its job directory, or in the outbox
 * journal for a synthetic job, which has none. A restarted worker recovers both at start
 * (outbox_scan_cb, outbox_journal_cb) and sends them again after the next WELCOME. The held_t
 * list is owned by the worker_t (w->held).
 */
#ifndef REGMIX_WORKER_OUTBOX_H
#define REGMIX_WORKER_OUTBOX_H

#include "worker.h"

struct held {
    report_t r;
    int journaled; /* in the outbox journal (synthetic) rather than a job directory */
    int64_t last_sent_ms;
    struct held *next;
};

/* Sends a held report as RESULT or FAILED and notes when. */
void outbox_send(worker_t *w, held_t *h);

/* The held report of an attempt, or NULL; *ret_link (when not NULL) is the link pointing at it. */
held_t *outbox_find(worker_t *w, uint64_t attempt_id, held_t ***ret_link);

/* Takes the report (moved out of `r`) into the outbox. Returns it, or NULL without memory. */
held_t *outbox_add(worker_t *w, report_t *r);

/* Drops a held report, acknowledged or abandoned (`why`, for the log), from memory and disk. */
void outbox_drop(worker_t *w, uint64_t attempt_id, const char *why);

/* report_scan() and report_journal_open() callbacks: take a recovered report (arg: the worker). */
void outbox_scan_cb(report_t *r, void *arg);
void outbox_journal_cb(report_t *r, void *arg);

/* Frees every held report in memory (they stay on disk). */
void outbox_clear(worker_t *w);

#endif
