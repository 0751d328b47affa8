#!/bin/bash
# CURVE end to end (docs/protocol.md): keys from `regmixctl keygen`; a coordinator with
# --curve-secret-key and --curve-allow; workers with allowed keys (options, or the environment)
# complete a synthetic sweep, and another after a coordinator restart; regmixctl with allowed keys gets `list`; a client without keys,
# with a key pair not on the allow list, with only the server's key, or with a wrong server key
# gets no answer and exits 1 after its --timeout with a message saying which of these it is; a worker with a key not on the list is never
# admitted, and workers that are refused (key not allowed, wrong server key, no keys) log why;
# bad key files are usage errors (exit 2).
. "$(dirname "$0")/lib.sh" "$@"

K=$T/keys
mkdir -p "$K"
for who in coordinator alice bob mallory; do
    "$CTL_BIN" keygen --out "$K/$who" >"$K/$who.stdout" 2>/dev/null || fail "keygen $who"
done
expect_eq "keygen prints the public key" "$(cat "$K/alice.stdout")" "$(cat "$K/alice.pub")"
expect_eq "secret key file mode" "$(stat -c %a "$K/alice.key")" 600
expect_eq "public key length" "$(head -n 1 "$K/alice.pub" | tr -d '\n' | wc -c)" 40
[ "$(cat "$K/alice.pub")" != "$(cat "$K/bob.pub")" ] || fail "two keygens gave the same key"
"$CTL_BIN" keygen --out "$K/alice" >/dev/null 2>"$T/keygen.err"
expect_eq "keygen over existing files exits" $? 2
grep -q 'File exists' "$T/keygen.err" || fail "keygen clash message: $(cat "$T/keygen.err")"
"$CTL_BIN" keygen --out "$K/carol" --json | jq -e '.public_key | length == 40' >/dev/null ||
    fail "keygen --json"
{
    echo "# workers and operators allowed on this coordinator"
    cat "$K/alice.pub"
    echo
    cat "$K/bob.pub"
} >"$K/allow.txt"

# lib.sh's ctl (and start_coord's readiness probe) use the environment: bob's keys.
export REGMIX_CURVE_SERVER_KEY=$K/coordinator.pub
export REGMIX_CURVE_SECRET_KEY=$K/bob.key
start_coord --curve-secret-key "$K/coordinator.key" --curve-allow "$K/allow.txt"

plain() {
    env -u REGMIX_CURVE_SERVER_KEY -u REGMIX_CURVE_SECRET_KEY "$CTL_BIN" --coordinator "$CEP" "$@"
}

# Bad key files: usage errors, before any connection.
echo "not a key" >"$K/garbage.pub"
plain --curve-server-key "$K/garbage.pub" list >/dev/null 2>"$T/bad.err"
expect_eq "regmixctl with a malformed key file exits" $? 2
grep -q 'garbage.pub: not a Z85 CURVE public key' "$T/bad.err" || fail "message: $(cat "$T/bad.err")"
plain --curve-server-key "$K/coordinator.pub" --curve-secret-key "$K/none.key" list \
    >/dev/null 2>"$T/bad.err"
expect_eq "regmixctl with a missing key file exits" $? 2
grep -q 'none.key: No such file' "$T/bad.err" || fail "message: $(cat "$T/bad.err")"
"$WORKER_BIN" --coordinator "$WEP" --gpus none --workdir "$T/work-bad" \
    --curve-secret-key "$K/garbage.pub" >/dev/null 2>"$T/bad.err"
expect_eq "worker with a malformed key file exits" $? 2
grep -q 'not a Z85 CURVE' "$T/bad.err" || fail "worker message: $(cat "$T/bad.err")"
REGMIX_CURVE_SECRET_KEY=$K/none.key "$WORKER_BIN" --coordinator "$WEP" --gpus none \
    --workdir "$T/work-bad" >/dev/null 2>"$T/bad.err"
expect_eq "worker with a missing key file (environment) exits" $? 2

# Workers: w1 through the options (they win over bob's keys in the environment), w2 through the
# environment alone, intruder with a key pair not on the allow list.
start_worker w1 4 --curve-server-key "$K/coordinator.pub" --curve-secret-key "$K/alice.key"
REGMIX_CURVE_SECRET_KEY=$K/alice.key start_worker w2 4
start_worker intruder 4 --curve-secret-key "$K/mallory.key"
INTRUDER_PID=$WORKER_PID
start_worker wrongkey 1 --curve-server-key "$K/alice.pub" --curve-secret-key "$K/alice.key"
REGMIX_CURVE_SERVER_KEY= REGMIX_CURVE_SECRET_KEY= start_worker nokeys 1

submit_synthetic it-curve 24 10 0 3
[ -n "$SW" ] || fail "no sweep id"
wait_state "$SW" 60 done
ctl results "$SW" --csv >"$T/results.csv" || fail "results --csv failed"
expect_eq "csv rows" "$(tail -n +2 "$T/results.csv" | wc -l)" 24
expect_eq "workers that ran jobs" "$(tail -n +2 "$T/results.csv" | cut -d, -f3 | sed 's/.*://' | sort -u | tr '\n' ' ')" "w1 w2 "
expect_eq "workers the coordinator knows" "$(ctl workers --json | jq -r '[.workers[].worker] | map(sub(".*:"; "")) | sort | join(" ")')" "w1 w2"

# regmixctl with the allowed keys as options (nothing in the environment).
plain --curve-server-key "$K/coordinator.pub" --curve-secret-key "$K/bob.key" list --json |
    jq -e --arg s "$SW" '[.sweeps[] | select(.sweep == $s)] | length == 1' >/dev/null ||
    fail "list with allowed keys as options"

# A restarted coordinator: the workers reconnect with their keys (every new socket gets them).
stop_coord
start_coord --curve-secret-key "$K/coordinator.key" --curve-allow "$K/allow.txt"
synthetic_spec "$T/spec2.yaml" it-curve-2 8 10 0 3
SW2=$(submit "$T/spec2.yaml")
wait_state "$SW2" 60 done
expect_eq "workers after the restart" "$(ctl workers --json | jq -r '[.workers[].worker] | map(sub(".*:"; "")) | sort | join(" ")')" "w1 w2"

# Refused clients: no answer, exit 1 after --timeout, a message that points at CURVE.
refused() { # WHAT HINT ARGS...
    local what=$1 hint=$2 t0 rc
    shift 2
    t0=$(date +%s%N)
    plain "$@" list --timeout 1 >"$T/refused.out" 2>"$T/refused.err"
    rc=$?
    local ms=$((($(date +%s%N) - t0) / 1000000))
    expect_eq "$what: exit status" "$rc" 1
    [ ! -s "$T/refused.out" ] || fail "$what: printed $(cat "$T/refused.out")"
    grep -q "no reply from the coordinator.*$hint" "$T/refused.err" ||
        fail "$what: message: $(cat "$T/refused.err")"
    [ "$ms" -ge 900 ] && [ "$ms" -lt 5000 ] || fail "$what: took $ms ms, want about 1 s"
}
refused "client without keys" "requires CURVE\(: give\|, give\) --curve-server-key"
refused "client with a key pair not allowed" "refused our CURVE key (status 400).*--curve-allow" \
    --curve-server-key "$K/coordinator.pub" --curve-secret-key "$K/mallory.key"
refused "client with only the server's key" "refused our CURVE key (status 400)" \
    --curve-server-key "$K/coordinator.pub"
refused "client with the wrong server key" "closed during the CURVE handshake: is --curve-server-key" \
    --curve-server-key "$K/alice.pub" --curve-secret-key "$K/bob.key"
plain list --curve-secret-key "$K/bob.key" >/dev/null 2>"$T/bad.err"
expect_eq "a global option after the command exits" $? 2
grep -q 'put it before the command' "$T/bad.err" || fail "message: $(cat "$T/bad.err")"

denied=$(grep -c 'event=auth_denied' "$T/coordinator.log")
[ "$denied" -ge 3 ] || fail "coordinator logged $denied auth_denied, want >= 3"
note "ok: auth_denied logged $denied times"
grep -q 'event=hello ' "$T/worker-intruder.log" || fail "intruder never said hello"
kill -0 "$INTRUDER_PID" 2>/dev/null || fail "intruder worker exited (it should keep retrying)"
# Refused workers say why in their logs, once each (until a WELCOME).
for w in intruder wrongkey nokeys; do
    grep -q 'event=welcome ' "$T/worker-$w.log" && fail "worker $w was welcomed"
done
worker_says() { # NAME TEXT
    grep 'event=handshake_failed' "$T/worker-$1.log" | grep -q -- "$2" ||
        fail "worker $1 does not log '$2': $(grep -v 'event=hello\|event=reconnect' "$T/worker-$1.log" | tail -n 3)"
    expect_eq "handshake_failed lines of worker $1" "$(grep -c 'event=handshake_failed' "$T/worker-$1.log")" 1
}
worker_says intruder "refused our CURVE key (status 400): is our public key on its --curve-allow list"
worker_says wrongkey "closed during the CURVE handshake: is --curve-server-key"
worker_says nokeys "requires CURVE: give --curve-server-key"
grep -q 'event=handshake_failed' "$T/worker-w1.log" "$T/worker-w2.log" &&
    fail "an allowed worker logged a handshake failure"

stop_coord
check_store "$SW"
done=$STORE_DONE dead=$STORE_DEAD canc=$STORE_CANC
expect_eq "done runs" "$done" 24
check_store "$SW2"
done=$STORE_DONE dead=$STORE_DEAD canc=$STORE_CANC
expect_eq "done runs after the restart" "$done" 8
note "PASS"
