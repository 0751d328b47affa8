/*
 * outbox: reports kept until acknowledged (outbox.h).
 */
#include "outbox.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "frame.h"
#include "log.h"
#include "net.h"

/* Sends a held report as RESULT or FAILED. */
void outbox_send(worker_t *w, held_t *h)
{
    const report_t *r = &h->r;
    Regmix__Envelope env;
    frame_envelope_init(&env, 0);
    Regmix__Result res = REGMIX__RESULT__INIT;
    Regmix__Failed fail = REGMIX__FAILED__INIT;
    size_t nl = r->n_losses, nb = r->n_bits_per_byte;
    Regmix__DomainValue *vals = calloc(nl + nb + 1, sizeof *vals);
    Regmix__DomainValue **ptrs = calloc(nl + nb + 1, sizeof *ptrs);
    if (!vals || !ptrs) {
        free(vals);
        free(ptrs);
        return;
    }
    if (r->ok) {
        for (size_t i = 0; i < nl + nb; i++) {
            const report_value_t *v = i < nl ? &r->losses[i] : &r->bits_per_byte[i - nl];
            regmix__domain_value__init(&vals[i]);
            vals[i].name = v->name;
            vals[i].value = v->value;
            ptrs[i] = &vals[i];
        }
        res.attempt_id = r->attempt_id;
        res.run_id = r->run_id;
        res.n_losses = nl;
        res.losses = ptrs;
        res.n_bits_per_byte = nb;
        res.bits_per_byte = ptrs + nl;
        res.tokens = r->tokens;
        res.seconds = r->seconds;
        env.body_case = REGMIX__ENVELOPE__BODY_RESULT;
        env.result = &res;
    } else {
        fail.attempt_id = r->attempt_id;
        fail.exit_code = r->exit_code;
        fail.signal = r->signal;
        fail.reason = r->reason ? r->reason : "";
        env.body_case = REGMIX__ENVELOPE__BODY_FAILED;
        env.failed = &fail;
    }
    net_send(w, &env);
    h->last_sent_ms = clock_mono_ms();
    free(vals);
    free(ptrs);
}

held_t *outbox_find(worker_t *w, uint64_t attempt_id, held_t ***ret_link)
{
    for (held_t **l = &w->held; *l; l = &(*l)->next) {
        if ((*l)->r.attempt_id == attempt_id) {
            if (ret_link)
                *ret_link = l;
            return *l;
        }
    }
    return NULL;
}

/* Takes the report (moved out of `r`) into the outbox. */
held_t *outbox_add(worker_t *w, report_t *r)
{
    held_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    report_move(&h->r, r);
    h->next = w->held;
    w->held = h;
    w->n_held++;
    return h;
}

/* Drops a held report: acknowledged, or abandoned by the coordinator. */
void outbox_drop(worker_t *w, uint64_t attempt_id, const char *why)
{
    held_t **link = NULL;
    held_t *h = outbox_find(w, attempt_id, &link);
    if (!h)
        return;
    *link = h->next;
    w->n_held--;
    log_debug("report_dropped", "worker=%s attempt=%" PRIu64 " run=%" PRIu64 " why=%s",
              w->worker_id, attempt_id, h->r.run_id, why);
    if (h->journaled) {
        w->n_journaled--;
        int rc = report_journal_ack(w->journal, attempt_id, w->n_journaled);
        if (rc < 0)
            log_warn("journal_write_failed", "worker=%s err=\"%s\"", w->worker_id, strerror(-rc));
    } else {
        report_forget(&h->r);
    }
    report_clear(&h->r);
    free(h);
}

static void outbox_recover(worker_t *w, report_t *r, int journaled)
{
    if (outbox_find(w, r->attempt_id, NULL)) {
        report_clear(r);
    } else {
        log_info("report_recovered", "worker=%s attempt=%" PRIu64 " run=%" PRIu64 " ok=%d",
                 w->worker_id, r->attempt_id, r->run_id, r->ok);
        held_t *h = outbox_add(w, r);
        if (h && journaled) {
            h->journaled = 1;
            w->n_journaled++;
        }
    }
    free(r);
}

void outbox_scan_cb(report_t *r, void *arg)
{
    outbox_recover(arg, r, 0);
}

void outbox_journal_cb(report_t *r, void *arg)
{
    outbox_recover(arg, r, 1);
}

void outbox_clear(worker_t *w)
{
    while (w->held) {
        held_t *h = w->held;
        w->held = h->next;
        report_clear(&h->r);
        free(h);
    }
    w->n_held = 0;
}
