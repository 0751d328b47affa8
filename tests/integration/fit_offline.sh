#!/bin/bash
# The daemon's refits and `regmixctl fit` are one pipeline (common/fitpipe.h): for a real sweep of
# each model, `regmixctl results --csv` refitted offline with `regmixctl fit --results --spec`
# (the sweep's model, target, seed, cv_folds, simulate, top_k and prior) proposes exactly the
# mixture of the sweep's last fit, which saw the same results. Synthetic runs (noisy bowl), two
# workers, refits every 12 results.
. "$(dirname "$0")/lib.sh" "$@"

MODELS="gbdt linear ridge quadratic"
spec() { # FILE NAME MODEL
    cat >"$1" <<YAML
name: $2
domains:
  - {name: web, tokens: 5.0e9}
  - {name: code, tokens: 2.0e9}
  - {name: books, tokens: 1.0e9}
  - {name: wiki, tokens: 1.0e9}
sampling: {runs: 36, seed: 17}
proxy:
  trainer: synthetic
  max_attempts: 3
  synthetic: {optimum: {web: 0.4, code: 0.3, books: 0.2, wiki: 0.1}, noise: 0.002}
regression:
  target: mean
  model: $3
  seed: 5
  simulate: 30000
  top_k: 25
  refit_every: 12
  cv_folds: 3
  on_converge: keep
  convergence: {min_runs: 1000}
YAML
}

start_coord
start_worker w1 4
start_worker w2 4
declare -A SW
for m in $MODELS; do
    spec "$T/$m.yaml" "offline-$m" "$m"
    SW[$m]=$(submit "$T/$m.yaml")
    [ -n "${SW[$m]}" ] || fail "no sweep id for $m"
done
for m in $MODELS; do
    wait_state "${SW[$m]}" 60 done
    # The sweep's last result calls for a last refit; poll until it is stored.
    end=$((SECONDS + 30))
    while [ $SECONDS -lt $end ]; do
        n=$(ctl fits "${SW[$m]}" --json | jq '[.fits[] | select(.runs_used == 36)] | length')
        [ "$n" -ge 1 ] && break
        sleep 0.1
    done
    [ "$n" -ge 1 ] || fail "$m: no fit on all 36 results within 30 s"
    ctl fits "${SW[$m]}" --json | jq '.fits[-1]' >"$T/$m.daemon.json"
    ctl results "${SW[$m]}" --csv >"$T/$m.results.csv" || fail "$m: results --csv"
    "$CTL_BIN" fit --results "$T/$m.results.csv" --spec "$T/$m.yaml" --json >"$T/$m.offline.json" \
        2>"$T/$m.offline.err" || fail "$m: regmixctl fit: $(cat "$T/$m.offline.err")"
    expect_eq "$m: model" "$(jq -r .model "$T/$m.offline.json")" "$(jq -r .model "$T/$m.daemon.json")"
    expect_eq "$m: runs" "$(jq -r .train_runs "$T/$m.offline.json")" 36
    # The same proposal, to the 12 significant digits `fits --json` prints.
    diff=$(jq -n --slurpfile a "$T/$m.offline.json" --slurpfile b "$T/$m.daemon.json" \
        '[$b[0].proposal | to_entries[] | (.value - $a[0].proposal.weights[.key]) | fabs] | max')
    note "$m: daemon $(jq -c .proposal "$T/$m.daemon.json")"
    note "$m: offline $(jq -c .proposal.weights "$T/$m.offline.json") (max diff $diff)"
    jq -e -n "$diff < 2e-12" >/dev/null || fail "$m: offline proposal differs by $diff"
    # The out-of-fold Spearman, too.
    expect_eq "$m: cv spearman" "$(jq -r '.cv.spearman | . * 1e9 | round' "$T/$m.offline.json")" \
        "$(jq -r '.cv.spearman | . * 1e9 | round' "$T/$m.daemon.json")"
done
stop_coord
note "PASS"
