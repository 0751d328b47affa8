/*
 * checkpoint.c: save and load the trainer's state (see checkpoint.h).
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char checkpoint__magic[8] = "RMXCKPT1";

static int checkpoint__write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int checkpoint__read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int checkpoint_save(const char *dir,
                    const checkpoint_header_t *h,
                    const float *params,
                    const float *m,
                    const float *v,
                    char *err,
                    size_t errlen)
{
    if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "%s: mkdir: %s", dir, strerror(e));
        return -e;
    }
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/checkpoint.bin.tmp", dir);
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(e));
        return -e;
    }
    size_t n = (size_t)h->params * sizeof(float);
    int rc = checkpoint__write_all(fd, checkpoint__magic, sizeof checkpoint__magic);
    if (rc == 0)
        rc = checkpoint__write_all(fd, h, sizeof *h);
    if (rc == 0)
        rc = checkpoint__write_all(fd, params, n);
    if (rc == 0)
        rc = checkpoint__write_all(fd, m, n);
    if (rc == 0)
        rc = checkpoint__write_all(fd, v, n);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "%s: writing the checkpoint: %s", path, strerror(-rc));
        unlink(tmp);
    }
    return rc;
}

int checkpoint_load(const char *dir,
                    const checkpoint_header_t *want,
                    checkpoint_header_t *ret_h,
                    float *params,
                    float *m,
                    float *v,
                    char *err,
                    size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.bin", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return -ENOENT;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -EINVAL;
    }
    char magic[8];
    checkpoint_header_t h;
    int rc = checkpoint__read_all(fd, magic, sizeof magic);
    if (rc == 0)
        rc = checkpoint__read_all(fd, &h, sizeof h);
    if (rc < 0 || memcmp(magic, checkpoint__magic, sizeof magic) != 0) {
        snprintf(err, errlen, "%s: not a regmix-train checkpoint", path);
        close(fd);
        return -EINVAL;
    }
    if (memcmp(&h.model, &want->model, sizeof h.model) != 0 || h.params != want->params ||
        h.seed != want->seed || h.batch != want->batch) {
        snprintf(err, errlen,
                 "%s: checkpoint is for another run (model shape, seed or batch differ)", path);
        close(fd);
        return -EINVAL;
    }
    size_t n = (size_t)h.params * sizeof(float);
    rc = checkpoint__read_all(fd, params, n);
    if (rc == 0)
        rc = checkpoint__read_all(fd, m, n);
    if (rc == 0)
        rc = checkpoint__read_all(fd, v, n);
    close(fd);
    if (rc < 0) {
        snprintf(err, errlen, "%s: truncated checkpoint", path);
        return -EINVAL;
    }
    *ret_h = h;
    return 0;
}
