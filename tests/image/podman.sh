#!/usr/bin/env bash
# podman as the image stage runs it on the CI machines (Debian 12, podman 4.3): every setting a stock install
# lacks comes from a containers.conf of our own, so nothing in /etc/containers is changed.
#   - cgroupfs, not systemd: CI runs no systemd user session and this machine's cgroups are a hybrid layout
#     (cgroup v1 controllers, cgroup2 at /sys/fs/cgroup/unified);
#   - runc, not crun: crun 1.8 refuses the hybrid layout;
#   - events to a file (no journald);
#   - nofile and nproc capped: podman's defaults (1048576) need CAP_SYS_RESOURCE to raise the hard limits, which
#     the CI's root lacks, and runc then fails with "error setting rlimits". 16384 covers the agent's own
#     connection limits (docs/deploy.md); lower when the caller's hard limit is lower.
# Usage: tests/image/podman.sh <podman arguments...>
set -euo pipefail
dir=${PODID_PODMAN_CONF_DIR:-/var/cache/podid-image}
mkdir -p "$dir"
cap() { if [[ $1 == unlimited ]] || (($1 > 16384)); then echo 16384; else echo "$1"; fi; }
nofile=$(cap "$(ulimit -Hn)")
nproc=$(cap "$(ulimit -Hu)")
conf=$dir/containers.conf
want="[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]
[engine]
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
runtime = \"runc\""
if [[ ! -f $conf || $(<"$conf") != "$want" ]]; then
  printf '%s\n' "$want" >"$conf.$$"
  mv "$conf.$$" "$conf"
fi
CONTAINERS_CONF=$conf exec podman "$@"
