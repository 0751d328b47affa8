/*
 * test_states: the one name table of the life cycles (common/states.h): every name parses back
 * to its state, unknown words and NULL parse to UNSPECIFIED, the stored words did not change
 * (they are in users' databases), and the transition tables allow what the coordinator does and
 * refuse the rest.
 */
#include "states.h"
#include "test.h"

static void test_names_round_trip(void)
{
    for (int s = 1; s < RUN_STATE__COUNT; s++)
        CHECK_INT_EQ(states_run_parse(states_run_name((run_state_t)s)), s);
    for (int s = 1; s < SWEEP_STATE__COUNT; s++)
        CHECK_INT_EQ(states_sweep_parse(states_sweep_name((sweep_state_t)s)), s);
    for (int s = 1; s < ATTEMPT_STATE__COUNT; s++)
        CHECK_INT_EQ(states_attempt_parse(states_attempt_name((attempt_state_t)s)), s);
    for (int s = 1; s < TARGET_STATE__COUNT; s++)
        CHECK_INT_EQ(states_target_parse(states_target_name((target_state_t)s)), s);
    for (int s = 1; s < WORKER_STATE__COUNT; s++)
        CHECK_INT_EQ(states_worker_parse(states_worker_name((worker_state_t)s)), s);
}

static void test_stored_words(void)
{
    CHECK_STR_EQ(states_run_name(RUN_STATE_QUEUED), "queued");
    CHECK_STR_EQ(states_run_name(RUN_STATE_DEAD), "dead");
    CHECK_STR_EQ(states_run_name(RUN_STATE_CANCELLED), "cancelled");
    CHECK_STR_EQ(states_sweep_name(SWEEP_STATE_CONVERGED), "converged");
    CHECK_STR_EQ(states_attempt_name(ATTEMPT_STATE_LOST), "lost");
    CHECK_STR_EQ(states_target_name(TARGET_STATE_CANCELLED), "cancelled");
    /* the submit-only words of old rows are no state any more (store migration 4 moves them) */
    CHECK_INT_EQ(states_target_parse("submitted"), TARGET_STATE_UNSPECIFIED);
    CHECK_STR_EQ(states_worker_name(WORKER_STATE_QUARANTINED), "quarantined");
    CHECK_STR_EQ(states_run_name((run_state_t)99), "unspecified");
    CHECK_STR_EQ(states_target_name((target_state_t)-1), "unspecified");
    CHECK_INT_EQ(states_run_parse(NULL), RUN_STATE_UNSPECIFIED);
    CHECK_INT_EQ(states_run_parse("Queued"), RUN_STATE_UNSPECIFIED);
    CHECK_INT_EQ(states_sweep_parse("unspecified"), SWEEP_STATE_UNSPECIFIED);
    CHECK_INT_EQ(states_target_parse(""), TARGET_STATE_UNSPECIFIED);
}

static void test_transitions(void)
{
    CHECK(states_run_allowed(RUN_STATE_QUEUED, RUN_STATE_LEASED));
    CHECK(states_run_allowed(RUN_STATE_LEASED, RUN_STATE_QUEUED)); /* lost, requeued */
    CHECK(states_run_allowed(RUN_STATE_FAILED, RUN_STATE_QUEUED)); /* retry due */
    CHECK(!states_run_allowed(RUN_STATE_DONE, RUN_STATE_QUEUED));
    CHECK(!states_run_allowed(RUN_STATE_QUEUED, RUN_STATE_DONE));
    CHECK(!states_run_allowed(RUN_STATE_CANCELLED, RUN_STATE_LEASED));
    CHECK(!states_run_allowed(RUN_STATE_QUEUED, (run_state_t)42));
    CHECK(states_sweep_allowed(SWEEP_STATE_DONE, SWEEP_STATE_CONVERGED));
    CHECK(!states_sweep_allowed(SWEEP_STATE_CANCELLED, SWEEP_STATE_RUNNING));
    CHECK(!states_sweep_allowed(SWEEP_STATE_CONVERGED, SWEEP_STATE_DONE));
    CHECK(states_attempt_allowed(ATTEMPT_STATE_LEASED, ATTEMPT_STATE_LOST));
    CHECK(!states_attempt_allowed(ATTEMPT_STATE_DONE, ATTEMPT_STATE_FAILED));
    CHECK(states_target_allowed(TARGET_STATE_UNSPECIFIED, TARGET_STATE_PENDING));
    CHECK(states_target_allowed(TARGET_STATE_PENDING, TARGET_STATE_RUNNING));
    CHECK(states_target_allowed(TARGET_STATE_CANCELLED, TARGET_STATE_PENDING));
    CHECK(states_target_allowed(TARGET_STATE_FAILED, TARGET_STATE_PENDING));
    CHECK(!states_target_allowed(TARGET_STATE_DONE, TARGET_STATE_PENDING));
    CHECK(!states_target_allowed(TARGET_STATE_RUNNING, TARGET_STATE_PENDING));
    CHECK(!states_target_allowed(TARGET_STATE_PENDING, TARGET_STATE_DONE)); /* it ran first */
}

static void test_classes(void)
{
    int open = 0, live = 0, launched = 0, final = 0;
    for (int s = 0; s < RUN_STATE__COUNT; s++) {
        open += states_run_open((run_state_t)s);
        live += states_run_live((run_state_t)s);
    }
    CHECK_INT_EQ(open, 4);
    CHECK_INT_EQ(live, 2);
    CHECK(states_sweep_open(SWEEP_STATE_CONVERGED));
    CHECK(!states_sweep_open(SWEEP_STATE_DONE));
    for (int s = 0; s < TARGET_STATE__COUNT; s++) {
        launched += states_target_launched((target_state_t)s);
        final += states_target_final((target_state_t)s);
        /* A final target never counts as in flight, except done, which is never relaunched. */
        if (states_target_final((target_state_t)s) && s != TARGET_STATE_DONE)
            CHECK(!states_target_launched((target_state_t)s));
    }
    CHECK_INT_EQ(launched, 3);
    CHECK_INT_EQ(final, 3);
}

int main(void)
{
    TEST_RUN(test_names_round_trip);
    TEST_RUN(test_stored_words);
    TEST_RUN(test_transitions);
    TEST_RUN(test_classes);
    return test_finish();
}
