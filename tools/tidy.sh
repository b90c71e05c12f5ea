#!/usr/bin/env bash
# Runs clang-tidy, with the checks in .clang-tidy, over the C++ sources of agent/ and tools/ and the headers they
# include from there. Exit status 1 on any finding, 2 when the build directory cannot be configured.
#
#   tools/tidy.sh [REGEX]      # REGEX narrows the files (e.g. agent/policy/); default: all of agent/ and tools/
#
# Environment: TIDY_BUILD_DIR (default <repo>/build/tidy), JOBS (default nproc). The build directory is only
# configured, never compiled: clang-tidy needs a compile database naming each file (a unity build's names the
# batches, so unity is off here) and the BPF skeleton headers the datapath includes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${TIDY_BUILD_DIR:-$root/build/tidy}
jobs=${JOBS:-$(nproc)}
filter=${1:-}

mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPODID_UNITY_BUILD=OFF \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$build/tidy-configure.log" 2>&1 ||
    { cat "$build/tidy-configure.log"; exit 2; }
cmake --build "$build" --target podid_bpf_gen podid_guard_bpf_gen >>"$build/tidy-configure.log" 2>&1 ||
    { cat "$build/tidy-configure.log"; exit 2; }

# Boost 1.74 turns co_await on for GCC, or for clang only with libc++; clang-tidy parses as clang over
# libstdc++, whose <coroutine> Asio's awaitables compile with once told so (as in tests/fuzz/CMakeLists.txt).
extra=(-DBOOST_ASIO_HAS_CO_AWAIT=1)
# REGEX, when given, must match somewhere in the file's path too.
files_regex="^$root/(?=.*(${filter}))(agent|tools)/.*\.cpp\$"
header_filter="^$root/(agent|tools)/"
log=$build/tidy.log

start=$(date +%s)
set +e
if command -v run-clang-tidy >/dev/null; then
    run-clang-tidy -p "$build" -quiet -j "$jobs" -header-filter="$header_filter" \
        "${extra[@]/#/-extra-arg=}" "$files_regex" >"$log" 2>&1
else
    python3 - "$build/compile_commands.json" "$files_regex" <<'EOF' |
import json, re, sys
pattern = re.compile(sys.argv[2])
files = sorted({e["file"] for e in json.load(open(sys.argv[1])) if pattern.search(e["file"])})
print("\n".join(files))
EOF
        xargs -r -P "$jobs" -n 1 clang-tidy -p "$build" --quiet --header-filter="$header_filter" \
            "${extra[@]/#/--extra-arg=}" >"$log" 2>&1
fi
rc=$?
set -e
sed -i 's/\x1b\[[0-9;]*m//g' "$log"  # run-clang-tidy asks clang-tidy for colours

# A header's finding shows once per file including it: each is listed once.
findings=$(grep -E '^/.*:[0-9]+:[0-9]+: (warning|error):' "$log" | sort -u || true)
count=$(printf '%s' "$findings" | grep -c . || true)
if [ -n "$findings" ]; then
    # The whole diagnostic (source line and caret) of each finding is in the log.
    printf '%s\n' "$findings"
fi
echo "clang-tidy: $count finding(s) in $(($(date +%s) - start)) s (full output: $log)"
if [ "$count" -ne 0 ] || [ "$rc" -ne 0 ]; then
    [ "$count" -ne 0 ] || echo "clang-tidy failed (exit $rc) without a finding; see $log" >&2
    exit 1
fi
