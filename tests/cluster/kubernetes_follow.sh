#!/bin/bash
# The `kubernetes` launcher followed to its end, without a cluster: no Kubernetes can run where
# the tests run, so kubectl is a stand-in on the coordinator's PATH (kubectl-standin.sh, a test
# double of that one external tool) that answers from MPIJob documents in the MPI Operator
# v2beta1 format (tests/fixtures/mpijob/) and validates every MPIJob the coordinator renders and
# applies against the Kubernetes 1.20.2 and MPIJob v2beta1 schemas (a manifest that fails them is
# refused, and the target fails). Everything else is real: coordinator, workers, regmixctl, a
# synthetic sweep that converges.
#   1. no kubectl on the coordinator's PATH: the target fails at once with the reason (it used to
#      stay pending for ever); with kubectl back, `regmixctl launch` launches it again;
#   2. created -> running -> succeeded: pending, running (progress from the launcher's log),
#      done with the losses of the log's result line;
#   3. running -> failed: failed, with the operator's message as the reason;
#   4. `regmixctl cancel --target`: kubectl delete, then NotFound: cancelled;
#   5. the coordinator killed -9 while the MPIJob runs: the restarted one follows the same MPIJob
#      (its namespace/name in the row) to done.
# usage: kubernetes_follow.sh COORDINATOR WORKER REGMIXCTL
. "$(dirname "$0")/../integration/lib.sh" "$@"
SRC=${REGMIX_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
T0=$SECONDS
python3 -c 'import jsonschema, yaml' 2>/dev/null ||
    fail "python3 with jsonschema and yaml is required (scripts/setup.sh installs python3-jsonschema python3-yaml)"

export KUBECTL_STANDIN_DIR=$T/k8s KUBECTL_STANDIN_FIXTURES=$SRC/tests/fixtures/mpijob
export KUBECTL_STANDIN_VALIDATE=$SRC/deploy/kubernetes/schemas/validate.py
mkdir -p "$T/k8s" "$T/kbin" "$T/nokube"
cp "$(dirname "$0")/kubectl-standin.sh" "$T/kbin/kubectl"
chmod +x "$T/kbin/kubectl"
# The coordinator with the stand-in first on its PATH, and one with no kubectl at all.
REAL_COORD=$(readlink -f "$COORD_BIN")
printf '#!/bin/sh\nPATH=%s:$PATH exec %s "$@"\n' "$T/kbin" "$REAL_COORD" >"$T/coord-kube"
printf '#!/bin/sh\nPATH=%s exec %s "$@"\n' "$T/nokube" "$REAL_COORD" >"$T/coord-nokube"
chmod +x "$T/coord-kube" "$T/coord-nokube"

# k8s_spec FILE NAME LAUNCH: a synthetic sweep that converges in a few seconds; its target runs
# on Kubernetes in namespace regmix-it.
k8s_spec() {
    cat >"$1" <<YAML
name: $2
domains:
  - {name: web, tokens: 6.0e9, train: "/data/corpus/web/train_*.bin", valid: "/data/corpus/web/val_*.bin"}
  - {name: code, tokens: 3.0e9, train: "/data/corpus/code/train_*.bin", valid: "/data/corpus/code/val_*.bin"}
sampling: {runs: 48, seed: 5}
proxy:
  trainer: synthetic
  synthetic: {optimum: {web: 0.6, code: 0.4}, noise: 0.001, delay_ms: 5}
regression:
  target: mean
  model: quadratic
  simulate: 2000
  top_k: 50
  refit_every: 8
  convergence: {min_runs: 16, min_spearman: 0.5, stable_refits: 2, l1_tol: 0.1}
  on_converge: cancel
target:
  launch: $3
  launcher: kubernetes
  image: registry.example.org/regmix:0.1.0
  namespace: regmix-it
  ranks: 2
YAML
}

# scenario SWEEP DOCS...: the stand-in's answers for the sweep's MPIJob, and its launcher's log
# (a step line per document, then the result).
scenario() {
    local name=regmix-$1-target i=0
    shift
    echo "$*" >"$T/k8s/$name.scenario"
    : >"$T/k8s/$name.log"
    for _ in "$@"; do
        i=$((i + 1))
        echo "{\"event\":\"step\",\"step\":$((i * 10)),\"loss\":$((5 - i)).25}" >>"$T/k8s/$name.log"
    done
    echo "{\"event\":\"result\",\"losses\":{\"web\":2.5,\"code\":3.5}}" >>"$T/k8s/$name.log"
}
converged_sweep() {
    local sw
    k8s_spec "$T/$1.yaml" "$1" manual
    sw=$(submit "$T/$1.yaml")
    wait_state "$sw" 60 converged done
    echo "$sw"
}

# ---- 1: no kubectl -------------------------------------------------------------------------
COORD_BIN=$T/coord-nokube
start_coord --target-poll-ms 100
start_worker w1 4
SW1=$(converged_sweep k1)
# running for eight polls: one poll (100 ms) is shorter than a regmixctl call on a busy machine
scenario "$SW1" created running running running running running running running running succeeded
out=$(ctl launch "$SW1" 2>&1)
note "launch without kubectl: $out"
wait_target "$SW1" 10 failed
detail=$(target_field "$SW1" .detail)
case $detail in
*"kubectl not found on this host: rendered $T/targets/$SW1/target/target-mpijob.yaml"*) ;;
*) fail "failure reason: '$detail'" ;;
esac
note "ok: no kubectl: failed: $detail"
kill9_coord
COORD_BIN=$T/coord-kube
start_coord --target-poll-ms 100
ctl launch "$SW1" >/dev/null || fail "regmixctl launch again, with kubectl"

# ---- 2: created -> running -> succeeded ----------------------------------------------------
end=$((SECONDS + 10))
until [ -n "$(target_field "$SW1" .job)" ]; do
    [ $SECONDS -lt $end ] || fail "no handle after kubectl apply: $(ctl target "$SW1")"
    sleep 0.05
done
expect_eq "handle" "$(target_field "$SW1" .job)" "mpijob:regmix-it/regmix-$SW1-target"
wait_target "$SW1" 20 running
note "ok: running: $(target_field "$SW1" .detail)"
wait_target "$SW1" 20 done failed cancelled
expect_eq "state after Succeeded" "$(target_field "$SW1" .state)" done
expect_eq "losses from the launcher's log" "$(target_field "$SW1" '.losses | [.web, .code] | map(tostring) | join(" ")')" "2.5 3.5"
expect_eq "last step from the log" "$(target_field "$SW1" .step)" 100
grep -q "^apply -f $T/targets/$SW1/target/target-mpijob.yaml" "$T/k8s/calls" || fail "no kubectl apply"
grep -q "^get mpijob regmix-$SW1-target -n regmix-it -o json" "$T/k8s/calls" || fail "no kubectl get"
grep -q "^logs -n regmix-it job/regmix-$SW1-target-launcher" "$T/k8s/calls" || fail "no kubectl logs"
python3 "$KUBECTL_STANDIN_VALIDATE" "$T/k8s/regmix-$SW1-target.applied" >&2 ||
    fail "the rendered MPIJob is not valid"
note "ok: done: $(ctl target "$SW1" --json)"

# ---- 3: failed ------------------------------------------------------------------------------
SW2=$(converged_sweep k2)
scenario "$SW2" created running failed
ctl launch "$SW2" >/dev/null || fail "regmixctl launch $SW2"
wait_target "$SW2" 20 failed done cancelled
expect_eq "state after Failed" "$(target_field "$SW2" .state)" failed
expect_eq "reason" "$(target_field "$SW2" .detail)" \
    "MPIJob failed (MPIJobFailed): MPIJob regmix-it/regmix-$SW2-target has failed because it has reached the specified backoff limit"

# ---- 4: cancel --------------------------------------------------------------------------------
SW3=$(converged_sweep k3)
scenario "$SW3" created running
ctl launch "$SW3" >/dev/null || fail "regmixctl launch $SW3"
wait_target "$SW3" 20 running
ctl cancel "$SW3" --target >/dev/null || fail "regmixctl cancel --target"
wait_target "$SW3" 20 cancelled
grep -q "^delete mpijob regmix-$SW3-target -n regmix-it" "$T/k8s/calls" || fail "no kubectl delete"
note "ok: cancelled: $(target_field "$SW3" .detail)"

# ---- 5: restart while it runs -------------------------------------------------------------------
SW4=$(converged_sweep k4)
scenario "$SW4" created running running running running running running running running running \
    running running running running running running running running running running succeeded
ctl launch "$SW4" >/dev/null || fail "regmixctl launch $SW4"
wait_target "$SW4" 20 running
kill9_coord
calls=$(wc -l <"$T/k8s/calls")
start_coord --target-poll-ms 100
grep -q "event=target_adopted.*handle=mpijob:regmix-it/regmix-$SW4-target" "$T/coordinator.log" ||
    fail "no target_adopted line"
wait_target "$SW4" 30 done failed cancelled
expect_eq "after the restart" "$(target_field "$SW4" .state)" done
expect_eq "applies of sweep 4's MPIJob" "$(grep -c "^apply -f $T/targets/$SW4/" "$T/k8s/calls")" 1
[ "$(wc -l <"$T/k8s/calls")" -gt "$calls" ] || fail "the restarted coordinator did not poll"

stop_coord
note "PASS in $((SECONDS - T0)) s"
