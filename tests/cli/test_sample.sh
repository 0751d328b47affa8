#!/bin/bash
# tests/cli/test_sample.sh REGMIXCTL: runs the built `regmixctl sample` on the spec fixtures and
# checks its contract: --help/--version exit 0, the same seed gives an identical file, another
# seed a different one, every row sums to 1 (within 1e-12) with the requested row count, and a
# bad spec or bad option exits 2 with file:line:col on stderr.
set -u
REGMIXCTL=${1:?usage: test_sample.sh REGMIXCTL}
SRC=${REGMIX_SOURCE_ROOT:?REGMIX_SOURCE_ROOT not set}
SPEC=$SRC/tests/fixtures/spec_full.yaml
TMP=$(mktemp -d "${TMPDIR:-/tmp}/regmix_cli_sample.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

"$REGMIXCTL" sample --help >"$TMP/help" 2>&1 || fail "--help exit $?"
grep -q -- "--spec" "$TMP/help" || fail "--help does not describe --spec"
grep -q "Example" "$TMP/help" || fail "--help has no example"
"$REGMIXCTL" sample --version >"$TMP/version" || fail "--version exit $?"
grep -q "^regmixctl [0-9]" "$TMP/version" || fail "--version output: $(cat "$TMP/version")"

# Same seed: identical bytes, to a file and to stdout.
"$REGMIXCTL" sample --spec "$SPEC" --runs 200 --seed 7 --out "$TMP/a.csv" || fail "sample a exit $?"
"$REGMIXCTL" sample --spec "$SPEC" --runs 200 --seed 7 --out "$TMP/b.csv" || fail "sample b exit $?"
"$REGMIXCTL" sample --spec "$SPEC" --runs 200 --seed 7 >"$TMP/c.csv" || fail "sample c exit $?"
cmp -s "$TMP/a.csv" "$TMP/b.csv" || fail "same seed gave different files"
cmp -s "$TMP/a.csv" "$TMP/c.csv" || fail "--out and stdout differ"
"$REGMIXCTL" sample --spec "$SPEC" --runs 200 --seed 8 --out "$TMP/d.csv" || fail "sample d exit $?"
cmp -s "$TMP/a.csv" "$TMP/d.csv" && fail "different seeds gave the same file"
for f in "$TMP"/*.tmp.*; do [ -e "$f" ] && fail "temporary file left behind: $f"; done

# Header, row count, run numbers, sums.
head -1 "$TMP/a.csv" | grep -qx "run,pile_cc,github,arxiv,ubuntu_irc" ||
    fail "header: $(head -1 "$TMP/a.csv")"
awk -F, 'NR > 1 {
        if ($1 != NR - 2) { print "line " NR ": run " $1; bad = 1 }
        if (NF != 5) { print "line " NR ": " NF " fields"; bad = 1 }
        s = 0
        for (i = 2; i <= NF; i++) { if ($i < 0) bad = 1; s += $i }
        d = s - 1; if (d < 0) d = -d
        if (d > 1e-12) { print "line " NR ": sum " s; bad = 1 }
        rows++
    }
    END { if (rows != 200) { print rows " rows"; bad = 1 } exit bad }' "$TMP/a.csv" ||
    fail "rows of a.csv"

# Defaults from the spec: 64 runs.
"$REGMIXCTL" sample --spec "$SPEC" >"$TMP/e.csv" || fail "sample e exit $?"
[ "$(wc -l <"$TMP/e.csv")" -eq 65 ] || fail "default runs: $(wc -l <"$TMP/e.csv") lines"

# A bad spec: exit 2, one line naming file:line:col and the problem.
BAD=$SRC/tests/fixtures/bad/tokens_negative.yaml
"$REGMIXCTL" sample --spec "$BAD" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 2 ] || fail "bad spec exit $rc"
grep -qF "$BAD:7:13: domains[2].tokens: must be positive" "$TMP/err" ||
    fail "bad spec stderr: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "bad spec: more than one line on stderr"
[ -s "$TMP/out" ] && fail "bad spec wrote to stdout"

# Bad usage: exit 2.
for args in "" "--spec $SPEC --runs 0" "--spec $SPEC --runs x" "--spec $SPEC --seed -1" \
    "--spec $SPEC --bogus" "--spec $SPEC extra" "--spec $TMP/missing.yaml"; do
    # shellcheck disable=SC2086
    "$REGMIXCTL" sample $args >/dev/null 2>"$TMP/err"
    rc=$?
    [ "$rc" -eq 2 ] || fail "'sample $args' exit $rc"
    [ -s "$TMP/err" ] || fail "'sample $args' printed no error"
done

# A spec whose bound no mixture can meet: exit 2 with the reason.
sed 's/max_epochs: 10/max_epochs: 0.001/' "$SPEC" >"$TMP/tight.yaml"
"$REGMIXCTL" sample --spec "$TMP/tight.yaml" --runs 2 >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" -eq 2 ] || fail "tight bound exit $rc"
grep -q "over the epoch bound" "$TMP/err" || fail "tight bound stderr: $(cat "$TMP/err")"

if [ "$failures" -ne 0 ]; then
    echo "$failures failures" >&2
    exit 1
fi
echo "ok" >&2
exit 0
