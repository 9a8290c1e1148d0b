#!/usr/bin/env bash
# Installs (builds) the Node addon and runs its tests with `node --test`.
# Idempotent; needs node + npm, and the apt packages of `make build`
# (libuv1-dev is not linked by the addon, node-llhttp provides llhttp's C sources).
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "node is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is required" >&2; exit 1; }
# Rebuild when the sources are newer than the addon (make does the rest).
npm install --no-audit --no-fund --loglevel=error
# The addon must not carry or load a second libuv: its uv_* come from node.
addon=build/Release/quicklane.node
if command -v ldd >/dev/null && ldd "$addon" | grep -q libuv; then
  echo "$addon depends on libuv.so: it must use node's" >&2
  exit 1
fi
if command -v nm >/dev/null; then
  defined=$(nm -D --defined-only "$addon")
  if grep -qE ' (uv|ql|llhttp)_' <<<"$defined"; then
    echo "$addon defines uv_/ql_/llhttp_ symbols: libuv must come from node, the core must stay hidden" >&2
    exit 1
  fi
  # Not `nm | grep -q`: grep's early exit would fail nm with SIGPIPE under pipefail.
  undefined=$(nm -D --undefined-only "$addon")
  grep -q ' uv_run$' <<<"$undefined" || { echo "$addon does not import uv_* from node" >&2; exit 1; }
fi
cd test
# install.test.js builds the addon once more from a clean copy (a few minutes on 2 cores).
exec timeout 1200 node --test --test-concurrency=1 --test-timeout=120000 ./*.test.js
