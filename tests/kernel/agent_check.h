// The agent phase of the guest check: the real podid-agent, started the way the DaemonSet runs it on an AKS node,
// serving a pod on the node the check built.
//
// On AKS (Ubuntu, Azure Linux) systemd mounts cgroup2 with nsdelegate, and the agent's container has a private
// cgroup namespace rooted at its own container cgroup below kubepods, with the host's cgroup2 mounted in it. With
// nsdelegate the kernel refuses to move a process (a cgroup.procs write, or clone3 with CLONE_INTO_CGROUP) into a
// cgroup outside the mover's cgroup namespace: ENOENT. So this phase makes <cgroup2>/kubepods, an agent cgroup
// kubepods/podid-agent and a pod cgroup kubepods/pod-a; starts the IMDS emulator on 169.254.169.254:80 in the node
// network namespace; and starts podid-agent standalone, in the agent cgroup and a new cgroup namespace rooted there,
// with its production flags (--node-ip, --cgroup-root <cgroup2>/kubepods, a bindings file binding the pod cgroup to
// an identity the emulator knows, pins in the check's private bpffs, admin/hand-over sockets and token cache in a
// temporary directory). Each of these is its own PODID-KERNEL-CHECK line:
//
//   nsdelegate-mount          the cgroup2 mount has nsdelegate (only when the check expects it: the QEMU guest)
//   nsdelegate-move-refused   from inside such a cgroup namespace, a cgroup.procs write and clone3(CLONE_INTO_CGROUP)
//                             into kubepods/<other> fail with ENOENT, while a move below the namespace root works:
//                             what a self-check process below <cgroup root> meets (QEMU guest only)
//   agent-cgroups, agent-emulator   the setup
//   agent-probes              the agent's kernel probes passed (it refuses to start otherwise) and it attached
//   agent-own-cgroup          "agent cgroup found through the redirect", naming the agent cgroup's id
//   agent-selfcheck           "self-check passed"
//   agent-readyz              GET /readyz on the metrics address answers 200
//   agent-token               a process in the pod (its netns and cgroup) gets a token for the bound identity from
//                             http://169.254.169.254/metadata/identity/oauth2/token
//   agent-sigterm             SIGTERM: the agent drains and exits 0
//   agent-cleanup             pins, tc filters and cgroups removed (also done, unreported, on any early return)
//   agent-timing              how long each step took (always PASS)
//
// On the build machine (no nsdelegate there) the same agent lines run in a cgroup of the check's own instead of
// <cgroup2>/kubepods, which may exist on such a machine.
#pragma once

#include <string>

#include "kernel/guest_check.h"
#include "kernel/guest_support.h"

namespace podid::kernel_check {

struct AgentCheckEnv {
    std::string cgroup2;  // the cgroup2 mount
    std::string bpffs;    // the check's private bpffs; the agent pins in a directory of its own there
    int pod_netns = -1;   // the pod's network namespace, behind a veth to the node network namespace (this one)
};

// Runs in the node network namespace the check built (node IP, 169.254.169.254 on its loopback).
void check_agent(Reporter& rep, const GuestCheckOptions& o, const AgentCheckEnv& env);

}  // namespace podid::kernel_check
