#!/bin/bash
# kill -9 of a worker in the middle of its jobs: its attempts are requeued once their leases
# pass and finish on the other worker; every run is done exactly once.
#
# Exact accounting of what the kill cost: the coordinator logs worker_lost with the attempts it
# still counted on w1, then one attempt_lost per attempt; the store has exactly those attempts of
# w1 in state 'lost' (every other attempt of w1 is 'done'), no other worker lost one, and each
# lost attempt's run was retried exactly once (the spec has no failures).
. "$(dirname "$0")/../integration/lib.sh" "$@"

start_coord
start_worker w1 4
W1=$WORKER_PID
start_worker w2 4
synthetic_spec "$T/spec.yaml" fault-worker-kill 40 800 0 3
SW=$(submit "$T/spec.yaml")
note "sweep $SW"
wait_done_at_least "$SW" 4 30
# Kill it while it holds attempts (it has 4 slots and 800 ms jobs: almost always).
w1_busy() { [ "$(worker_running w1)" -ge 1 ]; }
wait_for "w1 running an attempt" 20 w1_busy
{ kill -9 "$W1" && wait "$W1"; } 2>/dev/null
note "worker w1 killed"
wait_state "$SW" 90 done
stop_coord
check_store "$SW"
expect_eq "done runs" "$STORE_DONE" 40
check_acked_stored
[ "$ACKED" -ge 20 ] || fail "only $ACKED acknowledged results in the worker logs"

held=$(grep 'event=worker_lost ' "$T/coordinator.log" | grep -o 'worker=[^ ]*:w1 .*' |
    sed -n 's/.* running=\([0-9]*\).*/\1/p')
[ -n "$held" ] || fail "the coordinator never logged w1 as lost"
expect_eq "worker_lost lines for w1" "$(echo "$held" | wc -l)" 1
[ "$held" -ge 1 ] && [ "$held" -le 4 ] || fail "w1 held $held attempts at its loss, want 1..4"
expect_eq "attempt_lost lines for w1" \
    "$(grep 'event=attempt_lost ' "$T/coordinator.log" | grep -c 'worker=[^ ]*:w1 .*why="lease passed"')" "$held"
expect_eq "attempts of w1 lost in the store" \
    "$(db "SELECT count(*) FROM attempts WHERE worker LIKE '%:w1' AND state = 'lost'")" "$held"
expect_eq "attempts of w1 neither done nor lost" \
    "$(db "SELECT count(*) FROM attempts WHERE worker LIKE '%:w1' AND state NOT IN ('done', 'lost')")" 0
expect_eq "attempts lost by any other worker" \
    "$(db "SELECT count(*) FROM attempts WHERE worker NOT LIKE '%:w1' AND state = 'lost'")" 0
expect_eq "runs with more than one attempt" "$(db "SELECT count(*) FROM runs WHERE attempts > 1")" "$held"
expect_eq "lost runs finished by a later attempt on w2" \
    "$(db "SELECT count(*) FROM attempts l JOIN attempts d ON d.run = l.run AND d.attempt_no = l.attempt_no + 1
           WHERE l.worker LIKE '%:w1' AND l.state = 'lost' AND d.state = 'done' AND d.worker LIKE '%:w2'")" "$held"
note "PASS (attempts of w1 lost and retried: $held)"
