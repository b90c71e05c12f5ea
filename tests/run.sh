#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every test (unit and privileged end to end), then
# the bounded sanitizer stage (issue 7): every fuzz target for PODID_FUZZ_SECONDS (default 3) over its corpus
# (clang, ASan + UBSan), and the TSan subset of the unit tests (tests/sanitize/run.sh: the concurrent parts;
# PODID_SANITIZE_MODES="thread address" adds the ASan + UBSan subset, which the fuzz targets mostly cover and
# which would take CI past its budget). PODID_SKIP_SANITIZERS=1 skips the stage.
# Run as root: the end-to-end tests load BPF programs and build network namespaces and cgroups.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "podid tests: run as root (sudo $0): the end-to-end tests load BPF programs" >&2
  exit 1
fi
"$root/tools/install-deps.sh"
t0=$(date +%s)
"$root/tools/build.sh"
build=${BUILD_DIR:-$root/build}
rows=()
failed=0
# stage <name> <command...>: runs one step, records its verdict and wall time for the summary table.
stage() {
  local name=$1 start rc=0
  shift
  start=$(date +%s)
  "$@" || rc=$?
  local verdict=pass
  if ((rc != 0)); then
    verdict="FAIL (exit $rc)"
    failed=1
  fi
  rows+=("$(printf '%-26s %-14s %5ss' "$name" "$verdict" $(($(date +%s) - start)))")
}
rows+=("$(printf '%-26s %-14s %5ss' build pass $(($(date +%s) - t0)))")

stage ctest bash -c 'cd "$1" && shift && ctest --output-on-failure --timeout 600 "$@"' ctest "$build" "$@"

if [[ ${PODID_SKIP_SANITIZERS:-0} == 1 ]]; then
  rows+=("$(printf '%-26s %-14s' sanitizers 'skipped (PODID_SKIP_SANITIZERS=1)')")
else
  # Build directories of their own inside the main one; ccache shares their objects between runs.
  stage "fuzz (${PODID_FUZZ_SECONDS:-3} s/target)" \
    env BUILD_DIR="$build/fuzz" "$root/tests/fuzz/run.sh" "${PODID_FUZZ_SECONDS:-3}"
  # shellcheck disable=SC2086  # the modes are words
  stage "sanitize subset (${PODID_SANITIZE_MODES:-thread})" \
    env BUILD_DIR="$build/sanitize" "$root/tests/sanitize/run.sh" ${PODID_SANITIZE_MODES:-thread}
fi

printf '\n%-26s %-14s %6s\n' step result time
printf '%s\n' "${rows[@]}"
exit $failed
