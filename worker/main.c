/*
 * regmix-worker: runs proxy-training attempts for a regmix-coordinator (docs/protocol.md).
 *
 * This file is the program: its options, their checks and defaults (exit 2 on bad usage), then
 * worker_new(), worker_start(), worker_run() and worker_destroy() (worker.h). The daemon itself
 * is worker.c (lifecycle), session.c (the protocol), jobs.c (slots and queue), outbox.c
 * (reports until acknowledged) and net.c (the socket and its CURVE connection events).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "config.h"
#include "curve.h"
#include "gpu.h"
#include "log.h"
#include "worker.h"

static void usage(FILE *f)
{
    fputs("usage: regmix-worker --coordinator ENDPOINT [OPTIONS]\n"
          "\n"
          "Run RegMix proxy-training attempts for a regmix-coordinator: connect to its worker\n"
          "endpoint, announce the slots and GPUs of this machine, run each assigned attempt\n"
          "(regmix-train, a command, or a synthetic job) in its own directory, stream progress\n"
          "and send the result until the coordinator acknowledges it.\n"
          "\n"
          "Options:\n"
          "  --coordinator ENDPOINT  coordinator's worker endpoint, e.g. tcp://host:5555\n"
          "                          (default $REGMIX_WORKER_ENDPOINT)\n"
          "  --slots N               attempts run at once (default: GPUs found, at least 1)\n"
          "  --gpus auto|none|LIST   GPUs offered: auto asks nvidia-smi, LIST is e.g. 0,1\n"
          "                          (default auto)\n"
          "  --workdir DIR           job directories (logs, result.json until acknowledged)\n"
          "                          and outbox.jsonl (synthetic results until acknowledged)\n"
          "                          (default /var/tmp/regmix-worker/NAME)\n"
          "  --name NAME             worker name; the id is HOST:NAME (default worker); a\n"
          "                          second worker with the same name on one host exits 2\n"
          "  --allow-commands        run `proxy.trainer: command` jobs (a spec's argv, as this\n"
          "                          user); off by default: such jobs fail at once\n"
          "  --trainer PATH          regmix-train to run for builtin jobs (default next to this\n"
          "                          program in ../train/, else on PATH)\n"
          "  --kill-grace-ms MS      SIGTERM to SIGKILL delay when cancelling (default 5000)\n"
          "  --curve-server-key FILE the coordinator's CURVE public key (Z85): encrypt the\n"
          "                          connection (default $REGMIX_CURVE_SERVER_KEY)\n"
          "  --curve-secret-key FILE this worker's CURVE secret key (Z85, e.g. from regmixctl\n"
          "                          keygen); its public key must be on the coordinator's\n"
          "                          --curve-allow list. Without it, with a server key, a\n"
          "                          fresh key pair is used (default $REGMIX_CURVE_SECRET_KEY)\n"
          "  --log-level L           debug, info, warn or error (default info)\n"
          "  -h, --help              show this help\n"
          "  --version               show the version\n"
          "\n"
          "Example:\n"
          "  regmix-worker --coordinator tcp://10.0.0.1:5555 --slots 8 --gpus auto \\\n"
          "      --workdir /scratch/regmix --name node17 \\\n"
          "      --curve-server-key /etc/regmix/coordinator.pub \\\n"
          "      --curve-secret-key /etc/regmix/node17.key\n",
          f);
}

static int parse_uint(const char *s, unsigned max, unsigned *ret)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v > max || s[0] == '-')
        return -EINVAL;
    *ret = (unsigned)v;
    return 0;
}

static void default_trainer(char *buf, size_t size)
{
    char exe[PATH_MAX];
    size_t len = sizeof exe;
    if (uv_exepath(exe, &len) == 0) {
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            int n = snprintf(buf, size, "%s/../train/regmix-train", exe);
            if (n > 0 && (size_t)n < size && access(buf, X_OK) == 0)
                return;
        }
    }
    snprintf(buf, size, "regmix-train");
}

int main(int argc, char **argv)
{
    enum {
        OPT_COORD = 1000,
        OPT_SLOTS,
        OPT_GPUS,
        OPT_WORKDIR,
        OPT_NAME,
        OPT_TRAINER,
        OPT_LOG,
        OPT_GRACE,
        OPT_CURVE_SERVER,
        OPT_CURVE_SECRET,
        OPT_ALLOW_COMMANDS,
        OPT_VERSION
    };
    static const struct option opts[] = {
            {"coordinator", required_argument, NULL, OPT_COORD},
            {"slots", required_argument, NULL, OPT_SLOTS},
            {"gpus", required_argument, NULL, OPT_GPUS},
            {"workdir", required_argument, NULL, OPT_WORKDIR},
            {"name", required_argument, NULL, OPT_NAME},
            {"trainer", required_argument, NULL, OPT_TRAINER},
            {"log-level", required_argument, NULL, OPT_LOG},
            {"kill-grace-ms", required_argument, NULL, OPT_GRACE},
            {"curve-server-key", required_argument, NULL, OPT_CURVE_SERVER},
            {"curve-secret-key", required_argument, NULL, OPT_CURVE_SECRET},
            {"allow-commands", no_argument, NULL, OPT_ALLOW_COMMANDS},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, OPT_VERSION},
            {NULL, 0, NULL, 0},
    };
    const char *endpoint = getenv("REGMIX_WORKER_ENDPOINT");
    const char *gpus = "auto", *workdir = NULL, *name = "worker", *trainer = NULL;
    const char *curve_server = getenv("REGMIX_CURVE_SERVER_KEY");
    const char *curve_secret = getenv("REGMIX_CURVE_SECRET_KEY");
    unsigned slots = 0, grace = 5000;
    int allow_commands = 0;
    log_level_t level = LOG_LEVEL_INFO;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_COORD:
            endpoint = optarg;
            break;
        case OPT_SLOTS:
            if (parse_uint(optarg, WORKER_MAX_SLOTS, &slots) < 0 || slots == 0) {
                fprintf(stderr, "regmix-worker: --slots must be 1..%d\n", WORKER_MAX_SLOTS);
                return 2;
            }
            break;
        case OPT_GPUS:
            gpus = optarg;
            break;
        case OPT_WORKDIR:
            workdir = optarg;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        case OPT_TRAINER:
            trainer = optarg;
            break;
        case OPT_CURVE_SERVER:
            curve_server = optarg;
            break;
        case OPT_ALLOW_COMMANDS:
            allow_commands = 1;
            break;
        case OPT_CURVE_SECRET:
            curve_secret = optarg;
            break;
        case OPT_GRACE:
            if (parse_uint(optarg, 3600000, &grace) < 0) {
                fprintf(stderr, "regmix-worker: bad --kill-grace-ms '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_LOG:
            if (log_level_parse(optarg, &level) < 0) {
                fprintf(stderr, "regmix-worker: bad --log-level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("regmix-worker %s\n", REGMIX_VERSION);
            return 0;
        default:
            fprintf(stderr, "regmix-worker: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "regmix-worker: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (!endpoint || !*endpoint) {
        fprintf(stderr, "regmix-worker: --coordinator ENDPOINT is required (see --help)\n");
        return 2;
    }
    if (!*name || strchr(name, '/')) {
        fprintf(stderr, "regmix-worker: --name must be non-empty and without '/'\n");
        return 2;
    }
    log_init("regmix-worker", level);
    signal(SIGPIPE, SIG_IGN);

    static worker_config_t cfg;
    cfg.endpoint = endpoint;
    cfg.name = name;
    cfg.kill_grace_ms = (int)grace;
    cfg.allow_commands = allow_commands;
    char err[512];
    if (curve_client_load(&cfg.curve, curve_server && *curve_server ? curve_server : NULL,
                          curve_secret && *curve_secret ? curve_secret : NULL, err,
                          sizeof err) < 0) {
        fprintf(stderr, "regmix-worker: %s\n", err);
        return 2;
    }
    cfg.n_gpus = gpu_discover(gpus, cfg.gpus, GPU_MAX);
    if (cfg.n_gpus < 0) {
        fprintf(stderr, "regmix-worker: bad --gpus '%s' (auto, none or e.g. 0,1)\n", gpus);
        return 2;
    }
    cfg.slots = slots ? slots : (cfg.n_gpus > 0 ? (unsigned)cfg.n_gpus : 1);
    static char workdir_buf[PATH_MAX], trainer_buf[PATH_MAX];
    if (!workdir) {
        snprintf(workdir_buf, sizeof workdir_buf, "/var/tmp/regmix-worker/%s", name);
        workdir = workdir_buf;
    }
    if (!trainer) {
        default_trainer(trainer_buf, sizeof trainer_buf);
        trainer = trainer_buf;
    }
    cfg.workdir = workdir;
    cfg.trainer = trainer;

    uv_loop_t *loop = uv_default_loop();
    worker_t *w = NULL;
    int rc = worker_new(loop, &cfg, &w, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "regmix-worker: %s\n", err);
        return rc == -EBUSY ? 2 : 1;
    }
    rc = worker_start(w);
    if (rc < 0) {
        fprintf(stderr, "regmix-worker: cannot connect to %s: %s\n", endpoint, zmq_strerror(-rc));
        worker_destroy(&w);
        return 2;
    }
    int status = worker_run(w);
    char id[sizeof w->worker_id];
    snprintf(id, sizeof id, "%s", w->worker_id);
    worker_destroy(&w);
    uv_loop_close(loop);
    log_info("stopped", "worker=%s status=%d", id, status);
    return status;
}
