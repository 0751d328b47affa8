#!/bin/bash
# The life cycle of a target the coordinator runs itself (launcher: command; mpirun is the same
# runner), across a coordinator that dies:
#   1. launched: running, with the handle pid:PID@START (the process and its start time);
#   2. the coordinator killed -9 while it runs: the process goes on (its own session, progress in
#      a file, not a pipe to the dead coordinator); the restarted coordinator follows the same
#      PID, sees it end and takes the result line it wrote: done with its losses;
#   3. the same with a target that exits without a result while no coordinator runs: failed,
#      with the reason;
#   4. `regmixctl cancel --target` of a running one: SIGTERM, cancelled; `regmixctl launch`
#      starts a cancelled or failed one again.
. "$(dirname "$0")/lib.sh" "$@"

# local_spec FILE NAME COMMAND: a synthetic sweep that converges in a few seconds; its target is
# COMMAND (sh -c), launched by hand.
local_spec() {
    cat >"$1" <<YAML
name: $2
domains:
  - {name: web, tokens: 6.0e9, train: "data/web_*.bin"}
  - {name: code, tokens: 3.0e9, train: "data/code_*.bin"}
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
  launch: manual
  launcher: command
  command:
    - sh
    - -c
    - |
      $3
YAML
}
# launched SPEC NAME COMMAND: a converged sweep whose target was launched; prints its id.
launched() {
    local sw
    local_spec "$T/$1.yaml" "$1" "$2"
    sw=$(submit "$T/$1.yaml")
    wait_state "$sw" 60 converged done
    ctl launch "$sw" >/dev/null || fail "regmixctl launch $sw"
    echo "$sw"
}

start_coord --allow-commands
start_worker w1 4

# ---- 1 + 2: done across a kill -9 -------------------------------------------------------------
# The command waits for a go file, so the coordinator is surely dead while it runs.
SW=$(launched a "echo '{\"event\":\"step\",\"step\":1,\"loss\":4.5}' >&{progress_fd}; while [ ! -f $T/go-a ]; do sleep 0.05; done; echo '{\"event\":\"result\",\"losses\":{\"web\":2.25,\"code\":3.75}}' >&{progress_fd}")
wait_target "$SW" 10 running
H=$(target_field "$SW" .job)
case $H in pid:[0-9]*@[0-9]*) ;; *) fail "handle '$H', want pid:PID@START" ;; esac
PID=${H#pid:}
PID=${PID%@*}
kill9_coord
kill -0 "$PID" 2>/dev/null || fail "the target process died with the coordinator"
note "coordinator killed -9; target process $PID runs on"
start_coord --allow-commands
grep -q "event=target_adopted.*handle=$H" "$T/coordinator.log" || fail "no target_adopted line for $H"
expect_eq "after the restart" "$(target_field "$SW" .state)" running
touch "$T/go-a"
wait_target "$SW" 20 done failed cancelled
expect_eq "state" "$(target_field "$SW" .state)" done
expect_eq "losses" "$(target_field "$SW" '.losses | [.web, .code] | map(tostring) | join(" ")')" "2.25 3.75"
expect_eq "handle kept" "$(target_field "$SW" .job)" "$H"
note "ok: done after the restart: $(target_field "$SW" .detail)"

# ---- 3: it ends without a result while no coordinator runs --------------------------------------
SW2=$(launched b "while [ ! -f $T/go-b ]; do sleep 0.05; done; exit 3")
wait_target "$SW2" 10 running
P2=$(target_field "$SW2" .job)
P2=${P2#pid:}
P2=${P2%@*}
kill9_coord
touch "$T/go-b"
end=$((SECONDS + 10))
while kill -0 "$P2" 2>/dev/null; do # it ends while no coordinator runs
    [ $SECONDS -lt $end ] || fail "target process $P2 did not end"
    sleep 0.05
done
start_coord --allow-commands
wait_target "$SW2" 20 failed done
expect_eq "reason" "$(target_field "$SW2" .detail)" \
    "its process ended without a result line (followed by pid after a coordinator restart: its exit status is not known)"

# ---- 4: cancel, then launch again ---------------------------------------------------------------
SW3=$(launched c "while [ ! -f $T/go-c ]; do sleep 0.05; done; echo '{\"event\":\"result\",\"losses\":{\"web\":1,\"code\":2}}' >&{progress_fd}")
wait_target "$SW3" 10 running
ctl cancel "$SW3" --target >/dev/null || fail "regmixctl cancel --target"
wait_target "$SW3" 10 cancelled
note "ok: cancelled: $(target_field "$SW3" .detail)"
touch "$T/go-c"
ctl launch "$SW3" >/dev/null || fail "regmixctl launch after cancel"
wait_target "$SW3" 10 done
ctl launch "$SW2" >/dev/null || fail "regmixctl launch after failed"
wait_target "$SW2" 10 running done failed
stop_coord
note "PASS"
