# lib.sh: shared shell helpers of the integration and fault tests (sourced, not run).
#
# The tests start the real regmix-coordinator, regmix-worker and regmixctl on loopback with a
# temporary database, drive a sweep, and check the store afterwards with exact counts. Every
# process a test starts is recorded and killed on exit (trap), pass or fail; on failure the
# temporary directory (logs, database) is kept and the tails of the logs are printed.
#
# usage (from a test):  . "$(dirname "$0")/../integration/lib.sh" COORDINATOR WORKER REGMIXCTL
set -u

COORD_BIN=$1
WORKER_BIN=$2
CTL_BIN=$3
HB_MS=${HB_MS:-100}
LEASE_MS=${LEASE_MS:-1500}

command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 CLI not found (scripts/setup.sh installs it)" >&2; exit 1; }
command -v jq >/dev/null || { echo "FAIL: jq not found (scripts/setup.sh installs it)" >&2; exit 1; }

T=$(mktemp -d /tmp/regmix-test-XXXXXX)
DB=$T/regmix.db
PIDS=()
COORD_PID=
TEST_FAILED=0

cleanup() {
    local p
    exec 3>&2 2>/dev/null # no "Killed" notices from bash while reaping
    for p in "${PIDS[@]}"; do
        kill -CONT "$p"
        kill -9 "$p"
    done
    wait
    exec 2>&3 3>&-
    if [ "$TEST_FAILED" = 0 ]; then
        rm -rf "$T"
    else
        local f
        for f in "$T"/*.log; do
            [ -f "$f" ] || continue
            echo "---- tail of $f" >&2
            grep -v 'event=ping\|level=debug' "$f" | tail -n 25 >&2
        done
        echo "kept $T" >&2
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# A fail inside $(...) or a pipeline runs in a subshell: it tells the test's own shell, which
# then fails too (the trap runs as soon as the subshell has exited) instead of going on.
TEST_SHELL=$BASHPID
trap 'TEST_FAILED=1; exit 1' USR1

fail() {
    echo "FAIL: $*" >&2
    TEST_FAILED=1
    [ "$BASHPID" = "$TEST_SHELL" ] || kill -USR1 "$TEST_SHELL"
    exit 1
}

note() {
    echo "# $*" >&2
}

# A TCP port nothing listens on (checked by connecting), below the kernel's ephemeral range so no
# outgoing connection can be holding it; start_coord retries on a clash all the same.
read -r EPHEMERAL_LO _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LO=32768
PORT_BASE=10000
PORT_SPAN=$((EPHEMERAL_LO - PORT_BASE))
free_port() {
    local p
    while :; do
        p=$((PORT_BASE + RANDOM % PORT_SPAN))
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

WPORT=$(free_port)
CPORT=$(free_port)
while [ "$CPORT" = "$WPORT" ]; do CPORT=$(free_port); done
WEP=tcp://127.0.0.1:$WPORT
CEP=tcp://127.0.0.1:$CPORT

ctl() {
    "$CTL_BIN" --coordinator "$CEP" "$@"
}

# Starts the coordinator on the test's database and ports; waits until it answers. A port that
# another program took meanwhile is replaced before the first start (no worker knows it yet).
COORD_STARTS=0
start_coord() {
    local attempt i
    for attempt in 1 2 3; do
        "$COORD_BIN" --db "$DB" --workers "$WEP" --clients "$CEP" --heartbeat-ms "$HB_MS" \
            --lease-ms "$LEASE_MS" --log-level info "$@" >>"$T/coordinator.log" 2>&1 &
        COORD_PID=$!
        PIDS+=("$COORD_PID")
        for i in $(seq 1 100); do
            if ctl list --timeout 0.2 >/dev/null 2>&1; then
                COORD_STARTS=$((COORD_STARTS + 1))
                return 0
            fi
            kill -0 "$COORD_PID" 2>/dev/null || break
        done
        kill -0 "$COORD_PID" 2>/dev/null && fail "coordinator does not answer on $CEP"
        if [ "$COORD_STARTS" = 0 ] && tail -n 3 "$T/coordinator.log" | grep -q 'in use'; then
            note "port clash; new ports"
            WPORT=$(free_port)
            CPORT=$(free_port)
            WEP=tcp://127.0.0.1:$WPORT
            CEP=tcp://127.0.0.1:$CPORT
            continue
        fi
        fail "coordinator exited at start"
    done
    fail "coordinator could not bind free ports"
}

# Stops the coordinator gracefully (SIGTERM) and waits for it.
stop_coord() {
    kill -TERM "$COORD_PID" 2>/dev/null
    local i
    for i in $(seq 1 100); do
        kill -0 "$COORD_PID" 2>/dev/null || { wait "$COORD_PID" 2>/dev/null; return 0; }
        sleep 0.1
    done
    fail "coordinator did not stop within 10 s of SIGTERM"
}

kill9_coord() {
    { kill -9 "$COORD_PID" && wait "$COORD_PID"; } 2>/dev/null
}

# start_worker NAME SLOTS [extra flags]: prints the pid into the variable WORKER_PID.
start_worker() {
    local name=$1 slots=$2
    shift 2
    "$WORKER_BIN" --coordinator "$WEP" --slots "$slots" --gpus none --workdir "$T/work-$name" \
        --name "$name" --kill-grace-ms 500 --log-level info "$@" >>"$T/worker-$name.log" 2>&1 &
    WORKER_PID=$!
    PIDS+=("$WORKER_PID")
}

submit() {
    local out
    out=$(ctl submit "$1" --json) || fail "submit $1 failed"
    echo "$out" | jq -r .sweep
}

# status_field SWEEP JQ: one field of `status --json`.
status_field() {
    ctl status "$1" --json --timeout 3 | jq -r "$2"
}

# wait_state SWEEP TIMEOUT_S STATE...: polls until the sweep is in one of the states.
wait_state() {
    local sweep=$1 timeout=$2
    shift 2
    local end=$((SECONDS + timeout)) st
    while [ $SECONDS -lt $end ]; do
        st=$(status_field "$sweep" .state 2>/dev/null)
        for want in "$@"; do
            [ "$st" = "$want" ] && return 0
        done
        sleep 0.2
    done
    ctl status "$sweep" >&2
    fail "sweep $sweep not in state '$*' within $timeout s (last: $st)"
}

# target_field SWEEP JQ: one field of the sweep's target row in `regmixctl target --json`.
target_field() {
    ctl target "$1" --json 2>/dev/null | jq -r ".targets[] | select(.role == \"target\") | $2"
}

# wait_target SWEEP TIMEOUT_S STATE...: polls the target row until it is in one of the states.
# A test may define wait_target_diag to print more (e.g. squeue) when it fails.
wait_target() {
    local sw=$1 end=$((SECONDS + $2)) st want
    shift 2
    while [ $SECONDS -lt $end ]; do
        st=$(target_field "$sw" .state)
        for want in "$@"; do
            [ "$st" = "$want" ] && return 0
        done
        sleep 0.05
    done
    ctl target "$sw" >&2
    declare -F wait_target_diag >/dev/null && wait_target_diag >&2
    fail "target of $sw not in state '$*' (last: $st)"
}

# wait_for WHAT TIMEOUT_S COMMAND...: runs COMMAND every 0.1 s until it succeeds; fails naming
# WHAT when TIMEOUT_S pass first. The way to wait for a condition (never a bare sleep).
wait_for() {
    local what=$1 secs=$2 end=$((SECONDS + $2))
    shift 2
    until "$@"; do
        [ $SECONDS -lt $end ] || fail "$what: not within $secs s"
        sleep 0.1
    done
}

# worker_running NAME: the attempts the coordinator counts as running on worker HOST:NAME.
worker_running() {
    ctl workers --json --timeout 3 | jq -r --arg n "$1" \
        '[.workers[] | select(.worker | endswith(":" + $n)) | .running + 0] | add // 0'
}

# attempt_ids: the attempt ids (attempt=N) of the log lines on stdin, sorted, once each.
attempt_ids() {
    sed -n 's/.* attempt=\([0-9]*\)\( .*\)*$/\1/p' | sort -n -u
}

# lost_in_log WORKER [WHY]: ids of the attempts the coordinator logged lost on HOST:WORKER (for
# that reason only, when given).
lost_in_log() {
    grep 'event=attempt_lost ' "$T/coordinator.log" | grep "worker=[^ ]*:$1 .*why=\"${2:-}" |
        attempt_ids
}

# lost_in_store WORKER: ids of the attempts of HOST:WORKER in state 'lost' (coordinator stopped).
lost_in_store() {
    db "SELECT id FROM attempts WHERE worker LIKE '%:$1' AND state = 'lost' ORDER BY id"
}

# subset A B: every line of A is in B (both sorted numerically, one id a line).
subset() {
    [ -z "$(comm -23 <(echo "$1" | sort) <(echo "$2" | sort))" ]
}

# wait_done_at_least SWEEP N TIMEOUT_S: until at least N runs are done.
wait_done_at_least() {
    local end=$(($SECONDS + $3)) d
    while [ $SECONDS -lt $end ]; do
        d=$(status_field "$1" .runs.done 2>/dev/null)
        [ -n "$d" ] && [ "$d" != null ] && [ "$d" -ge "$2" ] && return 0
        sleep 0.1
    done
    fail "sweep $1 has fewer than $2 done runs after $3 s"
}

db() {
    sqlite3 -batch -noheader "$DB" "$1"
}

# expect_eq WHAT GOT WANT
expect_eq() {
    [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
    note "ok: $1 = $3"
}

# check_store SWEEP: the exact invariants, on the database (the coordinator must be stopped):
# every run is done (exactly one result), dead or cancelled; none leased, running or queued;
# no attempt is live; no run has two results; done = results. Sets STORE_DONE, STORE_DEAD and
# STORE_CANC. Call it directly, not inside $(...): its checks must stop the test itself.
check_store() {
    local sw=$1 id
    id=$(db "SELECT id FROM sweeps WHERE sweep_id = '$sw'")
    [ -n "$id" ] || fail "sweep $sw not in the database"
    local runs done dead canc live results dup orphan live_att
    runs=$(db "SELECT count(*) FROM runs WHERE sweep = $id")
    done=$(db "SELECT count(*) FROM runs WHERE sweep = $id AND state = 'done'")
    dead=$(db "SELECT count(*) FROM runs WHERE sweep = $id AND state = 'dead'")
    canc=$(db "SELECT count(*) FROM runs WHERE sweep = $id AND state = 'cancelled'")
    live=$(db "SELECT count(*) FROM runs WHERE sweep = $id AND state IN ('leased', 'running', 'queued', 'failed')")
    results=$(db "SELECT count(*) FROM results WHERE sweep = $id")
    dup=$(db "SELECT count(*) FROM (SELECT run FROM results WHERE sweep = $id GROUP BY run HAVING count(*) > 1)")
    orphan=$(db "SELECT count(*) FROM results r JOIN runs u ON u.id = r.run WHERE r.sweep = $id AND u.state <> 'done'")
    live_att=$(db "SELECT count(*) FROM attempts a JOIN runs u ON u.id = a.run WHERE u.sweep = $id AND a.state IN ('leased', 'running')")
    expect_eq "runs stuck in queued/leased/running/failed" "$live" 0
    expect_eq "attempts still live" "$live_att" 0
    expect_eq "runs with two results" "$dup" 0
    expect_eq "results of runs not done" "$orphan" 0
    expect_eq "results = done runs" "$results" "$done"
    expect_eq "done + dead + cancelled = runs" $((done + dead + canc)) "$runs"
    STORE_DONE=$done
    STORE_DEAD=$dead
    STORE_CANC=$canc
}

# check_acked_stored: every attempt a worker was told its result was accepted for (the workers'
# event=result_acked lines) has its result in the database. The kill tests exist for this: a
# coordinator that acknowledged before committing passes "every run done" (the lost runs rerun)
# and fails here. Sets ACKED to how many were checked (the caller asserts it is not vacuous).
check_acked_stored() {
    local acked stored missing
    acked=$(cat "$T"/worker-*.log | sed -n 's/.*event=result_acked .*attempt=\([0-9]*\).*/\1/p' |
        sort -un)
    ACKED=$(echo "$acked" | grep -c .)
    stored=$(db "SELECT attempt FROM results" | sort -un)
    missing=$(comm -23 <(echo "$acked") <(echo "$stored") | grep -c .)
    expect_eq "acknowledged results missing from the store (of $ACKED)" "$missing" 0
}

# submit_synthetic NAME RUNS DELAY_MS FAIL_RATE MAX_ATTEMPTS: writes $T/spec.yaml (synthetic_spec)
# and submits it; sets SW to the sweep id. Call it directly, not inside $(...).
submit_synthetic() {
    synthetic_spec "$T/spec.yaml" "$@"
    SW=$(submit "$T/spec.yaml")
    note "sweep $SW"
}

# busy_pair NAME: the coordinator, workers w1 and w2 (4 slots each) and a 40-run sweep of 800 ms
# synthetic jobs, up to the moment w1 runs an attempt (where the worker fault tests strike). Sets
# SW and W1 (w1's pid).
busy_pair() {
    start_coord
    start_worker w1 4
    W1=$WORKER_PID
    start_worker w2 4
    submit_synthetic "$1" 40 800 0 3
    wait_done_at_least "$SW" 4 30
    w1_busy() { [ "$(worker_running w1)" -ge 1 ]; }
    wait_for "w1 running an attempt" 20 w1_busy
}

# licence_corpus DIR: two byte-level domains, licA and licB, tokenized by $TRAINER_BIN into DIR
# from this machine's licence texts (half each). Distinct texts only: several licence files are
# links to others (GPL -> GPL-3), and a text in both domains would give them the same validation
# document.
licence_corpus() {
    local docs half
    mkdir -p "$1" || fail "mkdir $1"
    mapfile -t docs < <(for f in /usr/share/common-licenses/*; do readlink -f "$f"; done | sort -u)
    [ ${#docs[@]} -ge 4 ] || fail "need at least 4 texts in /usr/share/common-licenses (package base-files)"
    half=$((${#docs[@]} / 2))
    "$TRAINER_BIN" tokenize --out "$1" --name licA "${docs[@]:0:$half}" >/dev/null ||
        fail "tokenize licA"
    "$TRAINER_BIN" tokenize --out "$1" --name licB "${docs[@]:$half}" >/dev/null ||
        fail "tokenize licB"
}

# synthetic_spec FILE NAME RUNS DELAY_MS FAIL_RATE MAX_ATTEMPTS
synthetic_spec() {
    cat >"$1" <<YAML
name: $2
domains:
  - {name: web, tokens: 5.0e9}
  - {name: code, tokens: 2.0e9}
  - {name: books, tokens: 1.0e9}
sampling: {runs: $3, seed: 11}
proxy:
  trainer: synthetic
  max_attempts: ${6:-3}
  backoff_ms: 20
  synthetic: {optimum: {web: 0.5, code: 0.3, books: 0.2}, noise: 0.001, delay_ms: $4, fail_rate: $5}
regression:
  target: mean
  model: linear
  simulate: 2000
  top_k: 20
  refit_every: 1000000
  on_converge: keep
YAML
}
