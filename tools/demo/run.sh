#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs the end-to-end demo on a test node made
# inside this machine (nothing is sent off the machine; everything is removed at the end).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "podid demo: run as root (sudo $0): it loads BPF programs and builds network namespaces" >&2
  exit 1
fi
"$root/tools/install-deps.sh"
"$root/tools/build.sh"
exec "${BUILD_DIR:-$root/build}/tests/podid-demo"
