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
# Its attempts were taken away while it slept: each late result is acknowledged as discarded,
# or cancelled or abandoned by the coordinator; either way it is counted zero times (above).
late=$(grep -c 'event=result_discarded\|event=attempt_stopped' "$T/worker-w1.log")
[ "$late" -ge 1 ] || fail "no late result of w1 was fenced or abandoned"
note "late attempts of w1 fenced or abandoned: $late"
retried=$(db "SELECT count(*) FROM runs WHERE attempts > 1")
[ "$retried" -ge 1 ] || fail "no run was retried while w1 was stopped"
note "PASS"
