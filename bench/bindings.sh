#!/usr/bin/env bash
# bench/bindings.sh — quicklane hosted by Node, Go and Python next to each
# language's usual servers: one run, on loopback, same load tool and settings,
# ratios reported. Never a test assertion: PASS/MISS is information, and the
# exit status is 0 unless the harness itself failed.
#
#   bench/bindings.sh [--smoke] [--only node|go|python]
#
# Environment (all optional):
#   DURATION=5         seconds of each measured wrk run (--smoke: 1)
#   WARMUP=1           seconds of the wrk warmup before each run
#   ROUNDS=3           rounds of every group's runs, order alternating (--smoke: 1)
#   PRIME=3            seconds of wrk on every row once, before round 1 (--smoke: 1)
#   IDLE_CONNS=5000    idle keep-alive connections held open (--smoke: 500)
#   CONNS=64           wrk connections (one wrk thread)
#   SERVER_CPUS=0 LOAD_CPUS=1   taskset CPU ids (default on >= 2 cores)
#   QUIET_WAIT=0       seconds to wait, at most, for the machine to be idle
#   CONTENDED_PCT=10   a run is flagged when other processes used this much
#                      of a CPU (% of one core) during it
#   QL_BENCH_SIGNED=1  print negative "other CPU %" as measured (default: 0)
#   QL_PY=...          Python with the quicklane package
#                      (default: bindings/python/.venv/bin/python)
#
# Peers are installed into bench/out/ (git-ignored) from the registries:
# fastify@5 (npm) into bench/out/peers-node, fastapi + uvicorn[standard] +
# granian (PyPI) into the venv bench/out/peers-venv; the Go peers and the Go
# example are built into bench/out/peers-go. Results go to stdout and to
# bench/out/bindings-<UTC date>.md; raw outputs to bench/out/bindings-raw-<UTC date>/.
# See bench/BINDINGS.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
REPO=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
PEERS=$HERE/peers
INVOCATION="$0${*:+ $*}"

SMOKE=0 ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) SMOKE=1 ;;
    --only)
        [ $# -ge 2 ] || { echo "bindings.sh: --only needs node, go or python" >&2; exit 2; }
        ONLY=$2
        shift
        ;;
    --only=*) ONLY=${1#--only=} ;;
    -h | --help)
        awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "bindings.sh: unknown argument: $1 (try --help)" >&2
        exit 2
        ;;
    esac
    shift
done
case "$ONLY" in "" | node | go | python) ;; *) echo "bindings.sh: --only node|go|python (got '$ONLY')" >&2; exit 2 ;; esac

if [ "$SMOKE" = 1 ]; then
    DURATION=${DURATION:-1} WARMUP=${WARMUP:-1} IDLE_CONNS=${IDLE_CONNS:-500} ROUNDS=${ROUNDS:-1} PRIME=${PRIME:-1}
else
    DURATION=${DURATION:-5} WARMUP=${WARMUP:-1} IDLE_CONNS=${IDLE_CONNS:-5000} ROUNDS=${ROUNDS:-3} PRIME=${PRIME:-3}
fi
CONNS=${CONNS:-64}
CONTENDED_PCT=${CONTENDED_PCT:-10}
C_BIN=$REPO/build/examples/c/example_c_hello
QL_PY=${QL_PY:-$REPO/bindings/python/.venv/bin/python}
START_EPOCH=$(date +%s)
STAMP=$(date -u -d "@$START_EPOCH" +%Y%m%d-%H%M%S)
REPORT=$OUT/bindings-$STAMP.md
RAW=$OUT/bindings-raw-$STAMP
HOST=127.0.0.1

exec 8>&2
log() { printf '[bindings.sh %s] %s\n' "$(date -u +%T)" "$*" >&8; }

# ---------------------------------------------------------------- cleanup ---
declare -A SPID=() SSERVE=() SPORT=() SDESC=() SRSS0=() SLOG=()
IDLE_PID="" CHILD_PID="" FIFO=""
STOP_NOTE=""
stop_server() { # id — the process we started, and a worker it forked (granian)
    local id=$1 serve
    serve=${SSERVE[$id]:-}
    stop_pid "${SPID[$id]:-}"
    [ -z "$serve" ] || [ "$serve" = "${SPID[$id]:-}" ] || ! kill -0 "$serve" 2>/dev/null || STOP_NOTE="${STOP_NOTE:+$STOP_NOTE; }worker outlived its main process"
    [ -n "$serve" ] && [ "$serve" != "${SPID[$id]:-}" ] && kill -0 "$serve" 2>/dev/null && kill -KILL "$serve" 2>/dev/null
    SPID[$id]=""
    return 0
}
cleanup() {
    exec 9>&- 2>/dev/null || true
    stop_pid "$CHILD_PID"
    stop_pid "$IDLE_PID"
    local id
    for id in "${!SPID[@]}"; do stop_server "$id"; done
    [ -n "$FIFO" ] && rm -f "$FIFO"
    return 0
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM


# ---------------------------------------------------------------- helpers ---
USED_PORTS=" "
# user+system ticks of this shell's waited-for children (wrk, via timeout).
child_ticks() { awk '{sub(/^.*\) /, ""); print $14 + $15}' "/proc/$$/stat"; }
# busy ticks summed over all CPUs, and the server CPU's / load CPU's busy+total
all_busy() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; } # user nice system irq softirq
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
    SRV_PIN=(taskset -c "${SERVER_CPUS:-0}") LOAD_PIN=(taskset -c "${LOAD_CPUS:-1}")
    SRV_CPU_ID=${SERVER_CPUS:-0} LOAD_CPU_ID=${LOAD_CPUS:-1}
    PIN_NOTE="servers on CPU ${SERVER_CPUS:-0}, load tools on CPU ${LOAD_CPUS:-1} (taskset, from the environment)"
elif [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
    SRV_PIN=(taskset -c 0) LOAD_PIN=(taskset -c 1)
    SRV_CPU_ID=0 LOAD_CPU_ID=1
    PIN_NOTE="every server process (all its threads) on CPU 0, wrk and idle_conns on CPU 1 (taskset)"
else
    SRV_PIN=() LOAD_PIN=()
    SRV_CPU_ID=none LOAD_CPU_ID=none
    PIN_NOTE="not pinned ($NCPU CPU): server and load tool share the CPU"
fi

# ------------------------------------------------------------ peers/build ---
GROUPS_ON=() SKIPPED=()
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

ensure_tools() {
    local missing="" p
    for p in wrk curl gcc; do
        command -v "$p" >/dev/null || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        log "installing:$missing"
        apt-get update -qq || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null || die "apt-get install$missing failed"
    fi
    if [ ! -x "$C_BIN" ]; then
        log "building quicklane (make -C $REPO build)"
        make -C "$REPO" build >&2 || die "make build failed"
    fi
    [ -x "$C_BIN" ] || die "C example not found at $C_BIN"
    if [ ! -x "$OUT/idle_conns" ] || [ "$HERE/idle_conns.c" -nt "$OUT/idle_conns" ]; then
        cc -O2 -Wall -Wextra -o "$OUT/idle_conns" "$HERE/idle_conns.c" || die "cannot compile idle_conns.c"
    fi
}

setup_node() {
    command -v node >/dev/null && command -v npm >/dev/null || { SKIPPED+=("node: node/npm not found"); return 1; }
    if [ ! -f "$REPO/bindings/node/build/Release/quicklane.node" ]; then
        log "node: building the addon (npm install in bindings/node)"
        (cd "$REPO/bindings/node" && timeout 600 npm install --no-audit --no-fund --loglevel=error) >&2 ||
            { SKIPPED+=("node: the addon did not build (bindings/node: npm install)"); return 1; }
    fi
    if [ ! -f "$OUT/peers-node/node_modules/fastify/package.json" ]; then
        log "node: npm install fastify@5 into bench/out/peers-node"
        mkdir -p "$OUT/peers-node"
        cp "$PEERS/node/package.json" "$OUT/peers-node/package.json"
        (cd "$OUT/peers-node" && timeout 300 npm install --no-audit --no-fund --loglevel=error fastify@5) >&2 ||
            { SKIPPED+=("node: npm install fastify@5 failed"); return 1; }
    fi
    FASTIFY_VER=$(node -p "require('$OUT/peers-node/node_modules/fastify/package.json').version")
    NODE_VER=$(node -v)
}

setup_go() {
    command -v go >/dev/null || { SKIPPED+=("go: go not found"); return 1; }
    local prefix=$REPO/build/go-prefix
    if [ ! -f "$prefix/lib/pkgconfig/quicklane.pc" ]; then
        log "go: cmake --install build --prefix build/go-prefix (as bindings/go/test.sh does)"
        cmake --install "$REPO/build" --prefix "$prefix" >/dev/null || { SKIPPED+=("go: cannot install the library into build/go-prefix"); return 1; }
    fi
    mkdir -p "$OUT/peers-go"
    log "go: building the example and the peers into bench/out/peers-go"
    (
        export PKG_CONFIG_PATH="$prefix/lib/pkgconfig" CGO_LDFLAGS="-Wl,-rpath,$prefix/lib" CGO_ENABLED=1 \
            GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
        cd "$REPO/examples/go/hello" && timeout 300 go build -o "$OUT/peers-go/go-hello" . &&
            cd "$PEERS/go" && timeout 300 go build -o "$OUT/peers-go/nethttp" ./nethttp &&
            timeout 300 go build -o "$OUT/peers-go/handler" ./handler
    ) >&2 || { SKIPPED+=("go: go build failed"); return 1; }
    GO_VER=$(go env GOVERSION)
}

setup_python() {
    [ -f "$REPO/bindings/python/test.sh" ] || { SKIPPED+=("python: bindings/python/test.sh does not exist (binding not there yet)"); return 1; }
    if ! "$QL_PY" -c 'import quicklane._native' 2>/dev/null; then
        log "python: quicklane not importable from $QL_PY; running bindings/python/test.sh to build its venv"
        timeout 900 "$REPO/bindings/python/test.sh" >"$RAW/python-test.log" 2>&1 || true
        "$QL_PY" -c 'import quicklane._native' 2>/dev/null ||
            { SKIPPED+=("python: the quicklane package does not install/import (see $(basename "$RAW")/python-test.log)"); return 1; }
    fi
    local venv=$OUT/peers-venv
    if ! "$venv/bin/python" -c 'import fastapi, uvicorn, uvloop, httptools, granian' 2>/dev/null; then
        log "python: pip install fastapi uvicorn[standard] granian into bench/out/peers-venv"
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || { SKIPPED+=("python: cannot create $venv"); return 1; }
        PIP_DISABLE_PIP_VERSION_CHECK=1 timeout 600 "$venv/bin/pip" install -q fastapi 'uvicorn[standard]' granian >&2 ||
            { SKIPPED+=("python: pip install of the peers failed"); return 1; }
    fi
    PY_VERS=$("$venv/bin/python" -c 'import sys, fastapi, uvicorn, granian, uvloop
print("Python %d.%d.%d" % sys.version_info[:3], "fastapi", fastapi.__version__, "uvicorn", uvicorn.__version__, "uvloop", uvloop.__version__, "granian", granian.__version__)')
    QL_PY_VER=$("$QL_PY" -c 'import sys; print("Python %d.%d.%d" % sys.version_info[:3])')
}

# ---------------------------------------------------------------- servers ---
wait_up() { # pid port seconds — GET /ping answers
    local pid=$1 port=$2 n=$(($3 * 10)) i
    for i in $(seq 1 "$n"); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -s -o /dev/null -m 1 "http://$HOST:$port/ping" && return 0
        sleep 0.1
    done
    return 1
}
# start_server ID "description" [--cwd DIR] [--worker] -- ENV=... CMD ARGS (PORT and WORKERS=1 set)
start_server() {
    local id=$1 desc=$2 cwd="" worker=0 port pid i
    shift 2
    while [ "$1" != -- ]; do
        case "$1" in --cwd) cwd=$2; shift ;; --worker) worker=1 ;; esac
        shift
    done
    shift
    port=$(free_port) || die "no free port"
    SLOG[$id]=$RAW/server-$id.log
    local a args=()
    for a in "$@"; do
        [ "$a" = @PORT@ ] && a=$port
        args+=("$a")
    done
    (
        [ -z "$cwd" ] || cd "$cwd"
        exec env PORT="$port" WORKERS=1 GOMAXPROCS=1 "${SRV_PIN[@]}" env "${args[@]}"
    ) >"${SLOG[$id]}" 2>&1 &
    pid=$!
    SPID[$id]=$pid SPORT[$id]=$port SDESC[$id]=$desc SSERVE[$id]=$pid
    if ! wait_up "$pid" "$port" 40; then
        tail -n 20 "${SLOG[$id]}" >&2 || true
        SKIPPED+=("$id ($desc) did not come up on port $port: see $(basename "$RAW")/server-$id.log")
        stop_server "$id"
        return 1
    fi
    if [ "$worker" = 1 ]; then # the serving process is a child (granian's worker)
        for i in $(seq 1 30); do
            SSERVE[$id]=$(cat /proc/"$pid"/task/*/children 2>/dev/null | awk '{print $1; exit}')
            [ -n "${SSERVE[$id]}" ] && break
            sleep 0.1
        done
        [ -n "${SSERVE[$id]}" ] || SSERVE[$id]=$pid
    fi
    sleep 0.5
    SRSS0[$id]=$(rss_kb "${SSERVE[$id]}")
    [ "${SSERVE[$id]}" != "$pid" ] && SRSS0[$id]="${SRSS0[$id]} (+ main $(rss_kb "$pid"))"
    log "$id: $desc on $port (pid ${SSERVE[$id]}, RSS ${SRSS0[$id]} KiB)"
    return 0
}

# One response as "status content-type body", flagged when it differs.
CONTRACT_DIFFS=0
PROBES=()
is_ql() { case $1 in c | *-ql | *-ql-sync | go-handler) echo yes ;; *) echo no ;; esac; }
probe() { # id path expected
    local got url="http://$HOST:${SPORT[$1]}$2"
    got=$(curl -s -m 2 -o "$RAW/probe.body" -w '%{http_code} %{content_type}' "$url" 2>/dev/null || printf 'ERR')
    got="$got $(head -c 200 "$RAW/probe.body" 2>/dev/null)"
    if [ "$got" = "$3" ]; then
        PROBES+=("$1 ${SDESC[$1]} GET $2: \`$got\` (as the contract says)")
    elif [ "$(is_ql "$1")" = no ] && [ "${got/; charset=utf-8/}" = "$3" ]; then
        PROBES+=("$1 ${SDESC[$1]} GET $2: \`$got\` (the contract, with a charset parameter: the peer's default)")
    else
        PROBES+=("$1 ${SDESC[$1]} GET $2: \`$got\` — **differs from the contract** (\`$3\`)")
        CONTRACT_DIFFS=$((CONTRACT_DIFFS + 1))
    fi
}
probe_echo() { # id
    local got
    got=$(curl -s -m 2 -X POST -H 'content-type: application/json' -d '{"a":[1,2]}' -w ' %{http_code}' \
        "http://$HOST:${SPORT[$1]}/echo" 2>/dev/null || printf 'ERR')
    PROBES+=("$1 ${SDESC[$1]} POST /echo {\"a\":[1,2]}: \`$got\`")
}
EXP_PING='200 application/json {"message":"pong"}'
EXP_HELLO='200 application/json {"hello":"x"}'

# ------------------------------------------------------------ idle conns ---
declare -A IDLE=()
run_idle() { # id → IDLE[id]="before|with|per|opened|base|fresh|fmax|reused|ffailed"
    local id=$1 pid=${SSERVE[$1]} port=${SPORT[$1]} out i before with
    out=$RAW/idle-$id.txt
    if ! alive "$pid"; then IDLE[$id]="NA|NA|NA|NA|NA|NA|NA|NA|NA"; return 0; fi
    log "idle: $IDLE_CONNS keep-alive connections to $id"
    FIFO=$RAW/idle-$id.fifo
    rm -f "$FIFO"
    mkfifo "$FIFO"
    before=$(rss_kb "$pid")
    timeout -k 5 240 "${LOAD_PIN[@]}" "$OUT/idle_conns" -n "$IDLE_CONNS" -t 21 -H 120 "$HOST" "$port" \
        <"$FIFO" >"$out" 2>&1 &
    IDLE_PID=$!
    exec 9>"$FIFO"
    with=NA
    for i in $(seq 1 1500); do
        if grep -qx ready "$out" 2>/dev/null; then
            with=$(rss_kb "$pid")
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
    local opened per
    opened=$(kv opened)
    per=$(awk -v a="$before" -v b="$with" -v n="$opened" 'BEGIN {
        if (a == "NA" || b == "NA" || n == "NA" || n + 0 == 0) print "NA"; else printf "%.0f\n", (b - a) * 1024 / n }')
    IDLE[$id]="$before|$with|$per|$opened|$(kv baseline_fresh_us_median)|$(kv fresh_us_median)|$(kv fresh_us_max)|$(kv reused_ok)|$(kv fresh_failed)"
}

# ------------------------------------------------------------- throughput ---
declare -A R=() # R[run-label.round]="rps|p50|p99|non2xx|sock|reqs|cpu_req|other|stall|busy"
CONTENDED=""
run_wrk() { # label id path round
    local label=$1 id=$2 path=$3 round=$4 pid=${SSERVE[$2]} out url
    url="http://$HOST:${SPORT[$id]}$path"
    out=$RAW/wrk-$label-r$round.txt
    if ! alive "$pid"; then
        echo "server not running" >"$out"
        R[$label.$round]="NA|NA|NA|NA|server not running|NA|NA|NA|NA|NA"
        return 0
    fi
    log "wrk $label r$round ($path on $id): ${WARMUP}s warmup + ${DURATION}s"
    run_child timeout -k 5 $((WARMUP + 30)) "${LOAD_PIN[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >"$out.warmup" 2>&1 || true
    local c0 c1 p0 p1 s0 s1 t0 t1 b0 b1 w0 w1
    c0=$(cpu_snap) p0=$(proc_ticks "$pid") s0=$(psi_some) b0=$(all_busy) w0=$(child_ticks) t0=$(now_us)
    run_child timeout -k 5 $((DURATION + 30)) "${LOAD_PIN[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$out" 2>&1 || true
    w1=$(child_ticks) b1=$(all_busy) c1=$(cpu_snap) p1=$(proc_ticks "$pid") s1=$(psi_some) t1=$(now_us)
    local rps p50 p99 reqs non2xx sock cpureq other stall busy wn ws
    stall=$(awk -v a="$s0" -v b="$s1" -v t="$((t1 - t0))" 'BEGIN {
        if (a == "NA" || b == "NA" || t <= 0) print "NA"; else printf "%.0f\n", 100 * (b - a) / t }')
    # CPU time used by anything but this server and wrk, in % of one core.
    other=$(awk -v b0="$b0" -v b1="$b1" -v p0="$p0" -v p1="$p1" -v w0="$w0" -v w1="$w1" -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN {
        if (p0 == "NA" || p1 == "NA" || t <= 0) { print "NA"; exit }
        o = (b1 - b0) - (p1 - p0) - (w1 - w0); if (ENVIRON["QL_BENCH_SIGNED"] == "" && o < 0) o = 0
        printf "%.0f\n", 100 * o / hz / (t / 1e6) }')
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f\n", $2; f = 1} END {if (!f) print "NA"}' "$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    reqs=$(awk '/ requests in / {print $1; f = 1} END {if (!f) print 0}' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF; f = 1} END {if (!f) print 0}' "$out")
    busy=$(awk -v a="$c0" -v b="$c1" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        if (x[2] == "" || y[2] == x[2] || y[4] == x[4]) { print "NA"; exit }
        printf "%.0f/%.0f\n", 100 * (y[1] - x[1]) / (y[2] - x[2]), 100 * (y[3] - x[3]) / (y[4] - x[4]) }')
    cpureq=$(awk -v a="$p0" -v b="$p1" -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN {
        if (a == "NA" || b == "NA" || n == "" || n + 0 == 0) print "NA"; else printf "%.1f\n", (b - a) / hz * 1e6 / n }')
    sock=$(awk '/Socket errors:/ {gsub(/^ *Socket errors: /, ""); print; f = 1} END {if (!f) print "none"}' "$out")
    wn=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out.warmup")
    ws=$(awk '/Socket errors:/ {gsub(/^ *Socket errors: /, ""); print}' "$out.warmup")
    [ -n "$wn$ws" ] && sock="$sock; warmup: ${wn:+non-2xx $wn }${ws}"
    alive "$pid" || sock="$sock; SERVER EXITED"
    awk -v v="$other" -v l="$CONTENDED_PCT" 'BEGIN { exit !(v != "NA" && v + 0 >= l + 0) }' && CONTENDED="$CONTENDED $label-r$round"
    R[$label.$round]="$rps|$p50|$p99|$non2xx|$sock|$reqs|$cpureq|$other|$stall|$busy"
}
rfield() { echo "${R[$1]:-NA|NA|NA|NA|NA|NA|NA|NA|NA|NA}" | cut -d'|' -f"$2"; }
all_rounds() { local r; for r in $(seq 1 "$ROUNDS"); do rfield "$1.$r" "$2"; done; }
median_round() {
    local r
    for r in $(seq 1 "$ROUNDS"); do echo "$(rfield "$1.$r" 1) $r"; done |
        awk '$1 != "NA"' | sort -g | awk '{a[NR] = $2} END {print (NR ? a[int((NR + 1) / 2)] : 1)}'
}
paired() { # num den field → "median|per-round list" of num/den (same round)
    local r vals=()
    for r in $(seq 1 "$ROUNDS"); do vals+=("$(ratio "$(rfield "$1.$r" "$3")" "$(rfield "$2.$r" "$3")")"); done
    echo "$(median "${vals[@]}" | awk '{ if ($1 == "NA") print; else printf "%.2f\n", $1 }')|${vals[*]}"
}
contended_rounds() { # label... → "r1 r3" of rounds where any of them was contended
    local r l out=""
    for r in $(seq 1 "$ROUNDS"); do
        for l in "$@"; do case "$CONTENDED " in *" $l-r$r "*) out="$out r$r"; break ;; esac; done
    done
    echo "${out# }"
}

# ----------------------------------------------------------------- groups ---
# A group: servers started together, the C example among them; RUNS are
# "label|server id|path|description"; every round runs them all, in reverse
# order every other round.
REPORT_BODY=$RAW/report-body.md

group_report() { # title runs-array-name targets-array-name idle-ids...
    local title=$1 runs_name=$2 tg_name=$3
    shift 3
    local -n runs=$runs_name tgs=$tg_name
    local spec label id path desc mr sock base
    {
        echo "## $title"
        echo
        echo "| server | scenario | rps | p50 (µs) | p99 (µs) | requests | non-2xx | socket errors | server CPU µs/req | busy % server/wrk core | other CPU % (max) | PSI stall % (max) | rps per round | contended rounds |"
        echo "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|"
        for spec in "${runs[@]}"; do
            IFS='|' read -r label id path desc <<<"$spec"
            mr=$(median_round "$label")
            sock=$(all_rounds "$label" 5 | awk '$0 != "none" && $0 != "NA"' | sort -u | paste -sd';' -)
            echo "| ${SDESC[$id]} | $desc | $(rfield "$label.$mr" 1) | $(rfield "$label.$mr" 2) | $(rfield "$label.$mr" 3) | $(all_rounds "$label" 6 | awk '{s += $1} END {print s + 0}') | $(all_rounds "$label" 4 | awk '{s += $1} END {print s + 0}') | ${sock:-none} | $(median $(all_rounds "$label" 7)) | $(rfield "$label.$mr" 10) | $(all_rounds "$label" 8 | sort -g | tail -n 1) | $(all_rounds "$label" 9 | sort -g | tail -n 1) | $(all_rounds "$label" 1 | paste -sd' ' -) | $(contended_rounds "$label") |"
        done
        echo
        echo "### Targets (informational; ratio = median over rounds of the same-round rps ratio)"
        echo
        echo "| target | ratio | per round | by CPU µs/req | result | contended rounds |"
        echo "|---|---:|---|---:|---|---|"
        local t num den op lim what pr rr cpu res cr
        for t in "${tgs[@]}"; do
            IFS='|' read -r what num den op lim <<<"$t"
            pr=$(paired "$num" "$den" 1)
            rr=${pr%%|*}
            cpu=$(paired "$den" "$num" 7)
            cpu=${cpu%%|*}
            res=$(pass "$rr" "$op" "$lim")
            cr=$(contended_rounds "$num" "$den")
            [ -n "$cr" ] && res="$res (contended: $cr)"
            echo "| $what | ${rr}× | ${pr#*|} | ${cpu}× | $res | ${cr:-none} |"
        done
        echo
        local seen=" " rl=""
        for spec in "${runs[@]}"; do
            IFS='|' read -r label id path desc <<<"$spec"
            case "$seen" in *" $id "*) continue ;; esac
            seen="$seen$id "
            rl="$rl; ${SDESC[$id]} ${SRSS0[$id]}"
        done
        echo "RSS at start (KiB, VmRSS of the serving process):${rl#;}."
        if [ $# -gt 0 ]; then
            echo
            echo "### Idle keep-alive connections ($IDLE_CONNS requested; RSS in KiB, times in µs)"
            echo
            echo "| server | RSS at start | RSS before | RSS with conns | bytes / conn | conns held | fresh GET /ping, 0 idle (median) | fresh GET /ping while held (median / max) | held conns still served after | RSS after the runs |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            local b
            for id in "$@"; do
                IFS='|' read -r -a b <<<"${IDLE[$id]:-NA|NA|NA|NA|NA|NA|NA|NA|NA}"
                echo "| ${SDESC[$id]} | ${SRSS0[$id]} | ${b[0]} | ${b[1]} | ${b[2]} | ${b[3]} | ${b[4]} | ${b[5]} / ${b[6]} | ${b[7]} | ${SRSS_END[$id]:-NA} |"
            done
        fi
        echo
    } >>"$REPORT_BODY"
}

declare -A SRSS_END=()
ODD=()
run_group() { # group-name runs-array-name servers…: rounds, then RSS/alive notes
    local g=$1 runs_name=$2
    local -n runs=$runs_name
    local round i n spec label id path desc order=()
    n=${#runs[@]}
    # Prime every row once before round 1: JIT-compiled servers (V8, and
    # Python's adaptive interpreter) need seconds of load to reach their pace,
    # and a one-second warmup would leave the first rows of round 1 cold.
    if [ "$PRIME" -gt 0 ]; then
        for i in $(seq 0 $((n - 1))); do
            IFS='|' read -r label id path desc <<<"${runs[$i]}"
            alive "${SSERVE[$id]}" || continue
            log "prime $label: ${PRIME}s"
            run_child timeout -k 5 $((PRIME + 30)) "${LOAD_PIN[@]}" wrk -t1 -c"$CONNS" -d"${PRIME}s" \
                "http://$HOST:${SPORT[$id]}$path" >"$RAW/prime-$label.txt" 2>&1 || true
        done
    fi
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then order=($(seq 0 $((n - 1)))); else order=($(seq $((n - 1)) -1 0)); fi
        for i in "${order[@]}"; do
            IFS='|' read -r label id path desc <<<"${runs[$i]}"
            run_wrk "$label" "$id" "$path" "$round"
        done
    done
}

finish_servers() { # ids…: RSS after, alive?, log oddities, stop
    local id
    for id in "$@"; do
        [ -n "${SPID[$id]:-}" ] || continue
        SRSS_END[$id]=$(rss_kb "${SSERVE[$id]}")
        alive "${SSERVE[$id]}" || ODD+=("$id (${SDESC[$id]}) **exited during the run** (see $(basename "$RAW")/server-$id.log)")
        stop_server "$id"
        if [ -n "$STOP_NOTE" ] && [ "$(is_ql "$id")" = yes ]; then ODD+=("$id (${SDESC[$id]}) on stop: $STOP_NOTE"); fi
    done
    return 0
}

# ===================================================================== run ===
mkdir -p "$OUT" "$RAW"
: >"$REPORT_BODY"
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
    log "warning: the CPUs are ${BUSY_BEFORE}% busy before the run: rps will be skewed"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
ensure_tools
want node && setup_node && GROUPS_ON+=(node)
want go && setup_go && GROUPS_ON+=(go)
want python && setup_python && GROUPS_ON+=(python)
[ ${#GROUPS_ON[@]} -gt 0 ] || { for s in "${SKIPPED[@]}"; do log "skipped: $s"; done; die "no group to run"; }

NOFILE=65536
ulimit -n "$NOFILE" 2>/dev/null || {
    NOFILE=$(ulimit -Hn)
    [ "$NOFILE" = unlimited ] && NOFILE=1048576
    ulimit -n "$NOFILE"
}
[ "$NOFILE" -ge $((IDLE_CONNS + CONNS + 64)) ] || log "warning: nofile limit $NOFILE is below IDLE_CONNS=$IDLE_CONNS + wrk"

# The C example is the reference of every "native /ping" row; up for the whole run.
start_server c "C example (WORKERS=1)" -- "$C_BIN" || die "the C example did not start"
probe c /ping "$EXP_PING"

for g in "${GROUPS_ON[@]}"; do
    case $g in
    node)
        start_server node-ql "quicklane in Node (examples/node/hello.js)" -- node "$REPO/examples/node/hello.js" || continue
        start_server node-fastify "Fastify $FASTIFY_VER" -- PEERS_NODE_MODULES="$OUT/peers-node/node_modules" node "$PEERS/node/fastify.js" || { stop_server node-ql; continue; }
        start_server node-http "node:http (plain)" -- node "$PEERS/node/nodehttp.js" || true
        for id in node-ql node-fastify node-http c; do [ -n "${SPID[$id]:-}" ] || continue; probe "$id" /hello/x "$EXP_HELLO"; done
        for id in node-ql node-fastify node-http; do [ -n "${SPID[$id]:-}" ] || continue; probe "$id" /ping "$EXP_PING"; probe_echo "$id"; done
        run_idle node-ql
        run_idle node-fastify
        NODE_RUNS=("node-ql-hello|node-ql|/hello/x|GET /hello/x (JS handler)"
            "node-fastify-hello|node-fastify|/hello/x|GET /hello/x (Fastify route)")
        [ -n "${SPID[node-http]:-}" ] && NODE_RUNS+=("node-http-hello|node-http|/hello/x|GET /hello/x (node:http handler, info)")
        NODE_RUNS+=("node-ql-ping|node-ql|/ping|GET /ping (native static)" "node-c-ping|c|/ping|GET /ping (native static)")
        NODE_TG=("JS /hello/x ≥ 2× Fastify 5|node-ql-hello|node-fastify-hello|>=|2"
            "Node-hosted native /ping ≥ 0.9× C example|node-ql-ping|node-c-ping|>=|0.9")
        [ -n "${SPID[node-http]:-}" ] && NODE_TG+=("(info) JS /hello/x vs plain node:http|node-ql-hello|node-http-hello|>=|1")
        run_group node NODE_RUNS
        finish_servers node-ql node-fastify node-http
        group_report "Node ($NODE_VER): quicklane's Node binding vs Fastify $FASTIFY_VER" NODE_RUNS NODE_TG node-ql node-fastify
        ;;
    go)
        start_server go-ql "quicklane in Go (examples/go/hello)" -- "$OUT/peers-go/go-hello" || continue
        start_server go-nethttp "net/http (ServeMux)" -- "$OUT/peers-go/nethttp" || { stop_server go-ql; continue; }
        start_server go-handler "quicklane.Handler(same mux)" -- "$OUT/peers-go/handler" || true
        for id in go-ql go-nethttp go-handler; do
            [ -n "${SPID[$id]:-}" ] || continue
            probe "$id" /hello/x "$EXP_HELLO"; probe "$id" /ping "$EXP_PING"; probe_echo "$id"
        done
        run_idle go-ql
        run_idle go-nethttp
        GO_RUNS=("go-ql-hello|go-ql|/hello/x|GET /hello/x (Go handler)"
            "go-nethttp-hello|go-nethttp|/hello/x|GET /hello/x (net/http handler)")
        [ -n "${SPID[go-handler]:-}" ] && GO_RUNS+=("go-handler-hello|go-handler|/hello/x|GET /hello/x (net/http mux via quicklane.Handler)")
        GO_RUNS+=("go-ql-ping|go-ql|/ping|GET /ping (native static)" "go-c-ping|c|/ping|GET /ping (native static)")
        GO_TG=("Go handler /hello/x ≥ 1.0× net/http|go-ql-hello|go-nethttp-hello|>=|1.0")
        [ -n "${SPID[go-handler]:-}" ] && GO_TG+=("quicklane.Handler(mux) /hello/x ≥ 0.8× net/http|go-handler-hello|go-nethttp-hello|>=|0.8")
        GO_TG+=("Go-hosted native /ping ≥ 0.9× C example|go-ql-ping|go-c-ping|>=|0.9")
        run_group go GO_RUNS
        finish_servers go-ql go-nethttp go-handler
        group_report "Go ($GO_VER, GOMAXPROCS=1): quicklane's Go binding vs net/http" GO_RUNS GO_TG go-ql go-nethttp
        ;;
    python)
        start_server py-ql "quicklane in Python (async def, peers/python/ql_async.py)" -- "$QL_PY" "$PEERS/python/ql_async.py" || continue
        start_server py-ql-sync "quicklane in Python (def, examples/python/hello.py)" -- "$QL_PY" "$REPO/examples/python/hello.py" || true
        start_server py-fastapi "FastAPI on uvicorn[standard]" --cwd "$PEERS/python" -- "$OUT/peers-venv/bin/uvicorn" fastapi_app:app \
            --host "$HOST" --port @PORT@ --no-access-log --log-level warning --timeout-keep-alive 300 || true
        start_server py-granian "Granian RSGI (minimal app)" --cwd "$PEERS/python" --worker -- "$OUT/peers-venv/bin/granian" --interface rsgi \
            --host "$HOST" --port @PORT@ --workers 1 --runtime-threads 1 --no-access-log --log-level warning granian_rsgi:app || true
        for id in py-ql py-ql-sync py-fastapi py-granian; do
            [ -n "${SPID[$id]:-}" ] || continue
            probe "$id" /hello/x "$EXP_HELLO"; probe "$id" /ping "$EXP_PING"; probe_echo "$id"
        done
        run_idle py-ql
        [ -n "${SPID[py-fastapi]:-}" ] && run_idle py-fastapi
        PY_RUNS=("py-ql-hello|py-ql|/hello/x|GET /hello/x (async def handler)")
        [ -n "${SPID[py-fastapi]:-}" ] && PY_RUNS+=("py-fastapi-hello|py-fastapi|/hello/x|GET /hello/x (FastAPI async def)")
        [ -n "${SPID[py-granian]:-}" ] && PY_RUNS+=("py-granian-hello|py-granian|/hello/x|GET /hello/x (RSGI handler)")
        [ -n "${SPID[py-ql-sync]:-}" ] && PY_RUNS+=("py-qlsync-hello|py-ql-sync|/hello/x|GET /hello/x (def handler, info)")
        PY_RUNS+=("py-ql-ping|py-ql|/ping|GET /ping (native static)" "py-c-ping|c|/ping|GET /ping (native static)")
        PY_TG=()
        [ -n "${SPID[py-fastapi]:-}" ] && PY_TG+=("async /hello/x ≥ 5× FastAPI on uvicorn|py-ql-hello|py-fastapi-hello|>=|5")
        [ -n "${SPID[py-granian]:-}" ] && PY_TG+=("async /hello/x ≥ 1.2× Granian RSGI|py-ql-hello|py-granian-hello|>=|1.2")
        PY_TG+=("Python-hosted native /ping ≥ 0.9× C example|py-ql-ping|py-c-ping|>=|0.9")
        [ -n "${SPID[py-fastapi]:-}" ] && [ -n "${SPID[py-ql-sync]:-}" ] && PY_TG+=("(info) def /hello/x (the example) vs FastAPI|py-qlsync-hello|py-fastapi-hello|>=|5")
        run_group python PY_RUNS
        finish_servers py-ql py-ql-sync py-fastapi py-granian
        group_report "Python: quicklane's Python binding vs FastAPI/uvicorn and Granian" PY_RUNS PY_TG py-ql py-fastapi
        ;;
    esac
done
finish_servers c

# Oddities of the quicklane servers: non-2xx, socket errors, log lines, exits.
for key in "${!R[@]}"; do
    label=${key%.*}
    case $label in *-ql-* | *-handler-* | *-qlsync-* | *-c-*) ;; *) continue ;; esac
    n=$(rfield "$key" 4) s=$(rfield "$key" 5)
    [ "$n" != 0 ] && [ "$n" != NA ] && ODD+=("$label round ${key##*.}: $n non-2xx responses")
    [ "$s" != none ] && ODD+=("$label round ${key##*.}: socket errors: $s")
done
for id in "${!SLOG[@]}"; do
    case $id in *ql* | go-handler | c) ;; *) continue ;; esac
    # Everything but the start-up line is worth a look.
    extra=$(grep -viE ' on http://|^quicklane .* on |listening|^$' "${SLOG[$id]}" 2>/dev/null | head -n 5 || true)
    [ -n "$extra" ] && ODD+=("$id log: \`$(echo "$extra" | tr '\n' ' ' | cut -c1-300)\`")
done
for id in "${!IDLE[@]}"; do
    case $id in *ql*) ;; *) continue ;; esac
    IFS='|' read -r -a b <<<"${IDLE[$id]}"
    [ "${b[3]}" != "$IDLE_CONNS" ] && ODD+=("$id held only ${b[3]} of $IDLE_CONNS idle connections")
    [ "${b[7]}" != "${b[3]}" ] && ODD+=("$id served ${b[7]} of ${b[3]} held connections afterwards")
    [ "${b[8]}" != 0 ] && ODD+=("$id: ${b[8]} fresh requests failed during the idle test")
done

# ------------------------------------------------------------------ report ---
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
WRK_VER=$( (wrk -v 2>&1 || true) | awk 'NR == 1 {print $1, $2}')
QL_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
QL_DIRTY=$(git -C "$REPO" status --porcelain 2>/dev/null | grep -qv '^?? bench/' && echo " + uncommitted changes" || true)
{
    echo "# quicklane bindings vs their peers — $(date -u -d "@$START_EPOCH" '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    [ "$SMOKE" = 1 ] && echo "**Smoke run**: 1 s runs and few idle connections prove the harness works; the numbers mean little." && echo
    echo "- command: \`cd $REPO && DURATION=$DURATION WARMUP=$WARMUP PRIME=$PRIME ROUNDS=$ROUNDS IDLE_CONNS=$IDLE_CONNS CONNS=$CONNS $INVOCATION\`"
    echo "- machine: $NCPU CPU ($CPU_MODEL), $(uname -sr), $(awk '/^MemTotal:/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM"
    echo "- date: $(date -u -d "@$START_EPOCH" '+%Y-%m-%d %H:%M:%S UTC'); run time $(($(date +%s) - START_EPOCH)) s"
    echo "- pinning: $PIN_NOTE; every server: 1 worker / 1 process (WORKERS=1, GOMAXPROCS=1, granian --workers 1 --runtime-threads 1, uvicorn one process)"
    echo "- other load: CPUs ${BUSY_BEFORE}% busy in the 3 s before the run$([ "$waited" = 0 ] || echo " (after waiting ${waited}s for quiet)"); load average at start $LOAD_START, at end $LOAD_END"
    echo "- load: wrk ($WRK_VER) -t1 -c$CONNS -d${DURATION}s --latency after a ${WARMUP}s warmup, $ROUNDS round(s) after a ${PRIME}s priming run of every row, the group's runs in reverse order every other round; loopback $HOST"
    echo "- quicklane: rev $QL_REV$QL_DIRTY; C example $C_BIN"
    echo "- versions:${NODE_VER:+ Node $NODE_VER, Fastify $FASTIFY_VER;}${GO_VER:+ $GO_VER;}${PY_VERS:+ peers: $PY_VERS; quicklane Python: $QL_PY_VER ($QL_PY)}"
    for s in "${SKIPPED[@]}"; do echo "- **skipped**: $s"; done
    echo
    echo "Columns: rps, p50, p99 and busy % come from each row's median round (by rps); requests and non-2xx add"
    echo "up all rounds. *server CPU µs/req*: user+system time of the serving process (all threads) per request."
    echo "*other CPU %*: CPU time used during the run by anything but the server and wrk, in % of one core; a run"
    echo "with ≥ ${CONTENDED_PCT} % is **contended** (listed per row and per target). *PSI stall %*: share of the run"
    echo "during which some task waited for a CPU (/proc/pressure/cpu); servers with several threads on their one"
    echo "pinned core (quicklane's loop thread + the host's thread in Go and Python) raise it by themselves, so it"
    echo "is shown, not used for the flag. *by CPU µs/req*: peer's CPU µs/req over quicklane's (above 1 = cheaper)."
    echo
    if [ -n "$CONTENDED" ]; then
        echo "**Contended runs (other work on the machine):$CONTENDED.** Their rps is not to be trusted; rerun with \`QUIET_WAIT=300\`."
    else
        echo "No run was contended (other CPU use stayed under ${CONTENDED_PCT} % of a core)."
    fi
    echo
    cat "$REPORT_BODY"
    echo "## Responses checked before the runs"
    echo
    for p in "${PROBES[@]}"; do echo "- $p"; done
    echo
    echo "## quicklane servers: errors, non-2xx, exits"
    echo
    if [ ${#ODD[@]} = 0 ]; then echo "- nothing: no non-2xx, no socket errors, no log lines besides start-up, no exit."; fi
    for o in "${ODD[@]}"; do echo "- $o"; done
    [ "$CONTRACT_DIFFS" = 0 ] || echo "- $CONTRACT_DIFFS response(s) differ from the contract (above)"
    echo
    echo "Raw wrk and idle_conns outputs and every server's log: \`bench/out/$(basename "$RAW")/\`."
} >"$REPORT"
cat "$REPORT"
[ -z "$CONTENDED" ] || log "warning: contended runs:$CONTENDED"
log "report written to $REPORT"
exit 0
