#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every test (unit and privileged end to end), then
# the sanitizer stage:
#   - every fuzz target for PODID_FUZZ_SECONDS (default 3) over its corpus (clang, ASan + UBSan);
#   - an ASan + UBSan build of the tree (tests/sanitize/run.sh address): every unit test, and the end-to-end
#     tests that drive the agent binary, with the agent, emulator and probe instrumented too;
#   - a TSan build (tests/sanitize/run.sh thread): the unit tests of the concurrent parts, and end-to-end runs
#     of the multi-threaded agent (kube informer, metrics and admin servers, audit writer, token cache).
# The two sanitizer builds, then the fuzz build and runs, go at nice 19 while ctest runs: the end-to-end tests
# mostly wait on the network and timers, so they use cores that would idle (CI time, see README).
# PODID_SKIP_SANITIZERS=1 skips the stage.
# The image stage: deploy/Containerfile built with podman (tests/image/build.sh; the base images start before the
# main build, the image build is the last step of the background chain, nice 19), then the image run on the test
# node with the DaemonSet's security context (build/tests/image_test). PODID_SKIP_IMAGE=1 skips it.
# Run as root: the end-to-end tests load BPF programs and build network namespaces and cgroups.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "podid tests: run as root (sudo $0): the end-to-end tests load BPF programs" >&2
  exit 1
fi
started=$(date +%s)
"$root/tools/install-deps.sh"
deps_seconds=$(($(date +%s) - started))
build=${BUILD_DIR:-$root/build}
# Disk: a cold run writes about 6 GiB under the build directory (main build 2.1, ASan 1.6, TSan 0.9, fuzz
# 0.1, plus ccache). Without the room, a compiler dies mid-build with a message buried in the log, so say it
# first. What the build directory already holds counts as room (a warm run rewrites it in place).
# PODID_DISK_GIB overrides the estimate (0 skips the check).
need_kib=$((${PODID_DISK_GIB:-8} * 1024 * 1024))
mkdir -p "$build"
avail_kib=$(df -Pk "$build" | awk 'NR == 2 { print $4 }')
have_kib=$((avail_kib + $(du -sk "$build" | cut -f1)))
if ((have_kib < need_kib)); then
  echo "podid tests: $((avail_kib / 1024)) MiB free on $(df -P "$build" | awk 'NR == 2 { print $6 }')" \
    "for $build, which needs $((need_kib / 1024)) MiB (cold run: builds, sanitizer builds, fuzz, ccache);" \
    "free space (old build directories, ~/.cache/ccache) or set BUILD_DIR elsewhere" >&2
  exit 1
fi
# The image stage's base images (tests/image/build.sh: mmdebstrap, once per machine; it downloads and unpacks, using
# little CPU) while the main build compiles. The image build itself (below) waits for them on build.sh's lock.
if [[ ${PODID_SKIP_IMAGE:-0} != 1 ]]; then
  nice -n 19 "$root/tests/image/build.sh" --base-only >"$build/image-base.log" 2>&1 &
fi
t0=$(date +%s)
"$root/tools/build.sh"
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
# Every include in agent/ points down the request pipeline (docs/architecture.md).
stage "include graph" "$root/tools/include-graph.py"
# The folders that follow .clang-format stay formatted (bpf/ has its own kernel-style .clang-format).
format_check() {
  find "$root/agent" "$root/bpf" \( -name '*.cpp' -o -name '*.h' -o -name '*.c' \) -print0 |
    xargs -0 clang-format --dry-run --Werror
}
stage "format (agent, bpf)" format_check

sanitize=$root/tests/sanitize/run.sh
asan=$build/asan
tsan=$build/tsan
skip_san=${PODID_SKIP_SANITIZERS:-0}
if [[ $skip_san != 1 ]]; then
  # In the background at lowest priority, one after the other: the ASan build and its unit tests (no
  # privileges, loopback only), the TSan build, then the fuzz build and runs. The TSan unit tests stay in the
  # foreground: their timing (kube_state_test's nudge spacing) is the most sensitive to a busy machine.
  # Each step's row goes to a file of its own (a subshell's rows would be lost), so the end-to-end runs of a
  # sanitizer start as soon as its build is done. ccache shares their objects between runs.
  rm -f "$build"/background-*.row
  # shellcheck disable=SC2030,SC2031  # the subshell's rows are meant to stay there
  (
    # background_step <row file name> <stage args...>
    background_step() {
      local file=$1
      shift
      rows=()
      stage "$@"
      printf '%s\n' "${rows[@]}" >"$build/background-$file.row"
    }
    background_step address "asan build (background)" --note "$asan/sanitize-logs/build.summary" \
      env BUILD_DIR="$asan" nice -n 19 "$sanitize" address build
    if [[ ${rows[-1]} != *FAIL* ]]; then
      background_step asan-unit "asan unit (background)" --note "$asan/sanitize-logs/unit.summary" \
        env BUILD_DIR="$asan" nice -n 19 "$sanitize" address unit
    fi
    background_step thread "tsan build (background)" --note "$tsan/sanitize-logs/build.summary" \
      env BUILD_DIR="$tsan" nice -n 19 "$sanitize" thread build
    background_step fuzz "fuzz (${PODID_FUZZ_SECONDS:-3} s/target, bg)" \
      env BUILD_DIR="$build/fuzz" nice -n 19 "$root/tests/fuzz/run.sh" "${PODID_FUZZ_SECONDS:-3}"
    # A user's build: deploy/Containerfile builds podid-agent and podidctl as Release with the packaged compiler and
    # warnings not errors (the build the old "release build" step made), into the image the image test runs.
    if [[ ${PODID_SKIP_IMAGE:-0} != 1 ]]; then
      background_step image "image build (background)" --note "$build/image.summary" \
        nice -n 19 "$root/tests/image/build.sh" "$build/image.summary"
    fi
  ) >"$build/background.log" 2>&1 &
  background=$!
fi

# wait_background <address|asan-unit|thread|fuzz|image>: waits until that background step is over, then
# adds its row.
wait_background() {
  while [[ ! -f $build/background-$1.row ]] && kill -0 "$background" 2>/dev/null; do sleep 2; done
  if [[ -f $build/background-$1.row ]]; then
    mapfile -t -O ${#rows[@]} rows <"$build/background-$1.row"
  else
    rows+=("$(printf '%-26s %-14s' "$1 (background)" 'FAIL (gone)')")
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
  wait_background address
  stage "asan e2e" --note "$asan/sanitize-logs/e2e.summary" env BUILD_DIR="$asan" "$sanitize" address e2e
  wait_background thread
  stage "tsan unit" --note "$tsan/sanitize-logs/unit.summary" env BUILD_DIR="$tsan" "$sanitize" thread unit
  stage "tsan e2e" --note "$tsan/sanitize-logs/e2e.summary" env BUILD_DIR="$tsan" "$sanitize" thread e2e
  for step in asan-unit fuzz; do wait_background "$step"; done
  [[ ${PODID_SKIP_IMAGE:-0} == 1 ]] || wait_background image
  wait "$background" || true
  sed 's/^/  /' "$build/background.log"
fi

# The image on the test node with the DaemonSet's security context (tests/image/image_test.cpp), once the image of
# this commit is built. PODID_SKIP_IMAGE=1 skips the image stage.
run_image_test() {
  local rc=0
  "$build/tests/image_test" | tee "$build/image_test.log" || rc=$?
  sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\?.*/\1 tests passed/p' "$build/image_test.log" >"$build/image_test.summary"
  { grep -m1 '^\[  SKIPPED \]' "$build/image_test.log" || true; } | sed 's/^/skipped: /' >>"$build/image_test.summary"
  return $rc
}
if [[ ${PODID_SKIP_IMAGE:-0} == 1 ]]; then
  rows+=("$(printf '%-26s %-14s' image 'skipped (PODID_SKIP_IMAGE=1)')")
else
  if [[ $skip_san == 1 ]]; then
    stage "image build" --note "$build/image.summary" "$root/tests/image/build.sh" "$build/image.summary"
  fi
  if [[ ${rows[-1]} == *FAIL* ]]; then
    rows+=("$(printf '%-26s %-14s' "image e2e" 'not run (no image)')")
  else
    stage "image e2e" --note "$build/image_test.summary" run_image_test
  fi
fi

printf '\n%-26s %-14s %6s  %s\n' step result time tests
printf '%-26s %-14s %5ss\n' dependencies done "$deps_seconds"
printf '%s\n' "${rows[@]}"
printf '%-26s %-14s %5ss  (wall clock, dependencies included)\n' total "$( ((failed)) && echo FAIL || echo pass)" \
  $(($(date +%s) - started))
exit $failed
