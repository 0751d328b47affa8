#!/bin/bash
# A synthetic sweep of 64 runs through 2 workers x 4 slots completes; `results --csv` has one
# row per run, each run exactly once, with the right columns and losses; the store agrees.
. "$(dirname "$0")/lib.sh" "$@"

start_coord
start_worker w1 4
start_worker w2 4
submit_synthetic it-synthetic 64 10 0 3
[ -n "$SW" ] || fail "no sweep id"
# watch follows the live sweep and ends by itself when it is done (JSON lines: one per event).
timeout 60 "$CTL_BIN" --coordinator "$CEP" watch "$SW" --json >"$T/watch.jsonl" 2>"$T/watch.err" &
WATCH_PID=$!
expect_eq "runs in the sweep" "$(status_field "$SW" .runs.total)" 64
wait_state "$SW" 60 done
wait "$WATCH_PID"
expect_eq "exit status of watch" $? 0
jq -e -s 'length >= 1 and all(.[]; has("kind"))' "$T/watch.jsonl" >/dev/null ||
    fail "watch --json printed no valid event lines"
expect_eq "state in watch's last event" "$(tail -n 1 "$T/watch.jsonl" | jq -r .sweep.state)" done

ctl results "$SW" --csv >"$T/results.csv" || fail "results --csv failed"
# A synthetic job reports its loss as `synthetic` and as each domain's loss (worker/job.h).
expect_eq "csv header" "$(head -n 1 "$T/results.csv")" \
    "run,attempt,worker,web,code,books,loss:books,loss:code,loss:synthetic,loss:web"
expect_eq "csv rows" "$(tail -n +2 "$T/results.csv" | wc -l)" 64
expect_eq "distinct runs in csv" "$(tail -n +2 "$T/results.csv" | cut -d, -f1 | sort -u | wc -l)" 64
expect_eq "run indices 0..63" "$(tail -n +2 "$T/results.csv" | cut -d, -f1 | sort -n | tr '\n' ' ')" \
    "$(seq 0 63 | tr '\n' ' ')"
# Each loss is sum (w - optimum)^2 + N(0, 0.001^2): within 0.01 of the closed form.
bad=$(tail -n +2 "$T/results.csv" | awk -F, '{ l = ($4-0.5)^2 + ($5-0.3)^2 + ($6-0.2)^2;
        d = $9 - l; if (d < 0) d = -d; if ($7 != $9 || $8 != $9 || $10 != $9) n++; if (d > 0.01 || $4 + $5 + $6 < 0.999 || $4 + $5 + $6 > 1.001) n++ }
        END { print n + 0 }')
expect_eq "rows whose loss or weights are off" "$bad" 0
expect_eq "workers used" "$(tail -n +2 "$T/results.csv" | cut -d, -f3 | sort -u | wc -l)" 2

ctl results "$SW" --json | jq -e '.results | length == 64' >/dev/null || fail "results --json"
ctl workers --json | jq -e '[.workers[] | select(.slots == 4)] | length == 2' >/dev/null ||
    fail "workers --json does not list both workers with 4 slots"
ctl list --json | jq -e --arg s "$SW" '[.sweeps[] | select(.sweep == $s and .state == "done")] | length == 1' \
    >/dev/null || fail "list --json does not show the sweep done"
# watch of a finished sweep ends at once (plain lines when not a terminal).
timeout 20 "$CTL_BIN" --coordinator "$CEP" watch "$SW" >"$T/watch.txt" || fail "watch of a done sweep"

stop_coord
check_store "$SW"
done=$STORE_DONE dead=$STORE_DEAD canc=$STORE_CANC
expect_eq "done runs" "$done" 64
note "PASS"
