#!/bin/bash
# fail_rate 0.3 with max_attempts 3: failed attempts are retried with backoff, runs whose three
# attempts all failed are dead; done + dead = runs, every dead run has exactly max_attempts
# failed attempts, and every done run exactly one result.
. "$(dirname "$0")/../integration/lib.sh" "$@"

start_coord
start_worker w1 4
start_worker w2 4
submit_synthetic fault-fail-rate 150 0 0.3 3
wait_state "$SW" 90 done failed
stop_coord
check_store "$SW"
done=$STORE_DONE dead=$STORE_DEAD canc=$STORE_CANC
expect_eq "done + dead" $((done + dead)) 150
expect_eq "cancelled" "$canc" 0
[ "$dead" -ge 1 ] || fail "no run is dead (P = 0.973^150 = 1.6%: check the retries)"
[ "$done" -ge 130 ] || fail "only $done runs done"
id=$(db "SELECT id FROM sweeps WHERE sweep_id = '$SW'")
bad=$(db "SELECT count(*) FROM runs WHERE sweep = $id AND state = 'dead' AND attempts <> 3")
expect_eq "dead runs without exactly 3 attempts" "$bad" 0
retried=$(db "SELECT count(*) FROM runs WHERE sweep = $id AND state = 'done' AND attempts > 1")
[ "$retried" -ge 10 ] || fail "only $retried done runs needed a retry"
note "PASS (done $done, dead $dead, done after a retry $retried)"
