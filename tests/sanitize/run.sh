#!/bin/bash
# Sanitizer runs: one whole-tree build per sanitizer (-DPODID_SANITIZE, see cmake/build_flags.cmake),
# the agent, the emulator, the probe and podidctl instrumented too, and the tests run from it.
#   address  ASan + UBSan: every unit test; the end-to-end tests that drive the real agent binary
#   thread   TSan: the unit tests of the concurrent parts; end-to-end runs of the agent with its 2 I/O threads,
#            audit writer, token cache, kube informer and admin/metrics servers
#
#   tests/sanitize/run.sh {address|thread} [build] [unit] [e2e]      (no phase: all three)
#
# Phases can run as separate commands (tests/run.sh times each one); a phase writes a one-line summary to
# $BUILD_DIR/sanitize-logs/<phase>.summary. Environment: BUILD_DIR (default <repo>/../build-asan or
# build-tsan), JOBS (default 2), UNIT_TESTS / E2E_TESTS (file names such as "token_cache_test") instead of
# the default lists. The e2e phase needs root (BPF, namespaces, cgroups).
#
# Every instrumented process (a test, and the agent, emulator, probe and podidctl it starts) writes its
# sanitizer reports to $BUILD_DIR/sanitize-logs/reports/<test>/: a report fails the test even when the test
# itself passed (a leak in the agent at exit, a race the test's assertions did not notice).
# Exit status: 1 when a test failed or a sanitizer reported, 2 when the build failed or on bad usage.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mode=${1:-}
shift || true
read -ra phases <<<"${*:-build unit e2e}"
jobs=${JOBS:-2}

case "$mode" in
address)
    build=${BUILD_DIR:-$repo/../build-asan}
    unit=$(cd "$repo/tests/unit" && ls -- *_test.cpp | sed 's/\.cpp$//')
    e2e="agent_test hardening_test faults_test kube_mode_test observability_test datapath_test metrics_test"
    e2e+=" podidctl_test guard_test"
    # LeakSanitizer: the agent exits through its drain path and must not leak. Stack-use-after-return
    # detection is off: Asio's coroutine frames make it report false positives and slow every call.
    export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=0:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ;;
thread)
    build=${BUILD_DIR:-$repo/../build-tsan}
    # The code with threads or shared state: the token cache's single flight, the per-caller limits and the
    # server (imds_handler_test), the audit batch writer, the informer and node state, the metrics registry,
    # the admin socket, the IMDS client.
    unit="token_cache_test imds_handler_test audit_test kube_informer_test kube_state_test metrics_test"
    unit+=" admin_socket_test token_imds_client_test handover_test"
    # Kube mode (informer), the metrics server, the admin socket, the audit writer, 2 I/O threads (the default).
    e2e="observability_test kube_mode_test"
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:history_size=4
    ;;
*)
    echo "usage: $0 {address|thread} [build] [unit] [e2e]" >&2
    exit 2
    ;;
esac
unit=${UNIT_TESTS:-$unit}
e2e=${E2E_TESTS:-$e2e}
logs=$build/sanitize-logs
mkdir -p "$logs"

do_build() {
    local launcher=() targets=() t
    if command -v ccache >/dev/null; then
        launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
        export CCACHE_BASEDIR=$repo # another clone of the same tree (CI) hits the cache too
    fi
    for t in $unit; do targets+=("unit_$t"); done
    for t in $e2e; do targets+=("e2e_$t"); done
    local start=$SECONDS
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPODID_SANITIZE="$mode" -DPODID_WERROR=ON \
        "${launcher[@]}" >"$logs/configure.log" 2>&1 || { cat "$logs/configure.log"; return 2; }
    # Only what the runs need (the test targets depend on the agent, emulator, probe and podidctl).
    if ! cmake --build "$build" -j"$jobs" --target "${targets[@]}" >"$logs/build.log" 2>&1; then
        tail -40 "$logs/build.log"
        # The first compiler or linker complaint, for the summary row (the log's tail may be cut off).
        { grep -m1 -E 'error|No space left|Killed|internal compiler' "$logs/build.log" || echo "see $logs/build.log"; } |
            cut -c1-200 >"$logs/build.summary"
        return 2
    fi
    echo "${#targets[@]} test executables built in $((SECONDS - start)) s" | tee "$logs/build.summary"
}

# run_tests <phase> <prefix> <name>...: runs each executable, counts its tests, collects sanitizer reports.
run_tests() {
    local phase=$1 prefix=$2
    shift 2
    local name exe log reports rc passed skipped total=0 total_skipped=0 failed=() t0
    for name in "$@"; do
        exe=$build/tests/${prefix}_$name
        log=$logs/${prefix}_$name.log
        reports=$logs/reports/${prefix}_$name
        rm -rf "$reports"
        mkdir -p "$reports"
        t0=$SECONDS
        if [ ! -x "$exe" ]; then
            echo "  FAIL  ${prefix}_$name: not built (run the build phase first)"
            failed+=("$name")
            continue
        fi
        ASAN_OPTIONS=${ASAN_OPTIONS:-}:log_path=$reports/asan UBSAN_OPTIONS=${UBSAN_OPTIONS:-}:log_path=$reports/ubsan \
            TSAN_OPTIONS=${TSAN_OPTIONS:-}:log_path=$reports/tsan timeout -k 10 600 "$exe" >"$log" 2>&1
        rc=$?
        passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\?\.$/\1/p' "$log" | tail -1)
        skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\?,.*/\1/p' "$log" | tail -1)
        total=$((total + ${passed:-0}))
        total_skipped=$((total_skipped + ${skipped:-0}))
        if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$reports")" ]; then
            echo "  FAIL  ${prefix}_$name (exit $rc, $((SECONDS - t0)) s): $log"
            grep -h -m8 -E 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error|^\[  FAILED  \]' \
                "$log" "$reports"/* 2>/dev/null | sed 's/^/        /'
            for f in "$reports"/*; do [ -e "$f" ] && echo "        report: $f"; done
            failed+=("$name")
        else
            printf '  pass  %-40s %4s tests %4s s\n' "${prefix}_$name" "${passed:-0}" $((SECONDS - t0))
        fi
    done
    local summary="$# files, $total tests passed"
    ((total_skipped > 0)) && summary+=", $total_skipped skipped"
    ((${#failed[@]} > 0)) && summary+=", ${#failed[@]} files failed (${failed[*]})"
    echo "$summary" | tee "$logs/$phase.summary"
    ((${#failed[@]} == 0))
}

status=0
for phase in "${phases[@]}"; do
    rc=0
    case "$phase" in
    build) do_build || rc=$? ;;
    unit) run_tests unit unit $unit || rc=1 ;;
    e2e)
        if [ "$(id -u)" -ne 0 ]; then
            echo "the end-to-end runs need root (BPF, namespaces, cgroups)" | tee "$logs/e2e.summary" >&2
            rc=1
        else
            run_tests e2e e2e $e2e || rc=1
        fi
        ;;
    *)
        echo "unknown phase '$phase' (build, unit or e2e)" >&2
        rc=2
        ;;
    esac
    ((rc > status)) && status=$rc
    ((rc == 2)) && break
done
exit $status
