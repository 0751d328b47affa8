#!/bin/bash
# A bounded chaos loop: ITERATIONS (argument 4, default 10) times, at a random moment (0.1-0.8 s
# into the iteration, $RANDOM seeded by the test's pid and printed so a failure can be replayed)
# kill -9 the coordinator or one of three workers, chosen at random, and restart it at once.
# After each restart the counts are exact: the run states sum to the sweep's runs, and the done
# count never goes backwards (an acknowledged state is committed). At the end: every run done
# exactly once, and every result a worker was told was accepted is in the database.
ITER=${4:-10}
. "$(dirname "$0")/../integration/lib.sh" "$@"

SEED=$$
RANDOM=$SEED
note "chaos seed $SEED, $ITER iterations"
RUNS=2000
start_coord
for w in w1 w2 w3; do
    start_worker "$w" 4
    eval "PID_$w=$WORKER_PID"
done
submit_synthetic chaos $RUNS 60 0 20

# counts: prints "done sum" from status (sum of every run state), retrying while it restarts.
counts() {
    local i js
    for i in $(seq 1 100); do
        js=$(ctl status "$SW" --json --timeout 1 2>/dev/null) && break
    done
    echo "$js" | jq -r '[.runs.done, (.runs | [.queued, .leased, .running, .done, .failed, .dead, .cancelled] | map(. // 0) | add)] | @tsv'
}

last_done=0
kills_coord=0 kills_worker=0
for it in $(seq 1 "$ITER"); do
    # A random moment: the chaos is the point of this delay, it synchronises nothing.
    sleep "0.$((1 + RANDOM % 8))"
    read -r d_before _ <<<"$(counts)"
    victim=$((RANDOM % 4))
    if [ "$victim" = 0 ]; then
        kill9_coord
        start_coord
        kills_coord=$((kills_coord + 1))
        what=coordinator
    else
        w=w$victim
        eval "pid=\$PID_$w"
        { kill -9 "$pid" && wait "$pid"; } 2>/dev/null
        start_worker "$w" 4
        eval "PID_$w=$WORKER_PID"
        kills_worker=$((kills_worker + 1))
        what=worker-$w
    fi
    read -r d_after sum <<<"$(counts)"
    note "iteration $it: killed $what; done $d_before -> $d_after; states sum $sum"
    expect_eq "iteration $it: run states sum" "$sum" $RUNS
    [ "$d_after" -ge "$d_before" ] && [ "$d_before" -ge "$last_done" ] ||
        fail "iteration $it: done went backwards ($last_done, $d_before, $d_after)"
    last_done=$d_after
done
note "kills: coordinator $kills_coord, workers $kills_worker"
wait_state "$SW" 120 done
stop_coord
check_store "$SW"
expect_eq "done runs" "$STORE_DONE" $RUNS
check_acked_stored
[ "$ACKED" -ge 1000 ] || fail "only $ACKED acknowledged results in the worker logs"
note "PASS"
