#!/bin/bash
# sched_bench.sh: jobs per second of the whole scheduler path, end to end and durable.
#
# For each sweep size (default 1000 10000 100000) it starts a fresh regmix-coordinator (SQLite on
# disk, WAL) and 4 regmix-workers x 8 slots on loopback, submits a synthetic sweep with no delay,
# and times from the submit reply until the sweep is done: every job is claimed in SQLite,
# leased, sent as ASSIGN, computed by a worker, persisted by the worker (result.json, rename),
# sent as RESULT, stored, acknowledged and removed. It prints jobs/s, the wall and CPU cost per
# job (coordinator and workers separately, from /proc), and the same figures for two systems run
# side by side on this machine: a bash loop spawning /bin/true per job (what a per-job launcher
# does at best), and bench/sched_reference.py (Python multiprocessing + sqlite3: claim, dispatch,
# store). The ratios are regmix over each reference.
#
# With --dashboard[=POLL_MS] it measures instead what the live dashboard costs the coordinator:
# for each size, the same sweep twice side by side, first with the coordinator's HTTP listener
# (--metrics) and no page, then with the dashboard open in headless Chromium (/usr/bin/chromium,
# polling every POLL_MS, default 2000 as shipped), alternating for ROUNDS rounds (default 3); it
# prints jobs/s and coordinator CPU per job of each run, the HTTP requests the listener answered
# (regmix_http_requests_total, the bench's own scrape included), and the median ratios.
#
# With --durability it measures what durable commits cost: for each size, the same sweep with
# refits on (refit_every 200) three times side by side: the coordinator's SQLite with
# synchronous = NORMAL (a commit survives a process kill, not an OS crash), then FULL (the
# default: the WAL is fsync'd before anything a commit covers is acknowledged), then NORMAL
# again (to see the machine's drift); it prints jobs/s of each and FULL over the mean of the two
# NORMAL runs. The workers fsync their reports in all three.
#
# usage: sched_bench.sh [--dashboard[=POLL_MS] | --durability] COORDINATOR WORKER REGMIXCTL [SIZE...]
set -u
DASHBOARD=
DURABILITY=
COORD_CONF=
REFIT_EVERY=1000000
case ${1:-} in
--dashboard) DASHBOARD=2000; shift ;;
--dashboard=*) DASHBOARD=${1#--dashboard=}; shift ;;
--durability) DURABILITY=1; REFIT_EVERY=200; shift ;;
esac
COORD_BIN=$1 WORKER_BIN=$2 CTL_BIN=$3
shift 3
SIZES=${*:-1000 10000 100000}
WORKERS=${WORKERS:-4}
SLOTS=${SLOTS:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/regmix-bench-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

read -r EPHEMERAL_LO _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LO=32768
PORT_BASE=10000
PORT_SPAN=$((EPHEMERAL_LO - PORT_BASE))
free_port() {
    local p
    while :; do
        p=$((PORT_BASE + RANDOM % PORT_SPAN))
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
    done
}

# CPU seconds (user + system) a process has used so far.
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

now() {
    date +%s.%N
}

# run_regmix N [page]: one sweep of N jobs; with "page" (and --dashboard) the dashboard is open in
# headless Chromium while it runs. A listener runs in both cases when --dashboard is given.
run_regmix() {
    local n=$1 page=${2:-} wp cp hp wep cep i sw metrics=() bpid=
    wp=$(free_port)
    cp=$(free_port)
    hp=$(free_port)
    [ -n "$DASHBOARD" ] && metrics=(--metrics "127.0.0.1:$hp")
    wep=tcp://127.0.0.1:$wp
    cep=tcp://127.0.0.1:$cp
    rm -rf "$T/run"
    mkdir -p "$T/run"
    local conf=()
    [ -n "$COORD_CONF" ] && conf=(--config "$COORD_CONF")
    "$COORD_BIN" --db "$T/run/bench.db" --workers "$wep" --clients "$cep" --log-level warn \
        "${metrics[@]}" "${conf[@]}" >>"$T/run/coordinator.log" 2>&1 &
    local cpid=$!
    PIDS+=("$cpid")
    local wpids=()
    for i in $(seq 1 "$WORKERS"); do
        "$WORKER_BIN" --coordinator "$wep" --slots "$SLOTS" --gpus none --workdir "$T/run/w$i" \
            --name "bench$i" --log-level warn >>"$T/run/worker$i.log" 2>&1 &
        wpids+=($!)
        PIDS+=($!)
    done
    for i in $(seq 1 100); do
        "$CTL_BIN" --coordinator "$cep" list --timeout 0.2 >/dev/null 2>&1 && break
    done
    cat >"$T/run/spec.yaml" <<YAML
name: bench-$n
domains:
  - {name: web, tokens: 5.0e9}
  - {name: code, tokens: 2.0e9}
  - {name: books, tokens: 1.0e9}
sampling: {runs: $n, seed: 1}
proxy:
  trainer: synthetic
  synthetic: {optimum: {web: 0.5, code: 0.3, books: 0.2}, delay_ms: 0}
regression: {target: mean, model: linear, simulate: 100, top_k: 10, refit_every: $REFIT_EVERY}
YAML
    if [ -n "$page" ]; then
        # The page loads and starts polling before the sweep is submitted.
        /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
            --user-data-dir="$T/run/chromium" --remote-debugging-port=0 \
            "http://127.0.0.1:$hp/?poll=$DASHBOARD" >>"$T/run/chromium.log" 2>&1 &
        bpid=$!
        PIDS+=("$bpid")
        for i in $(seq 1 100); do
            [ "$(http_requests "$hp")" -ge 3 ] && break
            sleep 0.1
        done
    fi
    sleep 0.5 # let the workers say HELLO
    local c0 w0=0 ts t0 t1 st
    c0=$(cpu_s "$cpid")
    for p in "${wpids[@]}"; do w0=$(echo "$w0 + $(cpu_s "$p")" | bc -l); done
    ts=$(now)
    sw=$("$CTL_BIN" --coordinator "$cep" submit "$T/run/spec.yaml" --timeout 120) ||
        { echo "submit failed" >&2; cat "$T/run/coordinator.log" >&2; return 1; }
    t0=$(now)
    while :; do
        st=$("$CTL_BIN" --coordinator "$cep" status "$sw" --json --timeout 10 | jq -r .state)
        [ "$st" = done ] && break
        [ "$st" = failed ] || [ "$st" = cancelled ] || [ -z "$st" ] &&
            { echo "sweep ended $st" >&2; return 1; }
        sleep 0.02
    done
    t1=$(now)
    local reqs=0
    [ -n "$DASHBOARD" ] && reqs=$(http_requests "$hp")
    if [ -n "$bpid" ]; then
        kill -9 "$bpid" 2>/dev/null
        { wait "$bpid"; } 2>/dev/null
    fi
    local c1 w1=0
    c1=$(cpu_s "$cpid")
    for p in "${wpids[@]}"; do w1=$(echo "$w1 + $(cpu_s "$p")" | bc -l); done
    local done_n
    done_n=$("$CTL_BIN" --coordinator "$cep" status "$sw" --json | jq .runs.done)
    kill -TERM "$cpid" "${wpids[@]}" 2>/dev/null
    wait "$cpid" "${wpids[@]}" 2>/dev/null
    local results
    results=$(sqlite3 "$T/run/bench.db" "SELECT count(*) FROM results" 2>/dev/null || echo '?')
    echo "$n $done_n $results $(echo "$t0 - $ts" | bc -l) $(echo "$t1 - $t0" | bc -l) \
$(echo "$c1 - $c0" | bc -l) $(echo "$w1 - $w0" | bc -l) $reqs"
}

# Requests the coordinator's listener answered so far (its own /metrics scrape included).
http_requests() {
    local line
    line=$(exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 &&
        grep '^regmix_http_requests_total' <&3)
    echo "${line##* }" | tr -dc 0-9 | grep . || echo 0
}

if [ -n "$DASHBOARD" ]; then
    [ -x /usr/bin/chromium ] || { echo "--dashboard needs /usr/bin/chromium (scripts/setup.sh)" >&2; exit 1; }
    echo "# dashboard cost: synthetic jobs with no delay, $WORKERS workers x $SLOTS slots, $(nproc) cores; page polls every $DASHBOARD ms"
    printf '%-8s %-5s %-6s %12s %14s %10s\n' runs round page jobs_per_s coord_cpu_us requests
    median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    for n in $SIZES; do
        rates=() cpus=()
        for r in $(seq 1 "${ROUNDS:-3}"); do
            read -r _ d0 r0 _ s0 c0 _ q0 <<<"$(run_regmix "$n")" || exit 1
            read -r _ d1 r1 _ s1 c1 _ q1 <<<"$(run_regmix "$n" page)" || exit 1
            [ "$d0" = "$n" ] && [ "$r0" = "$n" ] && [ "$d1" = "$n" ] && [ "$r1" = "$n" ] ||
                { echo "sweep of $n: done $d0/$d1, results $r0/$r1" >&2; exit 1; }
            rate0=$(echo "$n / $s0" | bc -l) rate1=$(echo "$n / $s1" | bc -l)
            printf '%-8s %-5s %-6s %12.0f %14.1f %10s\n' "$n" "$r" none "$rate0" "$(echo "1000000 * $c0 / $n" | bc -l)" "$q0"
            printf '%-8s %-5s %-6s %12.0f %14.1f %10s\n' "$n" "$r" open "$rate1" "$(echo "1000000 * $c1 / $n" | bc -l)" "$q1"
            rates+=("$(echo "$rate1 / $rate0" | bc -l)")
            cpus+=("$(echo "$c1 / $c0" | bc -l)")
        done
        printf '{"runs": %d, "poll_ms": %d, "rounds": %d, "median_jobs_per_s_ratio_page_vs_none": %.3f, "median_coord_cpu_ratio_page_vs_none": %.3f}\n' \
            "$n" "$DASHBOARD" "${ROUNDS:-3}" "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)"
    done
    exit 0
fi

if [ -n "$DURABILITY" ]; then
    echo "# durability cost: synthetic jobs with no delay, refit every $REFIT_EVERY results, $WORKERS workers x $SLOTS slots, $(nproc) cores"
    printf '%-8s %14s %14s %14s %10s\n' runs normal_jobs/s full_jobs/s normal2_jobs/s full/normal
    echo "synchronous = normal" >"$T/normal.conf"
    echo "synchronous = full" >"$T/full.conf"
    for n in $SIZES; do
        COORD_CONF=$T/normal.conf
        read -r _ d0 r0 _ s0 _ <<<"$(run_regmix "$n")" || exit 1
        COORD_CONF=$T/full.conf
        read -r _ d1 r1 _ s1 _ <<<"$(run_regmix "$n")" || exit 1
        COORD_CONF=$T/normal.conf
        read -r _ d2 r2 _ s2 _ <<<"$(run_regmix "$n")" || exit 1
        [ "$d0$r0$d1$r1$d2$r2" = "$n$n$n$n$n$n" ] ||
            { echo "sweep of $n: done/results $d0/$r0 $d1/$r1 $d2/$r2" >&2; exit 1; }
        rn=$(echo "$n / $s0" | bc -l) rf=$(echo "$n / $s1" | bc -l) rn2=$(echo "$n / $s2" | bc -l)
        ratio=$(echo "2 * $rf / ($rn + $rn2)" | bc -l)
        printf '%-8s %14.0f %14.0f %14.0f %10.3f\n' "$n" "$rn" "$rf" "$rn2" "$ratio"
        printf '{"runs": %d, "jobs_per_s_normal": %.0f, "jobs_per_s_full": %.0f, "jobs_per_s_normal2": %.0f, "ratio_full_vs_normal": %.3f}\n' \
            "$n" "$rn" "$rf" "$rn2" "$ratio"
    done
    exit 0
fi

run_bash_loop() {
    local n=$1 t0 t1
    t0=$(now)
    for ((i = 0; i < n; i++)); do /bin/true; done
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}

echo "# scheduler: synthetic jobs with no delay, $WORKERS workers x $SLOTS slots, $(nproc) cores"
printf '%-8s %10s %10s %12s %10s %14s %14s %12s %12s\n' runs submit_s sweep_s jobs_per_s us_per_job \
    coord_cpu_us worker_cpu_us bash_true/s python_ref/s
for n in $SIZES; do
    read -r runs done_n results sub secs ccpu wcpu _ <<<"$(run_regmix "$n")" || exit 1
    [ "$done_n" = "$n" ] && [ "$results" = "$n" ] ||
        { echo "sweep of $n: done $done_n, results $results" >&2; exit 1; }
    rate=$(echo "$n / $secs" | bc -l)
    # The references run at most 20000 jobs (their per-job cost does not grow with size); the
    # bash loop at most 2000 (a fork+exec each).
    m=$((n < 20000 ? n : 20000))
    mb=$((n < 2000 ? n : 2000))
    bsecs=$(run_bash_loop "$mb")
    brate=$(echo "$mb / $bsecs" | bc -l)
    prate=$(/usr/bin/python3 "$HERE/sched_reference.py" "$m" --slots $((WORKERS * SLOTS)) | jq .jobs_per_s)
    printf '%-8s %10.2f %10.3f %12.0f %10.1f %14.1f %14.1f %12.0f %12.0f\n' "$n" "$sub" "$secs" \
        "$rate" "$(echo "1000000 * $secs / $n" | bc -l)" "$(echo "1000000 * $ccpu / $n" | bc -l)" \
        "$(echo "1000000 * $wcpu / $n" | bc -l)" "$brate" "$prate"
    printf '{"runs": %d, "jobs_per_s": %.0f, "ratio_vs_bash_true": %.2f, "ratio_vs_python": %.2f, "ratio_vs_slurm_500": %.1f}\n' \
        "$n" "$rate" "$(echo "$rate / $brate" | bc -l)" "$(echo "$rate / $prate" | bc -l)" \
        "$(echo "$rate / 500" | bc -l)"
done
