#!/bin/bash
# SIGSTOP of a worker past its lease, then SIGCONT: its attempts were requeued meanwhile and
# finished elsewhere; the results it sends late are acknowledged and fenced (counted zero
# times); every run is done exactly once.
. "$(dirname "$0")/../integration/lib.sh" "$@"

start_coord
start_worker w1 4
W1=$WORKER_PID
start_worker w2 4
synthetic_spec "$T/spec.yaml" fault-worker-stop 40 800 0 3
SW=$(submit "$T/spec.yaml")
note "sweep $SW"
wait_done_at_least "$SW" 4 30
kill -STOP "$W1"
note "worker w1 stopped for $((LEASE_MS * 2 / 1000 + 1)) s"
sleep $((LEASE_MS * 2 / 1000 + 1))
kill -CONT "$W1"
note "worker w1 continued"
wait_state "$SW" 90 done
sleep 1.5 # w1's late results reach the coordinator and are fenced
stop_coord
read -r done dead canc <<<"$(check_store "$SW")"
expect_eq "done runs" "$done" 40
late=$(grep -c 'event=report_dropped.*acked-discarded\|acked-discarded' "$T/worker-w1.log")
note "late results of w1 acknowledged as discarded: $late"
retried=$(db "SELECT count(*) FROM runs WHERE attempts > 1")
[ "$retried" -ge 1 ] || fail "no run was retried while w1 was stopped"
note "PASS"
