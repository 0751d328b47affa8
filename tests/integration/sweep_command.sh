#!/bin/bash
# A `command` sweep: a small shell script reads REGMIX_WEIGHTS, writes progress on the progress
# fd and the result file; every loss in `results --csv` equals the function of that run's
# weights the script computed, so weights, placeholders and results travel end to end.
. "$(dirname "$0")/lib.sh" "$@"

cat >"$T/job.sh" <<'SH'
#!/bin/sh
# usage: job.sh RESULT SEED RUN: loss = 2*web + code + books/4 from REGMIX_WEIGHTS
set -e
[ "$1" = "$REGMIX_RESULT" ] || { echo "result placeholder mismatch" >&2; exit 3; }
[ "$2" = "$REGMIX_SEED" ] || { echo "seed placeholder mismatch" >&2; exit 3; }
echo '{"step": 1, "loss": 9.0}' >&"$REGMIX_PROGRESS_FD"
loss=$(echo "$REGMIX_WEIGHTS" | jq '2 * .web + .code + .books / 4')
printf '{"losses": {"web": %s, "code": 1.0}}\n' "$loss" >"$1"
SH
chmod +x "$T/job.sh"
cat >"$T/spec.yaml" <<YAML
name: it-command
domains:
  - {name: web, tokens: 5.0e9}
  - {name: code, tokens: 2.0e9}
  - {name: books, tokens: 1.0e9}
sampling: {runs: 12, seed: 5}
proxy:
  trainer: command
  command: ["$T/job.sh", "{result}", "{seed}", "{run}"]
  max_attempts: 2
  backoff_ms: 20
regression: {target: web, model: linear, simulate: 1000, top_k: 10, refit_every: 1000000}
YAML

start_coord
start_worker w1 3 --allow-commands
SW=$(submit "$T/spec.yaml")
note "sweep $SW"
wait_state "$SW" 60 done
ctl results "$SW" --csv >"$T/results.csv" || fail "results --csv"
expect_eq "csv header" "$(head -n 1 "$T/results.csv")" "run,attempt,worker,web,code,books,loss:code,loss:web"
expect_eq "csv rows" "$(tail -n +2 "$T/results.csv" | wc -l)" 12
bad=$(tail -n +2 "$T/results.csv" | awk -F, '{ l = 2*$4 + $5 + $6/4; d = $8 - l; if (d < 0) d = -d;
        if (d > 1e-6 || $7 != 1) n++ } END { print n + 0 }')
expect_eq "rows whose loss is not 2*web+code+books/4" "$bad" 0
ls "$T"/work-w1/*/*/stdout.log >/dev/null 2>&1 || fail "no job directories with logs"
stop_coord
check_store "$SW"
done=$STORE_DONE dead=$STORE_DEAD canc=$STORE_CANC
expect_eq "done runs" "$done" 12
note "PASS"
