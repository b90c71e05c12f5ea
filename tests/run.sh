#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every test (unit and privileged end to end), then
# the sanitizer stage (issue 7):
#   - every fuzz target for PODID_FUZZ_SECONDS (default 3) over its corpus (clang, ASan + UBSan);
#   - an ASan + UBSan build of the tree (tests/sanitize/run.sh address): every unit test, and the end-to-end
#     tests that drive the agent binary, with the agent, emulator and probe instrumented too;
#   - a TSan build (tests/sanitize/run.sh thread): the unit tests of the concurrent parts, and end-to-end runs
#     of the multi-threaded agent (kube informer, metrics and admin servers, audit writer, token cache).
# The two sanitizer builds compile at nice 19 while ctest runs: the end-to-end tests mostly wait on the
# network and timers, so the builds use cores that would idle (CI time, see README). PODID_SKIP_SANITIZERS=1
# skips the stage.
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
# stage <name> [--note FILE] <command...>: runs one step, records its verdict, wall time and the one-line note
# the step left in FILE (test counts) for the summary table.
stage() {
  local name=$1 note='' start rc=0
  shift
  if [[ $1 == --note ]]; then
    note=$2
    shift 2
    rm -f "$note"
  fi
  start=$(date +%s)
  "$@" || rc=$?
  local verdict=pass
  if ((rc != 0)); then
    verdict="FAIL (exit $rc)"
    failed=1
  fi
  rows+=("$(printf '%-26s %-14s %5ss  %s' "$name" "$verdict" $(($(date +%s) - start)) "$(cat "$note" 2>/dev/null)")")
}
rows+=("$(printf '%-26s %-14s %5ss' build pass $(($(date +%s) - t0)))")

sanitize=$root/tests/sanitize/run.sh
asan=$build/asan
tsan=$build/tsan
skip_san=${PODID_SKIP_SANITIZERS:-0}
if [[ $skip_san != 1 ]]; then
  # Both sanitizer builds in the background, lowest priority, one after the other; each one's row goes to a
  # file of its own (a subshell's rows would be lost), so the ASan runs can start while TSan still builds.
  # ccache shares their objects between runs.
  rm -f "$build"/sanitize-build-*.row
  # shellcheck disable=SC2030,SC2031  # the subshell's rows are meant to stay there
  (
    for mode in address thread; do
      rows=()
      stage "${mode:0:1}san build (background)" --note "$build/${mode:0:1}san/sanitize-logs/build.summary" \
        env BUILD_DIR="$build/${mode:0:1}san" nice -n 19 "$sanitize" "$mode" build
      printf '%s\n' "${rows[@]}" >"$build/sanitize-build-$mode.row"
    done
  ) >"$build/sanitize-builds.log" 2>&1 &
  builds=$!
fi

# wait_build <mode>: waits until the background build of <mode> is over, then adds its row to the table.
wait_build() {
  while [[ ! -f $build/sanitize-build-$1.row ]] && kill -0 "$builds" 2>/dev/null; do sleep 2; done
  if [[ -f $build/sanitize-build-$1.row ]]; then
    mapfile -t -O ${#rows[@]} rows <"$build/sanitize-build-$1.row"
  else
    rows+=("$(printf '%-26s %-14s' "$1 build" 'FAIL (gone)')")
  fi
  [[ ${rows[-1]} == *FAIL* ]] && failed=1
  return 0
}

# run_ctest <args...>: the whole ctest run, its output kept in ctest.log for the test count.
run_ctest() {
  local rc=0
  (cd "$build" && ctest --output-on-failure --timeout 600 "$@") | tee "$build/ctest.log" || rc=$?
  sed -n 's/.* \([0-9]*\) tests failed out of \([0-9]*\).*/\2 tests, \1 failed/p' "$build/ctest.log" \
    >"$build/ctest.summary"
  return $rc
}
stage ctest --note "$build/ctest.summary" run_ctest "$@"

if [[ $skip_san == 1 ]]; then
  # shellcheck disable=SC2031
  rows+=("$(printf '%-26s %-14s' sanitizers 'skipped (PODID_SKIP_SANITIZERS=1)')")
else
  stage "fuzz (${PODID_FUZZ_SECONDS:-3} s/target)" \
    env BUILD_DIR="$build/fuzz" "$root/tests/fuzz/run.sh" "${PODID_FUZZ_SECONDS:-3}"
  wait_build address
  stage "asan unit" --note "$asan/sanitize-logs/unit.summary" env BUILD_DIR="$asan" "$sanitize" address unit
  stage "asan e2e" --note "$asan/sanitize-logs/e2e.summary" env BUILD_DIR="$asan" "$sanitize" address e2e
  wait_build thread
  wait "$builds" || true
  sed 's/^/  /' "$build/sanitize-builds.log"
  stage "tsan unit" --note "$tsan/sanitize-logs/unit.summary" env BUILD_DIR="$tsan" "$sanitize" thread unit
  stage "tsan e2e" --note "$tsan/sanitize-logs/e2e.summary" env BUILD_DIR="$tsan" "$sanitize" thread e2e
fi

printf '\n%-26s %-14s %6s  %s\n' step result time tests
printf '%s\n' "${rows[@]}"
exit $failed
