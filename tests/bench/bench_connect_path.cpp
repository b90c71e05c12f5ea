// (2) Connect path cost: connections/s from a pod to a trivial accept-and-close server on the node IP,
// (a) directly, (b) to 169.254.169.254 redirected by podid's cgroup/connect4 program, (c) to
// 169.254.169.254 redirected by an iptables DNAT rule in the node's nat PREROUTING, as NMI installs it.
//
// The podid datapath is loaded with Datapath::install from this process (no agent): the agent would
// own node-ip:2579, where the redirect lands, and its HTTP work is not what is measured here. The DNAT
// client runs in the pod's netns but in a cgroup outside kubepods, as on an NMI node, where no cgroup
// program runs. The rule is in the test node's netns, so it goes away with it.
#include "accept_server.h"
#include "bench.h"
#include "datapath/datapath.h"
#include "fixtures.h"
#include "stats.h"
#include "support/spawn.h"

namespace podid::bench {

namespace {

constexpr uint16_t kAgentPort = 2579;   // where both redirects land
constexpr uint16_t kDirectPort = 8080;  // a plain service on the node IP

struct Variant {
    std::string key, label;
    std::string ip;
    uint16_t port;
    bool in_pod_cgroup;
    std::vector<double> rates;
};

void iptables(const test::TestNode& node, std::vector<std::string> args) {
    std::vector<std::string> argv = {"nsenter", "--net=/run/netns/" + node.node_netns(), "iptables", "-w", "-t", "nat"};
    argv.insert(argv.end(), args.begin(), args.end());
    test::run_checked(argv);
}

}  // namespace

void bench_connect_path(const BenchOptions& options, Section& out) {
    auto node = test::TestNode::create();
    test::Pod& pod = node->add_pod({.name = "client"});
    const std::string outside = node->system_cgroup("bench-nmi-client");
    AcceptCloseServer server(node->node_netns(), node->node_ip(), {kAgentPort, kDirectPort});

    DatapathConfig dc;
    dc.cgroup_root = node->kubepods_dir();
    dc.pin_dir = node->bpffs() + "/podid";
    dc.agent_ip4 = *parse_ip4(node->node_ip());
    dc.agent_port = kAgentPort;
    auto dp = Datapath::install(dc);
    if (!dp)
        throw std::runtime_error("cannot install the datapath: " + dp.error().message);

    // NMI's rule shape: a chain jumped to from PREROUTING, DNAT of tcp to 169.254.169.254:80 from
    // anything but loopback to node-ip:2579. Installed before any trial, so conntrack is active in the
    // node netns for all three variants alike (as on a real node, where kube-proxy needs it anyway).
    iptables(*node, {"-N", "aad-metadata"});
    iptables(*node,
             {"-A", "aad-metadata", "!", "-s", "127.0.0.1/32", "-d", "169.254.169.254/32", "-p", "tcp", "--dport", "80",
              "-j", "DNAT", "--to-destination", node->node_ip() + ":" + std::to_string(kAgentPort)});
    iptables(*node, {"-A", "aad-metadata", "-j", "RETURN"});
    iptables(*node, {"-I", "PREROUTING", "1", "-j", "aad-metadata"});

    std::vector<Variant> variants = {
        {"direct", "direct to node IP (pod cgroup, hooks attached)", node->node_ip(), kDirectPort, true, {}},
        {"podid", "169.254.169.254 via podid connect4 redirect", "169.254.169.254", 80, true, {}},
        {"dnat", "169.254.169.254 via iptables DNAT (NMI)", "169.254.169.254", 80, false, {}},
        {"direct_nohooks", "direct to node IP (no cgroup programs)", node->node_ip(), kDirectPort, false, {}},
    };
    const int trials = options.quick ? 1 : 5;
    const std::string seconds = options.quick ? "0.5" : "3";
    long errors = 0;
    for (int t = 0; t < trials; ++t) {
        for (size_t i = 0; i < variants.size(); ++i) {
            // Rotate the order each trial so no variant always runs first or last.
            Variant& v = variants[(i + static_cast<size_t>(t)) % variants.size()];
            test::RunResult r =
                node->run({PODID_BENCH_CLIENT_BIN, "connect-loop", "--ip", v.ip, "--port", std::to_string(v.port),
                           "--seconds", seconds, "--threads", "2"},
                          pod.netns, v.in_pod_cgroup ? pod.cgroup_dir : outside, std::chrono::seconds(60));
            auto j = nlohmann::json::parse(r.out, nullptr, false);
            if (r.exit_code != 0 || j.is_discarded())
                throw std::runtime_error("connect loop (" + v.key + ") failed: " + r.out + r.err);
            double conns = j.value("connections", 0.0);
            errors += j.value("errors", 0L);
            if (conns == 0)
                throw std::runtime_error("connect loop (" + v.key + ") made no connection: " + r.out);
            v.rates.push_back(conns / j.value("seconds", 1.0));
        }
    }
    auto redirects = dp->counters_of(pod.cgroup_id);
    auto rate = [&](const std::string& key) {
        for (auto& v : variants)
            if (v.key == key)
                return median(v.rates);
        return 0.0;
    };
    for (auto& v : variants)
        out.figure(v.key + "_cps", v.label, median(v.rates), "conn/s");
    out.figure("podid_vs_direct", "podid redirect / direct", rate("podid") / rate("direct"), "x");
    out.figure("podid_vs_dnat", "podid redirect / iptables DNAT", rate("podid") / rate("dnat"), "x");
    out.figure("bpf_redirects", "redirects counted by the BPF program (pod cgroup)",
               redirects ? static_cast<double>((*redirects)[PODID_CTR_REDIRECT4]) : 0, "");
    out.figure("connect_errors", "failed connects (all variants, all trials)", static_cast<double>(errors), "");
    out.target("redirect conn/s >= 0.95 x direct", rate("podid") / rate("direct"), ">=", 0.95);
    out.target("redirect conn/s >= iptables DNAT", rate("podid") / rate("dnat"), ">=", 1.0);
    out.notes.push_back("2 client threads, " + std::to_string(trials) + " rotating trials x " + seconds +
                        " s; each connection: connect, wait for the server's FIN, close with SO_LINGER 0 (RST): "
                        "no TIME_WAIT on either side, so ports never run out");
    Datapath::uninstall(dc.pin_dir);
}

}  // namespace podid::bench
