# lib.sh: helpers shared by the shell tests of regmix-train (sourced; $TRAIN is the binary).
set -u
# The test machine's cores are shared: idle OpenMP threads that spin in barriers (libgomp's
# default) make a run 2x slower there, so the tests let them sleep.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/regmix-train-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
FAILS=0

fail() {
    echo "FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed" >&2
    exit 0
}

# Byte-level shards of two domains in $TMP: licences (prose) and C headers (code).
make_text_shards() {
    "$TRAIN" tokenize --out "$TMP" --name lic /usr/share/common-licenses/* >/dev/null ||
        fail "tokenize lic"
    "$TRAIN" tokenize --out "$TMP" --name code /usr/include/stdio.h /usr/include/stdlib.h \
        /usr/include/string.h /usr/include/unistd.h /usr/include/signal.h /usr/include/time.h \
        /usr/include/math.h /usr/include/fcntl.h /usr/include/glob.h /usr/include/errno.h \
        >/dev/null || fail "tokenize code"
}

# The value of a JSON expression over the last "result" line of a progress file.
result_of() { # file python-expression-on-r
    "$PY" -c "
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
r = [x for x in r if x.get('event') == 'result'][-1]
print($2)" "$1"
}

# REGMIX_TRAIN_ISA forces the CPU kernels' instruction set (tests/train/meson.build runs these
# tests once per path); a path this CPU cannot run skips the test (meson's 77).
if [ -n "${REGMIX_TRAIN_ISA:-}" ] && "$TRAIN" --version | grep -q "cannot run"; then
    echo "SKIP: $("$TRAIN" --version | grep 'cannot run')" >&2
    exit 77
fi
