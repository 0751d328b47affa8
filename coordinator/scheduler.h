/*
 * scheduler: hands queued runs to workers (DESIGN.md §4.2–4.3).
 *
 * Credit-based: a worker gets at most min(free slots in its last READY/PING − ASSIGNs sent since,
 * slots − live attempts on it) jobs, and none while lost, draining or quarantined. Order: sweep
 * priority (higher first), then FIFO (submit order, then run index). GPU-aware: a run needs its
 * sweep's proxy.gpus GPUs, and goes only to a worker with that many free GPUs (indices chosen
 * here, sent in ASSIGN.gpu_indices). Each assignment claims the run with a conditional UPDATE
 * (state = 'queued', row count checked) and inserts the attempt in the open transaction; the
 * ASSIGN is queued and leaves only after the commit (persist before send).
 *
 * Cost per assignment is a few indexed statements: the queue is read through the index
 * runs(state, gpus, priority DESC, id), never scanned.
 */
#ifndef REGMIX_COORD_SCHEDULER_H
#define REGMIX_COORD_SCHEDULER_H

#include "coord.h"

/* Assigns as many queued runs as the workers' credit allows. Called before each commit. */
void scheduler_run(coord_t *c);

/* The number of jobs `w` may be sent now. */
int scheduler_credit(const worker_t *w);

#endif
