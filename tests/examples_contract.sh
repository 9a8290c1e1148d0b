#!/usr/bin/env bash
# Starts an example binary on a free port and checks the example contract of DESIGN.md with curl.
set -euo pipefail
bin="$1"
. "$(dirname "$0")/start_example.sh"
start_example "$bin"
base="http://127.0.0.1:$port"
fail=0
check() { # name expected_status expected_body_substring curl-args...
  local name="$1" want="$2" body="$3"; shift 3
  local out status
  out=$(curl -s -m 5 -w '\n%{http_code}' "$@") || { echo "FAIL $name: curl error"; fail=1; return; }
  status="${out##*$'\n'}"; out="${out%$'\n'*}"
  if [ "$status" != "$want" ] || [[ "$out" != *"$body"* ]]; then
    echo "FAIL $name: got $status '$out', want $want containing '$body'"; fail=1
  else
    echo "ok   $name: $status $out"
  fi
}
check "GET /ping"             200 '{"message":"pong"}' "$base/ping"
check "GET /hello/world"      200 '{"hello":"world"}' "$base/hello/world"
check "GET /hello/J%C3%B6rg"  200 '{"hello":"Jörg"}' "$base/hello/J%C3%B6rg"
check "GET /hello/a%22b"      200 '{"hello":"a\"b"}' "$base/hello/a%22b"
check "POST /echo"            200 '"a":[1,2,{"b":null}]' -X POST -H 'Content-Type: application/json' --data '{"a":[1,2,{"b":null}]}' "$base/echo"
check "POST /echo invalid"    400 '"detail"' -X POST --data '{"a":' "$base/echo"
check "GET /nope"             404 '"detail"' "$base/nope"
check "DELETE /ping"          405 '"detail"' -X DELETE "$base/ping"
allow=$(curl -s -m 5 -o /dev/null -D - -X POST "$base/ping" | tr -d '\r' | grep -i '^allow:' || true)
[[ "$allow" == *GET* ]] && echo "ok   405 Allow: $allow" || { echo "FAIL 405 without Allow"; fail=1; }
if [ $fail -ne 0 ]; then echo "contract FAILED for $bin"; exit 1; fi
echo "contract ok for $(basename "$bin")"
