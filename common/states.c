/*
 * states: name tables and transition tables of the life cycles (states.h).
 */
#include "states.h"

#include <string.h>

#include "regmix.pb-c.h"

/* The in-memory run and sweep states are the protocol's values, so a cast converts. */
_Static_assert((int)RUN_STATE_QUEUED == (int)REGMIX__RUN_STATE__RUN_STATE_QUEUED, "run states");
_Static_assert((int)RUN_STATE_LEASED == (int)REGMIX__RUN_STATE__RUN_STATE_LEASED, "run states");
_Static_assert((int)RUN_STATE_RUNNING == (int)REGMIX__RUN_STATE__RUN_STATE_RUNNING, "run states");
_Static_assert((int)RUN_STATE_DONE == (int)REGMIX__RUN_STATE__RUN_STATE_DONE, "run states");
_Static_assert((int)RUN_STATE_FAILED == (int)REGMIX__RUN_STATE__RUN_STATE_FAILED, "run states");
_Static_assert((int)RUN_STATE_DEAD == (int)REGMIX__RUN_STATE__RUN_STATE_DEAD, "run states");
_Static_assert((int)RUN_STATE_CANCELLED == (int)REGMIX__RUN_STATE__RUN_STATE_CANCELLED,
               "run states");
_Static_assert((int)SWEEP_STATE_RUNNING == (int)REGMIX__SWEEP_STATE__SWEEP_STATE_RUNNING,
               "sweep states");
_Static_assert((int)SWEEP_STATE_CONVERGED == (int)REGMIX__SWEEP_STATE__SWEEP_STATE_CONVERGED,
               "sweep states");
_Static_assert((int)SWEEP_STATE_DONE == (int)REGMIX__SWEEP_STATE__SWEEP_STATE_DONE, "sweep states");
_Static_assert((int)SWEEP_STATE_CANCELLED == (int)REGMIX__SWEEP_STATE__SWEEP_STATE_CANCELLED,
               "sweep states");
_Static_assert((int)SWEEP_STATE_FAILED == (int)REGMIX__SWEEP_STATE__SWEEP_STATE_FAILED,
               "sweep states");

static const char *const states__run[RUN_STATE__COUNT] = {
        "unspecified", "queued", "leased", "running", "done", "failed", "dead", "cancelled"};
static const char *const states__sweep[SWEEP_STATE__COUNT] = {
        "unspecified", "running", "converged", "done", "cancelled", "failed"};
static const char *const states__attempt[ATTEMPT_STATE__COUNT] = {
        "unspecified", "leased", "running", "done", "failed", "lost", "cancelled"};
static const char *const states__target[TARGET_STATE__COUNT] = {
        "unspecified", "pending", "running", "done", "failed", "cancelled"};
static const char *const states__worker[WORKER_STATE__COUNT] = {"unspecified", "connected", "lost",
                                                                "draining", "quarantined"};

static const char *states__name(const char *const *table, int n, int s)
{
    return s >= 0 && s < n ? table[s] : table[0];
}

static int states__parse(const char *const *table, int n, const char *name)
{
    if (!name)
        return 0;
    for (int i = 1; i < n; i++)
        if (strcmp(name, table[i]) == 0)
            return i;
    return 0;
}

const char *states_run_name(run_state_t s)
{
    return states__name(states__run, RUN_STATE__COUNT, (int)s);
}

const char *states_sweep_name(sweep_state_t s)
{
    return states__name(states__sweep, SWEEP_STATE__COUNT, (int)s);
}

const char *states_attempt_name(attempt_state_t s)
{
    return states__name(states__attempt, ATTEMPT_STATE__COUNT, (int)s);
}

const char *states_target_name(target_state_t s)
{
    return states__name(states__target, TARGET_STATE__COUNT, (int)s);
}

const char *states_worker_name(worker_state_t s)
{
    return states__name(states__worker, WORKER_STATE__COUNT, (int)s);
}

run_state_t states_run_parse(const char *name)
{
    return (run_state_t)states__parse(states__run, RUN_STATE__COUNT, name);
}

sweep_state_t states_sweep_parse(const char *name)
{
    return (sweep_state_t)states__parse(states__sweep, SWEEP_STATE__COUNT, name);
}

attempt_state_t states_attempt_parse(const char *name)
{
    return (attempt_state_t)states__parse(states__attempt, ATTEMPT_STATE__COUNT, name);
}

target_state_t states_target_parse(const char *name)
{
    return (target_state_t)states__parse(states__target, TARGET_STATE__COUNT, name);
}

worker_state_t states_worker_parse(const char *name)
{
    return (worker_state_t)states__parse(states__worker, WORKER_STATE__COUNT, name);
}

/* Transition tables: bit `to` of row `from` is set when from -> to is allowed. */
#define B(s) (1u << (s))

static const unsigned states__run_next[RUN_STATE__COUNT] = {
        [RUN_STATE_QUEUED] = B(RUN_STATE_LEASED) | B(RUN_STATE_CANCELLED),
        [RUN_STATE_LEASED] = B(RUN_STATE_RUNNING) | B(RUN_STATE_DONE) | B(RUN_STATE_FAILED) |
                             B(RUN_STATE_DEAD) | B(RUN_STATE_CANCELLED) | B(RUN_STATE_QUEUED),
        [RUN_STATE_RUNNING] = B(RUN_STATE_DONE) | B(RUN_STATE_FAILED) | B(RUN_STATE_DEAD) |
                              B(RUN_STATE_CANCELLED) | B(RUN_STATE_QUEUED),
        [RUN_STATE_FAILED] = B(RUN_STATE_QUEUED) | B(RUN_STATE_CANCELLED),
};

static const unsigned states__sweep_next[SWEEP_STATE__COUNT] = {
        [SWEEP_STATE_RUNNING] = B(SWEEP_STATE_CONVERGED) | B(SWEEP_STATE_DONE) |
                                B(SWEEP_STATE_FAILED) | B(SWEEP_STATE_CANCELLED),
        [SWEEP_STATE_CONVERGED] = B(SWEEP_STATE_CANCELLED),
        [SWEEP_STATE_DONE] = B(SWEEP_STATE_CONVERGED),
};

static const unsigned states__attempt_next[ATTEMPT_STATE__COUNT] = {
        [ATTEMPT_STATE_LEASED] = B(ATTEMPT_STATE_RUNNING) | B(ATTEMPT_STATE_DONE) |
                                 B(ATTEMPT_STATE_FAILED) | B(ATTEMPT_STATE_LOST) |
                                 B(ATTEMPT_STATE_CANCELLED),
        [ATTEMPT_STATE_RUNNING] = B(ATTEMPT_STATE_DONE) | B(ATTEMPT_STATE_FAILED) |
                                  B(ATTEMPT_STATE_LOST) | B(ATTEMPT_STATE_CANCELLED),
};

static const unsigned states__target_next[TARGET_STATE__COUNT] = {
        [TARGET_STATE_UNSPECIFIED] = B(TARGET_STATE_PENDING),
        [TARGET_STATE_PENDING] =
                B(TARGET_STATE_RUNNING) | B(TARGET_STATE_FAILED) | B(TARGET_STATE_CANCELLED),
        [TARGET_STATE_RUNNING] =
                B(TARGET_STATE_DONE) | B(TARGET_STATE_FAILED) | B(TARGET_STATE_CANCELLED),
        [TARGET_STATE_FAILED] = B(TARGET_STATE_PENDING),
        [TARGET_STATE_CANCELLED] = B(TARGET_STATE_PENDING),
};

#undef B

static int states__allowed(const unsigned *next, int n, int from, int to)
{
    return from >= 0 && from < n && to > 0 && to < n && (next[from] >> to & 1u);
}

int states_run_allowed(run_state_t from, run_state_t to)
{
    return states__allowed(states__run_next, RUN_STATE__COUNT, (int)from, (int)to);
}

int states_sweep_allowed(sweep_state_t from, sweep_state_t to)
{
    return states__allowed(states__sweep_next, SWEEP_STATE__COUNT, (int)from, (int)to);
}

int states_attempt_allowed(attempt_state_t from, attempt_state_t to)
{
    return states__allowed(states__attempt_next, ATTEMPT_STATE__COUNT, (int)from, (int)to);
}

int states_target_allowed(target_state_t from, target_state_t to)
{
    return states__allowed(states__target_next, TARGET_STATE__COUNT, (int)from, (int)to);
}

int states_run_open(run_state_t s)
{
    return s == RUN_STATE_QUEUED || s == RUN_STATE_LEASED || s == RUN_STATE_RUNNING ||
           s == RUN_STATE_FAILED;
}

int states_run_live(run_state_t s)
{
    return s == RUN_STATE_LEASED || s == RUN_STATE_RUNNING;
}

int states_sweep_open(sweep_state_t s)
{
    return s == SWEEP_STATE_RUNNING || s == SWEEP_STATE_CONVERGED;
}

int states_target_launched(target_state_t s)
{
    return s == TARGET_STATE_PENDING || s == TARGET_STATE_RUNNING || s == TARGET_STATE_DONE;
}

int states_target_final(target_state_t s)
{
    return s == TARGET_STATE_DONE || s == TARGET_STATE_FAILED || s == TARGET_STATE_CANCELLED;
}
