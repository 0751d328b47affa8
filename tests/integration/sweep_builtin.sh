#!/bin/bash
# The whole RegMix loop with the built-in trainer: two byte-level domains tokenized from text on
# this machine, a sweep of 6 tiny proxy models (regmix-train spawned by the worker with flags
# from the spec, progress on a pipe, per-domain validation losses as the result), every run done
# once with finite losses near ln(256) for an untrained byte model.
# usage: sweep_builtin.sh COORDINATOR WORKER REGMIXCTL TRAINER
TRAINER_BIN=$4
. "$(dirname "$0")/lib.sh" "$@"

licence_corpus "$T/data"
cat >"$T/spec.yaml" <<YAML
name: it-builtin
domains:
  - {name: licA, tokens: 2.0e5, train: "$T/data/licA_train.bin", valid: "$T/data/licA_val.bin"}
  - {name: licB, tokens: 1.0e5, train: "$T/data/licB_train.bin", valid: "$T/data/licB_val.bin"}
sampling: {runs: 6, seed: 3}
proxy:
  trainer: builtin
  max_attempts: 2
  backoff_ms: 20
  model: {layers: 1, heads: 2, dim: 16, ffn: 32, context: 16, vocab: 256}
  train: {batch: 4, steps: 6, lr: 1.0e-3, warmup: 1, eval_batches: 1, threads: 1}
regression: {target: mean, model: linear, simulate: 100, top_k: 10, refit_every: 4, cv_folds: 2}
YAML

start_coord
start_worker w1 2 --trainer "$TRAINER_BIN"
SW=$(submit "$T/spec.yaml")
note "sweep $SW"
wait_state "$SW" 90 done failed
ctl results "$SW" --csv >"$T/results.csv" || fail "results --csv"
expect_eq "csv header" "$(head -n 1 "$T/results.csv")" "run,attempt,worker,licA,licB,loss:licA,loss:licB"
expect_eq "csv rows" "$(tail -n +2 "$T/results.csv" | wc -l)" 6
bad=$(tail -n +2 "$T/results.csv" | awk -F, '{ if (!($6 > 3 && $6 < 8 && $7 > 3 && $7 < 8)) n++ }
        END { print n + 0 }')
expect_eq "rows whose losses are not near ln 256 = 5.55" "$bad" 0
ls "$T"/work-w1/*/*/stderr.log >/dev/null 2>&1 || fail "no job directories"
# The objective `mean` is over the domains' validation losses: the refits use them.
end=$((SECONDS + 20))
until [ "$(status_field "$SW" .fits)" -ge 1 ] 2>/dev/null; do
    [ $SECONDS -lt $end ] || fail "no fit of the mean loss: $(grep fit_failed "$T/coordinator.log" | tail -n 1)"
    sleep 0.2
done
note "ok: $(status_field "$SW" .fits) fits of the mean loss"
stop_coord
check_store "$SW"
done=$STORE_DONE dead=$STORE_DEAD canc=$STORE_CANC
expect_eq "done runs" "$done" 6
note "progress rows stored: $(db 'SELECT count(*) FROM progress' 2>/dev/null)"
note "PASS"
