#!/usr/bin/env bash
# bench/core.sh — quicklane's core next to nginx: one run, on loopback, same
# load tool and settings, ratios reported. Never a test assertion: the
# PASS/MISS lines are information, and the exit status is 0 unless the
# harness itself failed.
#
#   bench/core.sh [--smoke]
#
# Environment (all optional):
#   DURATION=10        seconds of each measured wrk run (--smoke: 1)
#   WARMUP=2           seconds of the wrk warmup before each run (--smoke: 1)
#   ROUNDS=3           rounds of the four wrk runs, servers alternating (--smoke: 1)
#   IDLE_CONNS=5000    idle keep-alive connections held open (--smoke: 500)
#   CONNS=64           wrk connections (one wrk thread)
#   QL_BIN=...         quicklane server to measure (default: the C example)
#   SERVER_CPUS=0 LOAD_CPUS=1   taskset CPU ids (default on >= 2 cores)
#   QUIET_WAIT=0       seconds to wait, at most, for the machine to be idle
#
# Results go to stdout and to bench/out/core-<UTC date>.md; raw wrk and
# idle_conns outputs stay in bench/out/ next to it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STOP_WAIT=30  # servers here stop at once; 3 s is plenty
. "$HERE/lib.sh"
REPO=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
INVOCATION="$0${*:+ $*}"

SMOKE=0
for arg in "$@"; do
    case "$arg" in
    --smoke) SMOKE=1 ;;
    -h | --help)
        awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "core.sh: unknown argument: $arg (try --help)" >&2
        exit 2
        ;;
    esac
done

if [ "$SMOKE" = 1 ]; then
    DURATION=${DURATION:-1} WARMUP=${WARMUP:-1} IDLE_CONNS=${IDLE_CONNS:-500} ROUNDS=${ROUNDS:-1}
else
    DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} IDLE_CONNS=${IDLE_CONNS:-5000} ROUNDS=${ROUNDS:-3}
fi
CONNS=${CONNS:-64}
QL_BIN=${QL_BIN:-$REPO/build/examples/c/example_c_hello}
START_EPOCH=$(date +%s)
STAMP=$(date -u -d "@$START_EPOCH" +%Y%m%d-%H%M%S)
REPORT=$OUT/core-$STAMP.md
RAW=$OUT/raw-$STAMP
HOST=127.0.0.1

# fd 8 is the script's stderr: traps run inside redirected calls, and their
# messages must still reach the terminal.
exec 8>&2
log() { printf '[core.sh] %s\n' "$*" >&8; }

# ---------------------------------------------------------------- cleanup ---
NGINX_PID="" QL_PID="" IDLE_PID="" CHILD_PID="" FIFO=""
cleanup() {
    exec 9>&- 2>/dev/null || true
    stop_pid "$CHILD_PID"
    stop_pid "$IDLE_PID"
    stop_pid "$QL_PID"
    stop_pid "$NGINX_PID" # nginx master: TERM stops its worker too
    [ -n "$FIFO" ] && rm -f "$FIFO"
    return 0
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM


# ------------------------------------------------------------ peers/build ---
ensure_packages() {
    local missing="" p
    for p in nginx-light wrk curl gcc; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    # nginx-light is a transitional package on bookworm; the binary is what counts.
    if [ -n "$missing" ]; then
        log "installing:$missing"
        apt-get update -qq || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || die "apt-get install$missing failed"
    fi
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || die "nginx not found after install"
    command -v wrk >/dev/null || die "wrk not found after install"
}

ensure_quicklane() {
    if [ ! -x "$QL_BIN" ]; then
        log "building quicklane (make -C $REPO build)"
        make -C "$REPO" build >&2 || die "make build failed"
    fi
    [ -x "$QL_BIN" ] || die "quicklane server not found at $QL_BIN"
}

build_idle_conns() {
    if [ ! -x "$OUT/idle_conns" ] || [ "$HERE/idle_conns.c" -nt "$OUT/idle_conns" ]; then
        cc -O2 -Wall -Wextra -o "$OUT/idle_conns" "$HERE/idle_conns.c" || die "cannot compile idle_conns.c"
    fi
}

# ---------------------------------------------------------------- helpers ---
NGINX=$(command -v nginx || echo /usr/sbin/nginx)



USED_PORTS=" "

wait_up() { # pid port — up to 10 s for GET /ping to answer
    local pid=$1 port=$2 i
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -s -o /dev/null -m 1 "http://$HOST:$port/ping" && return 0
        sleep 0.1
    done
    return 1
}




# Percent of all CPUs busy over the next 3 seconds.
busy_3s() {
    local a b
    a=$(awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
    sleep 3
    b=$(awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
        printf "%.0f\n", (y[2] > x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0 }'
}



# -------------------------------------------------------------- pinning ---
NCPU=$(nproc)
if [ -n "${SERVER_CPUS:-}" ] || [ -n "${LOAD_CPUS:-}" ]; then
    SRV_PIN=(taskset -c "${SERVER_CPUS:-0}")
    LOAD_PIN=(taskset -c "${LOAD_CPUS:-1}")
    SRV_CPU_ID=${SERVER_CPUS:-0} LOAD_CPU_ID=${LOAD_CPUS:-1}
    PIN_NOTE="servers on CPU ${SERVER_CPUS:-0}, load tools on CPU ${LOAD_CPUS:-1} (taskset, from the environment)"
elif [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
    SRV_PIN=(taskset -c 0)
    LOAD_PIN=(taskset -c 1)
    SRV_CPU_ID=0 LOAD_CPU_ID=1
    PIN_NOTE="servers on CPU 0, wrk and idle_conns on CPU 1 (taskset), so the load tool never competes with the one-worker server for its core"
else
    SRV_PIN=()
    LOAD_PIN=()
    SRV_CPU_ID=none LOAD_CPU_ID=none
    PIN_NOTE="not pinned ($NCPU CPU): server and load tool share the CPU, ratios still compare like with like"
fi

# ---------------------------------------------------------------- servers ---
start_nginx() {
    local port=$1 conf=$RAW/nginx.conf wc
    # Twice what the run holds: nginx starts closing idle keep-alive connections
    # (32 at a time) once fewer than 1/16 of its connection slots are free.
    wc=$((2 * (IDLE_CONNS + CONNS) + 1024))
    mkdir -p "$OUT/nginx-tmp"
    sed -e "s|@OUT@|$OUT|g" -e "s|@RAW@|$RAW|g" -e "s|@PORT@|$port|g" -e "s|@NOFILE@|$NOFILE|g" \
        -e "s|@WORKER_CONNECTIONS@|$wc|g" "$HERE/nginx.conf.in" >"$conf"
    "$NGINX" -t -q -e "$RAW/nginx-error.log" -p "$OUT" -c "$conf" || die "nginx -t rejected $conf"
    "${SRV_PIN[@]}" "$NGINX" -e "$RAW/nginx-error.log" -p "$OUT" -c "$conf" >"$RAW/nginx.stdout" 2>&1 &
    NGINX_PID=$!
    wait_up "$NGINX_PID" "$port" || die "nginx did not come up on port $port (see $RAW/nginx-error.log)"
    NGINX_WORKER=""
    local i
    for i in $(seq 1 20); do
        NGINX_WORKER=$(cat /proc/"$NGINX_PID"/task/*/children 2>/dev/null | awk '{print $1}')
        [ -n "$NGINX_WORKER" ] && break
        sleep 0.1
    done
    [ -n "$NGINX_WORKER" ] || die "cannot find the nginx worker process"
}

start_quicklane() {
    local port=$1
    env PORT="$port" WORKERS=1 "${SRV_PIN[@]}" "$QL_BIN" >"$RAW/quicklane.log" 2>&1 &
    QL_PID=$!
    wait_up "$QL_PID" "$port" || {
        tail -n 20 "$RAW/quicklane.log" >&2 || true
        die "quicklane ($QL_BIN) did not come up on port $port"
    }
}


# One response as "status content-type body" for the report, flagged when it
# differs from the example contract (EXPECTED).
probe() { # url expected
    local got
    got=$(curl -s -m 2 -o "$RAW/probe.body" -w '%{http_code} %{content_type}' "$1" 2>/dev/null || printf 'ERR')
    got="$got $(head -c 200 "$RAW/probe.body" 2>/dev/null)"
    if [ "$got" = "$2" ]; then
        printf '`%s` (as the contract says)' "$got"
    else
        printf '`%s` — **differs from the contract** (`%s`)' "$got" "$2"
        CONTRACT_DIFFS=$((CONTRACT_DIFFS + 1))
    fi
}
CONTRACT_DIFFS=0

# ------------------------------------------------------------ idle conns ---
# run_idle NAME PID PORT → sets I_* variables (RSS in KiB, times in µs)
run_idle() {
    local name=$1 pid=$2 port=$3 out i
    out=$RAW/idle-$name.txt
    FIFO=$RAW/idle-$name.fifo
    rm -f "$FIFO"
    mkfifo "$FIFO"
    I_BEFORE=$(rss_kb "$pid")
    timeout -k 5 240 "${LOAD_PIN[@]}" "$OUT/idle_conns" -n "$IDLE_CONNS" -t 21 -H 120 "$HOST" "$port" \
        <"$FIFO" >"$out" 2>&1 &
    IDLE_PID=$!
    exec 9>"$FIFO" # the tool holds its connections until this closes
    I_WITH=NA
    for i in $(seq 1 1500); do # up to 150 s (60 s opening + 2 × 21 fresh tries, bounded inside)
        if grep -qx ready "$out" 2>/dev/null; then
            I_WITH=$(rss_kb "$pid")
            break
        fi
        alive "$IDLE_PID" || break
        sleep 0.1
    done
    exec 9>&-
    wait "$IDLE_PID" 2>/dev/null || true
    IDLE_PID=""
    rm -f "$FIFO"
    FIFO=""
    kv() { awk -F= -v k="$1" '$1 == k {print $2; f = 1} END {if (!f) print "NA"}' "$out"; }
    I_OPENED=$(kv opened)
    I_BASE=$(kv baseline_fresh_us_median)
    I_FRESH=$(kv fresh_us_median)
    I_FRESH_MAX=$(kv fresh_us_max)
    I_FRESH_FAILED=$(kv fresh_failed)
    I_REUSED=$(kv reused_ok)
    I_PER=$(awk -v a="$I_BEFORE" -v b="$I_WITH" -v n="$I_OPENED" 'BEGIN {
        if (a == "NA" || b == "NA" || n == "NA" || n + 0 == 0) print "NA"; else printf "%.0f\n", (b - a) * 1024 / n }')
}

# ------------------------------------------------------------- throughput ---
STALLED_RUNS=""
# run_wrk LABEL URL PID → sets W_* variables
run_wrk() {
    local label=$1 url=$2 pid=$3 out
    out=$RAW/wrk-$label.txt
    W_RPS=NA W_P50=NA W_P99=NA W_NON2XX=NA W_SOCK=NA W_REQS=NA W_CPU=NA W_CPU_REQ=NA W_STALL=NA
    if ! alive "$pid"; then
        echo "server not running" >"$out"
        W_SOCK="server not running"
        return 0
    fi
    log "wrk $label: ${WARMUP}s warmup + ${DURATION}s"
    run_child timeout -k 5 $((WARMUP + 30)) "${LOAD_PIN[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >"$out.warmup" 2>&1 || true
    local c0 c1 p0 p1 s0 s1 t0 t1
    c0=$(cpu_snap)
    p0=$(proc_ticks "$pid")
    s0=$(psi_some)
    t0=$(now_us)
    run_child timeout -k 5 $((DURATION + 30)) "${LOAD_PIN[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$out" 2>&1 || true
    c1=$(cpu_snap)
    p1=$(proc_ticks "$pid")
    s1=$(psi_some)
    t1=$(now_us)
    W_STALL=$(awk -v a="$s0" -v b="$s1" -v t="$((t1 - t0))" 'BEGIN {
        if (a == "NA" || b == "NA" || t <= 0) print "NA"; else printf "%.0f\n", 100 * (b - a) / t }')
    awk -v v="$W_STALL" 'BEGIN { exit !(v != "NA" && v + 0 >= 10) }' && STALLED_RUNS="$STALLED_RUNS $label"
    W_RPS=$(awk '/^Requests\/sec:/ {printf "%.0f\n", $2; f = 1} END {if (!f) print "NA"}' "$out")
    W_P50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    W_P99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    W_REQS=$(awk '/ requests in / {print $1}' "$out")
    W_NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF; f = 1} END {if (!f) print 0}' "$out")
    W_CPU=$(awk -v a="$c0" -v b="$c1" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        if (x[2] == "" || y[2] == x[2] || y[4] == x[4]) { print "NA"; exit }
        printf "%.0f / %.0f\n", 100 * (y[1] - x[1]) / (y[2] - x[2]), 100 * (y[3] - x[3]) / (y[4] - x[4]) }')
    W_CPU_REQ=$(awk -v a="$p0" -v b="$p1" -v n="$W_REQS" -v hz="$CLK_TCK" 'BEGIN {
        if (a == "NA" || b == "NA" || n == "" || n + 0 == 0) print "NA"; else printf "%.1f\n", (b - a) / hz * 1e6 / n }')
    W_SOCK=$(awk '/Socket errors:/ {gsub(/^ *Socket errors: /, ""); print; f = 1} END {if (!f) print "none"}' "$out")
    # Errors seen during the warmup count too: they are the same server.
    local wn ws
    wn=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out.warmup")
    ws=$(awk '/Socket errors:/ {gsub(/^ *Socket errors: /, ""); print}' "$out.warmup")
    [ -n "$wn$ws" ] && W_SOCK="$W_SOCK; warmup: ${wn:+non-2xx $wn }${ws}"
    if ! alive "$pid"; then W_SOCK="$W_SOCK; SERVER EXITED"; fi
    return 0
}

# ===================================================================== run ===
mkdir -p "$OUT" "$RAW"
# How busy the machine is before we start: other work on these cores skews rps.
QUIET_WAIT=${QUIET_WAIT:-0}
waited=0
while :; do
    BUSY_BEFORE=$(busy_3s)
    awk -v b="$BUSY_BEFORE" 'BEGIN { exit !(b < 10) }' && break
    [ "$waited" -lt "$QUIET_WAIT" ] || break
    [ "$waited" = 0 ] && log "machine ${BUSY_BEFORE}% busy; waiting up to ${QUIET_WAIT}s for it to be quiet"
    sleep 2
    waited=$((waited + 5))
done
awk -v b="$BUSY_BEFORE" 'BEGIN { exit !(b >= 10) }' &&
    log "warning: the CPUs are ${BUSY_BEFORE}% busy before the run: something else is using them; rps will be skewed"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
ensure_packages
ensure_quicklane
build_idle_conns

NOFILE=65536
ulimit -n "$NOFILE" 2>/dev/null || {
    NOFILE=$(ulimit -Hn)
    [ "$NOFILE" = unlimited ] && NOFILE=1048576
    ulimit -n "$NOFILE"
}
[ "$NOFILE" -ge $((IDLE_CONNS + CONNS + 64)) ] || log "warning: nofile limit $NOFILE is below IDLE_CONNS=$IDLE_CONNS + wrk"

NGINX_PORT=$(free_port) || die "no free port"
QL_PORT=$(free_port) || die "no free port"
log "nginx on $NGINX_PORT, quicklane ($QL_BIN) on $QL_PORT; $PIN_NOTE"

start_nginx "$NGINX_PORT"
NG_IDLE_WORKER=$(rss_kb "$NGINX_WORKER")
NG_IDLE_MASTER=$(rss_kb "$NGINX_PID")
start_quicklane "$QL_PORT"
QL_IDLE=$(rss_kb "$QL_PID")
QL_THREADS=$(awk '/^Threads:/ {print $2}' /proc/"$QL_PID"/status)

EXP_PING='200 application/json {"message":"pong"}'
EXP_HELLO='200 application/json {"hello":"x"}'
# Not in $(...): the mismatch counter must reach this shell.
probe "http://$HOST:$NGINX_PORT/ping" "$EXP_PING" >"$RAW/probe.1"
probe "http://$HOST:$NGINX_PORT/hello/x" "$EXP_HELLO" >"$RAW/probe.2"
probe "http://$HOST:$QL_PORT/ping" "$EXP_PING" >"$RAW/probe.3"
probe "http://$HOST:$QL_PORT/hello/x" "$EXP_HELLO" >"$RAW/probe.4"
[ "$CONTRACT_DIFFS" = 0 ] || log "warning: $CONTRACT_DIFFS response(s) differ from the example contract (see the report)"

# Idle connections first, on freshly started servers.
log "idle: $IDLE_CONNS keep-alive connections to nginx"
run_idle nginx "$NGINX_WORKER" "$NGINX_PORT"
NI=("$I_BEFORE" "$I_WITH" "$I_PER" "$I_BASE" "$I_FRESH" "$I_FRESH_MAX" "$I_OPENED" "$I_REUSED" "$I_FRESH_FAILED")
log "idle: $IDLE_CONNS keep-alive connections to quicklane"
if alive "$QL_PID"; then
    run_idle quicklane "$QL_PID" "$QL_PORT"
    QI=("$I_BEFORE" "$I_WITH" "$I_PER" "$I_BASE" "$I_FRESH" "$I_FRESH_MAX" "$I_OPENED" "$I_REUSED" "$I_FRESH_FAILED")
else
    QI=(NA NA NA NA NA NA NA NA NA)
fi

# Throughput: ROUNDS rounds, nginx and quicklane alternating (who goes first
# swaps every round), so drift on the machine hits both alike; the report
# takes medians and pairs each round's quicklane run with its nginx run.
declare -A R
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="nginx quicklane"; else order="quicklane nginx"; fi
    for scen in ping hello; do
        for srv in $order; do
            path=/ping
            [ "$scen" = hello ] && path=/hello/x
            if [ "$srv" = nginx ]; then
                port=$NGINX_PORT pid=$NGINX_WORKER # the process that serves (and uses the CPU)
            else
                port=$QL_PORT pid=$QL_PID
            fi
            run_wrk "$srv-$scen-r$round" "http://$HOST:$port$path" "$pid"
            R[$srv-$scen.$round]="$W_RPS|$W_P50|$W_P99|$W_NON2XX|$W_SOCK|$W_REQS|$W_CPU|$W_CPU_REQ|$W_STALL"
        done
    done
done
QL_AFTER=$(rss_kb "$QL_PID")
NG_AFTER=$(rss_kb "$NGINX_WORKER")
QL_ALIVE=yes
alive "$QL_PID" || {
    QL_ALIVE="NO — it exited during the run (see bench/out/$(basename "$RAW")/quicklane.log)"
    log "warning: quicklane exited during the run"
}

# ------------------------------------------------------------------ report ---
rfield() { echo "${R[$1]}" | cut -d'|' -f"$2"; } # key.round field
all_rounds() { # key field → that field of every round
    local r
    for r in $(seq 1 "$ROUNDS"); do rfield "$1.$r" "$2"; done
}
median_round() { # key → the round whose rps is the median (lower middle; rounds without rps left out)
    local r
    for r in $(seq 1 "$ROUNDS"); do echo "$(rfield "$1.$r" 1) $r"; done |
        awk '$1 != "NA"' | sort -g | awk '{a[NR] = $2} END {print (NR ? a[int((NR + 1) / 2)] : 1)}'
}
paired_ratio() { # scen field num den → median over rounds of num/den, field of quicklane vs nginx
    local scen=$1 f=$2 num=$3 den=$4 r vals=()
    for r in $(seq 1 "$ROUNDS"); do
        vals+=("$(ratio "$(rfield "$num-$scen.$r" "$f")" "$(rfield "$den-$scen.$r" "$f")")")
    done
    median "${vals[@]}" | awk '{ if ($1 == "NA") print; else printf "%.2f\n", $1 }'
}
# Aggregate per server-scenario: fields of the median round, with requests and
# non-2xx summed, socket errors of all rounds, CPU µs/req median, stall max.
declare -A A
for key in nginx-ping quicklane-ping nginx-hello quicklane-hello; do
    mr=$(median_round "$key")
    sock=$(all_rounds "$key" 5 | awk '$0 != "none"' | sort -u | paste -sd';' -)
    A[$key]="$(rfield "$key.$mr" 1)|$(rfield "$key.$mr" 2)|$(rfield "$key.$mr" 3)"
    A[$key]+="|$(all_rounds "$key" 4 | awk '{s += $1} END {print s + 0}')|${sock:-none}"
    A[$key]+="|$(all_rounds "$key" 6 | awk '{s += $1} END {print s + 0}')|$(rfield "$key.$mr" 7)"
    A[$key]+="|$(median $(all_rounds "$key" 8))|$(median $(all_rounds "$key" 9) | awk '{print $1}')"
    A[$key]+="|$(all_rounds "$key" 1 | paste -sd' ' -)"
    A[$key]+="|$(all_rounds "$key" 9 | sort -g | tail -n 1)"
done
field() { echo "${A[$1]}" | cut -d'|' -f"$2"; }

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
NGINX_VER=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
WRK_VER=$( (wrk -v 2>&1 || true) | awk 'NR == 1 {print $1, $2}')
QL_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "uncommitted")

R_PING=$(paired_ratio ping 1 quicklane nginx)
R_HELLO=$(paired_ratio hello 1 quicklane nginx)
# The same comparison by CPU cost (nginx µs/req ÷ quicklane µs/req): steadier
# than rps when something else shares the machine.
C_PING=$(paired_ratio ping 8 nginx quicklane)
C_HELLO=$(paired_ratio hello 8 nginx quicklane)

{
    echo "# quicklane core vs nginx — $(date -u -d "@$START_EPOCH" '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    [ "$SMOKE" = 1 ] && echo "**Smoke run**: 1 s runs and few idle connections prove the harness works; the numbers mean little." && echo
    echo "- command: \`cd $REPO && DURATION=$DURATION WARMUP=$WARMUP ROUNDS=$ROUNDS IDLE_CONNS=$IDLE_CONNS CONNS=$CONNS $INVOCATION\`"
    echo "- machine: $NCPU CPU ($CPU_MODEL), $(uname -sr), $(awk '/^MemTotal:/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM"
    echo "- pinning: $PIN_NOTE"
    echo "- other load: CPUs ${BUSY_BEFORE}% busy in the 3 s before the run$([ "$waited" = 0 ] || echo " (after waiting ${waited}s for quiet)"); load average (1/5/15 min) at start $LOAD_START, at end $LOAD_END. Anything else running on these cores skews rps (CPU µs/req much less)."
    echo "- load: wrk ($WRK_VER) -t1 -c$CONNS -d${DURATION}s --latency, after a ${WARMUP}s warmup, $ROUNDS round(s); loopback $HOST"
    echo "- nginx: $NGINX_VER, 1 worker, access_log off, keepalive_requests 1000000 (bench/nginx.conf.in)"
    echo "- quicklane: $QL_BIN (rev $QL_REV), WORKERS=1 (threads at start: $QL_THREADS)"
    echo "- run time: $(($(date +%s) - START_EPOCH)) s"
    echo
    echo "## Throughput (rps higher is better; latency in µs)"
    echo
    echo "| server | scenario | rps | p50 (µs) | p99 (µs) | vs nginx | requests | non-2xx | socket errors | server CPU µs/req | busy % server / wrk core | CPU stall % | rps per round |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|"
    for key in nginx-ping quicklane-ping nginx-hello quicklane-hello; do
        srv=${key%%-*} scen=${key#*-}
        case $scen in
        ping) desc="GET /ping (static)" ;;
        hello) [ "$srv" = nginx ] && desc="GET /hello/x (regex return)" || desc="GET /hello/x (C handler)" ;;
        esac
        if [ "$srv" = nginx ]; then rr="1.00"; else rr=$(paired_ratio "$scen" 1 quicklane nginx); fi
        echo "| $srv | $desc | $(field "$key" 1) | $(field "$key" 2) | $(field "$key" 3) | $rr | $(field "$key" 6) | $(field "$key" 4) | $(field "$key" 5) | $(field "$key" 8) | $(field "$key" 7) | $(field "$key" 11) | $(field "$key" 10) |"
    done
    echo
    echo "$ROUNDS round(s); who runs first alternates by round. rps, p50, p99 and busy % come from each row's median"
    echo "round (by rps); *vs nginx* is the median over rounds of quicklane's rps over nginx's in the same round;"
    echo "requests and non-2xx add up all rounds; CPU stall % is the worst round."
    echo
    echo "server CPU µs/req: user + system time of the server process over the measured run, per request (lower is"
    echo "better; it still means something when wrk, not the server, is the bottleneck). busy %: the pinned cores"
    echo "over the same window; a wrk core near 100 % with the server core below it means the load tool, not the"
    echo "server, set the rps. CPU stall %: share of the run during which some task waited for a CPU (Linux PSI);"
    echo "with the server and wrk each on its own core it stays near 0, and above 10 % other work competed with the"
    echo "benchmark, so that row's rps is not to be trusted."
    [ -n "$STALLED_RUNS" ] && echo && echo "**Other work competed for the CPUs during:$STALLED_RUNS.** Rerun on a quiet machine (\`QUIET_WAIT=300\`) before quoting these rps."
    echo
    echo "## Idle keep-alive connections ($IDLE_CONNS requested; RSS in KiB, times in µs)"
    echo
    echo "| server | RSS at start | RSS before | RSS with conns | bytes / conn | conns held | fresh GET /ping, 0 idle (median) | fresh GET /ping while held (median / max) | held conns still served after |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    echo "| nginx (worker) | $NG_IDLE_WORKER | ${NI[0]} | ${NI[1]} | ${NI[2]} | ${NI[6]} | ${NI[3]} | ${NI[4]} / ${NI[5]} | ${NI[7]} |"
    echo "| quicklane (C example) | $QL_IDLE | ${QI[0]} | ${QI[1]} | ${QI[2]} | ${QI[6]} | ${QI[3]} | ${QI[4]} / ${QI[5]} | ${QI[7]} |"
    echo
    echo "nginx master RSS at start: $NG_IDLE_MASTER KiB. RSS after the throughput runs: quicklane $QL_AFTER KiB, nginx worker $NG_AFTER KiB."
    echo "quicklane still running at the end: $QL_ALIVE."
    echo
    echo "## Targets (informational)"
    echo
    echo "PASS/MISS go by rps. \"by CPU\": nginx's server CPU µs/req over quicklane's in the same round, median over"
    echo "rounds (above 1 = quicklane cheaper per request)."
    echo
    echo "| target | measured | result |"
    echo "|---|---:|---|"
    r=$(pass "$R_PING" '>=' 0.95)
    case "$STALLED_RUNS " in *ping-r*) r="$r (unreliable: other CPU load)" ;; esac
    [ "$QL_ALIVE" = yes ] || r="$r (quicklane exited during the runs)"
    echo "| native /ping ≥ 0.95× nginx | ${R_PING}× (by CPU ${C_PING}×) | $r |"
    r=$(pass "$R_HELLO" '>=' 0.85)
    case "$STALLED_RUNS " in *hello-r*) r="$r (unreliable: other CPU load)" ;; esac
    grep -q differs "$RAW/probe.4" && r="$r (but its body differs from the contract: see below)"
    [ "$QL_ALIVE" = yes ] || r="$r (quicklane exited during the runs)"
    echo "| /hello/x via C handler ≥ 0.85× nginx | ${R_HELLO}× (by CPU ${C_HELLO}×) | $r |"
    held_note=""
    [ "${QI[6]}" != "$IDLE_CONNS" ] && held_note=" (only ${QI[6]} of $IDLE_CONNS held)"
    [ "$IDLE_CONNS" != 5000 ] && held_note="$held_note (target is for 5000)"
    r=$(pass "${QI[2]}" '<=' 2048)
    [ "${QI[6]}" != "$IDLE_CONNS" ] && r="MISS"
    echo "| $IDLE_CONNS idle conns ≤ 2 KB RSS each$held_note | ${QI[2]} B | $r |"
    fresh_ms=$(awk -v v="${QI[4]}" 'BEGIN { if (v == "NA") print "NA"; else printf "%.2f\n", v / 1000 }')
    r=$(pass "${QI[4]}" '<=' 20000)
    [ "${QI[8]}" != 0 ] && r="$r (${QI[8]} fresh requests failed)"
    echo "| new request ≤ 20 ms while $IDLE_CONNS idle | ${fresh_ms} ms (median) | $r |"
    echo "| idle RSS of the C example ≤ 4 MB | $QL_IDLE KiB | $(pass "$QL_IDLE" '<=' 4096) |"
    echo
    echo "## Responses checked before the runs (status, content-type, body)"
    echo
    echo "- nginx /ping: $(cat "$RAW/probe.1")"
    echo "- nginx /hello/x: $(cat "$RAW/probe.2")"
    echo "- quicklane /ping: $(cat "$RAW/probe.3")"
    echo "- quicklane /hello/x: $(cat "$RAW/probe.4")"
    echo
    echo "Raw wrk and idle_conns outputs, the nginx config used and both servers' logs: \`bench/out/$(basename "$RAW")/\`."
} >"$REPORT"

cat "$REPORT"
[ -z "$STALLED_RUNS" ] || log "warning: other work competed for the CPUs during:$STALLED_RUNS"
log "report written to $REPORT"
exit 0
