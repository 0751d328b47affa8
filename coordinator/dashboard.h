/*
 * dashboard: the read-only views of the coordinator's state as JSON, for the live dashboard's
 * /api/ endpoints (served by exporter_mhd.c beside /metrics) and for `regmixctl report` (the
 * client request `report`, client.c). docs/dashboard.md documents every endpoint and field.
 *
 * Everything here runs on the loop thread and reads the in-memory sweeps and workers and the
 * store through bounded queries (store_view.h): pages of results and runs, at most
 * DASHBOARD_MAX_FITS fits and DASHBOARD_MAX_CURVE points per target curve, so one request costs
 * the same on a sweep of any size. Nothing here writes.
 */
#ifndef REGMIX_COORD_DASHBOARD_H
#define REGMIX_COORD_DASHBOARD_H

#include <stddef.h>

#include "coord.h"

#define DASHBOARD_MAX_FITS      2000  /* the latest ones in a sweep document */
#define DASHBOARD_MAX_CURVE     1000  /* points per target loss curve (evenly thinned) */
#define DASHBOARD_MAX_SWEEPS    200   /* the newest ones in /api/sweeps */
#define DASHBOARD_RESULTS_LIMIT 1000  /* most results per page */
#define DASHBOARD_RUNS_LIMIT    200   /* most runs per page */
#define DASHBOARD_PAGE_VALUES   65536 /* most numbers in one page of results (limit × columns) */

/* A query argument of the request ("after" -> "12"), or NULL. */
typedef const char *(*dashboard_arg_fn)(void *ctx, const char *key);

/* Answers GET `url`: "/" (the page), "/api/sweeps", "/api/sweeps/ID", "/api/sweeps/ID/results",
 * "/api/sweeps/ID/runs", "/api/workers". Returns the HTTP status (200, 400, 404, 500) and sets
 * *ret_body (malloc'd, the caller frees), *ret_len and *ret_type (static); 0 when `url` is none of
 * these (the caller answers it). */
int dashboard_get(coord_t *c,
                  const char *url,
                  dashboard_arg_fn arg,
                  void *ctx,
                  char **ret_body,
                  size_t *ret_len,
                  const char **ret_type);

/* The sweep document of /api/sweeps/ID as compact JSON (malloc'd), or NULL when out of memory or
 * the store fails. */
char *dashboard_sweep_json(coord_t *c, sweep_t *sw);

#endif
