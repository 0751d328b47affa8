#!/bin/bash
# kill -9 of a worker in the middle of its jobs: its attempts are requeued once their leases
# pass and finish on the other worker; every run is done exactly once.
. "$(dirname "$0")/../integration/lib.sh" "$@"

start_coord
start_worker w1 4
W1=$WORKER_PID
start_worker w2 4
synthetic_spec "$T/spec.yaml" fault-worker-kill 40 800 0 3
SW=$(submit "$T/spec.yaml")
note "sweep $SW"
wait_done_at_least "$SW" 4 30
{ kill -9 "$W1" && wait "$W1"; } 2>/dev/null
note "worker w1 killed"
wait_state "$SW" 90 done
stop_coord
read -r done dead canc <<<"$(check_store "$SW")"
expect_eq "done runs" "$done" 40
lost=$(db "SELECT count(*) FROM attempts WHERE worker LIKE '%:w1' AND state NOT IN ('done', 'succeeded', 'ok')")
[ "$lost" -ge 1 ] || fail "no attempt of the killed worker was lost and retried"
retried=$(db "SELECT count(*) FROM runs WHERE attempts > 1")
[ "$retried" -ge 1 ] || fail "no run needed a second attempt"
note "PASS (attempts of w1 lost: $lost, runs retried: $retried)"
