// Where kubelet puts a pod's cgroups (cgroup v2), for each cgroup driver, QoS class and runtime, and the
// random identifiers (pod UID, container id) that appear in those paths.
#pragma once

#include <string>

#include "test_node.h"

namespace podid::test {

struct PodCgroupLayout {
    std::string pod_dir;        // relative to the node's cgroup root, e.g. "kubepods.slice/kubepods-pod<uid_>.slice"
    std::string container_dir;  // pod_dir + "/cri-containerd-<id>.scope" (systemd) or pod_dir + "/<id>" (cgroupfs)
};

// Throws std::invalid_argument for an unknown qos, driver or runtime.
PodCgroupLayout kubelet_cgroup_layout(const PodSpec& spec, const std::string& uid, const std::string& container_id);

std::string random_pod_uid();       // 8-4-4-4-12 lower-case hex
std::string random_container_id();  // 64 lower-case hex

}  // namespace podid::test
