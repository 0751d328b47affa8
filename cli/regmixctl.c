/*
 * regmixctl: the command-line client of regmix. Offline commands (sample, fit, keygen) work on
 * files alone; the rest send requests to a coordinator's client endpoint, CURVE-encrypted when
 * keys are given (curve.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "curve.h"

static void usage(FILE *f)
{
    fputs("usage: regmixctl [--coordinator ENDPOINT] [--curve-server-key FILE]\n"
          "                 [--curve-secret-key FILE] COMMAND [ARGS...]\n"
          "\n"
          "Drive a RegMix data-mixture sweep: sample mixtures, fit the regression, and talk to a\n"
          "regmix-coordinator.\n"
          "\n"
          "Offline commands (no daemon needed):\n"
          "  sample    sample a sweep's mixtures from a spec into CSV\n"
          "  fit       fit mixture -> loss regression on CSV results and propose a mixture\n"
          "  next      the next mixtures to run (active search) from CSV results\n"
          "  keygen    write a CURVE key pair (PREFIX.key, PREFIX.pub) for --curve-* options\n"
          "\n"
          "Coordinator commands:\n"
          "  submit SPEC.yaml        submit a sweep\n"
          "  list                    list sweeps\n"
          "  status SWEEP            run counts and state of a sweep\n"
          "  watch SWEEP             follow a sweep until it ends\n"
          "  cancel SWEEP [--run N | --target]  cancel a sweep, one run, or its target\n"
          "  results SWEEP --csv     one row per finished run\n"
          "  fits SWEEP              every refit of a sweep\n"
          "  mixture SWEEP           the current proposed mixture\n"
          "  launch SWEEP            launch the target training now\n"
          "  target SWEEP            state and losses of the target runs\n"
          "  workers                 connected workers\n"
          "  report SWEEP --out F    the sweep's plots as one self-contained HTML file\n"
          "  drain WORKER            stop giving jobs to a worker\n"
          "\n"
          "Options:\n"
          "  --coordinator ENDPOINT  client endpoint (default $REGMIX_COORDINATOR, else\n"
          "                          tcp://127.0.0.1:5556)\n"
          "  --curve-server-key FILE the coordinator's CURVE public key (Z85): encrypt the\n"
          "                          connection (default $REGMIX_CURVE_SERVER_KEY)\n"
          "  --curve-secret-key FILE this client's CURVE secret key (Z85, from keygen); its\n"
          "                          public key must be on the coordinator's --curve-allow\n"
          "                          list. Without it, with a server key, a fresh key pair is\n"
          "                          used (default $REGMIX_CURVE_SECRET_KEY)\n"
          "  -h, --help              show this help\n"
          "  --version               show the version\n"
          "Every command takes --json and --help.\n"
          "\n"
          "Example:\n"
          "  regmixctl fit --mixtures train_mixture.csv --losses train_loss.csv \\\n"
          "      --target metric/the_pile_pile_cc_val_loss --prior prior.csv --json\n"
          "  regmixctl keygen --out alice\n"
          "  regmixctl --curve-server-key coordinator.pub --curve-secret-key alice.key list\n",
          f);
}

int main(int argc, char **argv)
{
    const char *endpoint = getenv("REGMIX_COORDINATOR");
    if (!endpoint || !*endpoint)
        endpoint = "tcp://127.0.0.1:5556";
    const char *curve_server = getenv("REGMIX_CURVE_SERVER_KEY");
    const char *curve_secret = getenv("REGMIX_CURVE_SECRET_KEY");
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--coordinator") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "regmixctl: --coordinator needs an endpoint\n");
                return 2;
            }
            endpoint = argv[++i];
        } else if (strncmp(argv[i], "--coordinator=", 14) == 0) {
            endpoint = argv[i] + 14;
        } else if (strcmp(argv[i], "--curve-server-key") == 0 ||
                   strcmp(argv[i], "--curve-secret-key") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "regmixctl: %s needs a key file\n", argv[i]);
                return 2;
            }
            if (strcmp(argv[i], "--curve-server-key") == 0)
                curve_server = argv[++i];
            else
                curve_secret = argv[++i];
        } else if (strncmp(argv[i], "--curve-server-key=", 19) == 0) {
            curve_server = argv[i] + 19;
        } else if (strncmp(argv[i], "--curve-secret-key=", 19) == 0) {
            curve_secret = argv[i] + 19;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("regmixctl %s\n", REGMIX_VERSION);
            return 0;
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "sample") == 0)
        return cmd_sample(argc - i, argv + i);
    if (strcmp(cmd, "fit") == 0)
        return cmd_fit(argc - i, argv + i);
    if (strcmp(cmd, "next") == 0)
        return cmd_next(argc - i, argv + i);
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(argc - i, argv + i);
    if (cmd[0] == '-') {
        fprintf(stderr, "regmixctl: unknown option '%s' (see regmixctl --help)\n", cmd);
        return 2;
    }
    curve_client_t curve;
    char err[512];
    if (curve_client_load(&curve, curve_server && *curve_server ? curve_server : NULL,
                          curve_secret && *curve_secret ? curve_secret : NULL, err,
                          sizeof err) < 0) {
        fprintf(stderr, "regmixctl: %s\n", err);
        return 2;
    }
    return cmd_client(endpoint, &curve, argc - i, argv + i);
}
