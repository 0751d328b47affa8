#include <errno.h>
#include <stdio.h>

#include "exporter.h"

int exporter_start(struct coord *c, const char *addr, exporter_t **ret, char *err, size_t errlen)
{
    (void)c;
    (void)addr;
    (void)ret;
    snprintf(err, errlen, "--metrics: built without libmicrohttpd");
    return -ENOTSUP;
}

void exporter_stop(exporter_t **e_p)
{
    if (e_p)
        *e_p = NULL;
}
