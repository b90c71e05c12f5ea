#!/bin/bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in their own build directory and runs each for
# SECONDS (default 20), then prints one summary line per target.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# Environment: BUILD_DIR (default <repo>/../build-fuzz), JOBS (default 2).
# The working corpus of each target lives in $BUILD_DIR/corpus/<target> and grows from run to run; it is
# seeded from tests/fuzz/corpus/<target>. A crash leaves $BUILD_DIR/crashes/<target>-crash-<sha1>, which
# reproduces with: $BUILD_DIR/tests/fuzz/fuzz_<target> <file>. Exit status 1 when any target crashed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
seconds=${1:-20}
shift || true
build=${BUILD_DIR:-$repo/../build-fuzz}
jobs=${JOBS:-2}
all_targets=(target http_request static_bindings kube_decode json_splitter kubelet_cgroup kubeconfig)
targets=("${@:-${all_targets[@]}}")

launcher=()
if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    export CCACHE_BASEDIR=$repo  # another clone of the same tree (CI) hits the cache too
fi
# -O1 with line tables only, as OSS-Fuzz builds: cheaper to compile than -O2 -g (the targets are
# built on every CI run), and the stack traces still name file and line.
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
    -DPODID_FUZZ=ON -DPODID_WERROR=ON "${launcher[@]}" >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log"; exit 2; }
cmake --build "$build" -j"$jobs" --target "${targets[@]/#/fuzz_}"

mkdir -p "$build/crashes" "$build/logs"
failed=0
rows=()
for t in "${targets[@]}"; do
    corpus=$build/corpus/$t
    mkdir -p "$corpus"
    cp -n "$here/corpus/$t/"* "$corpus/" 2>/dev/null || true
    log=$build/logs/$t.log
    before=$(ls "$build/crashes" | grep -c "^$t-" || true)
    # -timeout: one input may take at most 10 s (a super-linear glob would show up as a timeout crash);
    # -rss_limit_mb: a leak or blow-up shows up as an out-of-memory crash.
    set +e
    "$build/tests/fuzz/fuzz_$t" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=16384 -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" >"$log" 2>&1
    rc=$?
    set -e
    after=$(ls "$build/crashes" | grep -c "^$t-" || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    corp=$(ls "$corpus" | wc -l)
    crashes=$((after - before))
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        echo "fuzz_$t failed (exit $rc); last lines of $log:" >&2
        tail -30 "$log" >&2
    fi
    rows+=("$(printf '%-16s %12s %8s %8s %8s %8s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$crashes")")
done

printf '\n%-16s %12s %8s %8s %8s %8s\n' target execs cov features corpus crashes
printf '%s\n' "${rows[@]}"
printf '(%s s per target; corpora in %s/corpus, crashes in %s/crashes)\n' "$seconds" "$build" "$build"
exit $failed
