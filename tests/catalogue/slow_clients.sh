#!/usr/bin/env bash
# The slow/idle-client figures for docs/reliability.md, with the DEFAULT header timeout (30 s):
# 3,000 idle keep-alive connections (each served once) and 1,000 slowloris connections (one byte a
# second) held by one poll() thread, a new client's GET probed 20 times 1 s apart (latency median and
# max), and when the server closed the slowloris connections. Takes about 35 s.
#   tests/catalogue/slow_clients.sh [build-dir]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
bin=$build/tests/test_slow_clients
[ -x "$bin" ] || { echo "build first: $bin is missing" >&2; exit 1; }
out=$(timeout 120 "$bin" --no-skip -tc='*report*' 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -o '[0-9]* idle keep-alive.*'
