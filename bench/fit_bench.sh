#!/bin/sh
# fit_bench: `regmixctl fit` against the same method in Python (bench/fit_reference.py), side by
# side on the RegMix paper's data: fit gbdt on the 512 training runs (target Pile-CC), score on the
# 256 test runs, simulate N = 1,000,000 Dirichlet(prior) candidates and average the top 100, with
# the same thread count. Prints, for each, the wall time (process start to exit, Python imports
# included) and the CPU time (user + system, all threads: less sensitive to a busy machine), the
# phases, the proposals, and `speedup: X.Yx` (reference wall time / ours).
#
# usage: bench/fit_bench.sh [PATH/TO/regmixctl]
# env:   THREADS (2), N (1000000), TOP_K (100), REPEAT (1: best of REPEAT runs each),
#        REF_FIT_THREADS (the reference's XGBoost fit threads; default THREADS, 1 fits the way
#        regmixctl does on small data),
#        REGMIX_PAPER_DIR (data/regmix-paper), PYTHON (/usr/bin/python3: needs numpy,
#        scipy and Debian's python3-xgboost)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
regmixctl=${1:-${REGMIX_BUILD_ROOT:-$here/../build}/cli/regmixctl}
data=${REGMIX_PAPER_DIR:-$here/../data/regmix-paper}
py=${PYTHON:-/usr/bin/python3}
if [ ! -x "$regmixctl" ]; then
    echo "fit_bench: no regmixctl at $regmixctl (pass its path)" >&2
    exit 2
fi
exec "$py" - "$regmixctl" "$here/fit_reference.py" "$data" "${THREADS:-2}" "${N:-1000000}" \
    "${TOP_K:-100}" "${REPEAT:-1}" "${REF_FIT_THREADS:-0}" <<'PYEOF'
import json, os, resource, subprocess, sys, time

regmixctl, reference, data, threads, n, k, repeat, ref_fit_threads = sys.argv[1:9]
args = ["--mixtures", data + "/train_mixture_1m.csv", "--losses", data + "/train_pile_loss_1m.csv",
        "--target", "metric/the_pile_pile_cc_val_loss",
        "--test-mixtures", data + "/test_mixture_1m.csv",
        "--test-losses", data + "/test_pile_loss_1m.csv", "--prior", data + "/prior.csv",
        "--simulate", n, "--top-k", k, "--seed", "42", "--threads", threads]


def timed(cmd):
    """Best wall time of `repeat` runs, that run's CPU time, and the JSON it printed."""
    best = None
    for _ in range(int(repeat)):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        if best is None or wall < best[0]:
            best = (wall, cpu, json.loads(out))
    return best


print("fit_bench: gbdt fit on 512 runs + %s candidates, top %s, %s threads (reference fit: %s),"
      " best of %s" % (n, k, threads, ref_fit_threads if ref_fit_threads != "0" else threads,
                       repeat))
ours = timed([regmixctl, "fit"] + args + ["--json"])
ref = timed([sys.executable, reference] + args + ["--fit-threads", ref_fit_threads])


def short(w):
    top = sorted(w.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join("%s %.4f" % (d.replace("train_the_pile_", ""), v) for d, v in top)


for name, (wall, cpu, r) in (("regmixctl", ours), ("python   ", ref)):
    s = r["seconds"]
    print("%s  wall %7.3f s  cpu %7.3f s  fit %6.3f s  simulate %6.3f s  spearman %.4f  %s"
          % (name, wall, cpu, s["fit"], s["simulate"], r["test"]["spearman"],
             short(r["proposal"]["weights"])))
print("fit: %.1fx  simulate: %.1fx  cpu: %.1fx"
      % (ref[2]["seconds"]["fit"] / ours[2]["seconds"]["fit"],
         ref[2]["seconds"]["simulate"] / ours[2]["seconds"]["simulate"], ref[1] / ours[1]))
print("speedup: %.1fx" % (ref[0] / ours[0]))
PYEOF
