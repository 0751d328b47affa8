#!/bin/bash
# kill -9 of the coordinator mid-sweep, restarted after DOWN_S seconds (argument 4) on the same
# database and ports: the workers reconnect and HELLO again, their held results are re-adopted,
# the sweep completes, and every run is done exactly once (nothing lost, nothing counted twice).
DOWN_S=$4
. "$(dirname "$0")/../integration/lib.sh" "$@"

start_coord
start_worker w1 4
start_worker w2 4
submit_synthetic fault-coord-kill 200 40 0 3
wait_done_at_least "$SW" 40 60
kill9_coord
# Right after the kill, before anything could repair it: every result a worker was told was
# accepted must be in the database (persist before send).
check_acked_stored
[ "$ACKED" -ge 20 ] || fail "only $ACKED acknowledged results before the kill"
note "coordinator killed; restarting after ${DOWN_S}s"
sleep "$DOWN_S"
start_coord
wait_state "$SW" 90 done
stop_coord
check_store "$SW"
done=$STORE_DONE dead=$STORE_DEAD canc=$STORE_CANC
expect_eq "done runs" "$done" 200
check_acked_stored
[ "$ACKED" -ge 100 ] || fail "only $ACKED acknowledged results in the worker logs"
grep -q 'event=welcome' "$T/worker-w1.log" || fail "worker w1 never welcomed"
[ "$(grep -c 'event=hello' "$T/worker-w1.log")" -ge 2 ] || fail "worker w1 did not HELLO again"
# The HELLOs to the new coordinator listed what the workers still ran or held results for.
cat "$T"/worker-w*.log | grep -q 'event=hello .*attempts=[1-9]' ||
    fail "no worker re-announced its attempts after the restart"
note "PASS"
