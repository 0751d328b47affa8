#!/bin/bash
# The system on a real Slurm cluster (tests/cluster/slurm.sh brings up a single node from
# Debian's slurmctld, slurmd and munge, in this test's own folder):
#   1. the workers are the job array of deploy/slurm/workers.sbatch, submitted as a user would
#      (the script unchanged; --array and the REGMIX_* variables on the command line);
#   2. a builtin sweep (regmix-train, tiny proxies) on a small real corpus (texts of this machine
#      tokenized by regmix-train) runs on them to convergence;
#   3. the target (launcher: slurm) is submitted by the coordinator with sbatch, its two ranks
#      start inside the allocation (srun), and the job runs to its end;
#   4. sacct shows the array tasks and the target's job.
# usage: cluster_slurm.sh COORDINATOR WORKER REGMIXCTL TRAINER
TRAINER_BIN=$4
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/slurm.sh"
trap 'slurm_down; cleanup' EXIT
SRC=${REGMIX_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
T0=$SECONDS

slurm_up

# The programs as an installed bindir (workers.sbatch runs $REGMIX_BINDIR/regmix-worker).
mkdir -p "$T/bin" "$T/data"
ln -s "$(readlink -f "$WORKER_BIN")" "$T/bin/regmix-worker"
ln -s "$(readlink -f "$TRAINER_BIN")" "$T/bin/regmix-train"

# Distinct texts only: several licence files are links to others (GPL -> GPL-3), and a text in
# both domains would give them the same validation document.
mapfile -t docs < <(for f in /usr/share/common-licenses/*; do readlink -f "$f"; done | sort -u)
[ ${#docs[@]} -ge 4 ] || fail "need at least 4 texts in /usr/share/common-licenses (package base-files)"
half=$((${#docs[@]} / 2))
"$TRAINER_BIN" tokenize --out "$T/data" --name licA "${docs[@]:0:$half}" >/dev/null ||
    fail "tokenize licA"
"$TRAINER_BIN" tokenize --out "$T/data" --name licB "${docs[@]:$half}" >/dev/null ||
    fail "tokenize licB"

start_coord --trainer "$T/bin/regmix-train"

# ---- 1: workers as the job array -------------------------------------------------------------
out=$(cd "$T" && REGMIX_WORKER_ENDPOINT=$WEP REGMIX_BINDIR=$T/bin REGMIX_WORKDIR=$T/slurm-work \
    REGMIX_WORKER_OPTS="--kill-grace-ms 500" \
    sbatch --array=0-1 "$SRC/deploy/slurm/workers.sbatch") || fail "sbatch workers.sbatch: $out"
ARRAY=$(echo "$out" | awk '/Submitted batch job/ { print $4 }')
[ -n "$ARRAY" ] || fail "no job id from sbatch: $out"
note "workers: array job $ARRAY"
end=$((SECONDS + 30))
until [ "$(ctl workers --json 2>/dev/null | jq '[.workers[]? | select(.state == "connected")] | length')" = 2 ]; do
    [ $SECONDS -lt $end ] || { squeue -t all >&2; cat "$T"/regmix-worker-*.out >&2; fail "the two array tasks did not connect as workers"; }
    sleep 0.2
done
note "ok: both array tasks connected: $(ctl workers --json | jq -c '[.workers[].worker]')"

# ---- 2: a builtin sweep to convergence ------------------------------------------------------
# Tiny proxies (1 layer, dim 16, 150 steps, 0.1 s each) on two byte-level domains, whose mean
# validation loss is U-shaped in the mixture; quadratic refits every 4 results; converged once
# two refits in a row agree within L1 0.2 and the cross-validated Spearman reaches 0.5.
cat >"$T/spec.yaml" <<YAML
name: cluster-slurm
domains:
  - {name: licA, tokens: 2.0e5, train: "$T/data/licA_train.bin", valid: "$T/data/licA_val.bin"}
  - {name: licB, tokens: 1.0e5, train: "$T/data/licB_train.bin", valid: "$T/data/licB_val.bin"}
sampling: {runs: 32, seed: 3}
proxy:
  trainer: builtin
  max_attempts: 2
  backoff_ms: 20
  model: {layers: 1, heads: 2, dim: 16, ffn: 32, context: 16, vocab: 256}
  train: {batch: 8, steps: 150, lr: 1.0e-2, warmup: 5, eval_batches: 8, threads: 1}
regression:
  target: mean
  model: quadratic
  simulate: 200
  top_k: 20
  refit_every: 4
  seed: 3
  convergence: {min_runs: 12, min_spearman: 0.5, stable_refits: 2, l1_tol: 0.2}
  on_converge: cancel
target:
  launch: auto
  launcher: slurm
  ranks: 2
  model: {layers: 1, heads: 2, dim: 16, ffn: 32, context: 16, vocab: 256}
  train: {batch: 8, steps: 40, lr: 3.0e-3, warmup: 2, eval_batches: 2, threads: 1}
YAML
SW=$(submit "$T/spec.yaml")
[ -n "$SW" ] || fail "no sweep id"
note "sweep $SW"
wait_state "$SW" 90 converged done cancelled
expect_eq "converged" "$(status_field "$SW" .converged)" true
note "status: $(ctl status "$SW" --json | jq -c '{state, runs, fits, converged}')"

# ---- 3: the target, launcher slurm -----------------------------------------------------------
end=$((SECONDS + 30))
until [ "$(ctl target "$SW" --json 2>/dev/null | jq -r '.targets[0].state')" = submitted ]; do
    [ $SECONDS -lt $end ] || fail "target not submitted: $(ctl target "$SW" --json)"
    sleep 0.2
done
TJOB=$(squeue -h -t all -n "regmix-$SW-target" -o %i | head -n 1)
[ -n "$TJOB" ] || fail "no Slurm job named regmix-$SW-target"
note "target: Slurm job $TJOB"
slurm_wait_job "$TJOB" 60 COMPLETED FAILED CANCELLED
expect_eq "target job state" "$(slurm_job_state "$TJOB")" COMPLETED
WD=$T/state-targets
OUTF=$T/targets/$SW/target/slurm-$TJOB.out
[ -f "$OUTF" ] || fail "no job output $OUTF"
# Two ranks in one MPI job: rank 0 alone reports, so exactly one result line.
expect_eq "result lines in the job's output" "$(grep -c '"event":"result"' "$OUTF")" 1
note "target result: $(grep '"event":"result"' "$OUTF")"

# ---- 4: what sacct saw -----------------------------------------------------------------------
scancel "$ARRAY"
slurm_wait_job "${ARRAY}_0" 30 CANCELLED COMPLETED
slurm_wait_job "${ARRAY}_1" 30 CANCELLED COMPLETED
end=$((SECONDS + 20))
until [ "$(slurm_sacct | wc -l)" -ge 3 ]; do
    [ $SECONDS -lt $end ] || { slurm_sacct >&2; fail "sacct does not show the three jobs"; }
    sleep 0.2
done
note "sacct:"
slurm_sacct | sed 's/^/#   /' >&2
expect_eq "array tasks in sacct" "$(slurm_sacct | awk -F'|' '$2 == "regmix-worker"' | wc -l)" 2
expect_eq "target job in sacct" "$(slurm_sacct -j "$TJOB" | awk -F'|' '{ print $2, $3, $4 }')" \
    "regmix-$SW-target COMPLETED 0:0"
note "PASS in $((SECONDS - T0)) s"
