#!/bin/bash
# SIGSTOP of a worker past its lease, then SIGCONT: its attempts were requeued meanwhile and
# finished elsewhere; the results it sends late are acknowledged and fenced (counted zero
# times); every run is done exactly once.
#
# No sleeps: w1 stays stopped until the coordinator has declared what it held lost (lease
# passed), and the store is checked once w1 has dealt with each of those attempts (a late result
# acknowledged as discarded, or the attempt abandoned at its next WELCOME). By attempt id:
# lost on lease  ⊆  dealt with by w1  ⊆  lost in the store  =  lost in the coordinator's log.
. "$(dirname "$0")/../integration/lib.sh" "$@"

busy_pair fault-worker-stop
kill -STOP "$W1"
note "worker w1 stopped"
w1_taken() { [ -n "$(lost_in_log w1 'lease passed')" ] && [ "$(worker_running w1)" = 0 ]; }
wait_for "w1's attempts declared lost while it is stopped" $((LEASE_MS * 4 / 1000 + 10)) w1_taken
kill -CONT "$W1"
note "worker w1 continued after losing attempts $(echo $(lost_in_log w1 'lease passed'))"
late_w1() { grep 'event=result_discarded \|event=attempt_stopped ' "$T/worker-w1.log" | attempt_ids; }
w1_caught_up() { subset "$(lost_in_log w1 'lease passed')" "$(late_w1)"; }
wait_for "w1 fencing or abandoning the attempts it lost" 20 w1_caught_up
wait_state "$SW" 90 done
wait_for "w1 fencing or abandoning the attempts it lost" 20 w1_caught_up
stop_coord
check_store "$SW"
expect_eq "done runs" "$STORE_DONE" 40
lost=$(lost_in_store w1)
expect_eq "attempts of w1 lost: store = coordinator log" "$(echo $lost)" "$(echo $(lost_in_log w1))"
subset "$(late_w1)" "$lost" || fail "w1 fenced or abandoned attempts that are not lost: $(echo $(late_w1)) vs $(echo $lost)"
expect_eq "extra attempts of runs = lost attempts" \
    "$(db "SELECT sum(attempts - 1) FROM runs")" "$(db "SELECT count(*) FROM attempts WHERE state = 'lost'")"
expect_eq "results stored from a lost attempt" \
    "$(db "SELECT count(*) FROM results r JOIN attempts a ON a.id = r.attempt WHERE a.state = 'lost'")" 0
note "PASS (lost on lease: $(echo $(lost_in_log w1 'lease passed')); fenced or abandoned by w1: $(echo $(late_w1)))"
