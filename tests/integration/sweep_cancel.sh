#!/bin/bash
# Cancelling: one run of a sweep (--run N), then the whole sweep mid-way. Afterwards nothing is
# left queued, leased or running; done + cancelled = runs; and the client's errors are right
# (unknown sweep: exit 2; unreachable coordinator: exit 1 within the timeout).
. "$(dirname "$0")/lib.sh" "$@"

start_coord
start_worker w1 2
submit_synthetic it-cancel 60 300 0 3
out=$(ctl cancel "$SW" --run 59 --json) || fail "cancel --run"
expect_eq "runs cancelled by --run 59" "$(echo "$out" | jq .cancelled)" 1
wait_done_at_least "$SW" 2 30
out=$(ctl cancel "$SW" --json) || fail "cancel"
n=$(echo "$out" | jq .cancelled)
[ "$n" -gt 40 ] || fail "cancel of the sweep cancelled only $n runs"
wait_state "$SW" 20 cancelled
# Running attempts get CANCEL; their worker stops them and the coordinator counts none live.
none_live() { [ "$(status_field "$SW" '.runs.leased + .runs.running + .runs.queued')" = 0 ]; }
wait_for "no run leased, running or queued after cancel" 10 none_live

ctl status sw-no-such-sweep --json >/dev/null 2>"$T/err.txt"
expect_eq "exit status of status on an unknown sweep" $? 2
[ -s "$T/err.txt" ] || fail "no error message for an unknown sweep"
start=$SECONDS
"$CTL_BIN" --coordinator "tcp://127.0.0.1:$(free_port)" list --timeout 1 >/dev/null 2>&1
expect_eq "exit status with no coordinator" $? 1
[ $((SECONDS - start)) -le 3 ] || fail "unreachable coordinator took $((SECONDS - start)) s"

stop_coord
check_store "$SW"
done=$STORE_DONE dead=$STORE_DEAD canc=$STORE_CANC
expect_eq "done + cancelled" $((done + canc)) 60
expect_eq "dead runs" "$dead" 0
# Every attempt cancelled while leased or running was sent a CANCEL; w1 (still running) stops
# each one. The same attempts, by id: those cancelled in the store are those w1 stopped on a
# CANCEL (a second CANCEL for one, answering a PING that crossed the first, logs it twice).
sent=$(db "SELECT id FROM attempts WHERE state = 'cancelled' ORDER BY id" | tr '\n' ' ')
[ -n "$sent" ] || fail "no attempt was live when the sweep was cancelled"
stopped_w1() {
    grep 'event=attempt_stopped ' "$T/worker-w1.log" | grep 'why=cancelled' |
        sed -n 's/.* attempt=\([0-9]*\) .*/\1/p' | sort -n -u | tr '\n' ' '
}
all_stopped() { [ "$(stopped_w1)" = "$sent" ]; }
wait_for "w1 stopping the cancelled attempts $sent" 10 all_stopped
expect_eq "attempts w1 stopped on CANCEL" "$(stopped_w1)" "$sent"
[ "$canc" -gt 40 ] || fail "only $canc runs cancelled"
note "PASS (done $done, cancelled $canc, live and stopped by w1: attempts $sent)"
