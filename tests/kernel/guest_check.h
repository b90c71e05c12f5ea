// The kernel check that runs inside a QEMU guest (and, the same code, on the build machine's kernel): feature
// probes, then the datapath on a pod in its own network namespace and cgroup, then the real podid-agent in a cgroup
// namespace of its own serving that pod (agent_check.h). It prints one line per check,
//   PODID-KERNEL-CHECK <name> PASS|FAIL <detail>
// and finally "PODID-KERNEL-DONE pass=N fail=M", which tests/e2e/kernel_matrix_test.cpp reads from the console.
#pragma once

#include <string>

namespace podid::kernel_check {

struct GuestCheckOptions {
    std::string probe_bin;      // podid-probe, run inside the pod
    std::string ip_bin = "ip";  // iproute2 on the host, busybox's applet in the guest: both take the syntax used
    std::string agent_bin;      // podid-agent
    std::string emulator_bin;   // podid-imds-emulator, the node's "IMDS"
    std::string emulator_key;   // its --key-file; "" lets it generate one (seconds on an emulated CPU)
    // The cgroup2 mount must have nsdelegate (the QEMU guest mounts it so, as systemd does on AKS nodes): checked,
    // and the kernel's refusal to move a process out of a cgroup namespace is shown. The build machine's mount
    // cannot be changed (nsdelegate is a system-wide flag, set by whoever mounts cgroup2 in the init namespace).
    bool expect_nsdelegate = false;
};

// Needs root. Creates its own network and mount namespaces, bpffs and cgroups and removes them before returning.
// Returns 0 when every check passed.
int run_guest_check(const GuestCheckOptions& options);

}  // namespace podid::kernel_check
