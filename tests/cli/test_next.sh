#!/bin/bash
# tests/cli/test_next.sh REGMIXCTL: `regmixctl next` on the first 64 of the RegMix paper's
# training runs: --help/--version, K mixtures that sum to 1 and keep the epoch bound (15 x the
# prior share), a proposal whose predicted objective lies inside its interval, the same output
# for the same seed, the CSV form, and exit 2 with a message for bad usage and bad input.
set -u
REGMIXCTL=${1:?usage: test_next.sh REGMIXCTL}
PAPER=${REGMIX_PAPER_DIR:?REGMIX_PAPER_DIR not set}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/regmix_cli_next.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

"$REGMIXCTL" next --help >"$TMP/help" 2>&1 || fail "--help exit $?"
for w in --mixtures --losses --target --n --prior --model --acquisition Example; do
    grep -q -- "$w" "$TMP/help" || fail "--help does not mention $w"
done
"$REGMIXCTL" next --version | grep -q "^regmixctl [0-9]" || fail "--version"

head -65 "$PAPER/train_mixture_1m.csv" >"$TMP/mix.csv"
T=metric/the_pile_pile_cc_val_loss
ARGS=(--mixtures "$TMP/mix.csv" --losses "$PAPER/train_pile_loss_1m.csv" --target "$T"
    --prior "$PAPER/prior.csv" --n 6 --candidates 2048 --seed 3)
"$REGMIXCTL" next "${ARGS[@]}" --json >"$TMP/a.json" 2>"$TMP/err" || fail "next --json exit $? $(cat "$TMP/err")"
"$REGMIXCTL" next "${ARGS[@]}" --json >"$TMP/b.json" 2>/dev/null || fail "next again exit $?"
cmp -s "$TMP/a.json" "$TMP/b.json" || fail "same seed gave different answers"
"$PY" - "$TMP/a.json" "$PAPER/prior.csv" <<'PYEOF' || fail "next --json contents"
import csv, json, sys
doc = json.load(open(sys.argv[1]))
prior = {r["domain"]: float(r["weight"]) for r in csv.DictReader(open(sys.argv[2]))}
tot = sum(prior.values())
bad = []
if doc["runs"] != 64: bad.append("runs %r" % doc["runs"])
if len(doc["next"]) != 6: bad.append("%d mixtures" % len(doc["next"]))
for i, m in enumerate(doc["next"] + [doc["proposal"]["mixture"]]):
    if set(m) != set(prior): bad.append("mixture %d: columns %s" % (i, sorted(m)))
    if abs(sum(m.values()) - 1) > 1e-6: bad.append("mixture %d sums to %r" % (i, sum(m.values())))
    for k, v in m.items():
        if v < 0 or v > min(1, 15 * prior[k] / tot) + 1e-6:
            bad.append("mixture %d: %s = %r over the bound" % (i, k, v))
p = doc["proposal"]
lo, hi = p["interval"]
if not (lo < p["predicted"] < hi): bad.append("interval %r %r %r" % (lo, p["predicted"], hi))
if not (4 < p["predicted"] < 7): bad.append("predicted %r" % p["predicted"])
if p["model"] != "gp": bad.append("model %r" % p["model"])
if p["mixture"]["train_the_pile_pile_cc"] < 0.3: bad.append("pile_cc %r" % p["mixture"]["train_the_pile_pile_cc"])
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYEOF

# CSV: header and K rows, the proposal on stderr; another model and acquisition
"$REGMIXCTL" next "${ARGS[@]}" --model loglinear --acquisition thompson >"$TMP/n.csv" 2>"$TMP/err" ||
    fail "next csv exit $? $(cat "$TMP/err")"
head -1 "$TMP/n.csv" | grep -q "^index,train_the_pile_arxiv," || fail "csv header: $(head -1 "$TMP/n.csv")"
[ "$(wc -l <"$TMP/n.csv")" -eq 7 ] || fail "csv lines: $(wc -l <"$TMP/n.csv")"
grep -q "proposal (loglinear, 64 runs)" "$TMP/err" || fail "csv stderr: $(cat "$TMP/err")"

# bad usage and input: exit 2 with a message
printf 'index,metric/the_pile_pile_cc_val_loss\n1,5.0\n' >"$TMP/short_loss.csv"
for args in "--n 3" "${ARGS[*]} --n 0" "${ARGS[*]} --model bogus" "${ARGS[*]} --acquisition x" \
    "${ARGS[*]} --repeats -1" "${ARGS[*]} --max-epochs 0.01" "${ARGS[*]} extra" \
    "--mixtures $TMP/missing.csv --losses $TMP/short_loss.csv --target $T --n 2" \
    "--mixtures $TMP/mix.csv --losses $TMP/short_loss.csv --target $T --n 2"; do
    # shellcheck disable=SC2086
    "$REGMIXCTL" next $args >/dev/null 2>"$TMP/err"
    rc=$?
    [ "$rc" -eq 2 ] || fail "'next $args' exit $rc"
    [ -s "$TMP/err" ] || fail "'next $args' printed no error"
done

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "ok"
