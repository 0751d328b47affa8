#include "target.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "fitpipe.h"
#include "follow.h"
#include "launcher.h"
#include "log.h"
#include "objective.h"
#include "store_view.h"
#include "transition.h"

#define TARGET_CAPTURE_MS  20000 /* the longest a poll (sbatch, scontrol, kubectl) may take */
#define TARGET_MISSING_MAX 3     /* polls in a row that find no trace of a job: it is gone */
/* The loss curve keeps at most one point a second: 3600 rows an hour of target training. */
#define TARGET_CURVE_EVERY_MS 1000

static void target__set(char **field, const char *v)
{
    char *d = strdup(v ? v : "");
    if (d) {
        free(*field);
        *field = d;
    }
}

/* The launch's work directory: the folder of its log (WORKDIR/ROLE.log). */
static void target__workdir(const target_t *t, char *buf, size_t len)
{
    snprintf(buf, len, "%s", t->log_path ? t->log_path : ".");
    char *slash = strrchr(buf, '/');
    if (slash && slash != buf)
        *slash = '\0';
    else
        snprintf(buf, len, ".");
}

static void target__event(target_t *t, const char *what)
{
    sweep_t *sw = coord_sweep_by_id(t->c, t->sweep);
    if (sw) {
        char text[400];
        snprintf(text, sizeof text, "%s %s (%s)", t->role, what, t->detail ? t->detail : "");
        coord_sweep_event(t->c, sw, "target", text, 0);
    }
}

/* Moves t to `to` and tells the sweep's watchers; a move the life cycle refuses is logged by
 * transition.c and changes nothing. */
static void target__move(target_t *t, target_state_t to, const char *detail)
{
    if (t->state == to) {
        if (detail && (!t->detail || strcmp(detail, t->detail) != 0)) {
            target__set(&t->detail, detail);
            transition_target_save(t->c, t);
        }
        return;
    }
    if (transition_target(t->c, t, to, detail) < 0)
        return;
    log_info("target_state", "sweep=%lld role=%s state=%s handle=%s detail=\"%s\"",
             (long long)t->sweep, t->role, states_target_name(t->state), t->handle ? t->handle : "",
             t->detail ? t->detail : "");
    target__event(t, states_target_name(t->state));
    if (states_target_final(t->state))
        launcher_tail_destroy(&t->tail);
}

/* Takes the last result line's losses (and the objective over them) into t. */
static void target__take_result(target_t *t, const launcher_outcome_t *o)
{
    if (!o->has_result || o->nlosses <= 0)
        return;
    json_t *obj = json_object();
    for (int i = 0; obj && i < o->nlosses; i++)
        if (isfinite(o->losses[i]))
            json_object_set_new(obj, o->loss_names[i], json_real(o->losses[i]));
    char *js = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (js) {
        target__set(&t->losses_json, js);
        free(js);
    }
    sweep_t *sw = coord_sweep_by_id(t->c, t->sweep);
    char text[1024];
    objective_t *ob = NULL;
    if (sw && sw->spec && fitpipe_target_text(sw->spec, text, sizeof text) == 0 &&
        objective_parse(text, (const char *const *)o->loss_names, o->nlosses, &ob, NULL, 0) == 0) {
        t->objective = objective_eval(ob, o->losses);
        objective_destroy(&ob);
    }
}

/* One progress line of t (from its own child or its progress file). */
static void target__progress(target_t *t, const launcher_progress_t *p)
{
    if (p->step >= 0)
        t->step = p->step;
    if (isfinite(p->loss))
        t->loss = p->loss;
    int64_t mono = clock_mono_ms();
    if (mono - t->last_progress_mono >= t->c->cfg.progress_every_ms) {
        t->last_progress_mono = mono;
        transition_target_save(t->c, t);
    }
    /* The loss curve the dashboard draws. */
    if (p->step >= 0 && isfinite(p->loss) && mono - t->last_curve_mono >= TARGET_CURVE_EVERY_MS &&
        coord_write(t->c) == 0) {
        t->last_curve_mono = mono;
        if (store_view_target_point(t->c->store, t->sweep, t->role, p->step, p->loss,
                                    clock_unix_ms()) < 0)
            coord_fatal(t->c, "target_progress");
        coord_kick(t->c);
    }
}

static void target__on_line(const launcher_progress_t *p, void *data)
{
    target__progress(data, p);
}

static void target__on_progress(launcher_run_t *run, const launcher_progress_t *p, void *data)
{
    (void)run;
    target__progress(data, p);
}

/* Opens t's progress file for following (a no-op when it is open). */
static void target__tail_open(target_t *t, const char *path)
{
    if (t->tail && strcmp(launcher_tail_path(t->tail), path) == 0)
        return;
    launcher_tail_destroy(&t->tail);
    launcher_tail_new(path, &t->tail);
}

/* The job ended as `phase` says: reads the rest of its progress and moves t to its end. A job
 * that completed without a result line failed (the losses are the point of it). */
static void target__end(target_t *t, follow_phase_t phase, const char *why)
{
    const launcher_outcome_t *o = NULL;
    if (t->tail) {
        launcher_tail_read(t->tail, 1, target__on_line, t);
        o = launcher_tail_outcome(t->tail);
        target__take_result(t, o);
    }
    char detail[512];
    if (t->cancelling || phase == FOLLOW_CANCELLED) {
        snprintf(detail, sizeof detail, "cancelled%s%s", why && why[0] ? ": " : "", why ? why : "");
        target__move(t, TARGET_STATE_CANCELLED, detail);
    } else if (phase == FOLLOW_DONE && o && o->has_result) {
        snprintf(detail, sizeof detail, "finished after %llu progress lines%s%s",
                 (unsigned long long)o->progress_lines, why && why[0] ? "; " : "", why ? why : "");
        if (t->state == TARGET_STATE_PENDING) /* it ran between two polls */
            target__move(t, TARGET_STATE_RUNNING, NULL);
        target__move(t, TARGET_STATE_DONE, detail);
    } else {
        if (phase == FOLLOW_DONE)
            snprintf(detail, sizeof detail, "%s%sno result line in %s", why ? why : "",
                     why && why[0] ? ", but " : "",
                     t->tail ? launcher_tail_path(t->tail) : "its progress");
        else
            snprintf(detail, sizeof detail, "%s", why && why[0] ? why : "failed");
        target__move(t, TARGET_STATE_FAILED, detail);
    }
    log_info("target_ended", "sweep=%lld role=%s state=%s objective=%g", (long long)t->sweep,
             t->role, states_target_name(t->state), t->objective);
}

/* ---- our own child (mpirun, command) ---------------------------------------------------------- */

static void target__on_exit(launcher_run_t *run, const launcher_outcome_t *o, void *data)
{
    (void)run;
    target_t *t = data;
    t->run = NULL;
    if (states_target_final(t->state))
        return;
    if (t->tail) /* the runner read the file to its end: take the lines it reported */
        launcher_tail_read(t->tail, 1, target__on_line, t);
    target__take_result(t, o);
    char why[160];
    snprintf(why, sizeof why, "exit status %lld, signal %d", (long long)o->exit_status,
             o->term_signal);
    launcher_tail_destroy(&t->tail); /* the outcome above is the file's */
    if (t->cancelling) {
        target__end(t, FOLLOW_CANCELLED, why);
    } else if (o->exit_status == 0 && o->term_signal == 0 && o->has_result) {
        char detail[160];
        snprintf(detail, sizeof detail, "finished after %llu progress lines",
                 (unsigned long long)o->progress_lines);
        target__move(t, TARGET_STATE_DONE, detail);
    } else {
        char detail[200];
        snprintf(detail, sizeof detail, "%s%s", why, o->has_result ? "" : ", no result line");
        target__move(t, TARGET_STATE_FAILED, detail);
    }
    log_info("target_exited", "sweep=%lld role=%s state=%s exit=%lld signal=%d objective=%g",
             (long long)t->sweep, t->role, states_target_name(t->state), (long long)o->exit_status,
             o->term_signal, t->objective);
}

/* ---- polls ------------------------------------------------------------------------------------ */

typedef struct target__poll {
    target_t *t;
    int step; /* Slurm: 0 scontrol, 1 sacct, 2 sacct --completion; MPIJob: 0 get, 1 logs */
    follow_status_t status;
} target__poll_t;

static void target__poll_next(target__poll_t *p);
static void target__cancel_job(target_t *t);

static void target__poll_done(target__poll_t *p)
{
    p->t->polling = 0;
    p->t->next_poll_mono = clock_mono_ms() + p->t->c->cfg.target_poll_ms;
    free(p);
}

/* Applies a job's phase to t (not for our own child: its exit says how it ended). */
static void target__apply(target_t *t, const follow_status_t *st)
{
    char detail[400];
    follow_handle_t h;
    follow_handle_parse(t->handle, &h);
    const char *what = h.kind == FOLLOW_SLURM ? "Slurm job" : "MPIJob";
    const char *id = h.kind == FOLLOW_SLURM ? h.job_id : h.name;
    switch (st->phase) {
    case FOLLOW_PENDING:
        snprintf(detail, sizeof detail, "%s %s: %s", what, id, st->state);
        if (t->state == TARGET_STATE_PENDING)
            target__move(t, TARGET_STATE_PENDING, detail);
        break;
    case FOLLOW_RUNNING:
        snprintf(detail, sizeof detail, "%s %s: %s", what, id, st->state);
        target__move(t, TARGET_STATE_RUNNING, detail);
        if (t->tail)
            launcher_tail_read(t->tail, 0, target__on_line, t);
        break;
    case FOLLOW_DONE:
        snprintf(detail, sizeof detail, "%s %s %s", what, id, st->state);
        target__end(t, FOLLOW_DONE, detail);
        break;
    case FOLLOW_FAILED:
    case FOLLOW_CANCELLED:
        target__end(t, st->phase, st->reason);
        break;
    default:
        break;
    }
}

static void target__poll_cb(const follow_output_t *o, void *data)
{
    target__poll_t *p = data;
    target_t *t = p->t;
    coord_t *c = t->c;
    if (c->stopping || c->fatal || states_target_final(t->state)) {
        target__poll_done(p);
        return;
    }
    follow_handle_t h;
    follow_handle_parse(t->handle, &h);
    if (h.kind == FOLLOW_SLURM) {
        int r = -ENOENT;
        if (o->exit_status == 0)
            r = p->step == 0 ? follow_slurm_scontrol(o->out, &p->status)
                             : follow_slurm_sacct(o->out, &p->status);
        if (r == 0) {
            t->missing = 0;
            target__apply(t, &p->status);
        } else if (p->step < 2) {
            p->step++;
            target__poll_next(p);
            return;
        } else if (++t->missing >= TARGET_MISSING_MAX) {
            char why[300];
            snprintf(why, sizeof why,
                     "Slurm knows no job %s (scontrol, sacct and sacct --completion): %.200s",
                     h.job_id, o->err_len ? o->err : "no answer");
            target__end(t, FOLLOW_FAILED, why);
        }
    } else if (h.kind == FOLLOW_MPIJOB && p->step == 0) {
        if (o->exit_status == 0 && follow_mpijob(o->out, o->out_len, &p->status) == 0) {
            t->missing = 0;
            if (p->status.phase == FOLLOW_RUNNING || p->status.phase == FOLLOW_DONE) {
                p->step = 1; /* its launcher's log first: the progress and the result */
                target__poll_next(p);
                return;
            }
            target__apply(t, &p->status);
        } else if (o->exit_status > 0 && strstr(o->err, "NotFound")) {
            char why[300];
            snprintf(why, sizeof why, "MPIJob %s/%s no longer exists", h.ns, h.name);
            target__end(t, t->cancelling ? FOLLOW_CANCELLED : FOLLOW_FAILED, why);
        } else {
            log_warn("target_poll_failed", "sweep=%lld role=%s handle=%s exit=%lld err=\"%.200s\"",
                     (long long)t->sweep, t->role, t->handle, (long long)o->exit_status, o->err);
        }
    } else if (h.kind == FOLLOW_MPIJOB && p->step == 1) {
        /* the launcher's log as it is now, in place of the last copy */
        if (o->exit_status == 0 && t->tail) {
            char tmp[PATH_MAX + 8];
            snprintf(tmp, sizeof tmp, "%s.tmp", launcher_tail_path(t->tail));
            FILE *f = fopen(tmp, "w");
            if (f) {
                fwrite(o->out, 1, o->out_len, f);
                if (fclose(f) == 0 && rename(tmp, launcher_tail_path(t->tail)) == 0) {
                    char path[PATH_MAX];
                    snprintf(path, sizeof path, "%s", launcher_tail_path(t->tail));
                    launcher_tail_destroy(&t->tail);
                    launcher_tail_new(path, &t->tail);
                }
            }
        }
        target__apply(t, &p->status);
    }
    target__poll_done(p);
}

static void target__poll_next(target__poll_t *p)
{
    target_t *t = p->t;
    follow_handle_t h;
    follow_handle_parse(t->handle, &h);
    char ns_name[140], logs_of[80];
    char *argv[16] = {0};
    if (h.kind == FOLLOW_SLURM && p->step == 0) {
        char *a[] = {"scontrol", "show", "job", "-o", h.job_id, NULL};
        memcpy(argv, a, sizeof a);
    } else if (h.kind == FOLLOW_SLURM && p->step == 1) {
        char *a[] = {"sacct", "-n", "-P", "-X", "-j", h.job_id, "-o", "State,ExitCode", NULL};
        memcpy(argv, a, sizeof a);
    } else if (h.kind == FOLLOW_SLURM) {
        char *a[] = {"sacct", "--completion",   "-a", "-n", "-P", "-j", h.job_id,
                     "-o",    "State,ExitCode", NULL};
        memcpy(argv, a, sizeof a);
    } else if (h.kind == FOLLOW_MPIJOB && p->step == 0) {
        snprintf(ns_name, sizeof ns_name, "%s", h.name);
        char *a[] = {"kubectl", "get", "mpijob", ns_name, "-n", h.ns, "-o", "json", NULL};
        memcpy(argv, a, sizeof a);
    } else {
        snprintf(logs_of, sizeof logs_of, "job/%s-launcher", h.name);
        char *a[] = {"kubectl", "logs", "-n", h.ns, logs_of, NULL};
        memcpy(argv, a, sizeof a);
    }
    int r = follow_capture(t->c->loop, argv, TARGET_CAPTURE_MS, target__poll_cb, p);
    if (r < 0) {
        log_warn("target_poll_failed", "sweep=%lld role=%s handle=%s spawn=%s err=%s",
                 (long long)t->sweep, t->role, t->handle, argv[0], strerror(-r));
        target__poll_done(p);
    }
}

/* Polls t now (one poll in flight per target). */
static void target__poll(target_t *t)
{
    follow_handle_t h;
    if (t->polling || t->run || follow_handle_parse(t->handle, &h) < 0 || h.kind == FOLLOW_NONE)
        return;
    if (t->cancelling == 1 && h.kind != FOLLOW_PID) {
        target__cancel_job(t);
        return;
    }
    if (h.kind == FOLLOW_PID) {
        /* a process of a previous coordinator: alive by its start time, ended by its file */
        if (follow_proc_alive(&h)) {
            if (t->state == TARGET_STATE_PENDING)
                target__move(t, TARGET_STATE_RUNNING, NULL);
            if (t->tail)
                launcher_tail_read(t->tail, 0, target__on_line, t);
        } else {
            const launcher_outcome_t *o = NULL;
            if (t->tail) {
                launcher_tail_read(t->tail, 1, target__on_line, t);
                o = launcher_tail_outcome(t->tail);
            }
            target__end(t, o && o->has_result ? FOLLOW_DONE : FOLLOW_FAILED,
                        o && o->has_result ? "its process ended (followed by pid after a "
                                             "coordinator restart)"
                                           : "its process ended without a result line "
                                             "(followed by pid after a coordinator restart: "
                                             "its exit status is not known)");
        }
        t->next_poll_mono = clock_mono_ms() + t->c->cfg.target_poll_ms;
        return;
    }
    target__poll_t *p = calloc(1, sizeof *p);
    if (!p)
        return;
    p->t = t;
    t->polling = 1;
    target__poll_next(p);
}

void target_tick(coord_t *c, int64_t mono)
{
    if (c->stopping || c->fatal)
        return;
    for (target_t *t = c->targets; t; t = t->next)
        if ((t->state == TARGET_STATE_PENDING || t->state == TARGET_STATE_RUNNING) &&
            mono >= t->next_poll_mono)
            target__poll(t);
}

/* Starts following t by its stored handle (at load, or once a submit answered). */
static void target__follow(target_t *t)
{
    follow_handle_t h;
    char wd[PATH_MAX], path[PATH_MAX + 64];
    target__workdir(t, wd, sizeof wd);
    if (follow_handle_parse(t->handle, &h) < 0)
        return;
    if (h.kind == FOLLOW_SLURM)
        snprintf(path, sizeof path, "%s/slurm-%s.out", wd, h.job_id);
    else if (h.kind == FOLLOW_MPIJOB)
        snprintf(path, sizeof path, "%s/%s-launcher.log", wd, t->role);
    else
        snprintf(path, sizeof path, "%s/%s.progress", wd, t->role);
    target__tail_open(t, path);
    t->next_poll_mono = 0; /* poll at the next tick */
}

/* ---- load ------------------------------------------------------------------------------------- */

static int target__load_row(const store_target_row_t *row, void *data)
{
    coord_t *c = data;
    target_t *t = coord_target_new(c, row->sweep, row->role);
    if (!t)
        return -ENOMEM;
    t->state = row->state;
    snprintf(t->launcher, sizeof t->launcher, "%s", row->launcher);
    t->ranks = row->ranks;
    t->pid = row->pid;
    target__set(&t->log_path, row->log_path);
    target__set(&t->weights_json, row->weights_json);
    target__set(&t->losses_json, row->losses_json);
    target__set(&t->detail, row->detail);
    target__set(&t->handle, row->handle);
    t->objective = row->objective;
    t->step = row->step;
    t->loss = row->loss;
    t->created_ms = row->created_ms;
    t->updated_ms = row->updated_ms;
    if (t->state != TARGET_STATE_PENDING && t->state != TARGET_STATE_RUNNING)
        return 0;
    follow_handle_t h;
    if (follow_handle_parse(t->handle, &h) == 0 && h.kind != FOLLOW_NONE) {
        /* launched by a previous coordinator: follow the same job */
        target__follow(t);
        log_info("target_adopted", "sweep=%lld role=%s state=%s handle=%s", (long long)t->sweep,
                 t->role, states_target_name(t->state), t->handle);
    } else {
        /* committed, but the previous coordinator stopped before the launch had a handle */
        transition_target(c, t, TARGET_STATE_FAILED,
                          "the coordinator stopped before this launch had a job to follow; "
                          "`regmixctl launch` starts it again (the trainer resumes from its "
                          "checkpoint)");
        log_warn("target_orphaned", "sweep=%lld role=%s", (long long)t->sweep, t->role);
    }
    return 0;
}

int target_load(coord_t *c)
{
    return store_targets_foreach(c->store, target__load_row, c);
}

/* ---- launch ----------------------------------------------------------------------------------- */

typedef struct target__submit {
    target_t *t;
    int slurm;
    char ns[64], name[64];
} target__submit_t;

/* sbatch --parsable / kubectl apply answered. */
static void target__submitted(const follow_output_t *o, void *data)
{
    target__submit_t *s = data;
    target_t *t = s->t;
    t->polling = 0;
    if (t->c->fatal || states_target_final(t->state)) {
        free(s);
        return;
    }
    follow_handle_t h = {.kind = s->slurm ? FOLLOW_SLURM : FOLLOW_MPIJOB};
    char text[200], detail[400];
    int ok = o->exit_status == 0;
    if (ok && s->slurm) {
        size_t n = strspn(o->out, "0123456789"); /* JOBID[;CLUSTER] */
        ok = n > 0 && n < sizeof h.job_id;
        if (ok)
            snprintf(h.job_id, sizeof h.job_id, "%.*s", (int)n, o->out);
    } else if (ok) {
        snprintf(h.ns, sizeof h.ns, "%s", s->ns);
        snprintf(h.name, sizeof h.name, "%s", s->name);
    }
    if (ok &&
        (follow_handle_format(&h, text, sizeof text) < 0 || follow_handle_parse(text, &h) < 0))
        ok = 0;
    if (!ok) {
        const char *e = o->err_len ? o->err : o->out;
        snprintf(detail, sizeof detail, "%s exited %lld%s: %.300s",
                 s->slurm ? "sbatch" : "kubectl apply", (long long)o->exit_status,
                 o->timed_out ? " (timed out)" : "", e);
        char *nl = strchr(detail, '\n');
        if (nl && nl[1] == '\0')
            *nl = '\0';
        target__move(t, TARGET_STATE_FAILED, detail);
        free(s);
        return;
    }
    target__set(&t->handle, text);
    snprintf(detail, sizeof detail, "%s %s submitted", s->slurm ? "Slurm job" : "MPIJob",
             s->slurm ? h.job_id : text + 7);
    target__move(t, TARGET_STATE_PENDING, detail);
    log_info("target_submitted", "sweep=%lld role=%s handle=%s", (long long)t->sweep, t->role,
             t->handle);
    target__follow(t);
    if (t->cancelling) /* cancelled while sbatch ran */
        target__cancel_job(t);
    free(s);
}

/* Launches one role of `sw`; 1 launched, 0 skipped (already launched), < 0 error. */
static int target__launch_role(
        coord_t *c, sweep_t *sw, const char *role, const double *weights, char *err, size_t errlen)
{
    target_t *t = coord_target_find(c, sw->id, role);
    if (t && (t->run || t->polling || states_target_launched(t->state)))
        return 0;
    if (sw->spec->target.launcher == SPEC_LAUNCHER_COMMAND && !c->cfg.allow_commands) {
        /* A spec comes from whoever reaches the client endpoint; running its command is the
         * operator's decision, made in the coordinator's own configuration. */
        snprintf(err, errlen,
                 "launcher: command is off on this coordinator (its operator enables it with "
                 "--allow-commands or allow_commands = true)");
        return -EPERM;
    }
    char workdir[1100];
    snprintf(workdir, sizeof workdir, "%s/%s/%s", c->targets_dir, sw->sweep_id, role);
    launcher_ctx_t ctx = {
            .spec = sw->spec,
            .weights = weights,
            .role = role,
            .sweep_id = sw->sweep_id,
            .trainer = c->cfg.trainer,
            .workdir = workdir,
            .seed = sw->spec->sampling.seed,
            .as_root = geteuid() == 0,
            .oversubscribe = 1,
    };
    launcher_plan_t plan = {0};
    int r = launcher_plan_make(&ctx, &plan, err, errlen);
    if (r < 0)
        return r;
    if (!t)
        t = coord_target_new(c, sw->id, role);
    if (!t) {
        launcher_plan_clear(&plan);
        return -ENOMEM;
    }
    char logp[1200];
    snprintf(logp, sizeof logp, "%s/%s.log", workdir, role);
    char *wj = launcher_weights_json(sw->spec, weights);
    snprintf(t->launcher, sizeof t->launcher, "%s", spec_launcher_name(sw->spec->target.launcher));
    t->ranks = sw->spec->target.ranks;
    t->pid = 0;
    t->objective = NAN;
    t->loss = NAN;
    t->step = 0;
    t->cancelling = 0;
    t->missing = 0;
    target__set(&t->log_path, logp);
    target__set(&t->weights_json, wj ? wj : "{}");
    target__set(&t->losses_json, "{}");
    target__set(&t->handle, "");
    launcher_tail_destroy(&t->tail);
    free(wj);
    /* Persist before act: the pending row is committed before anything is spawned. */
    r = transition_target(c, t, TARGET_STATE_PENDING, plan.message ? plan.message : "");
    if (r == -EINVAL) {
        snprintf(err, errlen, "%s of %s is %s", role, sw->sweep_id, states_target_name(t->state));
        launcher_plan_clear(&plan);
        return r;
    }
    if (c->fatal || store_commit(c->store) < 0) {
        coord_fatal(c, "target_commit");
        launcher_plan_clear(&plan);
        return -EIO;
    }
    r = launcher_plan_write(&plan, err, errlen);
    if (r == 0 && !plan.argv) {
        /* no sbatch/kubectl here: say so and end, instead of waiting for ever */
        snprintf(err, errlen, "%s", plan.message);
        r = -ENOENT;
    } else if (r == 0 && plan.submits) {
        target__submit_t *s = calloc(1, sizeof *s);
        if (!s) {
            r = -ENOMEM;
            snprintf(err, errlen, "out of memory");
        } else {
            s->t = t;
            s->slurm = sw->spec->target.launcher == SPEC_LAUNCHER_SLURM;
            snprintf(s->ns, sizeof s->ns, "%s", plan.job_namespace);
            snprintf(s->name, sizeof s->name, "%s", plan.job_name);
            r = follow_capture(c->loop, plan.argv, TARGET_CAPTURE_MS, target__submitted, s);
            if (r < 0) {
                free(s);
                snprintf(err, errlen, "running %s: %s", plan.argv[0], strerror(-r));
            } else {
                t->polling = 1; /* until the submit answers */
            }
        }
    } else if (r == 0) {
        r = launcher_run_start(c->loop, plan.argv, plan.progress_fd, plan.progress_path, logp,
                               plan.workdir, target__on_progress, target__on_exit, t, &t->run);
        if (r < 0) {
            snprintf(err, errlen, "spawning %s: %s", plan.argv[0], strerror(-r));
        } else {
            follow_handle_t h = {.kind = FOLLOW_PID, .pid = launcher_run_pid(t->run)};
            char text[80];
            t->pid = h.pid;
            if (follow_proc_start(h.pid, &h.start_ticks) == 0 &&
                follow_handle_format(&h, text, sizeof text) == 0)
                target__set(&t->handle, text);
            target__tail_open(t, plan.progress_path);
            /* a relaunch appends: what the file held before is the previous run's */
            launcher_tail_read(t->tail, 0, NULL, NULL);
            target__move(t, TARGET_STATE_RUNNING, NULL);
        }
    }
    if (r < 0)
        target__move(t, TARGET_STATE_FAILED, err);
    log_info("target_launched", "sweep=%s role=%s launcher=%s state=%s handle=%s", sw->sweep_id,
             role, t->launcher, states_target_name(t->state), t->handle ? t->handle : "");
    char text[300];
    snprintf(text, sizeof text, "%s launched (%s): %s", role, states_target_name(t->state),
             plan.message ? plan.message : "");
    coord_sweep_event(c, sw, "target", text, 0);
    launcher_plan_clear(&plan);
    return r < 0 ? r : 1;
}

int target_launch(coord_t *c, sweep_t *sw, char *err, size_t errlen)
{
    if (!sw->spec) {
        snprintf(err, errlen, "sweep %s: its spec does not parse", sw->sweep_id);
        return -EINVAL;
    }
    if (sw->nfits == 0) {
        snprintf(err, errlen, "sweep %s has no fit yet", sw->sweep_id);
        return -ENOENT;
    }
    int launched = 0;
    const double *proposal = sw->history + (size_t)(sw->nfits - 1) * (size_t)sw->ndomains;
    int r = target__launch_role(c, sw, "target", proposal, err, errlen);
    if (r < 0)
        return r;
    launched += r;
    if (sw->spec->target.baseline == SPEC_BASELINE_PRIOR) {
        double *prior = calloc((size_t)sw->ndomains, sizeof *prior);
        if (!prior)
            return -ENOMEM;
        launcher_prior_weights(sw->spec, prior);
        r = target__launch_role(c, sw, "baseline", prior, err, errlen);
        free(prior);
        if (r < 0)
            return r;
        launched += r;
    }
    if (launched == 0) {
        snprintf(err, errlen, "sweep %s: already launched", sw->sweep_id);
        return -EALREADY;
    }
    return launched;
}

/* ---- cancel ----------------------------------------------------------------------------------- */

static void target__cancelled_cb(const follow_output_t *o, void *data)
{
    target_t *t = data;
    t->polling = 0;
    if (states_target_final(t->state) || t->c->fatal)
        return;
    if (o->exit_status == 0) {
        t->next_poll_mono = 0; /* the next poll sees it end (CANCELLED, NotFound) */
    } else {
        char why[300];
        snprintf(why, sizeof why, "cancelling failed (exit %lld): %.200s",
                 (long long)o->exit_status, o->err);
        target__set(&t->detail, why);
        transition_target_save(t->c, t);
    }
}

/* Asks the job's scheduler (or the process) to end it. */
static void target__cancel_job(target_t *t)
{
    follow_handle_t h;
    if (follow_handle_parse(t->handle, &h) < 0)
        return;
    if (t->run) {
        launcher_run_kill(t->run, SIGTERM); /* on_exit ends it as cancelled */
        return;
    }
    if (h.kind == FOLLOW_PID) {
        if (follow_proc_alive(&h))
            kill((pid_t)h.pid, SIGTERM);
        t->next_poll_mono = 0;
        return;
    }
    char *argv[8] = {0};
    if (h.kind == FOLLOW_SLURM) {
        char *a[] = {"scancel", h.job_id, NULL};
        memcpy(argv, a, sizeof a);
    } else if (h.kind == FOLLOW_MPIJOB) {
        char *a[] = {"kubectl", "delete", "mpijob", h.name, "-n", h.ns, "--wait=false", NULL};
        memcpy(argv, a, sizeof a);
    } else {
        return; /* the submit has not answered yet: target__submitted cancels it */
    }
    if (t->polling)
        return; /* a poll is in flight; the next tick cancels (target__poll) */
    if (follow_capture(t->c->loop, argv, TARGET_CAPTURE_MS, target__cancelled_cb, t) == 0) {
        t->polling = 1;
        t->cancelling = 2; /* sent */
    }
}

int target_cancel(coord_t *c, const sweep_t *sw)
{
    int n = 0;
    for (target_t *t = c->targets; t; t = t->next) {
        if (t->sweep != sw->id ||
            (t->state != TARGET_STATE_PENDING && t->state != TARGET_STATE_RUNNING))
            continue;
        follow_handle_t h;
        int nothing = !t->run && !t->polling &&
                      (follow_handle_parse(t->handle, &h) < 0 || h.kind == FOLLOW_NONE);
        t->cancelling = 1;
        n++;
        log_info("target_cancel", "sweep=%s role=%s handle=%s", sw->sweep_id, t->role,
                 t->handle ? t->handle : "");
        if (nothing)
            target__move(t, TARGET_STATE_CANCELLED, "cancelled before it was submitted");
        else
            target__cancel_job(t);
    }
    return n;
}

static void target__weights(const char *js, Regmix__DomainWeight ***ret, size_t *ret_n)
{
    json_t *o = json_loads(js ? js : "{}", 0, NULL);
    size_t n = json_is_object(o) ? json_object_size(o) : 0, i = 0;
    Regmix__DomainWeight **v = calloc(n ? n : 1, sizeof *v);
    const char *key;
    json_t *val;
    if (v && n) {
        json_object_foreach(o, key, val)
        {
            Regmix__DomainWeight *dw = malloc(sizeof *dw);
            if (!dw)
                break;
            regmix__domain_weight__init(dw);
            dw->domain = strdup(key);
            dw->weight = json_number_value(val);
            v[i++] = dw;
        }
    }
    json_decref(o);
    *ret = v;
    *ret_n = i;
}

int target_infos(coord_t *c, const sweep_t *sw, Regmix__TargetInfo ***ret, size_t *ret_n)
{
    size_t n = 0;
    for (target_t *t = c->targets; t; t = t->next)
        n += t->sweep == sw->id;
    Regmix__TargetInfo **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t i = 0;
    for (target_t *t = c->targets; t && i < n; t = t->next) {
        if (t->sweep != sw->id)
            continue;
        Regmix__TargetInfo *ti = calloc(1, sizeof *ti);
        if (!ti)
            break;
        regmix__target_info__init(ti);
        v[i++] = ti;
        ti->sweep_id = strdup(sw->sweep_id);
        ti->role = strdup(t->role);
        ti->state = strdup(states_target_name(t->state));
        ti->launcher = strdup(t->launcher);
        ti->ranks = (uint32_t)t->ranks;
        ti->pid = t->pid;
        ti->log_path = strdup(t->log_path ? t->log_path : "");
        ti->objective = t->objective;
        ti->step = (uint64_t)(t->step > 0 ? t->step : 0);
        ti->loss = t->loss;
        ti->detail = strdup(t->detail ? t->detail : "");
        ti->handle = strdup(t->handle ? t->handle : "");
        target__weights(t->weights_json, &ti->weights, &ti->n_weights);
        Regmix__DomainWeight **lw = NULL;
        size_t nl = 0;
        target__weights(t->losses_json, &lw, &nl);
        ti->losses = calloc(nl ? nl : 1, sizeof *ti->losses);
        for (size_t k = 0; ti->losses && k < nl; k++) {
            Regmix__DomainValue *dv = malloc(sizeof *dv);
            if (!dv)
                break;
            regmix__domain_value__init(dv);
            dv->name = lw[k]->domain;
            dv->value = lw[k]->weight;
            ti->losses[ti->n_losses++] = dv;
            free(lw[k]);
            lw[k] = NULL;
        }
        for (size_t k = 0; k < nl; k++) {
            if (lw[k]) {
                free(lw[k]->domain);
                free(lw[k]);
            }
        }
        free(lw);
    }
    *ret = v;
    *ret_n = i;
    return 0;
}

void target_infos_free(Regmix__TargetInfo **infos, size_t n)
{
    for (size_t i = 0; infos && i < n; i++) {
        Regmix__TargetInfo *ti = infos[i];
        free(ti->sweep_id);
        free(ti->role);
        free(ti->state);
        free(ti->launcher);
        free(ti->log_path);
        free(ti->detail);
        free(ti->handle);
        for (size_t k = 0; k < ti->n_weights; k++) {
            free(ti->weights[k]->domain);
            free(ti->weights[k]);
        }
        free(ti->weights);
        for (size_t k = 0; k < ti->n_losses; k++) {
            free(ti->losses[k]->name);
            free(ti->losses[k]);
        }
        free(ti->losses);
        free(ti);
    }
    free(infos);
}

void target_stop_all(coord_t *c)
{
    for (target_t *t = c->targets; t; t = t->next)
        if (t->run)
            launcher_run_kill(t->run, SIGTERM);
}
