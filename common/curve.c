#include "curve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int curve_key_parse(const char *line, char out[CURVE_KEY_Z85_LEN + 1])
{
    while (*line == ' ' || *line == '\t')
        line++;
    size_t n = 0;
    while (line[n] && line[n] != '\n' && line[n] != '\r' && line[n] != ' ' && line[n] != '\t')
        n++;
    if (n != CURVE_KEY_Z85_LEN)
        return -EINVAL;
    memcpy(out, line, CURVE_KEY_Z85_LEN);
    out[CURVE_KEY_Z85_LEN] = '\0';
    uint8_t bin[32];
    return zmq_z85_decode(bin, out) ? 0 : -EINVAL;
}

int curve_key_read(const char *path,
                   const char *what,
                   char out[CURVE_KEY_Z85_LEN + 1],
                   char *err,
                   size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char line[512];
    int rc = -EINVAL;
    while (fgets(line, sizeof line, f)) {
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' || *p == '\n' || *p == '\r')
            continue;
        rc = curve_key_parse(p, out);
        break;
    }
    fclose(f);
    if (rc < 0)
        snprintf(err, errlen, "%s: not a Z85 %s (40 characters)", path, what);
    return rc;
}

int curve_client_load(curve_client_t *c,
                      const char *server_key_path,
                      const char *secret_key_path,
                      char *err,
                      size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (!server_key_path && !secret_key_path)
        return 0;
    if (!server_key_path) {
        snprintf(err, errlen, "a CURVE secret key needs the server's public key too");
        return -EINVAL;
    }
    int rc = curve_key_read(server_key_path, "CURVE public key", c->server_public, err, errlen);
    if (rc < 0)
        return rc;
    if (secret_key_path) {
        rc = curve_key_read(secret_key_path, "CURVE secret key", c->secret, err, errlen);
        if (rc < 0)
            return rc;
        if (zmq_curve_public(c->public_, c->secret) != 0) {
            snprintf(err, errlen, "%s: cannot derive the public key: %s", secret_key_path,
                     zmq_strerror(errno));
            return -EINVAL;
        }
    } else if (zmq_curve_keypair(c->public_, c->secret) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot make a CURVE key pair: %s", zmq_strerror(e));
        return -e;
    }
    c->enabled = 1;
    return 0;
}

int curve_client_apply(const curve_client_t *c, void *sock)
{
    if (!c || !c->enabled)
        return 0;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, c->server_public, CURVE_KEY_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->public_, CURVE_KEY_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->secret, CURVE_KEY_Z85_LEN + 1) != 0)
        return -errno;
    return 0;
}

/* Writes `key` and a newline to path with `mode`; returns 0 or -errno (message in err). */
static int curve__write_key(
        const char *path, const char *key, mode_t mode, int overwrite, char *err, size_t errlen)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, mode);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char line[CURVE_KEY_Z85_LEN + 2];
    memcpy(line, key, CURVE_KEY_Z85_LEN);
    line[CURVE_KEY_Z85_LEN] = '\n';
    int rc = 0;
    errno = 0;
    /* An overwritten file keeps its old mode unless it is set again. */
    if (fchmod(fd, mode) != 0 || write(fd, line, CURVE_KEY_Z85_LEN + 1) != CURVE_KEY_Z85_LEN + 1)
        rc = errno ? -errno : -EIO;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    return rc;
}

int curve_keypair_write(const char *prefix,
                        int overwrite,
                        char public_out[CURVE_KEY_Z85_LEN + 1],
                        char *err,
                        size_t errlen)
{
    char key_path[4096], pub_path[4096];
    if (!prefix || !*prefix ||
        snprintf(key_path, sizeof key_path, "%s.key", prefix) >= (int)sizeof key_path ||
        snprintf(pub_path, sizeof pub_path, "%s.pub", prefix) >= (int)sizeof pub_path) {
        snprintf(err, errlen, "bad key file prefix");
        return -EINVAL;
    }
    /* Refuse before writing anything, so a clash never leaves half a pair. */
    if (!overwrite) {
        const char *paths[2] = {key_path, pub_path};
        for (int i = 0; i < 2; i++) {
            struct stat st;
            if (lstat(paths[i], &st) == 0) {
                snprintf(err, errlen, "%s: %s", paths[i], strerror(EEXIST));
                return -EEXIST;
            }
        }
    }
    char pub[CURVE_KEY_Z85_LEN + 1], sec[CURVE_KEY_Z85_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot make a CURVE key pair: %s", zmq_strerror(e));
        return -e;
    }
    int rc = curve__write_key(key_path, sec, 0600, overwrite, err, errlen);
    if (rc == 0)
        rc = curve__write_key(pub_path, pub, 0644, overwrite, err, errlen);
    if (rc == 0 && public_out)
        memcpy(public_out, pub, CURVE_KEY_Z85_LEN + 1);
    memset(sec, 0, sizeof sec);
    return rc;
}
