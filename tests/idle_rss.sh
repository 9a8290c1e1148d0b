#!/usr/bin/env bash
# Idle RSS of the C example (issue 22 item 5): under 4 MB (4096 kB) after start-up and a few
# requests, with the default worker loops. Prints where the resident pages are (per mapping), so a
# regression names its cause. Usage: idle_rss.sh <example_c_hello>
set -euo pipefail
bin="$1"; limit_kb=${QL_IDLE_RSS_LIMIT_KB:-4096}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$port "$bin" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -s -m 1 -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.05; done
for _ in $(seq 20); do
  curl -s -m 2 -o /dev/null "http://127.0.0.1:$port/ping"
  curl -s -m 2 -o /dev/null -H 'Content-Type: application/json' -d '{"a":[1,2,3]}' "http://127.0.0.1:$port/echo"
done
rss=$(awk '/^VmRSS:/{print $2}' /proc/$pid/status)
anon=$(awk '/^RssAnon:/{print $2}' /proc/$pid/status)
echo "idle RSS of $(basename "$bin"): $rss kB ($anon kB anonymous), limit $limit_kb kB"
awk '/^[0-9a-f]+-[0-9a-f]+ /{name=$6} /^Rss:/{rss[name]+=$2} END{for(n in rss) if(rss[n]>0) printf "  %6d kB %s\n", rss[n], (n==""?"[anonymous]":n)}' \
  /proc/$pid/smaps | sort -rn
[ "$rss" -lt "$limit_kb" ] || { echo "FAIL idle RSS $rss kB >= $limit_kb kB"; exit 1; }
echo "ok"
