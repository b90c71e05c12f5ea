// The fixture of the end-to-end tests on the test node. A test not run as root fails with the reason (it never
// skips); the test builds the node it needs: the whole pipeline (pn_: agent and IMDS emulator, optionally the
// API-server double), or a bare node (node_) where the test process plays the agent. After every test, a failed
// one too, the agent's log is printed if it failed, the node is removed and nothing of it may be left.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "support/podid_node.h"
#include "support/test_node.h"

namespace podid::test {

class KubeApiServer;

class NodeFixture : public ::testing::Test {
protected:
    NodeFixture();
    ~NodeFixture() override;

    // Fails the test (fatally) when not root. A subclass's SetUp starts with
    // ASSERT_NO_FATAL_FAILURE(NodeFixture::SetUp()).
    void SetUp() override;
    // A subclass that started more than the node (a second agent, Prometheus, BPF programs of its own) stops
    // that first, then calls this.
    void TearDown() override;

    // These throw with the reason when the node or the double cannot be set up; GoogleTest fails the test with it.
    // The node running the pipeline, in pn_ (the agent and the emulator are started by the test).
    PodidNode& build_podid_node(PodidNodeOptions options = {});
    // A node without the agent, in node_.
    TestNode& build_test_node();
    // The API-server double listening on the node IP, in api_; returns the agent's kubeconfig.
    std::string serve_api();

    // Adds an object to the API-server double; a refusal fails the test.
    void create(const std::string& kind, nlohmann::json object);

    // The node built, either kind.
    TestNode& node() { return pn_ ? pn_->node() : *node_; }

    std::unique_ptr<PodidNode> pn_;
    std::unique_ptr<TestNode> node_;
    std::unique_ptr<KubeApiServer> api_;
};

}  // namespace podid::test
