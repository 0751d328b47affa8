/*
 * render: what regmixctl prints from a coordinator's replies. Human tables by default, one JSON
 * document with --json (jansson), RFC 4180 CSV for results, and the watch view (lines, or one
 * redrawn progress bar on a terminal).
 *
 * Everything writes to stdout and borrows its inputs. JSON builders return a new reference
 * (NULL when out of memory); render_print_json() takes that reference. Non-finite numbers are
 * JSON null: jansson refuses NaN and would drop the whole object.
 */
#ifndef REGMIX_CLI_RENDER_H
#define REGMIX_CLI_RENDER_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "frame.h"

/* A sweep state's name ("running", "converged", ..., "unknown"). */
const char *render_sweep_state(Regmix__SweepState s);

/* `s` unless NULL or empty, else `dflt`. */
const char *render_str_or(const char *s, const char *dflt);

/* The runs of all states in `c` (0 for NULL). */
uint32_t render_counts_total(const Regmix__RunCounts *c);

json_t *render_num_json(double x);
json_t *render_sweep_json(const Regmix__SweepInfo *s);
json_t *render_weights_json(Regmix__DomainWeight **w, size_t n);
json_t *render_values_json(Regmix__DomainValue **v, size_t n);
/* A fit as JSON, with its estimate at the proposal (predicted_interval, verdict, expected_gain,
 * ...: null where absent). */
json_t *render_fit_json(const Regmix__FitInfo *f);

/* `regmixctl status`: the sweep's counts and, once it has a fit, one line with the proposal's
 * predicted objective, its 95 % interval, the verdict and the expected gain against gain_tol,
 * and the target's realised objective against that interval (or all of it as one JSON object). */
void render_status(int json, const Regmix__StatusReply *r);

/* Prints `o` compactly on one line and drops the reference (NULL: says out of memory). */
void render_print_json(json_t *o);

/* Writes one CSV field, quoted when it needs to be (RFC 4180). */
void render_csv_field(FILE *f, const char *s);

/* One line of `regmixctl list`. */
void render_sweep_line(const Regmix__SweepInfo *s);

/* The target runs of `sweep`, as lines or one JSON document. */
void render_targets(int json, const char *sweep, Regmix__TargetInfo **t, size_t n);

/* The state of one watch, embedded by the caller: zero it and set `tty`. */
typedef struct render_watch {
    int tty;
    int64_t start_ms;
    uint32_t start_finished; /* runs finished when the watch began (for the rate) */
    int have_start;
    int drew; /* a progress bar line is on screen */
} render_watch_t;

/* Shows one watch event (`kind`, `text`) or status (`s`, may be NULL): a JSON line, a plain
 * line, or on a terminal notable lines above one redrawn progress bar. */
void render_watch(render_watch_t *v,
                  int json,
                  const Regmix__SweepInfo *s,
                  const char *kind,
                  const char *text);

#endif
