#include "gpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Copies a CSV field without its surrounding spaces. */
static void gpu__field(const char *s, size_t n, char *out, size_t size)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

int gpu_parse_nvidia_smi(const char *text, gpu_t *out, size_t max)
{
    size_t count = 0;
    const char *line = text;
    while (line && *line && count < max) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char fields[4][128] = {{0}};
        int nf = 0;
        const char *f = line;
        for (size_t i = 0; i <= len && nf < 4; i++) {
            if (i == len || line[i] == ',') {
                gpu__field(f, (size_t)(line + i - f), fields[nf++], sizeof fields[0]);
                f = line + i + 1;
            }
        }
        char *num_end = NULL;
        unsigned long idx = strtoul(fields[0], &num_end, 10);
        if (nf >= 2 && num_end != fields[0] && *num_end == '\0') {
            gpu_t *g = &out[count++];
            memset(g, 0, sizeof *g);
            g->index = (uint32_t)idx;
            snprintf(g->name, sizeof g->name, "%s", fields[1]);
            g->memory_bytes = (uint64_t)strtoull(fields[2], NULL, 10) * 1024ull * 1024ull;
            snprintf(g->uuid, sizeof g->uuid, "%.95s", fields[3]);
        }
        line = end ? end + 1 : NULL;
    }
    return (int)count;
}

int gpu_discover(const char *spec, gpu_t *out, size_t max)
{
    if (!spec || strcmp(spec, "none") == 0 || *spec == '\0')
        return 0;
    if (strcmp(spec, "auto") == 0) {
        FILE *f = popen("nvidia-smi --query-gpu=index,name,memory.total,uuid "
                        "--format=csv,noheader,nounits 2>/dev/null",
                        "r");
        if (!f)
            return 0;
        char buf[16384];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        int st = pclose(f);
        return st == 0 ? gpu_parse_nvidia_smi(buf, out, max) : 0;
    }
    size_t count = 0;
    const char *p = spec;
    while (*p) {
        char *end = NULL;
        errno = 0;
        unsigned long idx = strtoul(p, &end, 10);
        if (end == p || errno || idx > 1023 || (*end && *end != ',') || count >= max)
            return -EINVAL;
        memset(&out[count], 0, sizeof out[count]);
        out[count++].index = (uint32_t)idx;
        p = *end ? end + 1 : end;
    }
    return (int)count;
}
