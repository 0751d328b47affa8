#!/bin/bash
# test_config: --config FILE.yaml with the same names as the flags (lists and mappings for
# train/valid/weights) gives the same run as the flags, bit for bit; later flags override it;
# a YAML error names the file and exits 2.
TRAIN=$1
. "$(dirname "$0")/lib.sh"
make_text_shards
"$TRAIN" --layers 1 --heads 2 --dim 16 --ffn 32 --context 32 --vocab 256 --batch 4 --steps 3 \
    --lr 1e-3 --warmup 1 --schedule cosine --threads 2 --seed 9 \
    --train lic="$TMP/lic_train.bin" --train code="$TMP/code_train.bin" \
    --valid lic="$TMP/lic_val.bin" --valid code="$TMP/code_val.bin" \
    --weights lic=0.3,code=0.7 --progress-fd 3 3>"$TMP/flags.jsonl" >/dev/null || fail "flags run"
cat >"$TMP/run.yaml" <<YAML
layers: 1
heads: 2
dim: 16
ffn: 32
context: 32
vocab: 256
batch: 4
steps: 99
lr: 1e-3
warmup: 1
schedule: cosine
threads: 2
seed: 9
train:
  lic: $TMP/lic_train.bin
  code: $TMP/code_train.bin
valid:
  - lic=$TMP/lic_val.bin
  - code=$TMP/code_val.bin
weights: {lic: 0.3, code: 0.7}
YAML
"$TRAIN" --config "$TMP/run.yaml" --steps 3 --progress-fd 3 3>"$TMP/yaml.jsonl" >/dev/null ||
    fail "yaml run"
"$PY" - "$TMP/flags.jsonl" "$TMP/yaml.jsonl" <<'PYEOF' || fail "yaml run differs from flags run"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
strip = lambda ev: [(e["event"], e.get("step"), e.get("loss"), e.get("lr"), e.get("losses"))
                    for e in ev]
assert len(a) == 4 and strip(a) == strip(b), (strip(a), strip(b))
PYEOF
printf 'layers: [1\n' >"$TMP/broken.yaml"
"$TRAIN" --config "$TMP/broken.yaml" 2>"$TMP/err" >/dev/null
[ $? -eq 2 ] || fail "broken yaml: want exit 2"
grep -qF "$TMP/broken.yaml" "$TMP/err" || fail "broken yaml: stderr does not name the file"
printf 'layerz: 1\n' >"$TMP/unknown.yaml"
"$TRAIN" --config "$TMP/unknown.yaml" 2>"$TMP/err" >/dev/null
[ $? -eq 2 ] || fail "unknown key: want exit 2"
grep -q "layerz" "$TMP/err" || fail "unknown key: not named"
finish
