/*
 * cmd_report: `regmixctl report SWEEP --out FILE.html`, the sweep's plots and the numbers behind
 * them as one self-contained HTML file (docs/dashboard.md). It asks the coordinator for the sweep
 * document (ReportRequest: the JSON of the dashboard's GET /api/sweeps/ID) and the results
 * (ResultsRequest), turns the results into the rows of the dashboard's results pages (weights in
 * the document's domain order), and writes the dashboard's page with both embedded
 * (web/webui.h): {"generated_ms", "doc", "results"}.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "clock.h"
#include "commands.h"
#include "render.h"
#include "webui.h"

/* The results as the rows of /api/sweeps/ID/results (without their cursor id). */
static json_t *report__rows(const Regmix__ResultsReply *r, json_t *domains)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < r->n_results; i++) {
        const Regmix__RunResult *x = r->results[i];
        json_t *w = json_array();
        for (size_t d = 0; d < json_array_size(domains); d++) {
            const char *name =
                    json_string_value(json_object_get(json_array_get(domains, d), "name"));
            double v = 0;
            for (size_t j = 0; name && j < x->n_weights; j++)
                if (x->weights[j]->domain && strcmp(x->weights[j]->domain, name) == 0)
                    v = x->weights[j]->weight;
            json_array_append_new(w, json_real(v));
        }
        json_array_append_new(rows,
                              json_pack("{s:I, s:i, s:s, s:o, s:o, s:o}", "idx",
                                        (json_int_t)x->run_index, "attempt", (int)x->attempt_no,
                                        "worker", render_str_or(x->worker_id, ""), "w", w, "loss",
                                        render_values_json(x->losses, x->n_losses), "seconds",
                                        render_num_json(x->seconds)));
    }
    return rows;
}

int cmd_report_write(const char *out, const char *title, json_t *doc, json_t *results)
{
    json_t *all = json_pack("{s:I, s:o, s:o}", "generated_ms", (json_int_t)clock_unix_ms(), "doc",
                            doc, "results", results);
    char *text = all ? json_dumps(all, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(all);
    if (!text) {
        fprintf(stderr, "regmixctl: out of memory writing %s\n", out);
        return 1;
    }
    char err[600];
    int rc = webui_report_save(out, title, text, err, sizeof err);
    free(text);
    if (rc < 0) {
        fprintf(stderr, "regmixctl: %s\n", err);
        return 1;
    }
    return 0;
}

int cmd_report_sweep(client_t *client, const char *sweep, const char *out)
{
    Regmix__Envelope req, *rep = NULL, *res = NULL;
    Regmix__ReportRequest rr = REGMIX__REPORT_REQUEST__INIT;
    frame_envelope_init(&req, 0);
    rr.sweep_id = (char *)sweep;
    req.body_case = REGMIX__ENVELOPE__BODY_REPORT;
    req.report = &rr;
    int st = client_call(client, &req, REGMIX__ENVELOPE__BODY_REPORT_REPLY, &rep);
    if (st)
        return st;
    json_t *doc = json_loads(render_str_or(rep->report_reply->sweep_json, ""), 0, NULL);
    frame_free(&rep);
    if (!json_is_object(doc)) {
        fprintf(stderr, "regmixctl report: the coordinator's sweep document is not JSON\n");
        json_decref(doc);
        return 1;
    }
    /* Every page of the results (the coordinator sends them a page at a time). */
    json_t *rows = json_array();
    Regmix__ResultsRequest qr = REGMIX__RESULTS_REQUEST__INIT;
    qr.sweep_id = (char *)sweep;
    for (;;) {
        frame_envelope_init(&req, 0);
        req.body_case = REGMIX__ENVELOPE__BODY_RESULTS;
        req.results = &qr;
        st = client_call(client, &req, REGMIX__ENVELOPE__BODY_RESULTS_REPLY, &res);
        if (st) {
            json_decref(rows);
            json_decref(doc);
            return st;
        }
        const Regmix__ResultsReply *r = res->results_reply;
        json_t *page = report__rows(r, json_object_get(doc, "domains"));
        json_array_extend(rows, page);
        json_decref(page);
        int more = r->more && r->n_results > 0;
        if (more) {
            qr.has_after = 1;
            qr.after_run_index = r->results[r->n_results - 1]->run_index;
        }
        frame_free(&res);
        if (!more)
            break;
    }
    char title[160];
    snprintf(title, sizeof title, "regmix report: %s", sweep);
    st = cmd_report_write(out, title, doc, rows);
    if (st == 0)
        printf("%s\n", out);
    return st;
}
