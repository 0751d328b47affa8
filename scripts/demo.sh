#!/usr/bin/env bash
# The main job of regmix on a new machine. Sets up (packages, build), then runs RegMix's offline
# regression on the authors' released proxy results (../shared/data/regmix-paper): fits GBDT on the
# 512 training runs, scores it on the 256 held-out runs, simulates 1,000,000 candidate mixtures and
# prints the proposed mixture. Output lands in $REGMIX_DEMO_DIR (default ./demo).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo_dir=${REGMIX_DEMO_DIR:-$root/demo}
paper=${REGMIX_PAPER_DIR:-$root/../shared/data/regmix-paper}
mkdir -p "$demo_dir"

scripts/setup.sh build

ctl=build/cli/regmixctl
echo "== regmix: fit mixture -> Pile-CC loss on the RegMix 1M proxy runs, propose a mixture =="
"$ctl" fit \
  --mixtures "$paper/train_mixture_1m.csv" --losses "$paper/train_pile_loss_1m.csv" \
  --test-mixtures "$paper/test_mixture_1m.csv" --test-losses "$paper/test_pile_loss_1m.csv" \
  --target metric/the_pile_pile_cc_val_loss --model gbdt \
  --prior "$paper/prior.csv" --simulate 1000000 --top-k 100 --seed 42 \
  --out "$demo_dir/mixture.yaml"
"$ctl" fit \
  --mixtures "$paper/train_mixture_1m.csv" --losses "$paper/train_pile_loss_1m.csv" \
  --test-mixtures "$paper/test_mixture_1m.csv" --test-losses "$paper/test_pile_loss_1m.csv" \
  --target metric/the_pile_pile_cc_val_loss --model gbdt \
  --prior "$paper/prior.csv" --simulate 1000000 --top-k 100 --seed 42 --json >"$demo_dir/summary.json"
echo "== wrote $demo_dir/mixture.yaml and $demo_dir/summary.json =="
