/*
 * scheduler: hands queued runs to workers (docs/protocol.md, worker session).
 *
 * Credit-based: a worker gets at most min(free slots in its last READY/PING − ASSIGNs sent since,
 * slots − live attempts on it) jobs, and none while lost, draining or quarantined. Order: sweep
 * priority (higher first), then FIFO (submit order, then run index). GPU-aware: a run needs its
 * sweep's proxy.gpus GPUs, and goes only to a worker with that many free GPUs (indices chosen
 * here, sent in ASSIGN.gpu_indices). Each assignment is a lease (transition_attempt_lease()):
 * the run is claimed with a conditional UPDATE (state = 'queued', row count checked) and the
 * attempt inserted in the open transaction; the ASSIGN is queued and leaves only after the
 * commit (persist before send).
 *
 * Cost per assignment is a few indexed statements: the queue is read through the partial index
 * runs_queue (gpus, priority DESC, id) WHERE state = 'queued', never scanned.
 */
#ifndef REGMIX_COORD_SCHEDULER_H
#define REGMIX_COORD_SCHEDULER_H

#include "coord.h"

/* Assigns as many queued runs as the workers' credit allows. Called before each commit. */
void scheduler_run(coord_t *c);

/* The number of jobs `w` may be sent now. */
int scheduler_credit(const worker_t *w);

#endif
