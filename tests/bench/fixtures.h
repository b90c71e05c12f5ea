// What several benchmarks share: identities, token paths, and the Kubernetes-mode node (the agent
// watching the API-server double inside the test node's netns).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "support/kube_apiserver.h"
#include "support/podid_node.h"

namespace podid::bench {

inline const std::string kIdentity = "11111111-1111-4111-8111-111111111111";
inline const std::string kNodeIdentity = "99999999-9999-4999-8999-999999999999";
inline const std::string kNodeName = "bench-node-0";
inline constexpr int kMetricsPort = 9090;

// "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=<encoded resource>"
std::string token_path(const std::string& resource = "https://vault.azure.net");

// The path of an absolute cgroup dir relative to the node's cgroup2 mount.
std::string relative_cgroup(const test::TestNode& node, const std::string& absolute);

// A pod's cgroups only, shaped as kubelet makes them (systemd driver, besteffort, containerd), made
// with TestNode::make_cgroup: TestNode::add_pod gives every pod an IP from the node's /24, even a
// hostNetwork one, so it stops near 240 pods. `index` picks a deterministic pod UID.
struct CgroupPod {
    std::string uid;
    std::string cgroup_dir;  // the container's leaf cgroup (absolute)
};
CgroupPod add_cgroup_pod(test::TestNode& node, int index);

// Standalone mode: every pod under the node's kubepods cgroup is bound to kIdentity.
std::unique_ptr<test::PodidNode> standalone_node();

// A shell prefix that runs the command after it in `cgroup_dir` (absolute) and the netns `netns`, for the commands
// --hold prints. The cgroup first: `ip netns exec` would remount /sys.
std::string shell_entering(const std::string& cgroup_dir, const std::string& netns);

class KubeNode {
public:
    // The test node, the API-server double on the node IP:6443 with an AzureIdentity for kIdentity and a
    // binding for pods labelled aadpodidbinding=bench, and the agent's flags for it (metrics on
    // 127.0.0.1:9090 in the node netns). The agent is not started.
    static std::unique_ptr<KubeNode> create();

    test::PodidNode& podid() { return *pn_; }
    test::TestNode& node() { return pn_->node(); }
    test::KubeApiServer& api() { return *api_; }

    // A pod's cgroups on the node (add_cgroup_pod); `publish` also creates its API object (hostNetwork).
    CgroupPod add_pod(int index, bool publish = true);
    void publish(const CgroupPod& pod);

    std::string scrape();  // /metrics text, "" when it does not answer
    double metric(const std::string& sample);

private:
    KubeNode() = default;
    std::unique_ptr<test::PodidNode> pn_;       // destroyed last
    std::unique_ptr<test::KubeApiServer> api_;  // before the node's netns goes
};

}  // namespace podid::bench
