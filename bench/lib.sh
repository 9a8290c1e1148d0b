#!/usr/bin/env bash
# Helpers of bench/run (sourced, not run). They read globals the script sets:
# HOST, OUT, RAW, USED_PORTS, SRV_CPU_ID, LOAD_CPU_ID, CHILD_PID, CONNS,
# WARMUP, DURATION, IDLE_CONNS, CONTENDED_PCT; log() and launch_server() come
# from the script; STOP_WAIT (tenths of a second a process gets after SIGTERM)
# defaults to 50.

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

die() {
    log "harness failure: $*"
    exit 1
}

# Runs a command as a background child and waits for it, so a signal to the
# script is handled at once (bash defers traps while a foreground child runs).
run_child() {
    local rc=0
    "$@" &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    return "$rc"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo NA; }

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 12000)) # below the ephemeral range
        case "$USED_PORTS" in *" $p "*) continue ;; esac
        if ! port_in_use "$p"; then
            USED_PORTS="$USED_PORTS$p "
            echo "$p"
            return 0
        fi
    done
    return 1
}

# Latency value from wrk ("245.12us", "1.20ms", "2.01s") → integer microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        if (v == "" || v == "NA") { print "NA"; exit }
        n = v + 0
        if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1000000; else m = 1
        printf "%.0f\n", n * m }'
}

# CPU time (user + system, all threads) a process has used, in clock ticks.
proc_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo NA; }

# "busy total busy total" jiffies of the server CPU and the load CPU (from /proc/stat).
cpu_snap() {
    awk -v a="cpu$SRV_CPU_ID" -v b="cpu$LOAD_CPU_ID" '
        function busy() { return $2 + $3 + $4 + $7 + $8 + $9 }
        $1 == a { ba = busy(); ta = ba + $5 + $6 }
        $1 == b { bb = busy(); tb = bb + $5 + $6 }
        END { if (ta == "" || tb == "") print "NA"; else print ba, ta, bb, tb }' /proc/stat
}

# Microseconds during which some task waited for a CPU (PSI), or NA.
psi_some() { awk '/^some/ {sub(/total=/, "", $5); print $5; f = 1} END {if (!f) print "NA"}' /proc/pressure/cpu 2>/dev/null || echo NA; }

now_us() { echo $(($(date +%s%N) / 1000)); }

median() { # numbers (NA ignored) → median, or NA
    printf '%s\n' "$@" | awk '/^[0-9.]+$/' | sort -g | awk '{a[NR] = $1}
        END { if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2];
              else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

pass() { # value op limit
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "NA" || v == "") { print "MISS (no value)"; exit }
        ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0)
        print ok ? "PASS" : "MISS" }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || a == "" || b == "" || b + 0 == 0) print "NA"; else printf "%.2f\n", a / b }'; }

stop_pid() { # pid — TERM, wait up to STOP_WAIT/10 s, then KILL; only our own children
    local pid=$1 i rc=0
    STOP_NOTE=""
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 "${STOP_WAIT:-50}"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && STOP_NOTE="still running $((${STOP_WAIT:-50} / 10)) s after SIGTERM: killed"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || rc=$?
    [ -z "$STOP_NOTE" ] && [ "$rc" != 0 ] && [ "$rc" != 143 ] && STOP_NOTE="exit status $rc after SIGTERM"
    return 0
}

# ------------------------------------------------------------------------
# bench/run's machinery, kept here so that the script itself reads as the
# list of servers and scenarios.

# Percent of all CPUs busy over the next 3 seconds.
busy_3s() {
    local a b
    a=$(awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
    sleep 3
    b=$(awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
        printf "%.0f\n", (y[2] > x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0 }'
}

# Waits (at most QUIET_WAIT s) for the CPUs to be under 10 % busy; sets BUSY_BEFORE, WAITED.
wait_quiet() {
    WAITED=0
    while :; do
        BUSY_BEFORE=$(busy_3s)
        awk -v b="$BUSY_BEFORE" 'BEGIN { exit !(b < 10) }' && break
        [ "$WAITED" -lt "${QUIET_WAIT:-0}" ] || break
        [ "$WAITED" = 0 ] && log "machine ${BUSY_BEFORE}% busy; waiting up to ${QUIET_WAIT}s for it to be quiet"
        sleep 2
        WAITED=$((WAITED + 5))
    done
    awk -v b="$BUSY_BEFORE" 'BEGIN { exit !(b >= 10) }' &&
        log "warning: the CPUs are ${BUSY_BEFORE}% busy before the run: something else is using them; rps will be skewed"
    return 0
}

# Server on one CPU, load tools on the other (SERVER_CPUS / LOAD_CPUS override).
setup_pinning() {
    NCPU=$(nproc)
    if [ -n "${SERVER_CPUS:-}" ] || [ -n "${LOAD_CPUS:-}" ]; then
        SRV_CPU_ID=${SERVER_CPUS:-0} LOAD_CPU_ID=${LOAD_CPUS:-1}
        PIN_NOTE="servers on CPU $SRV_CPU_ID, load tools on CPU $LOAD_CPU_ID (taskset, from the environment)"
    elif [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
        SRV_CPU_ID=0 LOAD_CPU_ID=1
        PIN_NOTE="one-worker scenarios: every server process (all its threads) on CPU 0, wrk and the other clients on CPU 1 (taskset)"
    else
        SRV_CPU_ID="" LOAD_CPU_ID=""
        PIN_NOTE="not pinned ($NCPU CPU): server and load tool share the CPU"
    fi
    if [ -n "$SRV_CPU_ID" ]; then LOAD_PIN=(taskset -c "$LOAD_CPU_ID"); else LOAD_PIN=(); fi
}

# Installs the Debian packages that are missing (apt-get update only then).
ensure_debs() {
    local missing="" p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    log "apt-get install$missing"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >&2
}

raise_nofile() {
    NOFILE=65536
    ulimit -n "$NOFILE" 2>/dev/null || {
        NOFILE=$(ulimit -Hn)
        [ "$NOFILE" = unlimited ] && NOFILE=1048576
        ulimit -n "$NOFILE"
    }
    [ "$NOFILE" -ge $((IDLE_CONNS + 2 * CONNS + 64)) ] || log "warning: nofile limit $NOFILE is below IDLE_CONNS=$IDLE_CONNS + wrk"
    # The WebSocket scenario: a server and ws_client each hold WS_IDLE sockets, or
    # WS_FANOUT + 1, or the largest of WS_CONNS (ws_client raises its own soft limit too).
    local c need=$((${WS_IDLE:-0} > ${WS_FANOUT:-0} ? ${WS_IDLE:-0} : ${WS_FANOUT:-0}))
    for c in ${WS_CONNS:-}; do [ "$c" -gt "$need" ] && need=$c; done
    [ "$NOFILE" -ge $((need + 64)) ] || log "warning: nofile limit $NOFILE is below the $need WebSockets of the ws scenario"
}

# ------------------------------------------------------- process trees ---
tree_pids() { # pid → the pid and all its descendants
    local p=$1 c
    [ -d "/proc/$p" ] || return 0
    echo "$p"
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}
tree_rss_kb() { # VmRSS summed over a server's processes (nginx master + worker, granian, cluster)
    local p s=0 r n=0
    for p in $(tree_pids "$1"); do
        r=$(rss_kb "$p")
        [ "$r" = NA ] || { s=$((s + r)); n=$((n + 1)); }
    done
    [ "$n" = 0 ] && echo NA || echo "$s"
}
tree_ticks() {
    local p s=0 t n=0
    for p in $(tree_pids "$1"); do
        t=$(proc_ticks "$p")
        [ "$t" = NA ] || { s=$((s + t)); n=$((n + 1)); }
    done
    [ "$n" = 0 ] && echo NA || echo "$s"
}
# user+system ticks of this shell's waited-for children (the load tools).
child_ticks() { awk '{sub(/^.*\) /, ""); print $14 + $15}' "/proc/$$/stat"; }
all_busy() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
# The same without softirq: an upload's own loopback delivery runs there (tens of % of a CPU).
all_busy_nosoftirq() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7; exit}' /proc/stat; }

# --------------------------------------------------------------- servers ---
# start_server ID PIN(1|0) ENVIRONMENT... -- launches `launch_server ID`
# (defined by bench/run) in a subshell pinned to the server CPU when PIN=1,
# on a free port, with PORT set; waits for GET /ping. Sets SPID[ID], SPORT[ID].
declare -A SPID=() SPORT=() SLOG=()
start_server() {
    local id=$1 pin=$2 port pid
    shift 2
    [ "${1:-}" = -- ] && shift
    port=$(free_port) || die "no free port"
    SLOG[$id]=$RAW/server-$id.log
    (
        [ "$pin" = 1 ] && [ -n "$SRV_CPU_ID" ] && taskset -pc "$SRV_CPU_ID" "$BASHPID" >/dev/null
        export PORT="$port" "$@"
        launch_server "$id" "$port"
    ) >>"${SLOG[$id]}" 2>&1 &
    pid=$!
    SPID[$id]=$pid SPORT[$id]=$port
    if ! wait_up "$pid" "$port" 40; then
        START_ERR="did not answer GET /ping on port $port within 40 s (log: $(basename "$RAW")/server-$id.log: $(tail -n 3 "${SLOG[$id]}" 2>/dev/null | tr '\n' ' ' | cut -c1-200))"
        stop_server "$id"
        return 1
    fi
    sleep 0.3
    log "$id up on $port (pid $pid, RSS $(tree_rss_kb "$pid") KiB)"
    return 0
}
stop_server() {
    local id=$1 pid=${SPID[$1]:-} p kids
    [ -n "$pid" ] || return 0
    kids=$(tree_pids "$pid" | tail -n +2)
    stop_pid "$pid"
    for p in $kids; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
    SPID[$id]=""
    return 0
}
stop_all_servers() {
    local id
    for id in "${!SPID[@]}"; do stop_server "$id"; done
}
wait_up() { # pid port seconds
    local pid=$1 port=$2 n=$(($3 * 10)) i
    for i in $(seq 1 "$n"); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -s -o /dev/null -m 1 "http://$HOST:$port/ping" && return 0
        sleep 0.1
    done
    return 1
}
up() { [ -n "${SPID[$1]:-}" ] && alive "${SPID[$1]}"; }

# ---------------------------------------------------------------- probes ---
# probe ID SCENARIO → one line in probes.tsv: id, what, ok|differs, text
probe() {
    local id=$1 url="http://$HOST:${SPORT[$1]}" got body want ok
    got=$(curl -s -m 3 -o "$RAW/probe.body" -w '%{http_code} %{content_type}' "$url/hello/x" 2>/dev/null || printf 'ERR')
    got="$got $(head -c 200 "$RAW/probe.body" 2>/dev/null)"
    ok=differs
    [ "${got/; charset=utf-8/}" = '200 application/json {"hello":"x"}' ] && ok=ok
    printf '%s\tGET /hello/x\t%s\t%s\n' "$id" "$ok" "$got" >>"$RAW/probes.tsv"
    got=$(curl -s -m 3 -o "$RAW/probe.body" -w '%{http_code} %{content_type}' "$url/ping" 2>/dev/null || printf 'ERR')
    got="$got $(head -c 200 "$RAW/probe.body" 2>/dev/null)"
    ok=differs
    [ "${got/; charset=utf-8/}" = '200 application/json {"message":"pong"}' ] && ok=ok
    printf '%s\tGET /ping\t%s\t%s\n' "$id" "$ok" "$got" >>"$RAW/probes.tsv"
    [ "${2:-}" = noecho ] && return 0
    got=$(curl -s -m 3 -o "$RAW/probe.body" -w '%{http_code}' -H 'content-type: application/json' \
        --data-binary "@$ECHO_BODY" "$url/echo" 2>/dev/null || printf 'ERR')
    ok=differs
    [ "$got" = 200 ] && python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
        "$RAW/probe.body" "$ECHO_BODY" 2>/dev/null && ok=ok
    printf '%s\tPOST /echo (1 KB JSON)\t%s\t%s %s bytes back, %s\n' "$id" "$ok" "$got" "$(stat -c %s "$RAW/probe.body" 2>/dev/null)" \
        "$([ "$ok" = ok ] && echo "same JSON value" || head -c 120 "$RAW/probe.body")" >>"$RAW/probes.tsv"
}

# ------------------------------------------------------------ idle conns ---
# run_idle ID → a line in idle.tsv:
# id before_kb with_kb bytes_per_conn opened base_us fresh_us fresh_max_us reused failed
run_idle() {
    local id=$1 pid=${SPID[$1]} port=${SPORT[$1]} out i before with
    out=$RAW/idle-$id.txt
    alive "$pid" || return 0
    log "idle: $IDLE_CONNS keep-alive connections to $id"
    FIFO=$RAW/idle-$id.fifo
    rm -f "$FIFO"
    mkfifo "$FIFO"
    before=$(tree_rss_kb "$pid")
    timeout -k 5 240 "${LOAD_PIN[@]}" "$OUT/idle_conns" -n "$IDLE_CONNS" -t "${IDLE_TRIES:-21}" -F 3 -H 120 "$HOST" "$port" \
        <"$FIFO" >"$out" 2>&1 &
    IDLE_PID=$!
    exec 9>"$FIFO" # the tool holds its connections until this closes
    with=NA
    for i in $(seq 1 1500); do
        if grep -qx ready "$out" 2>/dev/null; then
            with=$(tree_rss_kb "$pid")
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
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$before" "$with" "$per" "$opened" \
        "$(kv baseline_fresh_us_median)" "$(kv fresh_us_median)" "$(kv fresh_us_max)" "$(kv reused_ok)" "$(kv fresh_failed)" >>"$RAW/idle.tsv"
}

# ------------------------------------------------------------- throughput ---
# other_pct BUSY0 BUSY1 SERVER0 SERVER1 LOAD0 LOAD1 MICROSECONDS → % of one CPU
# used by anything but the server's processes and the load tool (ticks).
other_pct() {
    awk -v b0="$1" -v b1="$2" -v p0="$3" -v p1="$4" -v w0="$5" -v w1="$6" -v t="$7" -v hz="$CLK_TCK" 'BEGIN {
        if (p0 == "NA" || p1 == "NA" || t <= 0) { print "NA"; exit }
        o = (b1 - b0) - (p1 - p0) - (w1 - w0); if (o < 0) o = 0
        printf "%.0f\n", 100 * o / hz / (t / 1e6) }'
}

# run_wrk SCENARIO ID ROUND PATH [WRK_THREADS CONNS PINNED] → a line in runs.tsv:
# scenario id round rps p50 p99 p999 requests non2xx socket_errors cpu_us_req rss_kb other_cpu_pct busy stall
CONTENDED=""
declare -A WRK_LUA=() # scenario → wrk Lua script (method, body, headers), e.g. the fastpath POSTs
run_wrk() {
    local scen=$1 id=$2 round=$3 path=$4 threads=${5:-1} conns=${6:-$CONNS} pinned=${7:-1}
    local pid=${SPID[$id]:-} out url load=() lua=()
    url="http://$HOST:${SPORT[$id]:-0}$path"
    out=$RAW/wrk-$scen-$id-r$round.txt
    [ "$pinned" = 1 ] && load=("${LOAD_PIN[@]}")
    [ "$path" = /echo ] && lua=(-s "$HERE/echo.lua")
    [ -n "${WRK_LUA[$scen]:-}" ] && lua=(-s "${WRK_LUA[$scen]}")
    if ! alive "$pid"; then
        printf '%s\t%s\t%s\tNA\tNA\tNA\tNA\t0\t0\tserver not running\tNA\tNA\tNA\tNA\tNA\n' "$scen" "$id" "$round" >>"$RAW/runs.tsv"
        return 0
    fi
    log "wrk $scen $id r$round ($path): ${WARMUP}s warmup + ${DURATION}s"
    [ "$WARMUP" -gt 0 ] && run_child timeout -k 5 $((WARMUP + 30)) "${load[@]}" wrk -t"$threads" -c"$conns" -d"${WARMUP}s" "${lua[@]}" "$url" >"$out.warmup" 2>&1 || true
    local c0 c1 p0 p1 s0 s1 t0 t1 b0 b1 w0 w1
    c0=$(cpu_snap) p0=$(tree_ticks "$pid") s0=$(psi_some) b0=$(all_busy) w0=$(child_ticks) t0=$(now_us)
    run_child timeout -k 5 $((DURATION + 30)) "${load[@]}" wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency "${lua[@]}" "$url" >"$out" 2>&1 || true
    w1=$(child_ticks) b1=$(all_busy) c1=$(cpu_snap) p1=$(tree_ticks "$pid") s1=$(psi_some) t1=$(now_us)
    local rps p50 p99 p999 reqs non2xx sock cpureq other stall busy wn ws rss
    rss=$(tree_rss_kb "$pid")
    stall=$(awk -v a="$s0" -v b="$s1" -v t="$((t1 - t0))" 'BEGIN {
        if (a == "NA" || b == "NA" || t <= 0) print "NA"; else printf "%.0f\n", 100 * (b - a) / t }')
    other=$(other_pct "$b0" "$b1" "$p0" "$p1" "$w0" "$w1" "$((t1 - t0))")
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f\n", $2; f = 1} END {if (!f) print "NA"}' "$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    p999=NA
    reqs=$(awk '/ requests in / {print $1; f = 1} END {if (!f) print 0}' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF; f = 1} END {if (!f) print 0}' "$out")
    busy=$(awk -v a="$c0" -v b="$c1" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        if (x[2] == "" || y[2] == x[2] || y[4] == x[4]) { print "NA"; exit }
        printf "%.0f/%.0f\n", 100 * (y[1] - x[1]) / (y[2] - x[2]), 100 * (y[3] - x[3]) / (y[4] - x[4]) }')
    cpureq=$(awk -v a="$p0" -v b="$p1" -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN {
        if (a == "NA" || b == "NA" || n == "" || n + 0 == 0) print "NA"; else printf "%.1f\n", (b - a) / hz * 1e6 / n }')
    sock=$(awk '/Socket errors:/ {gsub(/^ *Socket errors: /, ""); print; f = 1} END {if (!f) print "none"}' "$out")
    if [ -f "$out.warmup" ]; then
        wn=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out.warmup")
        ws=$(awk '/Socket errors:/ {gsub(/^ *Socket errors: /, ""); print}' "$out.warmup")
        [ -n "$wn$ws" ] && sock="$sock; warmup: ${wn:+non-2xx $wn }${ws}"
    fi
    alive "$pid" || sock="$sock; SERVER EXITED"
    [ "$pinned" = 1 ] && awk -v v="$other" -v l="$CONTENDED_PCT" 'BEGIN { exit !(v != "NA" && v + 0 >= l + 0) }' &&
        CONTENDED="$CONTENDED $scen/$id/r$round"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$id" "$round" "$rps" "$p50" "$p99" "$p999" \
        "$reqs" "$non2xx" "$sock" "$cpureq" "$rss" "$other" "$busy" "$stall" >>"$RAW/runs.tsv"
}

# prime ID PATH SECONDS — unmeasured load, so JIT-compiled servers (V8, Python's
# adaptive interpreter) are warm before their first measured round.
prime() {
    local id=$1 path=$2 s=$3 lua=()
    [ "$s" -gt 0 ] && up "$id" || return 0
    [ "$path" = /echo ] && lua=(-s "$HERE/echo.lua")
    run_child timeout -k 5 $((s + 30)) "${LOAD_PIN[@]}" wrk -t1 -c"$CONNS" -d"${s}s" "${lua[@]}" \
        "http://$HOST:${SPORT[$id]}$path" >"$RAW/prime-$id${path//\//-}.txt" 2>&1 || true
}

# ------------------------------------------------------------ fixed rate ---
# run_rate ID PATH ROUND → a line in rate.tsv:
# id round target achieved p50 p90 p99 p999 max errors late_starts measured other_cpu_pct
run_rate() {
    local id=$1 path=$2 round=${3:-1} pid=${SPID[$1]:-} out=$RAW/rate-$1-r${3:-1}.txt b0 b1 p0 p1 w0 w1 t0 t1 other
    up "$id" || return 0
    log "rate: $id r$round at $RATE rps for ${RATE_DURATION}s (+${RATE_WARMUP}s warmup), $RATE_CONNS connections"
    b0=$(all_busy) p0=$(tree_ticks "$pid") w0=$(child_ticks) t0=$(now_us)
    run_child timeout -k 5 $((RATE_WARMUP + RATE_DURATION + 30)) "${LOAD_PIN[@]}" "$OUT/rate_client" -r "$RATE" \
        -d "$RATE_DURATION" -w "$RATE_WARMUP" -c "$RATE_CONNS" -p "$path" "$HOST" "${SPORT[$id]}" >"$out" 2>&1 || true
    w1=$(child_ticks) b1=$(all_busy) p1=$(tree_ticks "$pid") t1=$(now_us)
    other=$(other_pct "$b0" "$b1" "$p0" "$p1" "$w0" "$w1" "$((t1 - t0))")
    awk -v v="$other" -v l="$CONTENDED_PCT" 'BEGIN { exit !(v != "NA" && v + 0 >= l + 0) }' && CONTENDED="$CONTENDED rate/$id/r$round"
    kv() { awk -F= -v k="$1" '$1 == k {print $2; f = 1} END {if (!f) print "NA"}' "$out"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$round" "$RATE" "$(kv achieved_rate)" "$(kv p50_us)" \
        "$(kv p90_us)" "$(kv p99_us)" "$(kv p999_us)" "$(kv max_us)" "$(kv errors)" "$(kv late_starts)" "$(kv measured)" "$other" >>"$RAW/rate.tsv"
}

# ---------------------------------------------------------------- uploads ---
# Peak RSS of a server's processes: clear_refs 5 resets each one's VmHWM (Linux
# ≥ 4.0), so the peak read after a run is that run's own, not the process's
# since it started. tree_hwm_reset prints "reset" or "since start" (when it could not).
tree_hwm_reset() {
    local p ok=reset
    for p in $(tree_pids "$1"); do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || ok="since start"; done
    echo "$ok"
}
tree_hwm_kb() {
    local p s=0 r n=0
    for p in $(tree_pids "$1"); do
        r=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        [ -n "$r" ] && { s=$((s + r)); n=$((n + 1)); }
    done
    [ "$n" = 0 ] && echo NA || echo "$s"
}

# run_upload SCENARIO ID CONNS ROUND → a line in upload.tsv:
# scenario id round conns passes bytes wall_s mib_s cpu_ms_per_mib rss_before_kb peak_rss_kb conn_min_s conn_max_s
# errors other_cpu_pct note
# UPLOAD_MIB MiB in all per pass (split over the CONNS connections), passes
# until UPLOAD_MIN_S s have gone by (bench/upload_client.c); the server's CPU is
# its processes' utime + stime (/proc/<pid>/stat) over the run. Its other CPU %
# (contention) leaves softirq out: loopback delivers the upload there, and a
# server that makes the socket wake it often (small reads, window updates)
# runs up 10-30 % of a CPU of softirq by itself (measured: quicklane Python,
# one connection), which is the transfer's own cost, not other work.
run_upload() {
    local scen=$1 id=$2 conns=$3 round=$4 pid=${SPID[$2]:-} out=$RAW/upload-$1-$2-r$4.txt
    local b0 b1 p0 p1 w0 w1 t0 t1 other rss hwm_note peak note=""
    if ! alive "$pid"; then
        printf '%s\t%s\t%s\t%s\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tserver not running\n' "$scen" "$id" "$round" "$conns" >>"$RAW/upload.tsv"
        return 0
    fi
    log "upload $id r$round: $UPLOAD_MIB MiB over $conns connection(s), passes for ≥ ${UPLOAD_MIN_S}s"
    rss=$(tree_rss_kb "$pid")
    hwm_note=$(tree_hwm_reset "$pid")
    b0=$(all_busy_nosoftirq) p0=$(tree_ticks "$pid") w0=$(child_ticks) t0=$(now_us)
    run_child timeout -k 5 "${UPLOAD_TIMEOUT:-150}" "${LOAD_PIN[@]}" "$OUT/upload_client" -b $((UPLOAD_MIB << 20)) -c "$conns" \
        -m "$UPLOAD_MIN_S" -t $((${UPLOAD_TIMEOUT:-150} - 10)) "$HOST" "${SPORT[$id]}" >"$out" 2>&1 || note="client failed"
    w1=$(child_ticks) b1=$(all_busy_nosoftirq) p1=$(tree_ticks "$pid") t1=$(now_us)
    peak=$(tree_hwm_kb "$pid")
    other=$(other_pct "$b0" "$b1" "$p0" "$p1" "$w0" "$w1" "$((t1 - t0))")
    awk -v v="$other" -v l="$CONTENDED_PCT" 'BEGIN { exit !(v != "NA" && v + 0 >= l + 0) }' && CONTENDED="$CONTENDED $scen/$id/r$round"
    kv() { awk -F= -v k="$1" '$1 == k {print $2; f = 1} END {if (!f) print "NA"}' "$out"; }
    local bytes cpu
    bytes=$(kv bytes)
    cpu=$(awk -v a="$p0" -v b="$p1" -v n="$bytes" -v hz="$CLK_TCK" 'BEGIN {
        if (a == "NA" || b == "NA" || n == "NA" || n + 0 == 0) print "NA"; else printf "%.3f\n", (b - a) / hz * 1000 / (n / 1048576) }')
    [ "$hwm_note" = reset ] || note="${note:+$note; }peak RSS since the server started (clear_refs refused)"
    alive "$pid" || note="${note:+$note; }SERVER EXITED"
    grep -q '^upload_client:' "$out" && note="${note:+$note; }$(grep -m1 '^upload_client:' "$out")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$id" "$round" "$conns" "$(kv passes)" \
        "$bytes" "$(kv wall_s)" "$(kv mib_s)" "$cpu" "$rss" "$peak" "$(kv conn_min_s)" "$(kv conn_max_s)" "$(kv errors)" \
        "$other" "$note" >>"$RAW/upload.tsv"
}

# upload_probe ID → lines in probes.tsv: one upload of an odd size (3 MiB +
# 123 bytes) over one connection; the answer must name its byte count and, from
# a hashing server, the SHA-256 of the bytes sent (upload_client -D | sha256sum).
upload_probe() {
    local id=$1 size=3145851 want got ok=differs out
    want=$("$OUT/upload_client" -b "$size" -D | sha256sum | cut -d' ' -f1)
    out=$(timeout -k 2 30 "$OUT/upload_client" -b "$size" -c 1 -a "$HOST" "${SPORT[$id]}" 2>&1 || true)
    got=$(printf '%s\n' "$out" | awk -F= '$1 == "answer" {sub(/^answer=/, ""); print}')
    if printf '%s' "$got" | grep -qE "\"bytes\" *: *$size([^0-9]|$)"; then
        case $got in
        *'"sha256"'*) printf '%s' "$got" | grep -qE "\"sha256\" *: *\"$want\"" && ok=ok ;;
        *) ok=ok ;;
        esac
    fi
    printf '%s\tPOST /upload (%s bytes)\t%s\t%s %s\n' "$id" "$size" "$ok" "$(printf '%s\n' "$out" | awk -F= '$1 == "status" {print $2}')" \
        "$(printf '%s' "$got" | head -c 160)" >>"$RAW/probes.tsv"
}

# ------------------------------------------------------------- WebSockets ---
# run_ws SCENARIO ID ROUND PATH SIZE CONNS → a line in ws.tsv:
# scenario id round conns inflight size msgs msg_per_s mib_s published pub_per_s p50 p90 p99 p999 max errors
# cpu_us_msg rss_kb peak_rss_kb server_cpu_pct client_cpu_pct other_cpu_pct note
# bench/ws_client.c: echo (ws-echo-*: CONNS connections, WS_INFLIGHT binary
# messages of SIZE bytes in flight each, every echo checked byte for byte) or
# fan-out (ws-fanout: CONNS subscribers of PATH's room and one publisher with
# WS_INFLIGHT of its own in flight; msgs = deliveries to subscribers). An
# unmeasured run of WS_WARMUP s first (its own connections), then the measured
# one, WS_DURATION s counted from the last handshake. The server's CPU is its
# processes' utime + stime (/proc/<pid>/stat) over the measured run (connects
# and closes included) ÷ msgs; client CPU % tells when ws_client (one thread,
# one CPU) was the limit rather than the server. Other CPU % (contention)
# leaves softirq out, as run_upload does: loopback delivery of the messages runs
# there (about 15 % of the server's CPU at 110k echoes/s, measured), the
# transfer's own cost.
run_ws() {
    local scen=$1 id=$2 round=$3 path=$4 size=$5 conns=$6 pid=${SPID[$2]:-} out=$RAW/$1-$2-r$3.txt mode=()
    local b0 b1 p0 p1 w0 w1 t0 t1 other rss peak hwm_note note=""
    case $scen in ws-fanout) mode=(--fanout "$conns") ;; *) mode=(-c "$conns") ;; esac
    if ! alive "$pid"; then
        printf '%s\t%s\t%s\t%s\t%s\t%s%s\tserver not running\n' "$scen" "$id" "$round" "$conns" "$WS_INFLIGHT" "$size" \
            "$(printf '\tNA%.0s' $(seq 1 17))" >>"$RAW/ws.tsv"
        return 0
    fi
    local url="ws://$HOST:${SPORT[$id]}$path" lim=$((${WS_WARMUP%.*} + ${WS_DURATION%.*} + 40))
    log "ws $scen $id r$round: ${WS_WARMUP}s warmup + ${WS_DURATION}s, ${mode[*]} -m $WS_INFLIGHT -s $size"
    [ "$WS_WARMUP" != 0 ] && run_child timeout -k 5 "$lim" "${LOAD_PIN[@]}" "$OUT/ws_client" -u "$url" "${mode[@]}" \
        -m "$WS_INFLIGHT" -s "$size" -d "$WS_WARMUP" -w 0 >"$out.warmup" 2>&1 || true
    hwm_note=$(tree_hwm_reset "$pid")
    b0=$(all_busy_nosoftirq) p0=$(tree_ticks "$pid") w0=$(child_ticks) t0=$(now_us)
    run_child timeout -k 5 "$lim" "${LOAD_PIN[@]}" "$OUT/ws_client" -u "$url" "${mode[@]}" -m "$WS_INFLIGHT" -s "$size" \
        -d "$WS_DURATION" -w 0 >"$out" 2>&1 || note="ws_client exit status non-zero"
    w1=$(child_ticks) b1=$(all_busy_nosoftirq) p1=$(tree_ticks "$pid") t1=$(now_us)
    rss=$(tree_rss_kb "$pid") peak=$(tree_hwm_kb "$pid")
    other=$(other_pct "$b0" "$b1" "$p0" "$p1" "$w0" "$w1" "$((t1 - t0))")
    awk -v v="$other" -v l="$CONTENDED_PCT" 'BEGIN { exit !(v != "NA" && v + 0 >= l + 0) }' && CONTENDED="$CONTENDED $scen/$id/r$round"
    kv() { tr ' ' '\n' <"$out" | awk -F= -v k="$1" '$1 == k {print $2; f = 1} END {if (!f) print "NA"}'; }
    local msgs rate mibs published pubs cpu scpu ccpu
    if [ "$scen" = ws-fanout ]; then
        msgs=$(kv delivered) rate=$(kv delivered_per_s) mibs=NA published=$(kv published) pubs=$(kv pub_per_s)
    else
        msgs=$(kv msgs) rate=$(kv msg_per_s) mibs=$(kv mib_s) published=NA pubs=NA
    fi
    cpu=$(awk -v a="$p0" -v b="$p1" -v n="$msgs" -v hz="$CLK_TCK" 'BEGIN {
        if (a == "NA" || b == "NA" || n == "NA" || n + 0 == 0) print "NA"; else printf "%.2f\n", (b - a) / hz * 1e6 / n }')
    scpu=$(awk -v a="$p0" -v b="$p1" -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN {
        if (a == "NA" || b == "NA" || t <= 0) print "NA"; else printf "%.0f\n", 100 * (b - a) / hz / (t / 1e6) }')
    ccpu=$(awk -v a="$w0" -v b="$w1" -v t="$((t1 - t0))" -v hz="$CLK_TCK" 'BEGIN {
        if (t <= 0) print "NA"; else printf "%.0f\n", 100 * (b - a) / hz / (t / 1e6) }')
    [ "$hwm_note" = reset ] || note="${note:+$note; }peak RSS since the server started (clear_refs refused)"
    alive "$pid" || note="${note:+$note; }SERVER EXITED"
    grep -q '^ws_client:' "$out" && note="${note:+$note; }$(grep -m1 '^ws_client:' "$out" | tr '\t' ' ')"
    grep -q '^ws_client:' "$out.warmup" 2>/dev/null && note="${note:+$note; }warmup: $(grep -m1 '^ws_client:' "$out.warmup" | tr '\t' ' ')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$scen" "$id" "$round" "$conns" "$WS_INFLIGHT" "$size" "$msgs" "$rate" "$mibs" "$published" "$pubs" \
        "$(kv p50_us)" "$(kv p90_us)" "$(kv p99_us)" "$(kv p999_us)" "$(kv max_us)" "$(kv errors)" \
        "$cpu" "$rss" "$peak" "$scpu" "$ccpu" "$other" "$note" >>"$RAW/ws.tsv"
}

# run_ws_idle ID → a line in ws_idle.tsv: id before_kb with_kb bytes_per_socket opened held errors
# WS_IDLE WebSockets on /ws/echo opened (ws_client --idle) and held WS_IDLE_HOLD s;
# the server's RSS is read 0.5 s after ws_client says they are all open.
run_ws_idle() {
    local id=$1 pid=${SPID[$1]} out=$RAW/ws-idle-$1.txt err=$RAW/ws-idle-$1.err before with=NA i cpid
    alive "$pid" || return 0
    log "ws idle: $WS_IDLE WebSockets to $id, held ${WS_IDLE_HOLD}s"
    sleep 0.5
    before=$(tree_rss_kb "$pid")
    timeout -k 5 $((${WS_IDLE_HOLD%.*} + 40)) "${LOAD_PIN[@]}" "$OUT/ws_client" -u "ws://$HOST:${SPORT[$id]}/ws/echo" \
        --idle "$WS_IDLE" -d "$WS_IDLE_HOLD" >"$out" 2>"$err" &
    cpid=$!
    CHILD_PID=$cpid
    for i in $(seq 1 300); do
        if grep -q ' open' "$err" 2>/dev/null; then
            sleep 0.5
            with=$(tree_rss_kb "$pid")
            break
        fi
        alive "$cpid" || break
        sleep 0.1
    done
    wait "$cpid" 2>/dev/null || true
    CHILD_PID=""
    local opened held errors per
    opened=$(tr ' ' '\n' <"$out" | awk -F= '$1 == "opened" {print $2; f = 1} END {if (!f) print "NA"}')
    held=$(tr ' ' '\n' <"$out" | awk -F= '$1 == "held" {print $2; f = 1} END {if (!f) print "NA"}')
    errors=$(tr ' ' '\n' <"$out" | awk -F= '$1 == "errors" {print $2; f = 1} END {if (!f) print "NA"}')
    per=$(awk -v a="$before" -v b="$with" -v n="$opened" 'BEGIN {
        if (a == "NA" || b == "NA" || n == "NA" || n + 0 == 0) print "NA"; else printf "%.0f\n", (b - a) * 1024 / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$before" "$with" "$per" "$opened" "$held" "$errors" >>"$RAW/ws_idle.tsv"
}

# ws_probe ID → lines in probes.tsv: a binary echo checked byte for byte (2
# connections, 1 KiB) and a room of 3 subscribers and a publisher (every
# delivery's JSON checked), half a second each (bench/ws_client.c does the checks).
# Also sets WS_PROBE_ECHO and WS_PROBE_FANOUT (ok or differs) and
# WS_PROBE_ECHO_WHY / WS_PROBE_FANOUT_WHY (the first line ws_client wrote).
ws_probe() {
    local id=$1 out ok
    out=$(timeout -k 2 20 "$OUT/ws_client" -u "ws://$HOST:${SPORT[$id]}/ws/echo" -c 2 -m 2 -s 1024 -d 0.5 -w 0 2>&1) && ok=ok || ok=differs
    WS_PROBE_ECHO=$ok WS_PROBE_ECHO_WHY=$(printf '%s\n' "$out" | grep -m1 . | tr '\t' ' ' | cut -c1-160)
    printf '%s\tWS /ws/echo (1 KiB binary, byte for byte)\t%s\t%s\n' "$id" "$ok" "$(printf '%s' "$out" | tr '\n\t' '  ' | cut -c1-200)" >>"$RAW/probes.tsv"
    out=$(timeout -k 2 20 "$OUT/ws_client" -u "ws://$HOST:${SPORT[$id]}/ws/chat/probe" --fanout 3 -m 1 -d 0.5 -w 0 2>&1) && ok=ok || ok=differs
    WS_PROBE_FANOUT=$ok WS_PROBE_FANOUT_WHY=$(printf '%s\n' "$out" | grep -m1 . | tr '\t' ' ' | cut -c1-160)
    printf '%s\tWS /ws/chat/probe (3 subscribers, JSON checked)\t%s\t%s\n' "$id" "$ok" "$(printf '%s' "$out" | tr '\n\t' '  ' | cut -c1-200)" >>"$RAW/probes.tsv"
}
