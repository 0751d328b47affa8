#!/usr/bin/env bash
# The one-command demo of regmix (README's main command): the whole RegMix loop on a real corpus,
# on this machine: about 2 minutes on two quiet cores, 5-7 when they are busy.
#
#   1. installs what is missing and builds (scripts/setup.sh),
#   2. builds a six-domain byte-level corpus from Debian packages (scripts/build-corpus.py, cached),
#   3. starts a regmix-coordinator and two regmix-workers on free loopback ports,
#   4. submits the sweep of scripts/demo-spec.yaml (small proxy models, objective `mean`: the mean
#      validation loss over all domains; the active strategy: 16 first runs, then rounds of 8
#      chosen by a Gaussian process, docs/search.md) and follows it live (regmixctl watch) while
#      the coordinator refits as results arrive, until one more run is expected to gain less than
#      the spec's gain_tol (converged) or the budget of 48 runs is spent,
#   5. the coordinator then launches the target model with mpirun on 2 ranks on the proposed
#      mixture and on the baseline (the token prior); the demo waits for both,
#   6. prints the proposal beside the prior, the target's per-domain losses beside the
#      baseline's, the fit's predicted objective at the proposal with its 95 % interval of one
#      proxy run there beside the realised target objective, and writes $REGMIX_DEMO_DIR/summary.json and report.html (the plots, one
#      self-contained file; the live dashboard is at the http:// address printed at submit).
#
# Exits 0 only when every stage worked, the sweep converged, both target runs finished and the
# proposal beat the baseline on the objective; otherwise 1 (the logs stay in the demo folder).
# Every process it starts is stopped on exit (trap), also on failure or Ctrl-C.
#
# Environment:
#   REGMIX_DEMO_DIR    output folder (default ./demo): logs, database, corpus, summary.json
#   REGMIX_BUILD_DIR   build folder (default build)
#   REGMIX_CORPUS_DIR  corpus folder (default $REGMIX_DEMO_DIR/corpus)
#   REGMIX_DEMO_SPEC   the sweep settings (default scripts/demo-spec.yaml; name and domains are
#                      prepended)
#   REGMIX_DEMO_TIMEOUT_S  give up after this many seconds in the sweep (default 1200); the
#                      target runs get another 900
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo_dir=${REGMIX_DEMO_DIR:-$root/demo}
build_dir=${REGMIX_BUILD_DIR:-build}
mkdir -p "$demo_dir"
demo_dir=$(cd "$demo_dir" && pwd)
corpus_dir=${REGMIX_CORPUS_DIR:-$demo_dir/corpus}
sweep_timeout=${REGMIX_DEMO_TIMEOUT_S:-1200}
domains=code_c,dictionary,scripture,manpages,legal,quotes
t0=$SECONDS

stage() { printf '\n== [%4ds] %s\n' $((SECONDS - t0)) "$*"; }
die() {
    printf '\ndemo: FAILED: %s (logs in %s)\n' "$*" "$demo_dir" >&2
    exit 1
}

# ---- processes: every one is recorded and stopped on exit -----------------------------------
pids=()
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    [ "$rc" = 0 ] || echo "demo: exit status $rc; logs in $demo_dir" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. packages and build -----------------------------------------------------------------
stage "setup: packages and build ($build_dir)"
scripts/setup.sh "$build_dir" || die "scripts/setup.sh $build_dir"
bin=$root/$build_dir
coord_bin=$bin/coordinator/regmix-coordinator
worker_bin=$bin/worker/regmix-worker
trainer_bin=$bin/train/regmix-train
ctl_bin=$bin/cli/regmixctl
for b in "$coord_bin" "$worker_bin" "$trainer_bin" "$ctl_bin"; do
    [ -x "$b" ] || die "$b was not built"
done
command -v mpirun >/dev/null || die "mpirun not found (openmpi-bin)"
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

# ---- 2. corpus -----------------------------------------------------------------------------
stage "corpus: $domains (whole packages, byte tokens) in $corpus_dir"
"$py" scripts/build-corpus.py --out "$corpus_dir" --cache "$root/corpus-cache" --max-mb 0 \
    --domains "$domains" --quiet || die "scripts/build-corpus.py"
spec=$demo_dir/spec.yaml
{
    echo "name: demo-$(date -u +%Y%m%d-%H%M%S)"
    grep -v '^#' "$corpus_dir/spec-domains.yaml"
    cat "${REGMIX_DEMO_SPEC:-scripts/demo-spec.yaml}"
} >"$spec"
"$ctl_bin" sample --spec "$spec" --runs 1 >/dev/null || die "the demo spec $spec is not valid"

# ---- 3. coordinator and workers ------------------------------------------------------------
read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || eph_lo=32768
free_port() { # a port below the ephemeral range that nothing listens on
    local p
    while :; do
        p=$((10000 + RANDOM % (eph_lo - 10000)))
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
    done
}
rm -rf "$demo_dir/regmix.db" "$demo_dir/regmix.db-wal" "$demo_dir/regmix.db-shm" \
    "$demo_dir/targets" "$demo_dir"/worker-* "$demo_dir/summary.json" "$demo_dir/mpi" \
    "$demo_dir/report.html"
: >"$demo_dir/coordinator.log"
ctl() { "$ctl_bin" --coordinator "$cep" "$@"; }
started=0
for attempt in 1 2 3; do
    wport=$(free_port)
    cport=$(free_port)
    hport=$(free_port)
    [ "$wport" != "$cport" ] && [ "$hport" != "$wport" ] && [ "$hport" != "$cport" ] || continue
    wep=tcp://127.0.0.1:$wport
    cep=tcp://127.0.0.1:$cport
    stage "coordinator on $cep (workers: $wep), log $demo_dir/coordinator.log"
    "$coord_bin" --db "$demo_dir/regmix.db" --workers "$wep" --clients "$cep" \
        --metrics "127.0.0.1:$hport" --targets-dir "$demo_dir/targets" --trainer "$trainer_bin" \
        >>"$demo_dir/coordinator.log" 2>&1 &
    coord_pid=$!
    pids+=("$coord_pid")
    for _ in $(seq 1 100); do
        if ctl list --timeout 0.2 >/dev/null 2>&1; then
            started=1
            break
        fi
        kill -0 "$coord_pid" 2>/dev/null || break
    done
    [ "$started" = 1 ] && break
    kill -TERM "$coord_pid" 2>/dev/null || true
    echo "demo: coordinator did not start on these ports (attempt $attempt)" >&2
done
[ "$started" = 1 ] || die "the coordinator did not start (see coordinator.log)"
for w in w1 w2; do
    "$worker_bin" --coordinator "$wep" --slots 1 --gpus none --workdir "$demo_dir/worker-$w" \
        --name "$w" --trainer "$trainer_bin" >"$demo_dir/worker-$w.log" 2>&1 &
    pids+=("$!")
done
echo "two workers (1 slot each), logs $demo_dir/worker-w1.log, worker-w2.log"

# ---- 4. the sweep ----------------------------------------------------------------------------
stage "submit $spec"
sweep=$(ctl submit "$spec") || die "regmixctl submit"
sweep=$(echo "$sweep" | awk 'NF { w = $NF } END { print w }')
[ -n "$sweep" ] || die "regmixctl submit printed no sweep id"
echo "sweep $sweep: $(grep -c '' "$spec") lines of spec; follow it with:"
echo "  $ctl_bin --coordinator $cep watch $sweep"
echo "or in a browser: http://127.0.0.1:$hport/ (the live dashboard, docs/dashboard.md)"
stage "sweep $sweep: proxy runs on 2 workers, refits as results arrive"
# watch in the background (so a signal reaches the trap at once); the loop below checks the end
"$ctl_bin" --coordinator "$cep" watch "$sweep" &
watch_pid=$!
pids+=("$watch_pid")
end=$((SECONDS + sweep_timeout))
st=
while :; do
    sj=$(ctl status "$sweep" --json --timeout 3 2>/dev/null) || sj=
    if [ -n "$sj" ]; then
        read -r st dead total < <(echo "$sj" | "$py" -c '
import json, sys
s = json.load(sys.stdin)
print(s["state"], s["runs"]["dead"], s["runs"]["total"])')
        case "$st" in done | cancelled | converged | failed) break ;; esac
        # proxy runs that keep failing will not get better: stop early and say why
        if [ "$dead" -ge 4 ] && [ "$dead" -ge $((total / 8)) ]; then
            why=$(grep -o 'reason="[^"]*"' "$demo_dir/coordinator.log" | tail -n 1)
            die "$dead proxy runs are dead (last failure: $why)"
        fi
    fi
    kill -0 "$coord_pid" 2>/dev/null || die "the coordinator exited (see coordinator.log)"
    [ $SECONDS -lt $end ] || die "sweep $sweep did not end within $sweep_timeout s (state '$st')"
    sleep 2
done
for _ in $(seq 1 50); do # watch ends with the sweep; give it 5 s to print its last lines
    kill -0 "$watch_pid" 2>/dev/null || break
    sleep 0.1
done
kill -TERM "$watch_pid" 2>/dev/null || true
ctl status "$sweep" || die "regmixctl status"
ctl fits "$sweep" || die "regmixctl fits"
converged=$(ctl status "$sweep" --json | "$py" -c 'import json,sys; print(int(json.load(sys.stdin)["converged"]))')

# ---- 5. the target runs ----------------------------------------------------------------------
if [ "$converged" != 1 ]; then
    echo "demo: the sweep did not converge; launching the target on the last fit to show it" >&2
    ctl launch "$sweep" || die "regmixctl launch $sweep"
fi
stage "target: mpirun -np 2 on the proposal and on the baseline (prior), work dirs $demo_dir/targets"
end=$((SECONDS + 900))
last=
while :; do
    # the text form: `target --json` drops a run whose loss is still NaN (see scripts/README.md)
    ctl target "$sweep" --timeout 5 >"$demo_dir/target.txt" 2>&1 ||
        die "regmixctl target $sweep: $(cat "$demo_dir/target.txt")"
    line=$(awk '$1 == "target" || $1 == "baseline" { printf "%s%s %s %s %s", sep, $1, $2, $6, $7;
        sep = " | " }' "$demo_dir/target.txt")
    [ "$line" != "$last" ] && echo "  ${line:-no target run yet}"
    last=$line
    for role in target baseline; do
        if awk -v r=$role '$1 == r && $2 == "failed" { f = 1 } END { exit !f }' "$demo_dir/target.txt"; then
            log=$demo_dir/targets/$sweep/$role/$role.log
            tail -n 15 "$log" >&2 2>/dev/null || true
            die "the $role run failed: $(grep "^$role " "$demo_dir/target.txt")"
        fi
    done
    n_done=$(awk '($1 == "target" || $1 == "baseline") && $2 == "done"' "$demo_dir/target.txt" | wc -l)
    [ "$n_done" = 2 ] && break
    if [ -z "$line" ] && [ $SECONDS -gt $((end - 840)) ]; then
        die "no target run 60 s after the sweep ended ($(grep -E 'launch' "$demo_dir/coordinator.log" | tail -n 2))"
    fi
    [ $SECONDS -lt $end ] || die "the target runs did not finish in 900 s"
    sleep 3
done

# ---- 6. the summary --------------------------------------------------------------------------
stage "summary"
ctl status "$sweep" --json >"$demo_dir/status.json" || die "regmixctl status"
ctl fits "$sweep" >"$demo_dir/fits.txt" || die "regmixctl fits"
ctl mixture "$sweep" --json >"$demo_dir/mixture.json" || die "regmixctl mixture"
ctl target "$sweep" --json >"$demo_dir/target.json" || die "regmixctl target"
ctl results "$sweep" --csv >"$demo_dir/results.csv" || die "regmixctl results"
ctl mixture "$sweep" --out "$demo_dir/mixture.yaml" >/dev/null || die "regmixctl mixture --out"
ctl report "$sweep" --out "$demo_dir/report.html" >/dev/null || die "regmixctl report"
"$py" - "$demo_dir" $((SECONDS - t0)) <<'PY' || die "the summary is incomplete or the proposal lost"
import json, math, sys
d, wall = sys.argv[1], int(sys.argv[2])
st = json.load(open(d + "/status.json"))
# the fits table, not `fits --json`: that drops the first fit (its l1_moved is NaN)
fits = [l for l in open(d + "/fits.txt") if l.split() and l.split()[0].isdigit()]
mx = json.load(open(d + "/mixture.json"))
tg = {t["role"]: t for t in json.load(open(d + "/target.json"))["targets"]}
prior, prop = mx["prior"], mx["fit"]["proposal"]
def run(role):
    t = tg.get(role)
    if not t:
        return None
    return {"ranks": t["ranks"], "state": t["state"], "objective": t["objective"],
            "losses": t["losses"], "weights": t["weights"]}
# the fit's own interval: where one proxy run at the proposal should land (95 %). An active
# sweep's is the GP's mean -+ 1.96 sqrt(sd^2 + noise^2) at its proposal (common/active.c); a
# random sweep's the pipeline's prediction -+ 1.96 x the out-of-fold RMSE (common/fitpipe.c).
fit = mx["fit"]
pred, interval = fit.get("predicted"), fit.get("predicted_interval")
s = {"sweep": st["sweep"], "runs_done": st["runs"]["done"], "fits": len(fits),
     "converged": bool(st["converged"]), "converged_after_runs": st["converged_after_runs"],
     "prior": prior, "proposal": prop, "predicted": pred, "predicted_interval": interval,
     "proposal_from": fit.get("proposal_from"), "expected_gain": fit.get("expected_gain"),
     "target": run("target"), "baseline": run("baseline"), "wall_s": wall}
json.dump(s, open(d + "/summary.json", "w"), indent=1)
print("%-14s %9s %9s %7s" % ("domain", "prior", "proposal", "ratio"))
for k in prior:
    print("%-14s %9.4f %9.4f %7.2f" % (k, prior[k], prop.get(k, 0), prop.get(k, 0) / prior[k]))
tgt, base = s["target"], s["baseline"]
if tgt and base:
    print("\n%-14s %9s %9s %9s" % ("val loss", "target", "baseline", "diff"))
    for k in prior:
        a, b = tgt["losses"].get(k, math.nan), base["losses"].get(k, math.nan)
        print("%-14s %9.4f %9.4f %+9.4f" % (k, a, b, a - b))
    print("%-14s %9.4f %9.4f %+9.4f" % ("objective", tgt["objective"], base["objective"],
                                          tgt["objective"] - base["objective"]))
    if interval:
        print("%-14s %9.4f, 95%% interval of one proxy run at the proposal [%.4f, %.4f]"
              % ("predicted", pred, interval[0], interval[1]))
        print("%-14s (the proxy's scale: the target is a larger model, realised %.4f against the "
              "baseline's %.4f)" % ("", tgt["objective"], base["objective"]))
gain = s["expected_gain"]
print("\nruns done %d, fits %d, converged %s after %d runs%s, proposal chosen by %s, wall %d s" % (
    s["runs_done"], s["fits"], s["converged"], s["converged_after_runs"],
    " (expected gain of one more run %.4f)" % gain if isinstance(gain, (int, float)) else "",
    s["proposal_from"] or "?", wall))
bad = []
if s["runs_done"] < 1 or s["fits"] < 1:
    bad.append("no runs or no fits")
if not s["converged"]:
    bad.append("the sweep did not converge")
for name, r in (("target", tgt), ("baseline", base)):
    if not r or r["state"] != "done" or not math.isfinite(r["objective"]) \
            or set(r["losses"]) != set(prior):
        bad.append("the %s run did not finish with a loss for every domain" % name)
if not bad and not tgt["objective"] < base["objective"]:
    bad.append("the proposal (%.4f) did not beat the baseline (%.4f)" % (tgt["objective"],
                                                                      base["objective"]))
for b in bad:
    print("demo: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
stage "done: $demo_dir/summary.json, mixture.yaml, results.csv"
echo "the report (plots, opens offline): $demo_dir/report.html"
