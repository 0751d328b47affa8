#!/bin/bash
# test_resume: a run killed with SIGKILL and resumed from its checkpoint gives the same
# per-step losses and final validation losses as an uninterrupted run (bit for bit: same seed,
# same thread count, stateless data order); a run stopped by SIGTERM checkpoints the step it
# finished and resumes from exactly there.
TRAIN=$1
. "$(dirname "$0")/lib.sh"
make_text_shards
ARGS=(--layers 2 --heads 2 --dim 32 --ffn 64 --context 32 --vocab 256 --batch 4 --micro-batch 2
    --steps 24 --lr 2e-3 --warmup 3 --threads 2 --checkpoint-every 2 --seed 5
    --train lic="$TMP/lic_train.bin" --train code="$TMP/code_train.bin"
    --valid lic="$TMP/lic_val.bin" --valid code="$TMP/code_val.bin" --weights lic=0.6,code=0.4)
"$TRAIN" "${ARGS[@]}" --checkpoint "$TMP/a" --progress-fd 3 3>"$TMP/a.jsonl" >/dev/null ||
    fail "uninterrupted run"
# The victim: its progress lines go through a pipe to a reader that sends the signal as soon as
# it sees the given step, so the run is stopped mid-way however fast the machine is.
victim() { # signal step checkpoint-dir progress-file
    "$PY" - "$@" "$TRAIN" "${ARGS[@]}" <<'PYEOF'
import json, os, signal, subprocess, sys
sig, at, ck, out, argv = getattr(signal, sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
r, w = os.pipe()
p = subprocess.Popen(argv + ["--checkpoint", ck, "--progress-fd", str(w)], pass_fds=[w],
                     stdout=subprocess.DEVNULL, stderr=open(out + ".err", "w"))
os.close(w)
sent = False
with os.fdopen(r) as f, open(out, "w") as log:
    for line in f:  # read to the end, so the trainer never writes to a closed pipe
        log.write(line)
        if not sent and json.loads(line).get("step") == at:
            p.send_signal(sig)
            sent = True
rc = p.wait()
sys.exit(128 - rc if rc < 0 else rc)
PYEOF
}
victim SIGKILL 5 "$TMP/b" "$TMP/b1.jsonl"
rc=$?
[ $rc -eq 137 ] || fail "victim was not killed mid-run (exit $rc)"
"$TRAIN" "${ARGS[@]}" --checkpoint "$TMP/b" --resume --progress-fd 3 3>"$TMP/b2.jsonl" \
    >/dev/null 2>"$TMP/err" || fail "resumed run: $(cat "$TMP/err")"
grep -q "resuming at step" "$TMP/err" || fail "did not resume: $(cat "$TMP/err")"
"$PY" - "$TMP/a.jsonl" "$TMP/b2.jsonl" <<'PYEOF' || fail "resumed run differs"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
sa = {e["step"]: e["loss"] for e in a if e["event"] == "step"}
sb = {e["step"]: e["loss"] for e in b if e["event"] == "step"}
assert sb and max(sb) == 24 and 1 < min(sb) < 24, sb
for s, l in sb.items():
    assert abs(sa[s] - l) <= 1e-6 * abs(l), (s, sa[s], l)
ra, rb = a[-1]["losses"], b[-1]["losses"]
assert ra.keys() == rb.keys()
for k in ra:
    assert abs(ra[k] - rb[k]) <= 1e-6 * abs(ra[k]), (k, ra[k], rb[k])
print("resumed from step", min(sb) - 1, "final", rb, file=sys.stderr)
PYEOF
# SIGTERM: the run checkpoints the step it finished, exits 1, and resumes to the same result.
victim SIGTERM 3 "$TMP/c" "$TMP/c1.jsonl"
rc=$?
[ $rc -eq 1 ] || fail "SIGTERM: exit $rc, want 1"
grep -q "stopped by a signal after step" "$TMP/c1.jsonl.err" || fail "SIGTERM: $(cat "$TMP/c1.jsonl.err")"
"$TRAIN" "${ARGS[@]}" --checkpoint "$TMP/c" --resume --progress-fd 3 3>"$TMP/c2.jsonl" \
    >/dev/null 2>"$TMP/err" || fail "resume after SIGTERM: $(cat "$TMP/err")"
last=$(grep -o 'after step [0-9]*' "$TMP/c1.jsonl.err" | cut -d' ' -f3)
grep -q "resuming at step $last " "$TMP/err" || fail "SIGTERM: resumed at $(cat "$TMP/err"), want $last"
[ "$(result_of "$TMP/c2.jsonl" "r['losses']")" = "$(result_of "$TMP/a.jsonl" "r['losses']")" ] ||
    fail "SIGTERM: resumed result differs"
finish
