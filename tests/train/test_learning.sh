#!/bin/bash
# test_learning: trained only on licence text, the licence domain's validation loss ends far
# below the C-header domain's (by > 0.5 nats; both start at ~ln 256 = 5.5), and the progress fd
# carries one step line per step, eval lines at --eval-every, then a result line with the
# steady-state rate, MFU and bits per byte (the vocabulary is bytes).
TRAIN=$1
. "$(dirname "$0")/lib.sh"
make_text_shards
"$TRAIN" --layers 2 --heads 2 --dim 64 --ffn 128 --context 64 --vocab 256 \
    --batch 8 --steps 60 --lr 3e-3 --warmup 5 --schedule cosine --min-lr 3e-4 --threads 2 \
    --train lic="$TMP/lic_train.bin" --train code="$TMP/code_train.bin" \
    --valid lic="$TMP/lic_val.bin" --valid code="$TMP/code_val.bin" \
    --weights lic=1,code=0 --eval-every 20 --eval-batches 4 --progress-fd 3 \
    3>"$TMP/progress.jsonl" >"$TMP/stdout" || fail "training exited $?"
"$PY" - "$TMP/progress.jsonl" <<'PYEOF' || fail "progress lines"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
steps = [e for e in ev if e["event"] == "step"]
evals = [e for e in ev if e["event"] == "eval"]
assert [e["step"] for e in steps] == list(range(1, 61)), "one step line per step"
assert all(set(e) >= {"step", "loss", "lr", "tokens", "tokens_per_second"} for e in steps)
assert [e["step"] for e in evals] == [20, 40], evals
assert ev[-1]["event"] == "result" and set(ev[-1]) >= {"losses", "tokens", "seconds",
                                                     "tokens_per_second"}
assert steps[-1]["tokens"] == 60 * 8 * 64
# What users compare: steady state, MFU against the measured sgemm peak, bits per byte (bytes).
import math
r = ev[-1]
assert r["steady_tokens_per_second"] > 0 and r["gemm_peak_gflops"] > 0, r
assert abs(r["mfu"] - r["model_gflops"] / r["gemm_peak_gflops"]) < 1e-6 and r["mfu"] > 0, r
assert r["kernels"] in ("avx512", "avx2", "generic") and r["gemm"] in ("onednn", "openblas"), r
assert set(r["bits_per_byte"]) == set(r["losses"]) == {"lic", "code"}, r
for k, l in r["losses"].items():
    assert abs(r["bits_per_byte"][k] - l / math.log(2)) < 1e-6 * l, (k, l, r["bits_per_byte"])
assert abs(steps[0]["lr"] - 3e-3 / 5) < 1e-9 and abs(steps[-1]["lr"] - 3e-4) < 1e-5
PYEOF
lic=$(result_of "$TMP/progress.jsonl" "r['losses']['lic']")
code=$(result_of "$TMP/progress.jsonl" "r['losses']['code']")
echo "validation loss: lic $lic code $code" >&2
"$PY" -c "import sys; sys.exit(0 if $lic < 3.3 and $lic < $code - 0.5 else 1)" ||
    fail "lic loss $lic is not far below code loss $code"
grep -q '"event":"result"' "$TMP/stdout" || fail "result line on stdout"
finish
