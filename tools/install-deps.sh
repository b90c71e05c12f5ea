#!/usr/bin/env bash
# Installs what podid needs to build, test and run the demo on Debian 12 (bookworm). Idempotent.
# podman, buildah, runc and mmdebstrap are the image stage's (tests/image/): build deploy/Containerfile without a
# registry and run it on the test node.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git ccache clang-format
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  libboost-dev libboost-system-dev nlohmann-json3-dev prometheus-cpp-dev libssl-dev libyaml-cpp-dev
  libgtest-dev googletest python3-msal python3-azure
  iproute2 curl procps util-linux prometheus openssl
  wrk nginx-light iptables
  yq yamllint
  qemu-system-x86 busybox-static cpio xz-utils
  podman buildah runc mmdebstrap
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "podid: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# @azure/identity, the JavaScript SDK the federation tests run in a pod (npm, not Debian).
sdk=/var/cache/podid-sdk
if [[ ! -d $sdk/node_modules/@azure/identity ]]; then
  echo "podid: installing @azure/identity into $sdk" >&2
  if ! command -v npm >/dev/null; then  # the machine images ship Node.js with npm; Debian's otherwise
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  mkdir -p "$sdk"
  (cd "$sdk" && npm install --no-audit --no-fund --silent @azure/identity@4 >/dev/null)
fi
