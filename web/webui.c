#include "webui.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"

/* web/embed.py's output (web_assets.c). */
extern const char *const webui__page, *const webui__style, *const webui__plot, *const webui__app;
extern const size_t webui__page_len, webui__style_len, webui__plot_len, webui__app_len;

static void webui__escape_html(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void webui__data(FILE *f, const char *json)
{
    if (!json)
        return;
    fputs("<script id=\"regmix-data\" type=\"application/json\">", f);
    for (const char *p = json; *p; p++) {
        if (*p == '<')
            fputs("\\u003c", f);
        else
            fputc(*p, f);
    }
    fputs("</script>", f);
}

int webui_page_write(FILE *f, const char *title, const char *data_json)
{
    const char *p = webui__page, *end = webui__page + webui__page_len;
    while (p < end) {
        const char *at = memchr(p, '@', (size_t)(end - p));
        if (!at) {
            fwrite(p, 1, (size_t)(end - p), f);
            break;
        }
        fwrite(p, 1, (size_t)(at - p), f);
        const char *close = memchr(at + 1, '@', (size_t)(end - at - 1));
        size_t klen = close ? (size_t)(close - at - 1) : 0;
        const char *key = at + 1;
        if (close && klen == 5 && memcmp(key, "TITLE", 5) == 0)
            webui__escape_html(f, title ? title : "regmix");
        else if (close && klen == 5 && memcmp(key, "STYLE", 5) == 0)
            fwrite(webui__style, 1, webui__style_len, f);
        else if (close && klen == 4 && memcmp(key, "PLOT", 4) == 0)
            fwrite(webui__plot, 1, webui__plot_len, f);
        else if (close && klen == 3 && memcmp(key, "APP", 3) == 0)
            fwrite(webui__app, 1, webui__app_len, f);
        else if (close && klen == 4 && memcmp(key, "DATA", 4) == 0)
            webui__data(f, data_json);
        else {
            fputc('@', f); /* not a placeholder */
            p = at + 1;
            continue;
        }
        p = close + 1;
    }
    return ferror(f) ? -EIO : 0;
}

char *webui_dashboard_page(size_t *ret_len)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    int rc = webui_page_write(f, "regmix dashboard", NULL);
    if (fclose(f) != 0 || rc < 0) {
        free(buf);
        return NULL;
    }
    *ret_len = len;
    return buf;
}

int webui_report_save(
        const char *path, const char *title, const char *data_json, char *err, size_t errlen)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, n + 16, "%s.tmpXXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        errbuf_set(err, errlen, "%s: cannot create: %s", path, strerror(e));
        free(tmp);
        return -e;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        errbuf_set(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    fchmod(fd, 0644);
    int rc = webui_page_write(f, title, data_json);
    if (fflush(f) != 0 || fsync(fd) != 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        errbuf_set(err, errlen, "%s: cannot write: %s", path, strerror(-rc));
    }
    free(tmp);
    return rc;
}
