#!/bin/bash
# tests/cli/test_search_bench.sh SEARCH_BENCH: the argument handling of `search_bench --oracle
# corpus` (bench/search_corpus.py, which search_bench execs): --help and --version exit 0, bad
# usage exits 2 with a message naming the option, before anything is started or written. The
# benchmark itself (real sweeps, ~30 minutes) is not run here (bench/README.md, "Search").
set -u
SB=${1:?usage: test_search_bench.sh SEARCH_BENCH}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/regmix_cli_search.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

"$SB" --oracle corpus --help >"$TMP/help" 2>&1 || fail "--oracle corpus --help exit $?"
for want in --budgets --seeds --score-seeds --strategies quadratic regmix active Example; do
    grep -q -- "$want" "$TMP/help" || fail "--oracle corpus --help does not mention $want"
done
"$SB" --oracle=corpus --version >"$TMP/version" 2>&1 || fail "--oracle=corpus --version exit $?"
grep -q "^search_corpus [0-9]" "$TMP/version" || fail "--version: $(cat "$TMP/version")"
"$SB" --help | grep -q -- "--oracle corpus" ||
    fail "search_bench --help does not name the corpus oracle"

# bad usage: exit 2, the option named on stderr, nothing started (the work folder stays absent)
bad() { # EXPECTED-WORD ARGS...
    local want=$1
    shift
    REGMIX_BENCH_DIR=$TMP/work "$SB" --oracle corpus "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    [ "$rc" = 2 ] || fail "'$*': exit $rc, want 2 ($(tail -n 1 "$TMP/err"))"
    grep -q -- "$want" "$TMP/err" ||
        fail "'$*': stderr does not name $want: $(tail -n 1 "$TMP/err")"
    [ -s "$TMP/out" ] && fail "'$*': printed on stdout: $(head -c 200 "$TMP/out")"
    [ -e "$TMP/work" ] && fail "'$*': created the work folder"
}
bad --budgets --budgets 24,x
bad --budgets --budgets 2
bad --budgets --budgets 8 # below the active strategy's first design
bad --seeds --seeds 0
bad --strategies --strategies quadratic,nope
bad --score-seeds --score-seeds 0
bad unrecognized --no-such-option
bad "was not built" --build "$TMP/no-build"
bad --demo-spec --demo-spec "$TMP/missing.yaml"
printf 'sampling: [1, 2\n' >"$TMP/broken.yaml"
bad "not valid YAML" --demo-spec "$TMP/broken.yaml"
bad --render --render "$TMP/missing.json"

# the paper oracle's own checks still answer
"$SB" --oracle nope >/dev/null 2>"$TMP/err"
[ $? = 2 ] || fail "--oracle nope: want exit 2"
grep -q "corpus" "$TMP/err" || fail "--oracle nope: the message does not list corpus"

[ "$failures" = 0 ] || exit 1
echo "search_bench --oracle corpus: argument handling ok"
