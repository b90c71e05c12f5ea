// The kernel check that runs inside a QEMU guest (and, the same code, on the build machine's kernel): feature
// probes, then the datapath on a pod in its own network namespace and cgroup. It prints one line per check,
//   PODID-KERNEL-CHECK <name> PASS|FAIL <detail>
// and finally "PODID-KERNEL-DONE pass=N fail=M", which tests/e2e/kernel_matrix_test.cpp reads from the console.
#pragma once

#include <string>

namespace podid::kernel_check {

struct GuestCheckOptions {
    std::string probe_bin;      // podid-probe, run inside the pod
    std::string ip_bin = "ip";  // iproute2 on the host, busybox's applet in the guest: both take the syntax used
};

// Needs root. Creates its own network and mount namespaces, bpffs and cgroups and removes them before returning.
// Returns 0 when every check passed.
int run_guest_check(const GuestCheckOptions& options);

}  // namespace podid::kernel_check
