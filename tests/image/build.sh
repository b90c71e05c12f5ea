#!/usr/bin/env bash
# The image stage: builds deploy/Containerfile unchanged from the repository root with podman, as a user would,
# then checks what the image holds. No registry is reachable from CI, so the Debian base images the
# Containerfile names are made here (mmdebstrap --variant=minbase, imported and tagged as docker.io's names) and
# the build never pulls. They are made once per machine: while the tags exist they are reused, like podman's
# layer cache and the build stage's ccache (a cache mount), so a warm run rebuilds only what changed.
#
# Usage: tests/image/build.sh [note file]
#        tests/image/build.sh --base-only     (only the base images; tests/run.sh starts this early)
#   PODID_IMAGE          the tag to build (default localhost/podid:ci; tests/e2e/image_test.cpp runs it)
#   PODID_DEBIAN_MIRROR  the Debian mirror mmdebstrap uses (default: its own, deb.debian.org); the base images'
#                        apt sources point there, so the build stage installs from it too (air-gapped mirrors)
# The note file gets one line for tests/run.sh's summary: the image's size and what --version said.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
podman=$root/tests/image/podman.sh
image=${PODID_IMAGE:-localhost/podid:ci}
base_only=0
if [[ ${1:-} == --base-only ]]; then
  base_only=1
  shift
fi
note=${1:-/dev/null}
fail() {
  echo "image: $*" >&2
  exit 1
}

tmp=$(mktemp -d)
# podman's cgroupfs manager leaves the (empty) cgroups of its build containers' parent behind, in every hierarchy.
cleanup() {
  rm -rf "$tmp"
  local d
  for d in /sys/fs/cgroup/libpod_parent /sys/fs/cgroup/*/libpod_parent; do
    [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  true
}
trap cleanup EXIT
# One maker of the base images at a time: a second build.sh waits here until the first has tagged them.
mkdir -p /var/cache/podid-image
exec 9>/var/cache/podid-image/base.lock
flock 9
if ! "$podman" image exists docker.io/library/debian:bookworm ||
  ! "$podman" image exists docker.io/library/debian:bookworm-slim; then
  echo "image: making the Debian 12 base image with mmdebstrap (once per machine)" >&2
  # Slim as Docker Hub's bookworm-slim: no manuals, documentation (but the copyrights) or translations, and apt
  # keeps no package caches; the dpkg and apt settings stay in the image, so the Containerfile's installs follow them.
  # mmdebstrap's minbase converts /usr with usrmerge, which keeps perl (45 MB) installed; usr-is-merged, as in Docker
  # Hub's images, marks the (already merged) tree instead, and perl goes (perl-base, which dpkg needs, stays).
  # shellcheck disable=SC2086,SC2016  # an empty mirror is no argument; mmdebstrap expands the hook's $1
  mmdebstrap --variant=minbase --mode=root --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --aptopt='Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' \
    --customize-hook='chroot "$1" sh -c "apt-get install -y -qq usr-is-merged && apt-get purge -y -qq usrmerge perl libperl5.36 perl-modules-5.36 libgdbm-compat4 libgdbm6" >/dev/null' \
    bookworm "$tmp/bookworm.tar" ${PODID_DEBIAN_MIRROR:-}
  "$podman" import --quiet "$tmp/bookworm.tar" docker.io/library/debian:bookworm >/dev/null
  # Both names: the build stage needs nothing that the slim variant leaves out.
  "$podman" tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim
  rm -f "$tmp/bookworm.tar"
fi
flock -u 9
((base_only)) && exit 0

commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
version=$(sed -n 's/^project(podid VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
source=$(git -C "$root" remote get-url origin 2>/dev/null || echo "file://$root")
# The build's own output (apt, compiler) goes to a log; its end is shown when it fails.
log=/var/cache/podid-image/build.log
echo "image: building $image from $root (log: $log)" >&2
if ! "$podman" build --pull=never --layers -f "$root/deploy/Containerfile" \
  --ignorefile "$root/deploy/Containerfile.dockerignore" \
  --build-arg PODID_GIT_COMMIT="$commit" --build-arg PODID_VERSION="$version" --build-arg PODID_SOURCE="$source" \
  -t "$image" "$root" >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  fail "podman build failed (the whole output: $log)"
fi
# An earlier build's image and build-stage layers, untagged by this one, go after a day (kept that long so that
# a branch switch back and forth still hits the layer cache).
"$podman" image prune --force --filter until=24h >/dev/null || true

# What the image holds: both binaries with every library (the Containerfile's own check, again on the result),
# no compiler, --version naming the commit built, the OCI labels.
run() { "$podman" run --rm --entrypoint "$1" "$image" "${@:2}"; }
run /bin/sh -c '! ldd /usr/local/bin/podid-agent /usr/local/bin/podidctl | grep "not found"' ||
  fail "a library is missing"
compilers=$(run /bin/sh -c 'for c in cc gcc g++ c++ clang cmake ld; do command -v $c; done; true')
[[ -z $compilers ]] || fail "the runtime image holds build tools: $compilers"
got=$(run /usr/local/bin/podid-agent --version)
printf '%s\n' "$got" >&2
[[ $got == *"podid-agent $version"* && $got == *"commit $commit"* && $got == *"libbpf v"* ]] ||
  fail "podid-agent --version does not name version $version and commit $commit"
for kv in "org.opencontainers.image.revision=$commit" "org.opencontainers.image.version=$version" \
  "org.opencontainers.image.source=$source"; do
  label=$("$podman" image inspect --format "{{index .Labels \"${kv%%=*}\"}}" "$image")
  [[ $label == "${kv#*=}" ]] || fail "label ${kv%%=*} is '$label', not '${kv#*=}'"
done
size=$("$podman" image inspect --format '{{.Size}}' "$image")
echo "image: $image, $((size / 1000000)) MB, commit $commit" >&2
printf '%s MB, %s\n' "$((size / 1000000))" "$(printf '%s' "$got" | tr '\n' ' ' | sed 's/ $//')" >"$note"
