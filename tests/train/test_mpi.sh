#!/bin/bash
# test_mpi: 2 MPI ranks (1 micro-batch of 2 each) and 1 process (2 micro-batches of 2) on the same
# global batch of 4 give the same step losses and validation losses within 1e-4 relative (the
# gradient sums differ only in float summation order).
TRAIN=$1
MPIRUN=$2
. "$(dirname "$0")/lib.sh"
make_text_shards
ARGS=(--layers 2 --heads 2 --dim 32 --ffn 64 --context 32 --vocab 256 --batch 4 --micro-batch 2
    --steps 8 --lr 3e-3 --warmup 2 --threads 1 --eval-batches 4
    --train lic="$TMP/lic_train.bin" --train code="$TMP/code_train.bin"
    --valid lic="$TMP/lic_val.bin" --valid code="$TMP/code_val.bin" --weights lic=0.5,code=0.5)
"$TRAIN" "${ARGS[@]}" --progress-fd 1 >"$TMP/one.jsonl" || fail "single process"
OMP_NUM_THREADS=1 "$MPIRUN" --allow-run-as-root --oversubscribe -np 2 \
    "$TRAIN" "${ARGS[@]}" --progress-fd 1 >"$TMP/two.jsonl" 2>"$TMP/err" ||
    fail "mpirun -np 2: $(cat "$TMP/err")"
"$PY" - "$TMP/one.jsonl" "$TMP/two.jsonl" <<'PYEOF' || fail "2 ranks differ from 1 process"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
b = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
la = [e["loss"] for e in a if e["event"] == "step"]
lb = [e["loss"] for e in b if e["event"] == "step"]
assert len(la) == 8 and len(lb) == 8, (len(la), len(lb))  # rank 0 reports alone
for x, y in zip(la, lb):
    assert abs(x - y) <= 1e-4 * abs(x), (x, y)
ra = [e for e in a if e["event"] == "result"][-1]["losses"]
rb = [e for e in b if e["event"] == "result"][-1]["losses"]
for k in ra:
    assert abs(ra[k] - rb[k]) <= 1e-4 * abs(ra[k]), (k, ra[k], rb[k])
assert la[-1] < la[0] - 0.1, "it learns"
print("1 process", la[-1], ra, "2 ranks", lb[-1], rb, file=sys.stderr)
PYEOF
finish
