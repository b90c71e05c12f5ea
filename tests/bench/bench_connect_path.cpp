// (2) Connect path cost: connections/s from a pod to a trivial accept-and-close server on the node IP,
// (a) directly, (b) to 169.254.169.254 redirected by podid's cgroup/connect4 program, (c) to
// 169.254.169.254 redirected by an iptables DNAT rule in the node's nat PREROUTING, as NMI installs it.
// For information, (b') the redirect as kernels up to at least 6.12 run it (origin kept in socket storage by the
// connect hook), from a second datapath attached at a cgroup of its own; then, with BPF run-time stats on,
// the BPF time each variant costs per connection, program by program (a separate phase: the stats cost
// two clock reads per program run, which would tilt the rates).
//
// The podid datapath is loaded with Datapath::install from this process (no agent): the agent would
// own node-ip:2579, where the redirect lands, and its HTTP work is not what is measured here. The DNAT
// client runs in the pod's netns but in a cgroup outside kubepods, as on an NMI node, where no cgroup
// program runs. The rule is in the test node's netns, so it goes away with it.
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <map>
#include <thread>

#include "accept_server.h"
#include "bench.h"
#include "datapath/datapath.h"
#include "fixtures.h"
#include "stats.h"
#include "support/spawn.h"

namespace podid::bench {

namespace {

constexpr uint16_t kAgentPort = 2579;    // where the podid redirect lands
constexpr uint16_t kStoragePort = 2580;  // where the socket-storage datapath's redirect lands
constexpr uint16_t kDnatPort = 2581;     // where the DNAT rule sends connections
constexpr uint16_t kDirectPort = 8080;   // a plain service on the node IP

struct Variant {
    std::string key, label;
    std::string ip;
    uint16_t port;
    std::string cgroup;  // where the client runs
    const Datapath* dp;  // whose programs run on its connections (nullptr: none)
    std::vector<double> rates;
    std::vector<double> cpu_us;  // machine CPU time per connection, per round (empty without cpuidle)
};

// One connect-loop run of `seconds` from the variant's place; returns the parsed result.
nlohmann::json connect_loop(test::TestNode& node, const test::Pod& pod, const Variant& v, const std::string& cgroup,
                            const std::string& seconds, const std::string& threads) {
    test::RunResult r = node.run({PODID_BENCH_CLIENT_BIN, "connect-loop", "--ip", v.ip, "--port",
                                  std::to_string(v.port), "--seconds", seconds, "--threads", threads},
                                 pod.netns, cgroup, std::chrono::seconds(60));
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || j.is_discarded())
        throw std::runtime_error("connect loop (" + v.key + ") failed: " + r.out + r.err);
    if (j.value("connections", 0.0) == 0)
        throw std::runtime_error("connect loop (" + v.key + ") made no connection: " + r.out);
    return j;
}

std::map<std::string, ProgramRunStats> stats_by_program(const Datapath& dp) {
    std::map<std::string, ProgramRunStats> out;
    for (auto& row : dp.run_stats())
        out[row.program] = row;
    return out;
}

void iptables(const test::TestNode& node, std::vector<std::string> args) {
    std::vector<std::string> argv = {"nsenter", "--net=/run/netns/" + node.node_netns(), "iptables", "-w", "-t", "nat"};
    argv.insert(argv.end(), args.begin(), args.end());
    test::run_checked(argv);
}

// --hold: the command that runs the connect loop of each variant from its place, for perf and bpftool while the
// setup is live.
void hold_for_inspection(const test::TestNode& node, const test::Pod& pod, const std::vector<Variant>& variants) {
    std::cerr << "\npodid-bench --hold: the node is up (node netns " << node.node_netns() << ", pod netns " << pod.netns
              << ").\n";
    for (const auto& v : variants)
        std::cerr << "  " << v.key << ": " << shell_entering(v.cgroup, pod.netns) << " " << PODID_BENCH_CLIENT_BIN
                  << " connect-loop --ip " << v.ip << " --port " << v.port << " --seconds 10 --threads 2\n";
    std::cerr << "Press Enter to run the benchmark and tear the node down.\n";
    std::string line;
    std::getline(std::cin, line);
}

}  // namespace

void bench_connect_path(const BenchOptions& options, Section& out) {
    auto node = test::TestNode::create();
    test::Pod& pod = node->add_pod({.name = "client"});
    const std::string outside = node->system_cgroup("bench-nmi-client");
    DatapathConfig dc;
    dc.cgroup_root = node->kubepods_dir();
    dc.pin_dir = node->bpffs() + "/podid";
    dc.agent_ip4 = *parse_ip4(node->node_ip());
    dc.agent_port = kAgentPort;
    auto dp = Datapath::install(dc);
    if (!dp)
        throw std::runtime_error("cannot install the datapath: " + dp.error().message);

    // The older kernels' recording, on a cgroup tree of its own (same programs, the other sockops variant); only where
    // this kernel also has the newer one, else (a) already runs it.
    std::optional<Datapath> storage_dp;
    DatapathConfig sc = dc;
    std::string storage_client;
    if (dp->origin_recording() == OriginRecording::task) {
        sc.cgroup_root = node->make_cgroup("bench-storage.slice");
        sc.pin_dir = node->bpffs() + "/podid-storage";
        sc.origin = OriginRecording::socket_storage;
        sc.agent_port = kStoragePort;
        auto installed = Datapath::install(sc);
        if (!installed)
            throw std::runtime_error("cannot install the socket-storage datapath: " + installed.error().message);
        storage_dp.emplace(std::move(*installed));
        storage_client = node->make_cgroup("bench-storage.slice/client.scope");
    }

    // The 4-tuple map holds each origin from connect until the agent reads it at accept, so on a node it stays
    // nearly empty. Nobody reads here (the agent's per-connection read is its accept cost, benchmark 1 measures
    // it), and a full LRU map would make every connect pay an eviction no agent-served node pays. So a thread
    // empties it in batches every 10 ms (~250 records at this rate; scanning the 65,536 buckets every 2 ms
    // took 2.3 % of the machine, by perf), off the connections' path; its CPU time counts like everything else.
    std::atomic<uint64_t> drained{0};
    std::vector<int> origin_maps = {dp->conn_origin_fd()};
    if (storage_dp)
        origin_maps.push_back(storage_dp->conn_origin_fd());
    // A jthread: also stopped and joined if a run throws, before the datapaths declared above go.
    std::jthread drainer([&](std::stop_token stop) {
        std::vector<podid_tuple> keys(4096);
        std::vector<podid_origin> values(keys.size());
        while (!stop.stop_requested()) {
            for (int fd : origin_maps) {
                podid_tuple out{};
                void* in = nullptr;
                for (;;) {
                    uint32_t count = static_cast<uint32_t>(keys.size());
                    int rc = bpf_map_lookup_and_delete_batch(fd, in, &out, keys.data(), values.data(), &count, nullptr);
                    drained += count;
                    if (rc != 0)
                        break;  // ENOENT: the map is empty now
                    in = &out;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    });
    AcceptCloseServer server(node->node_netns(), node->node_ip(), {kAgentPort, kStoragePort, kDnatPort, kDirectPort});

    // NMI's rule shape: a chain jumped to from PREROUTING, DNAT of tcp to 169.254.169.254:80 from
    // anything but loopback to the node IP (NMI's port 2579 is podid's here, hence another). Installed before any
    // trial, so conntrack is active in the node netns for all variants alike (as on a real node, where kube-proxy needs
    // it anyway).
    iptables(*node, {"-N", "aad-metadata"});
    iptables(*node,
             {"-A", "aad-metadata", "!", "-s", "127.0.0.1/32", "-d", "169.254.169.254/32", "-p", "tcp", "--dport", "80",
              "-j", "DNAT", "--to-destination", node->node_ip() + ":" + std::to_string(kDnatPort)});
    iptables(*node, {"-A", "aad-metadata", "-j", "RETURN"});
    iptables(*node, {"-I", "PREROUTING", "1", "-j", "aad-metadata"});

    const std::string recording = origin_recording_name(dp->origin_recording());
    std::vector<Variant> variants = {
        {"direct",
         "direct to node IP (pod cgroup, hooks attached)",
         node->node_ip(),
         kDirectPort,
         pod.cgroup_dir,
         &*dp,
         {},
         {}},
        {"podid",
         "169.254.169.254 via podid redirect (origin: " + recording + ")",
         "169.254.169.254",
         80,
         pod.cgroup_dir,
         &*dp,
         {},
         {}},
        {"dnat", "169.254.169.254 via iptables DNAT (NMI)", "169.254.169.254", 80, outside, nullptr, {}, {}},
        {"direct_nohooks",
         "direct to node IP (no cgroup programs)",
         node->node_ip(),
         kDirectPort,
         outside,
         nullptr,
         {},
         {}},
    };
    if (storage_dp)
        variants.push_back({"podid_storage",
                            "169.254.169.254 via podid redirect (origin: socket storage, <= 6.12)",
                            "169.254.169.254",
                            80,
                            storage_client,
                            &*storage_dp,
                            {},
                            {}});
    if (options.hold)
        hold_for_inspection(*node, pod, variants);
    // One connect-alternate run measures every variant in blocks of 0.1 s, round after round, each from a worker
    // process that stays in the variant's cgroup (a socket's cgroup programs are those of the cgroup its creator was
    // in; moving one process between cgroups before each block slowed the block after a move by 1-2 %). The rounds
    // rotate the order, so each variant runs in each position and beside each other one equally often. Drift of the
    // machine's speed (other tenants, frequency) over seconds is shared by the variants of a round and cancels out of
    // per-round ratios; with 16 trials of 2 s it did not (per-trial ratios spread ±5 %).
    const int rounds = options.connect_rounds > 0 ? options.connect_rounds : options.quick ? 4 : 320;
    const double block = 0.1;
    std::string targets;
    for (const auto& v : variants)
        targets += (targets.empty() ? "" : ",") + v.ip + ":" + std::to_string(v.port) + "@" + v.cgroup;
    test::RunResult run =
        node->run({PODID_BENCH_CLIENT_BIN, "connect-alternate", "--targets", targets, "--block-seconds",
                   std::to_string(block), "--rounds", std::to_string(rounds), "--threads", "2"},
                  pod.netns, pod.cgroup_dir, std::chrono::seconds(60 + 3 * rounds));
    auto alternate = nlohmann::json::parse(run.out, nullptr, false);
    if (run.exit_code != 0 || alternate.is_discarded() || alternate["rates"].size() != variants.size())
        throw std::runtime_error("connect-alternate failed: " + run.out + run.err);
    const long errors = alternate.value("errors", 0L);
    for (size_t k = 0; k < variants.size(); ++k) {
        variants[k].rates = alternate["rates"][k].get<std::vector<double>>();
        variants[k].cpu_us = alternate["cpu_us_per_connection"][k].get<std::vector<double>>();
        if (median(variants[k].rates) == 0)
            throw std::runtime_error("connect-alternate: no connection to " + variants[k].key + ": " + run.out);
    }
    auto redirects = dp->counters_of(pod.cgroup_id);
    auto variant = [&](const std::string& key) -> const Variant& {
        for (auto& v : variants)
            if (v.key == key)
                return v;
        throw std::logic_error("no variant " + key);
    };
    auto rates_of = [&](const std::string& key) -> const std::vector<double>& { return variant(key).rates; };
    // Medians of per-round ratios: each round runs every variant back to back, so slow drift cancels out.
    auto ratio = [&](const std::string& a, const std::string& b) { return median(ratios(rates_of(a), rates_of(b))); };
    for (auto& v : variants)
        out.figure(v.key + "_cps", v.label, median(v.rates), "conn/s");
    for (auto& v : variants)
        if (!v.cpu_us.empty())
            out.figure(v.key + "_cpu_us", "CPU per connection (whole machine): " + v.label, median(v.cpu_us), "us");
    out.figure("podid_vs_direct", "podid redirect / direct (median of per-round ratios)", ratio("podid", "direct"),
               "x");
    out.figure("podid_vs_dnat", "podid redirect / iptables DNAT (median of per-round ratios)", ratio("podid", "dnat"),
               "x");
    if (storage_dp)
        out.figure("podid_storage_vs_direct", "podid redirect, socket-storage origin / direct",
                   ratio("podid_storage", "direct"), "x");
    out.figure("bpf_redirects", "redirects counted by the BPF program (pod cgroup)",
               redirects ? static_cast<double>((*redirects)[PODID_CTR_REDIRECT4]) : 0, "");
    out.figure("connect_errors", "failed connects (all variants, all rounds)", static_cast<double>(errors), "");
    out.figure("origins_drained", "origin records drained from the 4-tuple maps (one per redirected connection)",
               static_cast<double>(drained.load()), "");

    // BPF time per connection, with run-time stats on only for this phase (the fd keeps them on).
    int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (stats_fd < 0) {
        out.notes.push_back("BPF run-time stats unavailable (bpf_enable_stats): no per-program times");
    } else {
        for (const auto& v : variants) {
            if (!v.dp)
                continue;
            auto before = stats_by_program(*v.dp);
            auto j = connect_loop(*node, pod, v, v.cgroup, options.quick ? "0.3" : "2", "1");
            auto after = stats_by_program(*v.dp);
            double conns = j.value("connections", 0.0);
            double total = 0;
            std::string detail;
            for (const auto& [name, row] : after) {
                double ns = static_cast<double>(row.run_time_ns - before[name].run_time_ns) / conns;
                double runs = static_cast<double>(row.run_count - before[name].run_count) / conns;
                total += ns;
                if (runs > 0) {
                    char cell[96];
                    std::snprintf(cell, sizeof(cell), "%s %.0f ns (%.1f runs)", name.c_str(), ns, runs);
                    detail += (detail.empty() ? "" : ", ") + std::string(cell);
                }
            }
            out.figure(v.key + "_bpf_ns", "BPF time per connection: " + v.label, total, "ns");
            out.notes.push_back("BPF per connection, " + v.key + ": " + detail);
        }
        ::close(stats_fd);
    }

    out.target("redirect conn/s >= 0.95 x direct", ratio("podid", "direct"), ">=", 0.95);
    out.target("redirect conn/s >= iptables DNAT", ratio("podid", "dnat"), ">=", 1.0);
    // How far each median ratio can be trusted: the per-round ratios spread several percent, so a median within
    // its interval of 1.0 is parity at this run's resolution, not a measured difference.
    for (const char* other : {"direct", "dnat"}) {
        Interval ci = median_ci95(ratios(rates_of("podid"), rates_of(other)));
        out.figure(std::string("podid_vs_") + other + "_ci95_low",
                   std::string("podid / ") + other + ": 95 % interval of the median, low", ci.low, "x");
        out.figure(std::string("podid_vs_") + other + "_ci95_high",
                   std::string("podid / ") + other + ": 95 % interval of the median, high", ci.high, "x");
    }
    // Per-round quartiles of each pair the targets use, and of every variant against no hooks at all (what the
    // cgroup programs, the NAT rule or the redirect cost in this run).
    std::vector<std::pair<std::string, std::string>> pairs = {{"podid", "direct"}, {"podid", "dnat"}};
    for (const auto& v : variants)
        if (v.key != "direct_nohooks")
            pairs.emplace_back(v.key, "direct_nohooks");
    for (const auto& [a, b] : pairs) {
        auto r = ratios(rates_of(a), rates_of(b));
        size_t wins = 0;
        for (double x : r)
            wins += x >= 1.0;
        Interval ci = median_ci95(r);
        char line[240];
        std::snprintf(line, sizeof(line),
                      "%s / %s per round: quartiles %.3f / %.3f / %.3f, median 95 %% interval %.3f-%.3f; %s ahead in "
                      "%zu of %zu rounds",
                      a.c_str(), b.c_str(), percentile(r, 25), percentile(r, 50), percentile(r, 75), ci.low, ci.high,
                      a.c_str(), wins, r.size());
        out.notes.push_back(line);
    }
    // The same pairs in CPU time per connection (lower is cheaper): busy time of all CPUs over a block (cpuidle
    // residency) divided by its connections. It counts what a connection costs wherever it runs, and does not move
    // with how the scheduler happens to overlap the client's and the server's waits.
    for (const auto& [a, b] : pairs) {
        const Variant& va = variant(a);
        const Variant& vb = variant(b);
        if (va.cpu_us.empty() || vb.cpu_us.size() != va.cpu_us.size())
            continue;
        auto r = ratios(va.cpu_us, vb.cpu_us);
        Interval ci = median_ci95(r);
        char line[240];
        std::snprintf(line, sizeof(line),
                      "CPU per connection, %s / %s per round: median %.3f (95 %% interval %.3f-%.3f); %.2f vs %.2f us",
                      a.c_str(), b.c_str(), median(r), ci.low, ci.high, median(va.cpu_us), median(vb.cpu_us));
        out.notes.push_back(line);
    }
    out.notes.push_back("2 client threads, " + std::to_string(rounds) +
                        " rounds (rotating order) of a 0.1 s block per variant, one resident client process per "
                        "variant; each connection: connect, "
                        "wait for the server's FIN, close with SO_LINGER 0 (RST): "
                        "no TIME_WAIT on either side, so ports never run out");
    drainer.request_stop();  // before the maps it reads go
    drainer.join();
    if (storage_dp) {
        storage_dp.reset();
        Datapath::uninstall(sc.pin_dir);
    }
    Datapath::uninstall(dc.pin_dir);
}

}  // namespace podid::bench
