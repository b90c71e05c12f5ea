#!/bin/bash
# Sanitizer runs, the command CI runs too (tests/run.sh): a whole-tree build with
# -DPODID_SANITIZE=<mode> in its own directory (ccache), then its tests.
#   address  ASan + UBSan: every unit test, then the end-to-end tests that drive the real agent binary,
#            built with ASan + UBSan (needs root: BPF, namespaces, cgroups)
#   thread   TSan: the unit tests of the concurrent parts, then end-to-end runs of the multi-threaded agent
#
#   tests/sanitize.sh {address|thread} [--no-e2e]
#
# Environment: BUILD_DIR (default <repo>/../build-asan or build-tsan), JOBS (default 2), UNIT_TESTS and
# E2E_TESTS (names such as "token_cache_test" instead of the default lists). The lists, options and report
# handling live in tests/sanitize/run.sh. Exit status non-zero when anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-}
phases=(build unit e2e)
[ "${2:-}" = "--no-e2e" ] && phases=(build unit)
case "$mode" in
address | thread) ;;
*)
    echo "usage: $0 {address|thread} [--no-e2e]" >&2
    exit 2
    ;;
esac
exec "$here/sanitize/run.sh" "$mode" "${phases[@]}"
