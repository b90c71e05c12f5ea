#!/usr/bin/env bash
# Runs podid's benchmarks on a test node made inside this machine: builds if needed, prints a
# table with PASS/FAIL per target line, writes bench-results.json in the build directory.
#   sudo ./tools/bench/run.sh [--quick] [--only NAME[,NAME]] [--strict]
# Nothing is sent off the machine; every namespace, cgroup, rule and process it makes is removed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "podid bench: run as root (sudo $0): it loads BPF programs and builds network namespaces" >&2
  exit 1
fi
"$root/tools/install-deps.sh"
# The same build as the demo and the tests (tools/build.sh: RelWithDebInfo): what ships is measured.
"$root/tools/build.sh"
build=${BUILD_DIR:-$root/build}
exec "$build/tests/bench/podid-bench" --out "$build/bench-results.json" "$@"
