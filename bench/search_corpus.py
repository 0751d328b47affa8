#!/usr/bin/env python3
"""search_corpus.py: the corpus oracle of bench/search_bench (bench/README.md, "Search").

Each mixture-search strategy runs as a real sweep through a regmix-coordinator and regmix-workers
on loopback with the built-in regmix-train proxies of the demo (scripts/demo-spec.yaml) on the
demo's six-domain Debian corpus (scripts/build-corpus.py), one sweep per (strategy, seed,
budget). The proposal of each sweep's last fit (on all its runs) is then scored by fresh proxy
runs at that mixture: the same proxy model and training, seeds no sweep uses, objective `mean` (the mean
validation loss over the domains). The token prior, the demo's baseline, is scored the same way
and with the same seeds, so every figure is also given as a margin over the prior.

The corpus has no known optimum. Regret here is the scored objective minus the best objective
scored anywhere in the same invocation (every proposal and the prior, each the mean of its scoring
runs); the raw objective and the margin over the prior are reported beside it. Means and 95 %
intervals (Student t) are over the sweep seeds; the comparisons between strategies are paired by
sweep seed (the same sampling seed, the same scoring seeds).

Before scoring, one stored proxy run of the first sweep is re-run with the scorer's command line
(its mixture and seed): its losses must equal the worker's, which shows the scoring runs are the
sweeps' proxies (same model, data, training, objective).

Python 3 standard library plus PyYAML (python3-yaml, installed by scripts/setup.sh). Exit status 0
on success, 2 on bad usage, 1 on any failure (the logs stay in the work folder). Every process it
starts is stopped on exit, also on failure or Ctrl-C.
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import time

try:
    import yaml
except ImportError:  # pragma: no cover - checked at run time with a clear message
    yaml = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_DOMAINS = "code_c,dictionary,scripture,manpages,legal,quotes"  # as scripts/demo.sh
STRATEGIES = {
    "quadratic": "today's demo: one-shot random sweep (the demo's sampling), quadratic, "
                 "100k candidates, top 10 % averaged",
    "regmix": "the paper's one-shot: random sweep (the demo's sampling), GBDT, --candidates "
              "candidates, top-100 average",
    "active": "sampling {strategy: active, initial: 16, batch: 8}: the daemon's active search "
              "(GP rounds), the demo's regression settings otherwise",
}
SCORE_SEED0 = 900001  # scoring seeds 900001.. ; sweep runs use 64-bit splitmix64 seeds

EPILOG = """\
Strategies:
  quadratic  %s
  regmix     %s
  active     %s

Every strategy keeps the demo's proxy settings, sampling (temperature, strengths, min_weight),
objective (mean) and cv_folds. Each (strategy, seed, budget B) is one sweep of B runs: sampling
and regression seeds = the sweep seed, convergence disabled (min_runs above the budget),
on_converge: keep; the one-shot sweeps refit once, at B results (refit_every B), the active ones
keep the demo's refit_every. The proposal at B is the one of the sweep's last fit, on B runs.

Example:
  bench/search_corpus.py --budgets 24,32 --seeds 4 --seed 1 --json
  build/bench/search_bench --oracle corpus --budgets 24,32 --seeds 4 --seed 1 --json
""" % (STRATEGIES["quadratic"], STRATEGIES["regmix"], STRATEGIES["active"])


class Fail(Exception):
    """A failure of the benchmark (exit 1)."""


class Usage(Exception):
    """Bad usage or input (exit 2)."""


def log(msg):
    print("search_corpus: " + msg, file=sys.stderr, flush=True)


# ---- processes: every one is recorded and stopped on exit ------------------------------------
PROCS = []


def spawn(argv, out, **kw):
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT if out else None,
                         start_new_session=True, **kw)
    PROCS.append(p)
    return p


def stop(p, grace=10.0):
    if p.poll() is None:
        try:
            p.terminate()
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in PROCS:
        PROCS.remove(p)


def stop_all():
    for p in list(PROCS):
        if p.poll() is None:
            try:
                p.terminate()
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    for p in list(PROCS):
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    PROCS.clear()


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


# ---- options -----------------------------------------------------------------------------------
def int_list(s):
    try:
        v = [int(x) for x in s.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("want comma-separated integers, got '%s'" % s)
    if not v or any(b < 4 or b > 1024 for b in v):
        raise argparse.ArgumentTypeError("want integers 4..1024, got '%s'" % s)
    return sorted(set(v))


def bounded_int(lo, hi):
    def f(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError("want an integer, got '%s'" % s)
        if v < lo or v > hi:
            raise argparse.ArgumentTypeError("want %d..%d, got %d" % (lo, hi, v))
        return v
    return f


def strategy_list(s):
    v = [x for x in s.split(",") if x]
    for x in v:
        if x not in STRATEGIES:
            raise argparse.ArgumentTypeError("unknown strategy '%s' (%s)" %
                                             (x, ", ".join(STRATEGIES)))
    if not v:
        raise argparse.ArgumentTypeError("empty list")
    return list(dict.fromkeys(v))


def version():
    try:
        for line in open(os.path.join(ROOT, "meson.build")):
            if line.strip().startswith("version"):
                return line.split("'")[1]
    except OSError:
        pass
    return "unknown"


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print("search_corpus: " + message, file=sys.stderr)
        sys.exit(2)


def parse_args(argv):
    ap = Parser(
        prog="search_bench --oracle corpus",
        description="Score mixture-search strategies on the demo's Debian corpus: each strategy "
        "runs as a real sweep (regmix-coordinator + regmix-workers on loopback, builtin "
        "regmix-train proxies as in scripts/demo-spec.yaml), and the proposal its fits record at "
        "each budget is scored by fresh proxy runs (seeds no sweep used; objective: the mean "
        "validation loss over the domains). The token prior (the demo's baseline) is scored the "
        "same way. Regret = the scored objective minus the best scored anywhere in the "
        "invocation; mean and 95 % interval over the sweep seeds. Prints a table, or one JSON "
        "object with --json. Takes minutes to an hour: not a test.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oracle", default="corpus", choices=["corpus"],
                    help="corpus (accepted for search_bench's interface)")
    ap.add_argument("--budgets", type=int_list, default=[24, 32],
                    help="proxy runs per sweep, comma-separated: one sweep per budget (default "
                    "24,32)")
    ap.add_argument("--seeds", type=bounded_int(1, 100), default=4,
                    help="sweep seeds per strategy (default 4)")
    ap.add_argument("--seed", type=bounded_int(0, 2**31), default=1,
                    help="first sweep seed (default 1): seeds S..S+N-1 drive sampling, the runs' "
                    "proxy seeds and the regression's candidates")
    ap.add_argument("--strategies", type=strategy_list, default=list(STRATEGIES),
                    help="comma-separated (default quadratic,regmix,active)")
    ap.add_argument("--score-seeds", type=bounded_int(1, 64), default=8,
                    help="fresh proxy runs per scored mixture (default 8; seeds %d..)" %
                    SCORE_SEED0)
    ap.add_argument("--candidates", type=bounded_int(1000, 10000000), default=1000000,
                    help="regmix's simulated candidates (default 1000000, the paper's)")
    ap.add_argument("--workers", type=bounded_int(1, 64), default=2,
                    help="regmix-workers with one slot each (default 2, as the demo)")
    ap.add_argument("--jobs", type=bounded_int(1, 64), default=None,
                    help="scoring runs at once (default: --workers)")
    ap.add_argument("--build", default=os.environ.get("REGMIX_BUILD_DIR") or "build",
                    help="build folder (default $REGMIX_BUILD_DIR, else build)")
    ap.add_argument("--workdir", default=os.environ.get("REGMIX_BENCH_DIR"),
                    help="logs, database, specs, scores (default $REGMIX_BENCH_DIR, else "
                    "BUILD/bench/search-corpus); emptied at start")
    ap.add_argument("--corpus", default=os.environ.get("REGMIX_CORPUS_DIR"),
                    help="the corpus folder (default $REGMIX_CORPUS_DIR, else "
                    "BUILD/bench/corpus); built or checked with scripts/build-corpus.py")
    ap.add_argument("--corpus-cache", default=os.path.join(ROOT, "corpus-cache"),
                    help="downloaded .deb files (default corpus-cache in the source tree, "
                    "shared with the demo)")
    ap.add_argument("--domains", default=DEMO_DOMAINS,
                    help="corpus domains (default the demo's: %s)" % DEMO_DOMAINS)
    ap.add_argument("--demo-spec", default=os.path.join(ROOT, "scripts", "demo-spec.yaml"),
                    help="the settings the strategies start from (default scripts/demo-spec.yaml)")
    ap.add_argument("--timeout", type=bounded_int(10, 86400), default=5400,
                    help="give up when the sweeps have not ended after this many seconds "
                    "(default 5400)")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON object on stdout (default: Markdown tables)")
    ap.add_argument("--render", metavar="RESULT.json",
                    help="print the tables of a saved result (the work folder's result.json or "
                    "--json's output) and exit; nothing is run")
    ap.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    ap.add_argument("--version", action="version", version="search_corpus " + version())
    a = ap.parse_args(argv)
    if a.jobs is None:
        a.jobs = a.workers
    if "active" in a.strategies and min(a.budgets) < 17:
        ap.error("--budgets: the active strategy's first design is 16 runs; want budgets >= 17")
    return a


# ---- specs -------------------------------------------------------------------------------------
def load_yaml(path, what):
    try:
        with open(path) as f:
            d = yaml.safe_load(f)
    except OSError as e:
        raise Usage("%s: %s" % (what, e))
    except yaml.YAMLError as e:
        raise Usage("%s %s: not valid YAML: %s" % (what, path, e))
    if not isinstance(d, dict):
        raise Usage("%s %s: not a mapping" % (what, path))
    return d


def strategy_spec(base, domains, strategy, seed, runs, candidates):
    """The sweep spec of one (strategy, seed): the demo's settings with the strategy's own."""
    s = {"name": "bench-%s-s%d-%d" % (strategy, seed, runs), "domains": domains}
    samp = dict(base.get("sampling") or {})
    for k in ("strategy", "initial", "batch"):
        samp.pop(k, None)
    samp["runs"] = runs
    samp["seed"] = seed
    if strategy == "active":
        samp.update({"strategy": "active", "initial": 16, "batch": 8})
    s["sampling"] = samp
    s["proxy"] = base["proxy"]
    reg = dict(base.get("regression") or {})
    # today's demo: quadratic, 100k candidates, top 10 % (the regmix strategy: the paper's)
    if strategy == "regmix":
        reg.update({"model": "gbdt", "simulate": candidates, "top_k": 100})
    else:
        reg.update({"model": "quadratic", "simulate": 100000, "top_k": 10000})
    reg["seed"] = seed
    if strategy != "active":
        reg["refit_every"] = runs  # only the last fit is read: one fit, at `runs` results
    conv = dict(reg.get("convergence") or {})
    conv["min_runs"] = runs + 1000  # never converges: proposals at every budget
    reg["convergence"] = conv
    reg["on_converge"] = "keep"
    s["regression"] = reg
    return s


def proxy_argv(trainer, spec, weights, seed):
    """regmix-train's command line for a proxy run, as common/trainargs.c renders it."""
    px = spec["proxy"]
    if (px.get("trainer") or "builtin") != "builtin":
        raise Usage("the demo spec's proxy.trainer is not builtin")
    m, t = px.get("model") or {}, px.get("train") or {}
    tdef = {"lr": 4e-4, "warmup": 100, "schedule": "constant", "min_lr": 0.0,
            "weight_decay": 0.1, "clip": 1.0, "eval_batches": 8, "threads": 0, "micro_batch": 0}

    def tv(k):
        return t.get(k, tdef.get(k))

    def num(v):
        return repr(float(v)) if isinstance(v, float) else str(v)

    argv = [trainer]
    for k in ("layers", "heads", "dim", "ffn", "context", "vocab"):
        argv += ["--" + k, str(int(m[k]))]
    batch = int(t["batch"])
    argv += ["--batch", str(batch)]
    mb = int(tv("micro_batch") or 0)
    if 0 < mb <= batch:
        argv += ["--micro-batch", str(mb)]
    argv += ["--steps", str(int(t["steps"])), "--lr", num(float(tv("lr"))),
             "--warmup", str(int(tv("warmup"))), "--schedule", str(tv("schedule")),
             "--min-lr", num(float(tv("min_lr"))),
             "--weight-decay", num(float(tv("weight_decay"))),
             "--clip", num(float(tv("clip"))), "--eval-batches", str(int(tv("eval_batches")))]
    if int(tv("threads") or 0) > 0:
        argv += ["--threads", str(int(tv("threads")))]
    for d in spec["domains"]:
        if d.get("train"):
            argv += ["--train", "%s=%s" % (d["name"], d["train"])]
    for d in spec["domains"]:
        if d.get("valid"):
            argv += ["--valid", "%s=%s" % (d["name"], d["valid"])]
    argv += ["--weights-json", json.dumps({d["name"]: float(weights.get(d["name"], 0.0))
                                           for d in spec["domains"]}),
             "--seed", str(seed)]
    return argv


# ---- the daemons -------------------------------------------------------------------------------
def free_port(taken):
    lo = 32768
    try:
        lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    while True:
        p = random.randrange(10000, lo)
        if p in taken:
            continue
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", p)) != 0:
                taken.add(p)
                return p


class Cluster:
    def __init__(self, bins, work, nworkers):
        self.bins, self.work, self.nworkers = bins, work, nworkers
        self.coord = None
        self.workers = []
        self.cep = None

    def ctl(self, *args, timeout=30, check=True):
        r = subprocess.run([self.bins["ctl"], "--coordinator", self.cep] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise Fail("regmixctl %s: %s" % (" ".join(args), r.stderr.strip() or r.returncode))
        return r

    def start(self):
        clog = open(os.path.join(self.work, "coordinator.log"), "ab")
        for attempt in range(3):
            taken = set()
            wport, cport = free_port(taken), free_port(taken)
            wep = "tcp://127.0.0.1:%d" % wport
            self.cep = "tcp://127.0.0.1:%d" % cport
            self.coord = spawn([self.bins["coord"], "--db", os.path.join(self.work, "regmix.db"),
                                "--workers", wep, "--clients", self.cep,
                                "--targets-dir", os.path.join(self.work, "targets"),
                                "--trainer", self.bins["train"]], clog)
            deadline = time.monotonic() + 20
            up = False
            while time.monotonic() < deadline and self.coord.poll() is None:
                if self.ctl("list", "--timeout", "0.2", check=False, timeout=10).returncode == 0:
                    up = True
                    break
            if up:
                break
            stop(self.coord)
            log("the coordinator did not start on %s (attempt %d)" % (self.cep, attempt + 1))
        else:
            raise Fail("the coordinator did not start (see %s/coordinator.log)" % self.work)
        for i in range(self.nworkers):
            name = "bench-w%d" % (i + 1)
            wlog = open(os.path.join(self.work, "worker-%s.log" % name), "ab")
            self.workers.append(spawn([self.bins["worker"], "--coordinator", wep, "--slots", "1",
                                       "--gpus", "none", "--workdir",
                                       os.path.join(self.work, "worker-" + name), "--name", name,
                                       "--trainer", self.bins["train"]], wlog))

    def alive(self):
        if self.coord.poll() is not None:
            raise Fail("the coordinator exited (status %s; see %s/coordinator.log)" %
                       (self.coord.returncode, self.work))
        for w in self.workers:
            if w.poll() is not None:
                raise Fail("a worker exited (status %s; see %s/worker-*.log)" %
                           (w.returncode, self.work))

    def stop(self):
        for w in self.workers:
            stop(w)
        if self.coord:
            stop(self.coord)


# ---- scoring -----------------------------------------------------------------------------------
def run_pool(tasks, jobs, work, verbose):
    """tasks: list of (key, argv); runs `jobs` at once; returns {key: losses dict}."""
    out, running, queue = {}, [], list(tasks)
    t0 = time.monotonic()
    logdir = os.path.join(work, "score-logs")
    os.makedirs(logdir, exist_ok=True)
    n = 0
    while queue or running:
        while queue and len(running) < jobs:
            key, argv = queue.pop(0)
            n += 1
            path = os.path.join(logdir, "%04d.log" % n)
            f = open(path, "wb")
            p = spawn(argv, f)
            running.append((key, p, path, f, time.monotonic()))
        time.sleep(0.05)
        for item in list(running):
            key, p, path, f, started = item
            if p.poll() is None:
                if time.monotonic() - started > 600:
                    stop(p)
                    raise Fail("a scoring run took over 600 s (%s)" % path)
                continue
            running.remove(item)
            PROCS.remove(p)
            f.close()
            res = None
            with open(path) as fh:
                for line in fh:
                    if line.startswith("{") and '"event":"result"' in line.replace(" ", ""):
                        res = json.loads(line)
            if p.returncode != 0 or not res or "losses" not in res:
                raise Fail("scoring run failed (exit %s), log %s" % (p.returncode, path))
            out[key] = res["losses"]
            if verbose and len(out) % 10 == 0:
                log("scored %d/%d runs (%.0f s)" % (len(out), len(tasks), time.monotonic() - t0))
    return out


def t975(df):
    t = [0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086]
    if df < 1:
        return float("nan")
    return t[df] if df <= 20 else 2.042 if df <= 30 else 2.000 if df <= 60 else 1.96


def mean_ci(xs):
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, [None, None], None
    sd = statistics.stdev(xs)
    h = t975(len(xs) - 1) * sd / math.sqrt(len(xs))
    return m, [m - h, m + h], sd


def rnd(x, k=5):
    return None if x is None else round(x, k)


def print_tables(out):
    """The result as Markdown tables (bench/README.md's form)."""
    ss = out["score_seeds"]
    prior_obj, best = out["prior"]["objective"], out["best"]["objective"]
    print("oracle corpus: %d sweep seeds from %d, %d scoring runs per mixture (seeds %d..%d); "
          "prior %.4f; best scored %.4f (%s)" % (out["seeds"], out["seed"], len(ss), ss[0], ss[-1],
                                                 prior_obj, best, out["best"]["mixture"]))
    if out["noise_sd"] is not None:
        print("run-to-run sd of the objective at a fixed mixture %.4f (prior %.4f); sd of the "
              "difference to the prior at the same scoring seed %.4f" %
              (out["noise_sd"], out["prior_noise_sd"], out["paired_diff_sd"]))
        if out.get("residual_sd") is not None:
            print("of which shared by every mixture at a scoring seed: sd %.4f (cancels in "
                  "margins and paired differences); the rest: sd %.4f" %
                  (out["scoring_seed_sd"], out["residual_sd"]))
    # a Markdown table (bench/README.md's form)
    def iv(ci, fmt="%.4f"):
        return ("[" + fmt + ", " + fmt + "]") % tuple(ci) if ci[0] is not None else "-"

    print("\n| strategy | runs | objective [95 %] | margin vs prior [95 %] | regret [95 %] "
          "| seeds below the prior | runs in the fit's interval |")
    print("|---|---|---|---|---|---|---|")
    for st, per in out["strategies"].items():
        for b in out["budgets"]:
            e = per[str(b)]
            cov = "%.0f %%" % (100 * e["interval_coverage"]) \
                if e["interval_coverage"] is not None else "-"
            print("| %s | %d | %.4f %s | %+.4f %s | %.4f %s | %d of %d | %s |" % (
                st, b, e["objective"], iv(e["objective_ci95"]), e["margin"],
                iv(e["margin_ci95"], "%+.4f"), e["regret"], iv(e["ci95"]), e["beats_prior"],
                e["seeds"], cov))
    print("| prior | - | %.4f | 0 | %.4f | - | - |\n" % (prior_obj, prior_obj - best))
    print("| paired by sweep seed | runs | difference [95 %] | seeds where the first is lower |")
    print("|---|---|---|---|")
    for name, c in out["comparisons"].items():
        for b, e in c.items():
            print("| %s | %s | %+.4f %s | %d of %d |" % (name, b, e["diff"],
                                                       iv(e["ci95"], "%+.4f"), e["wins"],
                                                       e["seeds"]))
    print("\nwall %.0f s (sweeps %.0f s, scoring %.0f s); %d proxy runs in the sweeps, %d "
          "scoring; work folder %s" % (out["wall_s"], out["sweep_s"], out["score_s"],
                                       out["proxy_runs"]["sweeps"],
                                       out["proxy_runs"]["scoring"], out["workdir"]))


# ---- main --------------------------------------------------------------------------------------
def main(argv):
    a = parse_args(argv)
    if a.render:
        try:
            with open(a.render) as f:
                print_tables(json.load(f))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise Usage("--render %s: %s" % (a.render, e))
        return 0
    if yaml is None:
        raise Fail("PyYAML is missing (python3-yaml; scripts/setup.sh installs it)")
    t_start = time.monotonic()
    build = os.path.abspath(a.build)
    bins = {"coord": os.path.join(build, "coordinator", "regmix-coordinator"),
            "worker": os.path.join(build, "worker", "regmix-worker"),
            "train": os.path.join(build, "train", "regmix-train"),
            "ctl": os.path.join(build, "cli", "regmixctl")}
    for k, b in bins.items():
        if not os.access(b, os.X_OK):
            raise Usage("%s was not built (--build %s)" % (b, a.build))
    work = os.path.abspath(a.workdir or os.path.join(build, "bench", "search-corpus"))
    corpus = os.path.abspath(a.corpus or os.path.join(build, "bench", "corpus"))
    base = load_yaml(a.demo_spec, "--demo-spec")
    if "proxy" not in base:
        raise Usage("--demo-spec %s has no proxy section" % a.demo_spec)
    if str((base.get("regression") or {}).get("target", "mean")) != "mean":
        raise Usage("--demo-spec %s: regression.target is not mean" % a.demo_spec)
    os.makedirs(work, exist_ok=True)
    for name in os.listdir(work):  # what an earlier run left, nothing else
        p = os.path.join(work, name)
        if name in ("targets", "score-logs") or name.startswith("worker-bench-"):
            shutil.rmtree(p, ignore_errors=True)
        elif (name.startswith(("regmix.db", "spec-")) or name.endswith(".log")
              or name == "result.json"):
            os.unlink(p)
    log("work folder %s (logs, database, specs, scores)" % work)

    # the corpus, as the demo builds it
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "build-corpus.py"), "--out",
                        corpus, "--cache", os.path.abspath(a.corpus_cache), "--max-mb", "0",
                        "--domains", a.domains, "--quiet"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(os.path.join(work, "corpus.log"), "w") as f:
        f.write(r.stdout)
    if r.returncode != 0:
        raise Fail("scripts/build-corpus.py failed (%s/corpus.log)" % work)
    dom = load_yaml(os.path.join(corpus, "spec-domains.yaml"), "corpus")["domains"]
    names = [d["name"] for d in dom]
    tok = [float(d["tokens"]) for d in dom]
    prior = {n: t / sum(tok) for n, t in zip(names, tok)}
    log("corpus %s: %d domains, %.1f M tokens (%.0f s)" % (corpus, len(names), sum(tok) / 1e6,
                                                            time.monotonic() - t0))

    # the specs, checked offline first: one sweep per (strategy, seed, budget), whose last fit is
    # on exactly `budget` results (a sweep refits when its last run ends); the fits of a longer
    # sweep land at other counts (one-shot: 5, 9, 13, ...; active: when a round is asked for)
    sweeps = []  # dicts: strategy, seed, runs, spec path, sweep id
    for s in range(a.seed, a.seed + a.seeds):
        for st in a.strategies:
            for b in a.budgets:
                spec = strategy_spec(base, dom, st, s, b, a.candidates)
                path = os.path.join(work, "spec-%s-s%d-%d.yaml" % (st, s, b))
                with open(path, "w") as f:
                    yaml.safe_dump(spec, f, sort_keys=False)
                r = subprocess.run([bins["ctl"], "sample", "--spec", path, "--runs", "1"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if r.returncode != 0:
                    raise Fail("the spec %s is not valid: %s" % (path, r.stderr.strip()))
                sweeps.append({"strategy": st, "seed": s, "runs": b, "path": path, "spec": spec})
    # active sweeps first: the queue is FIFO, their rounds queue behind the one-shot runs
    sweeps.sort(key=lambda sw: (sw["strategy"] != "active", sw["seed"], sw["runs"]))

    # the sweeps: all submitted at once (the workers stay busy while active sweeps wait for rounds)
    cl = Cluster(bins, work, a.workers)
    t_sweeps = time.monotonic()
    try:
        cl.start()
        log("coordinator on %s, %d workers; submitting %d sweeps (%d runs)" %
            (cl.cep, a.workers, len(sweeps), sum(sw["runs"] for sw in sweeps)))
        for sw in sweeps:
            out = cl.ctl("submit", sw["path"], "--json").stdout
            sw["id"] = json.loads(out)["sweep"]
        deadline = time.monotonic() + a.timeout
        last = 0.0
        while True:
            cl.alive()
            states = {}
            for sw in sweeps:
                r = cl.ctl("status", sw["id"], "--json", check=False)
                if r.returncode == 0:
                    sw["status"] = json.loads(r.stdout)
                    states[sw["id"]] = sw["status"]["state"]
            ended = [sw for sw in sweeps
                     if sw.get("status", {}).get("state") in ("done", "cancelled", "converged",
                                                               "failed")]
            dead = sum(sw.get("status", {}).get("runs", {}).get("dead", 0) for sw in sweeps)
            done = sum(sw.get("status", {}).get("runs", {}).get("done", 0) for sw in sweeps)
            line = "sweeps ended %d/%d, runs done %d, dead %d (%.0f s)" % (
                len(ended), len(sweeps), done, dead, time.monotonic() - t_sweeps)
            if a.verbose and (time.monotonic() - last >= 30 or len(ended) == len(sweeps)):
                log(line)
                last = time.monotonic()
            if dead >= 4:
                raise Fail("%d proxy runs are dead (see %s/coordinator.log)" % (dead, work))
            if len(ended) == len(sweeps):
                break
            if time.monotonic() > deadline:
                raise Fail("the sweeps did not end within %d s: %s" % (a.timeout, line))
            time.sleep(1)
        for sw in sweeps:
            sw["fits"] = json.loads(cl.ctl("fits", sw["id"], "--json").stdout)["fits"]
            if sw["status"]["state"] != "done":
                raise Fail("sweep %s (%s, seed %d) ended %s" % (sw["id"], sw["strategy"],
                                                                  sw["seed"],
                                                                  sw["status"]["state"]))
        sweep_s = time.monotonic() - t_sweeps
    finally:
        cl.stop()
    log("sweeps done in %.0f s" % sweep_s)

    # one stored run of the first sweep, for the harness check (read after the coordinator stopped)
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(work, "regmix.db"), uri=True)
    row = db.execute("SELECT r.idx, r.weights, r.seed, x.losses FROM runs r JOIN sweeps s ON "
                     "r.sweep = s.id JOIN results x ON x.run = r.id WHERE s.sweep_id = ? "
                     "ORDER BY r.idx LIMIT 1", (sweeps[0]["id"],)).fetchone()
    db.close()
    if not row:
        raise Fail("no stored result in sweep %s" % sweeps[0]["id"])
    w = struct.unpack("<%dd" % len(names), row[1])
    check = {"sweep": sweeps[0]["id"], "run": row[0], "seed": row[2] & (2**64 - 1),
             "stored": json.loads(row[3])}
    check_argv = proxy_argv(bins["train"], sweeps[0]["spec"], dict(zip(names, w)), check["seed"])

    # the proposal at each budget: the last fit of that budget's sweep (on all its runs)
    props = {}  # (strategy, seed, budget) -> (fit, sweep)
    for sw in sweeps:
        fits = [f for f in sw["fits"] if f.get("proposal")]
        for b in [sw["runs"]]:
            use = [f for f in fits if f["runs_used"] <= b]
            if not use:
                raise Fail("sweep %s (%s, seed %d) has no fit with <= %d runs" %
                           (sw["id"], sw["strategy"], sw["seed"], b))
            f = max(use, key=lambda f: (f["runs_used"], f["fit"]))
            if f["runs_used"] != b:
                log("note: sweep %s (%s, seed %d): the last fit at budget %d used %d runs" %
                    (sw["id"], sw["strategy"], sw["seed"], b, f["runs_used"]))
            props[(sw["strategy"], sw["seed"], b)] = (f, sw)

    # scoring: every distinct proposal and the prior, the same fresh seeds for each
    mixes = {"prior": prior}
    for k, f in props.items():
        mixes["%s/s%d/%d" % k] = {n: float(f[0]["proposal"].get(n, 0.0)) for n in names}
    score_seeds = [SCORE_SEED0 + i for i in range(a.score_seeds)]
    tasks = [("check", check_argv)]
    for mk, mw in mixes.items():
        for sd in score_seeds:
            tasks.append(((mk, sd), proxy_argv(bins["train"], sweeps[0]["spec"], mw, sd)))
    t_score = time.monotonic()
    log("scoring %d mixtures x %d seeds (%d proxy runs, %d at once)" %
        (len(mixes), len(score_seeds), len(tasks), a.jobs))
    res = run_pool(tasks, a.jobs, work, a.verbose)
    score_s = time.monotonic() - t_score

    got = res.pop("check")
    diff = max(abs(got[n] - check["stored"][n]) for n in names)
    check["rerun"] = got
    check["max_abs_diff"] = diff
    if not diff <= 1e-5:
        raise Fail("the scorer's proxy run differs from the worker's (run %d of sweep %s: max "
                   "|diff| %.3g): the scoring runs are not the sweeps' proxies" %
                   (check["run"], check["sweep"], diff))

    def obj(losses):
        return statistics.fmean(losses[n] for n in names)

    scores = {mk: [obj(res[(mk, sd)]) for sd in score_seeds] for mk in mixes}
    sobj = {mk: statistics.fmean(v) for mk, v in scores.items()}
    best_key = min(sobj, key=sobj.get)
    best = sobj[best_key]
    prior_obj = sobj["prior"]
    prior_sd = statistics.stdev(scores["prior"]) if len(score_seeds) > 1 else None
    pooled = paired = resid = seed_sd = None
    if len(score_seeds) > 1:
        # a run's noise at a fixed mixture (pooled over the mixtures), and the noise of the
        # difference to the prior at the same scoring seed (common random numbers)
        pooled = math.sqrt(statistics.fmean(statistics.variance(v) for v in scores.values()))
        paired = math.sqrt(statistics.fmean(
            statistics.variance([x - y for x, y in zip(v, scores["prior"])])
            for mk, v in scores.items() if mk != "prior"))
        # two-way decomposition: objective = mixture mean + scoring-seed effect (shared by every
        # mixture, so it cancels in margins and paired differences) + residual
        mu = {mk: statistics.fmean(v) for mk, v in scores.items()}
        ceff = [statistics.fmean(v[k] - mu[mk] for mk, v in scores.items())
                for k in range(len(score_seeds))]
        nm, nk = len(scores), len(score_seeds)
        resid = math.sqrt(sum((v[k] - mu[mk] - ceff[k]) ** 2 for mk, v in scores.items()
                              for k in range(nk)) / max(1, (nm - 1) * (nk - 1)))
        seed_sd = statistics.stdev(ceff)

    out = {"oracle": "corpus", "strategies": {}}
    for st in a.strategies:
        out["strategies"][st] = {}
        for b in a.budgets:
            seeds = list(range(a.seed, a.seed + a.seeds))
            keys = ["%s/s%d/%d" % (st, s, b) for s in seeds]
            o = [sobj[k] for k in keys]
            m, ci, sd = mean_ci(o)
            ent = {"regret": rnd(m - best), "ci95": [rnd(None if x is None else x - best)
                                                     for x in ci],
                   "objective": rnd(m), "objective_ci95": [rnd(x) for x in ci],
                   "objective_sd": rnd(sd),
                   "margin": rnd(m - prior_obj),
                   "margin_ci95": [rnd(None if x is None else x - prior_obj) for x in ci],
                   "beats_prior": sum(1 for x in o if x < prior_obj),
                   "seeds": len(o),
                   "runs_used": statistics.fmean(props[(st, s, b)][0]["runs_used"]
                                                 for s in seeds),
                   "per_seed": []}
            cover = []
            for s, k in zip(seeds, keys):
                f, sw = props[(st, s, b)]
                iv = f.get("predicted_interval")
                inside = None
                if isinstance(iv, list) and len(iv) == 2 and None not in iv:
                    inside = sum(1 for x in scores[k] if iv[0] <= x <= iv[1]) / len(scores[k])
                    cover.append(inside)
                ent["per_seed"].append({
                    "seed": s, "sweep": sw["id"], "fit": f["fit"], "runs_used": f["runs_used"],
                    "model": f.get("model"), "proposal_from": f.get("proposal_from"),
                    "predicted": f.get("predicted"), "predicted_interval": iv,
                    "scoring_runs_inside": inside, "expected_gain": f.get("expected_gain"),
                    "objective": rnd(sobj[k]),
                    "objective_sd": rnd(statistics.stdev(scores[k]) if len(scores[k]) > 1
                                        else None),
                    "proposal": {n: rnd(mixes[k][n], 4) for n in names}})
            # how often a scoring run lands in the fit's 95 % interval of a run at the proposal
            ent["interval_coverage"] = rnd(statistics.fmean(cover), 3) if cover else None
            out["strategies"][st][str(b)] = ent
    comps = {}
    for x, y in [("active", "quadratic"), ("active", "regmix"), ("regmix", "quadratic")]:
        if x not in a.strategies or y not in a.strategies:
            continue
        comps["%s-%s" % (x, y)] = {}
        for b in a.budgets:
            d = [sobj["%s/s%d/%d" % (x, s, b)] - sobj["%s/s%d/%d" % (y, s, b)]
                 for s in range(a.seed, a.seed + a.seeds)]
            m, ci, sd = mean_ci(d)
            comps["%s-%s" % (x, y)][str(b)] = {"diff": rnd(m), "ci95": [rnd(v) for v in ci],
                                               "wins": sum(1 for v in d if v < 0),
                                               "seeds": len(d)}
    wall = time.monotonic() - t_start
    out.update({
        "regret_definition": "objective at the proposal (mean of the scoring runs) minus the "
                             "lowest objective scored in this invocation (any proposal or the "
                             "prior); mean and Student-t 95 % interval over the sweep seeds",
        "comparisons": comps,
        "prior": {"objective": rnd(prior_obj), "sd": rnd(prior_sd),
                  "weights": {n: rnd(prior[n], 4) for n in names}},
        "best": {"objective": rnd(best), "mixture": best_key,
                 "weights": {n: rnd(mixes[best_key][n], 4) for n in names}},
        "noise_sd": rnd(pooled), "prior_noise_sd": rnd(prior_sd),
        "paired_diff_sd": rnd(paired), "scoring_seed_sd": rnd(seed_sd),
        "residual_sd": rnd(resid),
        "scores": {mk: [rnd(x) for x in v] for mk, v in scores.items()},
        "budgets": a.budgets, "seeds": a.seeds, "seed": a.seed,
        "score_seeds": score_seeds, "candidates": a.candidates, "workers": a.workers,
        "sweeps": len(sweeps), "domains": names,
        "proxy": {"model": base["proxy"].get("model"), "train": base["proxy"].get("train")},
        "harness_check": {"sweep": check["sweep"], "run": check["run"],
                          "max_abs_diff": check["max_abs_diff"]},
        "wall_s": round(wall, 1), "sweep_s": round(sweep_s, 1), "score_s": round(score_s, 1),
        "proxy_runs": {"sweeps": sum(sw["status"]["runs"]["done"] for sw in sweeps),
                       "scoring": len(tasks)},
        "workdir": work,
    })
    with open(os.path.join(work, "result.json"), "w") as f:
        json.dump(out, f, indent=1)
    if a.json:
        print(json.dumps(out))
        return 0
    print_tables(out)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rc = 1
    try:
        rc = main(sys.argv[1:])
    except Usage as e:
        log(str(e))
        rc = 2
    except Fail as e:
        log("FAILED: %s" % e)
        rc = 1
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except KeyboardInterrupt:
        rc = 130
    except Exception as e:  # a bug: say what, keep the logs
        import traceback
        traceback.print_exc()
        log("FAILED: %s: %s" % (type(e).__name__, e))
        rc = 1
    finally:
        stop_all()
    sys.exit(rc)
