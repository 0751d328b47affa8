/*
 * cmd_keygen: `regmixctl keygen` writes a CURVE key pair for the --curve-* options of
 * regmix-coordinator, regmix-worker and regmixctl (docs/protocol.md): PREFIX.key holds the secret
 * key (mode 0600), PREFIX.pub the public key, one Z85 line each (curve.h). The public key is
 * printed on stdout, so it can be appended to a coordinator's --curve-allow file.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "curve.h"

static void keygen_usage(FILE *f)
{
    fputs("usage: regmixctl keygen [--out PREFIX] [--force] [--json]\n"
          "\n"
          "Write a new CURVE key pair: PREFIX.key (the secret key, mode 0600) and PREFIX.pub\n"
          "(the public key), one Z85 key a line, and print the public key. A coordinator uses\n"
          "its .key with --curve-secret-key and hands its .pub to clients (--curve-server-key);\n"
          "a worker or regmixctl uses its own .key with --curve-secret-key, and its .pub goes\n"
          "into the coordinator's --curve-allow file.\n"
          "\n"
          "Options:\n"
          "  --out PREFIX  path prefix of the two files (default regmix)\n"
          "  --force       overwrite existing files (default: refuse)\n"
          "  --json        print {\"secret_key_file\", \"public_key_file\", \"public_key\"}\n"
          "  -h, --help    show this help\n"
          "\n"
          "Example:\n"
          "  regmixctl keygen --out /etc/regmix/coordinator\n"
          "  regmixctl keygen --out node17 >> /etc/regmix/allowed.txt\n",
          f);
}

int cmd_keygen(int argc, char **argv)
{
    const char *prefix = "regmix";
    int force = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            keygen_usage(stdout);
            return 0;
        } else if (strcmp(a, "--out") == 0) {
            if (i + 1 >= argc || !*argv[i + 1]) {
                fprintf(stderr, "regmixctl keygen: --out needs a path prefix\n");
                return 2;
            }
            prefix = argv[++i];
        } else if (strncmp(a, "--out=", 6) == 0 && a[6]) {
            prefix = a + 6;
        } else if (strcmp(a, "--force") == 0) {
            force = 1;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "regmixctl keygen: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    char pub[CURVE_KEY_Z85_LEN + 1], err[512];
    int rc = curve_keypair_write(prefix, force, pub, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "regmixctl keygen: %s%s\n", err,
                rc == -EEXIST ? " (use --force to overwrite)" : "");
        return rc == -EEXIST || rc == -EINVAL ? 2 : 1;
    }
    if (json) {
        char key_path[4096], pub_path[4096];
        snprintf(key_path, sizeof key_path, "%s.key", prefix);
        snprintf(pub_path, sizeof pub_path, "%s.pub", prefix);
        json_t *o = json_pack("{s:s, s:s, s:s}", "secret_key_file", key_path, "public_key_file",
                              pub_path, "public_key", pub);
        char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
        if (!s) {
            json_decref(o);
            fprintf(stderr, "regmixctl keygen: out of memory\n");
            return 1;
        }
        puts(s);
        free(s);
        json_decref(o);
    } else {
        puts(pub);
        fprintf(stderr, "regmixctl keygen: wrote %s.key (secret, mode 0600) and %s.pub\n", prefix,
                prefix);
    }
    return 0;
}
