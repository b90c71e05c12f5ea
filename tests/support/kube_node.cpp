#include "support/kube_node.h"

#include <sys/socket.h>

#include "support/netns.h"

namespace podid::test {

Result<std::string> serve_api_on_node(KubeApiServer& api, const TestNode& node) {
    const std::string netns = node.node_netns();
    auto port = api.listen(node.node_ip(), 6443, [netns] { return socket_in_netns(netns, AF_INET, SOCK_STREAM); });
    if (!port.ok())
        return make_error("API-server double: " + port.error().message);
    api.set_tokens({kAgentToken});
    auto kubeconfig = api.write_file("kubeconfig", api.kubeconfig_with_token(kAgentToken));
    if (!kubeconfig.ok())
        return make_error("kubeconfig: " + kubeconfig.error().message);
    return *kubeconfig;
}

nlohmann::json kube_pod_object(const Pod& pod, const std::string& ns, const std::string& name, nlohmann::json labels,
                               const std::string& node_name, bool host_network) {
    return {{"metadata", {{"name", name}, {"namespace", ns}, {"uid", pod.uid}, {"labels", std::move(labels)}}},
            {"spec", {{"nodeName", node_name}, {"serviceAccountName", "default"}, {"hostNetwork", host_network}}},
            {"status", {{"phase", "Running"}}}};
}

}  // namespace podid::test
