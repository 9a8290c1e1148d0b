#!/usr/bin/env bash
# Autobahn|Testsuite's cases (kosoku, from PyPI) against an example's /ws/echo.
# Usage: [AUTOBAHN_CASES='12.* 13.*'] autobahn.sh COMMAND [ARGS...]   (an example binary, or e.g.
# `node examples/node/hello.js`; cases default to 1.* to 10.*; the C example's /ws/echo offers
# permessage-deflate, so 12.* and 13.* run against it too). KOSOKU_PARALLEL: cases at once.
# Exit 1 on any FAILED case; the summary (OK / NON-STRICT / INFORMATIONAL /
# UNIMPLEMENTED) is printed, and the reports stay in $AUTOBAHN_OUT.
set -euo pipefail
read -r -a cases <<<"${AUTOBAHN_CASES:-1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.*}"
here=$(cd "$(dirname "$0")" && pwd)
venv="${AUTOBAHN_VENV:-$here/../build/autobahn-venv}"
out="${AUTOBAHN_OUT:-$(dirname "$venv")/autobahn-reports}"
mkdir -p "$(dirname "$venv")"
(
  flock 9  # two runs of this script at once (ctest -j) install it once
  if [ ! -x "$venv/bin/kosoku" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'kosoku>=0.1'
  fi
) 9>"$venv.lock"
out="$out-$(basename "${@: -1}")-${cases[0]//[^0-9]/}"  # one folder per example and case set
. "$(dirname "$0")/start_example.sh"
start_example "$@"
args=()
for c in "${cases[@]}"; do args+=(-i "$c"); done
rm -rf "$out"
status=0
"$venv/bin/kosoku" -p "${KOSOKU_PARALLEL:-1}" "${args[@]}" -o "$out" "ws://127.0.0.1:$port/ws/echo" || status=$?
"$venv/bin/python" - "$out" <<'PY'
import collections, glob, json, sys
count = collections.Counter()
for f in glob.glob(sys.argv[1] + "/*case_*.json"):
    j = json.load(open(f))
    count[j.get("behavior")] += 1
    count["close " + str(j.get("behaviorClose"))] += 0
print("autobahn:", ", ".join(f"{k} {v}" for k, v in sorted(count.items()) if v))
PY
kill -0 $pid 2>/dev/null || { echo "the server died during the cases"; cat "$log"; exit 1; }
exit $status
