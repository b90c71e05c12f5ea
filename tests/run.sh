#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every test (unit and privileged end to end).
# Run as root: the end-to-end tests load BPF programs and build network namespaces and cgroups.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "podid tests: run as root (sudo $0): the end-to-end tests load BPF programs" >&2
  exit 1
fi
"$root/tools/install-deps.sh"
"$root/tools/build.sh"
build=${BUILD_DIR:-$root/build}
cd "$build"
ctest --output-on-failure --timeout 600 "$@"
