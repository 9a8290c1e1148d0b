#!/usr/bin/env bash
# Installs quicklane from a build tree into a temporary prefix, then, outside the source tree:
#   (a) compiles a C program with `pkg-config --cflags --libs quicklane`,
#   (b) configures and builds a CMake project using find_package(quicklane) + quicklane::quicklane,
# and runs both (each serves GET /ping on an ephemeral port and requests it).
# Usage: run.sh <source_dir> <build_dir>
set -euo pipefail

die() { echo "test_install: FAIL: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 <source_dir> <build_dir>"
src=$(cd "$1" && pwd) || die "no source dir $1"
build=$(cd "$2" && pwd) || die "no build dir $2"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in cmake pkg-config cc; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ql-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

echo "== cmake --install $build --prefix $prefix"
if ! cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1; then
  cat "$work/install.log" >&2
  die "cmake --install failed"
fi

# GNUInstallDirs may pick lib or lib/<multiarch>: find what was installed.
pcfile=$(find "$prefix" -path '*/pkgconfig/quicklane.pc' | head -n 1)
[ -n "$pcfile" ] || die "quicklane.pc was not installed (files: $(cd "$prefix" && find . -type f | tr '\n' ' '))"
pcdir=$(dirname "$pcfile")
libdir=$(dirname "$pcdir")
[ -e "$libdir/libquicklane.so" ] || die "libquicklane.so not next to pkgconfig/ in $libdir"
[ -f "$prefix/include/quicklane.h" ] || die "include/quicklane.h not installed"
[ -f "$prefix/include/quicklane.hpp" ] || die "include/quicklane.hpp not installed"
cfgfile=$(find "$prefix" -name quicklaneConfig.cmake | head -n 1)
[ -n "$cfgfile" ] || die "quicklaneConfig.cmake not installed"
echo "   libdir=$libdir"

# ---- (a) C program via pkg-config -------------------------------------------------------
echo "== C program with pkg-config"
export PKG_CONFIG_PATH="$pcdir"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR || true
flags=$(pkg-config --cflags --libs quicklane) || die "pkg-config --cflags --libs quicklane failed"
echo "   pkg-config: $flags"
# The flags must lead into this prefix (paths may be relative to the .pc file: compare resolved).
incdirs=() libdirs=()
for f in $flags; do
  case "$f" in
    -I*) incdirs+=("$(realpath -m "${f#-I}")") ;;
    -L*) libdirs+=("$(realpath -m "${f#-L}")") ;;
  esac
done
real_prefix=$(realpath "$prefix")
case " ${incdirs[*]:-} " in
  *" $real_prefix/include "*) ;;
  *) die "pkg-config --cflags does not point into the install prefix: '$flags'
   (quicklane.pc says prefix=$(pkg-config --variable=prefix quicklane); it was installed under $prefix.
    An install with 'cmake --install --prefix' needs a relocatable .pc, e.g. prefix=\${pcfiledir}/../..)" ;;
esac
case " ${libdirs[*]:-} " in
  *" $(realpath "$libdir") "*) ;;
  *) die "pkg-config --libs does not point at $libdir: '$flags'" ;;
esac
mkdir -p "$work/c"
cp "$here/c/main.c" "$work/c/main.c"
# shellcheck disable=SC2086 # word splitting of pkg-config output is intended
(cd "$work/c" && cc -std=c99 -Wall -Wextra -Werror -pedantic -o app main.c $flags) \
  || die "compiling the C program against the installed package failed"
resolved=$(LD_LIBRARY_PATH="$libdir" ldd "$work/c/app" | awk '/libquicklane/ {print $3}')
[ "$(readlink -f "$resolved")" = "$(readlink -f "$libdir/libquicklane.so")" ] \
  || die "the C program loads libquicklane from '$resolved', not from $libdir"
LD_LIBRARY_PATH="$libdir" timeout 30 "$work/c/app" || die "the C program failed (exit $?)"

# ---- (b) CMake project via find_package --------------------------------------------------
echo "== CMake project with find_package(quicklane)"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cp -r "$here/cmake" "$work/cmake-src"
if ! env -u CMAKE_PREFIX_PATH cmake -S "$work/cmake-src" -B "$work/cmake-build" "${gen[@]}" \
     -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
     -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
     >"$work/configure.log" 2>&1; then
  cat "$work/configure.log" >&2
  die "configuring the CMake project with find_package(quicklane) failed"
fi
found=$(sed -n 's/^quicklane_DIR:PATH=//p' "$work/cmake-build/CMakeCache.txt")
case "$found" in
  "$prefix"/*) echo "   quicklane_DIR=$found" ;;
  *) die "find_package found quicklane in '$found', not in $prefix" ;;
esac
if ! cmake --build "$work/cmake-build" >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2
  die "building the CMake project against the installed package failed"
fi
LD_LIBRARY_PATH="$libdir" timeout 30 "$work/cmake-build/app" || die "the CMake-built program failed (exit $?)"

echo "test_install: ok (C via pkg-config, C++ via find_package, prefix layout ${libdir#"$prefix"/})"
