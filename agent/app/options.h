// The agent's command line: every flag, its default and its validation. Parsing is pure (argv and
// environment in, options or one-line error out), so it is unit tested without running anything.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace podid {

struct AgentOptions {
    enum class Command { run, uninstall, help, version };
    Command command = Command::run;

    // Datapath (issue: interception)
    std::string node_ip;                      // --node-ip, default $NODE_IP
    uint16_t port = 2579;                     // --port
    std::string cgroup_root;                  // --cgroup-root (absolute), default: detected kubepods
    std::string bpffs = "/sys/fs/bpf/podid";  // --bpffs
    std::vector<std::string> exempt_cgroups;  // --exempt-cgroup (repeatable), paths under the cgroup2 mount
    std::string guard_interfaces = "veth";    // --guard-interfaces: veth | none | name globs

    // Token service
    std::string imds_url = "http://169.254.169.254";     // --imds-url
    std::string bindings_file;                           // --bindings
    std::string audit_log = "-";                         // --audit-log PATH|- ("" disables)
    bool block_instance_metadata = false;                // --block-instance-metadata
    unsigned threads = 2;                                // --threads
    std::chrono::milliseconds request_timeout{10'000};   // --request-timeout
    std::chrono::milliseconds idle_timeout{90'000};      // --idle-timeout
    std::chrono::milliseconds upstream_timeout{20'000};  // --upstream-timeout (client-facing miss deadline)
    size_t max_connections = 10'000;                     // --max-connections
    // Per caller (cgroup), http/caller_limits.h; 0 turns a limit off.
    size_t caller_max_connections = 1'000;  // --caller-max-connections
    uint64_t caller_rate = 200;             // --caller-rate (requests/s)
    uint64_t caller_burst = 1'000;          // --caller-burst

    // Kubernetes mode (on when --kubeconfig is given or $KUBERNETES_SERVICE_HOST is set)
    bool kubernetes = false;
    std::string kubeconfig;                          // --kubeconfig, "" = in-cluster
    std::string node_name;                           // --node-name, default $NODE_NAME
    std::chrono::milliseconds pod_wait{5'000};       // --pod-wait
    std::string host_token_callers = "kube-system";  // --host-token-callers

    // Entra ID token exchange (Workload Identity federation, service-principal AzureIdentities)
    std::string authority_host = "https://login.microsoftonline.com/";  // --authority-host, $AZURE_AUTHORITY_HOST
    std::string tenant_id;                                              // --tenant-id, $AZURE_TENANT_ID
    bool federated_workload_identity = true;                            // --workload-identity federated|node
    std::string sa_token_audience = "api://AzureADTokenExchange";       // --sa-token-audience

    // Observability
    std::string metrics_addr = "0.0.0.0:9090";           // --metrics-addr ("" disables)
    std::string admin_socket = "/run/podid/admin.sock";  // --admin-socket (podidctl; "" disables)

    // Restarts and upgrades (docs/upgrades.md)
    std::string handover_socket = "/run/podid/handover.sock";      // --handover-socket ("" disables hand-over)
    bool exit_after_handover = true;                               // --after-handover exit|wait
    std::string token_cache_file = "/run/podid/token-cache.json";  // --token-cache-file ("" disables)
};

// argv[0] is skipped. `env` supplies $NODE_IP and friends (tests pass their own).
Result<AgentOptions> parse_agent_options(const std::vector<std::string>& args,
                                         const std::map<std::string, std::string>& env);

// "5s", "250ms", "2m", "1h"; a bare number is seconds.
Result<std::chrono::milliseconds> parse_duration(const std::string& text);

std::string agent_usage();

}  // namespace podid
