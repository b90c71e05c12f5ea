// A test node running the whole pipeline as in production: the IMDS emulator on 169.254.169.254:80 in
// the node netns (a node daemon outside kubepods), podid-agent on hostNetwork in its own cgroup under
// kubepods with production defaults except the paths a test must keep private (cgroup root, bpffs,
// audit log). Used by the agent end-to-end tests and by the demo.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/test_node.h"

namespace podid::test {

struct PodidNodeOptions {
    // Identities assigned to the emulated VM ("client_id" or "client_id,resource_id").
    std::vector<std::string> vm_identities;
    std::string system_identity;          // the node's own identity (what exception pods get)
    nlohmann::json bindings;              // standalone bindings file content; null = no --bindings
    std::vector<std::string> agent_args;  // extra flags
    // Run the agent in a cgroup namespace of its own, as containerd/CRI-O do for containers on cgroup v2
    // (its /proc/self/cgroup then reads "0::/").
    bool agent_cgroup_namespace = false;
    std::string cgroup_driver = "systemd";         // where the agent attaches: kubepods.slice or (cgroupfs) kubepods
    std::map<std::string, std::string> agent_env;  // added to the agent's environment (SSL_CERT_FILE, ...)
};

class PodidNode {
public:
    static std::unique_ptr<PodidNode> create(PodidNodeOptions options);
    ~PodidNode();

    TestNode& node() { return *node_; }
    Pod& add_pod(const PodSpec& spec) { return node_->add_pod(spec); }

    void set_agent_args(std::vector<std::string> args) { options_.agent_args = std::move(args); }
    void set_agent_env(std::map<std::string, std::string> env) { options_.agent_env = std::move(env); }
    void start_emulator();
    // Starts the agent and waits for its "podid-agent ready" line; fails the test with its stderr if it exits.
    void start_agent(std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Another agent on this node, as a DaemonSet's surge pod: its own cgroup and admin socket, the node's shared
    // hand-over socket and token cache. Not waited for. adopt_agent() makes it the node's agent (killed at teardown).
    Process spawn_agent(const std::string& cgroup, const std::string& admin_socket,
                        const std::vector<std::string>& extra_args = {});
    void adopt_agent(Process agent);
    // A cgroup for the n-th surge agent pod (a new pod UID, as the DaemonSet controller creates it).
    std::string surge_agent_cgroup(int n);
    std::string handover_socket_path() const { return node_->workdir() + "/node-run/handover.sock"; }
    std::string token_cache_path() const { return node_->workdir() + "/node-run/token-cache.json"; }
    void kill_agent();  // SIGKILL
    int stop_agent();   // SIGTERM, returns exit code
    bool agent_running();
    std::string agent_log();  // stderr so far
    Process& agent() { return agent_; }

    // Rewrites the bindings file (the agent reloads it on change or SIGHUP).
    void write_bindings(const nlohmann::json& bindings);
    const std::string& bindings_path() const { return bindings_path_; }

    // The emulator's admin API, from a node daemon's cgroup in the node netns.
    nlohmann::json emulator_stats();
    void emulator_reset();
    void emulator_fault(const nlohmann::json& fault);

    // curl inside a pod, as an application would call IMDS. Returns {status, body}; status 0 when curl failed.
    struct HttpResult {
        int status = 0;
        std::string body;
        std::string err;
        nlohmann::json json() const;
    };
    HttpResult curl(const std::string& pod, const std::string& path_and_query, bool metadata_header = true,
                    const std::vector<std::string>& extra_headers = {});
    HttpResult curl_in_node(const std::string& url, const std::vector<std::string>& headers, const std::string& cgroup);
    // Asks again every 100 ms, as an SDK retries, until the pod gets a 200 or `limit` has passed: the last status
    // and the seconds from the call until that answer (how long a recovery took, seen from the pod).
    struct FirstOk {
        int status = 0;
        double seconds = 0;
    };
    FirstOk curl_until_ok(const std::string& pod, const std::string& path_and_query, std::chrono::seconds limit);

    // Every line of the audit log; waits (up to 5 s) until there are at least `at_least`, then until the file is quiet.
    std::vector<nlohmann::json> audit_lines(std::size_t at_least = 0);
    const std::string& audit_path() const { return audit_path_; }
    // The agent's admin socket (podidctl --socket), private to this node.
    const std::string& admin_socket_path() const { return admin_socket_path_; }
    const std::string& agent_cgroup() const { return agent_cgroup_; }
    std::string pin_dir() const { return node_->bpffs() + "/podid"; }

    // Peers (ip:port) the emulator saw; pods' addresses must never appear there.
    std::vector<std::string> emulator_peers();

private:
    PodidNode() = default;
    std::vector<std::string> agent_argv(const std::string& admin_socket) const;
    HttpResult run_curl(const std::vector<std::string>& argv, const std::string& netns, const std::string& cgroup);

    PodidNodeOptions options_;
    std::unique_ptr<TestNode> node_;
    Process emulator_, agent_;
    std::string agent_cgroup_, daemon_cgroup_, bindings_path_, audit_path_, admin_socket_path_;
};

// Decodes a JWT's payload (no signature check: the emulator's own tests do that).
nlohmann::json jwt_claims(const std::string& jwt);

}  // namespace podid::test
