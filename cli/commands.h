/*
 * commands: the subcommands of regmixctl. Each takes the arguments after its own name
 * (argv[0] is the command name) and returns the process exit status: 0 success, 2 bad usage or
 * input, 1 any other failure. Results go to stdout, errors to stderr.
 *
 * Offline commands need no daemon: sample (cmd_sample.c), fit (cmd_fit.c), next (cmd_next.c), keygen
 * (cmd_keygen.c). The others talk to a coordinator (cmd_client.c); `endpoint` is the
 * coordinator's client endpoint and `curve` its CURVE keys (curve.h; disabled: plain).
 */
#ifndef REGMIX_CLI_COMMANDS_H
#define REGMIX_CLI_COMMANDS_H

#include "curve.h"

int cmd_sample(int argc, char **argv);
int cmd_fit(int argc, char **argv);
/* next: the next mixtures to run and the current proposal, from CSV results (active.h). */
int cmd_next(int argc, char **argv);
/* keygen [--out PREFIX] [--force] [--json]: a CURVE key pair in PREFIX.key and PREFIX.pub. */
int cmd_keygen(int argc, char **argv);

/* Client commands: submit, list, status, watch, cancel, results, fits, mixture, launch, target,
 * workers, drain, report. */
int cmd_client(const char *endpoint, const curve_client_t *curve, int argc, char **argv);

/* report (cmd_report.c): writes the sweep's report to `out` over `client` (client.h) and prints
 * the path; returns the exit status. */
struct client;
int cmd_report_sweep(struct client *client, const char *sweep, const char *out);

/* Writes the report page to `out` with {"generated_ms", "doc": doc, "results": results} embedded
 * (takes both references, as json_pack's "o"); returns the exit status (errors on stderr). Shared
 * by report and fit --report. */
struct json_t;
int cmd_report_write(const char *out,
                     const char *title,
                     struct json_t *doc,
                     struct json_t *results);

#endif
