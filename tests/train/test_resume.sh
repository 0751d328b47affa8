#!/bin/bash
# test_resume: a run killed with SIGKILL and resumed from its checkpoint gives the same
# per-step losses and final validation losses as an uninterrupted run (bit for bit: same seed,
# same thread count, stateless data order); a run stopped by SIGTERM checkpoints the step it
# finished and resumes from exactly there.
TRAIN=$1
. "$(dirname "$0")/lib.sh"
make_text_shards
ARGS=(--layers 2 --heads 2 --dim 32 --ffn 64 --context 32 --vocab 256 --batch 4 --micro-batch 2
    --steps 12 --lr 2e-3 --warmup 3 --threads 2 --checkpoint-every 2 --seed 5
    --train lic="$TMP/lic_train.bin" --train code="$TMP/code_train.bin"
    --valid lic="$TMP/lic_val.bin" --valid code="$TMP/code_val.bin" --weights lic=0.6,code=0.4)
"$TRAIN" "${ARGS[@]}" --checkpoint "$TMP/a" --progress-fd 3 3>"$TMP/a.jsonl" >/dev/null ||
    fail "uninterrupted run"
# Slow the victim down so the kill lands mid-run: a larger eval set at every 2 steps.
"$TRAIN" "${ARGS[@]}" --checkpoint "$TMP/b" --progress-fd 3 --eval-every 2 --eval-batches 16 \
    3>"$TMP/b1.jsonl" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    grep -q '"step":5,' "$TMP/b1.jsonl" 2>/dev/null && break
    sleep 0.05
done
kill -9 $pid
wait $pid
rc=$?
[ $rc -eq 137 ] || fail "victim was not killed mid-run (exit $rc)"
grep -q '"event":"result"' "$TMP/b1.jsonl" && fail "victim finished before the kill"
[ -f "$TMP/b/checkpoint.bin" ] || fail "no checkpoint written before the kill"
"$TRAIN" "${ARGS[@]}" --checkpoint "$TMP/b" --resume --progress-fd 3 3>"$TMP/b2.jsonl" \
    >/dev/null 2>"$TMP/err" || fail "resumed run: $(cat "$TMP/err")"
grep -q "resuming at step" "$TMP/err" || fail "did not resume: $(cat "$TMP/err")"
"$PY" - "$TMP/a.jsonl" "$TMP/b2.jsonl" <<'PYEOF' || fail "resumed run differs"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
sa = {e["step"]: e["loss"] for e in a if e["event"] == "step"}
sb = {e["step"]: e["loss"] for e in b if e["event"] == "step"}
assert sb and max(sb) == 12 and min(sb) > 1, sb
for s, l in sb.items():
    assert abs(sa[s] - l) <= 1e-6 * abs(l), (s, sa[s], l)
ra, rb = a[-1]["losses"], b[-1]["losses"]
assert ra.keys() == rb.keys()
for k in ra:
    assert abs(ra[k] - rb[k]) <= 1e-6 * abs(ra[k]), (k, ra[k], rb[k])
print("resumed from step", min(sb) - 1, "final", rb, file=sys.stderr)
PYEOF
# SIGTERM: the run checkpoints the step it finished, exits 1, and resumes to the same result.
"$TRAIN" "${ARGS[@]}" --checkpoint "$TMP/c" --progress-fd 3 --eval-every 2 --eval-batches 16 \
    3>"$TMP/c1.jsonl" >/dev/null 2>"$TMP/cerr" &
pid=$!
for _ in $(seq 1 600); do
    grep -q '"step":3,' "$TMP/c1.jsonl" 2>/dev/null && break
    sleep 0.05
done
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 1 ] || fail "SIGTERM: exit $rc, want 1"
grep -q "stopped by a signal after step" "$TMP/cerr" || fail "SIGTERM: $(cat "$TMP/cerr")"
"$TRAIN" "${ARGS[@]}" --checkpoint "$TMP/c" --resume --progress-fd 3 3>"$TMP/c2.jsonl" \
    >/dev/null 2>"$TMP/err" || fail "resume after SIGTERM: $(cat "$TMP/err")"
last=$(grep -o '"step":[0-9]*' "$TMP/c1.jsonl" | tail -1 | cut -d: -f2)
grep -q "resuming at step $last " "$TMP/err" || fail "SIGTERM: resumed at $(cat "$TMP/err"), want $last"
[ "$(result_of "$TMP/c2.jsonl" "r['losses']")" = "$(result_of "$TMP/a.jsonl" "r['losses']")" ] ||
    fail "SIGTERM: resumed result differs"
finish
