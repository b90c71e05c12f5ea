#!/bin/bash
# The sanitizer subset (issue 7), the CI-sized counterpart of tests/sanitize.sh: builds the unit tests listed
# in tests/sanitize/CMakeLists.txt with their own small source lists in a build directory of its own, runs
# each, and prints one summary line per test.
#   thread   TSan: token cache, caller limits, audit batch writer, kube informer and node state
#   address  ASan + UBSan: request targets, static bindings, identity selection, token parsing
#
#   tests/sanitize/run.sh [thread|address]...      (default: both)
#
# Environment: BUILD_DIR (default <repo>/../build-sanitize-subset), JOBS (default 2). Needs no root and no
# network beyond loopback. Exit status 1 when a test failed or a sanitizer reported, 2 when the build failed.
# tests/run.sh (CI) runs the thread mode by default.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$repo/../build-sanitize-subset}
jobs=${JOBS:-2}
modes=("${@:-thread address}")
modes=(${modes[*]})

# One test per line: <mode> <executable> [gtest filter]. The filter keeps only the concurrent cases where a
# test file also holds slow single-threaded ones.
tests=(
    "thread tsan_token_cache_test"
    "thread tsan_imds_handler_test CallerLimits.*"
    "thread tsan_audit_test AuditLog.*"
    "thread tsan_kube_informer_test"
    "thread tsan_kube_state_test"
    "address asan_target_test"
    "address asan_static_bindings_test"
    "address asan_identity_select_test"
    "address asan_token_parsing_test"
)
selected=()
for row in "${tests[@]}"; do
    for m in "${modes[@]}"; do [ "${row%% *}" = "$m" ] && selected+=("$row"); done
done
if [ ${#selected[@]} -eq 0 ]; then
    echo "usage: $0 [thread|address]..." >&2
    exit 2
fi
targets=()
for row in "${selected[@]}"; do
    read -r _ exe _ <<<"$row"
    targets+=("$exe")
done

launcher=()
if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
    export CCACHE_BASEDIR=$repo
fi
start=$(date +%s)
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPODID_SANITIZE_SUBSET=ON \
    "${launcher[@]}" >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 2; }
cmake --build "$build" -j"$jobs" --target "${targets[@]}" || exit 2
built=$(date +%s)

# UBSan and TSan findings abort the test (halt_on_error), so a finding is a failed test, not a printed line.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:history_size=4
mkdir -p "$build/logs"
failed=0
rows=()
for row in "${selected[@]}"; do
    read -r mode exe filter <<<"$row"
    log=$build/logs/$exe.log
    args=()
    [ -n "$filter" ] && args=(--gtest_filter="$filter")
    t0=$(date +%s)
    "$build/tests/sanitize/$exe" "${args[@]}" >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - t0))
    passed=$(grep -c '^\[       OK \]' "$log")
    verdict=pass
    if [ "$rc" -ne 0 ]; then
        verdict=FAIL
        failed=1
        echo "$exe failed (exit $rc); first findings in $log:" >&2
        findings='ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error|^\[  FAILED  \]|^    #[0-9]'
        grep -m8 -E "$findings" "$log" | sed 's/^/    /' >&2
    fi
    rows+=("$(printf '%-30s %-8s %-5s %6s %5ss' "$exe" "$mode" "$verdict" "$passed" "$secs")")
done

printf '\n%-30s %-8s %-5s %6s %6s\n' test sanitizer result passed time
printf '%s\n' "${rows[@]}"
printf '(built in %ss, ran in %ss; logs in %s/logs)\n' "$((built - start))" "$(($(date +%s) - built))" "$build"
exit $failed
