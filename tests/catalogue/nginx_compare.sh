#!/usr/bin/env bash
# Runs tests/catalogue/cases.txt against quicklane's C example (WORKERS=1) and a 1-worker nginx
# ("return 200" for everything that parses) and prints a markdown table: each server's status
# line(s) and whether it closed, whether quicklane answers as the RFC expects, and the verdict
# (same / stricter / looser: quicklane compared with nginx).
#   tests/catalogue/nginx_compare.sh [build-dir]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
example=$build/examples/c/example_c_hello
[ -x "$example" ] || { echo "build first: $example is missing" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)" >&2; exit 1; }

dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}

qport=$(free_port)
nport=$(free_port)
mkdir -p "$dir"/{body,proxy,fastcgi,uwsgi,scgi}
sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$nport|g" "$here/nginx.conf.in" > "$dir/nginx.conf"

PORT=$qport WORKERS=1 "$example" > "$dir/quicklane.log" 2>&1 &
pids+=($!)
nginx -p "$dir" -c "$dir/nginx.conf" > "$dir/nginx.out" 2>&1 &
pids+=($!)
wait_port "$qport"
wait_port "$nport"

timeout 600 python3 "$here/run_cases.py" "$here/cases.txt" "quicklane=$qport" "nginx=$nport"
