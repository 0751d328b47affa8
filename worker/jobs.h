/*
 * jobs: the worker's slots and its local queue of attempts (worker.h).
 *
 * An ASSIGN starts a job (job.h) in a free slot; beyond the slots (a READY crossed a result in
 * flight) it waits in a FIFO queue of at most WORKER_MAX_QUEUE. A finished job's report goes to
 * the outbox and is sent at once when welcomed; the freed slot takes the next queued attempt and
 * READY (free slots) is sent once per loop iteration at most.
 */
#ifndef REGMIX_WORKER_JOBS_H
#define REGMIX_WORKER_JOBS_H

#include "worker.h"

struct queued {
    Regmix__Assign *a; /* owned (unpacked copy) */
    struct queued *next;
};

/* Slots neither running nor promised to a queued attempt. */
unsigned jobs_free_slots(const worker_t *w);

/* Sends READY with the free slots now (0 while draining); only when welcomed. */
void jobs_send_ready(worker_t *w);

/* Sends READY after this loop iteration (several changes, one message). */
void jobs_mark_ready(worker_t *w);

/* The running job of an attempt, or NULL. */
job_t *jobs_find(worker_t *w, uint64_t attempt_id);

/* Runs or queues an assignment (borrowed); duplicates and attempt id 0 are ignored. */
void jobs_assign(worker_t *w, const Regmix__Assign *a);

/* Stops an attempt the coordinator no longer wants, wherever it is (`why` for the log). */
void jobs_stop(worker_t *w, uint64_t attempt_id, const char *why);

/* Frees the queued assignments. */
void jobs_clear_queue(worker_t *w);

#endif
