/*
 * webui: the HTML page of the live dashboard and of the one-file report (docs/dashboard.md).
 *
 * One page (web/page.html, web/style.css, web/plot.js, web/app.js), compiled into the binaries
 * by web/embed.py, serves both: without data it is the dashboard, which polls the coordinator's
 * /api/ endpoints from the origin that served it; with data (a JSON document of the /api/ shapes,
 * see docs/dashboard.md) it is a report that draws the same charts from that JSON alone. The page
 * names no external URL and its Content-Security-Policy forbids fetching anything but its own
 * origin's /api/ (the report has no origin to fetch from), so it renders offline.
 */
#ifndef REGMIX_WEB_WEBUI_H
#define REGMIX_WEB_WEBUI_H

#include <stdio.h>

/* Writes the whole page to f. `title` is plain text (escaped here). `data_json` is NULL for the
 * dashboard, else the report's document ({"generated_ms":.., "doc":{..}, "results":[..]}),
 * embedded as is except that every '<' is written as \u003c so that it cannot end its <script>.
 * Returns 0, or -EIO when writing failed. */
int webui_page_write(FILE *f, const char *title, const char *data_json);

/* The dashboard page (no data) in a malloc'd buffer of *ret_len bytes; NULL when out of
 * memory. */
char *webui_dashboard_page(size_t *ret_len);

/* Writes the report page to `path` (replacing it atomically: a temporary file in the same folder,
 * then rename). Returns 0 or a negative errno; err gets one line naming the file. */
int webui_report_save(
        const char *path, const char *title, const char *data_json, char *err, size_t errlen);

#endif
