/*
 * regmix-coordinator: keeps sweeps in SQLite and hands proxy-training jobs to workers over
 * ZeroMQ (docs/protocol.md, docs/store.md). This file is options, the config file, and the loop's life; the
 * daemon itself is daemon.c and the modules below it (docs/coordinator.md).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "notify.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: regmix-coordinator [OPTIONS]\n"
            "\n"
            "The RegMix coordinator daemon: stores sweeps in SQLite, hands proxy-training jobs\n"
            "to regmix-worker daemons (ZeroMQ ROUTER) and answers regmixctl (a second ROUTER).\n"
            "Logs key=value lines to stderr. SIGTERM/SIGINT: commit, close, exit 0.\n"
            "\n"
            "Options:\n"
            "  --db PATH            SQLite database (default ./regmix.db; created if absent)\n"
            "  --workers ENDPOINT   worker endpoint to bind (default tcp://127.0.0.1:5555)\n"
            "  --clients ENDPOINT   client endpoint to bind (default tcp://127.0.0.1:5556;\n"
            "                       ipc:///PATH binds a socket file only this user can use)\n"
            "  --config FILE        key = value lines: db, workers, clients, heartbeat_ms,\n"
            "                       lease_ms, log_level, max_workers, max_sweeps,\n"
            "                       curve_secret_key, curve_allow, curve_allow_workers,\n"
            "                       curve_allow_clients, insecure, allow_commands,\n"
            "                       synchronous (full, the default, or normal: a commit\n"
            "                       survives a crash of the process but not of the OS),\n"
            "                       metrics, targets_dir, trainer,\n"
            "                       max_spec_bytes, quarantine_after, quarantine_ms (a\n"
            "                       quarantined worker gets one attempt on probation after\n"
            "                       this long, default 600000), linger_ms,\n"
            "                       commit_window_ms (group commit window, default 0:\n"
            "                       one commit per loop iteration),\n"
            "                       progress_every_ms (progress thinning, default 5000),\n"
            "                       target_poll_ms\n"
            "                       (options on the command line win)\n"
            "  --heartbeat-ms N     worker ping interval sent in WELCOME (default 1000);\n"
            "                       a worker silent for 3 intervals is lost\n"
            "  --lease-ms N         attempt lease (default 30000): a lost worker's attempts are\n"
            "                       requeued once it has been silent this long\n"
            "  --log-level L        debug, info, warn or error (default info)\n"
            "  --curve-secret-key FILE  CURVE-encrypt both endpoints with this server secret\n"
            "                       key (Z85, 40 characters; the public key derives from it)\n"
            "  --curve-allow-workers FILE  with CURVE: accept only these worker public keys\n"
            "                       (Z85, one a line) on the worker endpoint; a worker id is\n"
            "                       then bound to the key that first said HELLO for it\n"
            "  --curve-allow-clients FILE  the same for regmixctl keys on the client endpoint\n"
            "  --curve-allow FILE   one allow list for both endpoints (prefer the two above)\n"
            "  --insecure           bind a non-loopback endpoint without CURVE and an allow\n"
            "                       list for it (refused otherwise: anyone who reaches it could\n"
            "                       pose as a worker or submit sweeps)\n"
            "  --allow-commands     run `launcher: command` target launches (off: a spec cannot\n"
            "                       make the coordinator run a command)\n"
            "  --metrics HOST:PORT  serve GET /metrics (Prometheus text) and /healthz over HTTP\n"
            "                       (needs libmicrohttpd; e.g. 127.0.0.1:9555)\n"
            "  --targets-dir DIR    work directories of target launches (default: the\n"
            "                       database's directory + /targets)\n"
            "  --trainer PATH       regmix-train as the launch hosts see it (default\n"
            "                       regmix-train on PATH)\n"
            "  --target-poll-ms N   how often a target's Slurm job or MPIJob is polled\n"
            "                       (scontrol/sacct, kubectl get; default 5000)\n"
            "  --help               this text\n"
            "  --version            the version\n"
            "\n"
            "Examples:\n"
            "  regmix-coordinator --db ./regmix.db        (one machine: loopback, no keys)\n"
            "  regmix-coordinator --db /var/lib/regmix/regmix.db --workers tcp://0.0.0.0:5555 \\\n"
            "      --curve-secret-key coordinator.key --curve-allow-workers workers.allow \\\n"
            "      --curve-allow-clients clients.allow\n");
}

static int parse_int(const char *s, int lo, int hi, int *ret)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *ret = (int)v;
    return 0;
}

static int parse_bool(const char *s, int *ret)
{
    if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
        *ret = 1;
    else if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
        *ret = 0;
    else
        return -EINVAL;
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Strings from the config file live until exit (they are few and small). */
static int read_config(const char *path, coord_config_t *cfg, const char **log_level)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "regmix-coordinator: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = trim(line);
        if (!*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            fprintf(stderr, "regmix-coordinator: %s:%d: expected key = value\n", path, lineno);
            bad = 1;
            break;
        }
        *eq = '\0';
        char *key = trim(p), *val = trim(eq + 1);
        int iv = 0, r = 0;
        if (strcmp(key, "db") == 0)
            cfg->db_path = strdup(val);
        else if (strcmp(key, "workers") == 0)
            cfg->workers_ep = strdup(val);
        else if (strcmp(key, "clients") == 0)
            cfg->clients_ep = strdup(val);
        else if (strcmp(key, "log_level") == 0)
            *log_level = strdup(val);
        else if (strcmp(key, "curve_secret_key") == 0)
            cfg->curve_secret_path = strdup(val);
        else if (strcmp(key, "curve_allow") == 0)
            cfg->curve_allow_path = strdup(val);
        else if (strcmp(key, "curve_allow_workers") == 0)
            cfg->curve_allow_workers_path = strdup(val);
        else if (strcmp(key, "curve_allow_clients") == 0)
            cfg->curve_allow_clients_path = strdup(val);
        else if (strcmp(key, "insecure") == 0)
            r = parse_bool(val, &cfg->insecure);
        else if (strcmp(key, "allow_commands") == 0)
            r = parse_bool(val, &cfg->allow_commands);
        else if (strcmp(key, "synchronous") == 0 &&
                 (strcmp(val, "full") == 0 || strcmp(val, "normal") == 0))
            cfg->sync_normal = strcmp(val, "normal") == 0;
        else if (strcmp(key, "metrics") == 0)
            cfg->metrics_addr = strdup(val);
        else if (strcmp(key, "targets_dir") == 0)
            cfg->targets_dir = strdup(val);
        else if (strcmp(key, "trainer") == 0)
            cfg->trainer = strdup(val);
        else if (strcmp(key, "heartbeat_ms") == 0 && !(r = parse_int(val, 10, 600000, &iv)))
            cfg->heartbeat_ms = iv;
        else if (strcmp(key, "lease_ms") == 0 && !(r = parse_int(val, 10, 86400000, &iv)))
            cfg->lease_ms = iv;
        else if (strcmp(key, "max_workers") == 0 && !(r = parse_int(val, 1, 100000, &iv)))
            cfg->max_workers = iv;
        else if (strcmp(key, "max_sweeps") == 0 && !(r = parse_int(val, 1, 100000, &iv)))
            cfg->max_sweeps = iv;
        else if (strcmp(key, "max_spec_bytes") == 0 && !(r = parse_int(val, 1, 1 << 20, &iv)))
            cfg->max_spec_bytes = (size_t)iv;
        else if (strcmp(key, "quarantine_after") == 0 && !(r = parse_int(val, 1, 1000000, &iv)))
            cfg->quarantine_after = iv;
        else if (strcmp(key, "quarantine_ms") == 0 && !(r = parse_int(val, 1000, 86400000, &iv)))
            cfg->quarantine_ms = iv;
        else if (strcmp(key, "linger_ms") == 0 && !(r = parse_int(val, 0, 60000, &iv)))
            cfg->linger_ms = iv;
        else if (strcmp(key, "commit_window_ms") == 0 && !(r = parse_int(val, 0, 1000, &iv)))
            cfg->commit_window_ms = iv;
        else if (strcmp(key, "progress_every_ms") == 0 && !(r = parse_int(val, 0, 3600000, &iv)))
            cfg->progress_every_ms = iv;
        else if (strcmp(key, "target_poll_ms") == 0 && !(r = parse_int(val, 50, 3600000, &iv)))
            cfg->target_poll_ms = iv;
        else
            r = -ENOENT;
        if (r < 0) {
            fprintf(stderr, "regmix-coordinator: %s:%d: %s '%s'\n", path, lineno,
                    r == -ENOENT ? "unknown key" : "bad value for", key);
            bad = 1;
            break;
        }
    }
    fclose(f);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    enum {
        OPT_DB = 256,
        OPT_WORKERS,
        OPT_CLIENTS,
        OPT_CONFIG,
        OPT_HB,
        OPT_LEASE,
        OPT_LOG,
        OPT_CURVE_SECRET,
        OPT_CURVE_ALLOW,
        OPT_METRICS,
        OPT_TARGETS_DIR,
        OPT_TRAINER,
        OPT_CURVE_ALLOW_WORKERS,
        OPT_CURVE_ALLOW_CLIENTS,
        OPT_INSECURE,
        OPT_ALLOW_COMMANDS,
        OPT_TARGET_POLL,
    };
    static const struct option opts[] = {
            {"db", required_argument, NULL, OPT_DB},
            {"workers", required_argument, NULL, OPT_WORKERS},
            {"clients", required_argument, NULL, OPT_CLIENTS},
            {"config", required_argument, NULL, OPT_CONFIG},
            {"heartbeat-ms", required_argument, NULL, OPT_HB},
            {"lease-ms", required_argument, NULL, OPT_LEASE},
            {"log-level", required_argument, NULL, OPT_LOG},
            {"curve-secret-key", required_argument, NULL, OPT_CURVE_SECRET},
            {"curve-allow", required_argument, NULL, OPT_CURVE_ALLOW},
            {"curve-allow-workers", required_argument, NULL, OPT_CURVE_ALLOW_WORKERS},
            {"curve-allow-clients", required_argument, NULL, OPT_CURVE_ALLOW_CLIENTS},
            {"insecure", no_argument, NULL, OPT_INSECURE},
            {"allow-commands", no_argument, NULL, OPT_ALLOW_COMMANDS},
            {"metrics", required_argument, NULL, OPT_METRICS},
            {"targets-dir", required_argument, NULL, OPT_TARGETS_DIR},
            {"trainer", required_argument, NULL, OPT_TRAINER},
            {"target-poll-ms", required_argument, NULL, OPT_TARGET_POLL},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0},
    };
    coord_config_t cfg;
    coord_config_defaults(&cfg);
    const char *config = NULL, *log_level = "info";
    /* First pass: find --config, so the command line can override the file. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
    }
    if (config && read_config(config, &cfg, &log_level) < 0)
        return 2;
    int c;
    while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        int r = 0;
        switch (c) {
        case OPT_DB:
            cfg.db_path = optarg;
            break;
        case OPT_WORKERS:
            cfg.workers_ep = optarg;
            break;
        case OPT_CLIENTS:
            cfg.clients_ep = optarg;
            break;
        case OPT_CONFIG:
            break;
        case OPT_HB:
            r = parse_int(optarg, 10, 600000, &cfg.heartbeat_ms);
            break;
        case OPT_LEASE:
            r = parse_int(optarg, 10, 86400000, &cfg.lease_ms);
            break;
        case OPT_LOG:
            log_level = optarg;
            break;
        case OPT_CURVE_SECRET:
            cfg.curve_secret_path = optarg;
            break;
        case OPT_CURVE_ALLOW:
            cfg.curve_allow_path = optarg;
            break;
        case OPT_CURVE_ALLOW_WORKERS:
            cfg.curve_allow_workers_path = optarg;
            break;
        case OPT_CURVE_ALLOW_CLIENTS:
            cfg.curve_allow_clients_path = optarg;
            break;
        case OPT_INSECURE:
            cfg.insecure = 1;
            break;
        case OPT_ALLOW_COMMANDS:
            cfg.allow_commands = 1;
            break;
        case OPT_METRICS:
            cfg.metrics_addr = optarg;
            break;
        case OPT_TARGETS_DIR:
            cfg.targets_dir = optarg;
            break;
        case OPT_TRAINER:
            cfg.trainer = optarg;
            break;
        case OPT_TARGET_POLL: {
            int v;
            if (parse_int(optarg, 50, 3600000, &v) < 0) {
                fprintf(stderr,
                        "regmix-coordinator: --target-poll-ms: '%s' is not a number of "
                        "milliseconds from 50 to 3600000\n",
                        optarg);
                return 2;
            }
            cfg.target_poll_ms = v;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("regmix-coordinator %s\n", REGMIX_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (r < 0) {
            fprintf(stderr, "regmix-coordinator: bad value '%s' for %s\n", optarg,
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "regmix-coordinator: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    log_level_t level;
    if (log_level_parse(log_level, &level) < 0) {
        fprintf(stderr, "regmix-coordinator: bad log level '%s'\n", log_level);
        return 2;
    }
    log_init("regmix-coordinator", level);

    uv_loop_t *loop = uv_default_loop();
    daemon_t *d = NULL;
    char err[512] = "";
    int r = daemon_new(loop, &cfg, &d, err, sizeof err);
    if (r < 0) {
        char q[600];
        log_error("start_failed", "error=%s", log_quote(err[0] ? err : strerror(-r), q, sizeof q));
        uv_loop_close(loop);
        /* Refused by protected mode: the operator's input, not a failure. */
        return r == -EPERM ? 2 : 1;
    }
    notify_ready("serving");
    uv_run(loop, UV_RUN_DEFAULT);
    coord_t *co = daemon_coord(d);
    int fatal = co->fatal;
    if (fatal) {
        /* Storage failed: close what we can without committing. */
        daemon_stop(d);
        uv_run(loop, UV_RUN_DEFAULT);
    }
    log_info("coordinator_stopped", "assigned=%llu results=%llu fenced=%llu bad_input=%llu",
             (unsigned long long)co->n_assigned, (unsigned long long)co->n_results,
             (unsigned long long)co->n_fenced, (unsigned long long)co->n_bad_input);
    daemon_destroy(&d);
    uv_loop_close(loop);
    return fatal ? 1 : 0;
}
