#include "target.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "fitpipe.h"
#include "launcher.h"
#include "log.h"
#include "objective.h"
#include "store_view.h"
#include "transition.h"

static void target__set(char **field, const char *v)
{
    char *d = strdup(v ? v : "");
    if (d) {
        free(*field);
        *field = d;
    }
}

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
    t->objective = row->objective;
    t->step = row->step;
    t->loss = row->loss;
    t->created_ms = row->created_ms;
    t->updated_ms = row->updated_ms;
    if (t->state == TARGET_STATE_RUNNING) {
        /* Its process belonged to the previous coordinator: never launched twice on our own. */
        transition_target(c, t, TARGET_STATE_FAILED,
                          "the coordinator restarted while it ran; launch again to resume from "
                          "its checkpoint");
        log_warn("target_orphaned", "sweep=%lld role=%s pid=%lld", (long long)t->sweep, t->role,
                 (long long)t->pid);
    }
    return 0;
}

int target_load(coord_t *c)
{
    return store_targets_foreach(c->store, target__load_row, c);
}

static void target__on_progress(launcher_run_t *run, const launcher_progress_t *p, void *data)
{
    (void)run;
    target_t *t = data;
    if (p->step >= 0)
        t->step = p->step;
    if (isfinite(p->loss))
        t->loss = p->loss;
    int64_t mono = clock_mono_ms();
    if (mono - t->last_progress_mono >= t->c->cfg.progress_every_ms) {
        t->last_progress_mono = mono;
        transition_target_save(t->c, t);
        /* The loss curve the dashboard draws, thinned as the row itself. */
        if (p->step >= 0 && isfinite(p->loss) && !t->c->fatal &&
            store_view_target_point(t->c->store, t->sweep, t->role, p->step, p->loss,
                                    t->updated_ms) < 0)
            coord_fatal(t->c, "target_progress");
    }
}

static void target__on_exit(launcher_run_t *run, const launcher_outcome_t *o, void *data)
{
    (void)run;
    target_t *t = data;
    coord_t *c = t->c;
    t->run = NULL;
    int submits = t->state == TARGET_STATE_SUBMITTING;
    char detail[256];
    target_state_t to;
    if (o->exit_status == 0 && submits) {
        to = TARGET_STATE_SUBMITTED;
        snprintf(detail, sizeof detail, "%s", t->detail ? t->detail : "");
    } else if (o->exit_status == 0 && o->has_result) {
        to = TARGET_STATE_DONE;
        snprintf(detail, sizeof detail, "finished after %llu progress lines",
                 (unsigned long long)o->progress_lines);
    } else {
        to = TARGET_STATE_FAILED;
        snprintf(detail, sizeof detail, "exit status %lld, signal %d%s", (long long)o->exit_status,
                 o->term_signal, o->has_result ? "" : ", no result line");
    }
    if (o->has_result && o->nlosses > 0) {
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
        sweep_t *sw = coord_sweep_by_id(c, t->sweep);
        char text[1024];
        objective_t *ob = NULL;
        if (sw && sw->spec && fitpipe_target_text(sw->spec, text, sizeof text) == 0 &&
            objective_parse(text, (const char *const *)o->loss_names, o->nlosses, &ob, NULL, 0) ==
                    0) {
            t->objective = objective_eval(ob, o->losses);
            objective_destroy(&ob);
        }
    }
    if (transition_target(c, t, to, detail) == -EINVAL)
        transition_target_save(c, t); /* keep the losses of a run in a state we did not expect */
    log_info("target_exited", "sweep=%lld role=%s state=%s exit=%lld signal=%d objective=%g",
             (long long)t->sweep, t->role, states_target_name(t->state), (long long)o->exit_status,
             o->term_signal, t->objective);
    sweep_t *sw = coord_sweep_by_id(c, t->sweep);
    if (sw) {
        char text[200];
        snprintf(text, sizeof text, "%s run %s (%s)", t->role, states_target_name(t->state),
                 t->detail);
        coord_sweep_event(c, sw, "target", text, 0);
    }
}

/* Launches one role of `sw`; 1 launched, 0 skipped (already launched), < 0 error. */
static int target__launch_role(
        coord_t *c, sweep_t *sw, const char *role, const double *weights, char *err, size_t errlen)
{
    target_t *t = coord_target_find(c, sw->id, role);
    if (t && (t->run || states_target_launched(t->state)))
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
    target__set(&t->log_path, logp);
    target__set(&t->weights_json, wj ? wj : "{}");
    target__set(&t->losses_json, "{}");
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
    if (r == 0 && plan.argv) {
        r = launcher_run_start(c->loop, plan.argv, plan.progress_fd, logp, plan.workdir,
                               target__on_progress, target__on_exit, t, &t->run);
        if (r < 0)
            snprintf(err, errlen, "spawning %s: %s", plan.argv[0], strerror(-r));
    }
    if (r < 0) {
        transition_target(c, t, TARGET_STATE_FAILED, err);
    } else if (plan.argv) {
        t->pid = launcher_run_pid(t->run);
        transition_target(c, t, plan.submits ? TARGET_STATE_SUBMITTING : TARGET_STATE_RUNNING,
                          NULL);
    }
    log_info("target_launched", "sweep=%s role=%s launcher=%s state=%s pid=%lld", sw->sweep_id,
             role, t->launcher, states_target_name(t->state), (long long)t->pid);
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
