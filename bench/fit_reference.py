#!/usr/bin/python3
"""fit_reference: the RegMix fit + simulation of `regmixctl fit`, written the usual Python way.

It is the baseline bench/fit_bench.sh compares regmixctl against: the same data (mixtures joined
with losses on `index`, rows renormalised to sum to 1), the same model (XGBoost hist trees with
LightGBM's defaults as the paper used them: 1000 trees, learning rate 0.01, 31 leaves, min child
weight 20, no L2 on leaves, base score = mean target), the same simulation (N candidates from
Dirichlet(prior), the mean of the top_k lowest predicted) and the same thread count. Run it with
/usr/bin/python3, which has Debian's numpy, scipy and python3-xgboost.

Prints one JSON object: the proposal, the test metrics if a test set is given, and the seconds
each phase took.
"""
import argparse
import csv
import json
import sys
import time

T0 = time.perf_counter()

import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402
import xgboost as xgb  # noqa: E402


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def load(mix_path, loss_path, target, join="index"):
    mh, mrows = read_csv(mix_path)
    lh, lrows = read_csv(loss_path)
    mk, lk = mh.index(join), lh.index(join)
    domains = [h for i, h in enumerate(mh) if i != mk]
    losses = {r[lk]: r for r in lrows}
    X, y = [], []
    tcol = lh.index(target)
    for r in mrows:
        lr = losses[r[mk]]
        X.append([float(v) for i, v in enumerate(r) if i != mk])
        y.append(float(lr[tcol]))
    X = np.array(X)
    X /= X.sum(axis=1, keepdims=True)
    return domains, X, np.array(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mixtures", required=True)
    ap.add_argument("--losses", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--test-mixtures")
    ap.add_argument("--test-losses")
    ap.add_argument("--prior")
    ap.add_argument("--simulate", type=int, default=1000000)
    ap.add_argument("--top-k", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fit-threads", type=int, default=0,
                    help="XGBoost threads for the fit (default: --threads; regmixctl uses 1 "
                         "below 20k rows)")
    a = ap.parse_args()

    t_load = time.perf_counter()
    domains, X, y = load(a.mixtures, a.losses, a.target)
    t_fit = time.perf_counter()
    params = {
        "objective": "reg:squarederror", "tree_method": "hist", "grow_policy": "lossguide",
        "max_leaves": 31, "max_depth": 0, "min_child_weight": 20, "eta": 0.01,
        "lambda": 0.0, "max_bin": 256, "base_score": float(y.mean()), "seed": a.seed, "nthread": a.fit_threads or a.threads,
        "verbosity": 0,
    }
    booster = xgb.train(params, xgb.DMatrix(X, label=y, nthread=a.threads), num_boost_round=1000)
    t_fit = time.perf_counter() - t_fit

    out = {"model": "gbdt", "target": a.target, "train_runs": len(y)}
    if a.test_mixtures:
        _, Xt, yt = load(a.test_mixtures, a.test_losses, a.target)
        p = booster.predict(xgb.DMatrix(Xt, nthread=a.threads))
        out["test"] = {"runs": len(yt),
                       "spearman": float(scipy.stats.spearmanr(yt, p).correlation),
                       "pearson": float(scipy.stats.pearsonr(yt, p)[0]),
                       "mse": float(np.mean((yt - p) ** 2))}

    t_sim = time.perf_counter()
    if a.prior:
        _, prows = read_csv(a.prior)
        pw = dict((r[0], float(r[1])) for r in prows)
        prior = np.array([pw[d] for d in domains])
    else:
        prior = X.mean(axis=0)
    rng = np.random.default_rng(a.seed)
    t_draw = time.perf_counter()
    cand = rng.dirichlet(prior, a.simulate)
    t_draw = time.perf_counter() - t_draw
    t_pred = time.perf_counter()
    pred = booster.inplace_predict(cand)
    t_pred = time.perf_counter() - t_pred
    top = np.argpartition(pred, a.top_k)[: a.top_k]
    weights = cand[top].mean(axis=0)
    t_sim = time.perf_counter() - t_sim
    out["proposal"] = {"simulated": a.simulate, "top_k": a.top_k,
                       "predicted": float(pred[top].mean()),
                       "weights": dict(zip(domains, map(float, weights)))}
    out["seconds"] = {"import": t_load - T0, "fit": t_fit, "simulate": t_sim, "draw": t_draw,
                      "predict": t_pred, "total": time.perf_counter() - T0}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
