#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets with clang (ASan+UBSan, build-fuzz/)
# and runs each for FUZZ_SECONDS (default 600). New inputs go to a working
# corpus under build-fuzz/, not into the repository; crashes, hangs and
# sanitizer reports land in build-fuzz/artifacts/<target>/ and make the run
# fail. Keep each finding as tests/fuzz/regressions/<target>/<name> once fixed:
# the normal build replays those files under ctest.
#
# Environment: FUZZ_SECONDS, FUZZ_TARGETS ("request router ws_frame ws_deflate"), FUZZ_BUILD
# (build dir), FUZZ_JOBS (build jobs, default 2), FUZZ_ARGS (extra libFuzzer flags).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/fuzz
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
SECS=${FUZZ_SECONDS:-600}
TARGETS=${FUZZ_TARGETS:-request router ws_frame ws_deflate}
JOBS=${FUZZ_JOBS:-2}

need=""
for p in clang libclang-rt-14-dev cmake ninja-build pkg-config libuv1-dev node-llhttp; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  echo "installing:$need"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need || exit 1
fi

set -e
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DQL_FUZZ=ON -DQL_BUILD_TESTS=OFF -DQL_BUILD_EXAMPLES=OFF >/dev/null
bins=""
for t in $TARGETS; do bins="$bins fuzz_$t"; done
cmake --build "$BUILD" -j "$JOBS" --target $bins
set +e

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=""
for t in $TARGETS; do
  work=$BUILD/corpus/$t
  art=$BUILD/artifacts/$t
  mkdir -p "$work" "$art"
  echo "== fuzz_$t for ${SECS}s (corpus $work, artifacts $art)"
  # HTTP targets share http.dict; the frame reader needs none (bytes, not tokens).
  dict=""
  case $t in request|router) dict=-dict="$HERE/http.dict" ;; esac
  # The first directory receives new inputs; the seeds and regressions are read only.
  "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    $dict -artifact_prefix="$art/" -print_final_stats=1 ${FUZZ_ARGS:-} \
    "$work" "$HERE/corpus/$t" "$HERE/regressions/$t"
  rc=$?
  found=$(find "$art" -type f | wc -l)
  if [ $rc -ne 0 ] || [ "$found" -ne 0 ]; then
    echo "!! fuzz_$t: exit $rc, $found finding(s) in $art"
    failed="$failed $t"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzzing found problems in:$failed"
  exit 1
fi
echo "fuzzing: no findings ($TARGETS, ${SECS}s each)"
