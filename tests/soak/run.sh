#!/usr/bin/env bash
# make soak: a bounded run (SOAK_SECONDS, default 600) of mixed traffic against
# the C example: wrk with the contract's routes (incl. 1 KB JSON echoes, 404s,
# bad JSON, connection churn) plus hostile clients (tests/soak/chaos.py: half
# requests, disconnects mid-body, malformed heads, resets, pipelined bursts,
# idle keep-alive). Samples RSS and open fds every SOAK_SAMPLE seconds and
# writes a CSV and a summary to bench/out/. Loopback only; stops by itself.
# Not part of `make test`: it prints figures, it does not assert speed.
# SOAK_MODE=fastpath runs the C fastpath example instead (native rules, static
# files incl. an 8 MiB one sent with sendfile; tests/soak/fastpath.lua), from a
# folder with a copy of examples/static/, and chaos.py also starts large
# downloads and resets them midway.
# SOAK_MODE=upload runs the streamed-body tests with 1 GiB uploads instead
# (SOAK_UPLOAD_MIB, default 1024): C++ (tests/test_body_stream), Python, Node and Go
# (FastAPI UploadFile and request.stream(), Flask, native), Content-Length and
# chunked, hashed by the handler; RSS growth must stay under 32 MiB.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
secs="${SOAK_SECONDS:-600}"
sample="${SOAK_SAMPLE:-10}"
mode="${SOAK_MODE:-hello}"
if [ "$mode" = upload ]; then
  export QL_UPLOAD_MIB="${SOAK_UPLOAD_MIB:-1024}"
  echo "soak upload: ${QL_UPLOAD_MIB} MiB bodies"
  "$root/build/tests/test_body_stream" -tc='a 64 MiB upload*,a slow reader*'
  bash "$root/bindings/python/test.sh" -k 'fastapi or flask or native_stream or slow' \
    "$root/bindings/python/tests/test_body_stream.py"
  ( cd "$root/bindings/node" && npm install --no-audit --no-fund --loglevel=error >/dev/null &&
    cd test && node --test --test-concurrency=1 --test-timeout=600000 \
      --test-name-pattern='uploads|slow consumer' body-stream.test.js )
  go_prefix="$root/build/go-prefix"
  cmake --install "$root/build" --prefix "$go_prefix" >/dev/null
  ( cd "$root/bindings/go" &&
    PKG_CONFIG_PATH="$go_prefix/lib/pkgconfig" CGO_LDFLAGS="-Wl,-rpath,$go_prefix/lib" \
    LD_LIBRARY_PATH="$go_prefix/lib" CGO_ENABLED=1 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
    go test -count=1 -timeout 1200s -v -run 'TestStreamedUpload64MiB|TestStreamedUploadSlow' . | grep -E '^(=== RUN|--- |ok|FAIL)|MiB' )
  exit 0
fi
out="$root/bench/out"
mkdir -p "$out"
stamp="$(date -u +%Y%m%d-%H%M%S)"
case "$mode" in
  hello) bin="${SOAK_BIN:-$root/build/examples/c/example_c_hello}"; lua="$root/tests/soak/mixed.lua"; www="$root"; chaos_args=() ;;
  fastpath)
    bin="${SOAK_BIN:-$root/build/examples/c/example_c_fastpath}"; lua="$root/tests/soak/fastpath.lua"
    www="$out/soak-$stamp-www"; chaos_args=(--large /static/large.bin)
    mkdir -p "$www/static"
    cp "$root/examples/static/"* "$www/static/"
    head -c 8388608 /dev/urandom >"$www/static/large.bin" ;;
  *) echo "SOAK_MODE must be hello, fastpath or upload" >&2; exit 2 ;;
esac
csv="$out/soak-$stamp.csv"
md="$out/soak-$stamp.md"

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
[ -x "$bin" ] || make -C "$root" build

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
(cd "$www" && PORT="$port" WORKERS=2 exec "$bin") >"$out/soak-$stamp-server.log" 2>&1 &
srv=$!
pids=()
# Only real pids: `kill 0` would signal the whole process group (make too).
cleanup() { for p in "${pids[@]}" "$srv"; do [ "${p:-0}" -gt 0 ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/ping" >/dev/null 2>&1 && break; sleep 0.05; done

rss() { awk '/VmRSS/ {print $2}' "/proc/$srv/status"; }
fds() { ls "/proc/$srv/fd" | wc -l; }
echo "t_s,rss_kb,fds,phase" >"$csv"
echo "t_s,rss_kb,fds,phase" >&2
t0=$(date +%s)
note() { local line="$(( $(date +%s) - t0 )),$(rss),$(fds),$1"; echo "$line" >>"$csv"; echo "$line" >&2; }
note idle-before

wrk -t1 -c32 -d"${secs}s" -s "$lua" "http://127.0.0.1:$port" >"$out/soak-$stamp-wrk.txt" 2>&1 &
pids+=($!)
python3 "$root/tests/soak/chaos.py" --port "$port" --seconds "$secs" "${chaos_args[@]}" >"$out/soak-$stamp-chaos.txt" 2>&1 &
pids+=($!)
end=$(( t0 + secs ))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep "$sample"
  kill -0 "$srv" 2>/dev/null || { echo "soak: the server died" >&2; exit 1; }
  note load
done
wait "${pids[@]}" || true
pids=()
sleep 3
note idle-after

kill -TERM "$srv"
rc=0; wait "$srv" || rc=$?
srv=0

python3 - "$csv" "$md" "$secs" "$out/soak-$stamp-wrk.txt" "$out/soak-$stamp-chaos.txt" "$rc" "$(basename "$bin")" <<'PY'
import csv, sys
path, md, secs, wrk, chaos, rc, example = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
load = [r for r in rows if r["phase"] == "load"]
first, last = rows[0], rows[-1]
warm = load[len(load) // 5] if load else first  # after warm-up (pools filled)
rss_w, rss_end = int(warm["rss_kb"]), int(load[-1]["rss_kb"]) if load else int(last["rss_kb"])
growth = (rss_end - rss_w) / rss_w * 100 if rss_w else 0
fd_before, fd_after = int(first["fds"]), int(last["fds"])
reqs = [l for l in open(wrk) if "requests in" in l or "Non-2xx" in l or "Socket errors" in l]
with open(md, "w") as f:
    f.write(f"# soak: {secs} s of mixed traffic against {example} (2 workers)\n\n")
    f.write("".join("    " + l for l in reqs) + "\n")
    f.write("    " + open(chaos).read().strip() + "\n\n")
    f.write(f"- RSS: {first['rss_kb']} kB idle before; {rss_w} kB after warm-up (t={warm['t_s']} s); "
            f"{rss_end} kB at the end of the load ({growth:+.1f} % since warm-up); {last['rss_kb']} kB idle after\n")
    f.write(f"- open fds: {fd_before} before, max {max(int(r['fds']) for r in rows)} under load, {fd_after} after\n")
    f.write(f"- exit status after SIGTERM: {rc}\n\n")
    f.write("| t (s) | RSS (kB) | fds | phase |\n|---:|---:|---:|---|\n")
    step = max(1, len(rows) // 20)
    for i, r in enumerate(rows):
        if i % step == 0 or i == len(rows) - 1:
            f.write(f"| {r['t_s']} | {r['rss_kb']} | {r['fds']} | {r['phase']} |\n")
    verdict = "flat" if abs(growth) < 10 or rss_end - rss_w < 2048 else "GROWING"
    f.write(f"\nverdict: RSS {verdict}; fds {'back to baseline' if fd_after <= fd_before + 2 else 'LEAKING'}; "
            f"exit {'0' if rc == '0' else rc}\n")
print(open(md).read())
PY
echo "soak: $md"
