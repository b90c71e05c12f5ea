// Kernel feature probes, run before Datapath::install so a node whose kernel is too old fails with a sentence
// naming what is missing and the first Linux version that has it, instead of a verifier log.
//
// Each probe asks the running kernel directly (libbpf's probe functions, or loading and attaching a trivial
// program to a throwaway cgroup); none relies on the version number, because distribution kernels backport.
//
// The probes run with the agent's own privileges (the DaemonSet's four capabilities, no CAP_DAC_OVERRIDE), so
// the capabilities are checked first (datapath/privileges.h), and the throwaway cgroup is made below the
// kubepods cgroup, where the agent writes its self-check cgroup too: the cgroup2 root itself is mode 0555.
// A probe that cannot run is an error like a missing feature: a kernel that was never asked is not known to fit.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace podid {

enum class ProbeKind {
    prog_type,    // BPF_PROG_TYPE_* loads at all
    map_type,     // BPF_MAP_TYPE_* can be created
    helper,       // a helper is callable from a program type
    ctx_field,    // a context field is readable from a program type (loads a program that reads it)
    cgroup_link,  // BPF_LINK_CREATE on a cgroup
    attach_type,  // a cgroup attach type is accepted (attaches a trivial program to a throwaway cgroup)
    cgroup2,      // the unified hierarchy is mounted
    privileges,   // the process holds the capabilities of datapath/privileges.h (checked before any probe)
};

// One thing podid needs from the kernel. Numbers are the kernel's enums (bpf_prog_type, bpf_map_type,
// bpf_func_id, bpf_attach_type); `what` names the feature as an operator would search for it.
struct FeatureRequirement {
    ProbeKind kind;
    const char* what;        // "BPF_MAP_TYPE_SK_STORAGE", "the bpf_get_current_cgroup_id helper in cgroup/connect4"
    const char* min_kernel;  // first upstream release with it: "5.2"
    int type = 0;            // program type, map type or attach type
    int helper = 0;          // bpf_func_id for ProbeKind::helper; for ctx_field the field's byte offset
    int attach = 0;          // expected attach type of the program (sock_addr and ctx_field probes)
};

struct FeatureResult {
    const FeatureRequirement* requirement;
    bool ok = false;
    std::string detail;  // on failure: the one-sentence message; on success: "ok"
    // No longer set: a probe that cannot run (no capability, no writable cgroup for the attach probes) fails
    // (ok = false) with a sentence saying why. Kept while callers still read it.
    bool undetermined = false;
};

// Every requirement of bpf/podid.bpf.c, in the order they are probed (cheapest first).
const std::vector<FeatureRequirement>& kernel_requirements();

// The sentence for a missing feature: "the kernel lacks BPF_MAP_TYPE_SK_STORAGE (Linux 5.2+)".
std::string missing_feature_message(const FeatureRequirement& requirement);

// Runs every probe, for the agent's start-up, the kernel matrix and docs. First the capabilities: when one is
// missing, the report is that one failed row (the probes would only fail with EPERM). The attach probes' throwaway
// cgroup is made in `probe_cgroup_parent` (absolute; the agent passes the cgroup root it attaches to); empty: the
// kubelet's kubepods cgroup directly below the cgroup2 mount ("kubepods.slice", or "kubepods" for the cgroupfs
// driver) when there is one, else the mount itself.
std::vector<FeatureResult> probe_kernel_features_report(const std::string& probe_cgroup_parent = {});

// Not a requirement but a faster path: whether sockops programs may call bpf_get_current_cgroup_id,
// _pid_tgid and _comm (6.18 can; 6.12 allows the first two but not comm). Then the origin of a redirected connection is
// taken in sockops from the connecting task and the connect hook keeps no socket storage for it (bpf/podid.bpf.c,
// podid_sockops_task).
bool sockops_reads_current_task();

// Ok when every probe passed; otherwise one error whose message lists each missing feature, "; "-separated.
Result<void> probe_kernel_features(const std::string& probe_cgroup_parent = {});

}  // namespace podid
