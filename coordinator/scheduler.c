#include "scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "transition.h"

int scheduler_credit(const worker_t *w)
{
    if (!w->connected || !w->alive || w->draining || w->quarantined)
        return 0;
    int a = w->ready_free - w->assigned_since_ready;
    int b = w->slots - w->outstanding;
    int m = a < b ? a : b;
    if (w->probation && m > 1 - w->outstanding)
        m = 1 - w->outstanding; /* on probation: one attempt at a time */
    return m > 0 ? m : 0;
}

static int scheduler__free_gpus(const worker_t *w)
{
    return w->ngpus - __builtin_popcountll(w->gpu_used);
}

static int scheduler__cmp(const void *pa, const void *pb)
{
    const store_queued_t *a = pa, *b = pb;
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    return a->run < b->run ? -1 : a->run > b->run;
}

/* Leases run `q` to worker `w` (transition.h) on free GPUs chosen here and queues the ASSIGN.
 * Returns 0, -EAGAIN when someone else claimed the run first, -ENOMEM (nothing claimed), or -EIO
 * (fatal already marked). */
static int scheduler__assign(coord_t *c, worker_t *w, sweep_t *sw, const store_queued_t *q)
{
    uint64_t mask = 0;
    uint32_t gidx[COORD_MAX_GPUS];
    int ng = 0;
    char gstr[COORD_MAX_GPUS * 4 + 1] = "";
    size_t glen = 0;
    for (int i = 0; i < w->ngpus && ng < sw->gpus; i++) {
        if (w->gpu_used & (1ull << i))
            continue;
        mask |= 1ull << i;
        gidx[ng++] = w->gpu_index[i];
        glen += (size_t)snprintf(gstr + glen, sizeof gstr - glen, "%s%u", ng > 1 ? "," : "",
                                 w->gpu_index[i]);
    }
    int nd = sw->ndomains;
    double *wts = calloc((size_t)(nd > 0 ? nd : 1), sizeof *wts);
    Regmix__DomainWeight *dw = calloc((size_t)(nd > 0 ? nd : 1), sizeof *dw);
    Regmix__DomainWeight **dwp = calloc((size_t)(nd > 0 ? nd : 1), sizeof *dwp);
    attempt_t *a = NULL;
    int r = -ENOMEM;
    if (!wts || !dw || !dwp)
        goto out; /* nothing claimed yet: the run stays queued */
    r = transition_attempt_lease(c, w, sw, q, mask, gstr, &a);
    if (r < 0)
        goto out;
    w->assigned_since_ready++;
    store_run_weights(c->store, q->run, wts, nd);

    Regmix__Assign as = *sw->job; /* shallow: the template's strings are only read */
    as.attempt_id = (uint64_t)a->id;
    as.run_id = (uint64_t)q->run;
    as.sweep_id = sw->sweep_id;
    as.attempt_no = (uint32_t)a->attempt_no;
    as.seed = q->seed;
    for (int i = 0; i < nd; i++) {
        regmix__domain_weight__init(&dw[i]);
        dw[i].domain = sw->domains[i] ? sw->domains[i] : (char *)"";
        dw[i].weight = wts[i];
        dwp[i] = &dw[i];
    }
    as.n_weights = (size_t)nd;
    as.weights = dwp;
    as.gpus = (uint32_t)sw->gpus;
    as.n_gpu_indices = (size_t)ng;
    as.gpu_indices = gidx;
    as.lease_ms = (uint32_t)c->cfg.lease_ms;
    Regmix__Envelope env;
    frame_envelope_init(&env, 0);
    env.body_case = REGMIX__ENVELOPE__BODY_ASSIGN;
    env.assign = &as;
    coord_send(c, COORD_WORKERS, w->rid, w->rlen, &env, (uint64_t)a->id);
    log_debug("assigned", "attempt=%lld run=%lld sweep=%s idx=%d worker=%s attempt_no=%d",
              (long long)a->id, (long long)q->run, sw->sweep_id, q->idx, w->worker_id,
              a->attempt_no);
out:
    free(wts);
    free(dw);
    free(dwp);
    return r;
}

/* Assigns to one worker; returns 1 when its fetch covered every GPU class and found nothing
 * (the queue is empty), else 0. */
static int scheduler__worker(coord_t *c, worker_t *w, int credit)
{
    int free_gpus = scheduler__free_gpus(w);
    int ncls = c->ngpu_classes;
    if (ncls == 0)
        return 1;
    if (credit > 256)
        credit = 256;
    store_queued_t *cand = calloc((size_t)(credit * ncls), sizeof *cand);
    if (!cand)
        return 0;
    int n = 0, covered = 1;
    for (int k = 0; k < ncls; k++) {
        int g = c->gpu_classes[k];
        if (g > free_gpus) {
            covered = 0;
            continue;
        }
        n += store_queue_fetch(c->store, g, credit, cand + n);
    }
    if (n == 0) {
        free(cand);
        return covered;
    }
    if (ncls > 1)
        qsort(cand, (size_t)n, sizeof *cand, scheduler__cmp);
    for (int i = 0; i < n && credit > 0 && !c->fatal; i++) {
        sweep_t *sw = coord_sweep_by_id(c, cand[i].sweep);
        if (!sw || sw->gpus > free_gpus)
            continue;
        if (scheduler__assign(c, w, sw, &cand[i]) == 0) {
            credit--;
            free_gpus -= sw->gpus;
        }
    }
    free(cand);
    return 0;
}

void scheduler_run(coord_t *c)
{
    if (!c->queue_maybe_nonempty || c->fatal)
        return;
    for (int i = 0; i < c->nworkers && !c->fatal; i++) {
        worker_t *w = c->workers[i];
        int credit = scheduler_credit(w);
        if (credit <= 0)
            continue;
        if (coord_write(c) < 0)
            return;
        if (scheduler__worker(c, w, credit)) {
            c->queue_maybe_nonempty = 0;
            return;
        }
    }
}
