/*
 * exporter: the coordinator's HTTP endpoint for metrics and probes (docs/dashboard.md): GET
 * /metrics (Prometheus text: sweeps, runs and workers by state, live attempts, counters), GET
 * /healthz ("ok" while the loop runs), and the read-only dashboard: GET / and /api/...
 * (dashboard.h, docs/dashboard.md). At most 64 connections, 16 per client address, each closed
 * after 10 s idle; responses are bounded by dashboard.h's page limits. libmicrohttpd runs without
 * threads of its own: its epoll fd is watched by the loop, so every request is answered on the loop
 * thread and reads the daemon's state without locks. Built from exporter_mhd.c with libmicrohttpd,
 * else exporter_none.c, whose exporter_start() fails with -ENOTSUP.
 */
#ifndef REGMIX_COORD_EXPORTER_H
#define REGMIX_COORD_EXPORTER_H

#include <stddef.h>

struct coord;
typedef struct exporter exporter_t;

/* Listens on `addr` ("HOST:PORT", HOST an IPv4 address; "PORT" alone means 0.0.0.0). Returns 0
 * and *ret, or a negative errno with one line in err. */
int exporter_start(struct coord *c, const char *addr, exporter_t **ret, char *err, size_t errlen);

/* Stops listening and frees; NULL is a harmless no-op; nulls the pointer. Handles are closed
 * through the loop (run it once more). */
void exporter_stop(exporter_t **e_p);

#endif
