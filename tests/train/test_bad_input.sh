#!/bin/bash
# test_bad_input: bad shards (wrong magic, truncated, token >= vocab), a glob that matches
# nothing, weights for an unknown domain, bad flags and unknown REGMIX_TRAIN_ISA/GEMM values exit 2
# with a message naming the culprit.
TRAIN=$1
. "$(dirname "$0")/lib.sh"
"$PY" - "$TMP" <<'PYEOF'
import struct, sys
d = sys.argv[1]
def shard(name, magic=20240520, count=None, tokens=range(200)):
    toks = list(tokens)
    hdr = [magic, 1, len(toks) if count is None else count] + [0] * 253
    with open(f"{d}/{name}", "wb") as f:
        f.write(struct.pack("<256i", *hdr) + struct.pack(f"<{len(toks)}H", *toks))
shard("good.bin")
shard("badmagic.bin", magic=1234)
shard("truncated.bin", count=5000)
shard("bigtoken.bin", tokens=[1, 2, 300, 4] * 50)
PYEOF
ARGS=(--layers 1 --heads 1 --dim 8 --ffn 8 --context 8 --vocab 256 --batch 2 --steps 1)
expect2() { # what needle args...
    local what=$1 needle=$2
    shift 2
    "$TRAIN" "${ARGS[@]}" "$@" 2>"$TMP/err" >/dev/null
    local rc=$?
    [ $rc -eq 2 ] || fail "$what: exit $rc, want 2"
    grep -qF -- "$needle" "$TMP/err" || fail "$what: stderr does not name '$needle': $(cat "$TMP/err")"
}
expect2 "wrong magic" "$TMP/badmagic.bin" --train a="$TMP/badmagic.bin"
expect2 "truncated" "$TMP/truncated.bin" --train a="$TMP/truncated.bin"
expect2 "token >= vocab" "$TMP/bigtoken.bin" --train a="$TMP/good.bin" --valid a="$TMP/bigtoken.bin"
expect2 "empty glob" "$TMP/nothing-*.bin" --train a="$TMP/nothing-*.bin"
expect2 "unknown domain" "'zzz'" --train a="$TMP/good.bin" --weights a=1,zzz=2
expect2 "unknown domain (json)" "'zzz'" --train a="$TMP/good.bin" --weights-json '{"zzz": 1}'
expect2 "zero mixture" "zero" --train a="$TMP/good.bin" --weights a=0
expect2 "unknown flag" "bogus" --train a="$TMP/good.bin" --bogus 1
expect2 "bad number" "--lr" --train a="$TMP/good.bin" --lr fast
expect2 "missing shape" "--layers" --train a="$TMP/good.bin" --layers 0
REGMIX_TRAIN_ISA=sse9 expect2 "unknown kernel path" "REGMIX_TRAIN_ISA=sse9" --train a="$TMP/good.bin"
REGMIX_TRAIN_GEMM=mkl expect2 "unknown gemm library" "REGMIX_TRAIN_GEMM=mkl" --train a="$TMP/good.bin"
# The good shard trains, as raw uint16 too (its header then reads as tokens < 256? no: use a raw file).
"$PY" -c "
import struct,sys; open(sys.argv[1],'wb').write(struct.pack('<300H', *[i % 256 for i in range(300)]))" \
    "$TMP/raw.u16"
"$TRAIN" "${ARGS[@]}" --train a="$TMP/good.bin" --train b=raw:"$TMP/raw.u16" \
    --valid a="$TMP/good.bin" >/dev/null 2>"$TMP/err" || fail "good shards: $(cat "$TMP/err")"
"$TRAIN" --help | grep -q -- "--progress-fd" || fail "--help"
"$TRAIN" --version | grep -q "regmix-train" || fail "--version"
finish
