# Sourced by the example checks: start_example CMD [ARGS...] runs an example on a free
# 127.0.0.1 port ($port) with WORKERS (default 2), waits for its "listening" line, and stops it
# when the calling script exits. Its output is in $log.
start_example() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  log=$(mktemp)
  PORT=$port WORKERS=${WORKERS:-2} "$@" >"$log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
  for _ in $(seq 100); do
    grep -q "listening" "$log" && return 0
    kill -0 $pid 2>/dev/null || { cat "$log"; echo "example exited early"; exit 1; }
    sleep 0.05
  done
}
