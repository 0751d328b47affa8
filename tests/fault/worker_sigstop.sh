#!/bin/bash
# SIGSTOP of a worker past its lease, then SIGCONT: its attempts were requeued meanwhile and
# finished elsewhere; the results it sends late are acknowledged and fenced (counted zero
# times); every run is done exactly once.
#
# No sleeps: w1 stays stopped until the coordinator has declared every attempt it held lost
# (lease passed), and the store is checked once w1 has dealt with each of them (a late result
# acknowledged as discarded, or the attempt abandoned at its next WELCOME): one line each.
. "$(dirname "$0")/../integration/lib.sh" "$@"

start_coord
start_worker w1 4
W1=$WORKER_PID
start_worker w2 4
synthetic_spec "$T/spec.yaml" fault-worker-stop 40 800 0 3
SW=$(submit "$T/spec.yaml")
note "sweep $SW"
wait_done_at_least "$SW" 4 30
w1_busy() { [ "$(worker_running w1)" -ge 1 ]; }
wait_for "w1 running an attempt" 20 w1_busy
kill -STOP "$W1"
note "worker w1 stopped"
lost_w1() { grep 'event=attempt_lost ' "$T/coordinator.log" | grep -c 'worker=[^ ]*:w1 .*why="lease passed"'; }
w1_taken() { [ "$(lost_w1)" -ge 1 ] && [ "$(worker_running w1)" = 0 ]; }
wait_for "w1's attempts declared lost while it is stopped" $((LEASE_MS * 4 / 1000 + 10)) w1_taken
lost=$(lost_w1)
kill -CONT "$W1"
note "worker w1 continued after losing $lost attempts"
late_w1() { grep -c 'event=result_discarded\|event=attempt_stopped' "$T/worker-w1.log"; }
w1_caught_up() { [ "$(late_w1)" -ge "$lost" ]; }
wait_for "w1 fencing or abandoning its $lost lost attempts" 20 w1_caught_up
wait_state "$SW" 90 done
stop_coord
check_store "$SW"
expect_eq "done runs" "$STORE_DONE" 40
expect_eq "late attempts of w1 fenced or abandoned" "$(late_w1)" "$lost"
expect_eq "attempts of w1 lost in the store" \
    "$(db "SELECT count(*) FROM attempts WHERE worker LIKE '%:w1' AND state = 'lost'")" "$lost"
expect_eq "runs with more than one attempt" "$(db "SELECT count(*) FROM runs WHERE attempts > 1")" "$lost"
expect_eq "results stored from a lost attempt" \
    "$(db "SELECT count(*) FROM results r JOIN attempts a ON a.id = r.attempt WHERE a.state = 'lost'")" 0
note "PASS (lost and fenced: $lost)"
