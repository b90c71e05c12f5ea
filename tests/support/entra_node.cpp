#include "support/entra_node.h"

#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace podid::test {

namespace {

constexpr int kPort = 8443;
constexpr int kAdminPort = 8444;

}  // namespace

std::unique_ptr<EntraNode> EntraNode::start(TestNode& node, const nlohmann::json& config,
                                            const std::vector<std::string>& trust_ca_files) {
    std::unique_ptr<EntraNode> e(new EntraNode(node));
    char tmpl[] = "/tmp/podid-entra-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
        throw std::runtime_error("Entra emulator: cannot make a work directory");
    e->dir_ = tmpl;
    e->ca_path_ = e->dir_ + "/ca.pem";
    const std::string config_path = e->dir_ + "/entra.json";
    const std::string ready_path = e->dir_ + "/ready.json";
    std::ofstream(config_path) << config.dump(2);
    std::vector<std::string> argv = {PODID_ENTRA_EMULATOR_BIN,
                                     "--listen",
                                     node.node_ip() + ":" + std::to_string(kPort),
                                     "--admin",
                                     "127.0.0.1:" + std::to_string(kAdminPort),
                                     "--ca-out",
                                     e->ca_path_,
                                     "--config",
                                     config_path,
                                     "--ready-file",
                                     ready_path,
                                     "--jwks-cache",
                                     "300"};
    for (const auto& ca : trust_ca_files) {
        argv.push_back("--trust-ca");
        argv.push_back(ca);
    }
    e->process_ = node.spawn(argv, node.node_netns(), "");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!std::filesystem::exists(ready_path)) {
        if (!e->process_.running() || std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error("the Entra ID emulator did not start: " + e->process_.read_err());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return e;
}

EntraNode::~EntraNode() {
    if (process_.running()) {
        process_.signal(SIGTERM);
        process_.wait(std::chrono::seconds(5));
    }
    std::error_code ec;
    if (!dir_.empty())
        std::filesystem::remove_all(dir_, ec);
}

std::string EntraNode::authority_host() const {
    return "https://" + node_.node_ip() + ":" + std::to_string(kPort) + "/";
}

std::string EntraNode::log() {
    log_ += process_.read_err();
    return log_;
}

nlohmann::json EntraNode::admin(const std::string& method, const std::string& path, const std::string& body) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "5", "-X", method};
    if (!body.empty()) {
        argv.push_back("-H");
        argv.push_back("Content-Type: application/json");
        argv.push_back("--data");
        argv.push_back(body);
    }
    argv.push_back("http://127.0.0.1:" + std::to_string(kAdminPort) + path);
    RunResult r = node_.run(argv, node_.node_netns(), "");
    if (r.exit_code != 0)
        throw std::runtime_error("Entra emulator admin " + method + " " + path + ": " + r.err);
    if (r.out.empty())
        return nlohmann::json::object();
    return nlohmann::json::parse(r.out, nullptr, false);
}

nlohmann::json EntraNode::stats() { return admin("GET", "/stats"); }
void EntraNode::reset() { admin("POST", "/reset"); }
void EntraNode::fault(const nlohmann::json& spec) { admin("POST", "/faults", spec.dump()); }

}  // namespace podid::test
