// Who is calling: the kernel's origin record of a connection (datapath/origin.h), and what podid derived from it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "datapath/origin.h"

namespace podid {

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
