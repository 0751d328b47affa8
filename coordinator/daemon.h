/*
 * daemon: the coordinator daemon's life cycle, the top layer (docs/coordinator.md): start (open
 * the store, load its rows into the shared state, bind the two ROUTERs, start the watches, the
 * flush, the tick and the signals), the flush (scheduling pass, group commit, then send), the
 * periodic tick (worker expiry, leases, retries, watchdog) and the graceful stop. It calls down
 * into every module; nothing calls up into it.
 *
 * Group commit and "persist before send": the shared state's outbox (coord.h) is drained by a
 * uv_check handle once per loop iteration: it runs the scheduler if asked, commits the open
 * transaction, and only then sends what was queued. An idle handle is started while anything is
 * queued (coord_t.on_work), so the loop never blocks with work pending. Under load the commit
 * happens at most once per commit window (default 0: every iteration; a timer closes a longer
 * window), so one WAL write covers many messages. A failed commit is fatal: the loop stops and
 * main exits 1; what was queued is never sent, and the supervisor's restart recovers from the
 * database (nothing acknowledged was lost).
 */
#ifndef REGMIX_COORD_DAEMON_H
#define REGMIX_COORD_DAEMON_H

#include <stddef.h>
#include <uv.h>

#include "coord.h"

typedef struct daemon daemon_t;

/* Starts the daemon on `loop` with `cfg` (its strings must outlive the daemon). On failure
 * writes one line to err, leaves *ret untouched and has freed what it built (the caller runs the
 * loop once more so closing handles finish). */
int daemon_new(
        uv_loop_t *loop, const coord_config_t *cfg, daemon_t **ret, char *err, size_t errlen);

/* Starts a graceful stop: commit and send what this iteration did, cancel queued refits, SIGTERM
 * to target launches, close sockets (bounded linger) and handles; the loop then ends. */
void daemon_stop(daemon_t *d);

/* The shared state (for the final log line and tests). */
coord_t *daemon_coord(daemon_t *d);

/* Frees everything (after the loop ended); NULL is a harmless no-op; *d_p is NULLed. */
void daemon_destroy(daemon_t **d_p);

#endif
