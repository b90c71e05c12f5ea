#include "fixtures.h"

#include <algorithm>

#include "netns_http.h"
#include "support/kube_node.h"

namespace podid::bench {

using nlohmann::json;

std::string token_path(const std::string& resource) {
    std::string encoded;
    for (char c : resource) {
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~') {
            encoded.push_back(c);
        } else {
            char hex[4];
            std::snprintf(hex, sizeof(hex), "%%%02X", static_cast<unsigned char>(c));
            encoded += hex;
        }
    }
    return "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + encoded;
}

std::string relative_cgroup(const test::TestNode& node, const std::string& absolute) {
    return absolute.substr(node.cgroup2_mount().size());
}

CgroupPod add_cgroup_pod(test::TestNode& node, int index) {
    char uid[40];
    std::snprintf(uid, sizeof(uid), "b0000000-0000-4000-8000-%012d", index);
    std::string underscored = uid;
    std::replace(underscored.begin(), underscored.end(), '-', '_');
    char container[65];
    std::snprintf(container, sizeof(container), "%064d", index);
    std::string dir = node.make_cgroup("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
                                       underscored + ".slice/cri-containerd-" + container + ".scope");
    return {uid, dir};
}

std::unique_ptr<test::PodidNode> standalone_node() {
    test::PodidNodeOptions o;
    o.vm_identities = {kIdentity};
    o.system_identity = kNodeIdentity;
    o.bindings = json{{"bindings", json::array()}};
    auto pn = test::PodidNode::create(o);
    // A caller matches when its cgroup or an ancestor does: kubepods itself binds every pod.
    pn->write_bindings(json{{"bindings",
                             {{{"cgroup", relative_cgroup(pn->node(), pn->node().kubepods_dir())},
                               {"identities", {{{"client_id", kIdentity}}}}}}}});
    return pn;
}

std::unique_ptr<KubeNode> KubeNode::create() {
    std::unique_ptr<KubeNode> k(new KubeNode());
    test::PodidNodeOptions o;
    o.vm_identities = {kIdentity};
    o.system_identity = kNodeIdentity;
    k->pn_ = test::PodidNode::create(o);
    k->api_ = std::make_unique<test::KubeApiServer>();
    auto kubeconfig = test::serve_api_on_node(*k->api_, k->node());
    if (!kubeconfig.ok())
        throw std::runtime_error(kubeconfig.error().message);
    auto must = [&](const std::string& kind, json object) {
        auto r = k->api_->create(kind, std::move(object));
        if (!r.ok())
            throw std::runtime_error("API-server double: " + r.error().message);
    };
    must("AzureIdentity", {{"metadata", {{"name", "bench-identity"}, {"namespace", "default"}}},
                           {"spec", {{"type", 0}, {"clientID", kIdentity}}}});
    must("AzureIdentityBinding", {{"metadata", {{"name", "bench-binding"}, {"namespace", "default"}}},
                                  {"spec", {{"azureIdentity", "bench-identity"}, {"selector", "bench"}}}});
    k->pn_->set_agent_args({"--kubeconfig", *kubeconfig, "--node-name", kNodeName, "--metrics-addr",
                            "127.0.0.1:" + std::to_string(kMetricsPort)});
    return k;
}

CgroupPod KubeNode::add_pod(int index, bool publish_it) {
    CgroupPod p = add_cgroup_pod(node(), index);
    if (publish_it)
        publish(p);
    return p;
}

void KubeNode::publish(const CgroupPod& p) {
    json object = {{"metadata",
                    {{"name", "bench-" + std::to_string(std::stoll(p.uid.substr(24)))},
                     {"namespace", "default"},
                     {"uid", p.uid},
                     {"labels", {{"aadpodidbinding", "bench"}}}}},
                   {"spec", {{"nodeName", kNodeName}, {"serviceAccountName", "default"}, {"hostNetwork", true}}},
                   {"status", {{"phase", "Running"}}}};
    auto r = api_->create("Pod", std::move(object));
    if (!r.ok())
        throw std::runtime_error("API-server double: " + r.error().message);
}

std::string KubeNode::scrape() {
    auto got = http_get(node().node_netns(), "127.0.0.1", kMetricsPort, "/metrics");
    return got.status == 200 ? got.body : "";
}

double KubeNode::metric(const std::string& sample) { return prometheus_value(scrape(), sample); }

std::string shell_entering(const std::string& cgroup_dir, const std::string& netns) {
    return "sh -c 'echo $$ > " + cgroup_dir + "/cgroup.procs; exec nsenter --net=/run/netns/" + netns + " \"$@\"' sh";
}

}  // namespace podid::bench
