#!/usr/bin/env bash
# Builds the quicklane Python package into a venv and tests it:
#   mypy --strict on the Python examples and the package, then the pytest suite, then
#   the WebSocket contract and Autobahn cases 1-10 on examples/python/hello.py
#   (those two only when no pytest arguments are given).
# Assumes the Debian packages of `make build` (cmake, g++, pkg-config,
# libuv1-dev, node-llhttp, zlib1g-dev, nlohmann-json3-dev); installs everything
# Python-side itself (the build tools, and the package's `test` extra).
# Idempotent: the extension is rebuilt only when its sources changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${QL_PY_VENV:-$here/.venv}"
python="${PYTHON:-python3}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
tools_stamp="$venv/.ql-tools"
if [ ! -f "$tools_stamp" ]; then
  "$py" -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12" "pytest>=7" "mypy>=1.8" "orjson>=3.9"
  touch "$tools_stamp"
fi
# The package's `test` extra (pytest and the frameworks the ASGI/WSGI tests run
# unchanged under quicklane), read from pyproject.toml so the two never drift.
test_deps="$("$py" - "$here/pyproject.toml" <<'PY'
import sys
try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["test"]))
PY
)"
apps_stamp="$venv/.ql-apps-$(echo "$test_deps" | sha256sum | cut -c1-12)"
if [ ! -f "$apps_stamp" ]; then
  mapfile -t deps <<<"$test_deps"
  "$py" -m pip install -q "${deps[@]}"
  touch "$apps_stamp"
fi

# Rebuild when anything the extension is made of changed.
# Every core source, in every subfolder (core/ws, core/http1, core/phases, core/transport, ...).
src_hash="$(cd "$root" && { find core capi bindings/cpp/include -type f \( -name '*.cpp' -o -name '*.hpp' \
  -o -name '*.h' -o -name '*.c' -o -name 'sources.txt' \) | LC_ALL=C sort; \
  echo bindings/python/CMakeLists.txt bindings/python/pyproject.toml bindings/python/src/native.cpp \
  bindings/python/src/native.map; ls bindings/python/src/quicklane/*; } | xargs cat 2>/dev/null \
  | sha256sum | cut -d' ' -f1)"
pkg_stamp="$venv/.ql-package"
if [ "$(cat "$pkg_stamp" 2>/dev/null)" != "$src_hash" ] || ! "$py" -c "import quicklane._native" 2>/dev/null; then
  echo "python: building and installing ./bindings/python"
  "$py" -m pip install -q --no-build-isolation "$here"
  echo "$src_hash" > "$pkg_stamp"
fi

cd "$root"
echo "python: mypy --strict examples/python/{hello,fastapi_app,flask_app,fastpath}.py and the package"
"$py" -m mypy --strict --cache-dir "$venv/.mypy_cache" examples/python/hello.py examples/python/fastapi_app.py \
  examples/python/fastpath.py \
  examples/python/flask_app.py
"$py" -m mypy --strict --cache-dir "$venv/.mypy_cache" -p quicklane
echo "python: pytest bindings/python/tests"
"$py" -m pytest -q -p no:cacheprovider "$here/tests" "$@"

# The WebSocket part of the example contract, and Autobahn|Testsuite cases 1-10
# (kosoku) on the example's /ws/echo. Skipped when pytest was given a selection.
if [ "$#" -eq 0 ]; then
  echo "python: ws contract of examples/python/hello.py and fastapi_app.py"
  python3 tests/ws_contract.py "$py" examples/python/hello.py
  python3 tests/ws_contract.py "$py" examples/python/fastapi_app.py
  echo "python: autobahn cases 1-10 on examples/python/hello.py /ws/echo"
  start=$(date +%s)
  AUTOBAHN_VENV="${AUTOBAHN_VENV:-$root/build/autobahn-venv}" KOSOKU_PARALLEL="${KOSOKU_PARALLEL:-2}" \
    bash tests/autobahn.sh "$py" examples/python/hello.py
  echo "python: autobahn took $(( $(date +%s) - start )) s"
fi
