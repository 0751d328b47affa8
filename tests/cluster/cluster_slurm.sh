#!/bin/bash
# The system on a real Slurm cluster (tests/cluster/slurm.sh brings up a single node from
# Debian's slurmctld, slurmd and munge, in this test's own folder):
#   1. the workers are the job array of deploy/slurm/workers.sbatch, submitted as a user would
#      (the script unchanged; --array and the REGMIX_* variables on the command line);
#   2. a builtin sweep (regmix-train, tiny proxies) on a small real corpus (texts of this machine
#      tokenized by regmix-train) runs on them to convergence;
#   3. the target (launcher: slurm) is submitted by the coordinator (sbatch --parsable), its two
#      ranks start inside the allocation (srun --mpi=pmix), the coordinator follows the job with
#      scontrol/sacct through pending and running to done, and the losses of the job's result
#      line are the target row's (regmixctl target --json);
#   4. `regmixctl cancel SWEEP --target` reaches scancel: the job and the row end cancelled;
#      launched again with a trainer path the node lacks, the job fails and the row says why;
#   5. the coordinator killed -9 while a target runs: the restarted one follows the same Slurm
#      job (its id in the row) to its end and takes its losses; no second job is submitted;
#   6. sacct (jobcomp records, no slurmdbd) shows the array tasks and the target jobs.
# usage: cluster_slurm.sh COORDINATOR WORKER REGMIXCTL TRAINER
TRAINER_BIN=$4
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/slurm.sh"
trap 'slurm_down; cleanup' EXIT
SRC=${REGMIX_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
T0=$SECONDS

slurm_up

# The programs as an installed bindir (workers.sbatch runs $REGMIX_BINDIR/regmix-worker).
mkdir -p "$T/bin"
ln -s "$(readlink -f "$WORKER_BIN")" "$T/bin/regmix-worker"
ln -s "$(readlink -f "$TRAINER_BIN")" "$T/bin/regmix-train"
licence_corpus "$T/data"

start_coord --trainer "$T/bin/regmix-train" --target-poll-ms 200

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

# ---- 3: the target, launcher slurm, followed to its end -------------------------------------
wait_target_diag() { squeue -t all; }
wait_target "$SW" 30 running done
TJOB=$(target_field "$SW" .job)
case $TJOB in slurm:[0-9]*) ;; *) fail "target handle '$TJOB', want slurm:JOBID" ;; esac
TJOB=${TJOB#slurm:}
expect_eq "the Slurm job's name" "$(squeue -h -t all -j "$TJOB" -o %j)" "regmix-$SW-target"
note "target: Slurm job $TJOB, $(target_field "$SW" .detail)"
wait_target "$SW" 60 done failed cancelled
expect_eq "target state" "$(target_field "$SW" .state)" done
expect_eq "target job state" "$(slurm_job_state "$TJOB")" COMPLETED
OUTF=$T/targets/$SW/target/slurm-$TJOB.out
[ -f "$OUTF" ] || fail "no job output $OUTF"
# Two ranks in one MPI job: rank 0 alone reports, so exactly one result line; its losses are the
# target row's.
expect_eq "result lines in the job's output" "$(grep -c '"event":"result"' "$OUTF")" 1
want=$(grep '"event":"result"' "$OUTF" | jq -c '.losses | to_entries | map(.value) | sort')
got=$(ctl target "$SW" --json | jq -c '.targets[] | select(.role == "target") | .losses | to_entries | map(.value) | sort')
expect_eq "target losses = the job's result line" "$got" "$want"
note "regmixctl target --json: $(ctl target "$SW" --json)"

# Sweeps 2 and 3 launch by hand a longer target (3000 steps, about a minute).
sed -e 's/^  launch: auto/  launch: manual/' -e 's/name: cluster-slurm/name: cluster-slurm-b/' \
    -e '/^  train: {batch: 8, steps: 40/s/steps: 40/steps: 3000/' "$T/spec.yaml" >"$T/long.yaml"
long_sweep() {
    local sw
    sw=$(submit "$T/long.yaml")
    wait_state "$sw" 90 converged done cancelled
    ctl launch "$sw" >/dev/null || fail "regmixctl launch $sw"
    echo "$sw"
}

# ---- 4: regmixctl cancel reaches scancel ----------------------------------------------------
SW2=$(long_sweep)
wait_target "$SW2" 30 running
J2=$(target_field "$SW2" .job)
J2=${J2#slurm:}
ctl cancel "$SW2" --target >/dev/null || fail "regmixctl cancel --target"
wait_target "$SW2" 30 cancelled
slurm_wait_job "$J2" 30 CANCELLED
note "ok: cancel: Slurm job $J2 CANCELLED, target $(target_field "$SW2" .state): $(target_field "$SW2" .detail)"

# ---- 4b: a job that fails: Slurm's state and exit code are the reason -------------------------
# The cancelled target launched again by a coordinator whose trainer path does not exist on the
# node: srun cannot start the ranks, the job FAILS.
stop_coord
start_coord --trainer /nonexistent/regmix-train --target-poll-ms 200
ctl launch "$SW2" >/dev/null || fail "regmixctl launch $SW2 again"
wait_target "$SW2" 30 failed done cancelled
J2b=$(target_field "$SW2" .job)
[ "$J2b" != "slurm:$J2" ] || fail "the relaunch should be a new job"
case $(target_field "$SW2" .detail) in
"Slurm job FAILED, exit code "*) ;;
*) fail "failure reason: '$(target_field "$SW2" .detail)'" ;;
esac
note "ok: failed: $(ctl target "$SW2" | head -n 1)"
stop_coord
start_coord --trainer "$T/bin/regmix-train" --target-poll-ms 200

# ---- 5: a coordinator restart while the target runs follows the same job ---------------------
sed -e '/^  train: {batch: 8, steps: 3000/s/steps: 3000/steps: 400/' -e 's/cluster-slurm-b/cluster-slurm-c/' \
    "$T/long.yaml" >"$T/mid.yaml"
SW3=$(submit "$T/mid.yaml")
wait_state "$SW3" 90 converged done cancelled
ctl launch "$SW3" >/dev/null || fail "regmixctl launch $SW3"
wait_target "$SW3" 30 running
J3=$(target_field "$SW3" .job)
kill9_coord
note "coordinator killed -9 while $J3 runs"
[ "$(slurm_job_state "${J3#slurm:}")" = RUNNING ] || fail "job $J3 should still run"
start_coord --trainer "$T/bin/regmix-train" --target-poll-ms 200
grep -q "event=target_adopted.*handle=$J3" "$T/coordinator.log" || fail "no target_adopted line for $J3"
wait_target "$SW3" 60 done failed cancelled
expect_eq "target after the restart" "$(target_field "$SW3" .state) $(target_field "$SW3" .job)" "done $J3"
expect_eq "its last step" "$(target_field "$SW3" .step)" 400
expect_eq "its losses" "$(target_field "$SW3" '.losses | length')" 2
expect_eq "Slurm jobs of sweep 3's target" "$(squeue -h -t all -n "regmix-$SW3-target" -o %i | wc -l)" 1
note "ok: restart: $J3 followed by the new coordinator to its end: $(target_field "$SW3" .losses | jq -c .)"

# ---- 6: what sacct saw -----------------------------------------------------------------------
scancel "$ARRAY"
slurm_wait_job "${ARRAY}_0" 30 CANCELLED COMPLETED
slurm_wait_job "${ARRAY}_1" 30 CANCELLED COMPLETED
end=$((SECONDS + 20))
until [ "$(slurm_sacct | wc -l)" -ge 6 ]; do
    [ $SECONDS -lt $end ] || { slurm_sacct >&2; fail "sacct does not show the six jobs"; }
    sleep 0.2
done
note "sacct:"
slurm_sacct | sed 's/^/#   /' >&2
expect_eq "array tasks in sacct" "$(slurm_sacct | awk -F'|' '$2 == "regmix-worker"' | wc -l)" 2
expect_eq "target job in sacct" "$(slurm_sacct -j "$TJOB" | awk -F'|' '{ print $2, $3, $4 }')" \
    "regmix-$SW-target COMPLETED 0:0"
expect_eq "cancelled target in sacct" "$(slurm_sacct -j "$J2" | awk -F'|' '{ print $3 }')" CANCELLED
expect_eq "failed target in sacct" "$(slurm_sacct -j "${J2b#slurm:}" | awk -F'|' '{ print $3 }')" FAILED
expect_eq "restarted target in sacct" "$(slurm_sacct -j "${J3#slurm:}" | awk -F'|' '{ print $3 }')" COMPLETED
note "PASS in $((SECONDS - T0)) s"
