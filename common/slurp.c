/*
 * slurp: a whole file into memory (slurp.h).
 */
#include "slurp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"

int slurp_file(const char *path, size_t max_bytes, char **ret_data, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    char *text = NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto out;
    }
    /* Room for the whole file as stat sees it (and the terminator), within the limit. */
    size_t limit = max_bytes + 1, len = 0;
    size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    if (cap > limit)
        cap = limit;
    text = malloc(cap + 1);
    if (!text) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= limit) {
                rc = -EFBIG;
                goto out;
            }
            size_t ncap = cap * 2 > limit ? limit : cap * 2;
            char *p = realloc(text, ncap + 1);
            if (!p) {
                rc = -ENOMEM;
                goto out;
            }
            text = p;
            cap = ncap;
        }
        ssize_t n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max_bytes) {
        rc = -EFBIG;
        goto out;
    }
    text[len] = '\0';
    *ret_data = text;
    *ret_len = len;
    text = NULL;
out:
    free(text);
    close(fd);
    return rc;
}

void slurp_error(char *err, size_t errlen, const char *path, size_t max_bytes, int rc)
{
    if (rc == -EFBIG)
        errbuf_set(err, errlen, "%s: larger than the limit of %zu bytes", path, max_bytes);
    else if (rc == -EISDIR)
        errbuf_set(err, errlen, "%s: is a directory", path);
    else
        errbuf_set(err, errlen, "%s: %s", path, strerror(-rc));
}
