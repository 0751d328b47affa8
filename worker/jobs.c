/*
 * jobs: the worker's slots and local queue (jobs.h).
 */
#include "jobs.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"
#include "net.h"
#include "outbox.h"

static void jobs_start_queued(worker_t *w);

unsigned jobs_free_slots(const worker_t *w)
{
    unsigned busy = w->running + w->queued;
    return busy >= w->slots ? 0 : w->slots - busy;
}

void jobs_send_ready(worker_t *w)
{
    if (!w->welcomed || w->stopping)
        return;
    Regmix__Envelope env;
    Regmix__Ready ready = REGMIX__READY__INIT;
    frame_envelope_init(&env, 0);
    ready.free_slots = w->draining ? 0 : jobs_free_slots(w);
    env.body_case = REGMIX__ENVELOPE__BODY_READY;
    env.ready = &ready;
    net_send(w, &env);
}

static void jobs_flush_cb(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (w->journal_unsynced) {
        /* One fdatasync for every synthetic report appended since the last flush, then they
         * leave: a RESULT is never sent before its report is on disk. */
        w->journal_unsynced = 0;
        int rc = report_journal_sync(w->journal);
        if (rc < 0)
            log_warn("journal_sync_failed", "worker=%s err=\"%s\"", w->worker_id, strerror(-rc));
        for (held_t *h = w->held; h && w->welcomed; h = h->next)
            if (h->journaled && h->last_sent_ms == 0)
                outbox_send(w, h);
    }
    if (w->ready_dirty) {
        w->ready_dirty = 0;
        jobs_send_ready(w);
    }
}

void jobs_mark_ready(worker_t *w)
{
    if (!w->ready_dirty) {
        w->ready_dirty = 1;
        uv_timer_start(&w->flush, jobs_flush_cb, 0, 0);
    }
}

job_t *jobs_find(worker_t *w, uint64_t attempt_id)
{
    for (unsigned i = 0; i < w->slots; i++)
        if (w->jobs[i] && w->jobs[i]->attempt_id == attempt_id)
            return w->jobs[i];
    return NULL;
}

static int jobs_queue_remove(worker_t *w, uint64_t attempt_id)
{
    queued_t *prev = NULL;
    for (queued_t *q = w->queue; q; prev = q, q = q->next) {
        if (q->a->attempt_id != attempt_id)
            continue;
        if (prev)
            prev->next = q->next;
        else
            w->queue = q->next;
        if (w->queue_tail == q)
            w->queue_tail = prev;
        w->queued--;
        regmix__assign__free_unpacked(q->a, NULL);
        free(q);
        return 1;
    }
    return 0;
}

static void jobs_progress_cb(job_t *job, const Regmix__Progress *p, void *data)
{
    worker_t *w = data;
    if (!w->welcomed)
        return;
    Regmix__Envelope env;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_PROGRESS;
    env.progress = (Regmix__Progress *)p;
    net_send(w, &env);
    (void)job;
}

static void jobs_done_cb(job_t *job, void *data)
{
    worker_t *w = data;
    for (unsigned i = 0; i < w->slots; i++)
        if (w->jobs[i] == job)
            w->jobs[i] = NULL;
    w->running--;
    if (job->cancelled) {
        log_info("attempt_cancelled", "worker=%s attempt=%" PRIu64 " run=%" PRIu64, w->worker_id,
                 job->attempt_id, job->run_id);
    } else {
        report_t *r = &job->report;
        if (r->ok) {
            w->done++;
            log_debug("attempt_done", "worker=%s attempt=%" PRIu64 " run=%" PRIu64 " loss=%.6g",
                      w->worker_id, r->attempt_id, r->run_id, r->losses[0].value);
        } else {
            char q[600];
            w->failed++;
            log_info("attempt_failed",
                     "worker=%s attempt=%" PRIu64 " run=%" PRIu64 " exit=%d signal=%d reason=%s",
                     w->worker_id, r->attempt_id, r->run_id, r->exit_code, r->signal,
                     log_quote(r->reason ? r->reason : "", q, sizeof q));
        }
        int journal = r->dir == NULL;
        if (journal) {
            int rc = report_journal_append(w->journal, r);
            if (rc < 0)
                log_warn("journal_write_failed", "worker=%s attempt=%" PRIu64 " err=\"%s\"",
                         w->worker_id, r->attempt_id, strerror(-rc));
        }
        held_t *h = outbox_add(w, r);
        if (h && journal) {
            h->journaled = 1;
            w->n_journaled++;
        }
        if (h && journal) {
            w->journal_unsynced = 1;
            uv_timer_start(&w->flush, jobs_flush_cb, 0, 0);
        } else if (h && w->welcomed) {
            outbox_send(w, h);
        }
    }
    job_destroy(&job);
    if (!w->stopping) {
        jobs_start_queued(w);
        jobs_mark_ready(w);
    }
}

static void jobs_run(worker_t *w, const Regmix__Assign *a)
{
    unsigned slot = 0;
    while (slot < w->slots && w->jobs[slot])
        slot++;
    job_t *job = NULL;
    int rc = job_start(w->loop, &w->jcfg, a, jobs_progress_cb, jobs_done_cb, w, &job);
    if (rc < 0) {
        log_error("job_start_failed", "worker=%s attempt=%" PRIu64 " err=\"%s\"", w->worker_id,
                  a->attempt_id, strerror(-rc));
        return;
    }
    w->jobs[slot] = job;
    w->running++;
    log_debug("attempt_started", "worker=%s attempt=%" PRIu64 " run=%" PRIu64 " kind=%d pid=%d",
              w->worker_id, a->attempt_id, a->run_id, a->kind, job->pid);
    /* A synthetic job without delay goes straight to RESULT: STARTED would only cost a write. */
    int delayed = a->kind == REGMIX__JOB_KIND__JOB_KIND_SYNTHETIC && a->synthetic &&
                  a->synthetic->delay_ms > 0;
    if (job->pid > 0 || delayed) {
        Regmix__Envelope env;
        Regmix__Started st = REGMIX__STARTED__INIT;
        frame_envelope_init(&env, 0);
        st.attempt_id = a->attempt_id;
        st.pid = (uint32_t)(job->pid > 0 ? job->pid : 0);
        env.body_case = REGMIX__ENVELOPE__BODY_STARTED;
        env.started = &st;
        net_send(w, &env);
    }
}

static void jobs_start_queued(worker_t *w)
{
    while (w->queue && w->running < w->slots) {
        queued_t *q = w->queue;
        w->queue = q->next;
        if (!w->queue)
            w->queue_tail = NULL;
        w->queued--;
        jobs_run(w, q->a);
        regmix__assign__free_unpacked(q->a, NULL);
        free(q);
    }
}

void jobs_assign(worker_t *w, const Regmix__Assign *a)
{
    if (a->attempt_id == 0) {
        log_warn("assign_invalid", "worker=%s why=\"attempt id 0\"", w->worker_id);
        return;
    }
    if (jobs_find(w, a->attempt_id) || outbox_find(w, a->attempt_id, NULL)) {
        log_debug("assign_duplicate", "worker=%s attempt=%" PRIu64, w->worker_id, a->attempt_id);
        return;
    }
    for (queued_t *q = w->queue; q; q = q->next)
        if (q->a->attempt_id == a->attempt_id)
            return;
    if (w->running < w->slots) {
        jobs_run(w, a);
        return;
    }
    /* More ASSIGNs than free slots (a READY crossed a result in flight): run it next. */
    if (w->queued >= WORKER_MAX_QUEUE) {
        log_warn("assign_dropped", "worker=%s attempt=%" PRIu64 " why=\"queue full\"", w->worker_id,
                 a->attempt_id);
        return;
    }
    queued_t *q = calloc(1, sizeof *q);
    size_t len = regmix__assign__get_packed_size(a);
    uint8_t *buf = malloc(len ? len : 1);
    if (!q || !buf) {
        free(q);
        free(buf);
        return;
    }
    regmix__assign__pack(a, buf);
    q->a = regmix__assign__unpack(NULL, len, buf);
    free(buf);
    if (!q->a) {
        free(q);
        return;
    }
    if (w->queue_tail)
        w->queue_tail->next = q;
    else
        w->queue = q;
    w->queue_tail = q;
    w->queued++;
}

/* Stops an attempt the coordinator no longer wants, wherever it is. */
void jobs_stop(worker_t *w, uint64_t attempt_id, const char *why)
{
    job_t *job = jobs_find(w, attempt_id);
    if (job)
        job_cancel(job);
    if (jobs_queue_remove(w, attempt_id))
        jobs_mark_ready(w);
    outbox_drop(w, attempt_id, why);
    log_info("attempt_stopped", "worker=%s attempt=%" PRIu64 " why=%s running=%d", w->worker_id,
             attempt_id, why, job != NULL);
}

void jobs_clear_queue(worker_t *w)
{
    while (w->queue) {
        queued_t *q = w->queue;
        w->queue = q->next;
        regmix__assign__free_unpacked(q->a, NULL);
        free(q);
    }
    w->queue_tail = NULL;
    w->queued = 0;
}
