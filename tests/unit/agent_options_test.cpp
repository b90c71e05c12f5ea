// The agent's command line: every flag parses, every bad one exits with a one-line reason.
#include <gtest/gtest.h>

#include "app/options.h"

namespace podid {
namespace {

using Env = std::map<std::string, std::string>;

TEST(AgentOptions, DefaultsComeFromTheEnvironment) {
    auto o = parse_agent_options({}, Env{{"NODE_IP", "10.0.0.4"}});
    ASSERT_TRUE(o.ok()) << o.error().message;
    EXPECT_EQ(o->command, AgentOptions::Command::run);
    EXPECT_EQ(o->node_ip, "10.0.0.4");
    EXPECT_EQ(o->port, 2579);
    EXPECT_EQ(o->bpffs, "/sys/fs/bpf/podid");
    EXPECT_EQ(o->imds_url, "http://169.254.169.254");
    EXPECT_EQ(o->audit_log, "-");
    EXPECT_TRUE(o->cgroup_root.empty());
}

TEST(AgentOptions, EveryFlagParses) {
    auto o = parse_agent_options({"--node-ip",
                                  "10.1.2.3",
                                  "--port=9999",
                                  "--cgroup-root",
                                  "/sys/fs/cgroup/kubepods.slice",
                                  "--bpffs",
                                  "/sys/fs/bpf/x",
                                  "--exempt-cgroup",
                                  "/a",
                                  "--exempt-cgroup=/b",
                                  "--imds-url",
                                  "http://127.0.0.1:8080",
                                  "--bindings",
                                  "/etc/podid/b.json",
                                  "--audit-log",
                                  "/var/log/podid.log",
                                  "--block-instance-metadata",
                                  "--threads",
                                  "4",
                                  "--request-timeout",
                                  "250ms",
                                  "--idle-timeout",
                                  "2m",
                                  "--upstream-timeout",
                                  "3s",
                                  "--max-connections",
                                  "100",
                                  "--caller-max-connections",
                                  "0",
                                  "--caller-rate",
                                  "50",
                                  "--caller-burst",
                                  "5",
                                  "--guard-interfaces",
                                  "azv*,cali*",
                                  "--admin-socket",
                                  "/run/x/admin.sock"},
                                 Env{});
    ASSERT_TRUE(o.ok()) << o.error().message;
    EXPECT_EQ(o->node_ip, "10.1.2.3");
    EXPECT_EQ(o->port, 9999);
    EXPECT_EQ(o->cgroup_root, "/sys/fs/cgroup/kubepods.slice");
    EXPECT_EQ(o->bpffs, "/sys/fs/bpf/x");
    EXPECT_EQ(o->exempt_cgroups, (std::vector<std::string>{"/a", "/b"}));
    EXPECT_EQ(o->imds_url, "http://127.0.0.1:8080");
    EXPECT_EQ(o->bindings_file, "/etc/podid/b.json");
    EXPECT_EQ(o->audit_log, "/var/log/podid.log");
    EXPECT_TRUE(o->block_instance_metadata);
    EXPECT_EQ(o->threads, 4u);
    EXPECT_EQ(o->request_timeout, std::chrono::milliseconds(250));
    EXPECT_EQ(o->idle_timeout, std::chrono::minutes(2));
    EXPECT_EQ(o->upstream_timeout, std::chrono::seconds(3));
    EXPECT_EQ(o->max_connections, 100u);
    EXPECT_EQ(o->caller_max_connections, 0u);
    EXPECT_EQ(o->caller_rate, 50u);
    EXPECT_EQ(o->caller_burst, 5u);
    EXPECT_EQ(o->guard_interfaces, "azv*,cali*");
    EXPECT_EQ(o->admin_socket, "/run/x/admin.sock");
    EXPECT_FALSE(o->kubernetes);
}

TEST(AgentOptions, KubernetesMode) {
    auto in_cluster = parse_agent_options(
        {}, Env{{"NODE_IP", "10.0.0.4"}, {"NODE_NAME", "aks-1"}, {"KUBERNETES_SERVICE_HOST", "10.0.0.1"}});
    ASSERT_TRUE(in_cluster.ok()) << in_cluster.error().message;
    EXPECT_TRUE(in_cluster->kubernetes);
    EXPECT_EQ(in_cluster->node_name, "aks-1");
    EXPECT_TRUE(in_cluster->kubeconfig.empty());
    EXPECT_EQ(in_cluster->pod_wait, std::chrono::seconds(5));
    EXPECT_EQ(in_cluster->host_token_callers, "kube-system");
    EXPECT_EQ(in_cluster->metrics_addr, "0.0.0.0:9090");
    auto o = parse_agent_options({"--kubeconfig", "/etc/k.yaml", "--node-name", "n1", "--pod-wait", "500ms",
                                  "--host-token-callers", "kube-system,csi/provider", "--metrics-addr", "127.0.0.1:0"},
                                 Env{{"NODE_IP", "10.0.0.4"}});
    ASSERT_TRUE(o.ok()) << o.error().message;
    EXPECT_TRUE(o->kubernetes);
    EXPECT_EQ(o->kubeconfig, "/etc/k.yaml");
    EXPECT_EQ(o->node_name, "n1");
    EXPECT_EQ(o->pod_wait, std::chrono::milliseconds(500));
    EXPECT_EQ(o->host_token_callers, "kube-system,csi/provider");
    EXPECT_EQ(o->metrics_addr, "127.0.0.1:0");
}

TEST(AgentOptions, Subcommands) {
    auto u = parse_agent_options({"uninstall", "--bpffs", "/sys/fs/bpf/y"}, Env{});
    ASSERT_TRUE(u.ok()) << u.error().message;
    EXPECT_EQ(u->command, AgentOptions::Command::uninstall);
    EXPECT_EQ(u->bpffs, "/sys/fs/bpf/y");
    // uninstall needs no node IP
    EXPECT_TRUE(parse_agent_options({"uninstall"}, Env{}).ok());
    EXPECT_EQ(parse_agent_options({"--help"}, Env{})->command, AgentOptions::Command::help);
    EXPECT_EQ(parse_agent_options({"--version"}, Env{})->command, AgentOptions::Command::version);
}

struct BadCase {
    std::vector<std::string> args;
    Env env;
    std::string message_part;
};

TEST(AgentOptions, BadInputNamesTheProblem) {
    const Env ip{{"NODE_IP", "10.0.0.4"}};
    const std::vector<BadCase> cases = {
        {{}, Env{}, "the node IP is not set"},
        {{"--node-ip", "fe80::1"}, Env{}, "is not an IPv4 address"},
        {{"--node-ip", "10.0.0.300"}, Env{}, "is not an IPv4 address"},
        {{"--port", "0"}, ip, "--port: '0' is not a number from 1 to 65535"},
        {{"--port", "70000"}, ip, "--port"},
        {{"--port", "12ab"}, ip, "--port"},
        {{"--port"}, ip, "--port needs a value"},
        {{"--frobnicate"}, ip, "unknown flag '--frobnicate'"},
        {{"--block-instance-metadata=yes"}, ip, "takes no value"},
        {{"--cgroup-root", "kubepods"}, ip, "must be an absolute path"},
        {{"--bpffs", "bpf"}, ip, "must be an absolute path"},
        {{"--threads", "0"}, ip, "--threads"},
        {{"--request-timeout", "soon"}, ip, "--request-timeout: 'soon' is not a duration"},
        {{"--idle-timeout", "5d"}, ip, "unknown unit 'd'"},
        {{"uninstall", "--port", "1"}, ip, "uninstall takes only --bpffs"},
        {{"--kubeconfig", "/k"}, ip, "needs the node name"},
        {{"--pod-wait", "x"}, ip, "--pod-wait"},
        {{"--metrics-addr", "9090"}, ip, "is not HOST:PORT"},
        {{"--caller-rate", "-1"}, ip, "--caller-rate"},
        {{"--caller-burst", "0"}, ip, "--caller-burst"},
        {{"--guard-interfaces", "azv*,"}, ip, "--guard-interfaces: empty entry"},
        {{"--admin-socket", "admin.sock"}, ip, "--admin-socket: 'admin.sock' must be an absolute path"},
    };
    for (const auto& c : cases) {
        auto o = parse_agent_options(c.args, c.env);
        ASSERT_FALSE(o.ok()) << "accepted: " << testing::PrintToString(c.args);
        EXPECT_NE(o.error().message.find(c.message_part), std::string::npos)
            << testing::PrintToString(c.args) << " -> " << o.error().message;
        EXPECT_EQ(o.error().message.find('\n'), std::string::npos) << "one line: " << o.error().message;
    }
}

TEST(AgentOptions, UsageListsEveryFlag) {
    std::string usage = agent_usage();
    for (const char* flag : {"--node-ip",
                             "--port",
                             "--cgroup-root",
                             "--bpffs",
                             "--exempt-cgroup",
                             "--imds-url",
                             "--bindings",
                             "--audit-log",
                             "--block-instance-metadata",
                             "--threads",
                             "--request-timeout",
                             "--idle-timeout",
                             "--upstream-timeout",
                             "--max-connections",
                             "--kubeconfig",
                             "--node-name",
                             "--pod-wait",
                             "--host-token-callers",
                             "--metrics-addr",
                             "--admin-socket",
                             "--guard-interfaces",
                             "--caller-max-connections",
                             "--caller-rate",
                             "--caller-burst",
                             "uninstall"})
        EXPECT_NE(usage.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace podid
