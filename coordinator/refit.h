/*
 * refit: the coordinator's side of the fit pipeline (common/fitpipe.h, docs/method.md). After each
 * stored result it asks fitpipe_should_refit(); when yes it snapshots the sweep's results from the
 * store on the loop thread, 5,000 runs per loop iteration (store_results_range(), so a huge
 * sweep's snapshot never holds the loop long), runs the refit in libuv's thread pool
 * (fitpipe_queue), and on its completion
 * (loop thread) stores the fit as the next fit number, tells the sweep's watchers ("fit"), and when
 * the verdict is converged marks the sweep converged ("converged"; remaining runs cancelled when
 * the spec says on_converge: cancel; transition.h makes both changes). With `launch: auto` a
 * converged sweep launches its target at once (target_launch(); already launched is not an error,
 * any other failure is logged). At most one refit per sweep is in flight.
 */
#ifndef REGMIX_COORD_REFIT_H
#define REGMIX_COORD_REFIT_H

#include "coord.h"

/* Starts a refit of `sw` if one is due. */
void refit_maybe(coord_t *c, sweep_t *sw);

/* Loads the fits of `sw` from the store (history of proposals, fit count) at start. */
int refit_load(coord_t *c, sweep_t *sw);

/* Asks every queued refit to be dropped (at shutdown); running ones finish and are ignored. */
void refit_cancel_all(coord_t *c);

#endif
