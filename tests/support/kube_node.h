// The API-server double as the test node's control plane: listening on the node IP inside the node netns (where
// the agent runs), with the agent's bearer token and kubeconfig; and Pod objects for test-node pods.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "support/kube_apiserver.h"
#include "support/test_node.h"

namespace podid::test {

inline constexpr const char* kAgentToken = "agent-token";

// Starts `api` on <node ip>:6443 in the node netns, accepting kAgentToken; returns the agent's kubeconfig path.
Result<std::string> serve_api_on_node(KubeApiServer& api, const TestNode& node);

// The Pod object kubelet would have for `pod`: its UID (the cgroup names come from it), `node_name`, the default
// service account, phase Running.
nlohmann::json kube_pod_object(const Pod& pod, const std::string& ns, const std::string& name, nlohmann::json labels,
                               const std::string& node_name, bool host_network = false);

}  // namespace podid::test
