#!/usr/bin/env bash
# Helpers shared by bench/core.sh and bench/bindings.sh (sourced, not run).
# They read globals the scripts set: HOST, USED_PORTS, SRV_CPU_ID, LOAD_CPU_ID,
# CHILD_PID; log() comes from the script; STOP_WAIT (tenths of a second a
# process gets after SIGTERM) defaults to 50.

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
