// Who is calling: what the kernel recorded about a connection, and what podid derived from it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace podid {

// The origin record the connect hook stored for a connection (see include/podid/abi.h).
struct Origin {
    uint64_t cgroup_id = 0;
    uint32_t pid = 0;         // tgid of the connecting process
    std::string comm;         // its command name (16 bytes max)
    std::string orig_dst;     // "169.254.169.254:80" as the application asked
    bool redirected = false;  // true when the hook rewrote the destination
    uint64_t connect_ns = 0;  // CLOCK_MONOTONIC when the process called connect() (bpf_ktime_get_ns); 0: unknown
};

// A kubelet-created cgroup path, parsed (agent/caller/kubelet_cgroup.h).
struct PodRef {
    std::string uid;           // pod UID with dashes, lower case
    std::string container_id;  // 64-hex container id; empty for the pod-level cgroup
    std::string runtime;       // "containerd", "crio", "docker", or "" (cgroupfs driver)
    std::string qos;           // "guaranteed", "burstable", "besteffort"
};

// The Kubernetes pod object, as much as bindings need.
struct PodInfo {
    std::string ns;
    std::string name;
    std::string uid;
    std::string service_account;
    std::string node_name;
    bool host_network = false;
    std::map<std::string, std::string> labels;
};

struct Caller {
    std::optional<Origin> origin;   // empty: no kernel record, always denied
    std::string cgroup_path;        // relative to the cgroup2 mount, "/..."; empty when unknown
    std::optional<PodRef> pod_ref;  // set when cgroup_path has a kubelet shape
    std::optional<PodInfo> pod;     // set when the pod is known to the pod directory
};

}  // namespace podid
