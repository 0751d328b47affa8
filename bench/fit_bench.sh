#!/bin/sh
# fit_bench: `regmixctl fit` against the same method in Python (bench/fit_reference.py), side by
# side on the RegMix paper's data: fit gbdt on the 512 training runs (target Pile-CC), score on the
# 256 test runs, simulate N = 1,000,000 Dirichlet(prior) candidates and average the top 100, with
# the same thread count. Prints both wall times (process start to exit, Python imports included),
# the phases, both proposals, and `speedup: X.Yx` (reference wall time / ours).
#
# usage: bench/fit_bench.sh [PATH/TO/regmixctl]
# env:   THREADS (2), N (1000000), TOP_K (100), REPEAT (1: best of REPEAT runs each),
#        REGMIX_PAPER_DIR (../shared/data/regmix-paper), PYTHON (/usr/bin/python3: needs numpy,
#        scipy and Debian's python3-xgboost)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
regmixctl=${1:-${REGMIX_BUILD_ROOT:-$here/../build}/cli/regmixctl}
data=${REGMIX_PAPER_DIR:-$here/../../shared/data/regmix-paper}
threads=${THREADS:-2}
n=${N:-1000000}
k=${TOP_K:-100}
repeat=${REPEAT:-1}
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

set -- --mixtures "$data/train_mixture_1m.csv" --losses "$data/train_pile_loss_1m.csv" \
    --target metric/the_pile_pile_cc_val_loss \
    --test-mixtures "$data/test_mixture_1m.csv" --test-losses "$data/test_pile_loss_1m.csv" \
    --prior "$data/prior.csv" --simulate "$n" --top-k "$k" --seed 42 --threads "$threads"

# best wall time of $repeat runs; the JSON of the last run is kept
timed() {
    out=$1
    shift
    best=
    i=0
    while [ "$i" -lt "$repeat" ]; do
        t0=$(date +%s.%N)
        "$@" >"$out"
        t1=$(date +%s.%N)
        t=$(echo "$t1 - $t0" | bc)
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
        i=$((i + 1))
    done
    echo "$best"
}

echo "fit_bench: gbdt fit on 512 runs + $n candidates, top $k, $threads threads, best of $repeat"
ours=$(timed "$tmp/ours.json" "$regmixctl" fit "$@" --json)
ref=$(timed "$tmp/ref.json" "$py" "$here/fit_reference.py" "$@")
"$py" - "$tmp/ours.json" "$tmp/ref.json" "$ours" "$ref" <<'PYEOF'
import json, sys
ours, ref = (json.load(open(p)) for p in sys.argv[1:3])
tw_ours, tw_ref = float(sys.argv[3]), float(sys.argv[4])
def short(w):
    top = sorted(w.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join("%s %.4f" % (k.replace("train_the_pile_", ""), v) for k, v in top)
for name, r, tw in (("regmixctl", ours, tw_ours), ("python   ", ref, tw_ref)):
    s = r["seconds"]
    print("%s  wall %7.3f s  fit %6.3f s  simulate %6.3f s  test spearman %.4f  proposal: %s"
          % (name, tw, s["fit"], s["simulate"], r["test"]["spearman"], short(r["proposal"]["weights"])))
print("fit speedup: %.1fx  simulate speedup: %.1fx"
      % (ref["seconds"]["fit"] / ours["seconds"]["fit"],
         ref["seconds"]["simulate"] / ours["seconds"]["simulate"]))
print("speedup: %.1fx" % (tw_ref / tw_ours))
PYEOF
