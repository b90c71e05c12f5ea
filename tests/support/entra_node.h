// The Entra ID emulator (tools/entra-emulator) as the test node's Entra ID: a process in the node netns on
// <node ip>:8443 (where the agent runs), trusting the API-server double's CA so it can fetch the cluster's
// service-account issuer documents, with its admin API on the node netns' loopback. The agent reaches it with
// --authority-host authority_host() and SSL_CERT_FILE=ca_path().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/test_node.h"

namespace podid::test {

class EntraNode {
public:
    // `config`: the emulator's --config document (tenants, apps). Throws std::runtime_error with the emulator's
    // stderr when it does not start.
    static std::unique_ptr<EntraNode> start(TestNode& node, const nlohmann::json& config,
                                            const std::vector<std::string>& trust_ca_files);
    ~EntraNode();  // stops the emulator and removes its files

    std::string authority_host() const;  // "https://10.77.0.1:8443/"
    const std::string& ca_path() const { return ca_path_; }
    const std::string& dir() const { return dir_; }

    // The admin API (GET /stats: token_calls, by_client_id, by_outcome, by_credential, issuer_fetches).
    nlohmann::json stats();
    void reset();
    void fault(const nlohmann::json& spec);  // {"mode":"status","status":429,"retry_after":3,"count":2}, ...
    std::string log();                       // the emulator's stderr so far

private:
    EntraNode(TestNode& node) : node_(node) {}
    nlohmann::json admin(const std::string& method, const std::string& path, const std::string& body = "");

    TestNode& node_;
    Process process_;
    std::string dir_;
    std::string ca_path_;
    std::string log_;
};

}  // namespace podid::test
