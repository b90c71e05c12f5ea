#!/usr/bin/env bash
# Configures and builds podid into ${BUILD_DIR:-build} (RelWithDebInfo; warnings are errors here, the project's own
# build: PODID_WERROR=OFF to turn that off).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
# ccache (installed by install-deps.sh) makes rebuilds of an unchanged tree, and CI on the same machine, cheap.
# CCACHE_BASEDIR makes paths inside the checkout relative, so another clone of the same tree hits the cache too.
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=$root
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} -DPODID_WERROR=${PODID_WERROR:-ON} "${launcher[@]}" >/dev/null
# Arguments: targets to build (default: all).
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
