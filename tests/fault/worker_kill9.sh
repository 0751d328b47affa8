#!/bin/bash
# kill -9 of a worker in the middle of its jobs: its attempts are requeued once their leases
# pass and finish on the other worker; every run is done exactly once.
#
# Exact accounting of what the kill cost, by attempt id: the attempts of w1 lost in the store
# are the ones the coordinator logged lost (at least one: w1 is killed while running), every
# other attempt of w1 is done, and each lost attempt (of any worker) cost its run exactly one
# more attempt (the spec has no failures).
. "$(dirname "$0")/../integration/lib.sh" "$@"

# Kill w1 while it holds attempts.
busy_pair fault-worker-kill
{ kill -9 "$W1" && wait "$W1"; } 2>/dev/null
note "worker w1 killed"
wait_state "$SW" 90 done
stop_coord
check_store "$SW"
expect_eq "done runs" "$STORE_DONE" 40
check_acked_stored
[ "$ACKED" -ge 20 ] || fail "only $ACKED acknowledged results in the worker logs"

grep -q 'event=worker_lost .*worker=[^ ]*:w1 ' "$T/coordinator.log" ||
    fail "the coordinator never logged w1 as lost"
lost=$(lost_in_store w1)
[ -n "$lost" ] || fail "no attempt of w1 is lost in the store"
expect_eq "attempts of w1 lost: store = coordinator log" "$(echo $lost)" "$(echo $(lost_in_log w1))"
subset "$(lost_in_log w1 'lease passed')" "$lost" || fail "an attempt lost on lease is not lost in the store"
[ -n "$(lost_in_log w1 'lease passed')" ] || fail "no attempt of w1 was lost when its lease passed"
expect_eq "attempts of w1 neither done nor lost" \
    "$(db "SELECT count(*) FROM attempts WHERE worker LIKE '%:w1' AND state NOT IN ('done', 'lost')")" 0
expect_eq "extra attempts of runs = lost attempts" \
    "$(db "SELECT sum(attempts - 1) FROM runs")" "$(db "SELECT count(*) FROM attempts WHERE state = 'lost'")"
expect_eq "runs of w1's lost attempts finished by a later attempt" \
    "$(db "SELECT count(DISTINCT l.run) FROM attempts l JOIN attempts d ON d.run = l.run AND d.attempt_no > l.attempt_no
           WHERE l.worker LIKE '%:w1' AND l.state = 'lost' AND d.state = 'done'")" \
    "$(db "SELECT count(DISTINCT run) FROM attempts WHERE worker LIKE '%:w1' AND state = 'lost'")"
note "PASS (attempts of w1 lost and retried: $(echo $lost))"
