#!/bin/bash
# Sanitizer runs (issue 7). Builds with -DPODID_SANITIZE=<mode> in its own directory (ccache) and runs:
#   address  ASan + UBSan: every unit test, then the agent end-to-end tests with the real agent binary
#            built with ASan (needs root: BPF, namespaces, cgroups)
#   thread   TSan: the unit tests of the concurrent parts (token cache, informer, node state, emulator
#            server) and the multi-threaded end-to-end runs of the agent (--threads 2 by default)
#
#   tests/sanitize.sh {address|thread} [--no-e2e]
#
# Environment: BUILD_DIR (default <repo>/../build-asan or build-tsan), JOBS (default 2), UNIT_TESTS (names
# such as "token_cache_test imds_handler_test" instead of the default set).
# Prints the build and run times; exit status non-zero when anything failed.
set -uo pipefail

mode=${1:-}
e2e=1
[ "${2:-}" = "--no-e2e" ] && e2e=0
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
jobs=${JOBS:-2}

case "$mode" in
address)
    build=${BUILD_DIR:-$repo/../build-asan}
    # Every unit test; the e2e files that drive the real agent binary.
    unit=$(cd "$repo/tests/unit" && ls *_test.cpp | sed 's/\.cpp$//')
    e2e_tests=(agent_test hardening_test)
    # LeakSanitizer: the agent exits through its drain path and must not leak; UBSan aborts (see CMakeLists).
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ;;
thread)
    build=${BUILD_DIR:-$repo/../build-tsan}
    unit="token_cache_test kube_informer_test kube_state_test emulator_server_test token_imds_client_test imds_handler_test metrics_test"
    e2e_tests=(hardening_test)
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:history_size=4
    ;;
*)
    echo "usage: $0 {address|thread} [--no-e2e]" >&2
    exit 2
    ;;
esac

# UNIT_TESTS="imds_handler_test target_test ..." narrows the unit tests (a quicker CI job).
unit=${UNIT_TESTS:-$unit}

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
targets=()
for t in $unit; do targets+=("unit_$t"); done
if [ "$e2e" = 1 ]; then
    for t in "${e2e_tests[@]}"; do [ -f "$repo/tests/e2e/$t.cpp" ] && targets+=("e2e_$t"); done
fi

start=$(date +%s)
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPODID_SANITIZE="$mode" "${launcher[@]}" \
    >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 2; }
cmake --build "$build" -j"$jobs" --target "${targets[@]}" podid-agent podid-imds-emulator podid-probe || exit 2
built=$(date +%s)

failed=()
run() {  # name, command...
    local name=$1 log="$build/sanitize-logs/$1.log"
    shift
    local t0=$(date +%s)
    if "$@" >"$log" 2>&1; then
        printf '  pass  %-40s %4ss\n' "$name" $(($(date +%s) - t0))
    else
        printf '  FAIL  %-40s %4ss  (%s)\n' "$name" $(($(date +%s) - t0)) "$log"
        grep -m5 -E 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error|WARNING: ThreadSanitizer|\[  FAILED  \]' "$log" |
            sed 's/^/        /'
        failed+=("$name")
    fi
}

mkdir -p "$build/sanitize-logs"
echo "podid sanitize ($mode): built in $((built - start))s"
for t in $unit; do run "unit_$t" "$build/tests/unit_$t"; done
if [ "$e2e" = 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "  the end-to-end runs need root (BPF, namespaces, cgroups)" >&2
        failed+=(e2e-not-root)
    else
        for t in "${e2e_tests[@]}"; do
            [ -x "$build/tests/e2e_$t" ] && run "e2e_$t" "$build/tests/e2e_$t"
        done
    fi
fi
end=$(date +%s)
echo "podid sanitize ($mode): build $((built - start))s, tests $((end - built))s, total $((end - start))s"
if [ ${#failed[@]} -ne 0 ]; then
    echo "failed: ${failed[*]}"
    exit 1
fi
