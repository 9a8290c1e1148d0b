#!/usr/bin/env bash
# Fails when the shared library exports any symbol not starting with ql_.
set -euo pipefail
lib="$1"
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^ql_' | grep -v '^$' || true)
count=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^ql_' || true)
if [ -n "$bad" ]; then
  echo "non-ql_ symbols exported from $lib:"; echo "$bad"; exit 1
fi
if [ "$count" -lt 20 ]; then echo "only $count ql_ symbols exported"; exit 1; fi
echo "exports ok: $count ql_ symbols, nothing else"
