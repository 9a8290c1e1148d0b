#!/usr/bin/env bash
# Starts a fastpath example (examples/*/fastpath*) with examples/ as the working directory on a free
# port and checks the fastpath contract with curl: native validation (422/400), host answers (201,
# 200), the response cache, CORS, the rate limit, API keys, static files (ETag/304, Range/206, gzip,
# traversal), /metrics, /healthz and /ping.
# Usage: [WORKERS=n] fastpath_contract.sh <command> [args...]   (it cds into examples/; WORKERS
# defaults to 2; the rate-limit check races 40 requests over 20 connections, so every loop draws
# from the bucket; one process is needed for the cache and rate-limit checks, see Node's cluster)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
examples="$here/../examples"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp); tmp=$(mktemp -d)
(cd "$examples" && PORT=$port WORKERS=${WORKERS:-2} exec "$@") >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$log" "$tmp"' EXIT
base="http://127.0.0.1:$port"
up=0
for _ in $(seq 400); do   # up to ~20 s: an interpreter or `go run` may be slow on a busy machine
  grep -qiE "listening|serving on| on http://" "$log" && curl -s -m 1 -o /dev/null "$base/ping" && { up=1; break; }
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "example exited early"; exit 1; }
  sleep 0.05
done
[ $up = 1 ] || { cat "$log"; echo "example did not start (no startup line, or /ping unanswered)"; exit 1; }
fail=0
bad() { echo "FAIL $*"; fail=1; }
check() { # name expected_status expected_body_substring curl-args...
  local name="$1" want="$2" body="$3"; shift 3
  local out status
  out=$(curl -s -m 5 -w '\n%{http_code}' "$@") || { bad "$name: curl error"; return; }
  status="${out##*$'\n'}"; out="${out%$'\n'*}"
  if [ "$status" != "$want" ] || [[ "$out" != *"$body"* ]]; then
    bad "$name: got $status '$out', want $want containing '$body'"
  else
    echo "ok   $name: $status $(printf %s "${out:0:120}" | tr "\n" " ")"
  fi
}
header() { # file name -> value of the first such header (case-insensitive), CR stripped
  tr -d '\r' <"$1" | awk -v h="$(echo "$2" | tr 'A-Z' 'a-z')" -F': ' 'tolower($1)==h {print substr($0, length($1)+3); exit}'
}
json='Content-Type: application/json'

# --- /ping, /healthz, 404
check "GET /ping"    200 '{"message":"pong"}' "$base/ping"
check "GET /healthz" 200 '' "$base/healthz"

# --- POST /items: native validation, then the host
check "POST /items valid"          201 '"name":"pen"' -X POST -H "$json" --data '{"name":"pen","price":1.5,"tags":["office"]}' "$base/items"
check "POST /items valid price"    201 '"price":1.5' -X POST -H "$json" --data '{"name":"pen","price":1.5,"tags":["office"]}' "$base/items"
check "POST /items valid tags"     201 '"tags":["office"]' -X POST -H "$json" --data '{"name":"pen","price":1.5,"tags":["office"]}' "$base/items"
check "POST /items no tags"        201 '"name":"cup"' -X POST -H "$json" --data '{"name":"cup","price":0}' "$base/items"
check "POST /items price<0"        422 '"loc":["body","price"]' -X POST -H "$json" --data '{"name":"pen","price":-1}' "$base/items"
check "POST /items price<0 type"   422 '"type":"greater_than_equal"' -X POST -H "$json" --data '{"name":"pen","price":-1}' "$base/items"
check "POST /items price<0 detail" 422 '{"detail":[{' -X POST -H "$json" --data '{"name":"pen","price":-1}' "$base/items"
check "POST /items price string"   422 '"loc":["body","price"]' -X POST -H "$json" --data '{"name":"pen","price":"1"}' "$base/items"
check "POST /items empty name"     422 '"type":"string_too_short"' -X POST -H "$json" --data '{"name":"","price":1}' "$base/items"
check "POST /items missing name"   422 '"loc":["body","name"]' -X POST -H "$json" --data '{"price":1}' "$base/items"
check "POST /items missing type"   422 '"type":"missing"' -X POST -H "$json" --data '{"price":1}' "$base/items"
check "POST /items extra field"    422 '"type":"extra_forbidden"' -X POST -H "$json" --data '{"name":"a","price":1,"x":1}' "$base/items"
check "POST /items bad tag"        422 '"loc":["body","tags",0]' -X POST -H "$json" --data '{"name":"a","price":1,"tags":[1]}' "$base/items"
check "POST /items not JSON"       400 '"detail"' -X POST -H "$json" --data '{"name":' "$base/items"
# the 422 body parses as FastAPI's shape
out=$(curl -s -m 5 -X POST -H "$json" --data '{"name":"pen","price":-1}' "$base/items")
if python3 -c 'import json,sys; d=json.loads(sys.argv[1])["detail"]; e=d[0]; assert isinstance(d,list) and e["loc"]==["body","price"] and isinstance(e["msg"],str) and e["msg"] and isinstance(e["type"],str)' "$out"; then
  echo "ok   422 body is {\"detail\":[{loc,msg,type}]}"; else bad "422 body shape: $out"; fi

# --- GET /items/{id}
check "GET /items/1"   200 '"id":1' "$base/items/1"
check "GET /items/42"  200 '"id":42' "$base/items/42"
check "GET /items/0"   422 '"loc":["path","id"]' "$base/items/0"
check "GET /items/abc" 422 '"loc":["path","id"]' "$base/items/abc"
check "GET /items/abc type" 422 '"type":"int_parsing"' "$base/items/abc"

# --- GET /cached/{key}: host counter, cached natively per path for 2 s
a1=$(curl -s -m 5 "$base/cached/a"); a2=$(curl -s -m 5 "$base/cached/a"); b1=$(curl -s -m 5 "$base/cached/b")
calls() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["key"]==sys.argv[2]; print(d["calls"])' "$1" "$2"; }
if ca1=$(calls "$a1" a) && ca2=$(calls "$a2" a) && cb1=$(calls "$b1" b) && [ "$ca1" = "$ca2" ] && [ "$cb1" -gt "$ca1" ]; then
  echo "ok   cache: /cached/a $a1 twice, /cached/b $b1"
else bad "cache: /cached/a '$a1' then '$a2', /cached/b '$b1'"; fi
curl -s -m 5 -D "$tmp/h" -o /dev/null "$base/cached/a"
[ -n "$(header "$tmp/h" Age)" ] && echo "ok   cache hit has Age" || bad "cache hit without Age"

# --- CORS
curl -s -m 5 -D "$tmp/h" -o /dev/null -X OPTIONS -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST' "$base/items"
st=$(head -1 "$tmp/h" | awk '{print $2}'); ao=$(header "$tmp/h" Access-Control-Allow-Origin); am=$(header "$tmp/h" Access-Control-Allow-Methods)
if [[ "$st" == 2* && "$ao" == "https://app.example" && "$am" == *POST* && "$am" == *GET* ]]; then echo "ok   CORS preflight allowed: $st $ao [$am]"
else bad "CORS preflight from https://app.example: $st origin='$ao' methods='$am'"; fi
curl -s -m 5 -D "$tmp/h" -o /dev/null -X OPTIONS -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: POST' "$base/items"
st=$(head -1 "$tmp/h" | awk '{print $2}'); ao=$(header "$tmp/h" Access-Control-Allow-Origin)
if [[ "$st" != 2* && -z "$ao" ]]; then echo "ok   CORS preflight refused for another origin: $st"
else bad "CORS preflight from https://evil.example: $st origin='$ao'"; fi
curl -s -m 5 -D "$tmp/h" -o /dev/null -H 'Origin: https://app.example' "$base/items/1"
[ "$(header "$tmp/h" Access-Control-Allow-Origin)" = "https://app.example" ] && echo "ok   CORS simple GET allowed" || bad "CORS simple GET without Allow-Origin"
curl -s -m 5 -D "$tmp/h" -o /dev/null -H 'Origin: https://evil.example' "$base/items/1"
[ -z "$(header "$tmp/h" Access-Control-Allow-Origin)" ] && echo "ok   CORS simple GET from another origin: no allow header" || bad "CORS allow header for another origin"

# --- /limited: 5 per 60 s per client IP, exact when 40 requests race on 20 connections over
# every worker loop (each loop draws from the same bucket)
args=(); for i in $(seq 40); do args+=(-o /dev/null "$base/limited"); done
codes=$(curl -s -m 10 -Z --parallel-immediate --parallel-max 20 -w '%{http_code}\n' "${args[@]}" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
curl -s -m 5 -D "$tmp/h" -o "$tmp/b" "$base/limited"
st=$(head -1 "$tmp/h" | awk '{print $2}'); ra=$(header "$tmp/h" Retry-After)
if [ "$codes" = "200:5 429:35 " ] && [ "$st" = 429 ] && [[ "$ra" =~ ^[0-9]+$ ]] && [ "$ra" -ge 1 ]; then
  echo "ok   /limited: 40 concurrent gave $codes then $st Retry-After: $ra"
else bad "/limited: 40 concurrent gave '$codes' (want 200:5 429:35), the next $st Retry-After '$ra'"; fi

# --- /private: API key
check "GET /private no key"    401 '"detail"' "$base/private"
check "GET /private wrong key" 403 '"detail"' -H 'X-API-Key: nope' "$base/private"
check "GET /private key"       200 '' -H 'X-API-Key: secret-key' "$base/private"

# --- /static/: examples/static/
big="$examples/static/big.txt"
st=$(curl -s -m 5 -D "$tmp/h" -o "$tmp/b" -w '%{http_code}' "$base/static/big.txt")
if [ "$st" = 200 ] && cmp -s "$tmp/b" "$big"; then echo "ok   /static/big.txt: 200, $(wc -c <"$tmp/b") bytes, same as the file"
else bad "/static/big.txt: $st, $(wc -c <"$tmp/b") bytes (file: $(wc -c <"$big"))"; fi
etag=$(header "$tmp/h" ETag)
[ -n "$etag" ] || bad "/static/big.txt without ETag"
st=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base/static/big.txt")
[ "$st" = 304 ] && echo "ok   If-None-Match $etag: 304" || bad "If-None-Match $etag: $st"
st=$(curl -s -m 5 -D "$tmp/h" -o "$tmp/b" -w '%{http_code}' -H 'Range: bytes=100-199' "$base/static/big.txt")
if [ "$st" = 206 ] && [ "$(header "$tmp/h" Content-Range)" = "bytes 100-199/$(wc -c <"$big")" ] && cmp -s "$tmp/b" <(tail -c +101 "$big" | head -c 100); then
  echo "ok   Range bytes=100-199: 206 $(header "$tmp/h" Content-Range)"
else bad "Range: $st '$(header "$tmp/h" Content-Range)'"; fi
st=$(curl -s -m 5 -D "$tmp/h" -o "$tmp/b.gz" -w '%{http_code}' -H 'Accept-Encoding: gzip' "$base/static/big.txt")
if [ "$st" = 200 ] && [ "$(header "$tmp/h" Content-Encoding)" = gzip ] && gzip -dc "$tmp/b.gz" | cmp -s - "$big" && [ "$(wc -c <"$tmp/b.gz")" -lt "$(wc -c <"$big")" ]; then
  echo "ok   gzip: $(wc -c <"$tmp/b.gz") bytes, decompresses to the file"
else bad "gzip: $st Content-Encoding '$(header "$tmp/h" Content-Encoding)'"; fi
# A server that joined the path to the folder would answer these two with 200.
check "GET /static/../c/hello.c (raw)" 404 '' --path-as-is "$base/static/../c/hello.c"
check "GET /static/../static/big.txt" 404 '' --path-as-is "$base/static/../static/big.txt"
check "GET /static/%2e%2e/ (encoded)" 404 '' --path-as-is "$base/static/%2e%2e/c/hello.c"
check "GET /static/missing.txt"       404 '' "$base/static/missing.txt"

# --- /metrics (after the traffic above)
check "GET /metrics" 200 'quicklane_requests_total' "$base/metrics"

if [ $fail -ne 0 ]; then echo "fastpath contract FAILED for $*"; cat "$log" | tail -20; exit 1; fi
echo "fastpath contract ok for $*"
