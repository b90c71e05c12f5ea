#include "support/node_fixture.h"

#include <iostream>
#include <stdexcept>

#include "support/kube_apiserver.h"
#include "support/kube_node.h"

namespace podid::test {

NodeFixture::NodeFixture() = default;

NodeFixture::~NodeFixture() = default;

void NodeFixture::SetUp() {
    ASSERT_TRUE(is_root()) << "the end-to-end tests load BPF programs and build namespaces: run them as root";
}

void NodeFixture::TearDown() {
    if (pn_ && HasFailure())
        std::cerr << "agent log:\n" << pn_->agent_log() << "\n";
    const std::string prefix = pn_ ? pn_->node().prefix() : node_ ? node_->prefix() : "";
    // The double serves from a socket in the node's network namespace: it goes before the node.
    api_.reset();
    pn_.reset();
    node_.reset();
    if (prefix.empty())
        return;
    const std::vector<std::string> left = TestNode::leftovers(prefix);
    std::string list;
    for (const auto& item : left)
        list += "\n  " + item;
    EXPECT_TRUE(left.empty()) << "the test node left behind:" << list;
}

PodidNode& NodeFixture::build_podid_node(PodidNodeOptions options) {
    pn_ = PodidNode::create(std::move(options));
    return *pn_;
}

TestNode& NodeFixture::build_test_node() {
    node_ = TestNode::create();
    return *node_;
}

std::string NodeFixture::serve_api() {
    api_ = std::make_unique<KubeApiServer>();
    auto kubeconfig = serve_api_on_node(*api_, node());
    if (!kubeconfig.ok())
        throw std::runtime_error(kubeconfig.error().message);
    return *kubeconfig;
}

void NodeFixture::create(const std::string& kind, nlohmann::json object) {
    auto r = api_->create(kind, std::move(object));
    ASSERT_TRUE(r.ok()) << r.error().message;
}

}  // namespace podid::test
